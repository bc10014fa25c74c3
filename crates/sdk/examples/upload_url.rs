//! Streams a video from a URL to VOD without a temporary file (ranged parallel reads when the origin
//! allows them).
//!
//! ```text
//! cargo run -p vodup-sdk --example upload_url -- https://example.com/movie.mp4 [ENDPOINT]
//! ```

use vodup_sdk::source::Source;
use vodup_sdk::upload::UploadOptions;
use vodup_sdk::vod::VideoMeta;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let url = args.next().ok_or("usage: upload_url URL [ENDPOINT]")?;
    let mut builder = vodup_sdk::Client::builder().with_env()?;
    if let Some(endpoint) = args.next() {
        builder = builder.endpoint(endpoint);
    }
    let client = builder.build()?;
    let result =
        client.upload_video(Source::parse(&url)?, &VideoMeta::default(), &UploadOptions::default()).await?;
    println!("VideoId {}", result.media_id);
    Ok(())
}

//! Uploads an HLS playlist with its segments (local path or URL).
//!
//! ```text
//! cargo run -p vodup-sdk --example upload_m3u8 -- hls/index.m3u8 [ENDPOINT]
//! ```

use vodup_sdk::source::Source;
use vodup_sdk::upload::UploadOptions;
use vodup_sdk::vod::VideoMeta;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let playlist = args.next().ok_or("usage: upload_m3u8 PLAYLIST [ENDPOINT]")?;
    let mut builder = vodup_sdk::Client::builder().with_env()?;
    if let Some(endpoint) = args.next() {
        builder = builder.endpoint(endpoint);
    }
    let client = builder.build()?;
    let result = client
        .upload_m3u8(Source::parse(&playlist)?, &VideoMeta::default(), &UploadOptions::default())
        .await?;
    println!("VideoId {} with {} segments", result.media_id, result.segments);
    Ok(())
}

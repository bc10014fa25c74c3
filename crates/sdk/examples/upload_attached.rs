//! Uploads a subtitle, watermark or material file.
//!
//! ```text
//! cargo run -p vodup-sdk --example upload_attached -- captions.srt subtitle [ENDPOINT]
//! ```

use vodup_sdk::source::Source;
use vodup_sdk::upload::UploadOptions;
use vodup_sdk::vod::AttachedMeta;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let file = args.next().ok_or("usage: upload_attached FILE watermark|subtitle|material [ENDPOINT]")?;
    let business_type = args.next().ok_or("give the business type")?;
    let mut builder = vodup_sdk::Client::builder().with_env()?;
    if let Some(endpoint) = args.next() {
        builder = builder.endpoint(endpoint);
    }
    let client = builder.build()?;
    let meta = AttachedMeta { business_type, ..AttachedMeta::default() };
    let result = client.upload_attached(Source::parse(&file)?, &meta, &UploadOptions::default()).await?;
    println!("MediaId {} at {}", result.media_id, result.media_url.unwrap_or_default());
    Ok(())
}

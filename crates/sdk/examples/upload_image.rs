//! Uploads an image (local path or URL) as a cover.
//!
//! ```text
//! cargo run -p vodup-sdk --example upload_image -- cover.png [ENDPOINT]
//! ```

use vodup_sdk::source::Source;
use vodup_sdk::upload::UploadOptions;
use vodup_sdk::vod::ImageMeta;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let image = args.next().ok_or("usage: upload_image IMAGE [ENDPOINT]")?;
    let mut builder = vodup_sdk::Client::builder().with_env()?;
    if let Some(endpoint) = args.next() {
        builder = builder.endpoint(endpoint);
    }
    let client = builder.build()?;
    let meta = ImageMeta { image_type: Some("cover".into()), ..ImageMeta::default() };
    let result = client.upload_image(Source::parse(&image)?, &meta, &UploadOptions::default()).await?;
    println!("ImageId {} at {}", result.media_id, result.media_url.unwrap_or_default());
    Ok(())
}

//! Uploads a local video file with a progress callback.
//!
//! ```text
//! ALIBABA_CLOUD_ACCESS_KEY_ID=… ALIBABA_CLOUD_ACCESS_KEY_SECRET=… \
//!   cargo run -p vodup-sdk --example upload_file -- video.mp4 [http://127.0.0.1:8080]
//! ```
//! Without an endpoint argument it goes to `https://vod.cn-shanghai.aliyuncs.com`.

use std::sync::Arc;

use vodup_sdk::source::Source;
use vodup_sdk::upload::UploadOptions;
use vodup_sdk::upload::progress::Event;
use vodup_sdk::vod::VideoMeta;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: upload_file FILE [ENDPOINT]")?;
    let mut builder = vodup_sdk::Client::builder().with_env()?;
    if let Some(endpoint) = args.next() {
        builder = builder.endpoint(endpoint);
    }
    let client = builder.build()?;
    let options = UploadOptions {
        progress: Some(Arc::new(|event: &Event| match event {
            Event::PartSent { part_number, .. } => eprintln!("part {part_number} sent"),
            Event::Retried { reason, .. } => eprintln!("retrying: {reason}"),
            _ => {}
        })),
        ..UploadOptions::default()
    };
    let result = client.upload_video(Source::File(path.into()), &VideoMeta::default(), &options).await?;
    println!("VideoId {} ({} bytes, CRC-64 {})", result.media_id, result.size, result.crc64);
    Ok(())
}

//! Uploads standard input (any `AsyncRead` of unknown length), cancelled cleanly on Ctrl-C.
//!
//! ```text
//! ffmpeg … -f mpegts - | cargo run -p vodup-sdk --example upload_stream -- live.ts [ENDPOINT]
//! ```

use vodup_sdk::source::Source;
use vodup_sdk::upload::UploadOptions;
use vodup_sdk::vod::VideoMeta;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let name = args.next().ok_or("usage: upload_stream NAME.EXT [ENDPOINT]")?;
    let mut builder = vodup_sdk::Client::builder().with_env()?;
    if let Some(endpoint) = args.next() {
        builder = builder.endpoint(endpoint);
    }
    let client = builder.build()?;
    let options = UploadOptions::default();
    let cancel = options.cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    });
    let source = Source::stream(tokio::io::stdin(), name);
    let result = client.upload_video(source, &VideoMeta::default(), &options).await?;
    println!("VideoId {}", result.media_id);
    Ok(())
}

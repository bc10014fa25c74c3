//! `s3_put FILE KEY`: writes a file to an S3 bucket directly, as a multipart upload of 8 MiB parts with
//! 4 in flight, the baseline the throughput suite (bench/suite.py, case `s3`) sets beside ingest through
//! `vodup serve` into the same bucket. It uses object_store, the library of the server's own S3 store, so
//! the difference is what vodup adds (its OSS plane, hashing, catalogue), not a faster or slower client.
//!
//! The bucket comes from the environment: `S3_BUCKET`, `S3_ENDPOINT` (`http://127.0.0.1:3900`),
//! `S3_REGION`, and the keys in `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`. It reads the file one part at a
//! time, prints `{"bytes":N}` when the upload is complete, and exits 1 with a message when it
//! is not.

use std::io::Read as _;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path;
use object_store::{ObjectStoreExt as _, WriteMultipart};

const PART: usize = 8 << 20;
const IN_FLIGHT: usize = 4;

fn var(name: &str) -> Result<String, String> {
    std::env::var(name).map_err(|_| format!("s3_put: set {name}"))
}

#[tokio::main]
async fn main() {
    if let Err(problem) = run().await {
        eprintln!("{problem}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [file, key] = args.as_slice() else {
        return Err("usage: s3_put FILE KEY (bucket and keys from S3_* and AWS_* variables)".into());
    };
    let endpoint = var("S3_ENDPOINT")?;
    let store = AmazonS3Builder::new()
        .with_bucket_name(var("S3_BUCKET")?)
        .with_region(var("S3_REGION")?)
        .with_access_key_id(var("AWS_ACCESS_KEY_ID")?)
        .with_secret_access_key(var("AWS_SECRET_ACCESS_KEY")?)
        .with_allow_http(endpoint.starts_with("http://"))
        .with_endpoint(endpoint)
        .build()
        .map_err(|e| format!("s3_put: configuring the store: {e}"))?;
    let mut source = std::fs::File::open(file).map_err(|e| format!("s3_put: opening {file}: {e}"))?;
    let upload = store.put_multipart(&Path::from(key.as_str())).await.map_err(|e| format!("s3_put: {e}"))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, PART);
    let mut total = 0u64;
    loop {
        let mut part = vec![0u8; PART];
        let mut filled = 0;
        while filled < PART {
            match source.read(&mut part[filled..]).map_err(|e| format!("s3_put: reading {file}: {e}"))? {
                0 => break,
                n => filled += n,
            }
        }
        if filled == 0 {
            break;
        }
        part.truncate(filled);
        total += filled as u64;
        writer.wait_for_capacity(IN_FLIGHT).await.map_err(|e| format!("s3_put: {e}"))?;
        writer.put(Bytes::from(part));
    }
    writer.finish().await.map_err(|e| format!("s3_put: completing the upload: {e}"))?;
    println!("{{\"bytes\":{total}}}");
    Ok(())
}

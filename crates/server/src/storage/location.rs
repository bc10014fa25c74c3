//! Where the blobs live, as the `--storage` URL names it (`VODUP_STORAGE`, `[server] storage`):
//! `file://PATH` for a folder on this machine, `s3://BUCKET[/PREFIX]` for a bucket of any S3-compatible
//! store. The URL never carries a secret (S3 keys come from `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` or
//! the config file's `[s3]` section), so it is shown as given. The endpoint, region and keys of an S3
//! location are `crate::config`'s; opening the store is `crate::serve`'s. This module only parses and shows.

use std::fmt;
use std::path::PathBuf;

/// The blob store's location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StorageLocation {
    /// A folder on this machine (created if absent), locked by one `vodup serve` at a time.
    File(PathBuf),
    /// A bucket of an S3-compatible store, and a key prefix inside it (no leading or trailing `/`, or
    /// empty), which several nodes may share.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key prefix.
        prefix: String,
    },
}

impl StorageLocation {
    /// Parses a `--storage` value.
    pub fn parse(text: &str) -> Result<Self, String> {
        if let Some(path) = text.strip_prefix("file://") {
            if path.is_empty() {
                return Err("file:// needs a folder path, as in file:///var/lib/vodup/store".into());
            }
            return Ok(Self::File(PathBuf::from(path)));
        }
        if let Some(rest) = text.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            // S3's own rule for bucket names (3-63 of a-z 0-9 . -, a letter or digit at each end); a
            // name outside it would only fail later with a less helpful message from the store.
            let edges_ok = bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
                && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
            if !(3..=63).contains(&bucket.len())
                || !edges_ok
                || !bucket
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            {
                return Err(format!(
                    "{bucket:?} is not an S3 bucket name (3-63 characters of a-z, 0-9, `-` and `.`); write \
                     s3://BUCKET or s3://BUCKET/PREFIX"
                ));
            }
            let prefix = prefix.trim_matches('/');
            if !prefix.is_empty()
                && prefix.split('/').any(|part| part.is_empty() || part == "." || part == "..")
            {
                return Err(format!(
                    "the key prefix {prefix:?} has an empty, `.` or `..` segment; write s3://BUCKET/some/prefix"
                ));
            }
            return Ok(Self::S3 { bucket: bucket.to_owned(), prefix: prefix.to_owned() });
        }
        let scheme = text.split_once("://").map_or("no scheme", |(scheme, _)| scheme);
        Err(format!(
            "the storage URL must start with file:// or s3:// (it has {scheme:?}), as in \
             file:///var/lib/vodup/store or s3://BUCKET/PREFIX"
        ))
    }

    /// Whether the blobs live on another machine (nothing of them is written on local disk).
    pub fn is_remote(&self) -> bool {
        matches!(self, Self::S3 { .. })
    }
}

impl fmt::Display for StorageLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path) => write!(f, "file://{}", path.display()),
            Self::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            Self::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_and_s3_urls_parse_and_show_as_given() {
        assert_eq!(
            StorageLocation::parse("file:///var/store").unwrap(),
            StorageLocation::File("/var/store".into())
        );
        let s3 = StorageLocation::parse("s3://media-bucket/vodup/blobs/").unwrap();
        assert_eq!(s3, StorageLocation::S3 { bucket: "media-bucket".into(), prefix: "vodup/blobs".into() });
        assert_eq!(s3.to_string(), "s3://media-bucket/vodup/blobs");
        assert_eq!(StorageLocation::parse("s3://b.example").unwrap().to_string(), "s3://b.example");
        assert!(s3.is_remote() && !StorageLocation::File("/x".into()).is_remote());
    }

    #[test]
    fn bad_urls_say_what_to_write() {
        assert!(StorageLocation::parse("file://").unwrap_err().contains("folder path"));
        assert!(StorageLocation::parse("s3://").unwrap_err().contains("bucket name"));
        assert!(StorageLocation::parse("s3://Bad_Bucket").unwrap_err().contains("bucket name"));
        assert!(StorageLocation::parse("s3://-bucket").unwrap_err().contains("bucket name"));
        assert!(StorageLocation::parse("s3://bucket/a//b").unwrap_err().contains("segment"));
        assert!(StorageLocation::parse("s3://bucket/a/../b").unwrap_err().contains("segment"));
        assert!(StorageLocation::parse("gs://bucket").unwrap_err().contains("\"gs\""));
        assert!(StorageLocation::parse("/var/store").unwrap_err().contains("no scheme"));
    }
}

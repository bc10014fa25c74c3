//! Long-lived AccessKeys, as `vodup keys create|list|revoke` manages them: ids and secrets in the shapes
//! Alibaba users know (`LTAI…`, 30 characters), stored in the catalogue (a 0600 file for SQLite), usable
//! at once by a running server.

use std::time::SystemTime;

use rand::RngExt as _;
use vodup_proto::Secret;

use crate::meta::{AccessKeyRecord, MetaError, MetaStore};

const ALPHANUMERIC: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random_text(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len).map(|_| char::from(ALPHANUMERIC[rng.random_range(0..ALPHANUMERIC.len())])).collect()
}

/// Creates and stores a new key.
pub async fn create_key(
    meta: &dyn MetaStore,
    description: &str,
    now: SystemTime,
) -> Result<AccessKeyRecord, MetaError> {
    let record = AccessKeyRecord {
        id: format!("LTAI{}", random_text(20)),
        secret: Secret::new(random_text(30)),
        description: description.to_owned(),
        created_at: now,
        revoked_at: None,
    };
    meta.create_key(&record).await?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    #[test]
    fn random_text_is_alphanumeric_of_the_asked_length() {
        let text = super::random_text(30);
        assert_eq!(text.len(), 30);
        assert!(text.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}

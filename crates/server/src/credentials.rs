//! The in-memory views of credentials that keep authentication off the database on the hot path
//! (vod-api.md §12.2): a short-lived cache of long-lived key secrets and the revocation set (revoked
//! keys, deleted media) refreshed in the background. VOD nonces live in the catalogue (a replay after a
//! restart is still a replay); this module only digests them.
//!
//! The VOD plane always reads a key fresh (revocation takes effect at once there); the data plane uses
//! the cache and the set, so revocation reaches UploadPart within one refresh interval.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

use crate::meta::{AccessKeyRecord, MetaError, MetaStore};

/// How long a key read from the database is trusted by the data plane.
const KEY_TTL: Duration = Duration::from_secs(5);

/// Cached long-lived keys. Unknown ids are never cached, so a key created while the server runs works
/// at once.
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (AccessKeyRecord, Instant)>>,
}

impl KeyCache {
    /// The key, from the cache if fresh enough, else from the store.
    pub async fn get(&self, meta: &dyn MetaStore, id: &str) -> Result<Option<AccessKeyRecord>, MetaError> {
        if let Some((record, at)) = self.entries.lock().expect("key cache lock").get(id)
            && at.elapsed() < KEY_TTL
        {
            return Ok(Some(record.clone()));
        }
        self.fresh(meta, id).await
    }

    /// The key read from the store now (and cached).
    pub async fn fresh(&self, meta: &dyn MetaStore, id: &str) -> Result<Option<AccessKeyRecord>, MetaError> {
        let record = meta.get_key(id).await?;
        let mut entries = self.entries.lock().expect("key cache lock");
        match &record {
            Some(record) => {
                entries.insert(id.to_owned(), (record.clone(), Instant::now()));
            }
            None => {
                entries.remove(id);
            }
        }
        Ok(record)
    }
}

/// What the catalogue keeps of a VOD `SignatureNonce` (`CredentialRepo::record_nonce`): SHA-256 of the
/// length-prefixed key id and the nonce, cut to 128 bits (collision-free in practice), so a long nonce
/// costs no more than a short one.
pub fn nonce_digest(access_key_id: &str, nonce: &str) -> [u8; 16] {
    use sha2::Digest as _;
    let mut hasher = sha2::Sha256::new();
    hasher.update((access_key_id.len() as u64).to_be_bytes());
    hasher.update(access_key_id.as_bytes());
    hasher.update(nonce.as_bytes());
    let digest = hasher.finalize();
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

/// Revoked keys and deleted media, as of the last refresh.
#[derive(Debug)]
pub struct RevocationSet {
    interval: Duration,
    inner: Mutex<RevocationState>,
}

#[derive(Debug)]
struct RevocationState {
    revoked_keys: HashSet<String>,
    deleted_media: HashSet<String>,
    last_success: Instant,
}

impl RevocationSet {
    /// A set refreshed every `interval`.
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            inner: Mutex::new(RevocationState {
                revoked_keys: HashSet::new(),
                deleted_media: HashSet::new(),
                last_success: Instant::now(),
            }),
        }
    }

    /// Reloads from the store: keys revoked at any time, media deleted within `horizon` (no credential
    /// lives longer).
    pub async fn refresh(
        &self,
        meta: &dyn MetaStore,
        now: SystemTime,
        horizon: Duration,
    ) -> Result<(), MetaError> {
        let since = now.checked_sub(horizon).unwrap_or(SystemTime::UNIX_EPOCH);
        let fresh = meta.revocations(since).await?;
        let mut state = self.inner.lock().expect("revocation lock");
        state.revoked_keys = fresh.revoked_keys.into_iter().collect();
        state.deleted_media = fresh.deleted_media.into_iter().collect();
        state.last_success = Instant::now();
        Ok(())
    }

    /// Whether the set is current enough to rely on: nodes fail closed after three missed refreshes.
    pub fn is_current(&self) -> bool {
        self.inner.lock().expect("revocation lock").last_success.elapsed() < self.interval * 3
    }

    /// Whether a long-lived key is revoked.
    pub fn is_key_revoked(&self, id: &str) -> bool {
        self.inner.lock().expect("revocation lock").revoked_keys.contains(id)
    }

    /// Whether a media item is deleted.
    pub fn is_media_deleted(&self, id: &str) -> bool {
        self.inner.lock().expect("revocation lock").deleted_media.contains(id)
    }

    /// Applies a revocation made by this node at once, before the next refresh.
    pub fn note_key_revoked(&self, id: &str) {
        self.inner.lock().expect("revocation lock").revoked_keys.insert(id.to_owned());
    }

    /// Applies a deletion made by this node at once.
    pub fn note_media_deleted(&self, id: &str) {
        self.inner.lock().expect("revocation lock").deleted_media.insert(id.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nonce_digests_tell_keys_and_nonces_apart() {
        let digest = nonce_digest("ak", "n1");
        assert_eq!(digest, nonce_digest("ak", "n1"));
        assert_ne!(digest, nonce_digest("other", "n1"));
        assert_ne!(digest, nonce_digest("ak", "n2"));
        // The key id is length-prefixed, so moving a byte across the boundary is another digest.
        assert_ne!(nonce_digest("ak1", "n"), nonce_digest("ak", "1n"));
    }

    #[test]
    fn revocation_set_fails_closed_when_stale() {
        let set = RevocationSet::new(Duration::from_millis(10));
        assert!(set.is_current());
        std::thread::sleep(Duration::from_millis(40));
        assert!(!set.is_current());
        set.note_media_deleted("m");
        assert!(set.is_media_deleted("m") && !set.is_media_deleted("n"));
    }
}

//! Request ids: 24 upper-case hex characters, the shape OSS uses (`x-oss-request-id`); the VOD plane
//! uses the same ids so one grep finds a request in the logs whichever plane served it.

use rand::RngExt as _;

/// A fresh random request id.
pub fn new_request_id() -> String {
    let bytes: [u8; 12] = rand::rng().random();
    hex::encode_upper(bytes)
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_are_24_upper_hex() {
        let id = super::new_request_id();
        assert_eq!(id.len(), 24);
        assert!(id.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
        assert_ne!(id, super::new_request_id());
    }
}

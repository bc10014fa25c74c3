//! The percent-encodings the signatures are computed over, and form-style decoding of what arrives.
//!
//! Alibaba's signatures all use the RFC 3986 rule: keep `A-Z a-z 0-9 - _ . ~`, encode every other UTF-8
//! byte as `%XX` with upper-case hex. OSS V4's canonical URI keeps `/` as well. Incoming queries and form
//! bodies are decoded with form rules (`+` is a space), because the tea client sends spaces as `+` while
//! it signs them as `%20` (vod-api.md §1).

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};

/// Every byte except the RFC 3986 unreserved characters.
const RFC3986: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Like [`RFC3986`] but keeping `/`, for paths.
const RFC3986_PATH: &AsciiSet = &RFC3986.remove(b'/');

/// Percent-encodes every byte but `A-Za-z0-9-_.~` (space becomes `%20`, `/` becomes `%2F`).
pub fn percent_encode(text: &str) -> String {
    utf8_percent_encode(text, RFC3986).to_string()
}

/// Percent-encodes a path: as [`percent_encode`] but `/` is kept.
pub fn percent_encode_path(text: &str) -> String {
    utf8_percent_encode(text, RFC3986_PATH).to_string()
}

/// Decodes `%XX` escapes (no `+` rule), as for a URL path. Invalid UTF-8 is an error, since object
/// keys and parameters must be UTF-8.
pub fn percent_decode(text: &str) -> Result<String, std::str::Utf8Error> {
    percent_decode_str(text).decode_utf8().map(std::borrow::Cow::into_owned)
}

/// Decodes an `application/x-www-form-urlencoded` string (a URL query or a form body) into ordered
/// pairs: `+` is a space, `%XX` is a UTF-8 byte, a pair without `=` has an empty value.
pub fn form_decode(text: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(text.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

/// Encodes pairs as a query string with [`percent_encode`] on names and values (`k=v&k2=v2`). Pairs keep
/// their order. This is how the SDK writes the query it signs, so what is sent is what was signed.
pub fn query_encode<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(&percent_encode(k.as_ref()));
        out.push('=');
        out.push_str(&percent_encode(v.as_ref()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encode_follows_rfc3986() {
        assert_eq!(percent_encode("a b+c*~/é"), "a%20b%2Bc%2A~%2F%C3%A9");
        assert_eq!(percent_encode_path("sv/a b.mp4"), "sv/a%20b.mp4");
    }

    #[test]
    fn form_decode_turns_plus_into_space() {
        assert_eq!(
            form_decode("FileName=a+b.mp4&uploads&x=%2B"),
            vec![
                ("FileName".to_owned(), "a b.mp4".to_owned()),
                ("uploads".to_owned(), String::new()),
                ("x".to_owned(), "+".to_owned())
            ]
        );
    }

    #[test]
    fn path_decoding_keeps_plus() {
        assert_eq!(percent_decode("video%20file+1%2F.mp4").unwrap(), "video file+1/.mp4");
        assert!(percent_decode("%FF").is_err());
    }
}

//! An `https://` URL aimed at a port that speaks plain HTTP (`--endpoint https://127.0.0.1:8080` for a
//! `vodup serve` without TLS). The TLS handshake fails with rustls's "received corrupt message of type
//! InvalidContentType": the first bytes back were `HTTP/1.1 400 …`, not a TLS record. Retrying cannot
//! help and the message says nothing useful, so a send that failed that way is checked by asking the
//! same host and port over plain HTTP; when an HTTP answer comes back, the error says to use `http://`
//! and is not retried.
//!
//! This module owns only that diagnosis; every other failed send stays a retryable network error.

use std::time::Duration;

use reqwest::Url;

use crate::error::{Error, ErrorKind, Retry, network_error};

/// How long the plain-HTTP check may take: it runs only after a handshake already failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The error for a request of `operation` that got no answer. A TLS failure against a plain-HTTP port
/// becomes a permanent error of `kind` (whose fault a wrong URL is: the caller's input, or the service's
/// answer that handed it out); anything else is a retryable network error.
pub(crate) async fn send_failed(
    http: &reqwest::Client,
    operation: &'static str,
    error: &reqwest::Error,
    kind: ErrorKind,
) -> Error {
    let plain = match error.url() {
        Some(url) if url.scheme() == "https" && looks_like_plain_http(error) => plain_url(url),
        _ => None,
    };
    if let Some(plain) = plain
        && http.get(plain.clone()).timeout(CHECK_TIMEOUT).send().await.is_ok()
    {
        let address = plain.as_str().trim_end_matches('/').to_owned();
        return Error::new(
            kind,
            operation,
            format!("{} answers in plain HTTP, not HTTPS", address.trim_start_matches("http://")),
        )
        .with_retry(Retry::Permanent)
        .with_hint(format!("the server speaks plain HTTP: use {address} instead of https://"));
    }
    network_error(operation, error)
}

/// rustls's error for a record whose content type is not TLS's (an `H` from `HTTP/1.1`).
fn looks_like_plain_http(error: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(inner) = source {
        if inner.to_string().contains("InvalidContentType") {
            return true;
        }
        source = inner.source();
    }
    false
}

/// `https://host:port/anything` → `http://host:port/` (the port kept as it was, 443 included).
fn plain_url(url: &Url) -> Option<Url> {
    let host = url.host_str()?;
    let port = url.port_or_known_default()?;
    let host =
        if host.contains(':') && !host.starts_with('[') { format!("[{host}]") } else { host.to_owned() };
    Url::parse(&format!("http://{host}:{port}/")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_url_keeps_host_and_port() {
        let url = Url::parse("https://127.0.0.1:8080/?Action=x").unwrap();
        assert_eq!(plain_url(&url).unwrap().as_str(), "http://127.0.0.1:8080/");
        let url = Url::parse("https://vod.example/").unwrap();
        assert_eq!(plain_url(&url).unwrap().as_str(), "http://vod.example:443/");
        let url = Url::parse("https://[::1]:9000/a").unwrap();
        assert_eq!(plain_url(&url).unwrap().as_str(), "http://[::1]:9000/");
    }
}

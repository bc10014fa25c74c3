//! Refused uploads must be readable by clients that send their whole body before they read the answer
//! (Node.js: ali-oss). The data plane reads and discards what a refused request still had to send, up to
//! `DRAIN_LIMIT`, before it answers; without that the connection was closed on unread bytes, the kernel
//! reset it, and the client saw a broken pipe instead of the 403. A raw TCP client here sends every byte
//! of a 20 MiB body in chunks, as a slow client would, and must then read the whole OSS error, on a
//! connection that still serves the next request. Bodies that are not coming (announced over the limit,
//! or held back for `100 Continue`) must not be waited for.

use std::time::Duration;

use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use vodup_server::data::DRAIN_LIMIT;
use vodup_server::proto::Secret;
use vodup_server::proto::encoding::percent_encode_path;
use vodup_testkit::{OssCredential, TestServer};

use crate::support::{RawResponse, bytes, create_video, initiate, put, read_response, v1_headers};

const BODY: usize = 20 * 1024 * 1024;
const CHUNK: usize = 256 * 1024;

/// The request head for `target` with `headers` (which carry their own Content-Length), keep-alive.
fn head(server: &TestServer, method: &str, target: &str, headers: &[(String, String)]) -> String {
    let host = server.oss_url.strip_prefix("http://").expect("http URL");
    let mut head = format!("{method} {target} HTTP/1.1\r\nhost: {host}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head + "\r\n"
}

/// Sends `head` and then `len` bytes in chunks with a pause between them; an error means the server
/// closed the connection on the client while it was still sending.
async fn send_slowly(stream: &mut TcpStream, head: &str, len: usize) -> std::io::Result<()> {
    stream.write_all(head.as_bytes()).await?;
    let chunk = vec![b'v'; CHUNK];
    let mut left = len;
    while left > 0 {
        let n = left.min(CHUNK);
        stream.write_all(&chunk[..n]).await?;
        left -= n;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    stream.flush().await
}

async fn read_within(stream: &mut TcpStream, what: &str) -> RawResponse {
    tokio::time::timeout(Duration::from_secs(20), read_response(stream))
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within 20 s"))
}

#[tokio::test]
async fn a_refused_upload_is_read_to_its_end_and_its_refusal_is_readable() {
    let server = TestServer::start().await;
    let mine = create_video(&server, "mine.mp4").await;
    let other = create_video(&server, "other.mp4").await;
    let other_upload = initiate(&server, other.key(), other.sts()).await;
    let existing = "sv/drain/existing.mp4";
    assert_eq!(server.oss(put(existing, server.key_credential(), &bytes(10, 1))).await.status(), 200);
    let OssCredential::V1 { id, token, .. } = mine.sts() else { panic!("V1") };
    let forged = OssCredential::V1 { id, secret: Secret::new("not-the-secret".to_owned()), token };
    let length = ("content-length", BODY.to_string());
    let length = &[(length.0, length.1.as_str())];
    let part_query =
        vec![("partNumber".to_owned(), "1".to_owned()), ("uploadId".to_owned(), other_upload.clone())];

    let cases = [
        (
            "PutObject with a wrong signature (refused by authentication)",
            format!("/{}/{}", server.bucket(), percent_encode_path(mine.key())),
            v1_headers(&server, &forged, "PUT", mine.key(), &[], length),
            403,
            "SignatureDoesNotMatch",
        ),
        (
            "UploadPart with a credential for another object (refused by its scope)",
            format!(
                "/{}/{}?partNumber=1&uploadId={other_upload}",
                server.bucket(),
                percent_encode_path(other.key())
            ),
            v1_headers(&server, &mine.sts(), "PUT", other.key(), &part_query, length),
            403,
            "AccessDenied",
        ),
        (
            "PutObject over an object with x-oss-forbid-overwrite (refused by the handler)",
            format!("/{}/{existing}", server.bucket()),
            v1_headers(
                &server,
                &server.key_credential(),
                "PUT",
                existing,
                &[],
                &[length[0], ("x-oss-forbid-overwrite", "true")],
            ),
            409,
            "FileAlreadyExists",
        ),
    ];
    for (what, target, headers, status, code) in cases {
        let mut stream = TcpStream::connect(server.oss_url.strip_prefix("http://").expect("http URL"))
            .await
            .expect("connect");
        let sent = send_slowly(&mut stream, &head(&server, "PUT", &target, &headers), BODY).await;
        assert!(sent.is_ok(), "{what}: the server closed the connection during the body: {sent:?}");
        let response = read_within(&mut stream, what).await;
        let error = response.oss_error();
        assert_eq!((response.status, error.code.as_str()), (status, code), "{what}");
        assert!(!error.request_id.is_empty(), "{what}: the whole XML error was read");
        assert_ne!(response.header("connection"), Some("close"), "{what}: the body was read to its end");
        // The connection was kept: the next request on it is answered.
        stream.write_all(head(&server, "GET", "/healthz", &[]).as_bytes()).await.expect("second request");
        let next = read_within(&mut stream, what).await;
        assert_eq!((next.status, next.body.as_slice()), (200, b"ok".as_slice()), "{what}: next request");
    }

    // Announced beyond the limit: refused at once, nothing read, the connection closed.
    let over = (DRAIN_LIMIT + 1).to_string();
    let headers = v1_headers(&server, &forged, "PUT", mine.key(), &[], &[("content-length", &over)]);
    let target = format!("/{}/{}", server.bucket(), percent_encode_path(mine.key()));
    let mut stream =
        TcpStream::connect(server.oss_url.strip_prefix("http://").expect("URL")).await.expect("connect");
    stream.write_all(head(&server, "PUT", &target, &headers).as_bytes()).await.expect("head");
    let response = read_within(&mut stream, "a body over the limit").await;
    assert_eq!((response.status, response.oss_error().code.as_str()), (403, "SignatureDoesNotMatch"));
    assert_eq!(response.header("connection"), Some("close"));

    // `Expect: 100-continue`: the client holds its body back, so the refusal comes instead of `100`.
    let headers =
        v1_headers(&server, &forged, "PUT", mine.key(), &[], &[length[0], ("expect", "100-continue")]);
    let mut stream =
        TcpStream::connect(server.oss_url.strip_prefix("http://").expect("URL")).await.expect("connect");
    stream.write_all(head(&server, "PUT", &target, &headers).as_bytes()).await.expect("head");
    let response = read_within(&mut stream, "Expect: 100-continue").await;
    assert_eq!((response.status, response.oss_error().code.as_str()), (403, "SignatureDoesNotMatch"));
    assert_eq!(response.header("connection"), Some("close"));
}

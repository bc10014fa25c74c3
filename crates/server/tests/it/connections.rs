//! The listeners' edges (issue 11, items 3 and 8), over raw TCP: a request with both `Content-Length`
//! and `Transfer-Encoding` is refused on both planes in their own error format, also as the third request
//! of a keep-alive connection whose earlier bodies look like heads; a head that trickles in is cut at
//! the header-read timeout; an idle keep-alive connection is closed at the idle timeout; a client address
//! over its share is closed at once while another address is served; and at the total cap the listener
//! stops accepting (the connection waits, it is not refused) until a place frees.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use vodup_testkit::TestServer;

use crate::support::{
    RawResponse, create_video, read_response, signed_create_query, stored_parts, v1_headers,
};

fn addr(url: &str) -> SocketAddr {
    url.strip_prefix("http://").expect("http URL").parse().expect("address")
}

async fn connect_from(last_octet: u8, target: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().expect("socket");
    socket.bind(SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet)), 0)).expect("bind");
    socket.connect(target).await.expect("connect")
}

/// Sends `head` (without its blank line; `host` is added) and `body`, and reads one response.
async fn exchange(stream: &mut TcpStream, head: &str, body: &[u8]) -> RawResponse {
    stream.write_all(format!("{head}\r\n\r\n").as_bytes()).await.expect("send head");
    stream.write_all(body).await.expect("send body");
    tokio::time::timeout(Duration::from_secs(20), read_response(stream))
        .await
        .expect("a response within 20 s")
}

/// Waits until the server closes `stream` (EOF or reset); panics after `within`.
async fn closed_within(stream: &mut TcpStream, within: Duration) {
    let mut buf = [0u8; 1024];
    let waited = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(waited.is_ok(), "the server kept the connection open for {within:?}");
}

/// Whether the server still holds `stream` open: nothing to read for `for_`.
async fn still_open(stream: &mut TcpStream, for_: Duration) -> bool {
    let mut buf = [0u8; 1];
    tokio::time::timeout(for_, stream.read(&mut buf)).await.is_err()
}

#[tokio::test]
async fn upload_part_with_content_length_and_chunked_is_refused_even_after_head_like_bodies() {
    let server = TestServer::start().await;
    let video = create_video(&server, "framing.mp4").await;
    let credential = video.sts();
    let host = addr(&server.oss_url);
    let target = |q: &str| format!("/{}/{}?{q}", server.bucket(), video.key());
    let signed_head = |method: &str, query: &[(String, String)], q: &str, framing: &str| {
        let mut head = format!("{method} {} HTTP/1.1\r\nhost: {host}", target(q));
        for (name, value) in v1_headers(&server, &credential, method, video.key(), query, &[]) {
            head.push_str(&format!("\r\n{name}: {value}"));
        }
        head.push_str(framing);
        head
    };
    let init = signed_head("POST", &[("uploads".into(), String::new())], "uploads", "\r\ncontent-length: 0");
    let mut stream = TcpStream::connect(host).await.expect("connect");
    let initiated = exchange(&mut stream, &init, b"").await;
    assert_eq!(initiated.status, 200, "{}", String::from_utf8_lossy(&initiated.body));
    let text = String::from_utf8(initiated.body).unwrap();
    let start = text.find("<UploadId>").unwrap() + "<UploadId>".len();
    let upload_id = text[start..start + text[start..].find('<').unwrap()].to_owned();
    let part =
        |n: u32| vec![("partNumber".to_owned(), n.to_string()), ("uploadId".to_owned(), upload_id.clone())];
    let q = |n: u32| format!("partNumber={n}&uploadId={upload_id}");

    // A body that reads like a smuggled head, framed by its Content-Length: stored as bytes.
    let lookalike = b"PUT / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
    let head = signed_head("PUT", &part(1), &q(1), &format!("\r\ncontent-length: {}", lookalike.len()));
    assert_eq!(exchange(&mut stream, &head, lookalike).await.status, 200, "part 1 (Content-Length)");
    let head = signed_head("PUT", &part(2), &q(2), "\r\ntransfer-encoding: chunked");
    let chunked = b"4;ext=1\r\nPUT \r\n5\r\n/ HTT\r\n0\r\nx-trailer: 1\r\n\r\n";
    assert_eq!(exchange(&mut stream, &head, chunked).await.status, 200, "part 2 (chunked)");

    for (number, framing) in [
        (3, "\r\ncontent-length: 5\r\ntransfer-encoding: chunked"),
        (4, "\r\nTransfer-Encoding: chunked\r\nContent-Length: 5"),
    ] {
        // hyper closes a connection after such a request, so each gets its own.
        let mut fresh = TcpStream::connect(host).await.expect("connect");
        let stream = if number == 3 { &mut stream } else { &mut fresh };
        let head = signed_head("PUT", &part(number), &q(number), framing);
        let refused = exchange(stream, &head, b"5\r\nhello\r\n0\r\n\r\n").await;
        assert_eq!(refused.status, 400, "part {number}: {}", String::from_utf8_lossy(&refused.body));
        assert_eq!(refused.oss_error().code, "InvalidRequest", "part {number}");
        assert_eq!(refused.header("server"), Some("AliyunOSS"));
        closed_within(stream, Duration::from_secs(5)).await;
    }
    assert_eq!(stored_parts(&server.state, &upload_id).await, [1, 2], "the refused parts were not stored");
    assert_eq!(
        server.metric("vodup_requests_ambiguous_framing_total{plane=\"oss\"}").await,
        2.0,
        "counted in /metrics"
    );
}

#[tokio::test]
async fn a_vod_call_with_content_length_and_chunked_is_refused_as_vod_json() {
    let server = TestServer::start().await;
    let query = signed_create_query(&server);
    let host = addr(&server.vod_url);
    let mut stream = TcpStream::connect(host).await.expect("connect");
    let head =
        format!("POST /?{query} HTTP/1.1\r\nhost: {host}\r\ncontent-length: 0\r\ntransfer-encoding: chunked");
    let refused = exchange(&mut stream, &head, b"0\r\n\r\n").await;
    assert_eq!(refused.status, 400, "{}", String::from_utf8_lossy(&refused.body));
    let body: serde_json::Value = serde_json::from_slice(&refused.body).expect("VOD JSON");
    assert_eq!(body["Code"], "InvalidParameter", "{body}");
    assert!(body["RequestId"].as_str().is_some_and(|id| !id.is_empty()), "{body}");
}

fn short_limits(config: &mut vodup_server::config::Config) {
    config.http.header_read_timeout_secs = Some(1);
    config.http.idle_timeout_secs = Some(2);
    config.http.max_connections = Some(4);
    config.http.max_connections_per_client = Some(2);
}

#[tokio::test]
async fn slow_heads_and_idle_connections_are_closed_at_their_timeouts() {
    let server = TestServer::start_with(short_limits).await;
    for target in [addr(&server.vod_url), addr(&server.oss_url)] {
        // A head sent a byte every 200 ms never completes: cut at the 1 s header-read timeout.
        let mut slow = connect_from(2, target).await;
        let dribble = async {
            for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" {
                if slow.write_all(&[*byte]).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(4), dribble).await.ok();
        closed_within(&mut slow, Duration::from_secs(1)).await;

        // A connection that never sends anything is cut at the header-read timeout too.
        let mut silent = connect_from(3, target).await;
        assert!(still_open(&mut silent, Duration::from_millis(500)).await, "closed before its timeout");
        closed_within(&mut silent, Duration::from_secs(3)).await;

        // After an answer, a keep-alive connection may idle for 2 s, not forever.
        let mut idle = connect_from(3, target).await;
        let answered = exchange(&mut idle, &format!("GET /healthz HTTP/1.1\r\nhost: {target}"), b"").await;
        assert_eq!(answered.status, 200);
        assert!(still_open(&mut idle, Duration::from_millis(1200)).await, "closed before the idle timeout");
        closed_within(&mut idle, Duration::from_secs(4)).await;
    }
    assert!(server.metric("vodup_connections_header_timeout_total").await >= 4.0);
    assert!(server.metric("vodup_connections_idle_timeout_total").await >= 2.0);
}

#[tokio::test]
async fn one_address_gets_its_share_and_a_full_listener_makes_connections_wait() {
    let server = TestServer::start_with(|config| {
        short_limits(config);
        config.http.idle_timeout_secs = Some(30);
        config.http.header_read_timeout_secs = Some(30);
    })
    .await;
    let target = addr(&server.oss_url);
    let healthz = format!("GET /healthz HTTP/1.1\r\nhost: {target}");
    let mut mine = Vec::new();
    for _ in 0..2 {
        let mut stream = connect_from(2, target).await;
        assert_eq!(exchange(&mut stream, &healthz, b"").await.status, 200);
        mine.push(stream);
    }
    // A third from the same address is closed at once; another address is served.
    let mut third = connect_from(2, target).await;
    closed_within(&mut third, Duration::from_secs(5)).await;
    let mut other = connect_from(3, target).await;
    assert_eq!(exchange(&mut other, &healthz, b"").await.status, 200);
    assert_eq!(server.metric("vodup_connections_refused_per_client_total{plane=\"oss\"}").await, 1.0);

    // The fourth connection fills the cap of 4: the fifth waits in the backlog, unanswered but not
    // closed, until one of the four goes.
    let mut fourth = connect_from(4, target).await;
    assert_eq!(exchange(&mut fourth, &healthz, b"").await.status, 200);
    let mut waiting = connect_from(5, target).await;
    waiting.write_all(format!("{healthz}\r\n\r\n").as_bytes()).await.expect("send");
    assert!(still_open(&mut waiting, Duration::from_secs(1)).await, "answered or closed over the cap");
    drop(mine.pop());
    let answered = tokio::time::timeout(Duration::from_secs(10), read_response(&mut waiting)).await;
    assert_eq!(answered.expect("answered once a place was free").status, 200);
    assert!(server.metric("vodup_connections_cap_reached_total{plane=\"oss\"}").await >= 1.0);
}

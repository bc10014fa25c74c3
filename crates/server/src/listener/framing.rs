//! Follows the request framing of one HTTP/1.1 connection in the raw bytes read from the socket, to spot
//! a request head carrying both `Content-Length` and `Transfer-Encoding` (issue 11, item 8).
//!
//! hyper lets `Transfer-Encoding: chunked` win and removes `Content-Length` from the `HeaderMap` before
//! the service runs (and closes the connection after the answer), so a handler cannot tell such a
//! request from a plain chunked one. Behind a proxy that trusted the `Content-Length`, that is how
//! requests are smuggled; the service must refuse it, so the check happens here, where both are still
//! visible. To find where each head starts, the tracker skips bodies the way hyper's decoder does: heads
//! are parsed with `httparse` (hyper's own parser, same settings), `Content-Length` with hyper's digit
//! rules, chunked bodies with the same state machine as `hyper::proto::h1::decode`. Where hyper would
//! fail the connection, the tracker stops ([`Framing::is_stopped`]): hyper closes it anyway, and a
//! request after that point is refused. It never changes a byte; it only watches.

/// hyper's defaults: at most 100 headers, and its read buffer (8 KiB + 100 × 4 KiB) bounds a head.
const MAX_HEADERS: usize = 100;
const MAX_HEAD_BYTES: usize = 8192 + 4096 * 100;
/// Twice hyper's limits on chunk extensions and trailers (`decode.rs`, 16 KiB each): stopping later than
/// hyper is harmless (it has closed the connection), stopping earlier would refuse good requests.
const MAX_EXTENSION_BYTES: u64 = 32 * 1024;
const MAX_TRAILER_BYTES: usize = 32 * 1024;

/// What the tracker decided about one request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Framed by one header (or none): serve it.
    Clear,
    /// Both `Content-Length` and `Transfer-Encoding`: refuse it.
    Ambiguous,
}

/// Something the connection's watcher needs to know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The first byte of a head arrived (the header-read timeout starts).
    HeadStarted,
    /// A head was read completely.
    Head(Verdict),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    Start,
    Size(u64),
    SizeLws(u64),
    Extension(u64, u64),
    SizeLf(u64),
    Data(u64),
    DataCr,
    DataLf,
    Trailer(usize),
    TrailerLf(usize),
    EndCr(usize),
    EndLf,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    Length(u64),
    Chunked(Chunk),
    /// hyper fails or closes the connection from here on.
    Stopped,
}

/// The framing tracker of one connection.
#[derive(Debug)]
pub struct Framing {
    state: State,
    head: Vec<u8>,
}

impl Default for Framing {
    fn default() -> Self {
        Self { state: State::Head, head: Vec::new() }
    }
}

impl Framing {
    /// Feeds bytes as they were read from the socket, in order; `event` hears about heads.
    pub fn feed(&mut self, mut bytes: &[u8], event: &mut impl FnMut(Event)) {
        while !bytes.is_empty() {
            match self.state {
                State::Stopped => return,
                State::Head => {
                    if self.head.is_empty() {
                        event(Event::HeadStarted);
                    }
                    let used = self.read_head(bytes, event);
                    bytes = &bytes[used..];
                }
                State::Length(left) => {
                    let n = left.min(bytes.len() as u64);
                    bytes = &bytes[n as usize..];
                    self.state = if n == left { State::Head } else { State::Length(left - n) };
                }
                State::Chunked(Chunk::Data(left)) => {
                    let n = left.min(bytes.len() as u64);
                    bytes = &bytes[n as usize..];
                    let next = if n == left { Chunk::DataCr } else { Chunk::Data(left - n) };
                    self.state = State::Chunked(next);
                }
                State::Chunked(chunk) => {
                    self.state = match step(chunk, bytes[0]) {
                        Some(Chunk::EndLf) if chunk == Chunk::EndLf => State::Head,
                        Some(next) => State::Chunked(next),
                        None => State::Stopped,
                    };
                    bytes = &bytes[1..];
                }
            }
        }
    }

    /// Takes bytes into the head until it is complete; returns how many were used.
    fn read_head(&mut self, bytes: &[u8], event: &mut impl FnMut(Event)) -> usize {
        let before = self.head.len();
        self.head.extend_from_slice(bytes);
        // Parse only when a blank line may have arrived, so a head sent byte by byte is not re-parsed
        // at every byte.
        let from = before.saturating_sub(3);
        let blank_line = self.head[from..].windows(2).any(|w| w == b"\n\n" || w == b"\n\r");
        if !blank_line {
            if self.head.len() > MAX_HEAD_BYTES {
                self.stop();
            }
            return bytes.len();
        }
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&self.head) {
            Ok(httparse::Status::Complete(len)) if len <= MAX_HEAD_BYTES && len >= before => {
                let (verdict, next) = judge(&request);
                event(Event::Head(verdict));
                self.state = next;
                self.head = Vec::new();
                len - before
            }
            Ok(httparse::Status::Partial) if self.head.len() <= MAX_HEAD_BYTES => bytes.len(),
            _ => {
                self.stop();
                bytes.len()
            }
        }
    }

    fn stop(&mut self) {
        self.state = State::Stopped;
        self.head = Vec::new();
    }

    /// Whether the tracker has stopped following (where hyper fails or closes the connection).
    pub fn is_stopped(&self) -> bool {
        self.state == State::Stopped
    }
}

/// The verdict on a parsed head and how its body is framed, by hyper's rules (`role.rs`,
/// `Server::parse`): a `Content-Length` after a `Transfer-Encoding` is not even parsed, an invalid or a
/// second different one fails, the last `Transfer-Encoding` must end in `chunked`, and HTTP/1.0 may not
/// have one.
fn judge(request: &httparse::Request<'_, '_>) -> (Verdict, State) {
    let http_11 = request.version == Some(1);
    let (mut length, mut has_length, mut chunked) = (None::<u64>, false, None::<bool>);
    for header in request.headers.iter() {
        if header.name.eq_ignore_ascii_case("transfer-encoding") {
            if !http_11 {
                return (Verdict::Clear, State::Stopped);
            }
            chunked = Some(is_chunked(header.value));
        } else if header.name.eq_ignore_ascii_case("content-length") {
            has_length = true;
            if chunked.is_some() {
                continue;
            }
            match (digits(header.value), length) {
                (Some(n), None) if n <= u64::MAX - 2 => length = Some(n),
                (Some(n), Some(previous)) if n == previous => {}
                _ => return (Verdict::Clear, State::Stopped),
            }
        }
    }
    match (chunked, length) {
        (Some(false), _) => (Verdict::Clear, State::Stopped),
        // hyper answers it and then closes the connection, so nothing after it is read.
        (Some(true), _) if has_length => (Verdict::Ambiguous, State::Stopped),
        (Some(true), _) => (Verdict::Clear, State::Chunked(Chunk::Start)),
        (None, Some(n)) if n > 0 => (Verdict::Clear, State::Length(n)),
        (None, _) => (Verdict::Clear, State::Head),
    }
}

/// hyper's `is_chunked_`: the last comma-separated coding is `chunked`.
fn is_chunked(value: &[u8]) -> bool {
    std::str::from_utf8(value)
        .ok()
        .and_then(|s| s.rsplit(',').next())
        .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"))
}

/// hyper's `from_digits`: ASCII digits only, no sign, no spaces, no overflow.
fn digits(value: &[u8]) -> Option<u64> {
    if value.is_empty() {
        return None;
    }
    value.iter().try_fold(0u64, |n, &b| {
        if b.is_ascii_digit() { n.checked_mul(10)?.checked_add(u64::from(b - b'0')) } else { None }
    })
}

fn hex(b: u8) -> Option<u64> {
    (b as char).to_digit(16).map(u64::from)
}

/// One byte of chunked framing outside chunk data, as hyper's `ChunkedState` reads it; `None` where
/// hyper fails the body. `EndLf` followed by `\n` ends the body (the caller turns that into `Head`).
fn step(chunk: Chunk, b: u8) -> Option<Chunk> {
    let grow = |size: u64, b: u8| size.checked_mul(16)?.checked_add(hex(b)?);
    Some(match (chunk, b) {
        (Chunk::Start, b) => Chunk::Size(hex(b)?),
        (Chunk::Size(size), b'\t' | b' ') => Chunk::SizeLws(size),
        (Chunk::Size(size) | Chunk::SizeLws(size), b';') => Chunk::Extension(size, 0),
        (Chunk::Size(size) | Chunk::SizeLws(size) | Chunk::Extension(size, _), b'\r') => Chunk::SizeLf(size),
        (Chunk::Size(size), b) => Chunk::Size(grow(size, b)?),
        (Chunk::SizeLws(size), b'\t' | b' ') => Chunk::SizeLws(size),
        (Chunk::Extension(_, _), b'\n') => return None,
        (Chunk::Extension(size, n), _) => {
            if n + 1 >= MAX_EXTENSION_BYTES {
                return None;
            }
            Chunk::Extension(size, n + 1)
        }
        (Chunk::SizeLf(0), b'\n') => Chunk::EndCr(0),
        (Chunk::SizeLf(size), b'\n') => Chunk::Data(size),
        (Chunk::DataCr, b'\r') => Chunk::DataLf,
        (Chunk::DataLf, b'\n') => Chunk::Start,
        (Chunk::Trailer(len), b) => {
            if len + 1 > MAX_TRAILER_BYTES {
                return None;
            }
            if b == b'\r' { Chunk::TrailerLf(len + 1) } else { Chunk::Trailer(len + 1) }
        }
        (Chunk::TrailerLf(len), b'\n') => {
            if len + 1 > MAX_TRAILER_BYTES {
                return None;
            }
            Chunk::EndCr(len + 1)
        }
        (Chunk::EndCr(_), b'\r') => Chunk::EndLf,
        (Chunk::EndCr(len), _) => {
            if len + 1 > MAX_TRAILER_BYTES {
                return None;
            }
            Chunk::Trailer(len + 1)
        }
        (Chunk::EndLf, b'\n') => Chunk::EndLf,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `stream` in pieces of `piece` bytes and returns the events.
    fn events(stream: &[u8], piece: usize) -> Vec<Event> {
        let mut framing = Framing::default();
        let mut seen = Vec::new();
        for part in stream.chunks(piece) {
            framing.feed(part, &mut |e| seen.push(e));
        }
        seen
    }

    fn verdicts(stream: &[u8]) -> Vec<Verdict> {
        let whole = events(stream, stream.len().max(1));
        for piece in [1, 2, 3, 7, 64] {
            assert_eq!(events(stream, piece), whole, "piece size {piece}");
        }
        whole
            .into_iter()
            .filter_map(|e| match e {
                Event::Head(v) => Some(v),
                Event::HeadStarted => None,
            })
            .collect()
    }

    #[test]
    fn both_length_headers_are_ambiguous_in_either_order() {
        let te_first =
            b"PUT /o HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        let cl_first =
            b"PUT /o HTTP/1.1\r\nHost: h\r\ncontent-length: 5\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert_eq!(verdicts(te_first), [Verdict::Ambiguous]);
        assert_eq!(verdicts(cl_first), [Verdict::Ambiguous]);
    }

    #[test]
    fn bodies_are_skipped_so_every_head_is_found() {
        let stream = [
            &b"PUT /a HTTP/1.1\r\nContent-Length: 11\r\n\r\nhello\r\n\r\nxx"[..],
            b"PUT /b HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            b"4;name=value\r\nGET \r\n1A \r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\n",
            b"\r\nGET /c HTTP/1.1\r\n\r\n",
            b"PUT /d HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
        ]
        .concat();
        assert_eq!(verdicts(&stream), [Verdict::Clear, Verdict::Clear, Verdict::Clear, Verdict::Ambiguous]);
    }

    #[test]
    fn what_hyper_refuses_stops_the_tracker() {
        for head in [
            &b"PUT / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"[..],
            b"PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"PUT / HTTP/1.1\r\nContent-Length: +5\r\n\r\n",
            b"PUT / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nZ\r\n",
            b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;a\nb\r\n",
            b"BAD HEAD\r\n\r\n",
        ] {
            let mut framing = Framing::default();
            framing.feed(head, &mut |_| {});
            assert!(framing.is_stopped(), "{}", String::from_utf8_lossy(head));
        }
    }

    #[test]
    fn a_head_sent_byte_by_byte_starts_once() {
        let seen = events(b"GET / HTTP/1.1\r\nHost: h\r\n\r\nGET / HTTP/1.1\r\n", 1);
        assert_eq!(seen, [Event::HeadStarted, Event::Head(Verdict::Clear), Event::HeadStarted]);
    }

    #[test]
    fn an_endless_head_stops_at_hyper_s_buffer_size() {
        let mut framing = Framing::default();
        framing.feed(b"GET / HTTP/1.1\r\nX: ", &mut |_| {});
        let filler = vec![b'a'; 4096];
        for _ in 0..=MAX_HEAD_BYTES / filler.len() {
            framing.feed(&filler, &mut |_| {});
        }
        assert!(framing.is_stopped());
        assert!(framing.head.capacity() == 0, "the buffer is released");
    }
}

//! The edge load of issue 11, for the test that proves the service keeps answering under it and for the
//! benchmark that measures what it costs (`bin/edge_bench.rs`): clients that send a request head a byte
//! at a time, hundreds of idle keep-alive sockets, and a flood of anonymous ReportUploadProgress calls,
//! each from its own loopback address (127.0.0.x: Linux routes all of 127/8 to loopback), so a server's
//! per-address caps see them as the separate clients they would be.
//!
//! Every attacker reconnects when the server closes it, as a real one would, and records how long each
//! of its connections lived, so a test can check that the server's timeouts, not the attacker, ended
//! them. Also here: a sampler of a process's open descriptors and resident memory (`/proc/<pid>`).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// What to attack and how hard.
#[derive(Debug, Clone)]
pub struct EdgeLoad {
    /// The listeners to attack (both planes).
    pub targets: Vec<SocketAddr>,
    /// The VOD plane's URL, for the progress flood.
    pub vod_url: String,
    /// Slow-header clients per target.
    pub slow_clients: usize,
    /// Gap between two bytes of a slow client's head.
    pub byte_interval: Duration,
    /// Idle keep-alive sockets per target.
    pub idle_sockets: usize,
    /// Concurrent flooders of ReportUploadProgress.
    pub flooders: usize,
}

impl EdgeLoad {
    /// The load of the issue against a server at `vod` and `oss`: 20 slow clients and 150 idle sockets
    /// per listener (300 in all), 8 flooders.
    pub fn new(vod: SocketAddr, oss: SocketAddr) -> Self {
        Self {
            targets: vec![vod, oss],
            vod_url: format!("http://{vod}"),
            slow_clients: 20,
            byte_interval: Duration::from_millis(500),
            idle_sockets: 150,
            flooders: 8,
        }
    }
}

/// The loopback address slow clients connect from.
pub const SLOW_FROM: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// The loopback address idle sockets connect from.
pub const IDLE_FROM: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
/// The loopback address the flood comes from.
pub const FLOOD_FROM: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 4);

/// What the attackers saw.
#[derive(Debug, Default)]
pub struct EdgeStats {
    /// Slow-header connections the server accepted and later closed.
    pub slow_closed: AtomicU64,
    /// The longest a slow-header connection lived before the server closed it, in ms.
    pub slow_longest_ms: AtomicU64,
    /// Idle sockets that got their answer and were later closed by the server.
    pub idle_closed: AtomicU64,
    /// The longest an idle socket stayed open after its answer before the server closed it, in ms.
    pub idle_longest_ms: AtomicU64,
    /// Connections closed or reset before they got anything (refused by a cap, or out of descriptors).
    pub refused: AtomicU64,
    /// Connections still open when the load stopped (neither closed by the server nor refused).
    pub open_at_stop: AtomicU64,
    /// Progress reports answered (any status).
    pub flood_answered: AtomicU64,
    /// Progress reports that failed at the connection.
    pub flood_failed: AtomicU64,
}

/// The load, running on the current runtime until [`Edge::stop`].
#[derive(Debug)]
pub struct Edge {
    stop: watch::Sender<bool>,
    tasks: JoinSet<()>,
    /// What the attackers saw so far.
    pub stats: Arc<EdgeStats>,
}

impl Edge {
    /// Starts every attacker.
    pub fn start(load: &EdgeLoad) -> Self {
        let (stop, stopped) = watch::channel(false);
        let stats = Arc::new(EdgeStats::default());
        let mut tasks = JoinSet::new();
        for &target in &load.targets {
            for _ in 0..load.slow_clients {
                tasks.spawn(slow_client(target, load.byte_interval, stats.clone(), stopped.clone()));
            }
            for _ in 0..load.idle_sockets {
                tasks.spawn(idle_socket(target, stats.clone(), stopped.clone()));
            }
        }
        let client = reqwest::Client::builder()
            .local_address(IpAddr::V4(FLOOD_FROM))
            .timeout(Duration::from_secs(10))
            .build()
            .expect("flood client");
        for n in 0..load.flooders {
            tasks.spawn(flood(client.clone(), load.vod_url.clone(), n, stats.clone(), stopped.clone()));
        }
        Self { stop, tasks, stats }
    }

    /// Stops every attacker, closing their sockets, and returns what they saw.
    pub async fn stop(mut self) -> Arc<EdgeStats> {
        let _ = self.stop.send(true);
        while self.tasks.join_next().await.is_some() {}
        self.stats
    }
}

async fn connect_from(from: Ipv4Addr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(IpAddr::V4(from), 0))?;
    socket.connect(target).await
}

/// Waits for the stop signal; true when it came.
async fn pause(stopped: &mut watch::Receiver<bool>, gap: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(gap) => false,
        _ = stopped.wait_for(|s| *s) => true,
    }
}

fn record_max(counter: &AtomicU64, since: Instant) {
    counter.fetch_max(u64::try_from(since.elapsed().as_millis()).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// Sends a head that never ends, one byte per `gap`, and reconnects whenever the server closes it.
async fn slow_client(
    target: SocketAddr,
    gap: Duration,
    stats: Arc<EdgeStats>,
    mut stopped: watch::Receiver<bool>,
) {
    let head = format!("GET /healthz HTTP/1.1\r\nHost: {target}\r\nX-Slow: ");
    loop {
        let Ok(mut stream) = connect_from(SLOW_FROM, target).await else {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            if pause(&mut stopped, Duration::from_millis(200)).await {
                return;
            }
            continue;
        };
        let opened = Instant::now();
        let (mut reader, mut writer) = stream.split();
        let mut sent = 0usize;
        let mut buf = [0u8; 256];
        let closed = loop {
            let byte = head.as_bytes().get(sent).copied().unwrap_or(b'a');
            tokio::select! {
                read = reader.read(&mut buf) => match read {
                    // The server answered something (a 408/400) or closed: either way, it ended it.
                    Ok(0) | Err(_) => break true,
                    Ok(_) => {}
                },
                written = async {
                    tokio::time::sleep(gap).await;
                    writer.write_all(&[byte]).await
                } => {
                    if written.is_err() {
                        break true;
                    }
                    sent += 1;
                }
                _ = stopped.wait_for(|s| *s) => break false,
            }
        };
        if !closed {
            stats.open_at_stop.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if sent == 0 {
            // Closed before we could even start: a cap refused it.
            stats.refused.fetch_add(1, Ordering::Relaxed);
        } else {
            stats.slow_closed.fetch_add(1, Ordering::Relaxed);
            record_max(&stats.slow_longest_ms, opened);
        }
        if pause(&mut stopped, Duration::from_millis(100)).await {
            return;
        }
    }
}

/// Makes one keep-alive request, then holds the socket open doing nothing; reconnects when closed.
async fn idle_socket(target: SocketAddr, stats: Arc<EdgeStats>, mut stopped: watch::Receiver<bool>) {
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {target}\r\n\r\n");
    loop {
        let answered = async {
            let mut stream = connect_from(IDLE_FROM, target).await.ok()?;
            stream.write_all(request.as_bytes()).await.ok()?;
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            // /healthz answers "ok": the body ends the response.
            while !got.ends_with(b"\r\n\r\nok") {
                let n = stream.read(&mut buf).await.ok().filter(|&n| n > 0)?;
                got.extend_from_slice(&buf[..n]);
            }
            Some(stream)
        };
        let answered = tokio::select! {
            answered = tokio::time::timeout(Duration::from_secs(30), answered) => answered.ok().flatten(),
            _ = stopped.wait_for(|s| *s) => return,
        };
        let Some(mut stream) = answered else {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            if pause(&mut stopped, Duration::from_millis(200)).await {
                return;
            }
            continue;
        };
        let idle_since = Instant::now();
        let mut buf = [0u8; 64];
        tokio::select! {
            _ = stream.read(&mut buf) => {
                stats.idle_closed.fetch_add(1, Ordering::Relaxed);
                record_max(&stats.idle_longest_ms, idle_since);
            }
            _ = stopped.wait_for(|s| *s) => {
                stats.open_at_stop.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if pause(&mut stopped, Duration::from_millis(100)).await {
            return;
        }
    }
}

/// Anonymous ReportUploadProgress calls as fast as they are answered.
async fn flood(
    client: reqwest::Client,
    vod_url: String,
    n: usize,
    stats: Arc<EdgeStats>,
    mut stopped: watch::Receiver<bool>,
) {
    let url = format!(
        "{vod_url}/?Action=ReportUploadProgress&Version=2017-03-21&Format=JSON&VideoId=edge{n:028x}&Source=edge&DonePartsCount=1"
    );
    loop {
        let sent = tokio::select! {
            sent = client.post(&url).send() => sent,
            _ = stopped.wait_for(|s| *s) => return,
        };
        match sent {
            Ok(response) => {
                let _ = response.bytes().await;
                stats.flood_answered.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                stats.flood_failed.fetch_add(1, Ordering::Relaxed);
                if pause(&mut stopped, Duration::from_millis(50)).await {
                    return;
                }
            }
        }
    }
}

/// Open descriptors of `pid` (entries of `/proc/<pid>/fd`), `None` when it is gone.
pub fn open_descriptors(pid: u32) -> Option<u64> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64)
}

/// Resident memory of `pid` in bytes (`VmRSS`), `None` when it is gone.
pub fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    Some(line.trim().strip_suffix("kB")?.trim().parse::<u64>().ok()? * 1024)
}

/// A thread sampling a process's open descriptors and resident memory every 50 ms, keeping the peaks.
#[derive(Debug)]
pub struct ProcessSampler {
    peak_fds: Arc<AtomicU64>,
    peak_rss: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ProcessSampler {
    /// Starts sampling `pid`.
    pub fn watch(pid: u32) -> Self {
        let (peak_fds, peak_rss, stop) = (Arc::default(), Arc::default(), Arc::new(AtomicBool::new(false)));
        let thread = std::thread::spawn({
            let (peak_fds, peak_rss, stop): (Arc<AtomicU64>, Arc<AtomicU64>, Arc<AtomicBool>) =
                (Arc::clone(&peak_fds), Arc::clone(&peak_rss), stop.clone());
            move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(fds) = open_descriptors(pid) {
                        peak_fds.fetch_max(fds, Ordering::Relaxed);
                    }
                    if let Some(rss) = resident_bytes(pid) {
                        peak_rss.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        });
        Self { peak_fds, peak_rss, stop, thread: Some(thread) }
    }

    /// Stops sampling; returns (peak open descriptors, peak resident bytes).
    pub fn stop(mut self) -> (u64, u64) {
        self.halt();
        (self.peak_fds.load(Ordering::Relaxed), self.peak_rss.load(Ordering::Relaxed))
    }

    fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ProcessSampler {
    fn drop(&mut self) {
        self.halt();
    }
}

//! The progress bar as a person sees it: under a pseudo-terminal (`script`), `vodup upload` draws an
//! indicatif bar on stderr and ends with the result line; piped, it prints the result line only. In a
//! real terminal (tmux, its screen read back): a batch shows every file's outcome once, in the order the
//! files finished, with no old frame left behind; a pipe of unknown size shows bytes and rate but no
//! total or ETA; Ctrl-C leaves a frame that says where it stopped; a resumed upload's rate counts only
//! the bytes this run sends.

use std::path::Path;
use std::time::Duration;

use vodup_testkit::fixtures::write_random_file;
use vodup_testkit::{TestServer, Tmux, have_tmux};

#[tokio::test(flavor = "multi_thread")]
async fn a_terminal_gets_a_progress_bar_and_a_pipe_does_not() {
    if which("script").is_none() {
        vodup_testkit::skip("util-linux `script` is not installed (it provides the pseudo-terminal)");
        return;
    }
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("clip.mp4");
    write_random_file(&file, 48 << 20, 10).unwrap();
    let vodup = env!("CARGO_BIN_EXE_vodup");
    let line = format!(
        "{vodup} upload video {} --endpoint {} --checkpoint-dir {} --limit-rate 24M",
        file.display(),
        server.vod_url,
        dir.path().join("cp").display()
    );
    let output = tokio::process::Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .env("ALIBABA_CLOUD_ACCESS_KEY_ID", &server.key_id)
        .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", server.key_secret.expose())
        .env("TERM", "xterm")
        .output()
        .await
        .unwrap();
    let screen = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{screen}");
    assert!(screen.contains("ETA"), "no bar drawn: {screen}");
    assert!(screen.contains("MiB/48.00 MiB") || screen.contains("/48.00 MiB"), "no byte counts: {screen}");
    assert!(screen.contains("VideoId "), "no result line: {screen}");

    let mut piped = super::support::upload(&server, dir.path(), "video", file.to_str().unwrap());
    let std = piped.as_std_mut();
    let args: Vec<_> = std.get_args().filter(|a| *a != "--json").map(ToOwned::to_owned).collect();
    let mut plain = tokio::process::Command::new(vodup);
    plain.args(args).envs(std.get_envs().filter_map(|(k, v)| Some((k.to_owned(), v?.to_owned()))));
    let output = plain.output().await.unwrap();
    assert!(output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("ETA"), "a bar on a pipe: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stdout.starts_with("VideoId "), "{stdout}");
}

fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| std::path::Path::new(d).join(program))
        .find(|p| p.is_file())
}

/// A shell script in `dir` that runs `vodup ARGS` against `server` (credentials in its environment,
/// never on the command line), then prints `EXIT=<code>`; returns the line that runs it.
fn vodup_script(server: &TestServer, dir: &Path, name: &str, pipeline: &str) -> String {
    let script = dir.join(format!("{name}.sh"));
    let body = format!(
        "export ALIBABA_CLOUD_ACCESS_KEY_ID={}\nexport ALIBABA_CLOUD_ACCESS_KEY_SECRET={}\n\
         export VODUP_ENDPOINT={}\nunset VODUP_LOG\n{}\necho EXIT=$?\n",
        server.key_id,
        server.key_secret.expose(),
        server.vod_url,
        pipeline.replace("vodup ", &format!("{} ", env!("CARGO_BIN_EXE_vodup"))),
    );
    std::fs::write(&script, body).unwrap();
    format!("bash {}", script.display())
}

fn exited(screen: &str) -> bool {
    screen.lines().any(|l| l.starts_with("EXIT="))
}

/// The MiB/s figures a screen shows.
fn rates(screen: &str) -> Vec<f64> {
    screen
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[1].starts_with("MiB/s"))
        .filter_map(|w| w[0].parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_on_a_terminal_shows_each_outcome_once_in_order_and_no_old_frame() {
    if !have_tmux() {
        return vodup_testkit::skip("tmux is not installed (it is the terminal the test reads)");
    }
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir(&media).unwrap();
    // Two jobs share 16 MiB/s: b (6 MiB) finishes first, then c (10 MiB, started when b ended), then a.
    // Each state lasts most of a second, so a watcher slowed by a loaded machine still sees it.
    for (name, mib) in [("a.mp4", 30), ("b.mp4", 6), ("c.mp4", 10)] {
        write_random_file(&media.join(name), mib << 20, mib).unwrap();
    }
    let line = vodup_script(
        &server,
        dir.path(),
        "batch",
        &format!("vodup upload video {} --jobs 2 --limit-rate 16M --checkpoint-dir ck", media.display()),
    );
    let tmux = Tmux::start(dir.path(), 120, 40);
    tmux.type_line(&line);
    let screens = tokio::task::spawn_blocking(move || {
        let screens = tmux.watch(Duration::from_millis(50), Duration::from_secs(60), exited);
        (screens, tmux.screen(true))
    });
    let (screens, last) = screens.await.unwrap();
    assert!(last.contains("EXIT=0"), "{last}");
    let done_lines = |screen: &str| -> Vec<String> {
        screen
            .lines()
            .filter(|l| l.starts_with("done ") && l.contains("/media/"))
            .map(ToOwned::to_owned)
            .collect()
    };
    let outcomes = done_lines(&last);
    let mut files: Vec<&str> = outcomes.iter().map(|l| l.rsplit('/').next().unwrap()).collect();
    files.sort_unstable();
    assert_eq!(files, ["a.mp4", "b.mp4", "c.mp4"], "each outcome once:\n{last}");
    assert!(!last.contains("MiB/"), "an old frame was left on screen:\n{last}");
    // Each outcome appears when its file ends, in that order: every screen shows a prefix of the final
    // list, and the overall bar counts exactly the outcomes shown.
    let mut counts_seen = Vec::new();
    for screen in &screens {
        let shown = done_lines(screen);
        assert_eq!(shown[..], outcomes[..shown.len()], "outcomes out of order or rewritten:\n{screen}");
        if let Some(count) = screen.lines().find_map(|l| l.split_whitespace().find(|w| w.ends_with("/3"))) {
            assert_eq!(
                count,
                format!("{}/3", shown.len()),
                "the overall bar against the outcomes:\n{screen}"
            );
            if counts_seen.last() != Some(&shown.len()) {
                counts_seen.push(shown.len());
            }
        }
    }
    // 3/3 may show for a moment before the summary clears the bar.
    assert_eq!(counts_seen[..3], [0, 1, 2], "the overall bar counted each file as it ended: {counts_seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_pipe_shows_bytes_and_rate_without_a_total_or_an_eta() {
    if !have_tmux() {
        return vodup_testkit::skip("tmux is not installed (it is the terminal the test reads)");
    }
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_random_file(&dir.path().join("clip.mp4"), 24 << 20, 3).unwrap();
    let line = vodup_script(
        &server,
        dir.path(),
        "pipe",
        "cat clip.mp4 | vodup upload video - --file-name piped.mp4 --limit-rate 12M",
    );
    let tmux = Tmux::start(dir.path(), 120, 40);
    tmux.type_line(&line);
    let screens = tokio::task::spawn_blocking(move || {
        tmux.watch(Duration::from_millis(100), Duration::from_secs(60), exited)
    })
    .await
    .unwrap();
    let last = screens.last().unwrap();
    assert!(last.contains("EXIT=0"), "{last}");
    let frames: Vec<&String> = screens.iter().filter(|s| s.contains("MiB/s")).collect();
    assert!(!frames.is_empty(), "no frame with a rate was seen: {screens:?}");
    for frame in frames {
        assert!(
            !frame.contains("ETA") && !frame.contains("/24.00 MiB"),
            "a total or an ETA for a pipe:\n{frame}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_leaves_a_stopped_frame_and_the_resumed_rate_counts_only_new_bytes() {
    if !have_tmux() {
        return vodup_testkit::skip("tmux is not installed (it is the terminal the test reads)");
    }
    let server = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    write_random_file(&dir.path().join("clip.mp4"), 40 << 20, 4).unwrap();
    let line = vodup_script(
        &server,
        dir.path(),
        "upload",
        "vodup upload video clip.mp4 --part-size 4M --limit-rate 8M --checkpoint-dir ck",
    );
    let tmux = Tmux::start(dir.path(), 120, 40);
    tmux.type_line(&line);
    let (stopped, resumed) = tokio::task::spawn_blocking(move || {
        // Interrupted once about half is sent.
        tmux.watch(Duration::from_millis(100), Duration::from_secs(30), |s| {
            s.contains(" 2") && s.contains("MiB/40.00 MiB")
        });
        tmux.keys("C-c");
        let stopped = tmux.watch(Duration::from_millis(100), Duration::from_secs(30), exited);
        tmux.type_line("clear");
        tmux.type_line(&line);
        let resumed = tmux.watch(Duration::from_millis(100), Duration::from_secs(60), exited);
        (stopped, resumed)
    })
    .await
    .unwrap();
    let stopped = stopped.last().unwrap();
    assert!(stopped.contains("EXIT=130"), "{stopped}");
    let frame = stopped.lines().rfind(|l| l.contains("MiB/40.00 MiB")).unwrap();
    assert!(frame.contains("stopped after") && !frame.contains("ETA"), "the last frame: {frame}");
    let last = resumed.last().unwrap();
    assert!(last.contains("EXIT=0"), "{last}");
    let shown: Vec<f64> = resumed.iter().flat_map(|s| rates(s)).collect();
    assert!(!shown.is_empty(), "no rate was shown: {resumed:?}");
    // 8 MiB/s is the limit; counting the resumed megabytes as sent would show far more at first.
    assert!(shown.iter().all(|r| *r < 12.0), "rates shown on resume: {shown:?}");
}

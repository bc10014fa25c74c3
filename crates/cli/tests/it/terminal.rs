//! The progress bar as a person sees it: under a pseudo-terminal (`script`), `vodup upload` draws an
//! indicatif bar on stderr and ends with the result line; piped, it prints the result line only.

use vodup_testkit::TestServer;
use vodup_testkit::fixtures::write_random_file;

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

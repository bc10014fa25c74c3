//! A real terminal for tests: a detached tmux session of a given size, each on its own tmux server
//! socket (tests run in parallel and must not share or kill each other's server), with the screen read
//! back as a person sees it (`capture-pane`, optionally with the scrollback). `script` records the bytes
//! a program writes; only a terminal emulator shows what is left on screen after cursor moves and
//! redraws, which is what a progress bar is judged by.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Whether a `tmux` binary can be run.
pub fn have_tmux() -> bool {
    Command::new("tmux").arg("-V").output().is_ok_and(|o| o.status.success())
}

/// A tmux session running an interactive shell; killed with its server on drop.
#[derive(Debug)]
pub struct Tmux {
    socket: String,
}

impl Tmux {
    /// A `width`×`height` terminal running `bash --norc` in `dir`.
    pub fn start(dir: &Path, width: u16, height: u16) -> Self {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let socket = format!("vodup-test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
        let tmux = Self { socket };
        let status = tmux
            .command()
            .args(["new-session", "-d", "-x", &width.to_string(), "-y", &height.to_string(), "-c"])
            .arg(dir)
            .args(["bash", "--norc", "--noprofile"])
            .env("TERM", "xterm-256color")
            .status()
            .expect("tmux runs");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    fn command(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket]);
        command
    }

    /// Types `line` and Enter.
    pub fn type_line(&self, line: &str) {
        let status = self.command().args(["send-keys", "-l", line]).status().expect("tmux runs");
        assert!(status.success());
        self.keys("Enter");
    }

    /// Sends keys by tmux name (`C-c`, `Enter`).
    pub fn keys(&self, keys: &str) {
        let status = self.command().args(["send-keys", keys]).status().expect("tmux runs");
        assert!(status.success());
    }

    /// The screen as shown now; with `scrollback`, everything that scrolled off too. Trailing blank
    /// lines are dropped.
    pub fn screen(&self, scrollback: bool) -> String {
        let mut command = self.command();
        command.args(["capture-pane", "-p"]);
        if scrollback {
            command.args(["-S", "-"]);
        }
        let output = command.output().expect("tmux runs");
        String::from_utf8_lossy(&output.stdout).trim_end().to_owned()
    }

    /// Reads the screen every `every` until `done` says so or `timeout` passes; returns every screen
    /// read, in order (the last one is the one `done` accepted, or the last before the timeout).
    pub fn watch(&self, every: Duration, timeout: Duration, done: impl Fn(&str) -> bool) -> Vec<String> {
        let start = Instant::now();
        let mut screens = Vec::new();
        loop {
            let screen = self.screen(false);
            let finished = done(&screen);
            screens.push(screen);
            if finished || start.elapsed() > timeout {
                return screens;
            }
            std::thread::sleep(every);
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.command().arg("kill-server").status();
    }
}

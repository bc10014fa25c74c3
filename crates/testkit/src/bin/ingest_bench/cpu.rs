//! Where the CPU time of a measurement goes, read from Linux's `/proc` before and after it: the vodup
//! nodes, the Garage nodes, the PostgreSQL server (its postmaster, its live backends and the backends it
//! has reaped), this process (the load generator and, for several nodes, the balancers), and the rest of
//! the machine's busy time (the kernel's own work, and anything else running, such as a build). On two
//! cores every one of them competes for the same CPUs, which is what the figures have to show.
//!
//! Times in `/proc/<pid>/stat` and `/proc/stat` are in USER_HZ ticks, which Linux fixes at 100 per second
//! on every architecture it exports them for. Elsewhere than Linux everything reads as zero.

use std::ops::Sub;

/// Ticks per second in `/proc` (USER_HZ).
const USER_HZ: f64 = 100.0;

/// CPU seconds used, by whom.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    pub vodup: f64,
    pub garage: f64,
    pub postgres: f64,
    pub bench: f64,
    /// Busy time of the whole machine (all CPUs), of which the rest is `other()`.
    pub machine: f64,
}

impl Usage {
    /// Busy time that none of the named processes used.
    pub fn other(&self) -> f64 {
        (self.machine - self.vodup - self.garage - self.postgres - self.bench).max(0.0)
    }
}

impl Sub for Usage {
    type Output = Self;

    fn sub(self, before: Self) -> Self {
        Self {
            vodup: self.vodup - before.vodup,
            garage: self.garage - before.garage,
            postgres: self.postgres - before.postgres,
            bench: self.bench - before.bench,
            machine: self.machine - before.machine,
        }
    }
}

/// The processes to account for.
pub struct Meter {
    pub vodup: Vec<u32>,
    pub garage: Vec<u32>,
    /// The postmaster, when found.
    pub postgres: Option<u32>,
}

impl Meter {
    /// CPU seconds each group has used since it started (take two and subtract).
    pub fn read(&self) -> Usage {
        let sum = |pids: &[u32]| pids.iter().filter_map(|pid| stat(*pid)).map(|s| s.own).sum::<f64>();
        Usage {
            vodup: sum(&self.vodup),
            garage: sum(&self.garage),
            postgres: self.postgres.map_or(0.0, tree),
            bench: stat(std::process::id()).map_or(0.0, |s| s.own),
            machine: machine_busy(),
        }
    }
}

/// What `/proc/<pid>/stat` says of a process, in seconds.
struct Stat {
    ppid: u32,
    /// utime + stime of all its threads.
    own: f64,
    /// cutime + cstime: of the children it has reaped.
    reaped: f64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the fields proper start after the last `)`.
    let fields: Vec<&str> = text.get(text.rfind(')')? + 1..)?.split_whitespace().collect();
    // fields[0] is field 3 of proc(5) (state): ppid is field 4, utime..cstime are fields 14-17.
    let number = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok());
    Some(Stat {
        ppid: fields.get(1)?.parse().ok()?,
        own: (number(11)? + number(12)?) / USER_HZ,
        reaped: (number(13)? + number(14)?) / USER_HZ,
    })
}

/// A parent's time, its reaped children's, and its live children's (PostgreSQL runs a process per
/// connection, and a backend's time moves to the postmaster's reaped total when it exits).
fn tree(parent: u32) -> f64 {
    let Some(own) = stat(parent) else { return 0.0 };
    let children: f64 = pids().filter_map(stat).filter(|s| s.ppid == parent).map(|s| s.own).sum();
    own.own + own.reaped + children
}

fn pids() -> impl Iterator<Item = u32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
}

/// Busy seconds of all CPUs together: user, nice, system, irq, softirq, steal of `/proc/stat`'s `cpu`
/// line (guest time is already inside user).
fn machine_busy() -> f64 {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().find(|l| l.starts_with("cpu ")) else { return 0.0 };
    let ticks: Vec<f64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    [0, 1, 2, 5, 6, 7].iter().filter_map(|i| ticks.get(*i)).sum::<f64>() / USER_HZ
}

/// The postmaster of the PostgreSQL server listening on `port`, found by its command line
/// (`postgres -D DIR -p PORT ...`, as `pg_ctl` starts it; backends rename themselves, so only it matches).
pub fn postmaster(port: u16) -> Option<u32> {
    let port = port.to_string();
    pids().find(|pid| {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { return false };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        args.first().is_some_and(|arg0| arg0.ends_with(b"postgres"))
            && args.windows(2).any(|pair| pair[0] == b"-p" && pair[1] == port.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = stat(std::process::id()).expect("this process has a /proc entry");
        assert_eq!(me.ppid, std::os::unix::process::parent_id());
        assert!(me.own >= 0.0 && me.reaped >= 0.0);
    }
}

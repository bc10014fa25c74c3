//! `PeakRss` sees a child's allocation and stops on its own once the child is gone.

use std::process::Command;
use std::time::{Duration, Instant};

use vodup_testkit::{PeakRss, current_vm_hwm, skip};

const MIB: u64 = 1024 * 1024;

fn wait_until_stopped(watch: &PeakRss) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while watch.is_watching() {
        assert!(Instant::now() < deadline, "the watcher outlived its process");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn sees_a_child_allocate_100_mib() {
    // `b'x' * n` writes every byte, so the pages are really resident (a zeroed allocation may not be).
    let script = "import time; b = b'x' * (100 * 1024 * 1024); time.sleep(0.3)";
    let mut child = match Command::new("python3").args(["-c", script]).spawn() {
        Ok(child) => child,
        Err(e) => return skip(&format!("python3 is not runnable: {e}")),
    };
    let watch = PeakRss::watch(child.id());
    assert!(child.wait().unwrap().success());
    wait_until_stopped(&watch);
    let peak = watch.stop();
    assert!(peak >= 100 * MIB, "peak {} MiB", peak / MIB);
    assert!(peak < 1024 * MIB, "peak {} MiB", peak / MIB);
}

#[test]
fn stops_by_itself_when_the_process_is_gone() {
    let mut child = Command::new("sleep").arg("0.2").spawn().unwrap();
    let pid = child.id();
    let watch = PeakRss::watch(pid);
    assert!(watch.is_watching());
    assert!(watch.peak_bytes() > 0, "the first sample is taken before watch returns");
    child.wait().unwrap();
    wait_until_stopped(&watch);
    assert_eq!(current_vm_hwm(pid), None);
    assert!(watch.stop() > 0, "the peak survives the process");
}

#[test]
fn reads_this_process() {
    let pid = std::process::id();
    assert!(current_vm_hwm(pid).is_some());
    let watch = PeakRss::watch(pid);
    let block = vec![1u8; 64 * MIB as usize];
    std::thread::sleep(Duration::from_millis(30));
    assert!(watch.peak_bytes() >= 64 * MIB, "{}", watch.peak_bytes());
    assert!(std::hint::black_box(&block)[12345] == 1);
    assert!(watch.stop() >= 64 * MIB);
}

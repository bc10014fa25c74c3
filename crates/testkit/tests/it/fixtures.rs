//! The fixtures are deterministic, do not repeat, are fast enough for multi-gigabyte files, and the
//! media ones are real media.

use std::io::Read as _;
use std::path::Path;
use std::time::Instant;

use vodup_testkit::{make_hls, make_png, make_srt, random_bytes, skip, write_random_file};

const MIB: usize = 1 << 20;

#[test]
fn random_files_are_deterministic_and_do_not_repeat_per_mib() {
    let dir = tempfile::tempdir().unwrap();
    let len = 4 * MIB + 5;
    let path = dir.path().join("f.bin");
    write_random_file(&path, len as u64, 42).unwrap();
    let written = std::fs::read(&path).unwrap();
    assert_eq!(written.len(), len);
    assert!(written == random_bytes(len, 42), "the file is random_bytes for the same seed");
    let blocks: Vec<&[u8]> = written.chunks(MIB).collect();
    for (i, a) in blocks.iter().enumerate() {
        for b in &blocks[i + 1..] {
            assert_ne!(&a[..b.len().min(a.len())], &b[..b.len().min(a.len())]);
        }
    }
    assert!(random_bytes(MIB, 43) != written[..MIB], "seeds give different content");
    // Not degenerate: every byte value shows up in the first 64 KiB.
    let mut seen = [false; 256];
    written[..65536].iter().for_each(|&b| seen[b as usize] = true);
    assert!(seen.iter().all(|&s| s));
}

#[test]
fn generation_is_fast_enough_for_gigabyte_files() {
    // Written to /dev/null so only generation is timed. An optimized build does several GB/s; an
    // unoptimized one (see the opt-level override in the workspace Cargo.toml) about 0.2, which would make
    // a 4 GiB fixture cost 20 s.
    let started = Instant::now();
    write_random_file(Path::new("/dev/null"), 1 << 30, 1).unwrap();
    let rate = (1u64 << 30) as f64 / started.elapsed().as_secs_f64() / 1e9;
    eprintln!("generation: {rate:.2} GB/s");
    assert!(rate >= 0.5, "{rate:.2} GB/s");
}

#[test]
fn make_hls_writes_a_playlist_whose_segments_exist() {
    let dir = tempfile::tempdir().unwrap();
    let playlist = match make_hls(dir.path()) {
        Ok(playlist) => playlist,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return skip(&e.to_string()),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(playlist, dir.path().join("index.m3u8"));
    let text = std::fs::read_to_string(&playlist).unwrap();
    assert!(text.starts_with("#EXTM3U") && text.contains("#EXT-X-ENDLIST"), "{text}");
    let segments: Vec<&str> = text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    assert!(segments.len() >= 3, "{text}");
    for segment in segments {
        assert!(segment.starts_with("seg/"), "{segment}");
        let mut head = [0u8; 1];
        std::fs::File::open(dir.path().join(segment)).unwrap().read_exact(&mut head).unwrap();
        assert_eq!(head[0], 0x47, "{segment} starts with an MPEG-TS sync byte");
    }
}

#[test]
fn make_png_and_make_srt_write_real_files() {
    let dir = tempfile::tempdir().unwrap();
    let srt = dir.path().join("s.srt");
    make_srt(&srt).unwrap();
    let text = std::fs::read_to_string(&srt).unwrap();
    assert!(text.starts_with("1\n00:00:00,000 --> 00:00:01,500\n"), "{text}");

    let png = dir.path().join("c.png");
    match make_png(&png) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return skip(&e.to_string()),
        Err(e) => panic!("{e}"),
    }
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"));
}

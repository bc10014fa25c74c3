//! Test inputs: large pseudo-random files that are cheap to make and to check, and small real media
//! (an HLS playlist with its segments, a PNG, a SubRip subtitle) for the source kinds the SDK uploads.
//!
//! The pseudo-random content comes from SplitMix64: deterministic per seed, so a test can regenerate the
//! expected bytes instead of keeping a copy, and with a period far beyond any file size, so no 1 MiB
//! block repeats and a part stored at the wrong offset or in the wrong order always changes the result.
//! It is not cryptographic and is not meant to be. testkit is built at opt-level 3 even in test builds
//! (the workspace Cargo.toml says so), because this loop runs at a tenth of its speed unoptimized.
//!
//! The media helpers shell out to `ffmpeg`. When it is absent they fail with
//! [`std::io::ErrorKind::NotFound`] and a message saying so; callers pass that message to
//! [`crate::skip`].

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Bytes generated and written per step.
const BLOCK: usize = 1 << 20;

/// The SplitMix64 stream for a seed; every 8 bytes of output are one little-endian word.
#[derive(Debug, Clone)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn new(seed: u64) -> Self {
        // Mixing the seed first keeps nearby seeds from giving shifted copies of the same stream.
        let mut mixer = Self(seed);
        Self(mixer.next_word())
    }

    fn next_word(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Fills `buf` with the next bytes of the stream. Only the last call of a stream may pass a length
    /// that is not a multiple of 8 (the tail of the word is dropped).
    fn fill(&mut self, buf: &mut [u8]) {
        let mut words = buf.chunks_exact_mut(8);
        for chunk in &mut words {
            chunk.copy_from_slice(&self.next_word().to_le_bytes());
        }
        let tail = words.into_remainder();
        if !tail.is_empty() {
            let word = self.next_word().to_le_bytes();
            tail.copy_from_slice(&word[..tail.len()]);
        }
    }
}

/// Writes `len` pseudo-random bytes for `seed` to `path` (created or truncated), 1 MiB at a time.
/// The content equals [`random_bytes`]`(len, seed)`. Several GB/s in an optimized build, so a 4 GiB file
/// costs seconds, mostly in the page cache; not fsynced.
pub fn write_random_file(path: &Path, len: u64, seed: u64) -> io::Result<()> {
    let mut file = std::fs::File::create(path)?;
    let mut generator = SplitMix64::new(seed);
    let mut buf = vec![0u8; BLOCK];
    let mut left = len;
    while left > 0 {
        let n = left.min(BLOCK as u64) as usize;
        generator.fill(&mut buf[..n]);
        file.write_all(&buf[..n])?;
        left -= n as u64;
    }
    Ok(())
}

/// `len` pseudo-random bytes for `seed`: the same bytes [`write_random_file`] writes.
pub fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut buf = vec![0u8; len];
    SplitMix64::new(seed).fill(&mut buf);
    buf
}

/// Whether an `ffmpeg` binary can be run.
pub fn have_ffmpeg() -> bool {
    Command::new("ffmpeg").arg("-version").output().is_ok_and(|o| o.status.success())
}

/// A 4-second 320×240 test pattern as a VOD HLS playlist `dir/index.m3u8` with 1-second segments in
/// `dir/seg/000.ts`, `001.ts`… (listed in the playlist as `seg/000.ts`…); returns the playlist path. Uses libx264 when this ffmpeg has it, else
/// MPEG-2 or MPEG-4 part 2 (the SDK does not look inside segments, so any codec will do).
pub fn make_hls(dir: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir.join("seg"))?;
    let playlist = dir.join("index.m3u8");
    let segments = dir.join("seg").join("%03d.ts");
    let codec = video_encoder()?;
    let mut command = ffmpeg();
    command
        .args(["-f", "lavfi", "-i", "testsrc=duration=4:size=320x240:rate=25", "-c:v", codec, "-g", "25"])
        .args(["-f", "hls", "-hls_time", "1", "-hls_playlist_type", "vod"])
        // Without a base URL ffmpeg lists bare `000.ts`, which would not resolve next to the playlist.
        .args(["-hls_base_url", "seg/", "-hls_segment_filename"])
        .arg(&segments)
        .arg(&playlist);
    run(command)?;
    Ok(playlist)
}

/// A 64×64 test-pattern PNG at `path` (a real image, for cover and image uploads).
pub fn make_png(path: &Path) -> io::Result<()> {
    let mut command = ffmpeg();
    command
        .args(["-f", "lavfi", "-i", "testsrc=size=64x64:rate=1", "-frames:v", "1"])
        .args(["-c:v", "png", "-f", "image2", "-update", "1"])
        .arg(path);
    run(command)
}

/// A two-cue SubRip subtitle at `path`.
pub fn make_srt(path: &Path) -> io::Result<()> {
    std::fs::write(
        path,
        "1\n00:00:00,000 --> 00:00:01,500\nvodup test subtitle\n\n\
         2\n00:00:01,500 --> 00:00:03,000\nsecond cue\n",
    )
}

fn ffmpeg() -> Command {
    let mut command = Command::new("ffmpeg");
    command.args(["-hide_banner", "-loglevel", "error", "-nostdin", "-y"]);
    command
}

fn run(mut command: Command) -> io::Result<()> {
    let output = command.output().map_err(missing)?;
    if output.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "ffmpeg failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )))
    }
}

/// The first of libx264, mpeg2video, mpeg4 this ffmpeg can encode with (asked once per process).
fn video_encoder() -> io::Result<&'static str> {
    static ENCODER: OnceLock<Result<&'static str, (io::ErrorKind, String)>> = OnceLock::new();
    let found = ENCODER.get_or_init(|| {
        let output = Command::new("ffmpeg").args(["-hide_banner", "-encoders"]).output().map_err(|e| {
            let e = missing(e);
            (e.kind(), e.to_string())
        })?;
        let list = String::from_utf8_lossy(&output.stdout);
        let has = |name: &str| list.lines().any(|l| l.split_whitespace().nth(1) == Some(name));
        ["libx264", "mpeg2video", "mpeg4"].into_iter().find(|name| has(name)).ok_or_else(|| {
            (io::ErrorKind::Other, "this ffmpeg has none of libx264, mpeg2video, mpeg4".to_owned())
        })
    });
    found.clone().map_err(|(kind, message)| io::Error::new(kind, message))
}

/// Turns "cannot run ffmpeg" into the error callers recognise as a reason to skip.
fn missing(error: io::Error) -> io::Error {
    if error.kind() == io::ErrorKind::NotFound {
        io::Error::new(
            io::ErrorKind::NotFound,
            "ffmpeg is missing (not on PATH); install ffmpeg to run this test",
        )
    } else {
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_does_not_depend_on_how_it_is_cut() {
        let whole = random_bytes(100, 7);
        let mut generator = SplitMix64::new(7);
        let mut pieces = vec![0u8; 100];
        generator.fill(&mut pieces[..64]);
        generator.fill(&mut pieces[64..]);
        assert_eq!(whole, pieces);
        assert_ne!(random_bytes(64, 7), random_bytes(64, 8));
    }
}

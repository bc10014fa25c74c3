//! The lane scheduler of the hashing service: the segments of every write in flight, advanced together
//! round by round so that their MD5 blocks share SIMD lanes.
//!
//! `md5-many` hashes many streams at once only in its full-width lockstep kernels (16 lanes with AVX-512,
//! 8 with AVX2, 4 with SSE); fed a partly filled group of unequal lengths it falls back to code slower
//! than one stream (BENCHMARKS.md, "MD5 engine for the server"). So each round here gives every pending
//! stream the same block-aligned length, pads the group to the native width with scratch lanes that
//! repeat a real lane's bytes, and calls the engine once per group. Chunk boundaries, which split blocks,
//! are stitched one stream at a time with the single-stream compressor before the round (at most one
//! block per stream per chunk boundary). A stream alone takes the single-stream compressor directly.
//!
//! Nothing here waits: a round hashes what is pending now, at most [`ROUND_BYTES`] per stream, so a
//! stream that arrives is in the next round, and a finished segment is answered at once. When to run a
//! round is the service's choice ([`Lanes::any_demanded`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use md5_many::{Md5Many, Md5State};
use tokio::sync::oneshot;

/// Most bytes of one stream hashed in one round: a few hundred microseconds at most, so a newly
/// submitted segment waits for no more than that before it shares the lanes.
pub const ROUND_BYTES: usize = 64 << 10;

/// Widest group the engine has a lockstep kernel for: three native groups (48 lanes with AVX-512).
const MAX_GROUPS: usize = 3;
/// Lanes of the widest group on any engine.
const MAX_LANES: usize = 48;

/// One segment of one stream to hash: the stream's MD5 state travels with it, so the service keeps no
/// per-stream record and a writer that goes away leaves nothing behind.
#[derive(Debug)]
pub struct Job {
    /// The stream's state before the segment.
    pub state: Md5State,
    /// The segment's bytes, in order, as the body delivered them (no copy).
    pub segment: Vec<Bytes>,
    /// Where the state after the segment goes.
    pub done: oneshot::Sender<Md5State>,
    /// Set by the writer once it wants the state soon; until then the segment is hashed only alongside
    /// others, in lanes that would otherwise idle.
    pub demanded: Arc<AtomicBool>,
}

/// A job being hashed: where it is in its segment.
#[derive(Debug)]
struct Active {
    job: Job,
    chunk: usize,
    offset: usize,
}

impl Active {
    fn is_done(&self) -> bool {
        self.chunk == self.job.segment.len()
    }

    /// The unhashed rest of the current chunk (empty when done).
    fn current(&self) -> &[u8] {
        self.job.segment.get(self.chunk).map_or(&[][..], |c| &c[self.offset..])
    }

    fn advance(&mut self, n: usize) {
        self.offset += n;
        while self.chunk < self.job.segment.len() && self.offset == self.job.segment[self.chunk].len() {
            self.chunk += 1;
            self.offset = 0;
        }
    }

    /// Hashes single-stream until the state sits on a block boundary with at least one whole block
    /// contiguous in the current chunk, or the segment is used up (a partial block then stays buffered
    /// in the state, for the next segment).
    fn align(&mut self) {
        while !self.is_done() {
            let need = (64 - (self.job.state.bytes_hashed() % 64) as usize) % 64;
            let available = self.current().len();
            let take = if need != 0 {
                need.min(available)
            } else if available < 64 {
                available
            } else {
                return;
            };
            let Self { job, chunk, offset } = self;
            job.state.update(&job.segment[*chunk][*offset..*offset + take]);
            self.advance(take);
        }
    }
}

/// Every stream with a segment in flight, and the engine that hashes them.
#[derive(Debug)]
pub struct Lanes {
    engine: Md5Many,
    active: Vec<Active>,
}

impl Lanes {
    /// No stream yet, on the widest engine this CPU has.
    pub fn new() -> Self {
        Self { engine: Md5Many::new(), active: Vec::new() }
    }

    /// True when no segment is pending.
    pub fn is_empty(&self) -> bool {
        self.active.is_empty()
    }

    /// Segments pending.
    pub fn len(&self) -> usize {
        self.active.len()
    }

    /// Adds a segment; it is hashed from the next round on.
    pub fn add(&mut self, job: Job) {
        self.active.push(Active { job, chunk: 0, offset: 0 });
    }

    /// True when a writer waits for one of the pending segments.
    pub fn any_demanded(&self) -> bool {
        self.active.iter().any(|a| a.job.demanded.load(Ordering::Acquire))
    }

    /// True when the pending segments fill the engine's native lanes: waiting would gain nothing.
    pub fn full(&self) -> bool {
        self.active.len() >= self.engine.lanes()
    }

    /// Drops the segments whose writer went away.
    pub fn prune(&mut self) {
        self.active.retain(|a| !a.job.done.is_closed());
    }

    /// Drops every pending segment: their writers see the service gone (after a panic in a round).
    pub fn clear(&mut self) {
        self.active.clear();
    }

    /// One round: drops segments whose writer went away, hashes up to [`ROUND_BYTES`] of every other,
    /// and answers each segment that is finished.
    pub fn round(&mut self) {
        self.prune();
        for active in &mut self.active {
            active.align();
        }
        self.finish_done();
        match self.active.as_mut_slice() {
            [] => {}
            [alone] => {
                let take = alone.current().len().min(ROUND_BYTES);
                let Active { job, chunk, offset } = alone;
                job.state.update(&job.segment[*chunk][*offset..*offset + take]);
                alone.advance(take);
            }
            streams => {
                let group = self.engine.lanes() * MAX_GROUPS;
                for streams in streams.chunks_mut(group) {
                    lockstep(self.engine, streams);
                }
            }
        }
        self.finish_done();
    }

    fn finish_done(&mut self) {
        let mut i = 0;
        while i < self.active.len() {
            if self.active[i].is_done() {
                let Active { job, .. } = self.active.swap_remove(i);
                // A writer that went away meanwhile no longer wants the state.
                let _ = job.done.send(job.state);
            } else {
                i += 1;
            }
        }
    }
}

impl Default for Lanes {
    fn default() -> Self {
        Self::new()
    }
}

/// Hashes the same whole number of blocks of every stream (each aligned, with a block ready) in one
/// engine call over the smallest multiple of the native width that holds them.
fn lockstep(engine: Md5Many, streams: &mut [Active]) {
    let native = engine.lanes();
    let width = streams.len().next_multiple_of(native).min(MAX_LANES);
    debug_assert!(streams.len() <= width);
    let step = streams.iter().map(|a| a.current().len()).min().unwrap_or(0).min(ROUND_BYTES) / 64 * 64;
    if step == 0 {
        return;
    }
    let mut states = [Md5State::new(); MAX_LANES];
    let mut inputs: [&[u8]; MAX_LANES] = [&[]; MAX_LANES];
    for (lane, active) in streams.iter().enumerate() {
        states[lane] = active.job.state;
        inputs[lane] = &active.current()[..step];
    }
    // Idle lanes hash a copy of lane 0 into fresh scratch states: the kernel costs the same whether a
    // lane is real or not, and this keeps every call on it.
    for input in &mut inputs[streams.len()..width] {
        *input = &streams[0].current()[..step];
    }
    engine.update_many(&mut states[..width], &inputs[..width]);
    for (lane, active) in streams.iter_mut().enumerate() {
        active.job.state = states[lane];
        active.advance(step);
    }
}

#[cfg(test)]
mod tests {
    use md5::{Digest as _, Md5};
    use proptest::prelude::*;

    use super::*;

    /// `data` cut at the lengths of `cuts` (cycled), into segments of `per_segment` chunks.
    fn segments(data: &[u8], cuts: &[usize], per_segment: usize) -> Vec<Vec<Bytes>> {
        let mut chunks = Vec::new();
        let (mut at, mut i) = (0, 0);
        while at < data.len() {
            let n = cuts[i % cuts.len()].min(data.len() - at);
            chunks.push(Bytes::copy_from_slice(&data[at..at + n]));
            at += n;
            i += 1;
        }
        chunks.chunks(per_segment).map(<[Bytes]>::to_vec).collect()
    }

    /// A stream being fed to the lanes: its segments left, and its state while none is in flight.
    struct Feed {
        segments: std::vec::IntoIter<Vec<Bytes>>,
        state: Option<Md5State>,
        waiting: Option<oneshot::Receiver<Md5State>>,
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]
        /// Streams of unequal lengths in random chunkings, joining at random rounds, one segment each in
        /// flight as the service runs them: every digest is md-5's.
        #[test]
        fn rounds_give_md5_of_every_stream(
            streams in prop::collection::vec(
                (0usize..200_000, any::<u64>(), prop::collection::vec(1usize..40_000, 1..20), 1usize..6, 0usize..6),
                1..40,
            ),
        ) {
            let data: Vec<Vec<u8>> = streams.iter().map(|&(len, seed, ..)| vodup_testkit::fixtures::random_bytes(len, seed)).collect();
            let mut feeds: Vec<(usize, Feed)> = streams
                .iter()
                .zip(&data)
                .map(|((_, _, cuts, per, join), d)| {
                    let feed = Feed { segments: segments(d, cuts, *per).into_iter(), state: Some(Md5State::new()), waiting: None };
                    (*join, feed)
                })
                .collect();
            let mut lanes = Lanes::new();
            let mut round = 0;
            loop {
                let mut busy = false;
                for (join, feed) in &mut feeds {
                    if let Some(waiting) = &mut feed.waiting {
                        match waiting.try_recv() {
                            Ok(state) => { feed.state = Some(state); feed.waiting = None; }
                            Err(_) => { busy = true; continue; }
                        }
                    }
                    if round < *join {
                        busy = true;
                        continue;
                    }
                    if let Some(segment) = feed.segments.next() {
                        let (done, waiting) = oneshot::channel();
                        let demanded = Arc::new(AtomicBool::new(true));
                        lanes.add(Job { state: feed.state.take().unwrap(), segment, done, demanded });
                        feed.waiting = Some(waiting);
                        busy = true;
                    }
                }
                if !busy && lanes.is_empty() {
                    break;
                }
                lanes.round();
                round += 1;
            }
            for (k, (_, feed)) in feeds.iter().enumerate() {
                let want: [u8; 16] = Md5::digest(&data[k]).into();
                prop_assert_eq!(feed.state.unwrap().finalize(), want, "stream {} of {} bytes", k, data[k].len());
            }
        }
    }

    #[test]
    fn a_segment_whose_writer_left_is_dropped() {
        let mut lanes = Lanes::new();
        let (done, waiting) = oneshot::channel();
        let demanded = Arc::new(AtomicBool::new(true));
        lanes.add(Job {
            state: Md5State::new(),
            segment: vec![Bytes::from(vec![7u8; 1 << 20])],
            done,
            demanded,
        });
        drop(waiting);
        lanes.round();
        assert!(lanes.is_empty(), "a segment nobody waits for is not hashed");
    }
}

//! One body's MD5 through the hashing service: gathers the body's chunks into segments, keeps one segment
//! in flight while the next one gathers (asking for its state half way, so that its hashing overlaps the
//! rest of the gathering), and gives the digest at the end.
//!
//! A body shorter than [`INLINE`] is hashed on the writer's own thread at the end instead: a small
//! object (many small files) would otherwise pay a thread hop for less work than the hop costs.

use std::mem;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use md5_many::Md5State;
use tokio::sync::oneshot;

use super::{HashError, Md5Service, SEGMENT};

/// A body whose whole length stays below this is hashed in place by [`Md5Stream::finish`].
pub const INLINE: usize = 64 << 10;

/// The MD5 of one body, computed by a [`Md5Service`] segment by segment.
#[derive(Debug)]
pub struct Md5Stream {
    service: Md5Service,
    /// The state, when no segment is in flight.
    state: Option<Md5State>,
    /// The segment handed over; it brings the state back once hashed.
    in_flight: Option<InFlight>,
    /// Chunks gathered for the next segment.
    gathering: Vec<Bytes>,
    gathered: usize,
}

/// A segment handed to the service.
#[derive(Debug)]
struct InFlight {
    state: oneshot::Receiver<Md5State>,
    /// Set once this writer has asked for the state.
    demanded: Arc<AtomicBool>,
}

impl Md5Stream {
    pub(super) fn new(service: Md5Service) -> Self {
        Self { service, state: Some(Md5State::new()), in_flight: None, gathering: Vec::new(), gathered: 0 }
    }

    /// Adds `chunk` (shared, not copied). Waits only when a segment is full and the previous one is still
    /// being hashed: that is the write's backpressure.
    pub async fn update(&mut self, chunk: Bytes) -> Result<(), HashError> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.gathered += chunk.len();
        self.gathering.push(chunk);
        if self.gathered >= SEGMENT {
            self.submit().await?;
        } else if self.gathered >= SEGMENT / 2 {
            self.demand()?;
        }
        Ok(())
    }

    /// The MD5 of every byte added.
    pub async fn finish(mut self) -> Result<[u8; 16], HashError> {
        if self.in_flight.is_none() && self.gathered < INLINE {
            let mut state = self.state.take().ok_or(HashError::Stopped)?;
            for chunk in &self.gathering {
                state.update(chunk);
            }
            return Ok(state.finalize());
        }
        if !self.gathering.is_empty() {
            self.submit().await?;
        }
        Ok(self.take_state().await?.finalize())
    }

    /// Hands the gathered chunks over, after the segment before them is back.
    async fn submit(&mut self) -> Result<(), HashError> {
        let state = self.take_state().await?;
        let segment = mem::take(&mut self.gathering);
        self.gathered = 0;
        let demanded = Arc::new(AtomicBool::new(false));
        let state = self.service.submit(state, segment, Arc::clone(&demanded))?;
        self.in_flight = Some(InFlight { state, demanded });
        Ok(())
    }

    /// Asks the service for the state of the segment in flight, without waiting for it.
    fn demand(&self) -> Result<(), HashError> {
        match &self.in_flight {
            Some(in_flight) if !in_flight.demanded.swap(true, Ordering::AcqRel) => self.service.wake(),
            _ => Ok(()),
        }
    }

    /// The state after everything handed over so far.
    async fn take_state(&mut self) -> Result<Md5State, HashError> {
        self.demand()?;
        match self.in_flight.take() {
            Some(in_flight) => in_flight.state.await.map_err(|_| HashError::Stopped),
            None => self.state.take().ok_or(HashError::Stopped),
        }
    }
}

impl Drop for Md5Stream {
    fn drop(&mut self) {
        if let Some(in_flight) = self.in_flight.take() {
            // The segment is no longer wanted: let the service drop it now rather than at its next round.
            drop(in_flight);
            let _ = self.service.wake();
        }
    }
}

//! Part slots: a pool of N part buffers shared by every upload that uses it, so a batch of many files in
//! flight holds at most N parts in memory (part size × N), however many files run at once.
//!
//! A worker takes a [`Slot`] before it reads a part and gives it back once the part is acknowledged; the
//! slot carries a reusable buffer, so parts do not allocate after the first few. Without a shared pool
//! each upload makes its own, of its `parallel` size, which is the single-file behaviour.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::BytesMut;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// A pool of part slots. Cheap to share through an `Arc`.
#[derive(Debug)]
pub struct PartSlots {
    permits: Arc<Semaphore>,
    size: usize,
    /// Buffers of slots given back; never more than `size`, as only slot holders return one.
    spare: Mutex<Vec<BytesMut>>,
}

impl PartSlots {
    /// A pool of `size` slots (at least 1).
    pub fn new(size: usize) -> Arc<Self> {
        let size = size.max(1);
        Arc::new(Self { permits: Arc::new(Semaphore::new(size)), size, spare: Mutex::new(Vec::new()) })
    }

    /// How many slots the pool has.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Waits for a free slot.
    pub async fn acquire(self: &Arc<Self>) -> Slot {
        // The semaphore is never closed, so acquiring cannot fail.
        let permit = Arc::clone(&self.permits).acquire_owned().await.ok();
        let buffer = self.spare.lock().unwrap_or_else(PoisonError::into_inner).pop();
        Slot { pool: Arc::clone(self), _permit: permit, buffer }
    }
}

/// One part's worth of memory, held from reading a part until it is acknowledged.
#[derive(Debug)]
pub struct Slot {
    pool: Arc<PartSlots>,
    _permit: Option<OwnedSemaphorePermit>,
    buffer: Option<BytesMut>,
}

impl Slot {
    /// The slot's buffer (empty the first time), to read a part into. It still holds the previous
    /// part's bytes: readers overwrite them (a file read fills exactly the part's length) or clear them
    /// first (a stream), so a reused buffer is never zero-filled again.
    pub fn take_buffer(&mut self) -> BytesMut {
        self.buffer.take().unwrap_or_default()
    }

    /// Gives a buffer back to the slot once the part it held is sent (and no request still holds it).
    pub fn keep_buffer(&mut self, buffer: BytesMut) {
        self.buffer = Some(buffer);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            self.pool.spare.lock().unwrap_or_else(PoisonError::into_inner).push(buffer);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn no_more_slots_than_the_pool_holds() {
        let pool = PartSlots::new(2);
        let mut first = pool.acquire().await;
        let _second = pool.acquire().await;
        let third = tokio::time::timeout(std::time::Duration::from_millis(50), pool.acquire()).await;
        assert!(third.is_err(), "a third slot waits");
        let mut buffer = first.take_buffer();
        buffer.extend_from_slice(b"part");
        first.keep_buffer(buffer);
        drop(first);
        let mut again = pool.acquire().await;
        let buffer = again.take_buffer();
        // Reused as it was: the next reader overwrites it, so it is not cleared (nor zero-filled) here.
        assert!(&buffer[..] == b"part" && buffer.capacity() >= 4, "the buffer is reused");
    }
}

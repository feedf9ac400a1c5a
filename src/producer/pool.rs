//! Batch buffers kept for reuse (the Java client's `BufferPool`).
//!
//! A batch buffer lives from the batch's first record until the broker
//! acknowledges it: the records are encoded into it, a codec compresses them
//! into a second one, and the finished batch is written to the socket
//! straight from its buffer. Buffers of a few hundred KiB are above the
//! allocator's mmap threshold, so a fresh one per batch costs a mapping,
//! a page fault and a zeroed page per 4 KiB touched, and a batch that
//! outgrows its buffer copies itself into a larger one. Reusing the buffers
//! of finished batches avoids all of that: once warm, batches are built in
//! memory that is already mapped and large enough.
//!
//! As in the Java client, pooled buffers all have one size, so that any idle
//! buffer fits any batch: the power of two above the largest buffer asked
//! for so far (batches cut by `linger.ms` vary in size from one to the next;
//! buffers sized for each would only fit half of the others). Buffers asked
//! for above `largest` (a record larger than the batch size) are allocated
//! for the occasion and never kept.
//!
//! The pool is bounded (a count and a byte budget), so it holds at most a
//! bounded amount of idle memory on top of `buffer.memory`, whatever the
//! records; buffers beyond the bound, small ones and outgrown ones are
//! freed as usual.

use std::sync::Mutex;

use bytes::{Bytes, BytesMut};

/// Buffers smaller than this are not worth keeping: the allocator serves
/// them from its own free lists without a page fault.
const MIN_POOLED: usize = 16 * 1024;
/// At most this many idle buffers.
const MAX_POOLED: usize = 64;

/// Idle batch buffers, most recently freed last.
#[derive(Debug)]
pub(crate) struct BufferPool {
    free: Mutex<Free>,
    /// Idle bytes (capacity) the pool may hold.
    max_bytes: usize,
    /// The largest buffer size pooled.
    largest: usize,
}

#[derive(Debug, Default)]
struct Free {
    buffers: Vec<BytesMut>,
    bytes: usize,
    /// The size new pooled buffers get (0 before the first).
    standard: usize,
}

impl BufferPool {
    /// A pool holding at most `max_bytes` of idle buffers, of at most
    /// `largest` bytes each (rounded up to a power of two).
    pub fn new(max_bytes: usize, largest: usize) -> Self {
        BufferPool {
            free: Mutex::new(Free::default()),
            max_bytes,
            largest: largest.checked_next_power_of_two().unwrap_or(largest),
        }
    }

    /// An empty buffer with room for at least `capacity` bytes: the most
    /// recently freed one (its memory is the most likely to be in cache),
    /// or a new one of the pool's standard size.
    pub fn take(&self, capacity: usize) -> BytesMut {
        if capacity > self.largest {
            return BytesMut::with_capacity(capacity);
        }
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(at) = free.buffers.iter().rposition(|b| b.capacity() >= capacity) {
            let buffer = free.buffers.swap_remove(at);
            free.bytes -= buffer.capacity();
            return buffer;
        }
        let wanted = capacity
            .max(MIN_POOLED)
            .checked_next_power_of_two()
            .unwrap_or(capacity);
        if wanted > free.standard {
            // Idle buffers of the old size would fit fewer batches: let them go.
            free.standard = wanted;
            free.buffers.clear();
            free.bytes = 0;
        }
        let standard = free.standard;
        drop(free);
        BytesMut::with_capacity(standard)
    }

    /// Keeps `buffer` for a later batch if it has the standard size (or
    /// more) and the pool has room; frees it otherwise.
    pub fn give(&self, mut buffer: BytesMut) {
        let capacity = buffer.capacity();
        if capacity < MIN_POOLED || capacity > self.largest {
            return;
        }
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        if capacity < free.standard
            || free.buffers.len() >= MAX_POOLED
            || free.bytes + capacity > self.max_bytes
        {
            return;
        }
        buffer.clear();
        free.bytes += capacity;
        free.buffers.push(buffer);
    }

    /// Takes back a finished batch's memory if nothing else refers to it
    /// any more (the request that carried it is gone); otherwise the last
    /// holder frees it as usual.
    pub fn recycle(&self, bytes: Bytes) {
        if let Ok(buffer) = bytes.try_into_mut() {
            self.give(buffer);
        }
    }

    /// Idle bytes held (for tests).
    #[cfg(test)]
    fn idle_bytes(&self) -> usize {
        self.free.lock().unwrap_or_else(|p| p.into_inner()).bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freed_buffer_is_handed_out_again() {
        let pool = BufferPool::new(1 << 20, 1 << 20);
        let mut buffer = pool.take(100_000);
        assert_eq!(buffer.capacity(), 128 * 1024, "a power of two");
        buffer.extend_from_slice(&[7; 1000]);
        let address = buffer.as_ptr();
        pool.give(buffer);
        assert_eq!(pool.idle_bytes(), 128 * 1024);
        let again = pool.take(120_000);
        assert_eq!(again.as_ptr(), address, "the same memory");
        assert!(again.is_empty(), "handed out empty");
        assert_eq!(pool.idle_bytes(), 0);
    }

    #[test]
    fn buffers_have_one_size_that_grows_with_the_batches() {
        let pool = BufferPool::new(1 << 20, 1 << 20);
        let small = pool.take(20_000);
        assert_eq!(small.capacity(), 32 * 1024);
        // A larger batch: the standard size grows, the idle buffers of the
        // old one go.
        pool.give(pool.take(20_000));
        assert_eq!(pool.idle_bytes(), 32 * 1024);
        let large = pool.take(200_000);
        assert_eq!(large.capacity(), 256 * 1024);
        assert_eq!(pool.idle_bytes(), 0);
        // A small batch now gets a standard buffer too...
        assert_eq!(pool.take(20_000).capacity(), 256 * 1024);
        // ... and old small buffers are not kept.
        pool.give(small);
        assert_eq!(pool.idle_bytes(), 0);
        pool.give(large);
        assert_eq!(pool.idle_bytes(), 256 * 1024);
    }

    #[test]
    fn the_pool_stays_within_its_bounds() {
        let pool = BufferPool::new(300_000, 1 << 20);
        pool.give(BytesMut::with_capacity(1024));
        assert_eq!(pool.idle_bytes(), 0, "small buffers are not kept");
        let buffers: Vec<_> = (0..3).map(|_| pool.take(100_000)).collect();
        for b in buffers {
            pool.give(b);
        }
        assert_eq!(pool.idle_bytes(), 2 * 128 * 1024, "the byte budget");
        // Larger than `largest`: allocated for the occasion, never kept.
        let huge = pool.take(2 << 20);
        assert!(huge.capacity() >= 2 << 20);
        pool.give(huge);
        assert_eq!(pool.idle_bytes(), 2 * 128 * 1024);
    }

    #[test]
    fn a_batch_is_recycled_only_once_nothing_else_holds_it() {
        let pool = BufferPool::new(1 << 20, 1 << 20);
        let mut buffer = pool.take(64 * 1024);
        buffer.extend_from_slice(&[1; 4096]);
        let batch = buffer.freeze();
        let in_a_request = batch.clone();
        pool.recycle(batch);
        assert_eq!(pool.idle_bytes(), 0, "still referenced");
        pool.recycle(in_a_request);
        assert_eq!(pool.idle_bytes(), 64 * 1024);
    }
}

#[cfg(test)]
mod batch_cycle_tests {
    use super::*;
    use crate::records::{Compression, RecordBatchBuilder};

    fn cycle(codec: Compression) -> (usize, usize) {
        let pool = BufferPool::new(8 << 20, 1 << 20);
        let mut builder = RecordBatchBuilder::with_buffer(codec, pool.take(200_000));
        if codec != Compression::None {
            builder.set_output_buffer(pool.take(300_000));
        }
        for i in 0..150 {
            builder
                .append(i, Some(b"0123456789abcdef"), Some(&[i as u8; 1024]), &[])
                .unwrap();
        }
        let sealed = builder.seal().unwrap();
        pool.give(builder.into_buffer());
        let after_seal = pool.idle_bytes();
        pool.recycle(sealed.bytes);
        (after_seal, pool.idle_bytes())
    }

    /// A producer's batch: its records buffer comes back once compressed,
    /// its batch (records buffer or compressed one) once nothing else holds it.
    #[test]
    fn batch_buffers_come_back() {
        assert_eq!(cycle(Compression::None), (0, 256 * 1024));
    }

    /// A compressed batch: both buffers come back, of the standard size
    /// that the larger output buffer asked for set.
    #[cfg(feature = "lz4")]
    #[test]
    fn compressed_batch_buffers_come_back() {
        assert_eq!(cycle(Compression::Lz4), (0, 512 * 1024));
    }
}

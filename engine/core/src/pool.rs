//! Recycled byte buffers. Fresh megabyte buffers cost a page fault per 4 KiB and a
//! zeroing pass; reusing them keeps the hot path free of both (measured: page faults were
//! half the profile of split + encode before buffers were recycled; see perf/README.md).

use std::sync::Mutex;

/// A bounded stack of spare `Vec<u8>`s, shared between the threads that fill buffers and
/// the ones that finish with them.
#[derive(Debug)]
pub struct BufferPool {
    spare: Mutex<Vec<Vec<u8>>>,
    max_buffers: usize,
}

impl BufferPool {
    /// A pool keeping at most `max_buffers` spare buffers; more are freed.
    pub fn new(max_buffers: usize) -> BufferPool {
        BufferPool {
            spare: Mutex::new(Vec::new()),
            max_buffers,
        }
    }

    /// A spare buffer, or a new empty one. Its length is whatever it had: its bytes are
    /// initialized but meaningless, so a reader can fill it without zeroing it again.
    pub fn take(&self) -> Vec<u8> {
        self.spare
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop()
            .unwrap_or_default()
    }

    /// A spare buffer emptied (length 0), or a new one, with at least `capacity`.
    pub fn take_empty(&self, capacity: usize) -> Vec<u8> {
        let mut buf = self.take();
        buf.clear();
        buf.reserve(capacity);
        buf
    }

    /// Gives `buf` back for reuse.
    pub fn give(&self, buf: Vec<u8>) {
        if buf.capacity() == 0 {
            return;
        }
        let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
        if spare.len() < self.max_buffers {
            spare.push(buf);
        }
    }
}

impl Default for BufferPool {
    fn default() -> Self {
        BufferPool::new(8)
    }
}

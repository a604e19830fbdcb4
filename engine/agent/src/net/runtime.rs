//! The agent's one tokio runtime for network I/O (listeners now; clients as they move over).
//! Started on first use, two worker threads named `weir-net`; the native hot path stays on
//! its own worker threads, and network components hand their work over through bounded
//! channels, so a full pipeline reaches a peer as TCP backpressure or a 429/503 instead of
//! growing memory.

use std::sync::OnceLock;

/// The runtime's handle.
pub fn handle() -> tokio::runtime::Handle {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("weir-net")
                .enable_all()
                .build()
                .expect("the network runtime starts (threads and an epoll instance)")
        })
        .handle()
        .clone()
}

//! Memory given back: glibc's malloc keeps what a burst freed (a flood of sockets, large
//! bodies) in its per-thread arenas for good, so the process would stay at its peak. Every
//! few seconds the free pages of every arena are returned to the operating system
//! (`malloc_trim`), which costs a walk of the free lists: nothing measurable at this pace.

use std::time::Duration;

/// How often freed memory is given back.
pub const TRIM_EVERY: Duration = Duration::from_secs(5);

/// Gives the free pages of every malloc arena back to the operating system.
pub fn give_back() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only inspects and releases the allocator's own free memory; it
    // is safe to call at any time from any thread.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Gives memory back every [`TRIM_EVERY`] until `cancel`.
pub async fn run(cancel: tokio_util::sync::CancellationToken) {
    let mut ticker = tokio::time::interval(TRIM_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = ticker.tick() => {
                // A walk of the heap: off the async workers.
                let _ = tokio::task::spawn_blocking(give_back).await;
            }
        }
    }
}

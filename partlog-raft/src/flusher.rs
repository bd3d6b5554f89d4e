//! Group commit for `append`'s durability callbacks.
//!
//! `append` writes its entries into the log (the page cache) and queues its callback here with
//! the log end offset it needs on disk. One thread takes everything queued since its last
//! flush, runs one `Log::flush` (one fsync of the active segment) and then fires those callbacks
//! in queue order: appends that arrive while a flush runs share the next one. A callback is
//! fired only once its offsets are below the log's recovery point, or with the error of the
//! flush that failed to get them there.

use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::Weak;

use openraft::RaftTypeConfig;

use crate::store::Shared;

/// What runs once an append is on disk (or failed to get there).
pub type OnDurable = Box<dyn FnOnce(std::io::Result<()>) + Send>;

/// A request to the flushing thread.
pub(crate) enum Request {
    /// Fire `callback` once every offset below `end_offset` is on disk.
    Durable {
        end_offset: i64,
        callback: OnDurable,
    },
    /// Answer once everything queued before is settled (flushed and its callbacks fired).
    Barrier(SyncSender<()>),
}

/// Starts the flushing thread for `shared`; it ends when the last handle to `shared` is gone.
pub(crate) fn spawn<C>(shared: Weak<Shared<C>>, requests: Receiver<Request>) -> std::io::Result<()>
where
    C: RaftTypeConfig<Entry = openraft::Entry<C>>,
{
    std::thread::Builder::new()
        .name("partlog-raft-flush".into())
        .spawn(move || run(&shared, &requests))
        .map(drop)
}

/// Counters of the group commit, for tests and benches.
#[derive(Debug, Default)]
pub(crate) struct Stats {
    pub(crate) flushes: std::sync::atomic::AtomicU64,
    pub(crate) callbacks: std::sync::atomic::AtomicU64,
}

fn run<C>(shared: &Weak<Shared<C>>, requests: &Receiver<Request>)
where
    C: RaftTypeConfig<Entry = openraft::Entry<C>>,
{
    use std::sync::atomic::Ordering::Relaxed;
    // Blocks until a request comes, or every sender (every store handle) is gone.
    while let Ok(first) = requests.recv() {
        let mut group = vec![first];
        group.extend(requests.try_iter());
        let Some(shared) = shared.upgrade() else {
            fail_all(group, "the log store was dropped");
            return;
        };
        let end = group
            .iter()
            .filter_map(|r| match r {
                Request::Durable { end_offset, .. } => Some(*end_offset),
                Request::Barrier(_) => None,
            })
            .max();
        let log = &shared.log;
        let result = match end {
            Some(end) if log.recovery_point() < end => {
                shared.stats.flushes.fetch_add(1, Relaxed);
                log.flush()
            }
            _ => Ok(()),
        };
        for request in group {
            match request {
                Request::Durable {
                    end_offset,
                    callback,
                } => {
                    shared.stats.callbacks.fetch_add(1, Relaxed);
                    let r = match &result {
                        Err(e) => Err(std::io::Error::other(e.to_string())),
                        // A truncation waits for this thread (a barrier) before it cuts, so an
                        // end past the recovery point here is a bug, never data to confirm.
                        Ok(()) if log.recovery_point() < end_offset => {
                            Err(std::io::Error::other(format!(
                                "offsets below {end_offset} not flushed (recovery point {})",
                                log.recovery_point()
                            )))
                        }
                        Ok(()) => Ok(()),
                    };
                    callback(r);
                }
                Request::Barrier(done) => {
                    let _ = done.send(());
                }
            }
        }
        drop(shared);
    }
}

fn fail_all(group: Vec<Request>, why: &str) {
    for request in group {
        if let Request::Durable { callback, .. } = request {
            callback(Err(std::io::Error::other(why.to_owned())));
        }
    }
}

/// The sending half, held by the store.
pub(crate) struct Queue {
    pub(crate) tx: Sender<Request>,
}

impl Queue {
    /// Waits until everything queued so far is flushed and its callbacks fired.
    pub(crate) fn barrier(&self) {
        let (done, wait) = mpsc::sync_channel(1);
        if self.tx.send(Request::Barrier(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

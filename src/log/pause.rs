//! Test-only pause points: named places inside the log's operations where a test can stop one
//! thread, run another operation, and let the first go on, so that an interleaving that a stress
//! test hits once in a million runs is reproduced every time. Outside `cfg(test)` a pause point
//! is an empty inline function: nothing is compiled into the library.

/// A place where an operation can be held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Point {
    /// Retention or delete-records: the doomed segments have just left the segment list, their
    /// files not yet renamed.
    RetentionDetached,
    /// Time retention is about to map a segment to learn its largest timestamp.
    RetentionMapsSegment,
    /// `offset_for_timestamp` chose a segment to look in and has not mapped it yet.
    TimestampLookupChoseSegment,
    /// `read` chose a segment and has not mapped it yet.
    ReadChoseSegment,
    /// `read` holds the map of the segment it chose and has not read it yet.
    ReadMappedSegment,
    /// `flush` synced the log bytes and has not moved the recovery point yet.
    FlushSynced,
    /// A partition leader's append under `Durability::OnFlush`: its batches are durable, the
    /// partition's state not locked again yet.
    LeaderAppendDurable,
    /// An append rolled to a new segment in its middle (the roll's snapshot is written), and
    /// has not written its next batch yet.
    AppendRolledMidway,
}

#[cfg(test)]
pub(crate) use armed::Pauses;

#[cfg(test)]
mod armed {
    use std::collections::HashMap;
    use std::sync::mpsc::{self, Receiver, Sender};
    use std::sync::Mutex;
    use std::time::Duration;

    use super::Point;

    /// The operation's end of an armed point: tell the test it arrived, wait to be resumed.
    type Held = (Sender<()>, Receiver<()>);

    /// The pause points armed on one log.
    #[derive(Debug, Default)]
    pub(crate) struct Pauses {
        armed: Mutex<HashMap<Point, Held>>,
    }

    /// The test's end of an armed point.
    #[derive(Debug)]
    pub(crate) struct Gate {
        reached: Receiver<()>,
        resume: Sender<()>,
    }

    impl Gate {
        /// Waits until an operation stops at the point (panics after 10 s: the test is wrong).
        pub(crate) fn wait_reached(&self) {
            self.reached
                .recv_timeout(Duration::from_secs(10))
                .expect("no operation reached the pause point");
        }

        /// Lets the held operation go on.
        pub(crate) fn resume(self) {
            let _ = self.resume.send(());
        }
    }

    impl Pauses {
        /// Arms `point`: the next operation to reach it stops there until the gate resumes it.
        pub(crate) fn arm(&self, point: Point) -> Gate {
            let (reached_tx, reached) = mpsc::channel();
            let (resume, resume_rx) = mpsc::channel();
            self.armed
                .lock()
                .unwrap()
                .insert(point, (reached_tx, resume_rx));
            Gate { reached, resume }
        }

        /// Called at `point`: holds the caller if the point is armed (once).
        pub(crate) fn reach(&self, point: Point) {
            let gate = self.armed.lock().unwrap().remove(&point);
            if let Some((reached, resume)) = gate {
                let _ = reached.send(());
                let _ = resume.recv_timeout(Duration::from_secs(10));
            }
        }
    }
}

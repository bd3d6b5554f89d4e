//! openraft's own storage test suite (`openraft::testing::Suite`) against `LogStore`, each test
//! on a fresh directory; and this crate's own claims: a Raft index is a partlog offset, the
//! term is the batch's leader epoch, everything survives a reopen, many appends share a flush.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftLogReader, RaftLogStorage, RaftStateMachine, Snapshot};
use openraft::testing::{StoreBuilder, Suite};
use openraft::{
    CommittedLeaderId, Entry, EntryPayload, LogId, Membership, RaftSnapshotBuilder, SnapshotMeta,
    StorageError, StoredMembership, Vote,
};
use partlog_raft::{LogStore, StoreConfig};
use std::collections::BTreeSet;
use tempfile::TempDir;
use tokio::sync::Mutex;

openraft::declare_raft_types!(pub TypeConfig: D = String, R = String);

type NodeId = u64;

/// A state machine in memory: the applied values, the last applied log id and membership.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct Applied {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, openraft::BasicNode>,
    values: Vec<String>,
}

/// The last snapshot built or installed: its metadata and bytes.
type StoredSnapshot = Option<(SnapshotMeta<NodeId, openraft::BasicNode>, Vec<u8>)>;

#[derive(Debug, Default, Clone)]
struct StateMachine {
    applied: Arc<Mutex<Applied>>,
    snapshot: Arc<Mutex<StoredSnapshot>>,
}

impl RaftSnapshotBuilder<TypeConfig> for StateMachine {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let applied = self.applied.lock().await.clone();
        let data = serde_json::to_vec(&applied).expect("serialize");
        let meta = SnapshotMeta {
            last_log_id: applied.last_applied,
            last_membership: applied.membership.clone(),
            snapshot_id: format!("{:?}", applied.last_applied),
        };
        *self.snapshot.lock().await = Some((meta.clone(), data.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachine {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<
        (
            Option<LogId<NodeId>>,
            StoredMembership<NodeId, openraft::BasicNode>,
        ),
        StorageError<NodeId>,
    > {
        let a = self.applied.lock().await;
        Ok((a.last_applied, a.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<String>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
    {
        let mut a = self.applied.lock().await;
        let mut out = Vec::new();
        for e in entries {
            a.last_applied = Some(e.log_id);
            match e.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(v) => a.values.push(v),
                EntryPayload::Membership(m) => {
                    a.membership = StoredMembership::new(Some(e.log_id), m);
                }
            }
            out.push(String::new());
        }
        Ok(out)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.clone()
    }

    async fn begin_receiving_snapshot(
        &mut self,
    ) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, openraft::BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        *self.applied.lock().await = serde_json::from_slice(&data).expect("deserialize");
        *self.snapshot.lock().await = Some((meta.clone(), data));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        Ok(self
            .snapshot
            .lock()
            .await
            .clone()
            .map(|(meta, data)| Snapshot {
                meta,
                snapshot: Box::new(Cursor::new(data)),
            }))
    }
}

struct Builder;

impl StoreBuilder<TypeConfig, LogStore<TypeConfig>, StateMachine, TempDir> for Builder {
    async fn build(
        &self,
    ) -> Result<(TempDir, LogStore<TypeConfig>, StateMachine), StorageError<NodeId>> {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = LogStore::open(dir.path(), StoreConfig::default()).expect("open");
        Ok((dir, store, StateMachine::default()))
    }
}

#[test]
fn openraft_storage_suite_passes() {
    if let Err(e) = Suite::test_all(Builder) {
        panic!("openraft's storage suite failed: {e}");
    }
}

fn log_id(term: u64, index: u64) -> LogId<NodeId> {
    LogId::new(CommittedLeaderId::new(term, 0), index)
}

fn normal(term: u64, index: u64, v: &str) -> Entry<TypeConfig> {
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Normal(v.to_owned()),
    }
}

/// Appends and waits for the durability callback.
async fn append(store: &mut LogStore<TypeConfig>, entries: Vec<Entry<TypeConfig>>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    store
        .append_then(entries, Box::new(move |r| drop(tx.send(r))))
        .expect("append");
    rx.await.expect("callback").expect("flushed");
}

fn membership(term: u64, index: u64) -> Entry<TypeConfig> {
    let voters: BTreeSet<u64> = [1, 2, 3].into();
    Entry {
        log_id: log_id(term, index),
        payload: EntryPayload::Membership(Membership::new(vec![voters], None)),
    }
}

#[tokio::test]
async fn index_is_offset_and_term_is_leader_epoch_and_all_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = LogStore::<TypeConfig>::open(dir.path(), StoreConfig::default()).unwrap();
    let mut entries = vec![Entry::<TypeConfig> {
        log_id: log_id(1, 0),
        payload: EntryPayload::Blank,
    }];
    entries.push(membership(1, 1));
    entries.extend((2..10).map(|i| normal(1, i, &format!("v{i}"))));
    append(&mut store, entries).await;
    append(&mut store, vec![normal(4, 10, "v10"), normal(4, 11, "v11")]).await;
    store.save_vote(&Vote::new(4, 2)).await.unwrap();
    store.save_committed(Some(log_id(4, 11))).await.unwrap();

    // The raw partition log: offset = index, partitionLeaderEpoch = term, one record a batch;
    // blank and membership entries are control batches.
    let raw = store.log().read(0, 1 << 20).unwrap();
    assert_eq!(raw.batches.len(), 12);
    for (i, b) in raw.batches.iter().enumerate() {
        assert_eq!(b.base_offset(), i as i64);
        assert_eq!(b.record_count(), 1);
        assert_eq!(b.partition_leader_epoch(), if i < 10 { 1 } else { 4 });
        assert_eq!(b.header().is_control(), i < 2, "batch {i}");
    }
    let value = raw.batches[5]
        .records()
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .value;
    assert_eq!(
        value.as_deref(),
        Some(&b"\"v5\""[..]),
        "application data as JSON"
    );
    assert_eq!(store.terms(), vec![(1, 0), (4, 10)]);

    store.truncate(log_id(4, 11)).await.unwrap();
    store.purge(log_id(1, 3)).await.unwrap();
    drop(store);

    let mut store = LogStore::<TypeConfig>::open(dir.path(), StoreConfig::default()).unwrap();
    assert_eq!(store.read_vote().await.unwrap(), Some(Vote::new(4, 2)));
    // Index 11 was truncated away: the committed id it names is no longer in the log.
    assert_eq!(store.read_committed().await.unwrap(), Some(log_id(1, 3)));
    let state = store.get_log_state().await.unwrap();
    assert_eq!(state.last_purged_log_id, Some(log_id(1, 3)));
    assert_eq!(state.last_log_id, Some(log_id(4, 10)));
    let got = store.try_get_log_entries(0..100).await.unwrap();
    let ids: Vec<_> = got.iter().map(|e| e.log_id).collect();
    let want: Vec<_> = (4..10)
        .map(|i| log_id(1, i))
        .chain([log_id(4, 10)])
        .collect();
    assert_eq!(ids, want);
    assert_eq!(store.log().log_start_offset(), 4);
}

#[tokio::test]
async fn reads_stop_at_the_byte_budget_but_return_at_least_one_entry() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        max_read_bytes: 1000,
        ..StoreConfig::default()
    };
    let mut store = LogStore::<TypeConfig>::open(dir.path(), config).unwrap();
    let big = "x".repeat(300);
    append(&mut store, (0..20).map(|i| normal(1, i, &big)).collect()).await;
    let limited = store.limited_get_log_entries(0, 20).await.unwrap();
    assert!((1..20).contains(&limited.len()), "{}", limited.len());
    assert_eq!(limited.len(), 2, "three 370-byte batches exceed 1000 bytes");
    assert_eq!(store.try_get_log_entries(0..20).await.unwrap().len(), 20);

    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        max_read_bytes: 10,
        ..StoreConfig::default()
    };
    let mut store = LogStore::<TypeConfig>::open(dir.path(), config).unwrap();
    append(&mut store, vec![normal(1, 0, &big), normal(1, 1, &big)]).await;
    assert_eq!(store.limited_get_log_entries(0, 2).await.unwrap().len(), 1);
}

#[tokio::test]
async fn many_appends_share_one_flush() {
    let dir = tempfile::tempdir().unwrap();
    let store = LogStore::<TypeConfig>::open(dir.path(), StoreConfig::default()).unwrap();
    let mut waits = Vec::new();
    for i in 0..500 {
        let (tx, rx) = tokio::sync::oneshot::channel();
        store
            .append_then([normal(1, i, "ride")], Box::new(move |r| drop(tx.send(r))))
            .unwrap();
        waits.push(rx);
    }
    for rx in waits {
        rx.await.unwrap().unwrap();
    }
    let (flushes, callbacks) = store.flush_stats();
    assert_eq!(callbacks, 500);
    assert!(flushes < 100, "{flushes} flushes for 500 appends");
    assert!(store.log().recovery_point() >= 500);
}

#[tokio::test]
async fn truncation_settles_pending_callbacks_first() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = LogStore::<TypeConfig>::open(dir.path(), StoreConfig::default()).unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    store
        .append_then(
            (0..10).map(|i| normal(1, i, "a")),
            Box::new(move |r| drop(tx.send(r))),
        )
        .unwrap();
    store.truncate(log_id(1, 5)).await.unwrap();
    // The callback ran before the cut, when all ten were on disk.
    rx.await.unwrap().unwrap();
    append(&mut store, vec![normal(2, 5, "b")]).await;
    assert_eq!(
        store.get_log_state().await.unwrap().last_log_id,
        Some(log_id(2, 5))
    );
    assert_eq!(store.terms(), vec![(1, 0), (2, 5)]);
}

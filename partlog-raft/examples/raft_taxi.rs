//! Three openraft nodes in one process, each with its Raft log in a partlog directory of its
//! own, replicating NYC taxi rides into a state machine that counts rides per vendor. The leader
//! is killed (its Raft shut down, its files kept), openraft elects another, the old leader
//! restarts from its partlog files and catches up; at the end every node must have applied every
//! committed ride exactly once.
//!
//! ```text
//! cargo run --release -p partlog-raft --example raft_taxi
//! ```
//!
//! The network is a channel per node: a client sends each RPC with a reply channel to the
//! target's inbox, served by a task that calls the target's `Raft`. A killed node's inbox is
//! gone, so RPCs to it fail as unreachable.

use std::collections::{BTreeMap, HashMap};
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use openraft::error::{InstallSnapshotError, RPCError, RaftError, RemoteError, Unreachable};
use openraft::network::{RPCOption, RaftNetwork, RaftNetworkFactory};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    BasicNode, Entry, EntryPayload, LogId, Raft, RaftSnapshotBuilder, SnapshotMeta, StorageError,
    StoredMembership,
};
use partlog_raft::{LogStore, StoreConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};

/// One yellow-taxi ride, the fields of the TLC trip records that the state machine uses.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Ride {
    /// Unique per ride: the exactly-once check counts these.
    id: u64,
    /// 1 = Creative Mobile Technologies, 2 = VeriFone (the TLC's two vendors).
    vendor_id: u8,
    pickup_ms: i64,
    dropoff_ms: i64,
    passenger_count: u8,
    trip_distance: f64,
    fare_amount: f64,
}

openraft::declare_raft_types!(
    TypeConfig: D = Ride, R = (), NodeId = u64, Node = BasicNode
);

type NodeId = u64;
type Rafty = Raft<TypeConfig>;

/// Rides that look like July 2020's: pickups moving forward a few seconds apart, trips of a
/// few minutes at city speeds, fares from the meter's rates. Deterministic (xorshift).
struct RideGenerator {
    state: u64,
    next_id: u64,
    clock_ms: i64,
}

impl RideGenerator {
    fn new() -> Self {
        RideGenerator {
            state: 0x9e37_79b9_7f4a_7c15,
            next_id: 0,
            // 2020-07-01 00:00:00 UTC.
            clock_ms: 1_593_561_600_000,
        }
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }

    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn ride(&mut self) -> Ride {
        self.clock_ms += (self.uniform() * 20_000.0) as i64;
        let minutes = 3.0 + self.uniform() * 37.0;
        let mph = 6.0 + self.uniform() * 14.0;
        let miles = (minutes / 60.0 * mph * 100.0).round() / 100.0;
        let fare = ((2.5 + 2.5 * miles + 0.5 * minutes) * 2.0).round() / 2.0;
        let passengers = [1, 1, 1, 1, 1, 2, 2, 3, 5, 6][(self.next_u64() % 10) as usize];
        self.next_id += 1;
        Ride {
            id: self.next_id,
            vendor_id: if self.next_u64() % 100 < 42 { 1 } else { 2 },
            pickup_ms: self.clock_ms,
            dropoff_ms: self.clock_ms + (minutes * 60_000.0) as i64,
            passenger_count: passengers,
            trip_distance: miles,
            fare_amount: fare,
        }
    }
}

/// What a node's state machine holds: rides per vendor, and how many times each ride id was
/// applied (the exactly-once check).
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Counts {
    last_applied: Option<LogId<NodeId>>,
    membership: StoredMembership<NodeId, BasicNode>,
    rides_per_vendor: BTreeMap<u8, u64>,
    applied: HashMap<u64, u32>,
}

/// The state machine, in memory: a restarted node rebuilds it from its own log (up to the
/// committed log id it saved) and from the leader.
/// The last snapshot built or installed: its metadata and bytes.
type StoredSnapshot = Option<(SnapshotMeta<NodeId, BasicNode>, Vec<u8>)>;

#[derive(Debug, Default, Clone)]
struct RideCounter {
    counts: Arc<Mutex<Counts>>,
    snapshot: Arc<Mutex<StoredSnapshot>>,
}

impl RideCounter {
    fn counts(&self) -> Counts {
        self.counts.lock().expect("lock").clone()
    }
}

impl RaftSnapshotBuilder<TypeConfig> for RideCounter {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let counts = self.counts();
        let data = serde_json::to_vec(&counts).expect("serialize");
        let meta = SnapshotMeta {
            last_log_id: counts.last_applied,
            last_membership: counts.membership.clone(),
            snapshot_id: format!("{:?}", counts.last_applied),
        };
        *self.snapshot.lock().expect("lock") = Some((meta.clone(), data.clone()));
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftStateMachine<TypeConfig> for RideCounter {
    type SnapshotBuilder = Self;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError<NodeId>>
    {
        let c = self.counts.lock().expect("lock");
        Ok((c.last_applied, c.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<()>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
    {
        let mut c = self.counts.lock().expect("lock");
        let mut out = Vec::new();
        for e in entries {
            c.last_applied = Some(e.log_id);
            match e.payload {
                EntryPayload::Blank => {}
                EntryPayload::Normal(ride) => {
                    *c.rides_per_vendor.entry(ride.vendor_id).or_default() += 1;
                    *c.applied.entry(ride.id).or_default() += 1;
                }
                EntryPayload::Membership(m) => {
                    c.membership = StoredMembership::new(Some(e.log_id), m)
                }
            }
            out.push(());
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
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        let data = snapshot.into_inner();
        *self.counts.lock().expect("lock") = serde_json::from_slice(&data).expect("snapshot");
        *self.snapshot.lock().expect("lock") = Some((meta.clone(), data));
        Ok(())
    }

    async fn get_current_snapshot(
        &mut self,
    ) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let snapshot = self.snapshot.lock().expect("lock").clone();
        Ok(snapshot.map(|(meta, data)| Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        }))
    }
}

/// An RPC with its reply channel.
enum Rpc {
    Append(
        AppendEntriesRequest<TypeConfig>,
        oneshot::Sender<Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>>,
    ),
    Vote(
        VoteRequest<NodeId>,
        oneshot::Sender<Result<VoteResponse<NodeId>, RaftError<NodeId>>>,
    ),
    Snapshot(
        InstallSnapshotRequest<TypeConfig>,
        oneshot::Sender<
            Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
        >,
    ),
}

/// Every live node's inbox.
#[derive(Clone, Default)]
struct Router {
    inboxes: Arc<Mutex<HashMap<NodeId, mpsc::UnboundedSender<Rpc>>>>,
}

impl Router {
    /// Serves `raft`'s inbox until the node is removed.
    fn join(&self, id: NodeId, raft: Rafty) {
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.inboxes.lock().expect("lock").insert(id, tx);
        tokio::spawn(async move {
            while let Some(rpc) = rx.recv().await {
                let raft = raft.clone();
                // Each RPC on its own task, as a server would: a slow append does not hold up
                // a vote.
                tokio::spawn(async move {
                    match rpc {
                        Rpc::Append(req, reply) => drop(reply.send(raft.append_entries(req).await)),
                        Rpc::Vote(req, reply) => drop(reply.send(raft.vote(req).await)),
                        Rpc::Snapshot(req, reply) => {
                            drop(reply.send(raft.install_snapshot(req).await))
                        }
                    }
                });
            }
        });
    }

    fn leave(&self, id: NodeId) {
        self.inboxes.lock().expect("lock").remove(&id);
    }

    fn inbox(&self, id: NodeId) -> Option<mpsc::UnboundedSender<Rpc>> {
        self.inboxes.lock().expect("lock").get(&id).cloned()
    }
}

#[derive(Debug)]
struct Down(NodeId);

impl std::fmt::Display for Down {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "node {} is down", self.0)
    }
}

impl std::error::Error for Down {}

/// A connection from one node to `target`.
struct Connection {
    router: Router,
    target: NodeId,
}

impl Connection {
    async fn call<T, E: std::error::Error>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<T, E>>) -> Rpc,
    ) -> Result<T, RPCError<NodeId, BasicNode, E>> {
        let unreachable = || RPCError::Unreachable(Unreachable::new(&Down(self.target)));
        let inbox = self.router.inbox(self.target).ok_or_else(unreachable)?;
        let (tx, rx) = oneshot::channel();
        inbox.send(make(tx)).map_err(|_| unreachable())?;
        match rx.await {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(e)) => Err(RPCError::RemoteError(RemoteError::new(self.target, e))),
            Err(_) => Err(unreachable()),
        }
    }
}

impl RaftNetwork<TypeConfig> for Connection {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(|tx| Rpc::Append(rpc, tx)).await
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        _option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        self.call(|tx| Rpc::Snapshot(rpc, tx)).await
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        _option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        self.call(|tx| Rpc::Vote(rpc, tx)).await
    }
}

impl RaftNetworkFactory<TypeConfig> for Router {
    type Network = Connection;

    async fn new_client(&mut self, target: NodeId, _node: &BasicNode) -> Connection {
        Connection {
            router: self.clone(),
            target,
        }
    }
}

/// A running node: its Raft, its state machine, its directory.
struct Node {
    raft: Rafty,
    counter: RideCounter,
    dir: PathBuf,
    /// What its log held when it started.
    held: String,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn start(id: NodeId, dir: &Path, router: &Router) -> Result<Node, BoxError> {
    let config = openraft::Config {
        cluster_name: "taxi".into(),
        heartbeat_interval: 100,
        election_timeout_min: 400,
        election_timeout_max: 800,
        snapshot_policy: openraft::SnapshotPolicy::Never,
        ..Default::default()
    };
    // A killed node's store closes when openraft's last handle on it goes: wait for the lock.
    let deadline = Instant::now() + Duration::from_secs(10);
    let store = loop {
        match LogStore::<TypeConfig>::open(dir, StoreConfig::default()) {
            Err(partlog_raft::Error::Log(partlog::Error::Locked { .. }))
                if Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            r => break r?,
        }
    };
    let held = format!(
        "{} entries (offsets {}..{}), terms (term, first index) {:?}",
        store.log().log_end_offset() - store.log().log_start_offset(),
        store.log().log_start_offset(),
        store.log().log_end_offset(),
        store.terms()
    );
    let counter = RideCounter::default();
    let raft = Raft::new(
        id,
        Arc::new(config.validate()?),
        router.clone(),
        store,
        counter.clone(),
    )
    .await?;
    router.join(id, raft.clone());
    Ok(Node {
        raft,
        counter,
        dir: dir.to_owned(),
        held,
    })
}

/// Proposes `n` rides through `leader`, `concurrency` at a time; returns their ids once each is
/// committed.
async fn propose(
    leader: &Rafty,
    rides: &mut RideGenerator,
    n: usize,
    concurrency: usize,
) -> Result<Vec<u64>, BoxError> {
    let mut committed = Vec::with_capacity(n);
    let mut left = n;
    while left > 0 {
        let wave: Vec<Ride> = (0..left.min(concurrency)).map(|_| rides.ride()).collect();
        left -= wave.len();
        let writes = wave.into_iter().map(|ride| {
            let leader = leader.clone();
            tokio::spawn(async move {
                let id = ride.id;
                leader.client_write(ride).await.map(|_| id)
            })
        });
        for w in writes.collect::<Vec<_>>() {
            committed.push(w.await??);
        }
    }
    Ok(committed)
}

async fn leader_of(
    nodes: &BTreeMap<NodeId, Node>,
    not: Option<NodeId>,
) -> Result<NodeId, BoxError> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        for node in nodes.values() {
            let m = node.raft.metrics().borrow().clone();
            if let Some(leader) = m.current_leader {
                if Some(leader) != not && m.id == leader && nodes.contains_key(&leader) {
                    return Ok(leader);
                }
            }
        }
        if Instant::now() > deadline {
            return Err("no leader elected within 10 s".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), BoxError> {
    let began = Instant::now();
    let root = tempfile::tempdir()?;
    let router = Router::default();
    let mut rides = RideGenerator::new();
    let mut nodes = BTreeMap::new();
    for id in 1..=3 {
        let dir = root.path().join(format!("node-{id}"));
        nodes.insert(id, start(id, &dir, &router).await?);
    }
    let members: BTreeMap<NodeId, BasicNode> = (1..=3)
        .map(|id| (id, BasicNode::new(format!("in-process-{id}"))))
        .collect();
    nodes[&1].raft.initialize(members).await?;
    let first = leader_of(&nodes, None).await?;
    println!("3 nodes, each with its Raft log in a partlog directory; node {first} leads");

    let mut committed = propose(&nodes[&first].raft, &mut rides, 1000, 64).await?;
    println!("{} rides committed through node {first}", committed.len());

    // Kill the leader: its Raft stops, its files stay.
    let killed = nodes.remove(&first).ok_or("leader vanished")?;
    router.leave(first);
    killed.raft.shutdown().await?;
    let killed_dir = killed.dir.clone();
    drop(killed);
    println!("killed node {first} (Raft shut down, partlog files kept)");

    let second = leader_of(&nodes, Some(first)).await?;
    let term = nodes[&second].raft.metrics().borrow().current_term;
    println!("openraft elected node {second} (term {term})");
    committed.extend(propose(&nodes[&second].raft, &mut rides, 1000, 64).await?);
    println!("{} rides committed in all", committed.len());

    // The old leader comes back from its own files.
    let back = start(first, &killed_dir, &router).await?;
    println!(
        "node {first} restarted from its partlog files: {}",
        back.held
    );
    nodes.insert(first, back);

    committed.extend(propose(&nodes[&second].raft, &mut rides, 1000, 64).await?);
    let last = nodes[&second].raft.metrics().borrow().last_log_index;
    for (id, node) in &nodes {
        node.raft
            .wait(Some(Duration::from_secs(20)))
            .applied_index_at_least(last, format!("node {id} catches up"))
            .await?;
    }
    println!(
        "{} rides committed; every node applied up to index {last:?}",
        committed.len()
    );

    for (id, node) in &nodes {
        let counts = node.counter.counts();
        let missing = committed
            .iter()
            .filter(|r| !counts.applied.contains_key(r))
            .count();
        let twice = counts.applied.values().filter(|&&n| n != 1).count();
        let unknown = counts.applied.len() + missing - committed.len();
        println!(
            "node {id}: rides per vendor {:?}; {missing} missing, {twice} applied more than once, {unknown} never committed",
            counts.rides_per_vendor
        );
        if missing + twice + unknown > 0 {
            return Err(
                format!("node {id} did not apply every committed ride exactly once").into(),
            );
        }
    }
    for node in nodes.values() {
        node.raft.shutdown().await?;
    }
    println!(
        "every committed ride applied exactly once on every node ({:.1} s)",
        began.elapsed().as_secs_f64()
    );
    Ok(())
}

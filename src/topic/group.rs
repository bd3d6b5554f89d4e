//! [`GroupCoordinator`]: an in-process consumer group coordinator (Kafka's `GroupCoordinator`,
//! without the network): membership, session timeouts, generations, rebalancing, and the
//! committed offsets in an [`OffsetStore`].
//!
//! # Protocol
//! - [`join`](GroupCoordinator::join) adds a member and rebalances at once: the generation goes
//!   up by one and every partition of the subscribed topics is assigned by the group's
//!   [`Assignor`]. The other members learn of it at their next
//!   [`heartbeat`](GroupCoordinator::heartbeat), which answers with the current generation and
//!   the member's assignment.
//! - A member that sends no heartbeat for its session timeout (by the injected [`Clock`]) is
//!   removed, and the group rebalances: its partitions move to the others.
//!   [`leave`](GroupCoordinator::leave) does the same at once.
//! - [`commit`](GroupCoordinator::commit) is accepted only from a current member in the current
//!   generation ([`GroupError::IllegalGeneration`] otherwise, as Kafka's `ILLEGAL_GENERATION`),
//!   so a member that missed a rebalance cannot overwrite the new owner's progress. It returns
//!   once the offsets are durable.
//!
//! # Fencing across a restart
//! A member id is `<client_id>-<128 random bits>` (Kafka's `clientId-<uuid>`), never reused,
//! and every rebalance records the group's new generation in the [`OffsetStore`] before any
//! member hears of it. So after the coordinator restarts, a member from before (a zombie that
//! never heard of the restart) is unknown ([`GroupError::UnknownMember`]), and the first
//! generation handed out is above every earlier one.
//!
//! Delivery is at least once: records a member polled but did not commit before its partitions
//! moved are read again by the new owner.
//!
//! # Invariants
//! - In every generation each partition of every subscribed topic is assigned to exactly one
//!   live member subscribed to it.
//! - Generations only grow, across restarts too; expired members are removed before any call
//!   is answered.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, BTreeSet};
use std::hash::{BuildHasher, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use super::assignor::{assign, Assignor, MemberSubscription, TopicPartition};
use super::offsets::OffsetStore;
use crate::clock::{Clock, SystemClock};
use crate::error::GroupError;
use crate::error::Result;

/// Kafka's `group.min.session.timeout.ms` default.
pub const DEFAULT_MIN_SESSION_TIMEOUT_MS: i64 = 6_000;
/// Kafka's `group.max.session.timeout.ms` default.
pub const DEFAULT_MAX_SESSION_TIMEOUT_MS: i64 = 1_800_000;
/// Kafka's consumer `session.timeout.ms` default (since 3.0).
pub const DEFAULT_SESSION_TIMEOUT_MS: i64 = 45_000;
/// Longest group or client id.
const MAX_ID_BYTES: usize = 255;

/// The coordinator's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoordinatorConfig {
    /// Shortest session timeout a member may ask for.
    pub min_session_timeout_ms: i64,
    /// Longest session timeout a member may ask for.
    pub max_session_timeout_ms: i64,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        CoordinatorConfig {
            min_session_timeout_ms: DEFAULT_MIN_SESSION_TIMEOUT_MS,
            max_session_timeout_ms: DEFAULT_MAX_SESSION_TIMEOUT_MS,
        }
    }
}

/// A member's request to join a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinRequest {
    /// The group.
    pub group: String,
    /// The client's name (member ids are `<client_id>-<128 random bits>`, as Kafka's
    /// `clientId-<uuid>`).
    pub client_id: String,
    /// Topics to read, with their partition counts.
    pub subscription: BTreeMap<String, u32>,
    /// How long the member may go without a heartbeat.
    pub session_timeout_ms: i64,
    /// The assignor it proposes; the group keeps the one its first member proposed.
    pub assignor: Assignor,
}

/// A member's view of its group: its id, the generation, and its partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Membership {
    /// The group.
    pub group: String,
    /// The member's id.
    pub member_id: String,
    /// The current generation.
    pub generation: i32,
    /// The member's partitions in this generation, sorted.
    pub assignment: Vec<TopicPartition>,
}

/// A member as [`GroupCoordinator::describe_group`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemberDescription {
    /// The member's id.
    pub member_id: String,
    /// Its client id.
    pub client_id: String,
    /// Its partitions.
    pub assignment: Vec<TopicPartition>,
}

/// A group as [`GroupCoordinator::describe_group`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GroupDescription {
    /// The group.
    pub group: String,
    /// The current generation (0 before any member joined).
    pub generation: i32,
    /// The assignor in use.
    pub assignor: Assignor,
    /// The live members, by member id.
    pub members: Vec<MemberDescription>,
    /// The committed offsets.
    pub offsets: BTreeMap<TopicPartition, i64>,
}

#[derive(Debug)]
struct Member {
    client_id: String,
    subscription: BTreeMap<String, u32>,
    session_timeout_ms: i64,
    last_heartbeat_ms: i64,
}

#[derive(Debug, Default)]
struct Group {
    generation: i32,
    assignor: Assignor,
    members: BTreeMap<String, Member>,
    assignment: BTreeMap<String, Vec<TopicPartition>>,
}

impl Group {
    /// A new generation: every partition reassigned among the live members.
    fn rebalance(&mut self) {
        self.generation = self.generation.saturating_add(1);
        let mut topics: BTreeMap<String, u32> = BTreeMap::new();
        for m in self.members.values() {
            for (t, &n) in &m.subscription {
                let e = topics.entry(t.clone()).or_insert(n);
                *e = (*e).max(n);
            }
        }
        let subs: BTreeMap<String, MemberSubscription> = self
            .members
            .iter()
            .map(|(id, m)| {
                (
                    id.clone(),
                    MemberSubscription {
                        topics: m.subscription.keys().cloned().collect(),
                        owned: self.assignment.get(id).cloned().unwrap_or_default(),
                    },
                )
            })
            .collect();
        self.assignment = assign(self.assignor, &subs, &topics);
    }

    fn membership(&self, group: &str, member_id: &str) -> Membership {
        Membership {
            group: group.to_owned(),
            member_id: member_id.to_owned(),
            generation: self.generation,
            assignment: self.assignment.get(member_id).cloned().unwrap_or_default(),
        }
    }
}

#[derive(Debug)]
struct State {
    store: OffsetStore,
    groups: BTreeMap<String, Group>,
    next_member: u64,
}

impl State {
    /// Records `group`'s generation durably (after a rebalance, before anyone hears of it).
    fn record_generation(&mut self, group: &str) -> Result<()> {
        let Some(generation) = self.groups.get(group).map(|g| g.generation) else {
            return Ok(());
        };
        if self.store.generation(group) == Some(generation) {
            return Ok(());
        }
        self.store.record_generation(group, generation)
    }
}

/// A member id suffix unique across restarts: 128 bits, formatted as a UUID. The bits are
/// SipHash of (wall time, process id, `seq`) under `RandomState`'s keys, which std seeds from
/// the operating system's random source.
fn unique_id(seq: u64) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let half = |salt: u8| {
        let mut h = RandomState::new().build_hasher();
        h.write_u128(now);
        h.write_u32(std::process::id());
        h.write_u64(seq);
        h.write_u8(salt);
        u128::from(h.finish())
    };
    let v = (half(0) << 64) | half(1);
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        v >> 96,
        (v >> 80) & 0xffff,
        (v >> 64) & 0xffff,
        (v >> 48) & 0xffff,
        v & 0xffff_ffff_ffff
    )
}

/// The coordinator. `Send + Sync`; every call takes one lock. See the module docs.
///
/// ```
/// use std::sync::Arc;
/// use partlog::ManualClock;
/// use partlog::topic::{Assignor, GroupCoordinator, JoinRequest};
///
/// let dir = tempfile::tempdir()?;
/// let clock = ManualClock::new(0);
/// let coordinator = GroupCoordinator::open_with_clock(dir.path(), Arc::new(clock.clone()))?;
/// let join = |client: &str| JoinRequest {
///     group: "riders".into(),
///     client_id: client.into(),
///     subscription: [("rides".to_string(), 2)].into(),
///     session_timeout_ms: 10_000,
///     assignor: Assignor::Range,
/// };
/// let a = coordinator.join(&join("a"))?;
/// let b = coordinator.join(&join("b"))?;
/// assert_eq!((a.assignment.len(), b.generation), (2, 2));
/// // `a` learns of the rebalance at its heartbeat, and keeps one partition.
/// let a = coordinator.heartbeat("riders", &a.member_id, a.generation)?;
/// assert_eq!(a.assignment.len(), 1);
/// // `b` stops heartbeating: after its session timeout, `a` has both partitions again.
/// clock.advance(10_001);
/// coordinator.heartbeat("riders", &a.member_id, a.generation).err().unwrap();
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct GroupCoordinator {
    clock: Arc<dyn Clock>,
    config: CoordinatorConfig,
    state: Mutex<State>,
}

fn check_id(id: &str, allow_empty: bool) -> Result<()> {
    if (id.is_empty() && !allow_empty) || id.len() > MAX_ID_BYTES {
        return Err(GroupError::InvalidGroupId {
            group: id.chars().take(64).collect(),
        }
        .into());
    }
    Ok(())
}

impl GroupCoordinator {
    /// Opens the coordinator over the offsets in `dir` (created if needed), on the system
    /// clock.
    ///
    /// # Errors
    /// As [`OffsetStore::open`].
    pub fn open(dir: impl AsRef<Path>) -> Result<GroupCoordinator> {
        Self::open_with_clock(dir, Arc::new(SystemClock))
    }

    /// [`GroupCoordinator::open`] with an injected clock (session timeouts).
    ///
    /// # Errors
    /// As [`OffsetStore::open`].
    pub fn open_with_clock(dir: impl AsRef<Path>, clock: Arc<dyn Clock>) -> Result<Self> {
        Self::with_store(OffsetStore::open(dir)?, clock, CoordinatorConfig::default())
    }

    /// The coordinator of the data directory `data`, its offsets in the data directory's own
    /// store ([`OffsetStore::open_in_data_dir`]: a file a Kafka broker ignores, where a
    /// sub-directory would make it refuse the directory). Where the CLI keeps them.
    ///
    /// # Errors
    /// As [`OffsetStore::open_in_data_dir`].
    pub fn open_data_dir(data: impl AsRef<Path>) -> Result<GroupCoordinator> {
        Self::open_data_dir_with_clock(data, Arc::new(SystemClock))
    }

    /// [`GroupCoordinator::open_data_dir`] with an injected clock (session timeouts).
    ///
    /// # Errors
    /// As [`OffsetStore::open_in_data_dir`].
    pub fn open_data_dir_with_clock(data: impl AsRef<Path>, clock: Arc<dyn Clock>) -> Result<Self> {
        Self::with_store(
            OffsetStore::open_in_data_dir(data)?,
            clock,
            CoordinatorConfig::default(),
        )
    }

    /// A coordinator over an opened store, with its limits. Each group starts at the
    /// generation the store last recorded for it, with no members.
    ///
    /// # Errors
    /// None today; reserved for checks of `config`.
    pub fn with_store(
        store: OffsetStore,
        clock: Arc<dyn Clock>,
        config: CoordinatorConfig,
    ) -> Result<Self> {
        let groups = store
            .generations()
            .iter()
            .map(|(name, &generation)| {
                (
                    name.clone(),
                    Group {
                        generation,
                        ..Group::default()
                    },
                )
            })
            .collect();
        Ok(GroupCoordinator {
            clock,
            config,
            state: Mutex::new(State {
                store,
                groups,
                next_member: 1,
            }),
        })
    }

    /// Takes the lock and removes every member whose session expired (rebalancing its group
    /// and recording the new generation; if that write fails the store refuses every later
    /// write, [`Error::PreviousIo`](crate::Error::PreviousIo), so no commit lands in a
    /// generation that a restart could hand out again).
    fn lock(&self) -> MutexGuard<'_, State> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let now = self.clock.now_ms();
        let mut rebalanced = Vec::new();
        for (name, group) in &mut st.groups {
            let before = group.members.len();
            group
                .members
                .retain(|_, m| now.saturating_sub(m.last_heartbeat_ms) <= m.session_timeout_ms);
            if group.members.len() != before {
                group.rebalance();
                rebalanced.push(name.clone());
            }
        }
        for name in rebalanced {
            // A failure leaves the store failed: every later write reports it.
            let _ = st.record_generation(&name);
        }
        st
    }

    /// Adds a member to `request.group` (creating the group) and rebalances.
    ///
    /// # Errors
    /// [`GroupError::InvalidGroupId`], [`GroupError::InvalidSessionTimeout`],
    /// [`GroupError::InvalidSubscription`] for no topics; as
    /// [`OffsetStore::record_generation`] (the new generation is recorded before the answer).
    pub fn join(&self, request: &JoinRequest) -> Result<Membership> {
        check_id(&request.group, false)?;
        check_id(&request.client_id, true)?;
        let (min, max) = (
            self.config.min_session_timeout_ms,
            self.config.max_session_timeout_ms,
        );
        if !(min..=max).contains(&request.session_timeout_ms) {
            return Err(GroupError::InvalidSessionTimeout {
                session_timeout_ms: request.session_timeout_ms,
                min,
                max,
            }
            .into());
        }
        if request.subscription.is_empty() {
            return Err(GroupError::InvalidSubscription {
                reason: "no topics",
            }
            .into());
        }
        let now = self.clock.now_ms();
        let mut st = self.lock();
        let member_id = loop {
            let seq = st.next_member;
            st.next_member += 1;
            let id = format!("{}-{}", request.client_id, unique_id(seq));
            if !st
                .groups
                .get(&request.group)
                .is_some_and(|g| g.members.contains_key(&id))
            {
                break id;
            }
        };
        let group = st.groups.entry(request.group.clone()).or_default();
        if group.members.is_empty() {
            group.assignor = request.assignor;
        }
        group.members.insert(
            member_id.clone(),
            Member {
                client_id: request.client_id.clone(),
                subscription: request.subscription.clone(),
                session_timeout_ms: request.session_timeout_ms,
                last_heartbeat_ms: now,
            },
        );
        group.rebalance();
        let membership = group.membership(&request.group, &member_id);
        st.record_generation(&request.group)?;
        Ok(membership)
    }

    /// Records a heartbeat of `member_id`, which acted in `generation`, and answers with its
    /// current membership: a newer generation and another assignment if the group rebalanced.
    ///
    /// # Errors
    /// [`GroupError::UnknownMember`] if it left or its session expired (it must join again);
    /// [`GroupError::IllegalGeneration`] for a generation the group never had.
    pub fn heartbeat(&self, group: &str, member_id: &str, generation: i32) -> Result<Membership> {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        let g = find_group(&mut st, group, member_id)?;
        if generation > g.generation {
            return Err(GroupError::IllegalGeneration {
                group: group.to_owned(),
                member_id: member_id.to_owned(),
                generation,
                current_generation: g.generation,
            }
            .into());
        }
        if let Some(m) = g.members.get_mut(member_id) {
            m.last_heartbeat_ms = now;
        }
        Ok(g.membership(group, member_id))
    }

    /// Removes `member_id` from `group` and rebalances.
    ///
    /// # Errors
    /// [`GroupError::UnknownMember`]; as [`OffsetStore::record_generation`].
    pub fn leave(&self, group: &str, member_id: &str) -> Result<()> {
        let mut st = self.lock();
        let g = find_group(&mut st, group, member_id)?;
        g.members.remove(member_id);
        g.rebalance();
        st.record_generation(group)
    }

    /// Commits `offsets` (the next offset to read, per partition) for `group`, durably, from
    /// `member_id` in `generation`. All or nothing.
    ///
    /// # Errors
    /// [`GroupError::UnknownMember`], [`GroupError::IllegalGeneration`] unless `generation` is
    /// the group's current one; [`GroupError::InvalidOffset`]; as [`OffsetStore::commit`].
    pub fn commit(
        &self,
        group: &str,
        member_id: &str,
        generation: i32,
        offsets: &[(TopicPartition, i64)],
    ) -> Result<()> {
        let mut st = self.lock();
        let current_generation = find_group(&mut st, group, member_id)?.generation;
        if generation != current_generation {
            return Err(GroupError::IllegalGeneration {
                group: group.to_owned(),
                member_id: member_id.to_owned(),
                generation,
                current_generation,
            }
            .into());
        }
        st.store.commit(group, offsets)
    }

    /// Commits offsets for a group outside any generation (Kafka's "simple consumer" commit,
    /// allowed only while the group has no members; the CLI's offset resets).
    ///
    /// # Errors
    /// [`GroupError::IllegalGeneration`] (with generation -1) if the group has members; as
    /// [`OffsetStore::commit`].
    pub fn commit_standalone(&self, group: &str, offsets: &[(TopicPartition, i64)]) -> Result<()> {
        check_id(group, false)?;
        let mut st = self.lock();
        if let Some(g) = st.groups.get(group).filter(|g| !g.members.is_empty()) {
            return Err(GroupError::IllegalGeneration {
                group: group.to_owned(),
                member_id: String::new(),
                generation: -1,
                current_generation: g.generation,
            }
            .into());
        }
        st.store.commit(group, offsets)
    }

    /// The committed offset of `group` for `tp`.
    pub fn committed(&self, group: &str, tp: &TopicPartition) -> Option<i64> {
        self.lock().store.committed(group, tp)
    }

    /// Groups with members or committed offsets, sorted.
    pub fn list_groups(&self) -> Vec<String> {
        let st = self.lock();
        let mut names: BTreeSet<String> = st.store.groups().into_iter().collect();
        names.extend(
            st.groups
                .iter()
                .filter(|(_, g)| !g.members.is_empty())
                .map(|(n, _)| n.clone()),
        );
        names.into_iter().collect()
    }

    /// The group's generation, members and committed offsets; `None` if it has neither
    /// members nor offsets.
    pub fn describe_group(&self, group: &str) -> Option<GroupDescription> {
        let st = self.lock();
        let offsets = st.store.group_offsets(group);
        let g = st.groups.get(group);
        if offsets.is_empty() && g.is_none_or(|g| g.members.is_empty()) {
            return None;
        }
        Some(GroupDescription {
            group: group.to_owned(),
            generation: g.map_or(0, |g| g.generation),
            assignor: g.map_or_else(Assignor::default, |g| g.assignor),
            members: g
                .map(|g| {
                    g.members
                        .iter()
                        .map(|(id, m)| MemberDescription {
                            member_id: id.clone(),
                            client_id: m.client_id.clone(),
                            assignment: g.assignment.get(id).cloned().unwrap_or_default(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            offsets,
        })
    }

    /// Removes members whose session expired now (every call does this first; this is for
    /// callers that want it to happen without another call). Returns the groups' generations
    /// after it.
    pub fn expire_sessions(&self) -> BTreeMap<String, i32> {
        self.lock()
            .groups
            .iter()
            .map(|(n, g)| (n.clone(), g.generation))
            .collect()
    }
}

/// The group holding `member_id`, or [`GroupError::UnknownMember`].
fn find_group<'a>(st: &'a mut State, group: &str, member_id: &str) -> Result<&'a mut Group> {
    match st.groups.get_mut(group) {
        Some(g) if g.members.contains_key(member_id) => Ok(g),
        _ => Err(GroupError::UnknownMember {
            group: group.to_owned(),
            member_id: member_id.to_owned(),
        }
        .into()),
    }
}

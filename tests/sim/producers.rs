//! Idempotent and transactional producers for the replicated fault simulation (issue 20).
//!
//! Each producer behaves as Kafka's Java producer does with `enable.idempotence` (and, for a
//! transactional one, a `transactional.id`): every batch carries its producer id, epoch and base
//! sequence; at most five batches are in flight (sent, their answer not seen); a batch whose
//! answer did not arrive (the leader died, too few replicas, or the answer was lost on the way:
//! drawn at random) is sent again, oldest first, to whichever replica leads then. A transactional
//! producer opens a transaction with its first batch and ends it (commit or abort, drawn) once
//! every batch of it is acknowledged; the transaction coordinator (played here) then writes the
//! marker with `acks=all` and writes it again until it is committed, as Kafka's coordinator does.
//!
//! Checked after every step, on every replica:
//! - **no record is in the log twice** (a retried batch the log already holds is answered as a
//!   duplicate, never appended again, across failovers and elections);
//! - a duplicate answer names offsets that hold that very batch on the leader, and a retry of a
//!   batch the leader holds is never refused (also after a restart, whose snapshot kept only
//!   each producer's last batch);
//! - under `read_committed`, no record of an aborted or undecided transaction is ever visible
//!   (the last stable offset never exposes one), and the last stable offset is at most the
//!   high watermark and never moves back on a leader within its term.
//!
//! And at the end, once healed: every batch of an idempotent producer is in the log exactly once;
//! every record of a committed transaction is visible under `read_committed` on every ISR
//! replica; the leader's last stable offset has caught up with its high watermark.
//!
//! A producer whose batch is refused as out of order (its acknowledged batches are gone from
//! the log) fails it to its caller and bumps its epoch once nothing is in flight, numbering its
//! next batches from 0, as Kafka's producer does; that is only legal after a loss the
//! simulation excuses (an unclean election, or every ISR replica losing power while
//! acknowledging on append), and the simulation fails otherwise.

use std::collections::{HashMap, HashSet, VecDeque};

use partlog::batch::{BatchBuilder, EndTxnMarker, RecordBatch, SimpleRecord, TxnResult};
use partlog::log::producer_state::ProducerError;
use partlog::log::{IsolationLevel, ReadCommittedFilter};
use partlog::replica::{Acks, Partition, ReplicaError, ReplicaId, ReplicaSet};
use partlog::Error;

use super::{expect_ok, value_of, Acked, Rng};

/// Kafka's `max.in.flight.requests.per.connection` bound for an idempotent producer: the
/// broker keeps the metadata of the last five batches, so a retry is always among them.
const MAX_IN_FLIGHT: usize = 5;

/// A batch sent and not yet acknowledged to its producer.
#[derive(Debug, Clone)]
struct InFlight {
    seq: i32,
    ids: Vec<u64>,
    timestamp: i64,
    state: Answer,
}

/// Where a batch in flight stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Answer {
    /// Written by the leader of `leader_epoch`, its answer not seen (lost, behind one not seen,
    /// or `acks=all` not complete yet).
    Awaited { leader_epoch: i32 },
    /// Refused (or never sent): to send again.
    Resend,
    /// Refused as out of order: failed to the producer's caller, out of the flight.
    GivenUp,
}

#[derive(Debug)]
struct Producer {
    pid: i64,
    epoch: i16,
    next_seq: i32,
    transactional: bool,
    /// In sequence order, at most [`MAX_IN_FLIGHT`].
    in_flight: VecDeque<InFlight>,
    /// A batch was given up: the epoch is bumped once nothing is in flight.
    bump_epoch: bool,
    /// Its current transaction (an index into [`Producers::txns`]): open, or decided with its
    /// marker not yet committed.
    txn: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Open,
    Commit,
    Abort,
}

#[derive(Debug)]
struct Txn {
    producer: usize,
    ids: Vec<u64>,
    outcome: Outcome,
    /// Where the coordinator last wrote the marker (leader epoch, offset).
    marker_at: Option<(i32, i64)>,
    /// The marker is below the leader's high watermark: the coordinator is done.
    marker_committed: bool,
    /// A loss the simulation excuses may have taken its marker (an unclean election, or every
    /// holder losing power while acknowledging on append): its records' visibility is not
    /// checked (Kafka's "hanging transaction" after such a loss).
    excused: bool,
}

/// What the producers did, for the run's summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProducerStats {
    /// Batches sent again.
    pub retries: usize,
    /// Retries answered as duplicates (the log already held them).
    pub duplicates: usize,
    /// Retries refused as out of order and failed to the producer's caller.
    pub given_up: usize,
    /// Producers that bumped their epoch after giving a batch up.
    pub resets: usize,
    /// Transactions committed and aborted (markers committed).
    pub commits: usize,
    /// See `commits`.
    pub aborts: usize,
}

/// What a producer's move acts on: the replicas, the draws, the batches acknowledged so far,
/// and the run's clock and place (for the failure messages).
pub struct Ctx<'a> {
    pub set: &'a mut ReplicaSet,
    pub rng: &'a mut Rng,
    pub acked: &'a mut Vec<Acked>,
    pub now: i64,
    pub seed: u64,
    pub step: usize,
}

/// The producers of one simulation run.
pub struct Producers {
    producers: Vec<Producer>,
    txns: Vec<Txn>,
    /// Record id -> its transaction.
    txn_of: HashMap<u64, usize>,
    /// The leader's last stable offset last seen, with its leader epoch.
    leader_lso: Option<(i32, i64)>,
    /// A loss the simulation excuses happened (`excuse_lost`, `excuse_all`): a producer may
    /// then find its acknowledged batches gone.
    loss_possible: bool,
    pub stats: ProducerStats,
}

fn retriable(e: &Error) -> bool {
    matches!(
        e,
        Error::Replica(
            ReplicaError::NoLeader
                | ReplicaError::NotLeader { .. }
                | ReplicaError::NotEnoughReplicas { .. }
                | ReplicaError::NotEnoughReplicasAfterAppend { .. }
        )
    )
}

/// The ids of the records of `batches` (their values start with the id).
fn id_of(value: &[u8]) -> u64 {
    u64::from_le_bytes(value[..8].try_into().unwrap())
}

/// Every data record of `p`'s log with its batch's producer id, in offset order.
fn log_ids(p: &Partition) -> Vec<u64> {
    let mut ids = Vec::new();
    let mut at = p.log_start_offset();
    while at < p.log_end_offset() {
        let r = p.log().read(at, 1 << 20).unwrap();
        if r.batches.is_empty() {
            break;
        }
        for b in &r.batches {
            if b.header().is_control() {
                continue;
            }
            for rec in b.records().unwrap() {
                ids.push(id_of(&rec.unwrap().value.unwrap()));
            }
        }
        at = r.next_offset;
    }
    ids
}

/// What a `read_committed` consumer of `p` sees, from its log start to its last stable offset.
fn visible_ids(p: &Partition) -> Vec<u64> {
    let mut ids = Vec::new();
    let mut at = p.log_start_offset();
    let lso = p.last_stable_offset();
    while at < lso {
        let r = p
            .read_isolated(at, 1 << 20, IsolationLevel::ReadCommitted)
            .unwrap();
        if r.batches.is_empty() {
            break;
        }
        let mut filter = ReadCommittedFilter::new(r.aborted_transactions.as_deref().unwrap());
        for b in &r.batches {
            assert!(
                b.last_offset() < lso,
                "a read_committed read returned offset {} past the last stable offset {lso}",
                b.last_offset()
            );
            if filter.keep(b).unwrap() {
                for rec in b.records().unwrap() {
                    ids.push(id_of(&rec.unwrap().value.unwrap()));
                }
            }
        }
        at = r.next_offset;
    }
    ids
}

/// Whether the leader's log holds `ids` at `first..` in one batch of `pid`.
fn leader_holds(p: &Partition, first: i64, pid: i64, ids: &[u64]) -> bool {
    let Ok(r) = p.log().read(first, 1 << 20) else {
        return false;
    };
    let Some(b) = r.batches.first() else {
        return false;
    };
    if b.base_offset() != first || b.header().producer_id != pid {
        return false;
    }
    let got: Vec<u64> = b
        .records()
        .unwrap()
        .map(|r| id_of(&r.unwrap().value.unwrap()))
        .collect();
    got == ids
}

impl Producers {
    /// One to four producers, drawn from `rng`; about half of them transactional.
    pub fn new(rng: &mut Rng) -> Self {
        let n = 1 + rng.below(4) as usize;
        let producers = (0..n)
            .map(|i| Producer {
                pid: 1_000 + i as i64,
                epoch: 0,
                next_seq: 0,
                transactional: rng.below(2) == 0,
                in_flight: VecDeque::new(),
                bump_epoch: false,
                txn: None,
            })
            .collect();
        Producers {
            producers,
            txns: Vec::new(),
            txn_of: HashMap::new(),
            leader_lso: None,
            loss_possible: false,
            stats: ProducerStats::default(),
        }
    }

    fn build(&self, i: usize, f: &InFlight) -> RecordBatch {
        let p = &self.producers[i];
        let mut b = BatchBuilder::new()
            .producer(p.pid, p.epoch, f.seq)
            .transactional(p.transactional);
        for &id in &f.ids {
            b.push(&SimpleRecord::new(
                f.timestamp,
                Some(format!("k{id}")),
                Some(value_of(id)),
            ))
            .unwrap();
        }
        b.build().unwrap()
    }

    /// One producer's move: the coordinator finishes its decided transaction, or it sends its
    /// batches in flight again, or ends its transaction, or sends a new batch.
    pub fn act(&mut self, c: &mut Ctx<'_>, next_id: &mut u64) {
        let i = c.rng.below(self.producers.len() as u64) as usize;
        if let Some(t) = self.producers[i].txn {
            if self.txns[t].outcome != Outcome::Open {
                self.write_marker(c, t);
                return;
            }
        }
        let p = &mut self.producers[i];
        if p.bump_epoch && p.in_flight.is_empty() {
            p.bump_epoch = false;
            p.epoch += 1;
            p.next_seq = 0;
            self.stats.resets += 1;
        }
        let p = &self.producers[i];
        // Kafka's producer sends a new batch behind batches awaiting their answer on the same
        // connection (to the same leader), never past one to send again.
        let leader_epoch = c.set.leader().map(|_| c.set.leader_epoch());
        let may_send_new = p.in_flight.len() < MAX_IN_FLIGHT
            && p.in_flight.iter().all(
                |f| matches!(f.state, Answer::Awaited { leader_epoch: e } if Some(e) == leader_epoch),
            );
        if !p.in_flight.is_empty() && (!may_send_new || c.rng.below(2) == 0) {
            self.resend(c, i);
            return;
        }
        if let Some(t) = p
            .txn
            .filter(|_| p.in_flight.is_empty() && c.rng.below(3) == 0)
        {
            self.txns[t].outcome = if c.rng.below(2) == 0 {
                Outcome::Commit
            } else {
                Outcome::Abort
            };
            self.write_marker(c, t);
            return;
        }
        let n = 1 + c.rng.below(4);
        let ids: Vec<u64> = (*next_id..*next_id + n).collect();
        *next_id += n;
        if self.producers[i].transactional && self.producers[i].txn.is_none() {
            self.txns.push(Txn {
                producer: i,
                ids: Vec::new(),
                outcome: Outcome::Open,
                marker_at: None,
                marker_committed: false,
                excused: false,
            });
            self.producers[i].txn = Some(self.txns.len() - 1);
        }
        if let Some(t) = self.producers[i].txn {
            self.txns[t].ids.extend(&ids);
            for &id in &ids {
                self.txn_of.insert(id, t);
            }
        }
        let p = &mut self.producers[i];
        // Its answer comes behind those of the batches still awaited.
        let behind = !p.in_flight.is_empty();
        p.in_flight.push_back(InFlight {
            seq: p.next_seq,
            ids,
            timestamp: c.now,
            state: Answer::Resend,
        });
        p.next_seq += n as i32;
        let last = p.in_flight.len() - 1;
        self.send(c, i, last, behind);
    }

    /// Sends producer `i`'s batches in flight again, oldest first, on a new connection to the
    /// leader, until one is refused.
    fn resend(&mut self, c: &mut Ctx<'_>, i: usize) {
        let mut behind = false;
        let mut k = 0;
        while k < self.producers[i].in_flight.len() {
            self.stats.retries += 1;
            let before = self.producers[i].in_flight.len();
            match self.send(c, i, k, behind) {
                Answer::Resend => {
                    for f in self.producers[i].in_flight.iter_mut().skip(k) {
                        f.state = Answer::Resend;
                    }
                    return;
                }
                Answer::Awaited { .. } => behind = true,
                Answer::GivenUp => {}
            }
            if self.producers[i].in_flight.len() == before {
                k += 1;
            }
        }
    }

    /// Sends producer `i`'s batch in flight `k` with `acks=all`; `behind` if an earlier answer
    /// on the connection is still awaited (answers come back in order, Kafka's protocol: this
    /// one is then not seen either). Returns the batch's new state (acknowledged and seen: it
    /// leaves the flight, and `Awaited` is returned).
    fn send(&mut self, c: &mut Ctx<'_>, i: usize, k: usize, behind: bool) -> Answer {
        let (seed, step) = (c.seed, c.step);
        let f = self.producers[i].in_flight[k].clone();
        let batch = self.build(i, &f);
        let pid = self.producers[i].pid;
        let answer = c.set.produce_batch(&batch, Acks::All, c.now);
        let mut settled = false;
        if std::env::var_os("PARTLOG_SIM_VERBOSE").is_some() {
            eprintln!(
                "  producer {pid} epoch {} seq {} ids {:?} (in flight #{k}{}): {:?}",
                self.producers[i].epoch,
                f.seq,
                f.ids,
                if behind { ", behind" } else { "" },
                answer
            );
        }
        let state = match answer {
            Ok(answer) => {
                if answer.duplicate {
                    self.stats.duplicates += 1;
                }
                let leader = c.set.replica(c.set.leader().unwrap()).unwrap();
                assert!(
                    leader_holds(leader, answer.first_offset, pid, &f.ids),
                    "seed {seed} step {step}: producer {pid} seq {} answered at {} (duplicate: {}), \
                     which does not hold its records {:?}\nreplay with PARTLOG_SIM_SEED={seed}",
                    f.seq,
                    answer.first_offset,
                    answer.duplicate,
                    f.ids
                );
                // One answer in five is lost on its way back (the connection drops).
                if answer.acknowledged && !behind && c.rng.below(5) != 0 {
                    c.acked.push(Acked {
                        first: answer.first_offset,
                        ids: f.ids.clone(),
                    });
                    self.producers[i].in_flight.remove(k);
                    settled = true;
                }
                Answer::Awaited {
                    leader_epoch: answer.leader_epoch,
                }
            }
            Err(e) if retriable(&e) => Answer::Resend,
            Err(Error::Producer(ProducerError::OutOfOrderSequence { last_sequence, .. })) => {
                // Legal only after a loss the simulation excuses took the producer's earlier
                // batches (a sequence gap the log did not make), and never for a batch the
                // leader holds: with at most five in flight a retry is always among the
                // producer's last five, a duplicate also after a restart (the batches the
                // snapshot dropped are looked up in the log).
                let leader = c.set.replica(c.set.leader().unwrap()).unwrap();
                let held: HashSet<u64> = log_ids(leader).into_iter().collect();
                assert!(
                    !f.ids.iter().any(|id| held.contains(id)),
                    "seed {seed} step {step}: producer {pid}'s batch seq {} (ids {:?}) is in the \
                     leader's log, yet its retry was refused as out of order (the log's last \
                     sequence {last_sequence})\nreplay with PARTLOG_SIM_SEED={seed}",
                    f.seq,
                    f.ids
                );
                assert!(
                    self.loss_possible,
                    "seed {seed} step {step}: producer {pid}'s batch seq {} (ids {:?}) refused as \
                     out of order (the log's last sequence {last_sequence}) with no loss \
                     excused\nreplay with PARTLOG_SIM_SEED={seed}",
                    f.seq,
                    f.ids
                );
                self.give_up(c, i, k);
                settled = true;
                Answer::GivenUp
            }
            Err(e) => panic!(
                "seed {seed} step {step}: producer {pid} seq {}: {e}\nreplay with PARTLOG_SIM_SEED={seed}",
                f.seq
            ),
        };
        if !settled {
            self.producers[i].in_flight[k].state = state;
        }
        state
    }

    /// The leader refused producer `i`'s batch in flight `k` as out of order: Kafka's producer
    /// fails it to its caller (it may be in the log, once), and bumps its epoch to number its
    /// next batches from 0 once nothing is in flight (KIP-360); a transactional producer's
    /// transaction is aborted by the coordinator at the bumped epoch, its batches in flight
    /// dropped.
    fn give_up(&mut self, c: &mut Ctx<'_>, i: usize, k: usize) {
        self.stats.given_up += 1;
        let p = &mut self.producers[i];
        p.in_flight.remove(k);
        if let Some(t) = p.txn {
            p.in_flight.clear();
            p.epoch += 1;
            p.next_seq = 0;
            self.stats.resets += 1;
            self.txns[t].outcome = Outcome::Abort;
            self.write_marker(c, t);
        } else {
            p.bump_epoch = true;
        }
    }

    /// The coordinator writes transaction `t`'s marker with `acks=all` (again if the leader
    /// does not hold the last one written), and is done with it once it is committed.
    fn write_marker(&mut self, c: &mut Ctx<'_>, t: usize) {
        let (set, now, seed, step) = (&mut *c.set, c.now, c.seed, c.step);
        let i = self.txns[t].producer;
        let (pid, epoch) = (self.producers[i].pid, self.producers[i].epoch);
        let Some(leader_id) = set.leader() else {
            return;
        };
        let leader = set.replica(leader_id).unwrap();
        // The batch at that offset with that leader epoch is the one that leader wrote.
        let held = self.txns[t].marker_at.is_some_and(|(e, at)| {
            leader
                .log()
                .read(at, 1 << 20)
                .ok()
                .and_then(|r| r.batches.first().cloned())
                .is_some_and(|b| {
                    let h = b.header();
                    b.base_offset() == at
                        && h.is_control()
                        && h.producer_id == pid
                        && h.partition_leader_epoch == e
                })
        });
        if !held {
            if !expect_ok(leader.can_accept_acks_all(), seed, step, "acks=all check") {
                return;
            }
            let result = match self.txns[t].outcome {
                Outcome::Commit => TxnResult::Commit,
                Outcome::Abort => TxnResult::Abort,
                Outcome::Open => unreachable!("an undecided transaction has no marker"),
            };
            let written = leader.append_marker(pid, epoch, EndTxnMarker::new(result, 0), now, now);
            if std::env::var_os("PARTLOG_SIM_VERBOSE").is_some() {
                eprintln!("  marker {result:?} of producer {pid} epoch {epoch}: {written:?}");
            }
            match written {
                Ok(info) => self.txns[t].marker_at = Some((set.leader_epoch(), info.first_offset)),
                Err(e) if retriable(&e) => return,
                Err(e) => panic!(
                    "seed {seed} step {step}: marker of producer {pid}: {e}\nreplay with PARTLOG_SIM_SEED={seed}"
                ),
            }
        }
        expect_ok(set.replicate(now), seed, step, "replicate");
        let (_, at) = self.txns[t].marker_at.unwrap();
        let committed = set
            .leader()
            .and_then(|l| set.replica(l))
            .is_some_and(|l| at < l.high_watermark());
        if committed {
            self.txns[t].marker_committed = true;
            self.producers[i].txn = None;
            match self.txns[t].outcome {
                Outcome::Commit => self.stats.commits += 1,
                _ => self.stats.aborts += 1,
            }
        }
    }

    /// An unclean election reported `from..to` lost: the markers written there are excused.
    pub fn excuse_lost(&mut self, from: i64, to: i64) {
        self.loss_possible = true;
        for t in &mut self.txns {
            if t.marker_at.is_some_and(|(_, at)| at >= from && at < to) {
                t.excused = true;
            }
        }
    }

    /// Every replica holding them lost power acknowledging on append: every marker so far is
    /// excused.
    pub fn excuse_all(&mut self) {
        self.loss_possible = true;
        for t in &mut self.txns {
            if t.marker_at.is_some() {
                t.excused = true;
            }
        }
    }

    /// The checks of every step (see the module docs), on every replica that is up.
    pub fn check(&mut self, set: &ReplicaSet, ids: &[ReplicaId], seed: u64, step: usize) {
        for &r in ids {
            let Some(p) = set.replica(r) else { continue };
            let mut seen = HashSet::new();
            for id in log_ids(p) {
                assert!(
                    seen.insert(id),
                    "seed {seed} step {step}: record {id} is in replica {r}'s log twice\n\
                     replay with PARTLOG_SIM_SEED={seed}"
                );
            }
            let lso = p.last_stable_offset();
            assert!(
                lso <= p.high_watermark(),
                "seed {seed} step {step}: replica {r}'s last stable offset {lso} is past its high watermark {}",
                p.high_watermark()
            );
            for id in visible_ids(p) {
                let Some(&t) = self.txn_of.get(&id) else {
                    continue;
                };
                let txn = &self.txns[t];
                assert!(
                    txn.excused || txn.outcome == Outcome::Commit,
                    "seed {seed} step {step}: record {id} of a transaction {:?} is visible under \
                     read_committed on replica {r} (last stable offset {lso})\n\
                     replay with PARTLOG_SIM_SEED={seed}",
                    txn.outcome
                );
            }
        }
        if let Some(l) = set.leader().and_then(|l| set.replica(l)) {
            let (epoch, lso) = (set.leader_epoch(), l.last_stable_offset());
            if let Some((e, before)) = self.leader_lso {
                assert!(
                    e != epoch || lso >= before,
                    "seed {seed} step {step}: the leader's last stable offset went back from {before} to {lso} in epoch {epoch}\n\
                     replay with PARTLOG_SIM_SEED={seed}"
                );
            }
            self.leader_lso = Some((epoch, lso));
        }
    }

    /// Once every replica is back and a leader elected: every producer's batches in flight are
    /// sent until acknowledged, every open transaction ends (committed if drawn so, else
    /// aborted) and its marker is committed; a marker an excused loss may have taken is
    /// written again (Kafka's coordinator would, after an operator's recovery).
    pub fn heal(&mut self, c: &mut Ctx<'_>) {
        let seed = c.seed;
        for i in 0..self.producers.len() {
            for _ in 0..20 {
                if self.producers[i].in_flight.is_empty() {
                    break;
                }
                self.resend(c, i);
            }
            assert!(
                self.producers[i].in_flight.is_empty(),
                "seed {seed}: producer {} could not get its batches acknowledged once healed\n\
                 replay with PARTLOG_SIM_SEED={seed}",
                self.producers[i].pid
            );
            if let Some(t) = self.producers[i].txn {
                if self.txns[t].outcome == Outcome::Open {
                    self.txns[t].outcome = if c.rng.below(2) == 0 {
                        Outcome::Commit
                    } else {
                        Outcome::Abort
                    };
                }
            }
            let last = self.txns.iter().rposition(|t| t.producer == i);
            if let Some(t) = last {
                if self.txns[t].excused {
                    self.txns[t].marker_at = None;
                    self.txns[t].marker_committed = false;
                    self.producers[i].txn = Some(t);
                }
                for _ in 0..20 {
                    if self.producers[i].txn.is_none() {
                        break;
                    }
                    self.write_marker(c, t);
                }
                assert!(
                    self.producers[i].txn.is_none(),
                    "seed {seed}: producer {}'s marker could not be committed once healed\n\
                     replay with PARTLOG_SIM_SEED={seed}",
                    self.producers[i].pid
                );
            }
        }
    }

    /// The checks at the end (see the module docs), on the ISR replicas; `lost` holds the ids
    /// of acknowledged batches the simulation excused.
    pub fn check_healed(&mut self, set: &ReplicaSet, lost: &HashSet<u64>, seed: u64) {
        let leader = set.replica(set.leader().unwrap()).unwrap();
        assert_eq!(
            leader.last_stable_offset(),
            leader.high_watermark(),
            "seed {seed}: every transaction ended, yet the leader's last stable offset is below its high watermark\n\
             replay with PARTLOG_SIM_SEED={seed}"
        );
        for &r in set.isr() {
            let p = set.replica(r).unwrap();
            let visible: HashSet<u64> = visible_ids(p).into_iter().collect();
            for t in &self.txns {
                if t.excused || t.outcome != Outcome::Commit {
                    continue;
                }
                for id in &t.ids {
                    assert!(
                        lost.contains(id) || visible.contains(id),
                        "seed {seed}: record {id} of a committed transaction of producer {} is not \
                         visible under read_committed on ISR replica {r}\nreplay with PARTLOG_SIM_SEED={seed}",
                        self.producers[t.producer].pid
                    );
                }
            }
        }
    }
}

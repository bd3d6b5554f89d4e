//! Seeded fault simulation of a replicated partition (issue 10): random produces with `acks=all`
//! and `acks=1`, replication rounds, killed processes, power cuts (of one replica or of all at
//! once), restarts, elections (clean, and unclean in some seeds), ISR shrinks and expansions,
//! under both durability modes. Checked:
//! - every `acks=all` batch acknowledged is, at the end, at the same offset with the same bytes
//!   on every ISR replica, unless every replica holding it lost power before it was copied
//!   elsewhere (possible only when acknowledging on append, as in Kafka) or an unclean election
//!   reported losing it;
//! - acknowledging on flush, nothing acknowledged is lost even when every replica loses power
//!   at once;
//! - live replicas are byte-identical to the leader up to their high watermark (but those that
//!   have not fetched since an unclean election);
//! - no high watermark exceeds its log end offset;
//! - nothing below a high watermark is ever truncated except records older than an unclean
//!   election (a follower refuses, and the simulation fails on any error it does not expect).
//!
//! Each seed runs in three shapes: the first one (3 replicas, `min.insync.replicas` 2, 1 MiB
//! fetches, the identity check every 10 steps), one drawn from the seed (issue 17: 2-5
//! replicas, `min.insync.replicas` 1..=replicas, fetches of 64 B to 1 MiB, every check after
//! every step), and one drawn the same way whose produces come, three in four, from one to
//! four idempotent or transactional producers that retry through failovers, lose answers and
//! end transactions (issue 20; `sim/producers.rs` says what it checks: no record in any log
//! twice, no aborted or undecided transaction visible under `read_committed`, every committed
//! one visible once healed). 200 seeds run in `cargo test`; `cargo test --release --test replica_sim --
//! --ignored` runs 10,000 (`PARTLOG_SIM_SEEDS=<from>..<to>` another range). A failure prints
//! its seed; `PARTLOG_SIM_SEED=<seed>` replays it (every shape). Two shapes,
//! `PARTLOG_SIM_SEEDS=1..100001` ran clean at `82e6dec` (2,237,412 acknowledged batches checked,
//! 659,076 excused by a reported unclean-election loss or an all-replica power cut under
//! acks-on-append; 1,408 s, one core). Three shapes, seeds 1-100,999 ran clean at `949cf79`
//! (3,536,741 checked, 966,113 excused; the producers: 2,140,877 retries, 948,372 answered as
//! duplicates, 11,947 refused after an excused loss and none of a batch the leader held, 113,819
//! commits, 120,370 aborts; 3,161 s, one core).

use std::collections::HashSet;

use partlog::batch::SimpleRecord;
use partlog::replica::{
    Acks, Durability, Failure, ReplicaId, ReplicaSet, ReplicaSetConfig, TrackerConfig,
    UncleanLeaderElection,
};
use partlog::{Config, Error};

mod common;
#[path = "sim/producers.rs"]
mod producers;

use producers::{ProducerStats, Producers};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// An acknowledged `acks=all` batch: its offsets and the ids its records carry.
#[derive(Debug, Clone)]
struct Acked {
    first: i64,
    ids: Vec<u64>,
}

fn value_of(id: u64) -> Vec<u8> {
    let mut v = id.to_le_bytes().to_vec();
    v.extend((0..id % 50).map(|i| (id ^ i) as u8));
    v
}

/// The record values of replica `id` from `first`, one per id asked, if it holds them all.
fn holds(set: &ReplicaSet, id: ReplicaId, a: &Acked) -> bool {
    let Some(p) = set.replica(id) else {
        return false;
    };
    let end = a.first + a.ids.len() as i64;
    if p.log_start_offset() > a.first || p.log_end_offset() < end {
        return false;
    }
    let Ok(read) = p.log().read(a.first, 1 << 20) else {
        return false;
    };
    let mut values = Vec::new();
    for b in &read.batches {
        for r in b.records().unwrap() {
            let r = r.unwrap();
            if r.offset >= a.first && r.offset < end {
                values.push(r.value.unwrap().to_vec());
            }
        }
    }
    values == a.ids.iter().map(|&i| value_of(i)).collect::<Vec<_>>()
}

/// Live replicas hold exactly the leader's bytes below their high watermark.
/// Replicas in `stale` are skipped: they have not fetched since an unclean election (or since
/// a restart after one), so their high watermark may still cover records the new leader's
/// history replaced (restarted replicas keep the high watermark they checkpointed).
fn check_identical(set: &ReplicaSet, stale: &HashSet<ReplicaId>, seed: u64, step: usize) {
    let Some(leader) = set.leader().and_then(|l| set.replica(l)) else {
        return;
    };
    for id in set.replica_ids() {
        let Some(p) = set.replica(id) else { continue };
        assert!(
            p.high_watermark() <= p.log_end_offset(),
            "seed {seed} step {step}: replica {id} high watermark {} past its log end {}",
            p.high_watermark(),
            p.log_end_offset()
        );
        if !set.is_live(id) || Some(id) == set.leader() || stale.contains(&id) {
            continue;
        }
        let from = p.log_start_offset().max(leader.log_start_offset());
        // Below both high watermarks: after an unclean election a follower's is stale until it fetches.
        let to = p.high_watermark().min(leader.high_watermark());
        let mut next = from;
        while next < to {
            let mine = p.log().read(next, 1 << 20).unwrap();
            let theirs = leader.log().read(next, 1 << 20).unwrap();
            let (Some(a), Some(b)) = (mine.batches.first(), theirs.batches.first()) else {
                break;
            };
            assert_eq!(
                a.as_bytes(),
                b.as_bytes(),
                "seed {seed} step {step}: replica {id} differs from the leader at {next} (below its high watermark {to})"
            );
            next = a.next_offset();
        }
    }
}

fn expect_ok<T>(r: Result<T, Error>, seed: u64, step: usize, what: &str) -> T {
    r.unwrap_or_else(|e| {
        panic!("seed {seed} step {step}: {what}: {e}\nreplay with PARTLOG_SIM_SEED={seed}")
    })
}

/// The replica set's shape: the first simulation's (3 replicas, `min.insync.replicas` 2, 1 MiB
/// fetches; its kept seeds replay in it), or one drawn from the seed: 2-5 replicas,
/// `min.insync.replicas` 1..=replicas, fetches of 64 B to 1 MiB (a fetch then often carries one
/// batch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Classic,
    Varied,
    /// A shape drawn as `Varied` (from another draw), with idempotent and transactional
    /// producers (see `sim/producers.rs`) writing three produces in four.
    Producers,
}

/// What one run checked.
#[derive(Debug, Default, Clone, Copy)]
struct Summary {
    /// Acknowledged batches checked on every ISR replica at the end.
    checked: usize,
    /// Acknowledged batches excused (see the module docs).
    excused: usize,
    /// What the producers of the `Producers` shape did.
    producers: ProducerStats,
}

impl Summary {
    fn add(&mut self, o: Summary) {
        self.checked += o.checked;
        self.excused += o.excused;
        let (p, q) = (&mut self.producers, o.producers);
        p.retries += q.retries;
        p.duplicates += q.duplicates;
        p.given_up += q.given_up;
        p.resets += q.resets;
        p.commits += q.commits;
        p.aborts += q.aborts;
    }
}

/// Runs one seed in one shape.
fn run(seed: u64, shape: Shape) -> Summary {
    let mut rng = Rng(seed);
    let (replicas, min_insync, fetch_max_bytes) = match shape {
        Shape::Classic => (3, 2, 1 << 20),
        Shape::Varied | Shape::Producers => {
            let mut draw = Rng(if shape == Shape::Varied {
                seed ^ 0x5EED_5EED_5EED_5EED
            } else {
                seed ^ 0x1DE4_7E47_1DE4_7E47
            });
            let replicas = 2 + draw.below(4) as u32;
            let min_insync = 1 + draw.below(u64::from(replicas)) as usize;
            let fetch = [64, 256, 1024, 1 << 20][draw.below(4) as usize];
            (replicas, min_insync, fetch)
        }
    };
    let on_flush = seed % 2 == 1;
    let unclean = seed % 4 == 2;
    let dir = common::tmp_in_memory("partlog-sim");
    let config = ReplicaSetConfig {
        log: Config {
            segment_bytes: 4096,
            segment_index_bytes: 1024,
            index_interval_bytes: 512,
            // Record timestamps are the simulation's clock (1970): producers must not expire
            // when a replica opens (Kafka's rule too: a producer whose last batch is older than
            // `producer.id.expiration.ms` by the wall clock is dropped).
            producer_id_expiration_ms: i64::MAX,
            ..Config::default()
        },
        durability: if on_flush {
            Durability::OnFlush
        } else {
            Durability::OnAppend
        },
        tracker: TrackerConfig {
            min_insync_replicas: min_insync,
            replica_lag_time_max_ms: 1_000,
            ..TrackerConfig::default()
        },
        unclean_leader_election: if unclean {
            UncleanLeaderElection::Enabled
        } else {
            UncleanLeaderElection::Disabled
        },
        fetch_max_bytes,
        ..ReplicaSetConfig::new("rides", 0, replicas)
    };
    let mut now = 1_000i64;
    let mut set = expect_ok(ReplicaSet::open(dir.path(), config, now), seed, 0, "open");
    let ids = set.replica_ids();
    let mut acked: Vec<Acked> = Vec::new();
    let mut excused: HashSet<i64> = HashSet::new();
    let mut stale: HashSet<ReplicaId> = HashSet::new();
    let mut unclean_seen = false;
    let mut prng = Rng(seed ^ 0x9D0C_E55E_9D0C_E55E);
    let mut producers = (shape == Shape::Producers).then(|| Producers::new(&mut prng));
    let mut next_id = 1u64;
    let steps = 80;
    let verbose = std::env::var_os("PARTLOG_SIM_VERBOSE").is_some();
    for step in 0..steps {
        now += rng.below(300) as i64;
        let op = rng.below(26);
        if verbose {
            let state: Vec<String> = ids
                .iter()
                .map(|&r| {
                    let p = set.replica(r).unwrap();
                    format!(
                        "{r}{}:[{},{}) hw {} rp {}",
                        if set.is_live(r) { "" } else { "(down)" },
                        p.log_start_offset(),
                        p.log_end_offset(),
                        p.high_watermark(),
                        p.log().recovery_point()
                    )
                })
                .collect();
            eprintln!(
                "step {step} op {op}: leader {:?} epoch {} isr {:?} | {}",
                set.leader(),
                set.leader_epoch(),
                set.isr(),
                state.join(" | ")
            );
        }
        match op {
            0..=11 => {
                if set.leader().is_none() {
                    // The controller elects as soon as it can.
                    if elect(
                        &mut set,
                        now,
                        &acked,
                        &mut excused,
                        producers.as_mut(),
                        seed,
                        step,
                    ) {
                        unclean_seen = true;
                        stale.extend(ids.iter().copied());
                    }
                }
                if let Some(p) = producers.as_mut().filter(|_| prng.below(4) != 0) {
                    let mut c = producers::Ctx {
                        set: &mut set,
                        rng: &mut prng,
                        acked: &mut acked,
                        now,
                        seed,
                        step,
                    };
                    p.act(&mut c, &mut next_id);
                } else {
                    produce_plain(
                        &mut set,
                        &mut rng,
                        now,
                        &mut next_id,
                        &mut acked,
                        verbose,
                        seed,
                        step,
                    );
                }
            }
            12..=15 => {
                expect_ok(set.replicate(now), seed, step, "replicate");
                // Only replicas that fetched (live, with a leader to fetch from) are fresh.
                if set.leader().is_some() {
                    stale.retain(|&r| !set.is_live(r));
                }
            }
            16 | 17 => {
                now += rng.below(1_500) as i64;
                expect_ok(set.tick(now), seed, step, "tick");
            }
            18 | 19 => {
                let live: Vec<ReplicaId> =
                    ids.iter().copied().filter(|&r| set.is_live(r)).collect();
                if live.len() > 1 {
                    let victim = live[rng.below(live.len() as u64) as usize];
                    let failure = if rng.below(2) == 0 {
                        Failure::Kill
                    } else {
                        Failure::PowerCut
                    };
                    let isr_before = set.isr().to_vec();
                    expect_ok(set.fail(victim, failure, now), seed, step, "fail");
                    if failure == Failure::PowerCut {
                        let survived = isr_before
                            .iter()
                            .any(|&r| r != victim && set.isr().contains(&r));
                        after_power_cut(
                            &set,
                            &ids,
                            &acked,
                            &mut excused,
                            producers.as_mut(),
                            on_flush,
                            survived,
                            seed,
                            step,
                        );
                    }
                }
            }
            20 if rng.below(3) == 0 => {
                // Every machine loses power at once, those of killed replicas too.
                for &r in &ids {
                    expect_ok(set.fail(r, Failure::PowerCut, now), seed, step, "power cut");
                }
                after_power_cut(
                    &set,
                    &ids,
                    &acked,
                    &mut excused,
                    producers.as_mut(),
                    on_flush,
                    false,
                    seed,
                    step,
                );
            }
            21..=23 => {
                let down: Vec<ReplicaId> =
                    ids.iter().copied().filter(|&r| !set.is_live(r)).collect();
                if !down.is_empty() {
                    let r = down[rng.below(down.len() as u64) as usize];
                    expect_ok(set.restart(r, now), seed, step, "restart");
                    if unclean_seen {
                        stale.insert(r);
                    }
                }
            }
            _ => {
                if elect(
                    &mut set,
                    now,
                    &acked,
                    &mut excused,
                    producers.as_mut(),
                    seed,
                    step,
                ) {
                    unclean_seen = true;
                    stale.extend(ids.iter().copied());
                }
            }
        }
        if shape != Shape::Classic || step % 10 == 9 {
            check_identical(&set, &stale, seed, step);
        }
        if let Some(p) = producers.as_mut() {
            p.check(&set, &ids, seed, step);
        }
    }

    // Heal: everyone back, a leader, replication until the followers stop moving.
    for &r in &ids {
        expect_ok(set.restart(r, now), seed, steps, "restart");
    }
    if set.leader().is_none() {
        elect(
            &mut set,
            now,
            &acked,
            &mut excused,
            producers.as_mut(),
            seed,
            steps,
        );
    }
    for _ in 0..3 {
        expect_ok(set.replicate(now), seed, steps, "replicate");
        now += 10;
    }
    if let Some(p) = producers.as_mut() {
        p.heal(&mut producers::Ctx {
            set: &mut set,
            rng: &mut prng,
            acked: &mut acked,
            now,
            seed,
            step: steps,
        });
        expect_ok(set.replicate(now), seed, steps, "replicate");
    }
    stale.clear();
    check_identical(&set, &stale, seed, steps);
    let isr = set.isr().to_vec();
    let mut checked = 0;
    for a in &acked {
        if excused.contains(&a.first) {
            continue;
        }
        for &r in &isr {
            assert!(
                holds(&set, r, a),
                "seed {seed}: acknowledged batch at {} (ids {:?}) missing or changed on ISR replica {r}\n\
                 replay with PARTLOG_SIM_SEED={seed}",
                a.first,
                a.ids
            );
        }
        checked += 1;
    }
    let mut summary = Summary {
        checked,
        excused: excused.len(),
        ..Summary::default()
    };
    if let Some(p) = producers.as_mut() {
        p.check(&set, &ids, seed, steps);
        let lost: HashSet<u64> = acked
            .iter()
            .filter(|a| excused.contains(&a.first))
            .flat_map(|a| a.ids.iter().copied())
            .collect();
        p.check_healed(&set, &lost, seed);
        summary.producers = p.stats;
    }
    set.close().unwrap();
    summary
}

/// A plain produce (no producer id) of 1-4 records, `acks=all` three times in four.
#[allow(clippy::too_many_arguments)]
fn produce_plain(
    set: &mut ReplicaSet,
    rng: &mut Rng,
    now: i64,
    next_id: &mut u64,
    acked: &mut Vec<Acked>,
    verbose: bool,
    seed: u64,
    step: usize,
) {
    let n = 1 + rng.below(4);
    let records: Vec<SimpleRecord> = (*next_id..*next_id + n)
        .map(|i| SimpleRecord::new(now, Some(format!("k{i}")), Some(value_of(i))))
        .collect();
    let acks = if rng.below(4) == 0 {
        Acks::Leader
    } else {
        Acks::All
    };
    match set.produce(&records, acks, now) {
        Ok(p) => {
            if verbose {
                eprintln!("  produced {:?} acks {acks:?}", p);
            }
            if acks == Acks::All && p.acknowledged {
                acked.push(Acked {
                    first: p.first_offset,
                    ids: (*next_id..*next_id + n).collect(),
                });
            }
            *next_id += n;
        }
        Err(Error::Replica(e)) => {
            let text = e.to_string();
            assert!(
                text.contains("no live leader") || text.contains("min.insync"),
                "seed {seed} step {step}: produce: {text}"
            );
        }
        Err(e) => panic!("seed {seed} step {step}: produce: {e}"),
    }
}

/// Runs an election; the acknowledged batches (and the producers' markers) an unclean one
/// reports lost are excused. Returns whether it was unclean.
fn elect(
    set: &mut ReplicaSet,
    now: i64,
    acked: &[Acked],
    excused: &mut HashSet<i64>,
    producers: Option<&mut Producers>,
    seed: u64,
    step: usize,
) -> bool {
    let mut unclean = false;
    if let Some(report) = expect_ok(set.elect(now), seed, step, "elect") {
        unclean = report.unclean;
        if let Some((from, to)) = report.lost {
            if let Some(p) = producers {
                p.excuse_lost(from, to);
            }
            assert!(
                report.unclean,
                "seed {seed}: a clean election lost {from}..{to}"
            );
            for a in acked {
                if a.first + a.ids.len() as i64 > from && a.first < to {
                    excused.insert(a.first);
                }
            }
        }
    }
    unclean
}

/// After a power cut. Acknowledging on flush, every acknowledged batch must still be held by
/// some replica. Acknowledging on append (Kafka's default) a batch lives in page caches: if no
/// ISR member survived the cut, every batch acknowledged so far is at risk and excused from
/// the final check (the rule: guaranteed only while one ISR replica survives each cut),
/// and so are the producers' markers.
#[allow(clippy::too_many_arguments)]
fn after_power_cut(
    set: &ReplicaSet,
    ids: &[ReplicaId],
    acked: &[Acked],
    excused: &mut HashSet<i64>,
    producers: Option<&mut Producers>,
    on_flush: bool,
    isr_survived: bool,
    seed: u64,
    step: usize,
) {
    for a in acked {
        if excused.contains(&a.first) {
            continue;
        }
        if on_flush {
            assert!(
                ids.iter().any(|&r| holds(set, r, a)),
                "seed {seed} step {step}: acknowledged-on-flush batch at {} lost in a power cut\n\
                 replay with PARTLOG_SIM_SEED={seed}",
                a.first
            );
        } else if !isr_survived {
            excused.insert(a.first);
        }
    }
    if !on_flush && !isr_survived {
        if let Some(p) = producers {
            p.excuse_all();
        }
    }
}

/// Every seed of `seeds` in every shape.
fn run_seeds(seeds: std::ops::Range<u64>) -> Summary {
    let mut total = Summary::default();
    for seed in seeds {
        for shape in [Shape::Classic, Shape::Varied, Shape::Producers] {
            total.add(run(seed, shape));
        }
    }
    total
}

#[test]
#[cfg_attr(miri, ignore)]
fn replicated_partition_loses_no_acknowledged_batch_under_faults() {
    if let Some(seed) = std::env::var("PARTLOG_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        let s = run_seeds(seed..seed + 1);
        eprintln!("seed {seed}: {s:?}");
        return;
    }
    // Seeds of the 10,000-seed run that found bugs, kept: 1412 (the ISR's last member lost
    // power, then led over replicas that held the committed records: eligible leader replicas
    // added) and 1068 (an eligible leader replica kept its standing after the high watermark
    // moved on, and led without the records committed since); 30678 (issue 17: an unclean
    // leader held committed offsets with an older term's records, and its election reported
    // nothing lost); 262 (issue 17: with the per-leader flag, a follower whose checkpointed high
    // watermark predated an unclean election refused every fetch under the clean one after);
    // 1480 and 6506 (high watermarks checkpointed, then a power cut or an unclean cut lowered
    // the log: the stale checkpoint covered other records once the log grew back); 4780 (a
    // replica that lost power counted as caught up against a restarted leader's high
    // watermark below what was committed, and led cleanly without the committed records).
    // Issue 20, the producers shape: 6000 (a replica that lost its log copied two aborted
    // transactions of one producer in one fetch and indexed the first with the last stable
    // offset after the whole append: read_committed then showed the second's records) and 2886
    // (the simulation took replicas for fresh after a replication round with no leader).
    for seed in [1412, 1068, 30678] {
        run(seed, Shape::Classic);
    }
    for seed in [262, 1480, 6506, 4780, 6000, 2886] {
        run_seeds(seed..seed + 1);
    }
    let s = run_seeds(0..200);
    eprintln!(
        "200 seeds, three shapes: {} acknowledged batches checked on every ISR replica, {} excused \
         (lost with every holder in a power cut, acknowledged on append; or reported by an unclean \
         election); producers: {:?}",
        s.checked, s.excused, s.producers
    );
    assert!(s.checked > 3_000, "only {} batches checked", s.checked);
    // The producers' story ran: retries answered as duplicates, both transaction outcomes.
    let p = s.producers;
    assert!(
        p.duplicates > 100 && p.commits > 50 && p.aborts > 50,
        "the producers did too little: {p:?}"
    );
}

#[test]
#[ignore = "10,000 seeds: cargo test --release --test replica_sim -- --ignored"]
fn replicated_partition_loses_no_acknowledged_batch_under_faults_long() {
    let range = std::env::var("PARTLOG_SIM_SEEDS")
        .ok()
        .and_then(|s| {
            let (a, b) = s.split_once("..")?;
            Some(a.parse().ok()?..b.parse().ok()?)
        })
        .unwrap_or(1_000..11_000);
    let s = run_seeds(range.clone());
    eprintln!("{range:?}, three shapes: {s:?}");
}

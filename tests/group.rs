//! Consumer groups: every assignor outcome for 1..6 members over 1..8 partitions, rebalance on
//! member failure (session timeout on a manual clock), stale-generation commits refused,
//! commits across a crash and a torn offsets file.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::sync::Arc;

use partlog::batch::SimpleRecord;
use partlog::topic::{
    assign, Assignor, Consumer, ConsumerConfig, GroupCoordinator, GroupError, JoinRequest,
    MemberSubscription, OffsetReset, OffsetStore, Topic, TopicConfig, TopicPartition, OFFSETS_FILE,
};
use partlog::{Error, ManualClock};

fn members(n: usize) -> BTreeMap<String, MemberSubscription> {
    (0..n)
        .map(|i| {
            (
                format!("m{i}"),
                MemberSubscription {
                    topics: ["t".to_owned()].into(),
                    owned: Vec::new(),
                },
            )
        })
        .collect()
}

fn topics(p: u32) -> BTreeMap<String, u32> {
    [("t".to_owned(), p)].into()
}

/// Each partition of `t` (0..p) appears exactly once over the assignment.
fn check_exactly_once(a: &BTreeMap<String, Vec<TopicPartition>>, p: u32) {
    let mut seen = BTreeSet::new();
    for list in a.values() {
        for tp in list {
            assert!(seen.insert(tp.clone()), "{tp} assigned twice: {a:?}");
        }
    }
    let all: BTreeSet<_> = (0..p).map(|i| TopicPartition::new("t", i)).collect();
    assert_eq!(seen, all, "{a:?}");
}

#[test]
fn every_assignor_outcome_for_1_to_6_members_over_1_to_8_partitions() {
    for m in 1..=6usize {
        for p in 1..=8u32 {
            let subs = members(m);
            for assignor in [Assignor::Range, Assignor::RoundRobin, Assignor::Sticky] {
                let a = assign(assignor, &subs, &topics(p));
                assert_eq!(a.len(), m, "every member appears");
                check_exactly_once(&a, p);
                assert_eq!(a, assign(assignor, &subs, &topics(p)), "deterministic");
                let counts: Vec<usize> = a.values().map(Vec::len).collect();
                let (min, max) = (*counts.iter().min().unwrap(), *counts.iter().max().unwrap());
                assert!(max - min <= 1, "{assignor:?} {m}x{p}: {counts:?}");
                // Members beyond the partition count get none.
                assert_eq!(
                    counts.iter().filter(|&&c| c == 0).count(),
                    m.saturating_sub(p as usize)
                );
                let ids: Vec<&String> = a.keys().collect();
                match assignor {
                    Assignor::Range => {
                        // The first p % m members (by id) hold one more, in consecutive
                        // ranges in member order.
                        let (per, extra) = (p as usize / m, p as usize % m);
                        let mut next = 0u32;
                        for (i, id) in ids.iter().enumerate() {
                            let want = per + usize::from(i < extra);
                            let got: Vec<u32> = a[*id].iter().map(|tp| tp.partition).collect();
                            let range: Vec<u32> = (next..next + want as u32).collect();
                            assert_eq!(got, range, "range {m}x{p} member {i}");
                            next += want as u32;
                        }
                    }
                    Assignor::RoundRobin => {
                        for (i, id) in ids.iter().enumerate() {
                            let got: Vec<u32> = a[*id].iter().map(|tp| tp.partition).collect();
                            let want: Vec<u32> = (0..p).filter(|q| *q as usize % m == i).collect();
                            assert_eq!(got, want, "roundrobin {m}x{p} member {i}");
                        }
                    }
                    _ => {}
                }
            }
        }
    }
}

/// The sticky assignor moves only what balance requires when a member leaves or joins.
#[test]
fn sticky_assignor_keeps_partitions_with_their_owners() {
    for m in 2..=6usize {
        for p in 1..=8u32 {
            let mut subs = members(m);
            let first = assign(Assignor::Sticky, &subs, &topics(p));
            for (id, s) in subs.iter_mut() {
                s.owned = first[id].clone();
            }
            // A member fails: the survivors keep everything they had.
            let gone = subs.keys().nth(m / 2).unwrap().clone();
            let mut survivors = subs.clone();
            survivors.remove(&gone);
            let after = assign(Assignor::Sticky, &survivors, &topics(p));
            check_exactly_once(&after, p);
            for (id, list) in &after {
                for tp in &first[id] {
                    assert!(list.contains(tp), "{m}x{p}: {id} lost {tp}");
                }
            }
            // A member joins: each old member gives up at most what exceeds the new quota.
            let mut grown = subs.clone();
            grown.insert(
                "m9".into(),
                MemberSubscription {
                    topics: ["t".to_owned()].into(),
                    owned: Vec::new(),
                },
            );
            let after = assign(Assignor::Sticky, &grown, &topics(p));
            check_exactly_once(&after, p);
            for (id, old) in &first {
                let kept = old.iter().filter(|tp| after[id].contains(tp)).count();
                assert!(
                    kept >= old.len().min(p as usize / (m + 1)),
                    "{m}x{p}: {id} kept {kept} of {old:?}"
                );
            }
        }
    }
}

fn join(c: &GroupCoordinator, client: &str, assignor: Assignor) -> partlog::topic::Membership {
    c.join(&JoinRequest {
        group: "g".into(),
        client_id: client.into(),
        subscription: topics(6),
        session_timeout_ms: 10_000,
        assignor,
    })
    .unwrap()
}

#[test]
fn a_failed_members_partitions_move_to_the_others_after_its_session_timeout() {
    for assignor in [Assignor::Range, Assignor::RoundRobin, Assignor::Sticky] {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(1_000);
        let c = GroupCoordinator::open_with_clock(dir.path(), Arc::new(clock.clone())).unwrap();
        let a = join(&c, "a", assignor);
        let b = join(&c, "b", assignor);
        let x = join(&c, "c", assignor);
        let mut live = vec![a, b, x];
        for m in &mut live {
            *m = c.heartbeat("g", &m.member_id, m.generation).unwrap();
            assert_eq!(m.generation, 3);
            assert_eq!(m.assignment.len(), 2);
        }
        // b and c heartbeat; a goes silent.
        for _ in 0..3 {
            clock.advance(4_000);
            for m in &mut live[1..] {
                *m = c.heartbeat("g", &m.member_id, m.generation).unwrap();
            }
        }
        // 12 s without a heartbeat > 10 s: a is gone, generation 4, b and c hold all six.
        assert_eq!(live[1].generation, 4);
        let mut all: Vec<TopicPartition> = live[1..]
            .iter()
            .flat_map(|m| m.assignment.clone())
            .collect();
        all.sort();
        assert_eq!(
            all,
            (0..6)
                .map(|p| TopicPartition::new("t", p))
                .collect::<Vec<_>>()
        );
        assert_eq!(live[1].assignment.len(), 3);
        let a = &live[0];
        assert!(matches!(
            c.heartbeat("g", &a.member_id, a.generation),
            Err(Error::Group(GroupError::UnknownMember { .. }))
        ));
        assert!(matches!(
            c.commit(
                "g",
                &a.member_id,
                a.generation,
                &[(TopicPartition::new("t", 0), 5)]
            ),
            Err(Error::Group(GroupError::UnknownMember { .. }))
        ));
        // Leaving rebalances at once.
        c.leave("g", &live[1].member_id).unwrap();
        let last = c
            .heartbeat("g", &live[2].member_id, live[2].generation)
            .unwrap();
        assert_eq!((last.generation, last.assignment.len()), (5, 6));
        let d = c.describe_group("g").unwrap();
        assert_eq!(d.members.len(), 1);
        assert_eq!(d.assignor, assignor);
    }
}

#[test]
fn a_commit_from_a_stale_generation_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let c = GroupCoordinator::open_with_clock(dir.path(), Arc::new(clock.clone())).unwrap();
    let a = join(&c, "a", Assignor::Range);
    let tp0 = TopicPartition::new("t", 0);
    c.commit("g", &a.member_id, a.generation, &[(tp0.clone(), 3)])
        .unwrap();
    let b = join(&c, "b", Assignor::Range);
    // a has not heard of generation 2 yet: its commit must not land.
    let r = c.commit("g", &a.member_id, a.generation, &[(tp0.clone(), 99)]);
    match r {
        Err(Error::Group(GroupError::IllegalGeneration {
            generation: 1,
            current_generation: 2,
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(c.committed("g", &tp0), Some(3));
    // A generation from the future is refused too.
    assert!(matches!(
        c.heartbeat("g", &b.member_id, 7),
        Err(Error::Group(GroupError::IllegalGeneration { .. }))
    ));
    // After its heartbeat a acts in generation 2.
    let a = c.heartbeat("g", &a.member_id, a.generation).unwrap();
    c.commit("g", &a.member_id, a.generation, &[(tp0.clone(), 4)])
        .unwrap();
    assert_eq!(c.committed("g", &tp0), Some(4));
    // Members in a group cannot be bypassed by a standalone commit.
    assert!(c.commit_standalone("g", &[(tp0.clone(), 0)]).is_err());
    assert!(matches!(
        c.commit("g", &a.member_id, a.generation, &[(tp0, -1)]),
        Err(Error::Group(GroupError::InvalidOffset { .. }))
    ));
    for bad in [0, 5_999, 1_800_001] {
        assert!(matches!(
            c.join(&JoinRequest {
                group: "g".into(),
                client_id: "x".into(),
                subscription: topics(1),
                session_timeout_ms: bad,
                assignor: Assignor::Range,
            }),
            Err(Error::Group(GroupError::InvalidSessionTimeout { .. }))
        ));
    }
    assert!(matches!(
        c.join(&JoinRequest {
            group: String::new(),
            client_id: "x".into(),
            subscription: topics(1),
            session_timeout_ms: 10_000,
            assignor: Assignor::Range,
        }),
        Err(Error::Group(GroupError::InvalidGroupId { .. }))
    ));
}

#[test]
fn acknowledged_commits_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let tp = |p| TopicPartition::new("rides", p);
    {
        let c = GroupCoordinator::open(dir.path()).unwrap();
        let m = c
            .join(&JoinRequest {
                group: "g".into(),
                client_id: "a".into(),
                subscription: [("rides".to_owned(), 2)].into(),
                session_timeout_ms: 10_000,
                assignor: Assignor::Range,
            })
            .unwrap();
        for i in 0..100 {
            c.commit(
                "g",
                &m.member_id,
                m.generation,
                &[(tp(0), i), (tp(1), 2 * i)],
            )
            .unwrap();
        }
        c.commit_standalone("other", &[(tp(0), 7)]).unwrap();
        // Dropped without any close: as a killed process.
    }
    let c = GroupCoordinator::open(dir.path()).unwrap();
    assert_eq!(c.committed("g", &tp(0)), Some(99));
    assert_eq!(c.committed("g", &tp(1)), Some(198));
    assert_eq!(c.committed("other", &tp(0)), Some(7));
    assert_eq!(c.list_groups(), ["g", "other"]);
}

/// Cut the offsets file at every byte: what opens is always some prefix of the commits, never
/// an offset that was not committed; at worst the last commit before the cut is lost.
#[test]
fn a_torn_offsets_file_never_yields_a_wrong_offset() {
    let dir = tempfile::tempdir().unwrap();
    let tp = |p| TopicPartition::new("t", p);
    let mut store = OffsetStore::open(dir.path()).unwrap();
    // The file length after each commit, and the offsets then.
    let mut history: Vec<(u64, BTreeMap<TopicPartition, i64>)> = vec![(0, BTreeMap::new())];
    for i in 0..12i64 {
        let entries: Vec<_> = (0..(i % 3 + 1) as u32)
            .map(|p| (tp(p), i * 10 + i64::from(p)))
            .collect();
        store.commit("g", &entries).unwrap();
        history.push((store.file_len(), store.group_offsets("g")));
    }
    drop(store);
    let path = dir.path().join(OFFSETS_FILE);
    let full = fs::read(&path).unwrap();
    assert_eq!(full.len() as u64, history.last().unwrap().0);
    for cut in 0..=full.len() {
        fs::write(&path, &full[..cut]).unwrap();
        let store = OffsetStore::open(dir.path()).unwrap();
        // The last commit wholly inside the cut.
        let (len, want) = history
            .iter()
            .rev()
            .find(|(len, _)| *len <= cut as u64)
            .unwrap();
        assert_eq!(&store.group_offsets("g"), want, "cut at {cut}");
        assert_eq!(store.file_len(), *len);
        assert_eq!(fs::metadata(&path).unwrap().len(), *len, "torn tail cut");
        drop(store);
        // A torn tail is cut, so commits after it land and survive.
        let mut store = OffsetStore::open(dir.path()).unwrap();
        store.commit("g", &[(tp(9), 1)]).unwrap();
        drop(store);
        let store = OffsetStore::open(dir.path()).unwrap();
        assert_eq!(store.committed("g", &tp(9)), Some(1));
    }
}

/// Every frame is synced before the next is written, so a damaged frame followed by intact
/// ones is media damage, not a torn write: the store refuses to open with `Corrupt` naming the
/// file and the frame's position, and changes nothing (it used to cut the file there, throwing
/// away every later commit). Damage anywhere in any frame but the last, in any byte.
#[test]
fn a_damaged_frame_before_intact_ones_is_corrupt_and_nothing_is_cut() {
    let dir = tempfile::tempdir().unwrap();
    let tp = |p| TopicPartition::new("t", p);
    let mut store = OffsetStore::open(dir.path()).unwrap();
    let mut ends = vec![0u64];
    for i in 0..5i64 {
        store.commit("g", &[(tp(i as u32), i)]).unwrap();
        ends.push(store.file_len());
    }
    drop(store);
    let path = dir.path().join(OFFSETS_FILE);
    let full = fs::read(&path).unwrap();
    for frame in 0..ends.len() - 2 {
        for pos in ends[frame]..ends[frame + 1] {
            let mut bad = full.clone();
            bad[pos as usize] ^= 0x5a;
            fs::write(&path, &bad).unwrap();
            match OffsetStore::open(dir.path()) {
                Err(Error::Corrupt {
                    path: p, position, ..
                }) => {
                    assert_eq!(p, path);
                    assert_eq!(position, ends[frame], "flip at {pos}");
                }
                Err(e) => panic!("flip at {pos}: {e}"),
                Ok(s) => panic!(
                    "flip at {pos} opened with {:?} (recovery {:?})",
                    s.group_offsets("g"),
                    s.recovery()
                ),
            }
            assert_eq!(fs::read(&path).unwrap(), bad, "flip at {pos}: file changed");
        }
    }
    // Damage in the last frame cannot be told from a torn write: that frame alone is cut.
    let last = ends[ends.len() - 2];
    let mut bad = full.clone();
    bad[last as usize + 12] ^= 0x5a;
    fs::write(&path, &bad).unwrap();
    let store = OffsetStore::open(dir.path()).unwrap();
    assert_eq!(store.file_len(), last);
    assert_eq!(store.group_offsets("g").len(), 4);
    assert_eq!(
        store.recovery().truncated,
        Some((last, full.len() as u64 - last))
    );
    drop(store);
    // So are zeros past the end (the file grew before the frame's bytes landed).
    let mut zeros = full.clone();
    zeros.extend_from_slice(&[0; 100]);
    fs::write(&path, &zeros).unwrap();
    let store = OffsetStore::open(dir.path()).unwrap();
    assert_eq!(store.group_offsets("g").len(), 5);
    assert_eq!(fs::metadata(&path).unwrap().len(), full.len() as u64);
}

/// A second store on the same directory (`partlog groups` while `partlog consume` commits)
/// wrote its frames over the first one's: acknowledged commits were lost. It is refused with
/// `Locked` now, in this process as in another one.
#[test]
fn a_second_offset_store_on_one_directory_is_locked_out() {
    let dir = tempfile::tempdir().unwrap();
    let tp = |p| TopicPartition::new("t", p);
    let mut first = OffsetStore::open(dir.path()).unwrap();
    match OffsetStore::open(dir.path()) {
        Err(Error::Locked { path }) => assert_eq!(path, dir.path()),
        Err(e) => panic!("{e}"),
        Ok(mut second) => {
            first.commit("g", &[(tp(0), 5)]).unwrap();
            second.commit("g", &[(tp(1), 6)]).unwrap();
            drop((first, second));
            let store = OffsetStore::open(dir.path()).unwrap();
            panic!(
                "two stores opened; acknowledged commits now read back as {:?}",
                store.group_offsets("g")
            );
        }
    }
    // The coordinator takes the same lock.
    assert!(matches!(
        GroupCoordinator::open(dir.path()),
        Err(Error::Locked { .. })
    ));
    assert!(partlog::log::is_locked(dir.path()).unwrap());
    first.commit("g", &[(tp(0), 5)]).unwrap();
    drop(first);
    let store = OffsetStore::open(dir.path()).unwrap();
    assert_eq!(store.committed("g", &tp(0)), Some(5));
}

/// After a coordinator restart, a member from before it (a zombie that never heard of the
/// restart) is fenced: member ids are unique across restarts (`<client_id>-<128-bit random>`,
/// as Kafka's `clientId-<uuid>`) and the group's generation is persisted with its offsets, so
/// the first member to join after the restart gets neither the zombie's id nor its generation.
/// They used to be `client-00000001` and generation 1 again, and the zombie's commit landed
/// over the new owner's.
#[test]
fn a_member_from_before_a_coordinator_restart_is_fenced() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(0);
    let tp0 = TopicPartition::new("t", 0);
    let zombie = {
        let c = GroupCoordinator::open_with_clock(dir.path(), Arc::new(clock.clone())).unwrap();
        let m = join(&c, "a", Assignor::Range);
        c.commit("g", &m.member_id, m.generation, &[(tp0.clone(), 10)])
            .unwrap();
        m
    };
    let c = GroupCoordinator::open_with_clock(dir.path(), Arc::new(clock.clone())).unwrap();
    assert_eq!(
        c.describe_group("g").unwrap().generation,
        zombie.generation,
        "generation persisted"
    );
    let owner = join(&c, "a", Assignor::Range);
    assert_ne!(owner.member_id, zombie.member_id);
    assert!(owner.generation > zombie.generation);
    c.commit(
        "g",
        &owner.member_id,
        owner.generation,
        &[(tp0.clone(), 20)],
    )
    .unwrap();
    match c.commit(
        "g",
        &zombie.member_id,
        zombie.generation,
        &[(tp0.clone(), 11)],
    ) {
        Err(Error::Group(GroupError::UnknownMember { member_id, .. })) => {
            assert_eq!(member_id, zombie.member_id);
        }
        other => panic!("zombie commit: {other:?}"),
    }
    assert!(matches!(
        c.heartbeat("g", &zombie.member_id, zombie.generation),
        Err(Error::Group(GroupError::UnknownMember { .. }))
    ));
    assert_eq!(c.committed("g", &tp0), Some(20));
    // Generations only grow across restarts, also after compaction and with no members left.
    c.leave("g", &owner.member_id).unwrap();
    let left_at = c.describe_group("g").unwrap().generation;
    drop(c);
    let c = GroupCoordinator::open_with_clock(dir.path(), Arc::new(clock)).unwrap();
    assert_eq!(c.describe_group("g").unwrap().generation, left_at);
    let again = join(&c, "a", Assignor::Range);
    assert_eq!(again.generation, left_at + 1);
    // Ids look like Kafka's: the client id, a dash, and 128 random bits.
    let suffix = again.member_id.strip_prefix("a-").unwrap();
    assert_eq!(suffix.len(), 36, "{}", again.member_id);
}

fn small_topic(dir: &std::path::Path, partitions: u32) -> Topic {
    Topic::create(
        dir,
        "t",
        partitions,
        TopicConfig::from(partlog::Config {
            segment_bytes: 64 << 10,
            segment_index_bytes: 4096,
            ..partlog::Config::default()
        }),
    )
    .unwrap()
}

#[test]
fn consumers_start_at_the_committed_offset_or_the_reset_policy() {
    let data = tempfile::tempdir().unwrap();
    let topic = small_topic(data.path(), 1);
    for i in 0..10 {
        topic
            .append(
                0,
                &[SimpleRecord::new(i, None::<&str>, Some(format!("v{i}")))],
            )
            .unwrap();
    }
    let c = GroupCoordinator::open_data_dir(data.path()).unwrap();
    let tp = TopicPartition::new("t", 0);
    for (reset, start) in [(OffsetReset::Earliest, 0), (OffsetReset::Latest, 10)] {
        let mut cfg = ConsumerConfig::new(format!("{reset:?}"));
        cfg.auto_offset_reset = reset;
        let mut consumer = Consumer::join(&c, &[&topic], cfg).unwrap();
        assert_eq!(consumer.position(&tp), Some(start));
        let got = consumer.poll().unwrap();
        assert_eq!(got.len(), 10 - start as usize);
        consumer.commit().unwrap();
        consumer.leave().unwrap();
    }
    // A committed offset wins over the policy.
    c.commit_standalone("Latest", &[(tp.clone(), 4)]).unwrap();
    let mut cfg = ConsumerConfig::new("Latest");
    cfg.max_poll_records = 3;
    let mut consumer = Consumer::join(&c, &[&topic], cfg).unwrap();
    let got: Vec<i64> = consumer.poll().unwrap().iter().map(|r| r.offset).collect();
    assert_eq!(got, [4, 5, 6]);
    let got: Vec<i64> = consumer.poll().unwrap().iter().map(|r| r.offset).collect();
    assert_eq!(got, [7, 8, 9]);
    assert_eq!(consumer.lag().unwrap()[&tp], 0);
    topic
        .append(0, &[SimpleRecord::new(10, None::<&str>, Some("v10"))])
        .unwrap();
    assert_eq!(consumer.lag().unwrap()[&tp], 1);
    consumer.commit().unwrap();
    assert_eq!(c.committed("Latest", &tp), Some(10));
}

/// A consumer polls the records of batches in every codec (decompressed by partlog), in order.
/// The batches go into the partition's log directly (the topic layer appends uncompressed
/// records), and the topic is opened over it.
#[test]
fn consumers_poll_records_of_batches_in_every_codec() {
    use partlog::batch::{BatchBuilder, Compression};
    let data = tempfile::tempdir().unwrap();
    drop(small_topic(data.path(), 1));
    let dir = fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("t-"))
        .expect("the partition's directory");
    {
        let log = partlog::Log::open(&dir, partlog::Config::default()).unwrap();
        for codec in Compression::ALL {
            let mut b = BatchBuilder::new().compression(codec);
            for i in 0..4 {
                b.push(&SimpleRecord::new(
                    i,
                    None::<&str>,
                    Some(format!("{codec} {i}")),
                ))
                .unwrap();
            }
            log.append_batch(&b.build().unwrap()).unwrap();
        }
        log.close().unwrap();
    }
    let topic = Topic::open(data.path(), "t").unwrap();
    // An append through the topic moves the high watermark past the batches written under it.
    topic
        .append(0, &[SimpleRecord::new(9, None::<&str>, Some("last"))])
        .unwrap();
    let c = GroupCoordinator::open(data.path().join("__consumer_offsets")).unwrap();
    let mut cfg = ConsumerConfig::new("g");
    cfg.auto_offset_reset = OffsetReset::Earliest;
    let mut consumer = Consumer::join(&c, &[&topic], cfg).unwrap();
    let mut got = Vec::new();
    for _ in 0..10 {
        got.extend(consumer.poll().unwrap());
        if got.len() >= 21 {
            break;
        }
    }
    let values: Vec<String> = got
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap().to_vec()).unwrap())
        .collect();
    let want: Vec<String> = Compression::ALL
        .into_iter()
        .flat_map(|c| (0..4).map(move |i| format!("{c} {i}")))
        .chain(["last".to_owned()])
        .collect();
    assert_eq!(values, want);
    assert_eq!(
        got.iter().map(|r| r.offset).collect::<Vec<_>>(),
        (0..21).collect::<Vec<_>>()
    );
}

/// A data directory's group store is a regular file beside the partitions (a Kafka broker loads
/// every sub-directory as a partition); one of an earlier version, in `__consumer_offsets/`, is
/// moved there on open, including after a crash in the middle of the move.
#[test]
fn a_data_dir_store_takes_over_the_old_consumer_offsets_dir() {
    use partlog::topic::{DATA_DIR_OFFSETS_FILE, LEGACY_OFFSETS_DIR};
    let data = tempfile::tempdir().unwrap();
    let tp = TopicPartition::new("t", 0);
    let legacy = data.path().join(LEGACY_OFFSETS_DIR);
    {
        let old = GroupCoordinator::open(&legacy).unwrap();
        old.commit_standalone("g", &[(tp.clone(), 7)]).unwrap();
        old.commit_standalone("h", &[(tp.clone(), 2)]).unwrap();
    }
    // A crash after the copy, before the old directory went: both are there, the copy holds
    // the same commits.
    let copy = fs::read(legacy.join("consumer-offsets.log")).unwrap();
    {
        let c = GroupCoordinator::open_data_dir(data.path()).unwrap();
        assert_eq!(c.committed("g", &tp), Some(7));
        assert_eq!(c.committed("h", &tp), Some(2));
        assert!(!legacy.exists(), "the old directory is removed");
        c.commit_standalone("g", &[(tp.clone(), 8)]).unwrap();
    }
    fs::create_dir(&legacy).unwrap();
    fs::write(legacy.join("consumer-offsets.log"), &copy).unwrap();
    let c = GroupCoordinator::open_data_dir(data.path()).unwrap();
    assert_eq!(c.committed("g", &tp), Some(8), "the moved store wins");
    assert!(!legacy.exists());
    assert!(data.path().join(DATA_DIR_OFFSETS_FILE).is_file());
    let dirs: Vec<_> = fs::read_dir(data.path())
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().is_dir())
        .collect();
    assert!(dirs.is_empty(), "{dirs:?}");
    // One store per data directory.
    assert!(matches!(
        GroupCoordinator::open_data_dir(data.path()),
        Err(Error::Locked { .. })
    ));
}

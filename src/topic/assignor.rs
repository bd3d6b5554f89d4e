//! Partition assignors: who in a consumer group reads which partition. Kafka's semantics
//! (`RangeAssignor`, `RoundRobinAssignor`, the sticky assignors' balance rule); our code.
//!
//! Every assignor gives each partition of a subscribed topic to exactly one member subscribed
//! to that topic, and is deterministic: members are ordered by member id, partitions by topic
//! then number.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// One partition of one topic.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartition {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: u32,
}

impl TopicPartition {
    /// `topic`-`partition`.
    pub fn new(topic: impl Into<String>, partition: u32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Which assignment strategy a group uses (Kafka's `partition.assignment.strategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Assignor {
    /// Per topic, consecutive ranges: with `n` partitions and `m` members (by member id), each
    /// gets `n / m`, and the first `n % m` one more. Kafka's default before 3.0.
    #[default]
    Range,
    /// All partitions of all topics, in order, dealt one by one to the members in turn
    /// (skipping members not subscribed to the partition's topic).
    RoundRobin,
    /// Balanced like round robin (member counts differ by at most one when all members
    /// subscribe to the same topics), keeping as many partitions as possible with their
    /// previous owners, so a rebalance moves only what it must: the assignment Kafka's
    /// `StickyAssignor` and `CooperativeStickyAssignor` compute. The coordinator applies it in
    /// one step; Kafka's cooperative protocol would revoke moved partitions a round earlier.
    Sticky,
}

impl Assignor {
    /// Kafka's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Range => "range",
            Assignor::RoundRobin => "roundrobin",
            Assignor::Sticky => "cooperative-sticky",
        }
    }
}

/// A member as the assignor sees it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MemberSubscription {
    /// The topics it reads.
    pub topics: BTreeSet<String>,
    /// What it owned in the previous generation (used by [`Assignor::Sticky`]).
    pub owned: Vec<TopicPartition>,
}

/// Assigns the partitions of `topics` (name → partition count) to `members` (member id →
/// subscription). Every member id appears in the result, those without partitions with none;
/// each list is sorted.
pub fn assign(
    assignor: Assignor,
    members: &BTreeMap<String, MemberSubscription>,
    topics: &BTreeMap<String, u32>,
) -> BTreeMap<String, Vec<TopicPartition>> {
    let mut out: BTreeMap<String, Vec<TopicPartition>> =
        members.keys().map(|m| (m.clone(), Vec::new())).collect();
    match assignor {
        Assignor::Range => range(members, topics, &mut out),
        Assignor::RoundRobin => round_robin(members, topics, &mut out),
        Assignor::Sticky => sticky(members, topics, &mut out),
    }
    for list in out.values_mut() {
        list.sort();
    }
    out
}

fn subscribers<'a>(
    members: &'a BTreeMap<String, MemberSubscription>,
    topic: &str,
) -> Vec<&'a String> {
    members
        .iter()
        .filter(|(_, s)| s.topics.contains(topic))
        .map(|(m, _)| m)
        .collect()
}

fn range(
    members: &BTreeMap<String, MemberSubscription>,
    topics: &BTreeMap<String, u32>,
    out: &mut BTreeMap<String, Vec<TopicPartition>>,
) {
    for (topic, &n) in topics {
        let subs = subscribers(members, topic);
        if subs.is_empty() {
            continue;
        }
        let m = subs.len() as u32;
        let (per, extra) = (n / m, n % m);
        for (i, member) in (0u32..).zip(subs) {
            let start = i * per + i.min(extra);
            let len = per + u32::from(i < extra);
            let list = out.entry(member.clone()).or_default();
            list.extend((start..start + len).map(|p| TopicPartition::new(topic.clone(), p)));
        }
    }
}

fn all_partitions(topics: &BTreeMap<String, u32>) -> Vec<TopicPartition> {
    topics
        .iter()
        .flat_map(|(t, &n)| (0..n).map(move |p| TopicPartition::new(t.clone(), p)))
        .collect()
}

fn round_robin(
    members: &BTreeMap<String, MemberSubscription>,
    topics: &BTreeMap<String, u32>,
    out: &mut BTreeMap<String, Vec<TopicPartition>>,
) {
    let ids: Vec<&String> = members.keys().collect();
    if ids.is_empty() {
        return;
    }
    let mut next = 0usize;
    for tp in all_partitions(topics) {
        // The next member in circular order that reads this topic.
        let found = (0..ids.len())
            .map(|k| (next + k) % ids.len())
            .find(|&i| members[ids[i]].topics.contains(&tp.topic));
        if let Some(i) = found {
            out.entry(ids[i].clone()).or_default().push(tp);
            next = (i + 1) % ids.len();
        }
    }
}

fn sticky(
    members: &BTreeMap<String, MemberSubscription>,
    topics: &BTreeMap<String, u32>,
    out: &mut BTreeMap<String, Vec<TopicPartition>>,
) {
    let all = all_partitions(topics);
    let eligible = |m: &str, tp: &TopicPartition| members[m].topics.contains(&tp.topic);
    let valid: BTreeSet<&TopicPartition> = all
        .iter()
        .filter(|tp| members.keys().any(|m| eligible(m, tp)))
        .collect();
    let homogeneous = members
        .values()
        .zip(members.values().skip(1))
        .all(|(a, b)| a.topics == b.topics);
    let m = members.len();
    if m == 0 {
        return;
    }
    let total = valid.len();
    let (min_quota, mut extra) = if homogeneous {
        (total / m, total % m)
    } else {
        (usize::MAX, 0)
    };
    // 1. Each member keeps what it owned (still there, still subscribed, not claimed by an
    //    earlier member), up to its quota: at most `min_quota`, or one more while members at
    //    `min_quota + 1` are still needed.
    let mut taken: BTreeSet<TopicPartition> = BTreeSet::new();
    for (id, sub) in members {
        let mut keep: Vec<TopicPartition> = Vec::new();
        let owned: BTreeSet<&TopicPartition> = sub.owned.iter().collect();
        for tp in owned {
            if valid.contains(tp) && eligible(id, tp) && !taken.contains(tp) {
                keep.push(tp.clone());
            }
        }
        let quota = if keep.len() > min_quota && extra > 0 {
            extra -= 1;
            min_quota + 1
        } else {
            min_quota
        };
        keep.truncate(quota);
        taken.extend(keep.iter().cloned());
        out.insert(id.clone(), keep);
    }
    // 2. The rest go one by one to the least loaded eligible member (ties: member id); with
    //    homogeneous subscriptions, members under `min_quota` fill first, then the remaining
    //    `min_quota + 1` places, which keeps the counts within one of each other.
    for tp in all
        .iter()
        .filter(|tp| valid.contains(tp) && !taken.contains(*tp))
    {
        let target = out
            .iter()
            .filter(|(id, list)| {
                eligible(id, tp) && (!homogeneous || list.len() < min_quota || extra > 0)
            })
            .min_by_key(|(id, list)| (list.len(), (*id).clone()))
            .map(|(id, _)| id.clone());
        if let Some(id) = target {
            let list = out.entry(id).or_default();
            if homogeneous && list.len() >= min_quota {
                extra = extra.saturating_sub(1);
            }
            list.push(tp.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subs(ids: &[&str], topics: &[&str]) -> BTreeMap<String, MemberSubscription> {
        ids.iter()
            .map(|id| {
                (
                    (*id).to_owned(),
                    MemberSubscription {
                        topics: topics.iter().map(|t| (*t).to_owned()).collect(),
                        owned: Vec::new(),
                    },
                )
            })
            .collect()
    }

    #[test]
    fn range_and_round_robin_over_two_topics_as_kafka_documents() {
        // Kafka's RangeAssignor docs: C0, C1; t0, t1 with 3 partitions each.
        let m = subs(&["C0", "C1"], &["t0", "t1"]);
        let t: BTreeMap<_, _> = [("t0".to_owned(), 3), ("t1".to_owned(), 3)].into();
        let r = assign(Assignor::Range, &m, &t);
        let names = |v: &Vec<TopicPartition>| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(names(&r["C0"]), ["t0-0", "t0-1", "t1-0", "t1-1"]);
        assert_eq!(names(&r["C1"]), ["t0-2", "t1-2"]);
        // RoundRobinAssignor docs: C0: t0p0, t0p2, t1p1; C1: t0p1, t1p0, t1p2.
        let r = assign(Assignor::RoundRobin, &m, &t);
        assert_eq!(names(&r["C0"]), ["t0-0", "t0-2", "t1-1"]);
        assert_eq!(names(&r["C1"]), ["t0-1", "t1-0", "t1-2"]);
    }

    #[test]
    fn round_robin_skips_members_not_subscribed() {
        // Kafka's docs: C0 reads t0; C1 reads t0, t1; C2 reads t0, t1, t2; ti has i+1 partitions.
        let mut m = subs(&["C0"], &["t0"]);
        m.extend(subs(&["C1"], &["t0", "t1"]));
        m.extend(subs(&["C2"], &["t0", "t1", "t2"]));
        let t: BTreeMap<_, _> = [
            ("t0".to_owned(), 1),
            ("t1".to_owned(), 2),
            ("t2".to_owned(), 3),
        ]
        .into();
        let r = assign(Assignor::RoundRobin, &m, &t);
        let names = |v: &Vec<TopicPartition>| v.iter().map(ToString::to_string).collect::<Vec<_>>();
        assert_eq!(names(&r["C0"]), ["t0-0"]);
        assert_eq!(names(&r["C1"]), ["t1-0"]);
        assert_eq!(names(&r["C2"]), ["t1-1", "t2-0", "t2-1", "t2-2"]);
    }
}

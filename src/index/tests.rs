use super::*;

fn offset_index(dir: &Path, entries: &[(i32, i32)]) -> IndexWriter<OffsetEntry> {
    let mut w = IndexWriter::<OffsetEntry>::open(&dir.join("0.index"), 1024, 0).unwrap();
    for &(relative_offset, position) in entries {
        w.append(OffsetEntry {
            relative_offset,
            position,
        })
        .unwrap();
    }
    w
}

#[test]
#[cfg_attr(miri, ignore)]
fn floor_lookup_at_between_before_and_after_entries() {
    let dir = tempfile::tempdir().unwrap();
    let w = offset_index(dir.path(), &[(0, 0), (10, 4100), (25, 8300), (40, 12500)]);
    let r = w.reader();
    let pos = |t: i64| r.floor(t).map(|e| (e.relative_offset, e.position));
    assert_eq!(pos(-1), None, "before the first entry");
    assert_eq!(pos(0), Some((0, 0)), "at the first entry");
    assert_eq!(pos(9), Some((0, 0)), "between entries");
    assert_eq!(pos(10), Some((10, 4100)), "at an entry");
    assert_eq!(pos(24), Some((10, 4100)));
    assert_eq!(pos(25), Some((25, 8300)));
    assert_eq!(pos(40), Some((40, 12500)), "at the last entry");
    assert_eq!(pos(i64::MAX), Some((40, 12500)), "after the last entry");
}

#[test]
#[cfg_attr(miri, ignore)]
fn floor_lookup_agrees_with_linear_scan_beyond_the_warm_section() {
    let dir = tempfile::tempdir().unwrap();
    // 3,000 entries: more than the 1,024-entry warm section, so both halves are searched.
    let mut w =
        IndexWriter::<TimeEntry>::open(&dir.path().join("0.timeindex"), 3000 * 12, 0).unwrap();
    // The entries written, kept here as the reference (not read back from the index).
    let written: Vec<TimeEntry> = (0..3000)
        .map(|i| TimeEntry {
            timestamp: 1_000 + 7 * i64::from(i),
            relative_offset: 3 * i,
        })
        .collect();
    for &e in &written {
        w.append(e).unwrap();
    }
    assert!(
        w.append(TimeEntry {
            timestamp: 1 << 40,
            relative_offset: 1 << 20
        })
        .is_err(),
        "full"
    );
    let r = w.reader();
    assert_eq!(r.entries(), written);
    for t in (900..1_000 + 7 * 3000 + 20).step_by(5) {
        let expect = written.iter().rev().find(|e| e.timestamp <= t).copied();
        assert_eq!(r.floor(t), expect, "target {t}");
    }
}

#[test]
#[cfg_attr(miri, ignore)]
fn validation_names_the_first_bad_entry() {
    let dir = tempfile::tempdir().unwrap();
    let ok = offset_index(dir.path(), &[(0, 0), (10, 100)]);
    assert_eq!(ok.reader().validate(200, 20), Ok(()));
    assert_eq!(
        ok.reader().validate(100, 20).unwrap_err().0,
        8,
        "position past the log"
    );
    assert_eq!(
        ok.reader().validate(200, 10).unwrap_err().0,
        8,
        "offset past the segment"
    );
    drop(ok);
    std::fs::remove_file(dir.path().join("0.index")).unwrap();
    let bad = offset_index(dir.path(), &[(0, 0), (10, 100), (10, 200)]);
    assert_eq!(
        bad.reader().validate(1000, 100).unwrap_err(),
        (16, "entries not strictly increasing")
    );
}

#[test]
#[cfg_attr(miri, ignore)]
fn trimmed_index_reopens_read_only_with_the_same_entries() {
    let dir = tempfile::tempdir().unwrap();
    let w = offset_index(dir.path(), &[(0, 0), (5, 64), (9, 128)]);
    w.trim().unwrap();
    let path = dir.path().join("0.index");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 24);
    let r = IndexReader::<OffsetEntry>::open_read_only(&path).unwrap();
    let want: Vec<OffsetEntry> = [(0, 0), (5, 64), (9, 128)]
        .into_iter()
        .map(|(relative_offset, position)| OffsetEntry {
            relative_offset,
            position,
        })
        .collect();
    assert_eq!(r.entries(), want);
    assert_eq!(w.reader().entries(), want);
    std::fs::write(&path, [0u8; 13]).unwrap();
    assert!(matches!(
        IndexReader::<OffsetEntry>::open_read_only(&path),
        Err(Error::Corrupt { position: 8, .. })
    ));
}

#[test]
#[cfg_attr(miri, ignore)]
fn reopening_for_append_keeps_entries_and_drops_stale_tail() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("0.index");
    drop(offset_index(dir.path(), &[(0, 0), (5, 64), (9, 128)]));
    let mut w = IndexWriter::<OffsetEntry>::open(&path, 1024, 2).unwrap();
    assert_eq!(w.len(), 2);
    w.append(OffsetEntry {
        relative_offset: 7,
        position: 100,
    })
    .unwrap();
    assert_eq!(
        w.reader().last(),
        Some(OffsetEntry {
            relative_offset: 7,
            position: 100
        })
    );
    assert_eq!(w.max_entries(), 128);
}

/// `floor_index` (interpolating first, then halving) against a linear scan, on keys that grow
/// evenly, exponentially, in steps with long runs of equal keys (a time index), with huge gaps
/// and near the i64 limits; for every target around every key.
#[test]
fn floor_index_agrees_with_a_linear_scan_on_skewed_keys() {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let mut rnd = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let shapes: Vec<(&str, Vec<i64>)> = vec![
        ("even", (0..3000).map(|i| i * 7).collect()),
        ("exponential", (0..60).map(|i| 1i64 << i).collect()),
        ("squares", (0..2500i64).map(|i| i * i * i).collect()),
        (
            "runs of equal keys",
            (0..3000).map(|i| (i / 250) * 1000).collect(),
        ),
        ("one key", vec![5; 2000]),
        ("single entry", vec![42]),
        (
            "random steps",
            (0..3000)
                .scan(0i64, |k, _| {
                    *k += (rnd() % 1000) as i64 * if rnd() % 50 == 0 { 1_000_000 } else { 1 };
                    Some(*k)
                })
                .collect(),
        ),
        (
            "near the limits",
            vec![i64::MIN, i64::MIN + 1, -1, 0, 1, i64::MAX - 1, i64::MAX],
        ),
    ];
    for (name, keys) in shapes {
        let mut bytes = vec![0u8; keys.len() * TimeEntry::SIZE];
        for (chunk, &k) in bytes.chunks_exact_mut(TimeEntry::SIZE).zip(&keys) {
            TimeEntry {
                timestamp: k,
                relative_offset: 0,
            }
            .encode(chunk);
        }
        let linear = |t: i64| keys.iter().rposition(|&k| k <= t);
        let mut targets = vec![i64::MIN, i64::MAX];
        for &k in &keys {
            targets.extend([k.saturating_sub(1), k, k.saturating_add(1)]);
        }
        for t in targets {
            assert_eq!(
                floor_index::<TimeEntry>(&bytes, t),
                linear(t),
                "{name}: target {t}"
            );
        }
    }
}

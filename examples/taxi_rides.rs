//! NYC taxi rides through a partlog log: produce, read back, look up by time, survive a restart.
//!
//! Reads the TLC yellow-taxi CSV from `$PARTLOG_RIDES`, else `../shared/data/rides.csv`, else a
//! dozen rides built into this example, so it runs on a fresh machine:
//!
//! ```text
//! cargo run --release --example taxi_rides
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use partlog::batch::SimpleRecord;
use partlog::{Config, Log};

/// A few real rides (July 2020), used when the full file is not around.
const BUILT_IN: &str = "\
VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,RatecodeID,store_and_fwd_flag,PULocationID,DOLocationID,payment_type,fare_amount,extra,mta_tax,tip_amount,tolls_amount,improvement_surcharge,total_amount,congestion_surcharge
1,2020-07-01 00:25:32,2020-07-01 00:33:39,1,1.50,1,N,238,75,2,8,0.5,0.5,0,0,0.3,9.3,0
1,2020-07-01 00:03:19,2020-07-01 00:25:43,1,9.50,1,N,138,216,1,26.5,0.5,0.5,0,0,0.3,27.8,0
2,2020-07-01 00:15:11,2020-07-01 00:29:24,1,5.85,1,N,230,88,2,18.5,0.5,0.5,0,0,0.3,22.3,2.5
2,2020-07-01 00:30:49,2020-07-01 00:38:26,1,1.90,1,N,88,232,1,8,0.5,0.5,2.36,0,0.3,14.16,2.5
2,2020-07-01 00:31:26,2020-07-01 00:38:02,1,1.25,1,N,37,17,2,6.5,0.5,0.5,0,0,0.3,7.8,0
1,2020-07-01 00:09:00,2020-07-01 00:34:39,1,9.70,1,N,140,61,1,30,3,0.5,0,0,0.3,33.8,2.5
1,2020-07-01 00:44:08,2020-07-01 00:58:12,1,5.30,1,N,238,152,2,17.5,3,0.5,0,0,0.3,21.3,2.5
2,2020-07-01 00:49:20,2020-07-01 00:56:05,2,1.36,1,N,161,141,1,7,0.5,0.5,1,0,0.3,11.8,2.5
1,2020-07-01 01:05:41,2020-07-01 01:17:13,1,3.10,1,N,161,79,1,11.5,3,0.5,2,0,0.3,17.3,2.5
2,2020-07-01 01:21:17,2020-07-01 01:33:12,1,4.20,1,N,79,238,2,14,0.5,0.5,0,0,0.3,17.8,2.5
1,2020-07-01 01:49:27,2020-07-01 01:55:52,1,.80,1,N,140,237,2,6.5,3,0.5,0,0,0.3,10.3,2.5
2,2020-07-01 01:49:40,2020-07-01 01:56:37,3,2.64,1,N,263,161,1,9,0.5,0.5,0,0,0.3,12.8,2.5
";

/// Milliseconds since the epoch of `YYYY-MM-DD HH:MM:SS` (UTC), or `None` if malformed.
fn parse_time(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 24 + hh) * 60 + mm) * 60_000 + ss * 1000)
}

fn load_csv() -> (String, String) {
    let candidates = [
        std::env::var_os("PARTLOG_RIDES").map(PathBuf::from),
        Some(PathBuf::from("../shared/data/rides.csv")),
    ];
    for path in candidates.into_iter().flatten() {
        if let Ok(text) = std::fs::read_to_string(&path) {
            return (text, path.display().to_string());
        }
    }
    (
        BUILT_IN.to_owned(),
        "the rides built into this example".to_owned(),
    )
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (csv, source) = load_csv();
    let mut rides: Vec<(i64, String, String)> = Vec::new();
    for line in csv.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split(',').collect();
        let (Some(pickup), Some(zone)) = (fields.get(1).and_then(|t| parse_time(t)), fields.get(7))
        else {
            eprintln!("skipping malformed line: {line}");
            continue;
        };
        rides.push((pickup, zone.to_string(), line.to_owned()));
    }
    println!("{} rides from {source}", rides.len());

    let dir = tempfile::tempdir()?;
    // Small segments so that even a few hundred rides span several of them.
    let config = Config {
        segment_bytes: 8 * 1024,
        index_interval_bytes: 512,
        ..Config::default()
    };
    let log = Log::open(dir.path(), config.clone())?;
    // Produce in batches of 20 rides, keyed by pickup zone, stamped with the pickup time.
    for chunk in rides.chunks(20) {
        let batch: Vec<SimpleRecord> = chunk
            .iter()
            .map(|(ts, zone, line)| SimpleRecord::new(*ts, Some(zone.clone()), Some(line.clone())))
            .collect();
        let info = log.append(&batch)?;
        println!(
            "appended offsets {:>3}..={:<3} -> segment {:020}.log @ byte {}",
            info.first_offset, info.last_offset, info.segment_base_offset, info.position
        );
    }
    log.flush()?;
    println!(
        "log end offset {}, {} segments, {} bytes on disk",
        log.log_end_offset(),
        log.segment_count(),
        log.size()
    );

    // Where does 01:00 start? The time index answers without reading every batch.
    let one_am = parse_time("2020-07-01 01:00:00").unwrap_or_default();
    match log.offset_for_timestamp(one_am)? {
        Some(o) => {
            let read = log.read(o, 1)?;
            let ride = read.batches[0]
                .records()?
                .find_map(|r| r.ok().filter(|r| r.offset == o));
            let line = ride.and_then(|r| r.value).unwrap_or_default();
            println!(
                "first ride picked up at or after 2020-07-01 01:00: offset {o}: {}",
                String::from_utf8_lossy(&line)
            );
        }
        None => println!("no ride picked up after 2020-07-01 01:00"),
    }
    log.close()?;

    // Reopen (a clean open reads no data) and consume everything: fares per pickup zone.
    let log = Log::open(dir.path(), config)?;
    let mut fares: BTreeMap<String, (u32, f64)> = BTreeMap::new();
    let mut next = log.log_start_offset();
    let mut consumed = 0;
    while next < log.log_end_offset() {
        let read = log.read(next, 4096)?;
        for batch in &read.batches {
            for record in batch.records()? {
                let record = record?;
                let line = String::from_utf8_lossy(record.value.as_deref().unwrap_or_default())
                    .into_owned();
                let fare: f64 = line
                    .split(',')
                    .nth(16)
                    .and_then(|f| f.parse().ok())
                    .unwrap_or(0.0);
                let zone =
                    String::from_utf8_lossy(record.key.as_deref().unwrap_or_default()).into_owned();
                let e = fares.entry(zone).or_default();
                e.0 += 1;
                e.1 += fare;
                consumed += 1;
            }
        }
        next = read.next_offset;
    }
    println!(
        "reopened (clean: {}), consumed {consumed} rides",
        log.open_report().clean
    );
    let mut busiest: Vec<_> = fares.into_iter().collect();
    busiest.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(&b.0)));
    for (zone, (n, total)) in busiest.iter().take(5) {
        println!(
            "  pickup zone {zone:>3}: {n:>3} rides, average total ${:.2}",
            total / f64::from(*n)
        );
    }
    assert_eq!(consumed, rides.len(), "every ride produced was consumed");
    Ok(())
}

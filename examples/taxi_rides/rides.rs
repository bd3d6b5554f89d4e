//! NYC TLC yellow-taxi rides: a generator with realistic values and volume, and a reader for the
//! real CSV files (plain or `.csv.gz`, as the Kafka courses distribute them).

use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;

/// The TLC yellow-taxi CSV header (2020 schema).
#[cfg(test)]
pub const HEADER: &str = "VendorID,tpep_pickup_datetime,tpep_dropoff_datetime,passenger_count,trip_distance,RatecodeID,store_and_fwd_flag,PULocationID,DOLocationID,payment_type,fare_amount,extra,mta_tax,tip_amount,tolls_amount,improvement_surcharge,total_amount,congestion_surcharge";

/// One ride: the CSV line as the TLC writes it, with the two fields partlog uses.
#[derive(Debug, Clone)]
pub struct Ride {
    /// The `VendorID` column: the record key.
    pub vendor: String,
    /// The pickup time, milliseconds since the epoch (UTC): the record timestamp.
    pub pickup_ms: i64,
    /// The whole line: the record value.
    pub line: String,
}

/// Milliseconds since the epoch of `YYYY-MM-DD HH:MM:SS` (taken as UTC), or `None`.
pub fn parse_time(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    Some((days_from_civil(y, m, d) * 86_400 + hh * 3600 + mm * 60 + ss) * 1000)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD HH:MM:SS` of milliseconds since the epoch.
pub fn format_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil from days (Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Parses one CSV line of the TLC schema; `None` for a header or a malformed line.
pub fn parse_line(line: &str) -> Option<Ride> {
    let mut fields = line.split(',');
    let vendor = fields.next()?.trim();
    if vendor.is_empty() || !vendor.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let pickup_ms = parse_time(fields.next()?.trim())?;
    Some(Ride {
        vendor: vendor.to_owned(),
        pickup_ms,
        line: line.trim_end().to_owned(),
    })
}

/// Reads the rides of a TLC CSV file, plain or gzip-compressed (`.gz`).
pub fn read_csv(path: &Path) -> std::io::Result<Vec<Ride>> {
    let file = std::fs::File::open(path)?;
    let reader: Box<dyn Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::MultiGzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut rides = Vec::new();
    for line in BufReader::new(reader).lines() {
        if let Some(r) = parse_line(&line?) {
            rides.push(r);
        }
    }
    Ok(rides)
}

/// A deterministic generator of rides in the TLC schema, pickups moving forward from July 1st,
/// 2020 at about one ride every 2.6 s (the month's real volume: ~800,000 yellow-taxi rides).
pub struct Generator {
    state: u64,
    pickup_ms: i64,
}

impl Generator {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Generator {
            state: seed | 1,
            pickup_ms: parse_time("2020-07-01 00:00:00").unwrap_or(0),
        }
    }

    fn next_u64(&mut self) -> u64 {
        self.state ^= self.state << 13;
        self.state ^= self.state >> 7;
        self.state ^= self.state << 17;
        self.state
    }

    /// Uniform in `[0, 1)`.
    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// The next ride.
    pub fn next_ride(&mut self) -> Ride {
        // Exponential gaps, mean 2.6 s.
        let gap = -(1.0 - self.unit()).ln() * 2_600.0;
        self.pickup_ms += gap as i64;
        let vendor = if self.unit() < 0.35 { 1 } else { 2 };
        let passengers = match self.unit() {
            u if u < 0.72 => 1,
            u if u < 0.86 => 2,
            u if u < 0.91 => 3,
            u if u < 0.94 => 5,
            u if u < 0.97 => 6,
            _ => 4,
        };
        // Trip distance: log-normal-ish, median ~1.7 miles, clamped to [0.1, 40].
        let distance = (0.55 + 0.85 * normal(self.unit(), self.unit()))
            .exp()
            .clamp(0.1, 40.0);
        let minutes = (distance * (3.0 + 4.0 * self.unit()) + 2.0 * self.unit()).max(1.0);
        let dropoff_ms = self.pickup_ms + (minutes * 60_000.0) as i64;
        let pu = 1 + self.next_u64() % 263;
        let dl = 1 + self.next_u64() % 263;
        let card = self.unit() < 0.68;
        let fare = (2.5 + 2.5 * distance + 0.35 * minutes).round_to_half();
        let extra = if self.unit() < 0.4 { 0.5 } else { 0.0 };
        let tip = if card {
            (fare * (0.1 + 0.15 * self.unit())).round_to_cent()
        } else {
            0.0
        };
        let tolls = if distance > 10.0 && self.unit() < 0.4 {
            6.12
        } else {
            0.0
        };
        let congestion = if self.unit() < 0.75 { 2.5 } else { 0.0 };
        let total = fare + extra + 0.5 + tip + tolls + 0.3 + congestion;
        let mut line = String::with_capacity(160);
        let _ = write!(
            line,
            "{vendor},{},{},{passengers},{distance:.2},1,N,{pu},{dl},{},{fare:.1},{extra},0.5,{tip:.2},{tolls},0.3,{total:.2},{congestion}",
            format_time(self.pickup_ms),
            format_time(dropoff_ms),
            if card { 1 } else { 2 },
        );
        Ride {
            vendor: vendor.to_string(),
            pickup_ms: self.pickup_ms / 1000 * 1000,
            line,
        }
    }
}

/// A standard normal draw from two uniforms (Box-Muller).
fn normal(u1: f64, u2: f64) -> f64 {
    (-2.0 * (1.0 - u1).ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

trait Round {
    fn round_to_half(self) -> f64;
    fn round_to_cent(self) -> f64;
}

impl Round for f64 {
    fn round_to_half(self) -> f64 {
        (self * 2.0).round() / 2.0
    }
    fn round_to_cent(self) -> f64 {
        (self * 100.0).round() / 100.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_rides_parse_back_and_move_forward() {
        let mut g = Generator::new(7);
        let mut last = 0;
        for _ in 0..1000 {
            let r = g.next_ride();
            let parsed = parse_line(&r.line).expect("a generated line parses");
            assert_eq!(parsed.vendor, r.vendor);
            assert_eq!(parsed.pickup_ms, r.pickup_ms);
            assert!(r.pickup_ms >= last);
            last = r.pickup_ms;
            assert_eq!(r.line.split(',').count(), HEADER.split(',').count());
        }
    }

    #[test]
    fn times_parse_as_utc_and_bad_ones_do_not() {
        assert_eq!(parse_time("1970-01-01 00:00:01"), Some(1000));
        assert_eq!(parse_time("2020-07-01 00:25:32"), Some(1_593_563_132_000));
        for bad in [
            "2020-07-01",
            "2020-13-01 00:00:00",
            "2020-07-01 24:00:00",
            "x",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }

    #[test]
    fn times_round_trip() {
        for s in [
            "2020-07-01 00:25:32",
            "2019-12-31 23:59:59",
            "2024-02-29 12:00:00",
        ] {
            assert_eq!(format_time(parse_time(s).unwrap()), s);
        }
    }
}

//! Integration tests of the `partlog` command-line tool: they run the built binary.
#![cfg(feature = "cli")]

use std::fs;
use std::path::{Path, PathBuf};

use partlog::batch::SimpleRecord;
use partlog::log::{CLEAN_SHUTDOWN_FILE, RECOVERY_POINT_FILE};
use partlog::segment::SegmentPaths;
use partlog::{AppendInfo, Log};

mod common;
use common::cli::{p, partlog};
use common::small_config;
use std::process::{Command, Stdio};

// ---------------------------------------------------------------------------------------------
// Test logs built with the library.

const T0: i64 = 1_600_000_000_000;

/// Appends `batches` batches of 5 records (about 600 bytes each) and returns where they landed.
fn append_batches(log: &Log, batches: usize) -> Vec<AppendInfo> {
    (0..batches)
        .map(|b| {
            let records: Vec<SimpleRecord> = (0..5)
                .map(|r| {
                    let i = b * 5 + r;
                    SimpleRecord::new(
                        T0 + i as i64,
                        Some(format!("key-{i}")),
                        Some(format!("value-{i}-{}", "x".repeat(90))),
                    )
                })
                .collect();
            log.append(&records).expect("append")
        })
        .collect()
}

/// A cleanly closed log of 40 batches over several segments.
fn make_log(dir: &Path) -> Vec<AppendInfo> {
    let log = Log::open(dir, small_config()).expect("open");
    let infos = append_batches(&log, 40);
    assert!(log.segment_count() >= 4, "want several segments");
    log.close().expect("close");
    infos
}

fn segment_paths(dir: &Path, base: i64) -> SegmentPaths {
    SegmentPaths::new(dir, base)
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_str().unwrap().to_owned()
}

/// The first batch of a segment other than the first, and not at position 0.
fn middle_batch(infos: &[AppendInfo]) -> AppendInfo {
    *infos
        .iter()
        .find(|i| i.segment_base_offset > 0 && i.position > 0)
        .expect("a batch inside a later segment")
}

// ---------------------------------------------------------------------------------------------
// A minimal JSON parser, to check that every line `dump --json` prints is valid JSON.

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(fields) => fields.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn int(&self, key: &str) -> i64 {
        match self.get(key) {
            Some(Json::Num(n)) => n
                .parse()
                .unwrap_or_else(|_| panic!("{key} is not an integer: {n}")),
            other => panic!("{key} is not a number: {other:?}"),
        }
    }

    fn str(&self, key: &str) -> &str {
        match self.get(key) {
            Some(Json::Str(s)) => s,
            other => panic!("{key} is not a string: {other:?}"),
        }
    }

    fn bool(&self, key: &str) -> bool {
        match self.get(key) {
            Some(Json::Bool(b)) => *b,
            other => panic!("{key} is not a boolean: {other:?}"),
        }
    }

    fn arr(&self, key: &str) -> &[Json] {
        match self.get(key) {
            Some(Json::Arr(a)) => a,
            other => panic!("{key} is not an array: {other:?}"),
        }
    }
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && b" \t\r\n".contains(&self.b[self.i]) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at {}", c as char, self.i))
        }
    }

    fn lit(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.b[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(format!("bad literal at {}", self.i))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.b.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut fields = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(fields));
                }
                loop {
                    self.ws();
                    let Json::Str(k) = self.string()? else {
                        unreachable!()
                    };
                    if fields.iter().any(|(seen, _)| *seen == k) {
                        return Err(format!("duplicate key {k:?}"));
                    }
                    self.eat(b':')?;
                    fields.push((k, self.value()?));
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(fields));
                        }
                        _ => return Err(format!("bad object at {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.value()?);
                    self.ws();
                    match self.b.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(format!("bad array at {}", self.i)),
                    }
                }
            }
            Some(b'"') => self.string(),
            Some(b't') => self.lit("true", Json::Bool(true)),
            Some(b'f') => self.lit("false", Json::Bool(false)),
            Some(b'n') => self.lit("null", Json::Null),
            Some(c) if *c == b'-' || c.is_ascii_digit() => {
                let start = self.i;
                self.i += 1;
                while self.i < self.b.len()
                    && (self.b[self.i].is_ascii_digit() || b".eE+-".contains(&self.b[self.i]))
                {
                    self.i += 1;
                }
                let n = std::str::from_utf8(&self.b[start..self.i])
                    .unwrap()
                    .to_owned();
                n.parse::<f64>().map_err(|_| format!("bad number {n}"))?;
                Ok(Json::Num(n))
            }
            _ => Err(format!("unexpected input at {}", self.i)),
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self.b.get(self.i..self.i + 4).ok_or("short \\u escape")?;
        self.i += 4;
        u32::from_str_radix(std::str::from_utf8(h).map_err(|e| e.to_string())?, 16)
            .map_err(|e| e.to_string())
    }

    fn string(&mut self) -> Result<Json, String> {
        if self.b.get(self.i) != Some(&b'"') {
            return Err(format!("expected a string at {}", self.i));
        }
        self.i += 1;
        let mut s = String::new();
        loop {
            let rest = std::str::from_utf8(&self.b[self.i..]).map_err(|e| e.to_string())?;
            let c = rest.chars().next().ok_or("unterminated string")?;
            self.i += c.len_utf8();
            match c {
                '"' => return Ok(Json::Str(s)),
                '\\' => {
                    let e = *self.b.get(self.i).ok_or("bad escape")?;
                    self.i += 1;
                    match e {
                        b'"' => s.push('"'),
                        b'\\' => s.push('\\'),
                        b'/' => s.push('/'),
                        b'b' => s.push('\u{8}'),
                        b'f' => s.push('\u{c}'),
                        b'n' => s.push('\n'),
                        b'r' => s.push('\r'),
                        b't' => s.push('\t'),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp) {
                                self.eat(b'\\')?;
                                self.eat(b'u')?;
                                let lo = self.hex4()?;
                                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                            }
                            s.push(char::from_u32(cp).ok_or("bad code point")?);
                        }
                        _ => return Err(format!("bad escape \\{}", e as char)),
                    }
                }
                c if (c as u32) < 0x20 => return Err("raw control character in a string".into()),
                c => s.push(c),
            }
        }
    }
}

fn parse_json(text: &str) -> Result<Json, String> {
    let mut p = Parser {
        b: text.as_bytes(),
        i: 0,
    };
    let v = p.value()?;
    p.ws();
    if p.i != p.b.len() {
        return Err(format!("trailing input at {}", p.i));
    }
    Ok(v)
}

fn json_lines(stdout: &str) -> Vec<Json> {
    stdout
        .lines()
        .map(|l| parse_json(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

#[test]
fn json_parser_sanity() {
    let v = parse_json(r#"{"a":[1,-2.5e3,true,null],"b":"x\"\u00e9\ud83d\ude00"}"#).unwrap();
    assert_eq!(v.str("b"), "x\"é😀");
    assert!(parse_json("{\"a\":1,}").is_err());
    assert!(parse_json("{\"a\":1} x").is_err());
    assert!(parse_json("{\"a\":1,\"a\":2}").is_err());
}

// ---------------------------------------------------------------------------------------------
// produce, verify, dump.

#[test]
fn produce_then_verify_and_dump_json() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("log");
    let out = partlog(&[
        "produce",
        &p(&dir),
        "--records",
        "2000",
        "--record-size",
        "50",
        "--batch",
        "10",
        "--segment-bytes",
        "4096",
        "--flush-every",
        "7",
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("first offset: 0"), "{}", out.stdout);
    assert!(out.stdout.contains("last offset: 1999"), "{}", out.stdout);
    assert!(
        out.stdout.contains("log end offset: 2000"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("records/s"), "{}", out.stdout);

    let out = partlog(&["verify", &p(&dir)]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("batches: 200"), "{}", out.stdout);
    assert!(
        out.stdout.contains("records: 2000 (offsets 0 to 1999)"),
        "{}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("segments: 1 "),
        "several segments expected: {}",
        out.stdout
    );
    assert!(out.stdout.contains("warnings: 0"), "{}", out.all());

    let out = partlog(&["dump", &p(&dir), "--json"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 200, "one line per batch");
    let mut next = 0;
    let mut files = Vec::new();
    for l in &lines {
        assert_eq!(l.str("type"), "batch");
        assert!(l.bool("valid"));
        assert_eq!(l.int("baseOffset"), next, "offsets increase without gaps");
        assert_eq!(l.int("count"), 10);
        assert_eq!(l.int("lastOffset"), next + 9);
        assert_eq!(l.str("compression"), "none");
        assert!(l.int("size") > 61);
        next = l.int("lastOffset") + 1;
        if files.last().map(String::as_str) != Some(l.str("file")) {
            files.push(l.str("file").to_owned());
        }
    }
    assert!(files.len() > 1, "batches from several segments");
    let mut sorted = files.clone();
    sorted.sort();
    assert_eq!(files, sorted, "segments dumped in offset order");

    // With --records, each line carries its records.
    let out = partlog(&["dump", "--records", "--json", &files[1]]);
    assert_eq!(out.code, 0, "{}", out.all());
    for l in json_lines(&out.stdout) {
        let records = l.arr("records");
        assert_eq!(records.len() as i64, l.int("count"));
        for (i, r) in records.iter().enumerate() {
            let offset = r.int("offset");
            assert_eq!(offset, l.int("baseOffset") + i as i64);
            assert_eq!(r.str("key"), format!("key-{offset}"));
            assert_eq!(r.int("valueSize"), 50);
            assert_eq!(r.int("headers"), 0);
        }
    }

    // Text dump of one segment with its records.
    let out = partlog(&["dump", &files[0], "--records"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout
            .contains("position: 0 baseOffset: 0 lastOffset: 9 count: 10"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("| offset: 0 "), "{}", out.stdout);
    assert!(out.stdout.contains("key: \"key-0\""), "{}", out.stdout);
}

#[test]
fn verify_accepts_a_library_log_and_dumps_its_indexes() {
    let tmp = tempfile::tempdir().unwrap();
    let infos = make_log(tmp.path());
    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains(&format!("batches: {}", infos.len())),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("clean shutdown: yes"), "{}", out.stdout);

    let seg = segment_paths(tmp.path(), 0);
    let out = partlog(&["dump", &p(&seg.index), "--json"]);
    assert_eq!(out.code, 0, "{}", out.all());
    let entries = json_lines(&out.stdout);
    assert!(
        !entries.is_empty(),
        "small index interval: entries expected"
    );
    let positions: Vec<i64> = infos
        .iter()
        .filter(|i| i.segment_base_offset == 0)
        .map(|i| i.position as i64)
        .collect();
    for e in &entries {
        assert!(
            positions.contains(&e.int("position")),
            "entry points at a batch: {e:?}"
        );
        assert_eq!(e.int("offset"), e.int("relativeOffset"));
    }
    let out = partlog(&["dump", &p(&seg.time_index)]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("time index:"), "{}", out.stdout);
    let first = out
        .stdout
        .lines()
        .find(|l| l.starts_with("timestamp: "))
        .expect("a time entry");
    let ts: i64 = first.split(' ').nth(1).unwrap().parse().unwrap();
    assert!((T0..T0 + 200).contains(&ts), "{first}");
    assert!(first.contains(" offset: "), "{first}");
}

#[test]
fn flipped_byte_in_a_batch_names_file_and_position() {
    let tmp = tempfile::tempdir().unwrap();
    let infos = make_log(tmp.path());
    let victim = middle_batch(&infos);
    let log_path = segment_paths(tmp.path(), victim.segment_base_offset).log;
    let mut data = fs::read(&log_path).unwrap();
    data[victim.position as usize + victim.size - 7] ^= 0x40; // inside the last record
    fs::write(&log_path, &data).unwrap();

    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 1, "{}", out.all());
    let expected = format!("{}:{}:", file_name(&log_path), victim.position);
    assert!(
        out.stderr.contains(&expected),
        "want {expected} in {}",
        out.stderr
    );
    assert!(out.stderr.contains("CRC"), "{}", out.stderr);

    // dump shows the batch as invalid and stops there.
    let out = partlog(&["dump", &p(&log_path)]);
    assert_eq!(out.code, 1, "{}", out.all());
    let line = out
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("position: {} ", victim.position)))
        .expect("the bad batch is listed");
    assert!(
        line.contains("valid: false") && line.contains("CRC mismatch"),
        "{line}"
    );
    assert!(!out.stdout.contains(&format!(
        "position: {} ",
        victim.position + victim.size as u64
    )));
    let out = partlog(&["dump", &p(&log_path), "--json"]);
    assert_eq!(out.code, 1);
    let last = json_lines(&out.stdout).pop().unwrap();
    assert!(!last.bool("valid"));
    assert_eq!(last.int("position"), victim.position as i64);
    assert!(last.str("error").contains("CRC"));
}

#[test]
fn flipped_byte_in_a_header_outside_the_crc_is_caught_by_offsets() {
    // baseOffset lies outside the CRC: a changed one must still be caught.
    let tmp = tempfile::tempdir().unwrap();
    let infos = make_log(tmp.path());
    let victim = middle_batch(&infos);
    let log_path = segment_paths(tmp.path(), victim.segment_base_offset).log;
    let mut data = fs::read(&log_path).unwrap();
    data[victim.position as usize + 7] ^= 0x01; // lowest byte of baseOffset
    fs::write(&log_path, &data).unwrap();
    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains(&file_name(&log_path)), "{}", out.stderr);
}

#[test]
fn garbage_index_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    let infos = make_log(tmp.path());
    let base = middle_batch(&infos).segment_base_offset;
    let index = segment_paths(tmp.path(), base).index;
    fs::write(&index, [0xAB; 16]).unwrap();
    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains(&format!("{}:0:", file_name(&index))),
        "{}",
        out.stderr
    );

    // Whole entries that look fine but point between batches.
    let mut entries = fs::read(segment_paths(tmp.path(), 0).index).unwrap();
    assert!(entries.len() >= 8);
    entries[7] = entries[7].wrapping_add(1); // position of entry 0, one byte off
    let index0 = segment_paths(tmp.path(), 0).index;
    fs::write(&index0, &entries).unwrap();
    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains(&file_name(&index0)), "{}", out.stderr);
    assert!(out.stderr.contains("no batch starts"), "{}", out.stderr);

    // A length that is not whole entries.
    fs::write(&index0, [0u8; 7]).unwrap();
    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("not a multiple of 8"), "{}", out.stderr);
}

#[test]
fn wrong_time_index_is_named() {
    let tmp = tempfile::tempdir().unwrap();
    make_log(tmp.path());
    let ti = segment_paths(tmp.path(), 0).time_index;
    let mut data = fs::read(&ti).unwrap();
    assert!(data.len() >= 12);
    let last = data.len() - 12;
    data[last + 7] = data[last + 7].wrapping_add(1); // timestamp of the last entry
    fs::write(&ti, &data).unwrap();
    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains(&format!("{}:{last}:", file_name(&ti))),
        "{}",
        out.stderr
    );

    // An empty time index loses the segment's largest timestamp.
    fs::write(&ti, []).unwrap();
    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("largest timestamp"), "{}", out.stderr);
}

#[test]
fn torn_batch_is_reported_by_dump_and_verify() {
    let tmp = tempfile::tempdir().unwrap();
    let infos = make_log(tmp.path());
    let last = *infos.last().unwrap();
    let log_path = segment_paths(tmp.path(), last.segment_base_offset).log;
    let len = fs::metadata(&log_path).unwrap().len();
    assert_eq!(
        len,
        last.position + last.size as u64,
        "closed log is trimmed"
    );
    fs::OpenOptions::new()
        .write(true)
        .open(&log_path)
        .unwrap()
        .set_len(len - 10)
        .unwrap();

    let out = partlog(&["dump", &p(&log_path)]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout
            .contains(&format!("position: {} torn batch", last.position)),
        "{}",
        out.stdout
    );
    let out = partlog(&["dump", &p(&log_path), "--json"]);
    assert_eq!(out.code, 1);
    let tail = json_lines(&out.stdout).pop().unwrap();
    assert_eq!(tail.str("type"), "invalid");
    assert_eq!(tail.int("position"), last.position as i64);
    assert!(tail.str("error").contains("torn"));

    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains(&format!(
            "{}:{}: torn batch",
            file_name(&log_path),
            last.position
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn crash_leaves_warnings_only() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), small_config()).unwrap();
    let infos = append_batches(&log, 13);
    log.abandon();
    let last = *infos.last().unwrap();
    let log_path = segment_paths(tmp.path(), last.segment_base_offset).log;
    let end = last.position + last.size as u64;
    assert!(
        fs::metadata(&log_path).unwrap().len() > end,
        "active segment preallocated"
    );

    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stderr.contains("warning:"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains(&format!("{}:{end}:", file_name(&log_path)))
            && out.stderr.contains("preallocated"),
        "{}",
        out.stderr
    );
    assert!(out.stdout.contains("clean shutdown: no"), "{}", out.stdout);

    let out = partlog(&["dump", &p(&log_path)]);
    assert_eq!(out.code, 0, "{}", out.all());
    let zeros = fs::metadata(&log_path).unwrap().len() - end;
    assert!(
        out.stdout.contains(&format!(
            "end of data ({zeros} zero bytes of preallocated space)"
        )),
        "{}",
        out.stdout
    );

    // The library agrees: the log opens and keeps everything.
    let log = Log::open(tmp.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), last.last_offset + 1);
    log.close().unwrap();
    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("warnings: 0"), "{}", out.all());
}

#[test]
fn verify_of_an_open_log_warns_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), small_config()).unwrap();
    let infos = append_batches(&log, 9);
    log.flush().unwrap();
    let before: Vec<(PathBuf, u64)> = {
        let mut v: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.path(), e.metadata().unwrap().len())
            })
            .collect();
        v.sort();
        v
    };
    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr.contains("open in another process"),
        "{}",
        out.stderr
    );
    let mut after: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.path(), e.metadata().unwrap().len())
        })
        .collect();
    after.sort();
    assert_eq!(before, after, "verify changed the directory");
    // The log is still usable.
    let more = append_batches(&log, 1);
    assert_eq!(more[0].first_offset, infos.last().unwrap().last_offset + 1);
    log.close().unwrap();
}

#[test]
fn zeros_in_a_segment_that_is_not_the_last_are_an_error() {
    let tmp = tempfile::tempdir().unwrap();
    make_log(tmp.path());
    let log_path = segment_paths(tmp.path(), 0).log;
    let mut data = fs::read(&log_path).unwrap();
    let end = data.len();
    data.extend([0u8; 100]);
    fs::write(&log_path, &data).unwrap();
    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains(&format!("{}:{end}:", file_name(&log_path))),
        "{}",
        out.stderr
    );
}

#[test]
fn orphan_index_is_a_warning_and_overlapping_segments_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let infos = make_log(tmp.path());
    // A deletion (retention waiting out its delay, or a crash) leaves index files without their
    // .log; opening removes them.
    let orphan = segment_paths(tmp.path(), 999_999).index;
    let orphan_time = segment_paths(tmp.path(), 999_999).time_index;
    fs::write(&orphan, []).unwrap();
    fs::write(&orphan_time, []).unwrap();
    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 0, "{}", out.all());
    for path in [&orphan, &orphan_time] {
        assert!(
            out.stderr.lines().any(|l| l.starts_with("warning: ")
                && l.contains(&file_name(path))
                && l.contains("orphan")),
            "{}",
            out.stderr
        );
    }
    assert!(out.stdout.contains("warnings: 2"), "{}", out.stdout);
    // The library agrees: the orphans go, the log is intact.
    let log = Log::open(tmp.path(), small_config()).unwrap();
    assert_eq!(log.log_end_offset(), infos.last().unwrap().last_offset + 1);
    log.close().unwrap();
    assert!(!orphan.exists() && !orphan_time.exists());

    // Rename the second segment one offset down: the first one now reaches into it.
    let second = middle_batch(&infos).segment_base_offset;
    let from = segment_paths(tmp.path(), second);
    let to = segment_paths(tmp.path(), second - 1);
    fs::rename(&from.log, &to.log).unwrap();
    fs::rename(&from.index, &to.index).unwrap();
    fs::rename(&from.time_index, &to.time_index).unwrap();
    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr.contains("reaches into the next segment"),
        "{}",
        out.stderr
    );
}

#[test]
fn bad_arguments_exit_2() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = p(tmp.path());
    let cases: Vec<Vec<&str>> = vec![
        vec![],
        vec!["frobnicate"],
        vec!["verify"],
        vec!["verify", &dir, "extra"],
        vec!["verify", &dir, "--json"],
        vec!["dump"],
        vec!["dump", &dir, "--records=yes"],
        vec!["dump", &dir, "--json", "--json"],
        vec!["produce", &dir],
        vec!["produce", &dir, "--records", "10", "--record-size", "10"],
        vec![
            "produce",
            &dir,
            "--records",
            "ten",
            "--record-size",
            "10",
            "--batch",
            "1",
        ],
        vec![
            "produce",
            &dir,
            "--records",
            "-5",
            "--record-size",
            "10",
            "--batch",
            "1",
        ],
        vec![
            "produce",
            &dir,
            "--records",
            "10",
            "--record-size",
            "10",
            "--batch",
            "0",
        ],
        vec![
            "produce",
            &dir,
            "--records",
            "10",
            "--record-size",
            "10",
            "--batch",
            "1",
            "--segment-bytes",
            "10",
        ],
        vec![
            "produce",
            &dir,
            "--records",
            "10",
            "--record-size",
            "10",
            "--batch",
            "1",
            "--flush-every",
        ],
        vec![
            "produce",
            &dir,
            "--records",
            "10",
            "--record-size",
            "100000000",
            "--batch",
            "1",
        ],
        vec![
            "produce",
            &dir,
            "--records",
            "10",
            "--record-size",
            "10",
            "--batch",
            "1",
            "-x",
        ],
    ];
    for args in cases {
        let out = partlog(&args);
        assert_eq!(out.code, 2, "{args:?}: {}", out.all());
        // clap's usage error: the usage, or (for a value that does not parse) a pointer to it.
        assert!(
            out.stderr.contains("Usage:") || out.stderr.contains("try '--help'"),
            "{args:?}: {}",
            out.stderr
        );
    }
    // Nothing was created by the rejected produce runs.
    assert_eq!(fs::read_dir(tmp.path()).unwrap().count(), 0);

    let file = tmp.path().join("notes.txt");
    fs::write(&file, "hello").unwrap();
    assert_eq!(partlog(&["dump", &p(&file)]).code, 2);

    // Not usage errors: a missing directory or file is an I/O failure.
    let missing: PathBuf = tmp.path().join("missing");
    let out = partlog(&["verify", &p(&missing)]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("missing"), "{}", out.stderr);
    assert_eq!(partlog(&["dump", &p(&missing.join("0.log"))]).code, 1);
    assert_eq!(partlog(&["verify", &p(&file)]).code, 1);

    let out = partlog(&["help"]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("partlog verify DIR"));
}

#[test]
fn garbage_files_never_crash_the_tool() {
    let tmp = tempfile::tempdir().unwrap();
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    for (i, len) in [0usize, 1, 11, 12, 60, 61, 62, 500, 4096]
        .into_iter()
        .enumerate()
    {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let dir = tmp.path().join(format!("d{i}"));
        fs::create_dir(&dir).unwrap();
        let seg = segment_paths(&dir, 0);
        fs::write(&seg.log, &bytes).unwrap();
        fs::write(&seg.index, &bytes).unwrap();
        fs::write(&seg.time_index, &bytes).unwrap();
        for args in [
            vec!["verify".to_owned(), p(&dir)],
            vec!["dump".to_owned(), p(&dir), "--records".to_owned()],
            vec![
                "dump".to_owned(),
                p(&seg.log),
                "--json".to_owned(),
                "--records".to_owned(),
            ],
            vec!["dump".to_owned(), p(&seg.index)],
            vec!["dump".to_owned(), p(&seg.time_index), "--json".to_owned()],
        ] {
            let out = partlog(&args);
            assert!(out.code == 0 || out.code == 1, "{args:?}: {}", out.all());
            assert!(!out.stderr.contains("panicked"), "{args:?}: {}", out.stderr);
            // Random bytes are never a valid segment: checking or dumping the log says so.
            let reads_the_log = args[0] == "verify" || args[1] == p(&seg.log);
            if len > 0 && reads_the_log {
                assert_eq!(out.code, 1, "{args:?} on {len} random bytes: {}", out.all());
            }
        }
    }
}

/// Writes the recovery-point checkpoint as 0 and removes the clean-shutdown marker: the next
/// open recovers (and validates) every segment.
fn force_full_recovery(dir: &Path) {
    fs::write(dir.join(RECOVERY_POINT_FILE), "0\n1\n0\n").unwrap();
    fs::remove_file(dir.join(CLEAN_SHUTDOWN_FILE)).unwrap();
}

/// An offset gap (legal in Kafka's logs: compaction, a truncation inside a batch) is listed
/// by `verify` as information, and the library keeps the log as it is (issue 18). Here: a
/// segment that ends below the next one's base offset.
#[test]
fn segment_ending_below_the_next_base_is_a_gap_verify_lists_and_open_keeps() {
    let tmp = tempfile::tempdir().unwrap();
    let infos = make_log(tmp.path());
    let segments = {
        let mut b: Vec<i64> = infos.iter().map(|i| i.segment_base_offset).collect();
        b.dedup();
        b.len()
    };
    // Cut the last batch off segment 0, and remove its index files (a missing index is only a
    // warning) so that only the offsets tell.
    let cut = *infos.iter().rfind(|i| i.segment_base_offset == 0).unwrap();
    assert!(cut.position > 0);
    let log0 = segment_paths(tmp.path(), 0).log;
    fs::OpenOptions::new()
        .write(true)
        .open(&log0)
        .unwrap()
        .set_len(cut.position)
        .unwrap();
    fs::remove_file(segment_paths(tmp.path(), 0).index).unwrap();
    fs::remove_file(segment_paths(tmp.path(), 0).time_index).unwrap();
    force_full_recovery(tmp.path());

    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("offset gaps: 1")
            && out
                .stdout
                .contains(&format!("{}:{}:", file_name(&log0), cut.position))
            && out.stdout.contains(&format!(
                "offset gap: the segment ends at offset {}, below the next segment's base offset {}",
                cut.first_offset,
                cut.last_offset + 1
            )),
        "{}",
        out.all()
    );

    // The library keeps every segment and the log end.
    let leo = infos.last().unwrap().last_offset + 1;
    let log = Log::open(tmp.path(), small_config()).unwrap();
    assert_eq!(log.open_report().truncated, None);
    assert_eq!(log.segment_count(), segments);
    assert_eq!(log.log_end_offset(), leo);
    assert!(log.read_record(cut.first_offset).unwrap().is_none());
    let read = log.read(cut.first_offset, 1 << 20).unwrap();
    assert_eq!(read.batches[0].base_offset(), cut.last_offset + 1);
    log.close().unwrap();
}

/// A batch removed from the middle of a segment leaves an offset gap: information for
/// `verify`, kept by the library (issue 18; before, both called it damage and the library cut
/// the segment there).
#[test]
fn gap_between_batches_is_information_and_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let infos = make_log(tmp.path());
    // Remove the second batch of the last segment, and its index files (a missing index is only
    // a warning), so that only the offsets tell.
    let last_base = infos.last().unwrap().segment_base_offset;
    let in_last: Vec<AppendInfo> = infos
        .iter()
        .filter(|i| i.segment_base_offset == last_base)
        .copied()
        .collect();
    assert!(in_last.len() >= 3, "{in_last:?}");
    let gone = in_last[1];
    let seg = segment_paths(tmp.path(), last_base);
    let mut data = fs::read(&seg.log).unwrap();
    data.drain(gone.position as usize..gone.position as usize + gone.size);
    fs::write(&seg.log, &data).unwrap();
    fs::remove_file(&seg.index).unwrap();
    fs::remove_file(&seg.time_index).unwrap();
    force_full_recovery(tmp.path());

    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("offset gaps: 1")
            && out
                .stdout
                .contains(&format!("{}:{}:", file_name(&seg.log), gone.position))
            && out.stdout.contains(&format!(
                "offset gap: batch base offset {} is above offset {}",
                gone.last_offset + 1,
                gone.first_offset
            )),
        "{}",
        out.all()
    );

    // The library keeps the batches after the gap.
    let leo = infos.last().unwrap().last_offset + 1;
    let log = Log::open(tmp.path(), small_config()).unwrap();
    assert_eq!(log.open_report().truncated, None);
    assert_eq!(log.log_end_offset(), leo);
    let read = log.read(gone.first_offset, 1 << 20).unwrap();
    assert_eq!(read.batches[0].base_offset(), gone.last_offset + 1);
    log.close().unwrap();
}

/// A batch whose base offset is below the end of the one before it (offsets going backwards)
/// is damage: `verify` reports it and the library's recovery cuts the segment there.
#[test]
fn overlapping_batch_is_an_error_and_cut() {
    let tmp = tempfile::tempdir().unwrap();
    let infos = make_log(tmp.path());
    let last_base = infos.last().unwrap().segment_base_offset;
    let in_last: Vec<AppendInfo> = infos
        .iter()
        .filter(|i| i.segment_base_offset == last_base)
        .copied()
        .collect();
    assert!(in_last.len() >= 3, "{in_last:?}");
    // The second batch's base offset (outside the CRC) rewritten to the first one's.
    let (first, second) = (in_last[0], in_last[1]);
    let seg = segment_paths(tmp.path(), last_base);
    let mut data = fs::read(&seg.log).unwrap();
    let at = second.position as usize;
    data[at..at + 8].copy_from_slice(&first.first_offset.to_be_bytes());
    fs::write(&seg.log, &data).unwrap();
    fs::remove_file(&seg.index).unwrap();
    fs::remove_file(&seg.time_index).unwrap();
    force_full_recovery(tmp.path());

    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains(&format!("{}:{}:", file_name(&seg.log), second.position))
            && out.stderr.contains(&format!(
                "batch base offset {} overlaps",
                first.first_offset
            )),
        "{}",
        out.stderr
    );

    let log = Log::open(tmp.path(), small_config()).unwrap();
    let (base, position, _) = log.open_report().truncated.clone().expect("cut");
    assert_eq!((base, position), (last_base, second.position));
    assert_eq!(log.log_end_offset(), second.first_offset);
    log.close().unwrap();
}

/// A batch that leaves a gap while the batch right after it starts below its end: offsets go
/// backwards after the gap, so the gapped batch's base offset (outside the CRC) rotted upwards.
/// `verify` reports it at that batch, and the library's recovery cuts the segment there.
#[test]
fn gap_followed_by_an_overlap_is_an_error_at_the_gap_and_cut_there() {
    let tmp = tempfile::tempdir().unwrap();
    let infos = make_log(tmp.path());
    let last_base = infos.last().unwrap().segment_base_offset;
    let in_last: Vec<AppendInfo> = infos
        .iter()
        .filter(|i| i.segment_base_offset == last_base)
        .copied()
        .collect();
    assert!(in_last.len() >= 3, "{in_last:?}");
    // The second batch's base offset rewritten far above where it belongs.
    let second = in_last[1];
    let rotted = second.first_offset + 1000;
    let seg = segment_paths(tmp.path(), last_base);
    let mut data = fs::read(&seg.log).unwrap();
    let at = second.position as usize;
    data[at..at + 8].copy_from_slice(&rotted.to_be_bytes());
    fs::write(&seg.log, &data).unwrap();
    fs::remove_file(&seg.index).unwrap();
    fs::remove_file(&seg.time_index).unwrap();
    force_full_recovery(tmp.path());

    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains(&format!("{}:{}:", file_name(&seg.log), second.position))
            && out.stderr.contains(&format!(
                "batch base offset {rotted} leaves a gap after offset {}",
                second.first_offset
            )),
        "{}",
        out.stderr
    );

    let log = Log::open(tmp.path(), small_config()).unwrap();
    let (base, position, _) = log.open_report().truncated.clone().expect("cut");
    assert_eq!((base, position), (last_base, second.position));
    assert_eq!(log.log_end_offset(), second.first_offset);
    log.close().unwrap();
}

#[test]
fn records_with_timestamp_zero_verify_and_dump() {
    let tmp = tempfile::tempdir().unwrap();
    let log = Log::open(tmp.path(), small_config()).unwrap();
    log.append(&[SimpleRecord::new(0, Some("k"), Some("v"))])
        .unwrap();
    log.close().unwrap();
    let seg = segment_paths(tmp.path(), 0);
    assert_eq!(fs::read(&seg.time_index).unwrap(), [0u8; 12]);

    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("warnings: 0"), "{}", out.all());
    assert!(
        out.stdout.contains("index entries: 0 offset, 1 time"),
        "{}",
        out.stdout
    );

    let out = partlog(&["dump", &p(&seg.time_index)]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("1 entries"), "{}", out.stdout);
    assert!(
        out.stdout
            .contains("timestamp: 0 offset: 0 relativeOffset: 0"),
        "{}",
        out.stdout
    );
    assert!(!out.stdout.contains("preallocated"), "{}", out.stdout);
}

#[test]
fn swap_files_are_not_called_leftovers() {
    // The library removes .deleted, .cleaned and .tmp files at open, not .swap ones.
    let tmp = tempfile::tempdir().unwrap();
    make_log(tmp.path());
    let swap = tmp.path().join("00000000000000000000.log.swap");
    let tmp_file = tmp.path().join("00000000000000000000.index.tmp");
    fs::write(&swap, b"x").unwrap();
    fs::write(&tmp_file, b"x").unwrap();
    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!out.stderr.contains(&file_name(&swap)), "{}", out.stderr);
    assert!(
        out.stderr.contains(&file_name(&tmp_file)) && out.stderr.contains("removes it"),
        "{}",
        out.stderr
    );
    let log = Log::open(tmp.path(), small_config()).unwrap();
    log.close().unwrap();
    assert!(swap.exists() && !tmp_file.exists());
}

#[test]
fn short_tail_with_a_small_declared_length_is_invalid_not_torn() {
    let tmp = tempfile::tempdir().unwrap();
    let seg = segment_paths(tmp.path(), 0);
    // 20 bytes: baseOffset 1, batchLength 5 (17 bytes in all, less than a header), junk.
    let mut data = 1i64.to_be_bytes().to_vec();
    data.extend(5i32.to_be_bytes());
    data.extend([7u8; 8]);
    fs::write(&seg.log, &data).unwrap();

    let out = partlog(&["dump", &p(&seg.log)]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stdout.contains("position: 0 invalid"), "{}", out.stdout);
    assert!(!out.stdout.contains("torn"), "{}", out.stdout);
    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(!out.stderr.contains("torn"), "{}", out.stderr);
    assert!(out.stderr.contains("invalid"), "{}", out.stderr);

    // A declared size of a whole batch, cut short, is still torn.
    data[8..12].copy_from_slice(&100i32.to_be_bytes());
    fs::write(&seg.log, &data).unwrap();
    let out = partlog(&["dump", &p(&seg.log)]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout
            .contains("torn batch: declares 112 bytes, 20 left in the file"),
        "{}",
        out.stdout
    );
}

/// Runs partlog with its standard output a pipe whose reader is already closed.
fn partlog_into_closed_pipe(args: &[String]) -> i32 {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    Command::new(env!("CARGO_BIN_EXE_partlog"))
        .args(args)
        .stdout(writer)
        .stderr(Stdio::null())
        .status()
        .expect("run partlog")
        .code()
        .expect("partlog exited by a signal")
}

#[test]
fn broken_pipe_keeps_the_exit_status_of_problems() {
    let tmp = tempfile::tempdir().unwrap();
    let infos = make_log(tmp.path());
    let log0 = segment_paths(tmp.path(), 0).log;
    // Sound: a closed pipe is no failure.
    assert_eq!(partlog_into_closed_pipe(&["dump".into(), p(&log0)]), 0);
    assert_eq!(partlog_into_closed_pipe(&["dump".into(), p(tmp.path())]), 0);
    // Tear the last batch of segment 0.
    let last0 = *infos.iter().rfind(|i| i.segment_base_offset == 0).unwrap();
    fs::OpenOptions::new()
        .write(true)
        .open(&log0)
        .unwrap()
        .set_len(last0.position + 10)
        .unwrap();
    // The problem found still exits 1, whether the file or the directory is dumped.
    assert_eq!(partlog_into_closed_pipe(&["dump".into(), p(&log0)]), 1);
    assert_eq!(partlog_into_closed_pipe(&["dump".into(), p(tmp.path())]), 1);
}

#[test]
fn checkpoints_are_read_with_the_library_reader() {
    let tmp = tempfile::tempdir().unwrap();
    make_log(tmp.path());
    // A garbled log-start-offset checkpoint is a problem, named with the bad line's position.
    let start = tmp.path().join(partlog::log::LOG_START_OFFSET_FILE);
    fs::write(&start, "0\n1\nzz\n").unwrap();
    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("log-start-offset-checkpoint:4: checkpoint line is not a number"),
        "{}",
        out.stderr
    );
    fs::remove_file(&start).unwrap();
    // A garbled recovery point and every leftover suffix of the library: warnings only.
    fs::write(tmp.path().join(RECOVERY_POINT_FILE), "0\n1\n").unwrap();
    for s in partlog::log::LEFTOVER_SUFFIXES {
        fs::write(tmp.path().join(format!("00000000000000000000.log{s}")), "x").unwrap();
    }
    let out = partlog(&["verify", &p(tmp.path())]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr.contains("recovery-point-offset-checkpoint"),
        "{}",
        out.stderr
    );
    assert_eq!(
        out.stderr
            .matches("left over from an interrupted operation")
            .count(),
        partlog::log::LEFTOVER_SUFFIXES.len(),
        "{}",
        out.stderr
    );
}

/// `dump --records` prints the records of batches in every codec (decompressed by partlog), in
/// text and JSON, with the codec named as Kafka names it.
#[test]
fn dump_records_reads_batches_in_every_codec() {
    use partlog::batch::{BatchBuilder, Compression};
    let dir = tempfile::tempdir().unwrap();
    {
        let log = Log::open(dir.path(), partlog::Config::default()).unwrap();
        for codec in Compression::ALL {
            let mut b = BatchBuilder::new().compression(codec);
            for i in 0..5 {
                b.push(&SimpleRecord::new(
                    1000 + i,
                    Some(format!("{codec}-key-{i}")),
                    Some(vec![b'v'; 40]),
                ))
                .unwrap();
            }
            log.append_batch(&b.build().unwrap()).unwrap();
        }
        log.close().unwrap();
    }
    let file = SegmentPaths::new(dir.path(), 0).log;
    let file = file.to_str().unwrap();
    let out = partlog(&["dump", "--records", "--json", file]);
    assert_eq!(out.code, 0, "{}", out.all());
    let lines = json_lines(&out.stdout);
    assert_eq!(lines.len(), 5, "{}", out.stdout);
    for (l, codec) in lines.iter().zip(Compression::ALL) {
        assert_eq!(l.str("compression"), codec.to_string());
        let records = l.arr("records");
        assert_eq!(records.len(), 5, "{codec}: {}", out.stdout);
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.str("key"), format!("{codec}-key-{i}"));
            assert_eq!(r.int("valueSize"), 40);
        }
    }
    let out = partlog(&["dump", file, "--records"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(!out.stdout.contains("records not shown"), "{}", out.stdout);
    assert!(out.stdout.contains("key: \"zstd-key-4\""), "{}", out.stdout);
}

//! [`DataDir`]: one Kafka log directory (`log.dirs` entry) as Kafka's `LogManager` keeps it, so
//! that a partlog data directory and a Kafka broker's are the same thing.
//!
//! At the data-directory level:
//! - `meta.properties` (`version=1`, `cluster.id`, `node.id`, `directory.id`): created when
//!   absent, verified when present (KRaft's rules: a V0 file with `broker.id` or another node's
//!   file is refused).
//! - Four checkpoint files shared by every partition in the directory, in Kafka's
//!   `CheckpointFile` layout (version `0`, count, `topic partition offset` lines):
//!   [`RECOVERY_POINT_CHECKPOINT`], [`LOG_START_OFFSET_CHECKPOINT`],
//!   [`REPLICATION_OFFSET_CHECKPOINT`] (the high watermark) and [`CLEANER_OFFSET_CHECKPOINT`]
//!   (kept for Kafka's cleaner; partlog only drops the lines of deleted topics from it).
//!
//! In each partition directory, `partition.metadata` holds the topic id (exactly
//! `version: 0\ntopic_id: <id>`, no trailing newline).
//!
//! # Why a read-modify-write under a lock
//! A broker writes these files from one `LogManager` that knows every partition. partlog has no
//! such owner: several [`Topic`](super::Topic) handles, in one process or several, share one
//! directory, each knowing only its own partitions. So every write of a shared file reads it,
//! replaces the lines of the writer's own topic, keeps every other topic's lines (dropping only
//! those whose partition directory is gone, as Kafka's next checkpoint would), and renames the
//! new file in, all under a lock that is both a process-wide mutex and a POSIX `fcntl` lock on
//! [`CHECKPOINT_LOCK_FILE`] (the `fcntl` lock shuts out other processes; it never conflicts
//! within one, hence the mutex). The lock is not Kafka's `.lock`, which a broker holds for its
//! whole life: holding that one across a write would make a broker starting meanwhile fail.
//! [`DataDir::open`] only probes it (a shared lock, released at once) to refuse a directory a
//! running broker holds.
//!
//! # The clean-shutdown marker
//! Kafka 4.4's `LogManager` writes [`KAFKA_CLEAN_SHUTDOWN_FILE`] (`.kafka_cleanshutdown`, JSON
//! `{"version":0,"brokerEpoch":N}`) in a log directory once every log in it is flushed and
//! closed, and at startup deletes it and, if it was there, loads every log of the directory
//! without recovery; only its presence counts (the epoch is KIP-966's). partlog keeps the same
//! meaning although several handles share a directory: a topic's clean close writes it only
//! when no partition directory is open (in any process) and every one holds partlog's own
//! per-partition marker. Opening a topic first makes those per-partition markers agree with
//! the data directory's (see `reconcile_clean_shutdown_markers`: handed down to every
//! partition directory not open when it is there, so the partitions of a directory a broker
//! shut down cleanly open without a recovery scan; removed when it is not, since a broker
//! never removes partlog's and may have run and crashed since), then takes it off once its
//! partitions are open and locked. The marker is the topic layer's: a `Log` opened directly
//! on a partition of a data directory neither reads nor removes it.
//!
//! # What a broker makes of partlog's extra files
//! Kafka's `LogManager.loadLogs` lists a log directory and keeps only sub-directories, so the
//! regular files partlog keeps beside the partitions (`<topic>.topic-metadata`,
//! [`CHECKPOINT_LOCK_FILE`], the consumer groups' `partlog-consumer-offsets.log` and its lock)
//! are ignored by a broker and harmless to it. Every sub-directory, though, must be named
//! `<topic>-<partition>`: a 4.4 broker skips only `remote-log-index-cache` and
//! `__cluster_metadata-N` (both its own) and refuses to start on any other (its
//! `parseTopicPartitionName` throws), so nothing else may put directories in a data directory.
//!
//! # Damaged files
//! Kafka's `LogManager` reads a garbled recovery-point or log-start checkpoint as empty (with a
//! warning): a lost recovery point only costs a longer recovery, a lost log start falls back to
//! the first segment. partlog does the same, and still has the per-partition files it keeps in
//! each partition directory. A garbled `replication-offset-checkpoint` is an error in Kafka
//! (`ReplicaManager` fails the directory) and in partlog ([`Error::Corrupt`]), since writing
//! over it would drop every other partition's high watermark.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};

use rustix::fs::{fcntl_lock, FlockOperation};

use super::name::{parse_partition_dir_name, TopicName};
use crate::checkpoint::{self, TopicPartitionOffsets};
use crate::error::TopicError;
use crate::error::{Error, Result};

/// Kafka's data-directory file of recovery points.
pub const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";
/// Kafka's data-directory file of log start offsets (only where one is above the first
/// segment's base offset).
pub const LOG_START_OFFSET_CHECKPOINT: &str = "log-start-offset-checkpoint";
/// Kafka's data-directory file of high watermarks.
pub const REPLICATION_OFFSET_CHECKPOINT: &str = "replication-offset-checkpoint";
/// Kafka's data-directory file of the log cleaner's progress.
pub const CLEANER_OFFSET_CHECKPOINT: &str = "cleaner-offset-checkpoint";
/// Kafka's data-directory identity file.
pub const META_PROPERTIES: &str = "meta.properties";
/// Kafka's per-partition topic-id file.
pub const PARTITION_METADATA: &str = "partition.metadata";
/// The file partlog locks (briefly, `fcntl`) around a read-modify-write of the shared
/// checkpoints.
pub const CHECKPOINT_LOCK_FILE: &str = ".partlog-checkpoint.lock";

/// Kafka's clean-shutdown marker of a log directory (`CleanShutdownFileHandler`): present, it
/// says every log in the directory was flushed and closed, and a broker starting on the
/// directory skips recovery of all of them (see the module docs).
pub const KAFKA_CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";

/// What partlog writes in the marker: Kafka's JSON (version 0) with no broker epoch known.
/// Kafka reads the epoch only for KIP-966's broker registration, where -1 (never a broker's
/// epoch) counts as an unclean shutdown: the safe side.
const KAFKA_CLEAN_SHUTDOWN_CONTENT: &str = r#"{"version":0,"brokerEpoch":-1}"#;

/// Largest `meta.properties` or `partition.metadata` read.
const MAX_SMALL_FILE: u64 = 64 << 10;

/// A Kafka `Uuid`: 16 bytes, written as 22 characters of URL-safe base64 without padding (a
/// topic id, a directory id).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl Uuid {
    /// The all-zero id, which Kafka reserves (`Uuid.ZERO_UUID`, "no id").
    pub const ZERO: Uuid = Uuid([0; 16]);

    /// A random (version 4) id as Kafka's `Uuid.randomUuid` makes one: never reserved (the
    /// high 64 bits zero and the low ones below 100) and never starting with `-`, which a
    /// command line would take for a flag.
    ///
    /// # Errors
    /// [`Error::Io`] if `/dev/urandom` cannot be read.
    pub fn random() -> Result<Uuid> {
        let path = Path::new("/dev/urandom");
        let mut f = fs::File::open(path).map_err(|e| Error::io(path, "open", e))?;
        loop {
            let mut b = [0u8; 16];
            f.read_exact(&mut b)
                .map_err(|e| Error::io(path, "read", e))?;
            b[6] = (b[6] & 0x0f) | 0x40;
            b[8] = (b[8] & 0x3f) | 0x80;
            let id = Uuid(b);
            if !id.is_reserved() && !id.to_string().starts_with('-') {
                return Ok(id);
            }
        }
    }

    /// Whether Kafka reserves it (the zero id, the metadata topic's id and the others with the
    /// high 64 bits zero and the low ones below 100).
    pub fn is_reserved(&self) -> bool {
        let (hi, lo) = self.0.split_at(8);
        hi.iter().all(|&b| b == 0) && lo[..7].iter().all(|&b| b == 0) && lo[7] < 100
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = String::with_capacity(22);
        let mut acc = 0u32;
        let mut bits = 0;
        for &b in &self.0 {
            acc = (acc << 8) | u32::from(b);
            bits += 8;
            while bits >= 6 {
                bits -= 6;
                out.push(char::from(BASE64URL[((acc >> bits) & 63) as usize]));
            }
        }
        if bits > 0 {
            out.push(char::from(BASE64URL[((acc << (6 - bits)) & 63) as usize]));
        }
        f.write_str(&out)
    }
}

impl fmt::Debug for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Uuid({self})")
    }
}

/// Why a string is not a [`Uuid`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UuidParseError(pub String);

impl fmt::Display for UuidParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?} is not a 22-character base64url uuid", self.0)
    }
}

impl std::error::Error for UuidParseError {}

impl FromStr for Uuid {
    type Err = UuidParseError;

    fn from_str(s: &str) -> std::result::Result<Uuid, UuidParseError> {
        let err = || UuidParseError(s.to_owned());
        // Java's decoder also takes the padded form.
        let s = if s.len() == 24 {
            s.strip_suffix("==").ok_or_else(err)?
        } else {
            s
        };
        if s.len() != 22 {
            return Err(err());
        }
        let mut out = [0u8; 16];
        let mut n = 0;
        let mut acc = 0u32;
        let mut bits = 0;
        for c in s.bytes() {
            let v = BASE64URL.iter().position(|&x| x == c).ok_or_else(err)? as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                *out.get_mut(n).ok_or_else(err)? = (acc >> bits) as u8;
                n += 1;
            }
            acc &= (1 << bits) - 1;
        }
        // Java's decoder ignores the 4 unused low bits of the last character; so does this.
        if n != 16 {
            return Err(err());
        }
        Ok(Uuid(out))
    }
}

/// What `meta.properties` says about the directory (KRaft, version 1).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetaProperties {
    /// The cluster the directory belongs to.
    pub cluster_id: String,
    /// The broker (node) that owns it.
    pub node_id: i32,
    /// The directory's own id (KIP-858), if the file has one.
    pub directory_id: Option<Uuid>,
}

/// One partition's entries in the shared checkpoint files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct PartitionCheckpoint {
    /// The recovery point: every batch below it is on disk.
    pub recovery_point: Option<i64>,
    /// The log start offset (written only where it is above the first segment's base, as Kafka
    /// does).
    pub log_start_offset: Option<i64>,
    /// The high watermark.
    pub high_watermark: Option<i64>,
}

impl PartitionCheckpoint {
    /// An entry with the three values.
    pub fn new(
        recovery_point: Option<i64>,
        log_start_offset: Option<i64>,
        high_watermark: Option<i64>,
    ) -> Self {
        PartitionCheckpoint {
            recovery_point,
            log_start_offset,
            high_watermark,
        }
    }
}

/// Which value of a [`PartitionCheckpoint`] a shared file holds.
type Field = fn(&PartitionCheckpoint) -> Option<i64>;

/// One Kafka log directory. See the module docs.
#[derive(Debug, Clone)]
pub struct DataDir {
    path: PathBuf,
    meta: MetaProperties,
}

/// The process-wide half of the checkpoint lock (see the module docs).
static CHECKPOINT_MUTEX: Mutex<()> = Mutex::new(());

impl DataDir {
    /// Opens the data directory at `path` (creating it if needed) as node `node_id` of cluster
    /// `cluster_id`: creates `meta.properties` if there is none (with `cluster_id`, or a fresh
    /// random one if `None`, and a fresh directory id), verifies it otherwise. Give the cluster
    /// id of the broker's cluster for a directory a broker will open: a broker refuses a
    /// directory of another cluster.
    ///
    /// A directory whose `.lock` a running broker holds (Kafka's `LogManager` locks it for its
    /// whole life with `FileChannel.tryLock`, a POSIX `fcntl` lock) is refused: a broker and
    /// partlog must never write one directory at once. The check is a shared lock taken and
    /// released at once, so partlog processes never shut each other out; a broker starting in
    /// that instant would fail its own lock and could be restarted.
    ///
    /// # Errors
    /// [`Error::Locked`] if a broker holds the directory; [`TopicError::MetaProperties`] for a
    /// V0 (`broker.id`) file, a missing key, or another node's or cluster's file; [`Error::Corrupt`] for a
    /// file that is not a properties file; [`Error::Io`].
    pub fn open(path: impl AsRef<Path>, node_id: i32, cluster_id: Option<&str>) -> Result<DataDir> {
        let path = path.as_ref();
        fs::create_dir_all(path).map_err(|e| Error::io(path, "create directory", e))?;
        if crate::log::is_locked(path)? {
            return Err(Error::Locked {
                path: path.to_owned(),
            });
        }
        let meta_path = path.join(META_PROPERTIES);
        let meta = match read_small(&meta_path)? {
            Some(text) => {
                let meta = parse_meta_properties(&meta_path, &text)?;
                if meta.node_id != node_id {
                    return Err(TopicError::MetaProperties {
                        path: meta_path,
                        reason: format!(
                            "the directory belongs to node {}, not node {node_id}",
                            meta.node_id
                        ),
                    }
                    .into());
                }
                if let Some(cluster) = cluster_id.filter(|c| *c != meta.cluster_id) {
                    return Err(TopicError::MetaProperties {
                        path: meta_path,
                        reason: format!(
                            "the directory belongs to cluster {}, not {cluster}",
                            meta.cluster_id
                        ),
                    }
                    .into());
                }
                meta
            }
            None => {
                let cluster_id = match cluster_id {
                    Some(c) if !c.is_empty() && !c.contains(char::is_whitespace) => c.to_owned(),
                    Some(c) => {
                        return Err(Error::Config {
                            knob: "cluster_id",
                            value: c.to_owned(),
                            reason: "must be non-empty, without whitespace",
                        })
                    }
                    None => Uuid::random()?.to_string(),
                };
                let meta = MetaProperties {
                    cluster_id,
                    node_id,
                    directory_id: Some(Uuid::random()?),
                };
                checkpoint::write_atomically(&meta_path, format_meta_properties(&meta).as_bytes())?;
                meta
            }
        };
        Ok(DataDir {
            path: path.to_owned(),
            meta,
        })
    }

    /// Before a topic's partitions open: makes partlog's own per-partition markers
    /// (`clean-shutdown`, which [`crate::Log::open`] trusts and removes) agree with Kafka's
    /// data-directory marker, in every partition directory nobody holds open (each under its
    /// directory lock, so no `Log` opens it meanwhile):
    /// - the marker is there (a broker, or partlog, closed everything cleanly): each gets
    ///   partlog's marker, so partitions a broker shut down cleanly open without a recovery
    ///   scan, whichever topic is opened first;
    /// - it is not: each loses partlog's marker, which may be stale (a broker does not know
    ///   it: one may have run on the partition and crashed since partlog closed it); the
    ///   partition then recovers from its recovery point, which a clean close left at its end.
    ///
    /// Returns whether the marker was there; it stays until
    /// [`DataDir::take_clean_shutdown_marker`].
    ///
    /// # Errors
    /// [`Error::Io`].
    pub(crate) fn reconcile_clean_shutdown_markers(&self) -> Result<bool> {
        let _guard = self.lock()?;
        let present = self.path.join(KAFKA_CLEAN_SHUTDOWN_FILE).exists();
        for (t, p) in self.partition_dirs()? {
            let pdir = self.path.join(format!("{t}-{p}"));
            let _lock = match crate::log::DirLock::acquire(&pdir) {
                Ok(lock) => lock,
                Err(Error::Locked { .. }) => continue,
                Err(e) => return Err(e),
            };
            let own = pdir.join(crate::log::CLEAN_SHUTDOWN_FILE);
            match (present, own.exists()) {
                (true, false) => {
                    fs::File::create(&own)
                        .and_then(|f| f.sync_all())
                        .map_err(|e| Error::io(&own, "create", e))?;
                    crate::durability::created(&own);
                    crate::durability::file_synced(&own);
                }
                (false, true) => {
                    checkpoint::remove_if_exists(&own)?;
                }
                _ => continue,
            }
            checkpoint::sync_dir(&pdir)?;
        }
        Ok(present)
    }

    /// Takes Kafka's clean-shutdown marker off the directory (once a topic's partitions are
    /// open and locked): from now on a crash must lead a broker to recover. Returns whether
    /// it was there.
    ///
    /// # Errors
    /// [`Error::Io`].
    pub(crate) fn take_clean_shutdown_marker(&self) -> Result<bool> {
        let _guard = self.lock()?;
        let removed = checkpoint::remove_if_exists(&self.path.join(KAFKA_CLEAN_SHUTDOWN_FILE))?;
        if removed {
            checkpoint::sync_dir(&self.path)?;
        }
        Ok(removed)
    }

    /// Writes Kafka's clean-shutdown marker if every partition directory in the directory was
    /// closed cleanly by partlog (holds partlog's own marker) and none is open, in this process
    /// or another: the state in which a broker may skip recovering all of them. Returns
    /// whether it wrote it. Called by [`super::Topic::close`].
    ///
    /// # Errors
    /// [`Error::Io`].
    pub(crate) fn write_clean_shutdown_marker_if_all_closed(&self) -> Result<bool> {
        let _guard = self.lock()?;
        for (t, p) in self.partition_dirs()? {
            let pdir = self.path.join(format!("{t}-{p}"));
            if crate::log::is_locked(&pdir)? || !pdir.join(crate::log::CLEAN_SHUTDOWN_FILE).exists()
            {
                return Ok(false);
            }
        }
        checkpoint::write_atomically(
            &self.path.join(KAFKA_CLEAN_SHUTDOWN_FILE),
            KAFKA_CLEAN_SHUTDOWN_CONTENT.as_bytes(),
        )?;
        Ok(true)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What its `meta.properties` says.
    pub fn meta_properties(&self) -> &MetaProperties {
        &self.meta
    }

    /// The entries of `topic` in the shared checkpoint files, by partition. A garbled
    /// recovery-point or log-start file counts as empty (Kafka's rule, see the module docs).
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a garbled `replication-offset-checkpoint`; [`Error::Io`].
    pub fn checkpoints(&self, topic: &TopicName) -> Result<BTreeMap<u32, PartitionCheckpoint>> {
        let read = |name: &str, lenient: bool| -> Result<TopicPartitionOffsets> {
            match checkpoint::read_topic_partition_offsets(&self.path.join(name)) {
                Ok(e) => Ok(e.unwrap_or_default()),
                Err(Error::Corrupt { .. }) if lenient => Ok(TopicPartitionOffsets::new()),
                Err(e) => Err(e),
            }
        };
        let mut out: BTreeMap<u32, PartitionCheckpoint> = BTreeMap::new();
        let mut take = |entries: TopicPartitionOffsets, set: fn(&mut PartitionCheckpoint, i64)| {
            for ((t, p), offset) in entries {
                if t == topic.as_str() {
                    set(out.entry(p).or_default(), offset);
                }
            }
        };
        take(read(RECOVERY_POINT_CHECKPOINT, true)?, |c, o| {
            c.recovery_point = Some(o)
        });
        take(read(LOG_START_OFFSET_CHECKPOINT, true)?, |c, o| {
            c.log_start_offset = Some(o)
        });
        take(read(REPLICATION_OFFSET_CHECKPOINT, false)?, |c, o| {
            c.high_watermark = Some(o)
        });
        Ok(out)
    }

    /// Replaces every line of `topic` in the shared checkpoint files with `entries` (a value of
    /// `None` writes no line), keeping the lines of other topics whose partition directories
    /// still exist. Files are only rewritten when their contents change.
    ///
    /// # Errors
    /// [`Error::Corrupt`] for a garbled `replication-offset-checkpoint` (it is not written
    /// over); [`Error::Io`].
    pub fn write_checkpoints(
        &self,
        topic: &TopicName,
        entries: &BTreeMap<u32, PartitionCheckpoint>,
    ) -> Result<()> {
        let _guard = self.lock()?;
        let existing = self.partition_dirs()?;
        let pick: [(&str, Field, bool); 3] = [
            (RECOVERY_POINT_CHECKPOINT, |c| c.recovery_point, true),
            (LOG_START_OFFSET_CHECKPOINT, |c| c.log_start_offset, true),
            (REPLICATION_OFFSET_CHECKPOINT, |c| c.high_watermark, false),
        ];
        for (name, get, lenient) in pick {
            self.rewrite(name, lenient, topic, &existing, |out| {
                for (&p, c) in entries {
                    if let Some(offset) = get(c) {
                        out.insert((topic.to_string(), p), offset);
                    }
                }
            })?;
        }
        Ok(())
    }

    /// Drops every line of `topic` from the four shared checkpoint files (on delete).
    ///
    /// # Errors
    /// As [`DataDir::write_checkpoints`].
    pub fn remove_topic(&self, topic: &TopicName) -> Result<()> {
        let _guard = self.lock()?;
        let existing = self.partition_dirs()?;
        for (name, lenient) in [
            (RECOVERY_POINT_CHECKPOINT, true),
            (LOG_START_OFFSET_CHECKPOINT, true),
            (REPLICATION_OFFSET_CHECKPOINT, false),
            (CLEANER_OFFSET_CHECKPOINT, true),
        ] {
            self.rewrite(name, lenient, topic, &existing, |_| {})?;
        }
        Ok(())
    }

    /// Reads `name`, drops the lines of `topic` and of partitions without a directory, lets
    /// `add` add lines, and writes it back if it changed. Called under the lock.
    fn rewrite(
        &self,
        name: &str,
        lenient: bool,
        topic: &TopicName,
        existing: &BTreeSet<(String, u32)>,
        add: impl FnOnce(&mut TopicPartitionOffsets),
    ) -> Result<()> {
        let path = self.path.join(name);
        let old = match checkpoint::read_topic_partition_offsets(&path) {
            Ok(e) => e,
            // A garbled file Kafka would read as empty is replaced.
            Err(Error::Corrupt { .. }) if lenient => None,
            Err(e) => return Err(e),
        };
        let mut new: TopicPartitionOffsets = old
            .clone()
            .unwrap_or_default()
            .into_iter()
            .filter(|((t, p), _)| t != topic.as_str() && existing.contains(&(t.clone(), *p)))
            .collect();
        add(&mut new);
        if old.as_ref() == Some(&new) || (old.is_none() && new.is_empty()) {
            return Ok(());
        }
        checkpoint::write_topic_partition_offsets(&path, &new)
    }

    /// The partition directories present, as `(topic, partition)`.
    fn partition_dirs(&self) -> Result<BTreeSet<(String, u32)>> {
        let mut out = BTreeSet::new();
        let entries = fs::read_dir(&self.path).map_err(|e| Error::io(&self.path, "list", e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&self.path, "list", e))?;
            if let Some((t, p)) = entry
                .file_name()
                .to_str()
                .and_then(parse_partition_dir_name)
            {
                // `file_type` comes with the listing on most file systems: no `stat` per entry.
                let is_dir = entry
                    .file_type()
                    .map_err(|e| Error::io(entry.path(), "stat", e))?;
                if is_dir.is_dir() {
                    out.insert((t.to_string(), p));
                }
            }
        }
        Ok(out)
    }

    /// Takes the checkpoint lock: the process-wide mutex, then the `fcntl` lock (blocking).
    fn lock(&self) -> Result<CheckpointGuard> {
        let mutex = CHECKPOINT_MUTEX
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let path = self.path.join(CHECKPOINT_LOCK_FILE);
        let file = fs::File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io(&path, "open", e))?;
        fcntl_lock(&file, FlockOperation::LockExclusive)
            .map_err(|e| Error::io(&path, "lock", e.into()))?;
        Ok(CheckpointGuard {
            _file: file,
            _mutex: mutex,
        })
    }
}

/// Holds the checkpoint lock; the `fcntl` lock goes with the file, before the mutex.
struct CheckpointGuard {
    _file: fs::File,
    _mutex: std::sync::MutexGuard<'static, ()>,
}

fn read_small(path: &Path) -> Result<Option<Vec<u8>>> {
    match fs::File::open(path) {
        Ok(f) => {
            let mut text = Vec::new();
            f.take(MAX_SMALL_FILE + 1)
                .read_to_end(&mut text)
                .map_err(|e| Error::io(path, "read", e))?;
            if text.len() as u64 > MAX_SMALL_FILE {
                return Err(Error::corrupt(path, 0, "file is too large"));
            }
            Ok(Some(text))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, "open", e)),
    }
}

fn format_meta_properties(meta: &MetaProperties) -> String {
    // `Properties.store` writes a comment line and a date line first; readers skip `#` lines,
    // so partlog writes one comment line.
    let mut text = format!(
        "#Written by partlog\nnode.id={}\nversion=1\ncluster.id={}\n",
        meta.node_id, meta.cluster_id
    );
    if let Some(id) = meta.directory_id {
        text.push_str(&format!("directory.id={id}\n"));
    }
    text
}

/// Parses `meta.properties` as Java's `Properties.load` reads Kafka's file (`key=value` or
/// `key: value` lines, `#`/`!` comments), then checks it as KRaft does.
fn parse_meta_properties(path: &Path, text: &[u8]) -> Result<MetaProperties> {
    let text = std::str::from_utf8(text).map_err(|e| {
        Error::corrupt(path, e.valid_up_to() as u64, "meta.properties is not UTF-8")
    })?;
    let mut props = BTreeMap::new();
    let mut position = 0u64;
    for line in text.lines() {
        let at = position;
        position += line.len() as u64 + 1;
        let line = line.trim_start();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let split = line
            .find(['=', ':'])
            .ok_or_else(|| Error::corrupt(path, at, format!("line {line:?} is not key=value")))?;
        props.insert(
            line[..split].trim().to_owned(),
            line[split + 1..].trim().to_owned(),
        );
    }
    let refuse = |reason: String| -> Error {
        TopicError::MetaProperties {
            path: path.to_owned(),
            reason,
        }
        .into()
    };
    match props.get("version").map(String::as_str) {
        Some("1") => {}
        Some("0") | None => {
            return Err(refuse(
                "a version 0 (ZooKeeper, broker.id) file: KRaft needs version 1".into(),
            ))
        }
        Some(v) => return Err(refuse(format!("unknown version {v:?}"))),
    }
    let cluster_id = props
        .get("cluster.id")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| refuse("no cluster.id".into()))?
        .clone();
    let node_id = props
        .get("node.id")
        .ok_or_else(|| refuse("no node.id".into()))?
        .parse::<i32>()
        .map_err(|_| refuse("node.id is not a number".into()))?;
    let directory_id = props
        .get("directory.id")
        .map(|d| d.parse::<Uuid>().map_err(|e| refuse(e.to_string())))
        .transpose()?;
    Ok(MetaProperties {
        cluster_id,
        node_id,
        directory_id,
    })
}

/// Reads `partition.metadata` in the partition directory `dir`: the topic id, or `None` if
/// there is no file.
///
/// # Errors
/// [`Error::Corrupt`] for a file Kafka's `PartitionMetadataReadBuffer` refuses (a line that is
/// not `key: value`, a negative version, a bad or zero topic id); [`Error::Io`].
pub fn read_partition_metadata(dir: &Path) -> Result<Option<Uuid>> {
    let path = dir.join(PARTITION_METADATA);
    let Some(text) = read_small(&path)? else {
        return Ok(None);
    };
    let bad = |reason: String| Error::corrupt(&path, 0, reason);
    let text = std::str::from_utf8(&text).map_err(|_| bad("not UTF-8".into()))?;
    let mut lines = text.lines();
    let mut field = |key: &str| -> Result<String> {
        let line = lines.next().ok_or_else(|| bad(format!("no {key} line")))?;
        match line.split_once(':') {
            Some((k, v)) if k == key && v.starts_with(char::is_whitespace) => {
                Ok(v.trim_start().to_owned())
            }
            _ => Err(bad(format!("expected `{key}: ...`, found {line:?}"))),
        }
    };
    let version = field("version")?;
    if version.parse::<i32>().map_or(true, |v| v < 0) {
        return Err(bad(format!("bad version {version:?}")));
    }
    let id: Uuid = field("topic_id")?
        .parse()
        .map_err(|e| bad(format!("{e}")))?;
    if id == Uuid::ZERO {
        return Err(bad("the zero topic id".into()));
    }
    Ok(Some(id))
}

/// Writes `partition.metadata` with `topic_id` in the partition directory `dir`, byte for byte
/// as Kafka does, atomically (temp file, fsync, rename, directory fsync).
///
/// # Errors
/// [`Error::Io`].
pub fn write_partition_metadata(dir: &Path, topic_id: Uuid) -> Result<()> {
    checkpoint::write_atomically(
        &dir.join(PARTITION_METADATA),
        format!("version: 0\ntopic_id: {topic_id}").as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_text_round_trips_as_kafka_writes_it() {
        // Kafka's `Uuid.toString` of (mostSig 1, leastSig 2).
        let mut b = [0u8; 16];
        b[7] = 1;
        b[15] = 2;
        assert_eq!(Uuid(b).to_string(), "AAAAAAAAAAEAAAAAAAAAAg");
        assert_eq!("AAAAAAAAAAEAAAAAAAAAAg".parse::<Uuid>(), Ok(Uuid(b)));
        for _ in 0..100 {
            let id = Uuid::random().unwrap();
            let text = id.to_string();
            assert_eq!(text.len(), 22);
            assert!(!text.starts_with('-'));
            assert_eq!(text.parse::<Uuid>(), Ok(id));
        }
        assert_eq!("AAAAAAAAAAEAAAAAAAAAAh".parse::<Uuid>(), Ok(Uuid(b)));
        for bad in [
            "",
            "AAAA",
            "AAAAAAAAAAEAAAAAAAAAA=",
            "AAAAAAAAAAEAAAAAAAAA\u{e9}",
        ] {
            assert!(bad.parse::<Uuid>().is_err(), "{bad}");
        }
    }
}

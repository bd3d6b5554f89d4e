//! The recorder behind the durability hooks (test builds only), and the disk images it builds.
//!
//! A recorder models one directory as a file system that a power cut may interrupt:
//! - files are inodes, each with the bytes known durable (`durable`, zeros where nothing was
//!   synced) and the size known durable;
//! - the directory maps names to inodes twice: as the process sees it (`volatile`) and as the
//!   last directory sync made it durable (`durable`), with the namespace operations since then
//!   (`pending`) in order.
//!
//! An image is one state a power cut could leave: the durable names with each pending operation
//! applied or not; for each file, its synced bytes kept and its unsynced bytes dropped, kept, or
//! kept page by page at random; its size as synced or as written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// A namespace or durability event, by file name within the recorder's directory.
#[derive(Debug, Clone)]
pub(crate) enum Event {
    Created(String),
    Renamed(String, String),
    Removed(String),
    FileSynced(String),
    RangeSynced(String, usize, usize),
    DirSynced,
}

/// A namespace change not yet made durable.
#[derive(Debug, Clone)]
enum NsOp {
    Link(String, usize),
    Rename(String, String),
    Unlink(String),
}

#[derive(Debug, Clone, Default)]
struct Inode {
    durable: Vec<u8>,
    durable_len: usize,
}

/// Called at every crash point with the recorder; builds images if it wants.
pub(crate) type OnPoint = Box<dyn FnMut(&Recorder) + Send>;

/// See the module docs.
pub(crate) struct Recorder {
    dir: PathBuf,
    inodes: Vec<Inode>,
    volatile: BTreeMap<String, usize>,
    durable: BTreeMap<String, usize>,
    pending: Vec<NsOp>,
    events: u64,
    /// Syncs recorded so far: whole files and ranges, and directories.
    syncs: Syncs,
    on_point: Option<OnPoint>,
}

/// How many syncs a recorder has seen (tests that bound what an operation costs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Syncs {
    /// `fsync`/`fdatasync` of a file, or `msync` of a range.
    pub(crate) files: u64,
    /// `fsync` of a directory.
    pub(crate) dirs: u64,
}

type Registry = Mutex<Vec<(PathBuf, Arc<Mutex<Recorder>>)>>;

static RECORDERS: Registry = Mutex::new(Vec::new());

fn guard<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn name_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn find(dir: &Path) -> Option<Arc<Mutex<Recorder>>> {
    guard(&RECORDERS)
        .iter()
        .find(|(d, _)| d == dir)
        .map(|(_, r)| Arc::clone(r))
}

/// Runs `f` on the recorder of `path`'s directory, if one is registered.
pub(crate) fn with_recorder(path: &Path, f: impl FnOnce(&mut Recorder, String)) {
    let Some(dir) = path.parent() else { return };
    if let Some(r) = find(dir) {
        f(&mut guard(&r), name_of(path));
    }
}

/// Runs `f` on the recorder of `dir`, if one is registered.
pub(crate) fn with_dir_recorder(dir: &Path, f: impl FnOnce(&mut Recorder)) {
    if let Some(r) = find(dir) {
        f(&mut guard(&r));
    }
}

/// A registered recorder; dropping it unregisters it.
pub(crate) struct Registration(Arc<Mutex<Recorder>>);

impl Drop for Registration {
    fn drop(&mut self) {
        guard(&RECORDERS).retain(|(_, r)| !Arc::ptr_eq(r, &self.0));
    }
}

impl Registration {
    /// A crash point outside any hook (between two operations).
    pub(crate) fn crash_point(&self) {
        guard(&self.0).point();
    }

    /// Events recorded so far.
    pub(crate) fn events(&self) -> u64 {
        guard(&self.0).events
    }

    /// Syncs recorded so far.
    pub(crate) fn syncs(&self) -> Syncs {
        guard(&self.0).syncs
    }
}

/// Starts recording `dir`: its files as they are now count as durable. `on_point` runs at every
/// crash point.
pub(crate) fn register(dir: &Path, on_point: OnPoint) -> Registration {
    let mut r = Recorder {
        dir: dir.to_owned(),
        inodes: Vec::new(),
        volatile: BTreeMap::new(),
        durable: BTreeMap::new(),
        pending: Vec::new(),
        events: 0,
        syncs: Syncs::default(),
        on_point: Some(on_point),
    };
    for (name, bytes) in list(dir) {
        let id = r.inodes.len();
        r.inodes.push(Inode {
            durable_len: bytes.len(),
            durable: bytes,
        });
        r.volatile.insert(name.clone(), id);
        r.durable.insert(name, id);
    }
    let r = Arc::new(Mutex::new(r));
    guard(&RECORDERS).push((dir.to_owned(), Arc::clone(&r)));
    Registration(r)
}

/// The regular files of `dir` and their bytes.
fn list(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(dir).expect("list the recorded directory") {
        let e = e.expect("list the recorded directory");
        if e.file_type().is_ok_and(|t| t.is_file()) {
            let bytes = std::fs::read(e.path()).unwrap_or_default();
            out.insert(e.file_name().to_string_lossy().into_owned(), bytes);
        }
    }
    out
}

/// A small deterministic generator (splitmix64).
#[derive(Debug, Clone)]
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    pub(crate) fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

/// How an image treats a file's unsynced bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Unsynced {
    Dropped,
    Kept,
    PageByPage,
}

const PAGE: usize = 4096;

impl Recorder {
    pub(crate) fn apply(&mut self, event: Event) {
        self.events += 1;
        match event {
            Event::Created(name) => {
                if !self.volatile.contains_key(&name) {
                    let id = self.inodes.len();
                    self.inodes.push(Inode::default());
                    self.volatile.insert(name.clone(), id);
                    self.pending.push(NsOp::Link(name, id));
                }
            }
            Event::Renamed(from, to) => {
                if let Some(id) = self.volatile.remove(&from) {
                    self.volatile.insert(to.clone(), id);
                    self.pending.push(NsOp::Rename(from, to));
                }
            }
            Event::Removed(name) => {
                if self.volatile.remove(&name).is_some() {
                    self.pending.push(NsOp::Unlink(name));
                }
            }
            Event::FileSynced(name) => {
                self.syncs.files += 1;
                if let Some(&id) = self.volatile.get(&name) {
                    let bytes = std::fs::read(self.dir.join(&name)).unwrap_or_default();
                    let inode = &mut self.inodes[id];
                    inode.durable_len = bytes.len();
                    inode.durable = bytes;
                }
            }
            Event::RangeSynced(name, start, end) => {
                self.syncs.files += 1;
                if let Some(&id) = self.volatile.get(&name) {
                    let bytes = std::fs::read(self.dir.join(&name)).unwrap_or_default();
                    let end = end.min(bytes.len());
                    let inode = &mut self.inodes[id];
                    if inode.durable.len() < end {
                        inode.durable.resize(end, 0);
                    }
                    if start < end {
                        inode.durable[start..end].copy_from_slice(&bytes[start..end]);
                    }
                    inode.durable_len = inode.durable_len.max(end);
                }
            }
            Event::DirSynced => {
                self.syncs.dirs += 1;
                self.durable = self.volatile.clone();
                self.pending.clear();
            }
        }
        self.point();
    }

    fn point(&mut self) {
        if let Some(mut f) = self.on_point.take() {
            f(self);
            self.on_point = Some(f);
        }
    }

    /// Panics if the directory holds other names than the recorder thinks: an operation that
    /// changed the namespace without its hook.
    fn check_namespace(&self) {
        let on_disk: Vec<String> = list(&self.dir).into_keys().collect();
        let known: Vec<String> = self.volatile.keys().cloned().collect();
        assert_eq!(
            on_disk, known,
            "the directory changed without a durability hook"
        );
    }

    /// Writes into `out` (an empty directory) one state that a power cut now could leave, chosen
    /// by `rng`. Returns a one-line description of the choices.
    pub(crate) fn image(&self, rng: &mut Rng, out: &Path) -> String {
        self.check_namespace();
        let mut names = self.durable.clone();
        let mut applied = 0;
        for op in &self.pending {
            if !rng.coin() {
                continue;
            }
            applied += 1;
            match op {
                NsOp::Link(name, id) => {
                    names.insert(name.clone(), *id);
                }
                NsOp::Rename(from, to) => {
                    if let Some(id) = names.remove(from) {
                        names.insert(to.clone(), id);
                    }
                }
                NsOp::Unlink(name) => {
                    names.remove(name);
                }
            }
        }
        let mut described = format!("{applied}/{} pending namespace ops;", self.pending.len());
        for (name, &id) in &names {
            let inode = &self.inodes[id];
            let durable = &inode.durable[..inode.durable_len.min(inode.durable.len())];
            // The file's bytes as the process left them, if a name still reaches it.
            let live = self
                .volatile
                .iter()
                .find(|&(_, &v)| v == id)
                .and_then(|(n, _)| std::fs::read(self.dir.join(n)).ok());
            let mode = match rng.below(3) {
                0 => Unsynced::Dropped,
                1 => Unsynced::Kept,
                _ => Unsynced::PageByPage,
            };
            let mut bytes = match (&live, mode) {
                (None, _) | (_, Unsynced::Dropped) => durable.to_vec(),
                (Some(live), Unsynced::Kept) => live.clone(),
                (Some(live), Unsynced::PageByPage) => {
                    let len = live.len().max(durable.len());
                    let mut b = vec![0u8; len];
                    for (i, page) in b.chunks_mut(PAGE).enumerate() {
                        let from = if rng.coin() { &live[..] } else { durable };
                        let at = i * PAGE;
                        let src = from.get(at..(at + page.len()).min(from.len()));
                        if let Some(src) = src {
                            page[..src.len()].copy_from_slice(src);
                        }
                    }
                    b
                }
            };
            let size_as_synced = rng.coin();
            let size = if size_as_synced || live.is_none() {
                inode.durable_len
            } else {
                live.as_ref().map_or(0, Vec::len)
            };
            bytes.resize(size, 0);
            std::fs::write(out.join(name), &bytes).expect("write the image");
            described.push_str(&format!(
                " {name}:{mode:?}/{}",
                if size_as_synced {
                    "synced-size"
                } else {
                    "written-size"
                }
            ));
        }
        described
    }
}

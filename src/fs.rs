//! The storage seam: the one place the library names `std::fs` for the files of a log.
//!
//! In normal builds every item here is a re-export of `std::fs` (or a one-line `#[inline]`
//! wrapper over it and `rustix`), so the code compiles to exactly the system calls it made before.
//!
//! Under `cfg(fuzzing)` (cargo-fuzz passes `--cfg fuzzing` to every crate it builds) the same
//! names are an in-memory file system instead, so that the log-level fuzz targets run without a
//! system call per file operation: a process-global tree from path to node (a directory, or a
//! file whose bytes are a growable `MemBuf`, in `crate::mmap` under `cfg(fuzzing)`, shared by
//! every handle and every map of it). It follows POSIX where partlog can tell: an unlinked or renamed-over file
//! stays alive for the handles open on it; `rename` replaces its target atomically; a directory
//! lists its direct children; a file cut by `set_len` reads zeros when it grows again; a write
//! past the end fills the gap with zeros; maps and positional writes see each other's bytes (as
//! a `MAP_SHARED` map and the page cache do). Syncs do nothing: a sync changes nothing a running
//! process can read, and the targets' crash (`Log::abandon`) keeps what was written. Locks are
//! in-process only (the lock registry of `log/lock.rs` already refuses a second holder here).
//!
//! What it does not model: power loss (what a sync makes durable, and in which order: the
//! power-loss harness, `src/log/power_loss.rs`, checks that on real files), a full file system
//! (no `ENOSPC`, no SIGBUS: `tests/full_disk*.rs`), holes (`mmap::backed_prefix` sees none),
//! reading a map past the end of a file that was cut under it (the kernel raises SIGBUS; here the
//! bytes read as zeros), permissions, and other processes.
//!
//! The fuzz harness (`fuzz/logic/`) writes its own files through the same names
//! ([`read`], [`write()`], [`remove_file`], [`read_dir`], and under the fuzzer `MemTempDir`), so
//! that under the fuzzer they land in memory too; the stable replay test `tests/fuzz_corpus.rs`
//! builds without `cfg(fuzzing)` and uses real files. Not part of the public API.
//!
//! The topic, replica and command-line code keeps `std::fs` itself: no log-level fuzz target
//! reaches it.

#[cfg(not(fuzzing))]
mod real {
    pub use std::fs::{
        create_dir_all, metadata, read, read_dir, read_to_string, remove_file, rename, write,
        DirEntry, File, Metadata, OpenOptions,
    };
    pub use std::os::unix::fs::FileExt;

    use std::io;
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    /// Whether `path` names an existing file or directory (`Path::exists`).
    #[inline]
    pub fn exists(path: &Path) -> bool {
        path.exists()
    }

    /// The (device, inode) pair that identifies the file `meta` describes.
    #[inline]
    pub fn file_key(meta: &Metadata) -> (u64, u64) {
        (meta.dev(), meta.ino())
    }

    /// Takes an exclusive POSIX record lock on the whole of `file`, without waiting.
    #[inline]
    pub fn try_lock_exclusive(file: &File) -> Result<(), rustix::io::Errno> {
        rustix::fs::fcntl_lock(file, rustix::fs::FlockOperation::NonBlockingLockExclusive)
    }

    /// Takes a shared POSIX record lock on the whole of `file`, without waiting.
    #[inline]
    pub fn try_lock_shared(file: &File) -> Result<(), rustix::io::Errno> {
        rustix::fs::fcntl_lock(file, rustix::fs::FlockOperation::NonBlockingLockShared)
    }

    /// Releases this process's record lock on `file`.
    #[inline]
    pub fn unlock(file: &File) -> io::Result<()> {
        rustix::fs::fcntl_lock(file, rustix::fs::FlockOperation::NonBlockingUnlock)
            .map_err(io::Error::from)
    }
}

// Also compiled (not used) in the test build, for the test below that runs it beside `std::fs`.
#[cfg(any(fuzzing, test))]
#[cfg_attr(not(fuzzing), allow(dead_code))]
mod mem {
    use std::collections::HashMap;
    use std::ffi::OsString;
    use std::hash::{BuildHasherDefault, Hasher};
    use std::io;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    use std::path::{Component, Path, PathBuf};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
    use std::time::SystemTime;

    use crate::mmap::MemBuf;

    /// A path, normalized (see [`key`]): `/`, or `/a/b` without `.`, `..`, `//` or a trailing
    /// slash.
    type Key = Vec<u8>;

    /// A node of the tree.
    enum Node {
        /// A directory, with the names of its children.
        Dir(Vec<Vec<u8>>),
        File(Arc<MemBuf>),
    }

    /// An FxHash-style hash over 8 bytes at a time: paths are short, and under the fuzzer's
    /// instrumentation every loop turn costs a callback, so fewer turns matter more than the
    /// default hasher's guarantees (no hostile keys here).
    #[derive(Default)]
    struct PathHasher(u64);

    impl Hasher for PathHasher {
        fn finish(&self) -> u64 {
            self.0
        }
        fn write(&mut self, bytes: &[u8]) {
            const K: u64 = 0x517c_c1b7_2722_0a95;
            let mut h = self.0;
            let mut words = bytes.chunks_exact(8);
            for w in &mut words {
                let mut word = [0u8; 8];
                word.copy_from_slice(w);
                h = (h.rotate_left(5) ^ u64::from_le_bytes(word)).wrapping_mul(K);
            }
            let rest = words.remainder();
            let mut word = [0u8; 8];
            word[..rest.len()].copy_from_slice(rest);
            h = (h.rotate_left(5) ^ u64::from_le_bytes(word) ^ rest.len() as u64).wrapping_mul(K);
            self.0 = h;
        }
    }

    /// Every path of the in-memory file system. The root always exists.
    struct Tree {
        nodes: HashMap<Key, Node, BuildHasherDefault<PathHasher>>,
    }

    static TREE: LazyLock<Mutex<Tree>> = LazyLock::new(|| {
        let mut nodes = HashMap::default();
        nodes.insert(b"/".to_vec(), Node::Dir(Vec::new()));
        Mutex::new(Tree { nodes })
    });

    fn tree() -> MutexGuard<'static, Tree> {
        TREE.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn err(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    /// `path` as a [`Key`], absolute (a relative path is taken from `/`). An absolute path
    /// without a trailing slash is taken as it is, unchecked for `.`, `..` or `//` inside
    /// (partlog and the harness build every path by joining file names to a clean directory
    /// path, and a byte-by-byte check costs the fuzzer a callback per byte); others are
    /// normalized.
    fn key(path: &Path) -> Key {
        let bytes = path.as_os_str().as_bytes();
        if bytes == b"/" || (bytes.first() == Some(&b'/') && bytes.last() != Some(&b'/')) {
            return bytes.to_vec();
        }
        let mut out = Vec::with_capacity(bytes.len() + 1);
        for c in path.components() {
            match c {
                Component::Normal(n) => {
                    out.push(b'/');
                    out.extend_from_slice(n.as_bytes());
                }
                Component::ParentDir => {
                    let at = out.iter().rposition(|&b| b == b'/').unwrap_or(0);
                    out.truncate(at);
                }
                Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            }
        }
        if out.is_empty() {
            out.push(b'/');
        }
        out
    }

    /// The parent of a key and the name in it; `None` for the root.
    fn split(key: &[u8]) -> Option<(&[u8], &[u8])> {
        if key == b"/" {
            return None;
        }
        let at = key.iter().rposition(|&b| b == b'/')?;
        let parent = if at == 0 { &b"/"[..] } else { &key[..at] };
        Some((parent, &key[at + 1..]))
    }

    /// `dir`'s child `name`.
    fn join(dir: &[u8], name: &[u8]) -> Key {
        let mut out = Vec::with_capacity(dir.len() + 1 + name.len());
        out.extend_from_slice(dir);
        if dir != b"/" {
            out.push(b'/');
        }
        out.extend_from_slice(name);
        out
    }

    fn path_of(key: Key) -> PathBuf {
        PathBuf::from(OsString::from_vec(key))
    }

    impl Tree {
        /// The children of the directory `key` (`ENOENT` / `ENOTDIR` if it is none).
        fn children(&mut self, key: &[u8]) -> io::Result<&mut Vec<Vec<u8>>> {
            match self.nodes.get_mut(key) {
                Some(Node::Dir(c)) => Ok(c),
                Some(Node::File(_)) => Err(err(libc::ENOTDIR)),
                None => Err(err(libc::ENOENT)),
            }
        }

        /// Links a new node at `key`, whose parent must be a directory and which must be free.
        fn link(&mut self, key: Key, node: Node) -> io::Result<()> {
            let (parent, name) = split(&key).ok_or_else(|| err(libc::EEXIST))?;
            let name = name.to_vec();
            self.children(parent)?.push(name);
            self.nodes.insert(key, node);
            Ok(())
        }

        /// Unlinks the node at `key`.
        fn unlink(&mut self, key: &[u8]) -> Option<Node> {
            let node = self.nodes.remove(key)?;
            if let Some((parent, name)) = split(key) {
                if let Ok(children) = self.children(parent) {
                    if let Some(i) = children.iter().position(|c| c == name) {
                        children.swap_remove(i);
                    }
                }
            }
            Some(node)
        }
    }

    /// An open file or directory.
    #[derive(Debug)]
    pub struct File {
        /// `None` for a directory.
        buf: Option<Arc<MemBuf>>,
        read: bool,
        write: bool,
        append: bool,
        /// The position of `Read` / `Write`.
        pos: u64,
    }

    impl File {
        /// Opens `path` read-only.
        pub fn open(path: impl AsRef<Path>) -> io::Result<File> {
            OpenOptions::new().read(true).open(path)
        }

        /// Creates `path` (or empties it) for writing.
        pub fn create(path: impl AsRef<Path>) -> io::Result<File> {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(path)
        }

        /// New options.
        pub fn options() -> OpenOptions {
            OpenOptions::new()
        }

        fn buf(&self) -> io::Result<&Arc<MemBuf>> {
            self.buf.as_ref().ok_or_else(|| err(libc::EISDIR))
        }

        fn writable(&self) -> io::Result<&Arc<MemBuf>> {
            if !self.write {
                return Err(err(libc::EBADF));
            }
            self.buf()
        }

        /// The file's buffer, for a map of it.
        pub(crate) fn mem_buf(&self) -> io::Result<&Arc<MemBuf>> {
            self.buf()
        }

        /// The file's size and kind.
        pub fn metadata(&self) -> io::Result<Metadata> {
            Ok(Metadata::of(self.buf.as_ref()))
        }

        /// Cuts or extends (with zeros) the file to `len` bytes.
        pub fn set_len(&self, len: u64) -> io::Result<()> {
            let len = usize::try_from(len).map_err(|_| err(libc::EFBIG))?;
            self.writable()?.set_len(len);
            Ok(())
        }

        /// Does nothing: memory is as durable as it gets.
        pub fn sync_all(&self) -> io::Result<()> {
            Ok(())
        }

        /// Does nothing (as [`File::sync_all`]).
        pub fn sync_data(&self) -> io::Result<()> {
            Ok(())
        }

        /// Another handle on the same file.
        pub fn try_clone(&self) -> io::Result<File> {
            Ok(File {
                buf: self.buf.clone(),
                read: self.read,
                write: self.write,
                append: self.append,
                pos: self.pos,
            })
        }
    }

    impl io::Write for File {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            let buf = self.writable()?;
            let at = if self.append {
                buf.len()
            } else {
                usize::try_from(self.pos).map_err(|_| err(libc::EFBIG))?
            };
            buf.write_at(data, at);
            self.pos = (at + data.len()) as u64;
            Ok(data.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl io::Read for File {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            if !self.read {
                return Err(err(libc::EBADF));
            }
            let at = usize::try_from(self.pos).unwrap_or(usize::MAX);
            let n = self.buf()?.read_at(out, at);
            self.pos += n as u64;
            Ok(n)
        }
    }

    /// Positional I/O (`pread` / `pwrite`), as `std::os::unix::fs::FileExt`.
    pub trait FileExt {
        /// Writes all of `data` at `offset`.
        fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()>;
        /// Fills `out` from `offset`; `UnexpectedEof` if the file ends first.
        fn read_exact_at(&self, out: &mut [u8], offset: u64) -> io::Result<()>;
    }

    impl FileExt for File {
        fn write_all_at(&self, data: &[u8], offset: u64) -> io::Result<()> {
            let at = usize::try_from(offset).map_err(|_| err(libc::EFBIG))?;
            self.writable()?.write_at(data, at);
            Ok(())
        }

        fn read_exact_at(&self, out: &mut [u8], offset: u64) -> io::Result<()> {
            if !self.read {
                return Err(err(libc::EBADF));
            }
            let at = usize::try_from(offset).unwrap_or(usize::MAX);
            if self.buf()?.read_at(out, at) < out.len() {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            Ok(())
        }
    }

    /// How to open a file, as `std::fs::OpenOptions`.
    #[derive(Clone, Debug, Default)]
    pub struct OpenOptions {
        read: bool,
        write: bool,
        append: bool,
        truncate: bool,
        create: bool,
        create_new: bool,
    }

    impl OpenOptions {
        /// No access, no creation.
        pub fn new() -> Self {
            Self::default()
        }
        /// Read access.
        pub fn read(&mut self, on: bool) -> &mut Self {
            self.read = on;
            self
        }
        /// Write access.
        pub fn write(&mut self, on: bool) -> &mut Self {
            self.write = on;
            self
        }
        /// Writes go to the end.
        pub fn append(&mut self, on: bool) -> &mut Self {
            self.append = on;
            self
        }
        /// Empty the file when opened.
        pub fn truncate(&mut self, on: bool) -> &mut Self {
            self.truncate = on;
            self
        }
        /// Create the file if absent.
        pub fn create(&mut self, on: bool) -> &mut Self {
            self.create = on;
            self
        }
        /// Create the file, failing if present.
        pub fn create_new(&mut self, on: bool) -> &mut Self {
            self.create_new = on;
            self
        }

        /// Opens `path`.
        pub fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
            let key = key(path.as_ref());
            let write = self.write || self.append;
            let mut tree = tree();
            let buf = match tree.nodes.get(&key) {
                Some(_) if self.create_new => return Err(err(libc::EEXIST)),
                Some(Node::Dir(_)) if write => return Err(err(libc::EISDIR)),
                Some(Node::Dir(_)) => None,
                Some(Node::File(b)) => {
                    let b = Arc::clone(b);
                    if self.truncate && write {
                        b.set_len(0);
                    }
                    Some(b)
                }
                None if self.create || self.create_new => {
                    if !write {
                        return Err(err(libc::EINVAL));
                    }
                    let b = Arc::new(MemBuf::new(next_ino()));
                    tree.link(key, Node::File(Arc::clone(&b)))?;
                    Some(b)
                }
                None => return Err(err(libc::ENOENT)),
            };
            Ok(File {
                buf,
                read: self.read,
                write,
                append: self.append,
                pos: 0,
            })
        }
    }

    fn next_ino() -> u64 {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        NEXT.fetch_add(1, Ordering::Relaxed)
    }

    /// A file's size, kind, modification time and inode number.
    #[derive(Clone, Debug)]
    pub struct Metadata {
        len: u64,
        dir: bool,
        modified: SystemTime,
        ino: u64,
    }

    impl Metadata {
        fn of(buf: Option<&Arc<MemBuf>>) -> Metadata {
            match buf {
                Some(b) => Metadata {
                    len: b.len() as u64,
                    dir: false,
                    modified: b.modified(),
                    ino: b.ino(),
                },
                None => Metadata {
                    len: 0,
                    dir: true,
                    modified: SystemTime::UNIX_EPOCH,
                    ino: 0,
                },
            }
        }
        /// Size in bytes.
        pub fn len(&self) -> u64 {
            self.len
        }
        /// True for an empty file.
        pub fn is_empty(&self) -> bool {
            self.len == 0
        }
        /// True for a file.
        pub fn is_file(&self) -> bool {
            !self.dir
        }
        /// True for a directory.
        pub fn is_dir(&self) -> bool {
            self.dir
        }
        /// The kind of file.
        pub fn file_type(&self) -> FileType {
            FileType { dir: self.dir }
        }
        /// Time of the last write, `set_len` or store through a map.
        pub fn modified(&self) -> io::Result<SystemTime> {
            Ok(self.modified)
        }
    }

    /// A file's kind.
    #[derive(Clone, Copy, Debug)]
    pub struct FileType {
        dir: bool,
    }

    impl FileType {
        /// True for a file.
        pub fn is_file(&self) -> bool {
            !self.dir
        }
        /// True for a directory.
        pub fn is_dir(&self) -> bool {
            self.dir
        }
    }

    /// An entry of [`read_dir`]: a name in a directory; its path and metadata are looked up
    /// when asked for (as `std::fs::DirEntry::metadata` makes its `stat` then).
    #[derive(Debug)]
    pub struct DirEntry {
        dir: Arc<Key>,
        name: Vec<u8>,
    }

    impl DirEntry {
        /// The entry's full path.
        pub fn path(&self) -> PathBuf {
            path_of(join(&self.dir, &self.name))
        }
        /// The entry's name in its directory.
        pub fn file_name(&self) -> OsString {
            OsString::from_vec(self.name.clone())
        }
        /// The entry's metadata (`ENOENT` if it is gone).
        pub fn metadata(&self) -> io::Result<Metadata> {
            metadata_of(&join(&self.dir, &self.name))
        }
        /// The entry's kind.
        pub fn file_type(&self) -> io::Result<FileType> {
            self.metadata().map(|m| m.file_type())
        }
    }

    /// The direct children of a directory, as listed when [`read_dir`] was called.
    pub type ReadDir = std::vec::IntoIter<io::Result<DirEntry>>;

    /// Lists the direct children of `dir`.
    pub fn read_dir(dir: impl AsRef<Path>) -> io::Result<ReadDir> {
        let dir = key(dir.as_ref());
        let names = tree().children(&dir)?.clone();
        let dir = Arc::new(dir);
        let entries: Vec<io::Result<DirEntry>> = names
            .into_iter()
            .map(|name| {
                Ok(DirEntry {
                    dir: Arc::clone(&dir),
                    name,
                })
            })
            .collect();
        Ok(entries.into_iter())
    }

    fn metadata_of(key: &[u8]) -> io::Result<Metadata> {
        match tree().nodes.get(key) {
            Some(Node::File(b)) => Ok(Metadata::of(Some(b))),
            Some(Node::Dir(_)) => Ok(Metadata::of(None)),
            None => Err(err(libc::ENOENT)),
        }
    }

    /// The metadata of the file or directory at `path`.
    pub fn metadata(path: impl AsRef<Path>) -> io::Result<Metadata> {
        metadata_of(&key(path.as_ref()))
    }

    /// Whether `path` names an existing file or directory.
    pub fn exists(path: &Path) -> bool {
        tree().nodes.contains_key(&key(path))
    }

    /// The whole content of the file at `path`.
    pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
        let f = File::open(path)?;
        Ok(f.buf()?.to_vec())
    }

    /// Replaces the content of the file at `path` (creating it) with `data`.
    pub fn write(path: impl AsRef<Path>, data: impl AsRef<[u8]>) -> io::Result<()> {
        let f = File::create(path)?;
        f.write_all_at(data.as_ref(), 0)
    }

    /// Renames a file, replacing what `to` named (open handles of the replaced file keep it).
    pub fn rename(from: impl AsRef<Path>, to: impl AsRef<Path>) -> io::Result<()> {
        let (from, to) = (key(from.as_ref()), key(to.as_ref()));
        let mut tree = tree();
        let buf = match tree.nodes.get(&from) {
            Some(Node::File(b)) => Arc::clone(b),
            Some(Node::Dir(_)) => return Err(err(libc::EXDEV)),
            None => return Err(err(libc::ENOENT)),
        };
        if from == to {
            return Ok(());
        }
        match tree.nodes.get_mut(&to) {
            Some(Node::Dir(_)) => return Err(err(libc::EISDIR)),
            // Replaced in place: the name stays in its directory.
            Some(node @ Node::File(_)) => *node = Node::File(buf),
            None => tree.link(to, Node::File(buf))?,
        }
        tree.unlink(&from);
        Ok(())
    }

    /// Unlinks a file (open handles keep it).
    pub fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
        let path = key(path.as_ref());
        let mut tree = tree();
        match tree.nodes.get(&path) {
            Some(Node::File(_)) => {
                tree.unlink(&path);
                Ok(())
            }
            Some(Node::Dir(_)) => Err(err(libc::EISDIR)),
            None => Err(err(libc::ENOENT)),
        }
    }

    /// Creates `path` and every missing directory above it.
    pub fn create_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
        let path = key(path.as_ref());
        let mut tree = tree();
        let mut at = 1;
        loop {
            let end = path[at..]
                .iter()
                .position(|&b| b == b'/')
                .map_or(path.len(), |i| at + i);
            if end > at {
                let dir = &path[..end];
                match tree.nodes.get(dir) {
                    Some(Node::Dir(_)) => {}
                    Some(Node::File(_)) => return Err(err(libc::ENOTDIR)),
                    None => tree.link(dir.to_vec(), Node::Dir(Vec::new()))?,
                }
            }
            if end >= path.len() {
                return Ok(());
            }
            at = end + 1;
        }
    }

    /// Removes `path` and everything below it.
    pub fn remove_dir_all(path: impl AsRef<Path>) -> io::Result<()> {
        fn remove(tree: &mut Tree, key: &[u8]) {
            if let Some(Node::Dir(children)) = tree.unlink(key) {
                for name in children {
                    remove(tree, &join(key, &name));
                }
            }
        }
        let path = key(path.as_ref());
        let mut tree = tree();
        if !tree.nodes.contains_key(&path) {
            return Err(err(libc::ENOENT));
        }
        remove(&mut tree, &path);
        Ok(())
    }

    /// A fresh, empty in-memory directory, removed with everything in it when dropped (as
    /// `tempfile::TempDir`, for the fuzz harness).
    #[derive(Debug)]
    pub struct MemTempDir {
        path: PathBuf,
    }

    impl MemTempDir {
        /// Makes `/partlog-mem/<n>`.
        pub fn new() -> MemTempDir {
            static NEXT: AtomicU64 = AtomicU64::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = PathBuf::from(format!("/partlog-mem/{n}"));
            create_dir_all(&path).expect("an in-memory directory");
            MemTempDir { path }
        }

        /// Its path.
        pub fn path(&self) -> &Path {
            &self.path
        }
    }

    impl Default for MemTempDir {
        fn default() -> Self {
            Self::new()
        }
    }

    impl Drop for MemTempDir {
        fn drop(&mut self) {
            let _ = remove_dir_all(&self.path);
        }
    }

    /// The (device, inode) pair that identifies the file `meta` describes.
    pub fn file_key(meta: &Metadata) -> (u64, u64) {
        (0, meta.ino)
    }

    /// Always succeeds: in-process exclusion is the lock registry's (`log/lock.rs`), and there
    /// is no other process.
    pub fn try_lock_exclusive(_: &File) -> Result<(), rustix::io::Errno> {
        Ok(())
    }

    /// Always succeeds (as [`try_lock_exclusive`]).
    pub fn try_lock_shared(_: &File) -> Result<(), rustix::io::Errno> {
        Ok(())
    }

    /// Does nothing (as [`try_lock_exclusive`]).
    pub fn unlock(_: &File) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(fuzzing)]
pub use mem::*;
#[cfg(not(fuzzing))]
pub use real::*;

#[cfg(test)]
mod tests {
    use std::io::{self, Write};
    use std::path::Path;

    /// The same operations on real files (`std::fs`, through this module) and on the in-memory
    /// file system; each step's outcome as text (errors by kind).
    macro_rules! scenario {
        ($m:ident, $dir:expr) => {{
            use $m::FileExt;
            let dir: &Path = $dir;
            let mut log: Vec<String> = Vec::new();
            let mut note = |what: &str, r: io::Result<String>| {
                log.push(format!(
                    "{what}: {}",
                    match r {
                        Ok(v) => v,
                        Err(e) => format!("error {:?}", e.kind()),
                    }
                ))
            };
            let a = dir.join("a");
            let b = dir.join("b");
            let sub = dir.join("x/y");
            note("read missing", $m::read(&a).map(|v| format!("{v:?}")));
            note(
                "open in a missing directory",
                $m::File::create(sub.join("f")).map(|_| String::new()),
            );
            let f = $m::File::options()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&a)
                .unwrap();
            f.write_all_at(b"tail", 6).unwrap();
            f.write_all_at(b"head", 0).unwrap();
            note("gap", $m::read(&a).map(|v| format!("{v:?}")));
            f.set_len(2).unwrap();
            f.set_len(5).unwrap();
            note("cut and grown", $m::read(&a).map(|v| format!("{v:?}")));
            note("len", f.metadata().map(|m| m.len().to_string()));
            let mut out = [0u8; 4];
            note(
                "read past the end",
                f.read_exact_at(&mut out, 3).map(|()| String::new()),
            );
            $m::write(&b, b"bbb").unwrap();
            let held = $m::File::open(&b).unwrap();
            $m::rename(&a, &b).unwrap();
            note("renamed over", $m::read(&b).map(|v| format!("{v:?}")));
            note("old name", $m::read(&a).map(|v| format!("{v:?}")));
            let mut old = [0u8; 3];
            held.read_exact_at(&mut old, 0).unwrap();
            note("replaced file, still open", Ok(format!("{old:?}")));
            $m::remove_file(&b).unwrap();
            note("removed", $m::metadata(&b).map(|m| m.len().to_string()));
            f.write_all_at(b"!", 0).unwrap();
            let mut one = [0u8; 1];
            f.read_exact_at(&mut one, 0).unwrap();
            note("unlinked, still open", Ok(format!("{one:?}")));
            note("remove again", $m::remove_file(&b).map(|()| String::new()));
            let mut ap = $m::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("c"))
                .unwrap();
            ap.write_all(b"12").unwrap();
            ap.write_all(b"34").unwrap();
            drop(ap);
            let mut ap = $m::OpenOptions::new()
                .append(true)
                .open(dir.join("c"))
                .unwrap();
            ap.write_all(b"5").unwrap();
            note(
                "appended",
                $m::read(dir.join("c")).map(|v| format!("{v:?}")),
            );
            note(
                "create_new on an existing file",
                $m::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(dir.join("c"))
                    .map(|_| String::new()),
            );
            $m::create_dir_all(&sub).unwrap();
            $m::create_dir_all(&sub).unwrap();
            let mut created = $m::File::create(sub.join("f")).unwrap();
            created.write_all(b"in sub").unwrap();
            let mut names: Vec<(String, bool, u64)> = $m::read_dir(dir)
                .unwrap()
                .map(|e| {
                    let e = e.unwrap();
                    let m = e.metadata().unwrap();
                    (
                        e.file_name().into_string().unwrap(),
                        e.file_type().unwrap().is_file(),
                        if m.is_file() { m.len() } else { 0 },
                    )
                })
                .collect();
            names.sort();
            note("listing", Ok(format!("{names:?}")));
            note(
                "listing a file",
                $m::read_dir(dir.join("c")).map(|_| String::new()),
            );
            note(
                "exists",
                Ok(format!("{} {}", $m::exists(&sub), $m::exists(&a))),
            );
            note(
                "dir metadata",
                $m::metadata(dir.join("x")).map(|m| format!("{}", m.is_dir())),
            );
            log
        }};
    }

    #[test]
    fn the_in_memory_file_system_answers_as_real_files_do() {
        let tmp = tempfile::tempdir().unwrap();
        use super::{mem, real as std_fs};
        let real = scenario!(std_fs, tmp.path());
        let mem_dir = mem::MemTempDir::new();
        let mem = scenario!(mem, mem_dir.path());
        assert_eq!(mem, real);
        assert!(
            real.contains(&"unlinked, still open: [33]".to_owned()),
            "{real:?}"
        );
        let path = mem_dir.path().to_owned();
        assert!(mem::exists(&path));
        drop(mem_dir);
        assert!(!mem::exists(&path), "the directory goes with its guard");
        assert!(!mem::exists(&path.join("x/y/f")));
    }
}

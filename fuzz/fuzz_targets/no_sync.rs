//! Durability off, for the fuzz binaries only: `fsync`, `fdatasync` and `msync` return success
//! without a system call. Defined in the executable, these symbols take precedence over libc's
//! for every caller in the process (the standard library's `File::sync_all` / `sync_data`,
//! memmap2's `flush_range`), so partlog itself is unchanged: no `cfg(fuzzing)` in the library.
//!
//! Sound for what the targets check: a sync changes nothing a running process can read (the
//! page cache is shared by reads, writes and shared maps), and the targets' "crash" is
//! `Log::abandon`, which keeps the page cache. What a sync makes durable, and in which order, is
//! checked by the power-loss harness (`src/log/power_loss.rs`, with the trace of
//! `src/durability.rs`), not here. The stable replay test (`tests/fuzz_corpus.rs`) does not
//! include this file and syncs for real.
//!
//! On tmpfs (the targets' default, see `logic::tempdir`) a sync is nearly free anyway; this
//! matters when the targets run on a disk (no `/dev/shm`, or `PARTLOG_FUZZ_DIR` set).

use std::ffi::c_int;

#[no_mangle]
pub extern "C" fn fsync(_fd: c_int) -> c_int {
    0
}

#[no_mangle]
pub extern "C" fn fdatasync(_fd: c_int) -> c_int {
    0
}

#[no_mangle]
pub extern "C" fn msync(_addr: *mut std::ffi::c_void, _len: usize, _flags: c_int) -> c_int {
    0
}

#![no_main]
//! Fuzz target `log_ops`: the logic (and what it asserts) is in `fuzz/logic/log_ops.rs`, shared with
//! the stable replay test `tests/fuzz_corpus.rs`.

#[path = "../logic/mod.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    logic::log_ops::run(data);
});

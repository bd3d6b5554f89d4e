#![no_main]
//! Fuzz target `batch_decode`: the logic (and what it asserts) is in `fuzz/logic/batch_decode.rs`, shared with
//! the stable replay test `tests/fuzz_corpus.rs`.

#[path = "../logic/mod.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    logic::batch_decode::run(data);
});

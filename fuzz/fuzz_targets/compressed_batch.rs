#![no_main]
//! Fuzz target `compressed_batch`: the logic (and what it asserts) is in
//! `fuzz/logic/compressed_batch.rs`, shared with the stable replay test `tests/fuzz_corpus.rs`.

#[path = "../logic/mod.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    logic::compressed_batch::run(data);
});

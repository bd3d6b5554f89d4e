#![no_main]
//! Fuzz target `segment_recover`: the logic (and what it asserts) is in `fuzz/logic/segment_recover.rs`, shared with
//! the stable replay test `tests/fuzz_corpus.rs`.

#[path = "../logic/mod.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    logic::segment_recover::run(data);
});

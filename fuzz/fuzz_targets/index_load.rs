#![no_main]
//! Fuzz target `index_load`: the logic (and what it asserts) is in `fuzz/logic/index_load.rs`, shared with
//! the stable replay test `tests/fuzz_corpus.rs`.

#[path = "../logic/mod.rs"]
mod logic;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    logic::index_load::run(data);
});

//! Fuzz target: `rawkit_fuzz::udp` on arbitrary bytes. The body lives in `src/lib.rs` so that
//! `tests/fuzz_corpus.rs` in the root crate replays the seed corpus through the same code on
//! stable Rust.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    rawkit_fuzz::udp(data);
});

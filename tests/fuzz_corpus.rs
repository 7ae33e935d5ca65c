//! Replays the fuzz seed corpus (`fuzz/corpus/<target>/`) through the fuzz targets' own bodies
//! (`fuzz/src/lib.rs`, included here) on stable Rust, so that `cargo test` proves the targets
//! run, the seeds still reach the deep end of each parser, and no prefix of a seed panics.
//! `cargo +nightly fuzz run <target>` (see `fuzz/README.md`) explores from the same seeds.

#[path = "../fuzz/src/lib.rs"]
mod bodies;

use etherparse::{SlicedPacket, TransportSlice};
use std::path::PathBuf;

type Body = fn(&[u8]) -> bool;

const TARGETS: [(&str, Body); 5] = [
    ("ipv4", bodies::ipv4),
    ("icmp", bodies::icmp),
    ("udp", bodies::udp),
    ("display", bodies::display),
    ("fragment", bodies::fragment),
];

fn seeds(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/corpus")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        // libFuzzer adds hash-named files while it runs; only the named seeds are checked in.
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().expect("name").to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("read seed"))
        })
        .collect();
    out.sort();
    out
}

#[test]
fn every_seed_parses_in_its_fuzz_target() {
    for (target, body) in TARGETS {
        let seeds = seeds(target);
        assert!(seeds.len() >= 2, "{target}: only {} seeds", seeds.len());
        for (name, bytes) in &seeds {
            assert!(body(bytes), "{target}/{name} no longer parses");
        }
    }
}

#[test]
fn no_prefix_of_any_seed_panics_a_fuzz_target() {
    for (target, body) in TARGETS {
        for (name, bytes) in seeds(target) {
            let mut parsed = 0;
            for len in 0..bytes.len() {
                parsed += body(&bytes[..len]) as usize;
            }
            // Prefixes of a whole datagram are cut short: the IPv4 and UDP parsers refuse them.
            if matches!(target, "ipv4" | "udp") {
                assert_eq!(parsed, 0, "{target}/{name}: a truncated seed parsed");
            }
        }
    }
}

#[test]
fn ipv4_seeds_are_real_datagrams_for_etherparse() {
    let seeds = seeds("ipv4");
    let mut kinds = Vec::new();
    for (name, bytes) in &seeds {
        let p = SlicedPacket::from_ip(bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ip = match &p.net {
            Some(etherparse::NetSlice::Ipv4(ip)) => ip.header(),
            other => panic!("{name}: {other:?}"),
        };
        let sum = etherparse::checksum::Sum16BitWords::new()
            .add_slice(ip.slice())
            .ones_complement();
        assert_eq!(sum, 0, "{name}: header checksum");
        kinds.push(match (&p.transport, p.is_ip_payload_fragmented()) {
            (_, true) => "fragment",
            (Some(TransportSlice::Icmpv4(_)), _) => "icmp",
            (Some(TransportSlice::Udp(_)), _) => "udp",
            _ => "other",
        });
    }
    for kind in ["fragment", "icmp", "udp"] {
        assert!(kinds.contains(&kind), "no {kind} seed: {kinds:?}");
    }
}

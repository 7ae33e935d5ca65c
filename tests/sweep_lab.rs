//! Tier 4: many-target `rawkit ping` across a real router. Each test builds its own lab
//! (`common::lab`: namespaces `src - r1 - dst` joined by veth, addressed from 198.18.0.0/15),
//! gives `dst` a few extra addresses in 198.18.100.0/24, and runs the `rawkit` binary inside
//! `src`: a range where `dst` owns only some addresses reports exactly those alive and the rest
//! unreachable; nftables rules in `r1` that drop one probe number, duplicate another's reply
//! and reject one target make exact loss, duplicate and ICMP-error figures.
//!
//! Every run is bounded (short waits, few retries, a time limit after which the child is killed
//! by its PID) and sends only to lab addresses (198.18.0.0/15): [`sweep_in`] refuses others.

mod common;

use common::lab::{Bounded, Lab, Node, output_within};
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

const RAWKIT: &str = env!("CARGO_BIN_EXE_rawkit");
const RUN_LIMIT: Duration = Duration::from_secs(20);
/// The addresses `dst` owns besides its link address.
const OWNED: [&str; 3] = ["198.18.100.3", "198.18.100.7", "198.18.100.20"];

fn in_lab_range(addr: Ipv4Addr) -> bool {
    let [a, b, ..] = addr.octets();
    a == 198 && (b & 0xfe) == 18
}

/// `rawkit ping ARGS` in `src`; every numeric target (address, range, block) must be in the
/// lab's 198.18.0.0/15.
fn sweep_in(lab: &Lab, args: &[&str]) -> Bounded {
    for a in args {
        let first = a.split(['/', '-']).next().unwrap_or("");
        if let Ok(addr) = first.parse::<Ipv4Addr>() {
            assert!(
                in_lab_range(addr),
                "refusing to sweep {a}: only 198.18.0.0/15"
            );
        }
    }
    let mut cmd = lab.command(Node::Src, RAWKIT);
    cmd.arg("ping").args(args).env("LC_ALL", "C");
    let run = output_within(cmd, RUN_LIMIT).expect("spawn ip netns exec");
    assert!(
        !run.timed_out,
        "rawkit ping {args:?} still running after {RUN_LIMIT:?}: killed\nstdout:\n{}\nstderr:\n{}",
        run.stdout(),
        run.stderr()
    );
    run
}

/// A lab with one router whose `dst` also owns [`OWNED`].
fn lab(name: &str) -> Option<Lab> {
    let lab = Lab::new(name, 1)?;
    for a in OWNED {
        lab.ip(Node::Dst, &["addr", "add", &format!("{a}/32"), "dev", "lo"]);
    }
    Some(lab)
}

#[test]
fn a_range_where_dst_owns_some_addresses_reports_exactly_those_alive() {
    let Some(lab) = lab("a_range_where_dst_owns_some_addresses_reports_exactly_those_alive") else {
        return;
    };
    let run = sweep_in(
        &lab,
        &[
            "--retries",
            "1",
            "-W",
            "0.3",
            "--rate",
            "500",
            "198.18.100.1-198.18.100.30",
        ],
    );
    assert_eq!(
        run.code(),
        Some(1),
        "some did not answer: exit 1\n{}",
        run.stderr()
    );
    let out = run.stdout();
    let alive: BTreeSet<String> = out
        .lines()
        .filter_map(|l| l.strip_suffix(" is alive"))
        .map(str::to_owned)
        .collect();
    let unreachable: BTreeSet<String> = out
        .lines()
        .filter_map(|l| l.strip_suffix(" is unreachable"))
        .map(str::to_owned)
        .collect();
    let owned: BTreeSet<String> = OWNED.map(String::from).into();
    assert_eq!(alive, owned, "{out}");
    let rest: BTreeSet<String> = (1..=30)
        .map(|i| format!("198.18.100.{i}"))
        .filter(|a| !owned.contains(a))
        .collect();
    assert_eq!(unreachable, rest, "{out}");
    let total = out.lines().last().unwrap_or("");
    // 3 answered at once; 27 probed twice.
    assert!(
        total.starts_with("Total: 30 targets, 3 alive, 27 unreachable, xmt/rcv/%loss = 57/3/94%"),
        "{total}"
    );
}

#[test]
fn count_mode_across_a_router_counts_loss_duplicates_and_errors_exactly() {
    let Some(lab) = lab("count_mode_across_a_router_counts_loss_duplicates_and_errors_exactly")
    else {
        return;
    };
    if common::require_tool("nft").is_none() {
        return;
    }
    let src = lab.src_addr();
    // Probe [1] of every target is dropped; the reply to probe [2] comes twice; 198.18.100.9
    // is refused with "host unreachable".
    lab.nft(
        Node::Router(1),
        &format!(
            "table ip lab {{
                chain forward {{
                    type filter hook forward priority 0; policy accept;
                    ip daddr 198.18.100.9 icmp type echo-request reject with icmp type host-unreachable
                    icmp type echo-request icmp sequence 1 counter drop
                    icmp type echo-reply icmp sequence 2 counter dup to {src} device \"lk1\"
                }}
            }}"
        ),
    );
    let args = [
        "-c",
        "3",
        "-i",
        "0.05",
        "-W",
        "0.2",
        "198.18.100.3",
        "198.18.100.7",
        "198.18.100.9",
    ];
    let run = sweep_in(&lab, &args);
    assert_eq!(run.code(), Some(1), "{}", run.stderr());
    let out = run.stdout();
    for t in ["198.18.100.3", "198.18.100.7"] {
        assert!(
            out.contains(&format!("\n{t} : [1], timed out (")),
            "probe [1] of {t} was dropped:\n{out}"
        );
        assert!(
            out.contains(&format!("\n{t} : xmt/rcv/%loss = 3/2/33%, min/avg/max = ")),
            "{out}"
        );
    }
    assert!(
        out.contains("\n198.18.100.9 : xmt/rcv/%loss = 3/0/100%\n"),
        "{out}"
    );
    // fping's warning for each refused probe (the reject comes before the drop: all three).
    let stderr = run.stderr();
    let refused: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("for ICMP Echo sent to 198.18.100.9"))
        .collect();
    assert_eq!(refused.len(), 3, "stderr:\n{stderr}");
    assert!(
        refused.iter().all(|l| *l
            == "rawkit: ICMP Host Unreachable from 198.18.1.2 for ICMP Echo sent to 198.18.100.9"),
        "{refused:?}"
    );

    let mut json_args = vec!["--json"];
    json_args.extend(args);
    let run = sweep_in(&lab, &json_args);
    let events: Vec<serde_json::Value> = run
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let summary = |addr: &str| {
        events
            .iter()
            .find(|e| e["event"] == "target_summary" && e["addr"] == addr)
            .unwrap_or_else(|| panic!("no summary for {addr}"))
            .clone()
    };
    for t in ["198.18.100.3", "198.18.100.7"] {
        let s = summary(t);
        assert_eq!(
            (
                s["transmitted"].as_u64(),
                s["received"].as_u64(),
                s["duplicates"].as_u64()
            ),
            (Some(3), Some(2), Some(1)),
            "{s}"
        );
        let dups = events
            .iter()
            .filter(|e| e["event"] == "reply" && e["addr"] == t && e["dup"] == true)
            .count();
        assert_eq!(dups, 1, "one duplicate reply event for {t}");
    }
    let errors: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "icmp_error")
        .collect();
    assert_eq!(errors.len(), 3);
    assert!(errors.iter().all(|e| e["addr"] == "198.18.100.9"
        && e["from"] == "198.18.1.2"
        && e["type"] == 3
        && e["code"] == 1));
    let total = events.last().unwrap();
    assert_eq!(
        (
            total["alive"].as_u64(),
            total["unreachable"].as_u64(),
            total["duplicates"].as_u64()
        ),
        (Some(2), Some(1), Some(2))
    );
}

//! Lab benchmark: `rawkit traceroute -n` beside the Linux `traceroute -n` (and both with `-I`)
//! in the same run, over the tier-4 lab (`src - r1 - r2 - r3 - dst`), with every hop answering
//! and with r2 silent (its time exceeded dropped by nftables). Needs root, `ip`, `nft` and
//! `traceroute`; prints SKIPPED otherwise. Runs only under `cargo bench` (`--bench`).
//!
//! Both programs are spawned straight into `src`'s namespace (no `ip netns exec`, whose own
//! cost would blur the comparison) and timed from spawn to exit; each case alternates the two
//! for `RAWKIT_BENCH_ROUNDS` rounds (default 40) and reports medians and minima, the ratio of
//! the medians (target: at most 0.5), and whether both printed the same hops. The cost of
//! spawning a program that does nothing (`/bin/true`) is printed too: it is the floor under
//! any wall time here, where a round trip through three routers takes microseconds.
//!
//! ```text
//! cargo bench --bench trace_lab
//! RAWKIT_BENCH_ROUNDS=100 cargo bench --bench trace_lab
//! ```

#[path = "../tests/common/mod.rs"]
mod common;

use common::lab::{Lab, Node};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RAWKIT: &str = env!("CARGO_BIN_EXE_rawkit");

/// Runs `program args` to completion; returns the wall time and stdout.
fn timed(program: &str, args: &[&str]) -> (Duration, String) {
    let start = Instant::now();
    let out = Command::new(program)
        .args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    (
        start.elapsed(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// The hop lines with the round-trip times blanked.
fn hops(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .map(|l| {
            l.split(' ')
                .map(|w| {
                    if w.contains('.') && w.parse::<f64>().is_ok() {
                        "N"
                    } else {
                        w
                    }
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Result {
    case: String,
    ours: (Duration, Duration),
    theirs: (Duration, Duration),
    floor: Duration,
    same: bool,
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("trace_lab: runs only under `cargo bench --bench trace_lab`");
        return;
    }
    if !rawkit::net::privilege::is_root() {
        println!("SKIPPED trace_lab bench: needs root (network namespaces, veth, nftables)");
        return;
    }
    let Some(traceroute) = find("traceroute") else {
        println!("SKIPPED trace_lab bench: needs the Linux traceroute on PATH");
        return;
    };
    if find("nft").is_none() || find("ip").is_none() {
        println!("SKIPPED trace_lab bench: needs ip (iproute2) and nft (nftables)");
        return;
    }
    let rounds: usize = std::env::var("RAWKIT_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40)
        .clamp(3, 1000);
    let Some(lab) = Lab::new("trace_lab_bench", 3) else {
        return;
    };
    // Every run must see every answer: no ICMP rate limit anywhere (the per-peer limit of 1 s
    // and the per-namespace 1000/s would silence routers after a few back-to-back traces).
    for node in lab.nodes() {
        lab.sysctl(node, "net.ipv4.icmp_ratemask", "0");
        lab.sysctl(node, "net.ipv4.icmp_ratelimit", "0");
    }
    let dst = lab.dst_addr().to_string();
    let traceroute = traceroute.to_string_lossy().into_owned();
    let mut results = Vec::new();
    for (case, silent) in [("every hop answers", false), ("r2 silent", true)] {
        if silent {
            lab.nft(
                Node::Router(2),
                "table inet silent {\n  chain out {\n    type filter hook output priority 0;\n    icmp type time-exceeded drop\n  }\n}\n",
            );
        }
        for flags in [&["-n"][..], &["-n", "-I"]] {
            let mut args: Vec<&str> = flags.to_vec();
            args.push(&dst);
            let mut rk_args = vec!["traceroute"];
            rk_args.extend(&args);
            let r = lab.run_in(Node::Src, || {
                let (mut ours, mut theirs, mut floor) = (Vec::new(), Vec::new(), Vec::new());
                let mut same = true;
                // One warm-up of each (page cache, dynamic loader), then the rounds, each
                // running the three programs in a rotating order.
                let _ = (timed(RAWKIT, &rk_args), timed(&traceroute, &args));
                for i in 0..rounds {
                    for k in 0..3 {
                        match (i + k) % 3 {
                            0 => {
                                let (t, o) = timed(RAWKIT, &rk_args);
                                ours.push((t, o));
                            }
                            1 => {
                                let (t, o) = timed(&traceroute, &args);
                                theirs.push((t, o));
                            }
                            _ => floor.push(timed("/bin/true", &[]).0),
                        }
                    }
                    let (o1, o2) = (&ours[i].1, &theirs[i].1);
                    same &= hops(o1) == hops(o2) && o1.lines().count() == 5;
                    std::thread::sleep(Duration::from_millis(2));
                }
                let mut ours: Vec<Duration> = ours.into_iter().map(|r| r.0).collect();
                let mut theirs: Vec<Duration> = theirs.into_iter().map(|r| r.0).collect();
                let (o_min, t_min) = (*ours.iter().min().unwrap(), *theirs.iter().min().unwrap());
                Result {
                    case: format!("{case}, {}", flags.join(" ")),
                    ours: (median(&mut ours), o_min),
                    theirs: (median(&mut theirs), t_min),
                    floor: median(&mut floor),
                    same,
                }
            });
            results.push(r);
        }
    }
    println!(
        "rawkit traceroute vs traceroute ({}), lab src - r1 - r2 - r3 - dst, {rounds} rounds each",
        version(&traceroute)
    );
    println!(
        "{:<28} {:>20} {:>20} {:>7} {:>10} {:>6}",
        "case", "rawkit ms med (min)", "traceroute med (min)", "ratio", "target", "hops"
    );
    for r in &results {
        let ratio = ms(r.ours.0) / ms(r.theirs.0);
        println!(
            "{:<28} {:>11.3} ({:>6.3}) {:>11.3} ({:>6.3}) {:>7.2} {:>10} {:>6}",
            r.case,
            ms(r.ours.0),
            ms(r.ours.1),
            ms(r.theirs.0),
            ms(r.theirs.1),
            ratio,
            if ratio <= 0.5 { "met" } else { "NOT met" },
            if r.same { "same" } else { "DIFFER" },
        );
    }
    println!("floor: spawning /bin/true, which does nothing (median, same rounds), and the");
    println!("ratio of the times above that floor:");
    for r in &results {
        let above = |d: Duration| (ms(d) - ms(r.floor)).max(0.001);
        println!(
            "  {:<28} floor {:.3} ms  ratio above it {:.2}",
            r.case,
            ms(r.floor),
            above(r.ours.0) / above(r.theirs.0)
        );
    }
}

fn find(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

fn version(traceroute: &str) -> String {
    Command::new(traceroute)
        .arg("-V")
        .output()
        .ok()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout).into_owned()
                + &String::from_utf8_lossy(&o.stderr);
            s.lines().next().unwrap_or("").to_string()
        })
        .unwrap_or_default()
}

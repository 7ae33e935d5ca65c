//! Flood benchmark: `rawkit ping -f -q -c N 127.0.0.1` beside iputils `ping -f -q -c N` in the
//! same run, in a private network namespace (needs root; prints SKIPPED otherwise).
//!
//! Prints, for each tool, the wall time, the rate (replies per second), loss and peak RSS, and
//! for rawkit the RTT percentiles from its JSON summary; then the rate ratio. Each tool runs
//! `RAWKIT_BENCH_ROUNDS` times (default 3), alternating, and the best round counts: the machine
//! is shared and noisy, and the best round is the one least disturbed.
//!
//! ```text
//! cargo bench --bench ping_flood                     # N = 100000
//! RAWKIT_BENCH_COUNT=20000 cargo bench --bench ping_flood
//! ```

mod common;
use common::{Run, enter_private_netns, measure};
use std::process::Command;

fn field(line: &str, key: &str) -> Option<f64> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let mut cur = &v;
    for k in key.split('.') {
        cur = cur.get(k)?;
    }
    cur.as_f64()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass other flags: run only
    // when asked to benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let count: u64 = std::env::var("RAWKIT_BENCH_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let rounds: usize = std::env::var("RAWKIT_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    if let Err(e) = enter_private_netns() {
        println!("SKIPPED ping_flood: needs root for a private network namespace ({e})");
        return;
    }
    let rawkit = env!("CARGO_BIN_EXE_rawkit");
    let iputils = ["/usr/bin/ping", "/bin/ping"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let n = count.to_string();
    let mut best_rawkit: Option<(Run, String)> = None;
    let mut best_ping: Option<Run> = None;
    for _ in 0..rounds {
        if let Some(r) = measure(Command::new(rawkit).args([
            "ping",
            "-f",
            "-q",
            "--json",
            "-c",
            &n,
            "127.0.0.1",
        ])) {
            let summary = r.stdout.lines().last().unwrap_or("").to_string();
            if best_rawkit
                .as_ref()
                .is_none_or(|(b, _)| r.wall_s < b.wall_s)
            {
                best_rawkit = Some((r, summary));
            }
        }
        if let Some(p) = iputils
            && let Some(r) = measure(Command::new(p).args(["-f", "-q", "-c", &n, "127.0.0.1"]))
            && best_ping.as_ref().is_none_or(|b| r.wall_s < b.wall_s)
        {
            best_ping = Some(r);
        }
    }
    println!("ping flood of {count} echoes to 127.0.0.1, best of {rounds} rounds");
    let Some((r, summary)) = best_rawkit else {
        println!("rawkit: did not run");
        return;
    };
    let received = field(&summary, "received").unwrap_or(0.0);
    let rk_rate = received / r.wall_s;
    println!(
        "rawkit : {:.3} s, {:.0} replies/s, received {}/{} (exit {}), peak RSS {:.1} MiB, rtt p50/p90/p99 = {}/{}/{} ms",
        r.wall_s,
        rk_rate,
        received,
        count,
        r.status,
        r.max_rss_kib as f64 / 1024.0,
        field(&summary, "rtt_ms.p50").unwrap_or(f64::NAN),
        field(&summary, "rtt_ms.p90").unwrap_or(f64::NAN),
        field(&summary, "rtt_ms.p99").unwrap_or(f64::NAN),
    );
    match best_ping {
        None => println!("iputils ping: not installed (apt-get install iputils-ping): no ratio"),
        Some(p) => {
            let re = regex_received(&p.stdout).unwrap_or(0.0);
            let rate = re / p.wall_s;
            println!(
                "iputils: {:.3} s, {:.0} replies/s, received {}/{} (exit {}), peak RSS {:.1} MiB",
                p.wall_s,
                rate,
                re,
                count,
                p.status,
                p.max_rss_kib as f64 / 1024.0
            );
            println!(
                "ratio rawkit/iputils (replies per second): {:.2}x",
                rk_rate / rate
            );
        }
    }
}

/// `N packets transmitted, M received` from iputils' statistics.
fn regex_received(out: &str) -> Option<f64> {
    let line = out.lines().find(|l| l.contains("packets transmitted"))?;
    let after = line.split(", ").nth(1)?;
    after.split_whitespace().next()?.parse().ok()
}

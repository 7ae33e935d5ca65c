//! Sweep benchmark: `rawkit ping` over 127.0.0.0/16 (65,536 addresses, 65,534 targets, one
//! probe each) beside `fping -g 127.0.0.0/16 -r 0 -q` at fping's fastest interval (`-i 0`), in
//! the same run, in a private network namespace where `lo` answers every 127/8 address (needs
//! root; prints SKIPPED otherwise). Then one sweep of 127.0.0.0/12 (1,048,574 targets) for its
//! peak RSS.
//!
//! Prints, for each run, the wall time, the targets found alive and unreachable and the peak
//! RSS (from `wait4`), then the ratio of wall times and whether the targets hold: at most half
//! of fping's wall time, zero targets wrongly reported unreachable, peak RSS at most 32 MiB.
//! Each tool runs `RAWKIT_BENCH_ROUNDS` times (default 5), alternating, and the best round
//! counts: the machine is shared and noisy, and the best round is the one least disturbed.
//!
//! With `RAWKIT_BENCH_DEFAULTS=1` it also runs both tools at their default pace over the /16:
//! `fping -g 127.0.0.0/16 -r 0 -q` (one probe every 10 ms: 11 minutes) and `rawkit ping
//! --retries 0 -q 127.0.0.0/16` (1000 probes per second: about a minute).
//!
//! ```text
//! cargo bench --bench sweep
//! RAWKIT_BENCH_ROUNDS=9 cargo bench --bench sweep
//! RAWKIT_BENCH_DEFAULTS=1 cargo bench --bench sweep
//! ```
//!
//! The network rule: every sweep here goes to 127.0.0.0/8 inside a namespace made for it.

mod common;
use common::{Run, enter_private_netns, measure};
use std::process::Command;

const SLASH16: &str = "127.0.0.0/16";
const TARGETS_16: u64 = 65_534;

/// `N alive` and `M unreachable` from rawkit's `Total:` line.
fn alive_unreachable(stdout: &str) -> Option<(u64, u64)> {
    let total = stdout.lines().find(|l| l.starts_with("Total: "))?;
    let field = |word: &str| -> Option<u64> {
        total
            .split(", ")
            .find(|p| p.ends_with(word))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    Some((field(" alive")?, field(" unreachable")?))
}

fn mib(kib: i64) -> f64 {
    kib as f64 / 1024.0
}

fn rawkit_line(label: &str, r: &Run, targets: u64) {
    let (alive, unreachable) = alive_unreachable(&r.stdout).unwrap_or((0, targets));
    println!(
        "{label}: {:.3} s, {alive} alive, {unreachable} unreachable of {targets} (exit {}), \
         {:.0} targets/s, peak RSS {:.1} MiB",
        r.wall_s,
        r.status,
        targets as f64 / r.wall_s,
        mib(r.max_rss_kib)
    );
}

fn fping_line(label: &str, r: &Run) {
    println!(
        "{label}: {:.3} s, exit {} ({}), {:.0} targets/s, peak RSS {:.1} MiB",
        r.wall_s,
        r.status,
        if r.status == 0 {
            "every target alive"
        } else {
            "some unreachable"
        },
        TARGETS_16 as f64 / r.wall_s,
        mib(r.max_rss_kib)
    );
}

fn best(runs: &mut Vec<Run>, r: Option<Run>) {
    if let Some(r) = r {
        runs.push(r);
    }
    runs.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would pass other flags: run only
    // when asked to benchmark.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rounds: usize = std::env::var("RAWKIT_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    if let Err(e) = enter_private_netns() {
        println!("SKIPPED sweep: needs root for a private network namespace ({e})");
        return;
    }
    let rawkit = env!("CARGO_BIN_EXE_rawkit");
    let fping = ["/usr/bin/fping", "/usr/sbin/fping", "/bin/fping"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let mut ours: Vec<Run> = Vec::new();
    let mut theirs: Vec<Run> = Vec::new();
    for _ in 0..rounds {
        best(
            &mut ours,
            measure(Command::new(rawkit).args([
                "ping",
                "--rate",
                "0",
                "--retries",
                "0",
                "-q",
                SLASH16,
            ])),
        );
        if let Some(f) = fping {
            best(
                &mut theirs,
                measure(Command::new(f).args(["-g", SLASH16, "-r", "0", "-q", "-i", "0"])),
            );
        }
    }
    println!("sweep of {SLASH16} ({TARGETS_16} targets, one probe each), best of {rounds} rounds");
    let Some(r) = ours.first() else {
        println!("rawkit: did not run");
        return;
    };
    rawkit_line("rawkit ping --rate 0 --retries 0 -q", r, TARGETS_16);
    let walls: Vec<String> = ours.iter().map(|r| format!("{:.3}", r.wall_s)).collect();
    println!("  all rounds: {} s", walls.join(" "));
    let wrongly_unreachable = alive_unreachable(&r.stdout).map_or(TARGETS_16, |(_, u)| u);
    match theirs.first() {
        None => println!("fping: not installed (apt-get install fping): no ratio"),
        Some(f) => {
            fping_line("fping -g 127.0.0.0/16 -r 0 -q -i 0", f);
            let walls: Vec<String> = theirs.iter().map(|r| format!("{:.3}", r.wall_s)).collect();
            println!("  all rounds: {} s", walls.join(" "));
            let ratio = r.wall_s / f.wall_s;
            println!(
                "ratio rawkit/fping (wall time): {ratio:.2} (target <= 0.50: {})",
                if ratio <= 0.5 { "met" } else { "MISSED" }
            );
        }
    }
    println!(
        "targets wrongly reported unreachable: {wrongly_unreachable} (target 0: {})",
        if wrongly_unreachable == 0 {
            "met"
        } else {
            "MISSED"
        }
    );
    let rss = mib(ours.iter().map(|r| r.max_rss_kib).max().unwrap_or(0));
    println!(
        "rawkit peak RSS over the /16 rounds: {rss:.1} MiB (target <= 32 MiB: {})",
        if rss <= 32.0 { "met" } else { "MISSED" }
    );

    // A million targets: the memory a sweep needs when it is 16 times larger.
    if let Some(big) = measure(Command::new(rawkit).args([
        "ping",
        "--rate",
        "0",
        "--retries",
        "0",
        "--force",
        "-q",
        "127.0.0.0/12",
    ])) {
        rawkit_line("rawkit, 127.0.0.0/12", &big, 1_048_574);
    }

    if std::env::var("RAWKIT_BENCH_DEFAULTS").is_ok_and(|v| v == "1") {
        println!("default pace, one round each (fping: one probe per 10 ms)");
        if let Some(r) =
            measure(Command::new(rawkit).args(["ping", "--retries", "0", "-q", SLASH16]))
        {
            rawkit_line("rawkit ping --retries 0 -q (1000/s)", &r, TARGETS_16);
        }
        if let Some(f) = fping
            && let Some(r) = measure(Command::new(f).args(["-g", SLASH16, "-r", "0", "-q"]))
        {
            fping_line("fping -g 127.0.0.0/16 -r 0 -q", &r);
        }
    } else {
        println!(
            "(fping -g {SLASH16} -r 0 -q at its default pace needs {TARGETS_16} x 10 ms = 655 s: \
             RAWKIT_BENCH_DEFAULTS=1 runs it)"
        );
    }
}

//! Tier 3: many-target `rawkit ping` (fping's job) end to end on loopback. Each test moves its
//! thread into a private network namespace ([`common::enter_netns`]), where `lo` answers every
//! address of 127.0.0.0/8, and runs the real binary there; a target that must stay silent is
//! an address behind a veth pair the test adds inside its namespace (198.18.5.0/24, with a
//! fixed neighbour entry, so the frames reach the peer, which drops them: no ARP, no ICMP
//! error), so nothing reaches the host's network.
//!
//! What is proven: a /20 sweep reports all 4094 addresses alive (no network or broadcast
//! address); `-c` prints fping's per-reply lines and per-target summaries, in the shape fping
//! prints them (compared with fping itself when it is installed); `--alive` and
//! `--unreachable` print bare names as fping's `-a` and `-u` do; the rate on the wire (a
//! capture on `lo`) stays within `--rate`; `--json` events parse and add up; targets come from
//! `--file` and stdin; a name that does not resolve is reported while the rest is swept (exit
//! 2); SIGINT ends the sweep with its total; `--pcap` holds every probe and reply; a /16 sweep
//! stays within a few MiB of memory.
//!
//! Every run is bounded: targets in 127.0.0.0/8 or the test's own 198.18.5.0/24, short waits,
//! and a time limit after which the child is killed by its PID and the test fails.

mod common;

use common::lab::{Bounded, output_within};
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const RAWKIT: &str = env!("CARGO_BIN_EXE_rawkit");
/// Longest any run may take before it is killed and the test fails.
const LIMIT: Duration = Duration::from_secs(20);
/// A target that never answers: behind the veth pair [`silent_target`] makes.
const SILENT: &str = "198.18.5.2";

/// True for the addresses these tests may send to.
fn allowed(target: &str) -> bool {
    let first = target.split(['/', '-']).next().unwrap_or("");
    match first.parse::<Ipv4Addr>() {
        Ok(a) => a.octets()[0] == 127 || (a.octets()[0] == 198 && a.octets()[1] & 0xfe == 18),
        Err(_) => true, // a name, resolved inside the namespace
    }
}

/// `rawkit ping ARGS`, bounded; every numeric target must be loopback or the test's own.
fn rawkit(args: &[&str]) -> Bounded {
    for a in args
        .iter()
        .filter(|a| a.starts_with(|c: char| c.is_ascii_digit()))
    {
        if a.contains('.') {
            assert!(
                allowed(a),
                "refusing to sweep {a}: not loopback nor the test's own"
            );
        }
    }
    let mut cmd = Command::new(RAWKIT);
    cmd.arg("ping").args(args).env("LC_ALL", "C");
    let run = output_within(cmd, LIMIT).expect("spawn rawkit");
    assert!(
        !run.timed_out,
        "rawkit ping {args:?} still running after {LIMIT:?}: killed\nstdout:\n{}\nstderr:\n{}",
        run.stdout(),
        run.stderr()
    );
    run
}

/// Adds a veth pair `rkA`/`rkB` to the test's namespace, 198.18.5.1/24 on `rkA`, and fixed
/// neighbour entries for 198.18.5.2 and .7: probes to them leave through `rkA` and die at `rkB`
/// (another MAC address). `false` (after a SKIPPED line) without `ip`.
fn silent_target() -> bool {
    let Some(ip) = common::require_tool("ip") else {
        return false;
    };
    for args in [
        &["link", "add", "rkA", "type", "veth", "peer", "name", "rkB"][..],
        &["addr", "add", "198.18.5.1/24", "dev", "rkA"],
        &["link", "set", "rkA", "up"],
        &["link", "set", "rkB", "up"],
        &[
            "neigh",
            "add",
            SILENT,
            "lladdr",
            "02:00:00:00:05:02",
            "dev",
            "rkA",
        ],
        &[
            "neigh",
            "add",
            "198.18.5.7",
            "lladdr",
            "02:00:00:00:05:07",
            "dev",
            "rkA",
        ],
    ] {
        let ok = Command::new(&ip).args(args).status().expect("run ip");
        assert!(ok.success(), "ip {args:?} failed");
    }
    true
}

fn alive_line_addrs(stdout: &str) -> BTreeSet<String> {
    stdout
        .lines()
        .filter_map(|l| l.strip_suffix(" is alive"))
        .map(str::to_owned)
        .collect()
}

/// The line with every run of digits replaced by `N`: the shape of a line.
fn shape(line: &str) -> String {
    let mut out = String::new();
    let mut in_digits = false;
    for c in line.chars() {
        if c.is_ascii_digit() {
            if !in_digits {
                out.push('N');
            }
            in_digits = true;
        } else {
            out.push(c);
            in_digits = false;
        }
    }
    out
}

fn total_line(stdout: &str) -> &str {
    let last = stdout.lines().last().unwrap_or("");
    assert!(
        last.starts_with("Total: "),
        "the last line must be the total:\n{stdout}"
    );
    last
}

#[test]
fn a_slash_20_on_loopback_is_all_alive_without_network_and_broadcast() {
    if !common::enter_netns("a_slash_20_on_loopback_is_all_alive_without_network_and_broadcast") {
        return;
    }
    let started = Instant::now();
    let run = rawkit(&["--rate", "0", "127.0.0.0/20"]);
    let took = started.elapsed();
    let out = run.stdout();
    assert_eq!(run.code(), Some(0), "stderr: {}", run.stderr());
    let got = alive_line_addrs(&out);
    let want: BTreeSet<String> = (1..4095u32)
        .map(|i| Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 0, 0)) + i).to_string())
        .collect();
    assert_eq!(got.len(), 4094);
    assert_eq!(got, want, "every host address of the block, alive");
    assert_eq!(out.lines().count(), 4095, "4094 lines and the total");
    let total = total_line(&out);
    assert!(
        total.starts_with(
            "Total: 4094 targets, 4094 alive, 0 unreachable, xmt/rcv/%loss = 4094/4094/0%, min/avg/max = "
        ),
        "{total}"
    );
    assert!(run.stderr().is_empty(), "stderr: {}", run.stderr());
    assert!(took < Duration::from_secs(5), "a /20 on lo took {took:?}");
}

#[test]
fn count_mode_prints_fpings_reply_lines_and_summaries() {
    if !common::enter_netns("count_mode_prints_fpings_reply_lines_and_summaries") {
        return;
    }
    let targets = ["127.0.0.1", "127.0.0.2", "127.0.0.10"];
    let mut args = vec!["-c", "3", "-i", "0.02"];
    args.extend(targets);
    let run = rawkit(&args);
    assert_eq!(run.code(), Some(0), "stderr: {}", run.stderr());
    let out = run.stdout();
    let lines: Vec<&str> = out.lines().collect();
    // 9 reply lines, a blank line, 3 summaries, the total.
    assert_eq!(lines.len(), 14, "{out}");
    for (k, line) in lines[..9].iter().enumerate() {
        let name = format!("{:<10}", targets[k % 3]);
        let prefix = format!("{name} : [{}], 64 bytes, ", k / 3);
        assert!(
            line.starts_with(&prefix),
            "{line:?} should start with {prefix:?}"
        );
        assert!(line.ends_with(" avg, 0% loss)"), "{line}");
    }
    assert_eq!(lines[9], "");
    for (i, line) in lines[10..13].iter().enumerate() {
        let prefix = format!(
            "{:<10} : xmt/rcv/%loss = 3/3/0%, min/avg/max = ",
            targets[i]
        );
        assert!(
            line.starts_with(&prefix),
            "{line:?} should start with {prefix:?}"
        );
    }
    assert!(
        lines[13].starts_with("Total: 3 targets, 3 alive, 0 unreachable, xmt/rcv/%loss = 9/9/0%")
    );

    // fping prints the same lines (its summaries on stderr): same shapes, digits aside.
    let Some(fping) = common::require_tool("fping") else {
        return;
    };
    let f = output_within(
        {
            let mut c = Command::new(fping);
            c.args(["-c", "3", "-p", "20"]).args(targets);
            c
        },
        LIMIT,
    )
    .expect("run fping");
    let mut theirs: Vec<String> = f.stdout().lines().map(shape).collect();
    theirs.extend(f.stderr().lines().map(shape));
    let ours: Vec<String> = lines[..13].iter().map(|l| shape(l)).collect();
    assert_eq!(ours, theirs, "fping:\n{}{}", f.stdout(), f.stderr());
}

#[test]
fn a_silent_target_times_out_in_count_mode_and_is_unreachable() {
    if !common::enter_netns("a_silent_target_times_out_in_count_mode_and_is_unreachable")
        || !silent_target()
    {
        return;
    }
    let run = rawkit(&["-c", "2", "-i", "0.05", "127.0.0.1", SILENT]);
    assert_eq!(run.code(), Some(1), "stderr: {}", run.stderr());
    let out = run.stdout();
    let timeouts: Vec<&str> = out.lines().filter(|l| l.contains("timed out")).collect();
    assert_eq!(
        timeouts,
        vec![
            "198.18.5.2 : [0], timed out (NaN avg, 100% loss)",
            "198.18.5.2 : [1], timed out (NaN avg, 100% loss)"
        ]
    );
    assert!(
        out.contains("\n198.18.5.2 : xmt/rcv/%loss = 2/0/100%\n"),
        "{out}"
    );
    assert!(
        out.contains("\n127.0.0.1  : xmt/rcv/%loss = 2/2/0%, min/avg/max = "),
        "{out}"
    );
    assert!(
        total_line(&out)
            .starts_with("Total: 2 targets, 1 alive, 1 unreachable, xmt/rcv/%loss = 4/2/50%")
    );
}

#[test]
fn alive_and_unreachable_print_bare_names_like_fpings_a_and_u() {
    if !common::enter_netns("alive_and_unreachable_print_bare_names_like_fpings_a_and_u")
        || !silent_target()
    {
        return;
    }
    let targets = ["127.0.0.1", SILENT, "127.0.0.3", "198.18.5.7"];
    let quick = ["--retries", "1", "-W", "0.1"];
    let plain = rawkit(&[&quick[..], &targets[..]].concat());
    assert_eq!(plain.code(), Some(1));
    let plain_out = plain.stdout();
    let lines: BTreeSet<&str> = plain_out.lines().take(4).collect();
    let want: BTreeSet<&str> = [
        "127.0.0.1 is alive",
        "127.0.0.3 is alive",
        "198.18.5.2 is unreachable",
        "198.18.5.7 is unreachable",
    ]
    .into();
    assert_eq!(lines, want, "{}", plain.stdout());
    assert!(
        total_line(&plain.stdout())
            .starts_with("Total: 4 targets, 2 alive, 2 unreachable, xmt/rcv/%loss = 6/2/66%")
    );

    let alive = rawkit(&[&["--alive"][..], &quick[..], &targets[..]].concat());
    let mut got: Vec<String> = alive.stdout().lines().map(str::to_owned).collect();
    got.sort();
    assert_eq!(got, vec!["127.0.0.1", "127.0.0.3"], "a bare list, no total");
    assert_eq!(alive.code(), Some(1));
    let unreachable = rawkit(&[&["--unreachable"][..], &quick[..], &targets[..]].concat());
    assert_eq!(unreachable.stdout(), "198.18.5.2\n198.18.5.7\n");

    let Some(fping) = common::require_tool("fping") else {
        return;
    };
    for (flag, ours) in [("-a", &alive), ("-u", &unreachable)] {
        let f = output_within(
            {
                let mut c = Command::new(&fping);
                c.args([flag, "-r", "1", "-t", "100"]).args(targets);
                c
            },
            LIMIT,
        )
        .expect("run fping");
        let mut theirs: Vec<String> = f.stdout().lines().map(str::to_owned).collect();
        let mut mine: Vec<String> = ours.stdout().lines().map(str::to_owned).collect();
        theirs.sort();
        mine.sort();
        assert_eq!(mine, theirs, "fping {flag} printed:\n{}", f.stdout());
        assert_eq!(ours.code(), f.code(), "exit status as fping {flag}");
    }
}

#[test]
fn the_rate_on_the_wire_stays_within_the_asked_rate() {
    if !common::enter_netns("the_rate_on_the_wire_stays_within_the_asked_rate") {
        return;
    }
    let sniffer = common::Sniffer::start("lo");
    let rate = 200.0;
    let run = rawkit(&["--rate", "200", "-q", "127.0.0.0/24"]);
    assert_eq!(run.code(), Some(0), "stderr: {}", run.stderr());
    assert!(sniffer.wait_for(
        |d| d.iter().filter(|p| is_echo_request(p)).count() >= 254,
        Duration::from_secs(5)
    ));
    let (seen, _) = sniffer.stop();
    let times: Vec<Duration> = seen
        .iter()
        .filter(|s| is_echo_request(&s.datagram))
        .filter_map(|s| s.frame.timestamp)
        .map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap())
        .collect();
    assert_eq!(times.len(), 254, "one probe per target on the wire");
    let span = (*times.last().unwrap() - times[0]).as_secs_f64();
    let measured = 253.0 / span;
    // Loose bounds for a shared machine: never faster than asked (plus the 1-probe bucket),
    // and not much slower.
    assert!(
        measured <= rate * 1.02 && measured >= rate * 0.7,
        "{measured:.1} probes/s on the wire for --rate {rate}"
    );
    // No burst: in any 50 ms, at most the rate's share and the bucket's extra probe.
    let most = times
        .iter()
        .enumerate()
        .map(|(i, t)| {
            times[i..]
                .iter()
                .take_while(|u| **u - *t < Duration::from_millis(50))
                .count()
        })
        .max()
        .unwrap();
    assert!(most <= 12, "{most} probes within 50 ms at --rate {rate}");
}

fn is_echo_request(datagram: &[u8]) -> bool {
    match etherparse::Ipv4Slice::from_slice(datagram) {
        Ok(ip) => {
            ip.payload().ip_number == etherparse::IpNumber::ICMP
                && ip.payload().payload.first() == Some(&8)
        }
        Err(_) => false,
    }
}

fn json_lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect()
}

#[test]
fn json_events_describe_the_sweep() {
    if !common::enter_netns("json_events_describe_the_sweep") || !silent_target() {
        return;
    }
    let run = rawkit(&[
        "--json",
        "--retries",
        "0",
        "-W",
        "0.1",
        "127.0.0.1",
        SILENT,
        "127.0.0.2",
    ]);
    assert_eq!(run.code(), Some(1));
    let events = json_lines(&run.stdout());
    for e in &events {
        assert_eq!(
            (e["v"].as_u64(), e["cmd"].as_str()),
            (Some(1), Some("ping")),
            "{e}"
        );
    }
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"start"));
    assert_eq!(kinds.last(), Some(&"summary"));
    assert_eq!(kinds.iter().filter(|k| **k == "alive").count(), 2);
    let unreachable: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "unreachable")
        .collect();
    assert_eq!(unreachable.len(), 1);
    assert_eq!(unreachable[0]["addr"], SILENT);
    assert_eq!(unreachable[0]["probes"], 1);
    let s = events.last().unwrap();
    assert_eq!(
        (
            s["targets"].as_u64(),
            s["alive"].as_u64(),
            s["unreachable"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );
    assert_eq!(
        (s["transmitted"].as_u64(), s["received"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(s["exit"], 1);
    assert!(s["rtt_ms"]["min"].as_f64().unwrap() > 0.0);

    let counted = rawkit(&[
        "--json",
        "-c",
        "2",
        "-i",
        "0.02",
        "-W",
        "0.1",
        "127.0.0.1",
        SILENT,
    ]);
    let events = json_lines(&counted.stdout());
    let count = |k: &str| events.iter().filter(|e| e["event"] == k).count();
    assert_eq!(
        (count("reply"), count("timeout"), count("target_summary")),
        (2, 2, 2)
    );
    let reply = events.iter().find(|e| e["event"] == "reply").unwrap();
    assert_eq!(
        (reply["addr"].as_str(), reply["dup"].as_bool()),
        (Some("127.0.0.1"), Some(false))
    );
    assert_eq!(reply["bytes"], 64);
    let silent = events
        .iter()
        .find(|e| e["event"] == "target_summary" && e["addr"] == SILENT)
        .unwrap();
    assert_eq!(
        (
            silent["transmitted"].as_u64(),
            silent["received"].as_u64(),
            silent["loss_pct"].as_u64()
        ),
        (Some(2), Some(0), Some(100))
    );
    assert!(silent["rtt_ms"].is_null());

    // -q: only the start, the per-target summaries and the summary.
    let quiet = rawkit(&["--json", "-q", "-c", "1", "127.0.0.1", "127.0.0.2"]);
    let kinds: Vec<String> = json_lines(&quiet.stdout())
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        kinds,
        ["start", "target_summary", "target_summary", "summary"]
    );
}

#[test]
fn targets_come_from_a_file_or_from_stdin() {
    if !common::enter_netns("targets_come_from_a_file_or_from_stdin") {
        return;
    }
    let path = std::env::temp_dir().join(format!("rawkit-sweep-file-{}", std::process::id()));
    std::fs::write(
        &path,
        "# targets\n127.0.0.1   first host\n\n  127.0.1.0/30\n127.0.2.1-127.0.2.2 # a range\nlocalhost\n",
    )
    .unwrap();
    let file = path.to_string_lossy().into_owned();
    let run = rawkit(&["--file", &file]);
    let _ = std::fs::remove_file(&path);
    assert_eq!(run.code(), Some(0), "stderr: {}", run.stderr());
    let got = alive_line_addrs(&run.stdout());
    let want: BTreeSet<String> = [
        "127.0.0.1",
        "127.0.1.1",
        "127.0.1.2",
        "127.0.2.1",
        "127.0.2.2",
        "localhost",
    ]
    .map(String::from)
    .into();
    assert_eq!(got, want, "names print as typed");

    let mut child = Command::new(RAWKIT)
        .args(["ping", "--file", "-", "127.0.3.3"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rawkit");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"127.0.3.1\n127.0.3.2\n")
        .unwrap();
    let out = wait_bounded(child);
    assert_eq!(out.0, Some(0), "{}", out.2);
    assert_eq!(
        alive_line_addrs(&out.1),
        ["127.0.3.1", "127.0.3.2", "127.0.3.3"]
            .map(String::from)
            .into()
    );
}

/// Waits for `child` at most [`LIMIT`] (killing it by PID after that): exit code, stdout,
/// stderr.
fn wait_bounded(mut child: std::process::Child) -> (Option<i32>, String, String) {
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let o = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let e = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rawkit still running after {LIMIT:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    (status.code(), o.join().unwrap(), e.join().unwrap())
}

#[test]
fn a_name_that_does_not_resolve_is_reported_and_the_rest_is_swept() {
    if !common::enter_netns("a_name_that_does_not_resolve_is_reported_and_the_rest_is_swept") {
        return;
    }
    // Looked up from the private namespace: no resolver can be reached from here.
    let run = rawkit(&["127.0.0.1", "nosuch.invalid", "127.0.0.2"]);
    assert_eq!(
        run.code(),
        Some(2),
        "fping exits 2 when a name did not resolve"
    );
    let err = run.stderr();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("rawkit: nosuch.invalid: "), "{err}");
    assert_eq!(
        alive_line_addrs(&run.stdout()),
        ["127.0.0.1", "127.0.0.2"].map(String::from).into()
    );
    assert!(
        total_line(&run.stdout())
            .starts_with("Total: 2 targets, 2 alive, 0 unreachable, 1 unknown hosts")
    );
}

#[test]
fn sigint_ends_the_sweep_with_its_total() {
    if !common::enter_netns("sigint_ends_the_sweep_with_its_total") {
        return;
    }
    // 254 targets at 20 per second would take 13 s: interrupted after half a second.
    let child = Command::new(RAWKIT)
        .args(["ping", "--rate", "20", "127.0.0.0/24"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rawkit");
    std::thread::sleep(Duration::from_millis(500));
    // SAFETY: `kill` takes no pointers; the PID is our own child's.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let started = Instant::now();
    let (code, out, err) = wait_bounded(child);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "SIGINT must end it at once"
    );
    assert_eq!(code, Some(1), "{err}");
    let total = total_line(&out);
    let alive = alive_line_addrs(&out).len();
    assert!(
        (5..=15).contains(&alive),
        "{alive} alive after 0.5 s at 20/s"
    );
    assert!(
        total.starts_with(&format!(
            "Total: 254 targets, {alive} alive, 0 unreachable, {} pending",
            254 - alive
        )),
        "{total}"
    );
}

#[test]
fn the_pcap_file_holds_every_probe_and_reply() {
    if !common::enter_netns("the_pcap_file_holds_every_probe_and_reply") {
        return;
    }
    let path = std::env::temp_dir().join(format!("rawkit-sweep-{}.pcap", std::process::id()));
    let p = path.to_string_lossy().into_owned();
    let run = rawkit(&["--pcap", &p, "--rate", "0", "-q", "127.0.0.0/28"]);
    assert_eq!(run.code(), Some(0), "{}", run.stderr());
    let reader = rawkit::pcap::PcapReader::open(&path).expect("open the pcap");
    let mut types = Vec::new();
    for rec in reader {
        let rec = rec.expect("a record");
        let ip = etherparse::Ipv4Slice::from_slice(rec.ipv4().expect("IPv4")).expect("parse");
        types.push(ip.payload().payload[0]);
    }
    let _ = std::fs::remove_file(&path);
    assert_eq!(types.iter().filter(|t| **t == 8).count(), 14, "requests");
    assert_eq!(types.iter().filter(|t| **t == 0).count(), 14, "replies");
}

#[test]
fn a_slash_16_sweep_stays_within_a_few_mib() {
    if !common::enter_netns("a_slash_16_sweep_stays_within_a_few_mib") {
        return;
    }
    // Reaped below with wait4, which also gives its peak RSS.
    #[allow(clippy::zombie_processes)]
    let child = Command::new(RAWKIT)
        .args([
            "ping",
            "--rate",
            "0",
            "--retries",
            "0",
            "-q",
            "127.0.0.0/16",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn rawkit");
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout.unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let (status, rss_kib) = loop {
        let mut status = 0;
        // SAFETY: `rusage` is plain data the kernel fills in.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers to live locals; reaps only our own child.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            break (status, usage.ru_maxrss);
        }
        if started.elapsed() > LIMIT {
            // SAFETY: our own child's PID.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("a /16 sweep still running after {LIMIT:?}: killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
    let out = reader.join().unwrap();
    assert!(
        out.starts_with("Total: 65534 targets, 65534 alive, 0 unreachable"),
        "{out}"
    );
    assert!(
        rss_kib < 32 * 1024,
        "peak RSS {rss_kib} KiB for 65534 targets"
    );
}

#[test]
fn a_progress_line_shows_on_a_terminal_and_is_cleared_at_the_end() {
    if !common::enter_netns("a_progress_line_shows_on_a_terminal_and_is_cleared_at_the_end") {
        return;
    }
    let Some(script) = common::require_tool("script") else {
        return;
    };
    // `script` gives rawkit a terminal (a pty) for stdout and stderr, and copies what is
    // written there to a file. 510 targets at 300 per second: 1.7 s, past the 1 s mark.
    let log = std::env::temp_dir().join(format!("rawkit-sweep-tty-{}", std::process::id()));
    let mut cmd = Command::new(script);
    cmd.arg("-qc")
        .arg(format!("{RAWKIT} ping --rate 300 -q 127.0.0.0/23"))
        .arg(&log);
    let run = output_within(cmd, LIMIT).expect("run script");
    assert!(!run.timed_out);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let draws: Vec<&str> = text
        .split("\r\x1b[K")
        .filter(|p| p.contains(" targets done ("))
        .collect();
    assert!(
        !draws.is_empty(),
        "no progress line on the terminal:\n{text:?}"
    );
    assert!(
        draws
            .iter()
            .all(|d| d.contains("/510 targets done (") && d.contains(" probes/s, about ")),
        "{draws:?}"
    );
    // Cleared before the results: the total starts right after an erase.
    assert!(
        text.contains("\r\x1b[KTotal: 510 targets, 510 alive"),
        "{text:?}"
    );
}

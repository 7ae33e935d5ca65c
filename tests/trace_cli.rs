//! `rawkit traceroute` from the command line: bad input is one line on stderr and exit status 2
//! (tier 2, no privileges: every case fails before a socket is opened, and names 127.0.0.1
//! anyway), an unresolvable host and a loopback trace in a private network namespace (tier 3),
//! and `--help`.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const RAWKIT: &str = env!("CARGO_BIN_EXE_rawkit");

/// Runs `rawkit traceroute ARGS` (killed after 10 s).
fn run(args: &[&str]) -> Output {
    let child = Command::new(RAWKIT)
        .arg("traceroute")
        .args(args)
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rawkit");
    let id = child.id();
    let started = Instant::now();
    let waiter = std::thread::spawn(move || child.wait_with_output().expect("wait"));
    while !waiter.is_finished() {
        if started.elapsed() > Duration::from_secs(10) {
            // Only the child we started, by its PID.
            let _ = Command::new("kill").arg(id.to_string()).status();
            panic!("rawkit traceroute {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    waiter.join().expect("join")
}

#[track_caller]
fn assert_refused(args: &[&str], needle: &str) {
    let out = run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?} printed on stdout");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{args:?}: not one line:\n{stderr}");
    assert!(lines[0].starts_with("rawkit: "), "{args:?}: {stderr}");
    assert!(
        lines[0].contains(needle),
        "{args:?}: {stderr} (wanted {needle:?})"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    let lo = "127.0.0.1";
    assert_refused(&["-m", "0", lo], "1 <= value <= 255");
    assert_refused(&["-m", "256", lo], "1 <= value <= 255");
    assert_refused(&["-q", "11", lo], "1 <= value <= 10");
    assert_refused(&["-q", "0", lo], "1 <= value <= 10");
    assert_refused(&["-f", "5", "-m", "3", lo], "first hop out of range");
    assert_refused(&["-f", "0", lo], "1 <= value <= 255");
    assert_refused(&["-N", "0", lo], "1 <= value <= 65535");
    assert_refused(&[lo, "65001"], "0 <= value <= 65000");
    assert_refused(&[lo, "-1"], "0 <= value <= 65000");
    assert_refused(&[lo, "big"], "not a whole number");
    assert_refused(&["-w", "-2", lo], "must be 0 or more");
    assert_refused(&["-w", "5,x,10", lo], "not a number");
    assert_refused(&["-z", "soon", lo], "not a number");
    assert_refused(&["-t", "256", lo], "0 <= value <= 255");
    assert_refused(&["-p", "70000", lo], "0 <= value <= 65535");
    assert_refused(&["-s", "198.18.1.300", lo], "not an IPv4 address");
    assert_refused(&["-I", "-U", lo], "cannot be used with");
    assert_refused(&["--bogus", lo], "--bogus");
    assert_refused(&[], "HOST");
    // An interface that does not exist is refused before anything is opened or sent.
    assert_refused(&["-i", "nosuch0", lo], "no such interface");
}

#[test]
fn help_lists_the_flags() {
    let out = run(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "-f",
        "-m",
        "-q",
        "-N",
        "-w",
        "-z",
        "-p",
        "-t",
        "-s",
        "-i",
        "-n",
        "-I",
        "-U",
        "-F",
        "-e",
        "--mtu",
        "--back",
        "--paris",
        "--json",
        "--pcap",
        "PACKET_LEN",
    ] {
        assert!(help.contains(flag), "--help lacks {flag}:\n{help}");
    }
}

#[test]
fn an_unresolvable_host_is_one_line_and_exit_2() {
    // In a namespace of our own with only `lo`: the resolver cannot reach any DNS server, so
    // nothing leaves this host whatever /etc/resolv.conf says.
    if !common::enter_netns(&common::current_test_name()) {
        return;
    }
    let out = run(&["-n", "nosuch.invalid"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("rawkit: nosuch.invalid: "), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_source_address_that_is_not_ours_is_refused() {
    if !common::enter_netns(&common::current_test_name()) {
        return;
    }
    assert_refused(&["-n", "-s", "198.18.9.9", "127.0.0.1"], "-s 198.18.9.9");
}

#[test]
fn loopback_is_one_hop_for_every_method_and_matches_the_linux_traceroute() {
    if !common::enter_netns(&common::current_test_name()) {
        return;
    }
    // Loopback never decrements the TTL: the destination answers the first probe.
    for flags in [
        &["-n"][..],
        &["-n", "-I"],
        &["-n", "-U"],
        &["-n", "--paris"],
    ] {
        let mut args = flags.to_vec();
        args.push("127.0.0.1");
        let out = run(&args);
        let stdout = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = stdout.lines().collect();
        assert_eq!(
            lines.first().copied(),
            Some("traceroute to 127.0.0.1 (127.0.0.1), 30 hops max, 60 byte packets"),
            "{stdout}"
        );
        assert_eq!(lines.len(), 2, "{flags:?}:\n{stdout}");
        let times: Vec<&str> = lines[1].split("  ").collect();
        assert_eq!(times[0], " 1", "{}", lines[1]);
        assert_eq!(times[1], "127.0.0.1", "{}", lines[1]);
        assert_eq!(times.len(), 5, "{}", lines[1]);
        assert!(
            times[2..].iter().all(|t| t.ends_with(" ms")),
            "{}",
            lines[1]
        );
        assert_eq!(out.status.code(), Some(0), "{flags:?}");
    }
    let Some(linux) = common::require_tool("traceroute") else {
        return;
    };
    let blank = |s: &str| -> Vec<String> {
        s.lines()
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
    };
    for flags in [&["-n"][..], &["-n", "-I"], &["-n", "-q", "5"]] {
        let mut args = flags.to_vec();
        args.push("127.0.0.1");
        let ours = run(&args);
        let theirs = Command::new(&linux)
            .args(&args)
            .env("LC_ALL", "C")
            .output()
            .expect("traceroute");
        assert_eq!(
            blank(&String::from_utf8_lossy(&ours.stdout)),
            blank(&String::from_utf8_lossy(&theirs.stdout)),
            "{flags:?}"
        );
    }
}

#[test]
fn without_cap_net_raw_it_says_what_is_needed() {
    if !rawkit::net::privilege::is_root() {
        common::skip(
            &common::current_test_name(),
            "needs root to run rawkit as another user",
        );
        return;
    }
    let Some(setpriv) = common::require_tool("setpriv") else {
        return;
    };
    // As nobody, without capabilities: refused before anything is sent (127.0.0.1 anyway).
    let out = Command::new(setpriv)
        .args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
        .args([RAWKIT, "traceroute", "-n", "127.0.0.1"])
        .output()
        .expect("setpriv");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("rawkit: traceroute needs CAP_NET_RAW"),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());
}

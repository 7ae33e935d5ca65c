//! Tier 2: the many-target `rawkit ping` command line, hermetic. Bad input (a malformed CIDR
//! block, a range that ends before it starts, a block over the limit without `--force`, a file
//! that cannot be read, options that only make sense for one target) is refused before any
//! socket is opened: exactly one line on stderr, `rawkit: ...`, naming what was wrong, nothing
//! on stdout, exit status 2.
//!
//! No privileges are needed and no packet is sent: every case fails validation, and every
//! target is in 127.0.0.0/8 or 198.18.0.0/15. With privileges each run still happens in a
//! private network namespace (so that a validation that failed to stop rawkit could only ever
//! reach a private `lo`), and each run is killed (by its PID) after a few seconds.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

/// Longest a refused command may take (it should take milliseconds).
const LIMIT: Duration = Duration::from_secs(5);

/// Moves the calling thread into a fresh network namespace with `lo` up when the privileges
/// allow it; these tests run either way.
fn isolate() -> bool {
    if !rawkit::net::privilege::has_cap_net_raw() {
        return false;
    }
    // SAFETY: `unshare` takes no pointers; CLONE_NEWNET affects only the calling thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return false;
    }
    common::set_link_up("lo").expect("bring lo up in the private namespace");
    true
}

/// Runs `rawkit ping ARGS`; kills it (by PID) if it runs past [`LIMIT`], which fails the test.
fn ping(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rawkit"));
    cmd.arg("ping").args(args);
    common::process::run_or_fail(
        cmd,
        LIMIT,
        &format!("rawkit ping {args:?} (validation should have stopped it)"),
    )
}

/// Asserts that `rawkit ping args` is refused with one line naming every one of `names`.
fn assert_refused(args: &[&str], names: &[&str]) {
    let out = ping(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!stderr.contains("panicked"), "{args:?} panicked:\n{stderr}");
    assert_eq!(
        out.status.code(),
        Some(2),
        "{args:?}: exit status (stderr: {stderr:?})"
    );
    assert_eq!(
        lines.len(),
        1,
        "{args:?}: one line on stderr, got {stderr:?}"
    );
    assert!(
        lines[0].starts_with("rawkit: "),
        "{args:?}: the line must start with `rawkit: `: {:?}",
        lines[0]
    );
    for name in names {
        assert!(
            lines[0].contains(name),
            "{args:?}: the message must name {name:?}: {:?}",
            lines[0]
        );
    }
    assert!(stdout.is_empty(), "{args:?}: nothing on stdout: {stdout:?}");
}

macro_rules! refused {
    ($($test:ident: [$($arg:expr),*] names [$($name:expr),*];)*) => {$(
        #[test]
        fn $test() {
            isolate();
            assert_refused(&[$($arg),*], &[$($name),*]);
        }
    )*};
}

refused! {
    cidr_prefix_above_32_is_refused:
        ["127.0.0.0/33"] names ["127.0.0.0/33", "malformed CIDR block", "0 to 32"];
    cidr_with_a_short_address_is_refused:
        ["127.0.0/8"] names ["127.0.0/8", "malformed CIDR block"];
    cidr_without_a_prefix_is_refused:
        ["127.0.0.1", "127.0.0.0/"] names ["127.0.0.0/", "prefix"];
    range_ending_before_it_starts_is_refused:
        ["127.0.0.9-127.0.0.1"] names ["127.0.0.9-127.0.0.1", "ends before it starts"];
    range_with_a_bad_end_is_refused:
        ["127.0.0.1-127.0.0.256"] names ["127.0.0.256", "malformed range"];
    block_over_the_limit_needs_force:
        ["-c", "1", "127.0.0.0/12"] names ["127.0.0.0/12", "1048574 targets", "131072", "--force"];
    targets_adding_up_over_the_limit_need_force:
        ["127.0.0.0/15", "127.2.0.0/24"] names ["add up to", "--force"];
    more_than_a_slash_8_is_refused_even_with_force:
        ["--force", "10.0.0.0/7"] names ["even with --force"];
    multicast_blocks_are_refused:
        ["224.0.0.0/28"] names ["224.0.0.0/28", "multicast"];
    unreadable_file_is_refused:
        ["--file", "/nonexistent/rawkit-targets"] names ["--file /nonexistent/rawkit-targets", "No such file"];
    file_that_is_a_directory_is_refused:
        ["--file", "/"] names ["--file /"];
    payload_too_small_for_the_sweep_is_refused:
        ["-s", "16", "127.0.0.1", "127.0.0.2"] names ["-s 16", "24"];
    flood_is_for_one_target:
        ["-f", "127.0.0.1", "127.0.0.2"] names ["-f", "one target", "--rate"];
    preload_is_for_one_target:
        ["-l", "2", "127.0.0.0/30"] names ["-l", "one target"];
    audible_is_for_one_target_and_fpings_a_is_alive:
        ["-a", "127.0.0.1", "127.0.0.2"] names ["-a", "--alive"];
    count_above_65535_per_target_is_refused:
        ["-c", "70000", "127.0.0.1", "127.0.0.2"] names ["-c 70000", "65535"];
    backoff_below_1_is_refused:
        ["--backoff", "0.5", "127.0.0.1"] names ["--backoff", "1 <= value <= 5"];
    retries_above_20_are_refused:
        ["--retries", "21", "127.0.0.1"] names ["--retries", "0 <= value <= 20"];
    zero_timeout_is_refused:
        ["-W", "0", "127.0.0.1", "127.0.0.2"] names ["-W 0"];
    alive_and_unreachable_together_are_refused:
        ["--alive", "--unreachable", "127.0.0.1"] names ["--alive", "--unreachable"];
}

#[test]
fn an_empty_file_is_refused() {
    isolate();
    let path = std::env::temp_dir().join(format!("rawkit-sweep-empty-{}", std::process::id()));
    std::fs::write(&path, "# nothing but a comment\n\n").unwrap();
    let p = path.to_string_lossy().into_owned();
    assert_refused(&["--file", &p], &["no targets"]);
    let _ = std::fs::remove_file(&path);
}

#[test]
fn fast_rates_are_refused_for_users() {
    // As root, run rawkit as nobody (leaving uid 0 empties the capability sets); otherwise the
    // test already runs without privileges, unless it has CAP_NET_RAW from elsewhere.
    // SAFETY: `getuid` has no preconditions and cannot fail.
    let root = unsafe { libc::getuid() } == 0;
    if !root && rawkit::net::privilege::has_cap_net_raw() {
        common::skip(
            "fast_rates_are_refused_for_users",
            "needs either root (to become nobody) or no CAP_NET_RAW",
        );
        return;
    }
    isolate();
    for (flags, names) in [
        (&["--rate", "5000"][..], &["--rate 5000", "CAP_NET_RAW"][..]),
        (&["--rate", "0"], &["--rate 0", "unlimited"]),
        (&["-c", "2", "-i", "0.001"], &["2 ms"]),
    ] {
        let mut args: Vec<&str> = vec!["ping"];
        args.extend_from_slice(flags);
        args.extend(["127.0.0.1", "127.0.0.2"]);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rawkit"));
        cmd.args(&args);
        if root {
            use std::os::unix::process::CommandExt;
            cmd.uid(65_534).gid(65_534);
        }
        let out = cmd.stdin(Stdio::null()).output().expect("run rawkit");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        for n in names {
            assert!(stderr.contains(n), "{args:?}: {stderr:?} must name {n:?}");
        }
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn help_says_which_fping_options_have_long_names() {
    let out = ping(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--file <FILE>",
        "--retries <N>",
        "--backoff <FACTOR>",
        "--alive",
        "--unreachable",
        "--rate <PPS>",
        "--force",
        "fping -f",
        "fping -r",
        "fping -B",
        "fping -a",
        "fping -u",
        "fping -i",
        "fping's -p",
        "fping's -t",
        "iputils meaning",
        "[HOST]...",
    ] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag:?}:\n{help}"
        );
    }
}

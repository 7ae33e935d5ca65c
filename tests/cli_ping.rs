//! Tier 2: `rawkit ping`'s command line, hermetic. Bad input is refused before any socket is
//! opened: exactly one line on stderr, `rawkit: ...`, naming what was wrong, nothing on stdout,
//! exit status 2 and never a panic. `--help` and `--version` exit 0.
//!
//! No privileges are needed and no packet is sent. Every target is 127.0.0.1 except the
//! unresolvable name, which is only looked up from a private network namespace (with only `lo`,
//! so no query can leave the host): the test thread's own when it may make one, else a user
//! and network namespace made for the rawkit child alone; when neither is possible that case
//! skips. With privileges every case runs in a private namespace anyway, so that a validation
//! that failed to stop rawkit could only ever reach a private `lo`; and each run is killed (by
//! its PID) after a few seconds, so even then nothing loops.

mod common;

use std::os::unix::process::CommandExt;
use std::process::{Command, Output};
use std::time::Duration;

/// Longest a refused command may take (it should take milliseconds).
const LIMIT: Duration = Duration::from_secs(5);

/// Moves the calling thread into a fresh network namespace with `lo` up, when the privileges
/// allow it; returns whether it did. Unlike [`common::enter_netns`], failing is not a skip:
/// these tests are hermetic and run either way.
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

/// Runs `rawkit` with `args`; kills it (by PID) if it runs past [`LIMIT`], which fails the test.
fn rawkit(args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rawkit"));
    cmd.args(args);
    run_bounded(cmd, args)
}

/// Runs `cmd` (which runs rawkit with `args`) to its end, at most [`LIMIT`].
fn run_bounded(cmd: Command, args: &[&str]) -> Output {
    common::process::run_or_fail(
        cmd,
        LIMIT,
        &format!("rawkit {args:?} (validation should have stopped it)"),
    )
}

/// Asserts that `rawkit args` is refused the way the CLI promises, with a message that holds
/// every one of `names` (what was wrong).
fn assert_refused(args: &[&str], names: &[&str]) {
    check_refusal(rawkit(args), args, names);
}

fn check_refusal(out: Output, args: &[&str], names: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(
        !stderr.contains("panicked"),
        "rawkit {args:?} panicked:\n{stderr}"
    );
    assert_eq!(
        out.status.code(),
        Some(2),
        "rawkit {args:?}: exit status (stderr: {stderr:?})"
    );
    assert_eq!(
        lines.len(),
        1,
        "rawkit {args:?}: stderr must be exactly one line, got {stderr:?}"
    );
    assert!(
        lines[0].starts_with("rawkit: "),
        "rawkit {args:?}: the line must start with `rawkit: `: {:?}",
        lines[0]
    );
    assert!(
        stderr.ends_with('\n'),
        "rawkit {args:?}: the line must end in a newline: {stderr:?}"
    );
    for name in names {
        assert!(
            lines[0].contains(name),
            "rawkit {args:?}: the message must name {name:?}: {:?}",
            lines[0]
        );
    }
    assert!(
        stdout.is_empty(),
        "rawkit {args:?}: nothing may reach stdout before the input is accepted: {stdout:?}"
    );
}

/// Like [`assert_refused`], for `rawkit` run by `cmd`.
fn assert_refused_cmd(cmd: Command, args: &[&str], names: &[&str]) {
    check_refusal(run_bounded(cmd, args), args, names);
}

/// `ping ARGS... 127.0.0.1` is refused, naming `names`.
fn refused_against_localhost(args: &[&str], names: &[&str]) {
    isolate();
    let mut full = vec!["ping"];
    full.extend_from_slice(args);
    full.push("127.0.0.1");
    assert_refused(&full, names);
}

macro_rules! refused {
    ($($test:ident: [$($arg:expr),*] names [$($name:expr),*];)*) => {$(
        #[test]
        fn $test() {
            refused_against_localhost(&[$($arg),*], &[$($name),*]);
        }
    )*};
}

refused! {
    size_above_the_ipv4_maximum_is_refused: ["-s", "70000"] names ["-s", "70000"];
    negative_size_is_refused: ["-s", "-1"] names ["-s", "-1"];
    ttl_zero_is_refused: ["-t", "0"] names ["-t", "'0'"];
    ttl_256_is_refused: ["-t", "256"] names ["-t", "256"];
    ttl_300_is_refused: ["-t", "300"] names ["-t", "300"];
    negative_interval_is_refused: ["-i", "-1"] names ["-i", "-1"];
    interval_that_is_not_a_number_is_refused: ["-i", "abc"] names ["-i", "abc"];
    count_zero_is_refused: ["-c", "0"] names ["-c", "'0'"];
    negative_count_is_refused: ["-c", "-3"] names ["-c", "-3"];
    negative_timeout_is_refused: ["-W", "-1"] names ["-W", "-1"];
    negative_deadline_is_refused: ["-w", "-1"] names ["-w", "-1"];
    preload_zero_is_refused: ["-l", "0"] names ["-l", "'0'"];
    tos_above_a_byte_is_refused: ["-Q", "256"] names ["-Q", "256"];
    unknown_pmtu_mode_is_refused: ["-M", "maybe"] names ["-M", "maybe"];
    identifier_above_16_bits_is_refused: ["-e", "70000"] names ["-e", "70000"];
    unknown_interface_is_refused: ["-I", "nosuch0"] names ["nosuch0"];
    source_address_that_is_not_local_is_refused: ["-I", "198.18.9.9"] names ["198.18.9.9"];
    pattern_that_is_not_hex_is_refused: ["-p", "xyz"] names ["-p", "xyz"];
    pattern_of_17_bytes_is_refused:
        ["-p", "0102030405060708090a0b0c0d0e0f1011"] names ["-p", "16 bytes"];
    unknown_flag_is_refused: ["-Z"] names ["-Z"];
    raw_and_dgram_together_are_refused: ["--raw", "--dgram"] names ["--raw", "--dgram"];
}

#[test]
fn missing_host_is_refused() {
    isolate();
    assert_refused(&["ping"], &["HOST"]);
    assert_refused(&["ping", "-c", "1"], &["HOST"]);
}

/// For `pre_exec`: moves the child, before it runs rawkit, into a new user namespace (which
/// any user may create where the kernel allows it) and a new network namespace owned by it.
fn enter_user_and_net_namespace() -> std::io::Result<()> {
    // SAFETY: `unshare` takes no pointers; one system call, async-signal-safe after fork.
    if unsafe { libc::unshare(libc::CLONE_NEWUSER | libc::CLONE_NEWNET) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

#[test]
fn unresolvable_host_is_refused_naming_it() {
    // A name lookup could leave the host: only from a private namespace, where it cannot (the
    // resolver's server is unreachable from a namespace with only `lo`).
    let args = ["ping", "-c", "1", "-i", "0.05", "nosuch.invalid"];
    if isolate() {
        assert_refused(&args, &["nosuch.invalid"]);
        return;
    }
    // Without privileges: rawkit alone in a new user and network namespace.
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rawkit"));
    cmd.args(args);
    // SAFETY: the hook runs in the forked child before exec and makes one system call,
    // which is async-signal-safe; it touches no memory of the parent.
    unsafe {
        cmd.pre_exec(enter_user_and_net_namespace);
    }
    // Probe first: a spawn error here means user namespaces are not available.
    let mut probe = Command::new("/bin/true");
    // SAFETY: as above.
    unsafe {
        probe.pre_exec(enter_user_and_net_namespace);
    }
    if let Err(e) = probe.status() {
        common::skip(
            "unresolvable_host_is_refused_naming_it",
            &format!("looking up a name is only safe from a private network namespace: {e}"),
        );
        return;
    }
    assert_refused_cmd(cmd, &args, &["nosuch.invalid"]);
}

#[test]
fn help_lists_the_flags_and_points_to_capabilities_md() {
    let out = rawkit(&["ping", "--help"]);
    assert_eq!(out.status.code(), Some(0), "--help exit status");
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(!String::from_utf8_lossy(&out.stderr).contains("panicked"));
    for flag in [
        "-c <COUNT>",
        "-i <INTERVAL>",
        "-W <TIMEOUT>",
        "-w <DEADLINE>",
        "-s <SIZE>",
        "-t <TTL>",
        "-Q <TOS>",
        "-p <PATTERN>",
        "-l <PRELOAD>",
        "-I <INTERFACE>",
        "-M <PMTUDISC>",
        "-e <IDENT>",
        "-f",
        "-q",
        "-n",
        "-D",
        "-O",
        "-a",
        "-v",
        "--json",
        "--pcap",
        "--raw",
        "--dgram",
    ] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
    assert!(
        help.contains("capabilities.md"),
        "--help must point to capabilities.md:\n{help}"
    );
}

#[test]
fn version_exits_0_and_names_the_version() {
    let out = rawkit(&["--version"]);
    assert_eq!(out.status.code(), Some(0), "--version exit status");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        text.trim(),
        format!("rawkit {}", env!("CARGO_PKG_VERSION")),
        "--version output"
    );
}

#[test]
fn intervals_and_preloads_reserved_to_privilege_are_refused_for_users() {
    // As root, run rawkit as nobody (leaving uid 0 empties the capability sets); otherwise
    // the test already runs without privileges, unless it has CAP_NET_RAW from elsewhere.
    // SAFETY: `getuid` has no preconditions and cannot fail.
    let root = unsafe { libc::getuid() } == 0;
    if !root && rawkit::net::privilege::has_cap_net_raw() {
        common::skip(
            "intervals_and_preloads_reserved_to_privilege_are_refused_for_users",
            "needs either root (to become nobody) or no CAP_NET_RAW",
        );
        return;
    }
    isolate();
    let cases: [(&[&str], &[&str]); 4] = [
        (&["-i", "0.001"], &["2 ms", "-i 0.002"]),
        (&["-i", "0"], &["2 ms"]),
        (&["-f"], &["2 ms"]),
        (&["-l", "4"], &["preload", "3"]),
    ];
    for (flags, names) in cases {
        let mut args = vec!["ping", "-c", "1"];
        args.extend_from_slice(flags);
        args.push("127.0.0.1");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rawkit"));
        cmd.args(&args);
        if root {
            cmd.uid(65_534).gid(65_534);
        }
        assert_refused_cmd(cmd, &args, names);
    }
}

//! Tier 3: `rawkit ping` end to end on loopback. Each test moves its thread into a private
//! network namespace ([`common::enter_netns`]) and runs the real binary there against
//! 127.0.0.1, so nothing reaches the host's network and the tests do not see each other.
//!
//! What is proven: the probes on the wire carry every field the flags ask for (read by
//! etherparse from a capture on `lo`, never by rawkit's parser) and the kernel answers each; the
//! text output is iputils ping's, line for line (the same patterns match iputils' own output,
//! and for several flags the two outputs have the same shape once digits are blanked); `-O`,
//! SIGINT, SIGQUIT, deadlines and exit codes behave as iputils; concurrent pings, even with the
//! same identifier, each see only their own replies; capabilities are gone while the run goes
//! on; an unprivileged user pings through the ICMP datagram socket when `ping_group_range`
//! allows it, and gets one clear line when it does not; `--json` and `--pcap` produce what
//! other programs can read. With nftables in the namespace: duplicates, ICMP errors quoting
//! the probes, and sends the local firewall refuses are shown and counted as iputils does;
//! `-l` bursts report their pipe; oversized probes are fragmented or refused as `-M` says.
//!
//! iputils ping, where installed, is run with the same arguments in the same namespace: its
//! output must fit the same patterns, and rawkit's must have the same shape (digits blanked).
//!
//! Every run is bounded: a count or a deadline, small intervals, and a time limit after which
//! the child is killed by its PID.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::Ipv4Addr;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use etherparse::{Icmpv4Slice, Icmpv4Type, IpNumber, Ipv4Slice};

const RAWKIT: &str = env!("CARGO_BIN_EXE_rawkit");
/// Longest any single run may take before it is killed and the test fails.
const LIMIT: Duration = Duration::from_secs(15);
/// Longest to wait for packets or lines that should come within milliseconds.
const WAIT: Duration = Duration::from_secs(5);
/// The user and group "nobody", for the unprivileged runs.
const NOBODY: u32 = 65_534;

// ---------------------------------------------------------------------------------------------
// Running programs

/// What a finished run printed and how it ended.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }
}

/// A running program whose stdout lines are read as they come. Killed (by its PID) when
/// dropped unfinished, so a failing test leaves nothing running.
struct Live {
    what: String,
    child: Child,
    reaped: bool,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    stderr: Option<JoinHandle<String>>,
}

impl Live {
    fn spawn(program: &str, args: &[&str]) -> Live {
        Live::spawn_cmd(Command::new(program).args(args))
    }

    fn rawkit(args: &[&str]) -> Live {
        let mut full = vec!["ping"];
        full.extend_from_slice(args);
        Live::spawn(RAWKIT, &full)
    }

    fn spawn_cmd(cmd: &mut Command) -> Live {
        let what = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let mut stderr = child.stderr.take().expect("stderr");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).into_owned();
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let stderr = thread::spawn(move || {
            let mut v = Vec::new();
            let _ = stderr.read_to_end(&mut v);
            String::from_utf8_lossy(&v).into_owned()
        });
        Live {
            what,
            child,
            reaped: false,
            lines,
            seen: Vec::new(),
            stderr: Some(stderr),
        }
    }

    fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    fn signal(&self, sig: libc::c_int) {
        assert!(!self.reaped, "{} already ended", self.what);
        // SAFETY: `kill` takes no pointers; the PID is our own child, not yet reaped, so it
        // cannot have been reused by another process.
        let rc = unsafe { libc::kill(self.pid(), sig) };
        assert_eq!(rc, 0, "kill({}, {sig})", self.pid());
    }

    fn drain(&mut self) {
        while let Ok(line) = self.lines.try_recv() {
            self.seen.push(line);
        }
    }

    /// Waits until `pred` holds for the stdout lines (with their newlines) printed so far.
    fn wait_for_lines(&mut self, pred: impl Fn(&[String]) -> bool, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            self.drain();
            if pred(&self.seen) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.lines.recv_timeout(left.min(Duration::from_millis(20))) {
                Ok(line) => self.seen.push(line),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    self.drain();
                    return pred(&self.seen);
                }
            }
        }
    }

    /// Waits for the program to end (killing it and failing after `limit`).
    fn finish(mut self, limit: Duration) -> Run {
        let started = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                break s;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.reaped = true;
                panic!("{} was still running after {limit:?}", self.what);
            }
            thread::sleep(Duration::from_millis(5));
        };
        self.reaped = true;
        // The stdout reader ends at EOF, which follows the exit.
        while let Ok(line) = self.lines.recv_timeout(WAIT) {
            self.seen.push(line);
        }
        let stderr = self.stderr.take().map(|h| h.join().unwrap_or_default());
        Run {
            code: status.code(),
            stdout: self.seen.concat(),
            stderr: stderr.unwrap_or_default(),
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The words of `line`, for argument lists: `argv("-c 3 -i 0.05 127.0.0.1")`.
fn argv(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

/// Runs `rawkit ping ARGS` to the end.
fn rawkit_ping(args: &[&str]) -> Run {
    Live::rawkit(args).finish(LIMIT)
}

/// Runs iputils `ping` (at `path`) to the end.
fn iputils_ping(path: &std::path::Path, args: &[&str]) -> Run {
    Live::spawn(path.to_str().expect("utf-8 path"), args).finish(LIMIT)
}

// ---------------------------------------------------------------------------------------------
// Matching lines

/// True when `text` matches `pattern` as a whole. `{d}` stands for `\d+`, `{f3}` for
/// `\d+\.\d{3}`, `{f6}` for `\d+\.\d{6}`, `{g}` for a `%g` percentage `\d+(\.\d+)?`, and
/// `{rtt}` for a reply time as iputils prints it:
/// `0.\d{3}` below 1 ms, then `\d\.\d{2}`, `\d{2}\.\d`, and `\d{3,}` from 100 ms (on an idle
/// loopback always the first form, `\d+\.\d{3}`; under load the others show up). Every other
/// character is itself. So the pattern `64 bytes from 127.0.0.1: icmp_seq={d} ttl=64` is the
/// regex `^64 bytes from 127\.0\.0\.1: icmp_seq=\d+ ttl=64$`.
fn matches(pattern: &str, text: &str) -> bool {
    fn digits(t: &str) -> usize {
        t.bytes().take_while(u8::is_ascii_digit).count()
    }
    fn fraction(t: &str, places: usize) -> Option<usize> {
        let int = digits(t);
        let rest = t[int..].strip_prefix('.')?;
        (int > 0 && digits(rest) == places).then_some(int + 1 + places)
    }
    // printf's `%g` of a loss percentage: `20`, `14.2857`.
    fn percent(t: &str) -> Option<usize> {
        let int = digits(t);
        let frac = t[int..].strip_prefix('.').map_or(0, |r| match digits(r) {
            0 => 0,
            n => n + 1,
        });
        (int > 0).then_some(int + frac)
    }
    // iputils' reply time: 3 decimals below 1 ms, 2 below 10, 1 below 100, none above.
    fn reply_time(t: &str) -> Option<usize> {
        let int = digits(t);
        let whole: u64 = t[..int].parse().ok()?;
        let places = match whole {
            0 => 3,
            1..=9 => 2,
            10..=99 => 1,
            _ => return Some(int),
        };
        fraction(t, places)
    }
    let (mut p, mut t) = (pattern, text);
    loop {
        if p.is_empty() {
            return t.is_empty();
        }
        let (taken, rest) = if let Some(rest) = p.strip_prefix("{d}") {
            (Some(digits(t)).filter(|n| *n > 0), rest)
        } else if let Some(rest) = p.strip_prefix("{f3}") {
            (fraction(t, 3), rest)
        } else if let Some(rest) = p.strip_prefix("{f6}") {
            (fraction(t, 6), rest)
        } else if let Some(rest) = p.strip_prefix("{g}") {
            (percent(t), rest)
        } else if let Some(rest) = p.strip_prefix("{rtt}") {
            (reply_time(t), rest)
        } else {
            let c = p.chars().next().expect("non-empty");
            (t.starts_with(c).then_some(c.len_utf8()), &p[c.len_utf8()..])
        };
        match taken {
            Some(n) => {
                t = &t[n..];
                p = rest;
            }
            None => return false,
        }
    }
}

#[test]
fn line_patterns_match_what_they_say_and_nothing_else() {
    // Needs no namespace: it checks the checker.
    assert!(matches(
        REPLY_64,
        "64 bytes from 127.0.0.1: icmp_seq=12 ttl=64 time=0.038 ms"
    ));
    for time in ["0.999", "1.00", "9.99", "10.0", "99.9", "100", "1234"] {
        let line = format!("64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time={time} ms");
        assert!(matches(REPLY_64, &line), "{line}");
    }
    for time in [
        "0.04", "0.0381", "1.000", "5.5", "10.00", "100.0", ".5", "1",
    ] {
        let line = format!("64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time={time} ms");
        assert!(!matches(REPLY_64, &line), "{line}");
    }
    assert!(!matches(
        REPLY_64,
        "64 bytes from 127.0.0.1: icmp_seq= ttl=64 time=0.038 ms"
    ));
    assert!(!matches(
        REPLY_64,
        "64 bytes from 127.0.0.1: icmp_seq=1 ttl=64 time=0.038 ms "
    ));
    assert!(matches(
        RTT_LINE,
        "rtt min/avg/max/mdev = 0.013/0.030/12.042/0.012 ms"
    ));
    assert!(!matches(
        RTT_LINE,
        "rtt min/avg/max/mdev = 0.013/0.030/0.04/0.012 ms"
    ));
    assert!(matches("{g}% loss", "14.2857% loss") && matches("{g}% loss", "20% loss"));
    assert!(!matches("{g}% loss", ".5% loss") && !matches("{g}% loss", "5.% loss"));
    assert!(matches("[{f6}] x", "[1795758592.662020] x"));
    assert!(!matches("[{f6}] x", "[1795758592.66202] x"));
    assert_eq!(
        shape("64 bytes: time=123 ms\nrtt = 0.013/1.5 ms"),
        ["# bytes: time=#.# ms", "rtt = #.#/#.# ms"]
    );
}

fn assert_matches(pattern: &str, line: &str, context: &str) {
    assert!(
        matches(pattern, line),
        "{context}: line {line:?} does not match {pattern:?}"
    );
}

/// The output with every run of digits replaced by `#`: two runs that differ only in numbers
/// (times, sequence numbers, RTTs) have the same shape. A reply time of 100 ms or more has no
/// decimals (`time=123 ms`); it is given the shape of the others.
fn shape(text: &str) -> Vec<String> {
    text.lines()
        .map(|line| {
            let mut out = String::new();
            let mut in_digits = false;
            for c in line.chars() {
                if c.is_ascii_digit() {
                    if !in_digits {
                        out.push('#');
                    }
                    in_digits = true;
                } else {
                    out.push(c);
                    in_digits = false;
                }
            }
            out.replace("time=# ms", "time=#.# ms")
        })
        .collect()
}

const HEADER_56: &str = "PING 127.0.0.1 (127.0.0.1) 56(84) bytes of data.";
const REPLY_64: &str = "64 bytes from 127.0.0.1: icmp_seq={d} ttl=64 time={rtt} ms";
const STATS_TITLE: &str = "--- 127.0.0.1 ping statistics ---";
const RTT_LINE: &str = "rtt min/avg/max/mdev = {f3}/{f3}/{f3}/{f3} ms";

/// The `icmp_seq=` of a reply line.
fn icmp_seq(line: &str) -> Option<u16> {
    let rest = line.split("icmp_seq=").nth(1)?;
    rest.split(' ').next()?.parse().ok()
}

/// `(transmitted, received)` from the statistics line.
fn stats_counts(stdout: &str) -> (u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.contains(" packets transmitted, "))
        .unwrap_or_else(|| panic!("no statistics line in {stdout:?}"));
    let mut words = line.split(' ');
    let transmitted = words.next().and_then(|w| w.parse().ok());
    let received = line
        .split(", ")
        .nth(1)
        .and_then(|w| w.strip_suffix(" received"))
        .and_then(|w| w.parse().ok());
    match (transmitted, received) {
        (Some(t), Some(r)) => (t, r),
        _ => panic!("unreadable statistics line {line:?}"),
    }
}

/// Checks the whole output of a `-c 3` run to 127.0.0.1 with default size against the
/// iputils patterns: header, three replies (sequences 1, 2, 3), blank, title, counts, rtt.
fn assert_three_reply_output(run: &Run, who: &str) {
    let lines = run.lines();
    assert_eq!(
        lines.len(),
        8,
        "{who}: eight lines expected:\n{}",
        run.stdout
    );
    assert_eq!(lines[0], HEADER_56, "{who}: header");
    for (i, line) in lines[1..4].iter().enumerate() {
        assert_matches(REPLY_64, line, who);
        assert_eq!(icmp_seq(line), Some(i as u16 + 1), "{who}: sequence order");
    }
    assert_eq!(lines[4], "", "{who}: blank line before the statistics");
    assert_eq!(lines[5], STATS_TITLE, "{who}");
    assert_matches(
        "3 packets transmitted, 3 received, 0% packet loss, time {d}ms",
        lines[6],
        who,
    );
    assert_matches(RTT_LINE, lines[7], who);
    assert!(
        run.stdout.ends_with("ms\n"),
        "{who}: output ends with the rtt line"
    );
    assert_eq!(
        run.code,
        Some(0),
        "{who}: exit status; stderr {:?}",
        run.stderr
    );
}

// ---------------------------------------------------------------------------------------------
// Reading captured packets with etherparse

/// An ICMP echo request or reply as etherparse reads it from a captured datagram.
#[derive(Debug, Clone)]
struct Echo {
    request: bool,
    id: u16,
    seq: u16,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    dscp: u8,
    ecn: u8,
    dont_fragment: bool,
    total_len: u16,
    ip_checksum_ok: bool,
    icmp_checksum_ok: bool,
    icmp_len: usize,
    data: Vec<u8>,
}

fn parse_echo(datagram: &[u8]) -> Option<Echo> {
    let ip = Ipv4Slice::from_slice(datagram).ok()?;
    if ip.payload_ip_number() != IpNumber::ICMP || ip.is_payload_fragmented() {
        return None;
    }
    let h = ip.header();
    let hdr = h.to_header();
    let icmp = Icmpv4Slice::from_slice(ip.payload().payload).ok()?;
    let (request, e) = match icmp.icmp_type() {
        Icmpv4Type::EchoRequest(e) => (true, e),
        Icmpv4Type::EchoReply(e) => (false, e),
        _ => return None,
    };
    Some(Echo {
        request,
        id: e.id,
        seq: e.seq,
        src: h.source_addr(),
        dst: h.destination_addr(),
        ttl: h.ttl(),
        dscp: h.dcp().value(),
        ecn: h.ecn().value(),
        dont_fragment: h.dont_fragment(),
        total_len: h.total_len(),
        ip_checksum_ok: hdr.calc_header_checksum() == hdr.header_checksum,
        icmp_checksum_ok: icmp.header().icmp_type.calc_checksum(icmp.payload()) == icmp.checksum(),
        icmp_len: icmp.slice().len(),
        data: icmp.payload().to_vec(),
    })
}

/// The echo messages with identifier `id` among the datagrams, requests or replies.
fn echoes(datagrams: &[Vec<u8>], id: u16, request: bool) -> Vec<Echo> {
    datagrams
        .iter()
        .filter_map(|d| parse_echo(d))
        .filter(|e| e.id == id && e.request == request)
        .collect()
}

/// Runs `rawkit ping ARGS` (whose `-e` is `id`) with a capture on `lo`; returns the run and
/// the requests and replies with that identifier, once `replies` replies were seen.
fn run_captured(args: &[&str], id: u16, replies: usize) -> (Run, Vec<Echo>, Vec<Echo>) {
    let sniffer = common::Sniffer::start("lo");
    let run = rawkit_ping(args);
    let complete = sniffer.wait_for(|ds| echoes(ds, id, false).len() >= replies, WAIT);
    let (seen, _) = sniffer.stop();
    let datagrams: Vec<Vec<u8>> = seen.into_iter().map(|s| s.datagram).collect();
    let requests = echoes(&datagrams, id, true);
    let answers = echoes(&datagrams, id, false);
    assert!(
        complete,
        "rawkit {args:?}: {} requests and {} replies captured, {replies} replies expected; \
         run {run:?}",
        requests.len(),
        answers.len()
    );
    (run, requests, answers)
}

// ---------------------------------------------------------------------------------------------
// The packets on the wire

#[test]
fn probes_on_the_wire_carry_every_requested_field_and_the_kernel_answers_each() {
    if !common::enter_netns(
        "probes_on_the_wire_carry_every_requested_field_and_the_kernel_answers_each",
    ) {
        return;
    }
    let args = argv("-c 3 -i 0.05 -t 7 -Q 0xb8 -M do -e 4660 -s 100 -p a5b6 127.0.0.1");
    let (run, requests, replies) = run_captured(&args, 4660, 3);
    assert_eq!(run.code, Some(0), "exit status: {run:?}");
    let pattern = [0xa5u8, 0xb6];

    assert_eq!(requests.len(), 3, "exactly three requests: {requests:?}");
    for (i, r) in requests.iter().enumerate() {
        let what = format!("request {}", i + 1);
        assert_eq!(r.seq, i as u16 + 1, "{what}: sequence");
        assert_eq!(r.id, 4660, "{what}: identifier");
        assert_eq!(
            (r.src, r.dst),
            (Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST),
            "{what}: addresses"
        );
        assert_eq!(r.ttl, 7, "{what}: -t 7");
        assert_eq!(
            (r.dscp, r.ecn),
            (46, 0),
            "{what}: -Q 0xb8 is DSCP 46 (EF), ECN 0"
        );
        assert!(r.dont_fragment, "{what}: -M do sets DF");
        assert_eq!(r.total_len, 20 + 8 + 100, "{what}: total length");
        assert_eq!(r.icmp_len, 8 + 100, "{what}: ICMP length");
        assert_eq!(r.data.len(), 100, "{what}: -s 100");
        // Bytes 0..16 are the timestamp and cookie; the rest is the pattern, in the phase of
        // the whole payload (byte i is pattern[i % 2]), as iputils fills it.
        for (j, b) in r.data.iter().enumerate().skip(16) {
            assert_eq!(*b, pattern[j % 2], "{what}: payload byte {j}");
        }
        assert!(r.ip_checksum_ok, "{what}: IPv4 header checksum");
        assert!(r.icmp_checksum_ok, "{what}: ICMP checksum");
    }
    // The cookie (bytes 8..16) is the same in every probe of the run; the stamps grow.
    assert!(
        requests
            .windows(2)
            .all(|w| w[0].data[8..16] == w[1].data[8..16])
    );
    assert!(requests.windows(2).all(|w| w[0].data[..8] < w[1].data[..8]));

    assert_eq!(replies.len(), 3, "one reply per request: {replies:?}");
    for (reply, request) in replies.iter().zip(&requests) {
        assert_eq!(reply.seq, request.seq, "replies in order");
        assert_eq!(reply.src, Ipv4Addr::LOCALHOST);
        assert_eq!(reply.data, request.data, "the kernel echoes the payload");
        assert!(
            reply.ip_checksum_ok && reply.icmp_checksum_ok,
            "reply checksums"
        );
    }

    // And rawkit printed them as iputils would, with the pattern line first.
    let lines = run.lines();
    assert_eq!(lines[0], "PATTERN: 0xa5b6");
    assert_eq!(
        lines[1],
        "PING 127.0.0.1 (127.0.0.1) 100(128) bytes of data."
    );
    for line in &lines[2..5] {
        assert_matches(
            "108 bytes from 127.0.0.1: icmp_seq={d} ttl=64 time={rtt} ms",
            line,
            "reply line",
        );
    }
    assert!(!run.stdout.contains("wrong data byte"), "{}", run.stdout);
}

#[test]
fn dont_fragment_is_clear_with_m_dont_and_set_by_default() {
    if !common::enter_netns("dont_fragment_is_clear_with_m_dont_and_set_by_default") {
        return;
    }
    let (run, requests, _) = run_captured(&argv("-c 2 -i 0.05 -M dont -e 1111 127.0.0.1"), 1111, 2);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(requests.len(), 2);
    assert!(
        requests.iter().all(|r| !r.dont_fragment),
        "-M dont: DF clear"
    );

    let (run, requests, _) = run_captured(&argv("-c 2 -i 0.05 -e 2222 127.0.0.1"), 2222, 2);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(requests.len(), 2);
    assert!(
        requests.iter().all(|r| r.dont_fragment),
        "no -M: DF set, as iputils' default (want) on a raw socket"
    );
}

#[test]
fn size_zero_sends_bare_8_byte_echoes_and_prints_no_times() {
    if !common::enter_netns("size_zero_sends_bare_8_byte_echoes_and_prints_no_times") {
        return;
    }
    let (run, requests, replies) =
        run_captured(&argv("-c 2 -i 0.05 -s 0 -e 3333 127.0.0.1"), 3333, 2);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(requests.len(), 2);
    for e in requests.iter().chain(&replies) {
        assert_eq!(
            (e.icmp_len, e.total_len),
            (8, 28),
            "an ICMP header alone: {e:?}"
        );
        assert!(e.icmp_checksum_ok && e.ip_checksum_ok);
    }
    let lines = run.lines();
    assert_eq!(lines[0], "PING 127.0.0.1 (127.0.0.1) 0(28) bytes of data.");
    for line in &lines[1..3] {
        assert_matches("8 bytes from 127.0.0.1: icmp_seq={d} ttl=64", line, "-s 0");
    }
    assert_eq!(&lines[3..5], ["", STATS_TITLE]);
    assert_matches(
        "2 packets transmitted, 2 received, 0% packet loss, time {d}ms",
        lines[5],
        "-s 0",
    );
    // No timing: iputils prints an empty line where the rtt line would be.
    assert_eq!(lines.len(), 7, "{}", run.stdout);
    assert_eq!(lines[6], "");
}

// ---------------------------------------------------------------------------------------------
// The text output, against iputils

#[test]
fn text_output_is_iputils_line_for_line() {
    if !common::enter_netns("text_output_is_iputils_line_for_line") {
        return;
    }
    let run = rawkit_ping(&argv("-c 3 -i 0.05 127.0.0.1"));
    assert_three_reply_output(&run, "rawkit");
    assert_eq!(run.stderr, "", "nothing on stderr");

    // The flags that change the lines, rawkit alone.
    let run = rawkit_ping(&argv("-c 2 -i 0.05 -s 8 127.0.0.1"));
    let lines = run.lines();
    assert_eq!(lines[0], "PING 127.0.0.1 (127.0.0.1) 8(36) bytes of data.");
    for line in &lines[1..3] {
        assert_matches("16 bytes from 127.0.0.1: icmp_seq={d} ttl=64", line, "-s 8");
    }
    assert_eq!(lines.last(), Some(&""), "-s 8: no rtt line, an empty one");

    let run = rawkit_ping(&argv("-c 2 -i 0.05 -q 127.0.0.1"));
    let lines = run.lines();
    assert_eq!(
        lines.len(),
        5,
        "-q: header and statistics only:\n{}",
        run.stdout
    );
    assert_eq!(&lines[..3], [HEADER_56, "", STATS_TITLE]);
    assert_matches(RTT_LINE, lines[4], "-q");

    let run = rawkit_ping(&argv("-c 2 -i 0.05 -D 127.0.0.1"));
    for line in &run.lines()[1..3] {
        assert_matches(&format!("[{{f6}}] {REPLY_64}"), line, "-D");
    }

    // The same patterns describe iputils ping, and its output has the same shape for each
    // of these flags.
    let Some(ping) = common::require_tool("ping") else {
        return;
    };
    let theirs = iputils_ping(&ping, &argv("-c 3 -i 0.05 127.0.0.1"));
    assert_three_reply_output(&theirs, "iputils ping");
    for flags in [
        &[][..],
        &["-s", "8"],
        &["-s", "0"],
        &["-s", "15"],
        &["-q"],
        &["-D"],
        &["-n"],
        &["-a"],
        &["-p", "a5b6"],
        &["-p", "abc"],
        &argv("-t 7 -Q 0xb8"),
    ] {
        let mut args = argv("-c 2 -i 0.05");
        args.extend_from_slice(flags);
        args.push("127.0.0.1");
        let ours = rawkit_ping(&args);
        let theirs = iputils_ping(&ping, &args);
        assert_eq!(
            shape(&ours.stdout),
            shape(&theirs.stdout),
            "{args:?}: rawkit's lines differ from iputils'\nrawkit:\n{}\niputils:\n{}",
            ours.stdout,
            theirs.stdout
        );
        assert_eq!(ours.code, theirs.code, "{args:?}: exit status");
    }
}

#[test]
fn outstanding_probes_are_reported_and_no_answer_exits_1() {
    if !common::enter_netns("outstanding_probes_are_reported_and_no_answer_exits_1") {
        return;
    }
    // This namespace's kernel stops answering pings (a per-namespace sysctl).
    common::write_sysctl("net.ipv4.icmp_echo_ignore_all", "1").expect("icmp_echo_ignore_all");
    let args = argv("-O -c 3 -i 0.05 -W 0.2 127.0.0.1");
    let run = rawkit_ping(&args);
    let lines = run.lines();
    assert_eq!(
        lines,
        [
            HEADER_56,
            "no answer yet for icmp_seq=1",
            "no answer yet for icmp_seq=2",
            "",
            STATS_TITLE,
            lines.get(5).copied().unwrap_or("<missing>"),
            "",
        ],
        "-O output:\n{}",
        run.stdout
    );
    assert_matches(
        "3 packets transmitted, 0 received, 100% packet loss, time {d}ms",
        lines[5],
        "-O",
    );
    assert!(
        run.stdout.ends_with("ms\n\n"),
        "an empty line follows the counts"
    );
    assert_eq!(run.code, Some(1), "nothing answered: exit 1 ({run:?})");

    let quiet = rawkit_ping(&argv("-c 2 -i 0.05 -W 0.2 127.0.0.1"));
    assert!(!quiet.stdout.contains("no answer yet"), "only with -O");
    assert_eq!(quiet.code, Some(1), "nothing answered: exit 1 ({quiet:?})");

    if let Some(ping) = common::require_tool("ping") {
        let theirs = iputils_ping(&ping, &args);
        assert_eq!(
            shape(&run.stdout),
            shape(&theirs.stdout),
            "-O: rawkit:\n{}\niputils:\n{}",
            run.stdout,
            theirs.stdout
        );
        assert_eq!(theirs.code, Some(1));
    }
}

// ---------------------------------------------------------------------------------------------
// Signals, deadlines, exit codes

fn reply_lines(lines: &[String]) -> usize {
    lines.iter().filter(|l| l.contains(" bytes from ")).count()
}

#[test]
fn sigint_prints_the_statistics_and_exits_0() {
    if !common::enter_netns("sigint_prints_the_statistics_and_exits_0") {
        return;
    }
    let mut live = Live::rawkit(&["-i", "0.05", "127.0.0.1"]);
    assert!(
        live.wait_for_lines(|l| reply_lines(l) >= 5, WAIT),
        "five replies expected, got {:?}",
        live.seen
    );
    live.signal(libc::SIGINT);
    let run = live.finish(WAIT);
    assert_eq!(
        run.code,
        Some(0),
        "exit status after SIGINT with replies: {run:?}"
    );
    let lines = run.lines();
    let title = lines
        .iter()
        .position(|l| *l == STATS_TITLE)
        .unwrap_or_else(|| panic!("no statistics after SIGINT:\n{}", run.stdout));
    assert_eq!(lines[title - 1], "", "blank line before the statistics");
    assert_eq!(
        lines.len(),
        title + 3,
        "title, counts, rtt:\n{}",
        run.stdout
    );
    assert_matches(
        "{d} packets transmitted, {d} received, {g}% packet loss, time {d}ms",
        lines[title + 1],
        "SIGINT",
    );
    assert_matches(RTT_LINE, lines[title + 2], "SIGINT");
    let (transmitted, received) = stats_counts(&run.stdout);
    assert!(transmitted >= 5, "transmitted {transmitted}");
    assert!(
        received >= 5 && received <= transmitted,
        "received {received}"
    );
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[test]
fn sigquit_prints_a_status_line_and_the_run_goes_on() {
    if !common::enter_netns("sigquit_prints_a_status_line_and_the_run_goes_on") {
        return;
    }
    let mut live = Live::rawkit(&argv("-c 20 -i 0.05 127.0.0.1"));
    assert!(
        live.wait_for_lines(|l| reply_lines(l) >= 5, WAIT),
        "five replies expected, got {:?}",
        live.seen
    );
    live.signal(libc::SIGQUIT);
    let run = live.finish(LIMIT);
    let status: Vec<&str> = run
        .stderr
        .lines()
        .map(|l| l.trim_start_matches('\r'))
        .collect();
    assert_eq!(
        status.len(),
        1,
        "one status line on stderr: {:?}",
        run.stderr
    );
    assert!(
        run.stderr.starts_with('\r'),
        "iputils starts the status with a carriage return: {:?}",
        run.stderr
    );
    assert!(
        matches("{d}/{d} packets, {d}% loss", status[0])
            || matches(
                "{d}/{d} packets, {d}% loss, min/avg/ewma/max = {f3}/{f3}/{f3}/{f3} ms",
                status[0]
            ),
        "status line {:?}",
        status[0]
    );
    // The run went on to its 20 probes.
    assert_eq!(stats_counts(&run.stdout), (20, 20), "{}", run.stdout);
    assert_eq!(run.code, Some(0), "{run:?}");
}

#[test]
fn deadline_before_count_replies_exits_1() {
    if !common::enter_netns("deadline_before_count_replies_exits_1") {
        return;
    }
    let args = argv("-w 1 -c 100 -i 0.05 127.0.0.1");
    let iputils = common::require_tool("ping").map(|p| Live::spawn(p.to_str().unwrap(), &args));
    let started = Instant::now();
    let run = rawkit_ping(&args);
    let took = started.elapsed();
    let (transmitted, received) = stats_counts(&run.stdout);
    assert!(received > 0, "replies came: {}", run.stdout);
    assert!(transmitted < 100, "the deadline stopped it: {}", run.stdout);
    assert_eq!(
        run.code,
        Some(1),
        "-w with fewer than -c replies: exit 1 ({run:?})"
    );
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "-w 1 took {took:?}"
    );
    if let Some(live) = iputils {
        let theirs = live.finish(LIMIT);
        assert_eq!(theirs.code, Some(1), "iputils agrees: {theirs:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Several pings at once

/// Checks that a `-c 20` run got exactly its own 20 replies.
fn assert_own_twenty(run: &Run, who: &str) {
    let stats = run
        .stdout
        .lines()
        .find(|l| l.contains(" packets transmitted, "))
        .unwrap_or_else(|| panic!("{who}: no statistics:\n{}", run.stdout));
    assert!(
        stats.starts_with("20 packets transmitted, 20 received, 0% packet loss, time "),
        "{who}: {stats:?}\n{}\nstderr: {}",
        run.stdout,
        run.stderr
    );
    assert!(!run.stdout.contains("(DUP!)"), "{who}:\n{}", run.stdout);
    assert!(
        !run.stdout.contains("DIFFERENT ADDRESS"),
        "{who}:\n{}",
        run.stdout
    );
    assert!(
        !run.stdout.contains("wrong data byte"),
        "{who}:\n{}",
        run.stdout
    );
    let mut seqs: Vec<u16> = run
        .stdout
        .lines()
        .filter(|l| l.contains(" bytes from "))
        .filter_map(icmp_seq)
        .collect();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=20).collect::<Vec<u16>>(),
        "{who}: one line per probe"
    );
    assert_eq!(run.code, Some(0), "{who}: {run:?}");
}

#[test]
fn ten_rawkits_and_iputils_at_once_each_see_only_their_own_replies() {
    if !common::enter_netns("ten_rawkits_and_iputils_at_once_each_see_only_their_own_replies") {
        return;
    }
    let args = argv("-c 20 -i 0.02 127.0.0.1");
    let iputils = common::require_tool("ping");
    let rawkits: Vec<Live> = (0..10).map(|_| Live::rawkit(&args)).collect();
    let theirs = iputils.map(|p| Live::spawn(p.to_str().unwrap(), &args));
    for (i, live) in rawkits.into_iter().enumerate() {
        assert_own_twenty(&live.finish(LIMIT), &format!("rawkit #{i}"));
    }
    if let Some(live) = theirs {
        assert_own_twenty(&live.finish(LIMIT), "iputils ping");
    }
}

#[test]
fn runs_with_the_same_identifier_are_told_apart_by_their_cookie() {
    if !common::enter_netns("runs_with_the_same_identifier_are_told_apart_by_their_cookie") {
        return;
    }
    let args = argv("-c 20 -i 0.02 -e 777 127.0.0.1");
    let a = Live::rawkit(&args);
    let b = Live::rawkit(&args);
    assert_own_twenty(&a.finish(LIMIT), "first -e 777");
    assert_own_twenty(&b.finish(LIMIT), "second -e 777");
}

// ---------------------------------------------------------------------------------------------
// Privileges

/// A `CapXxx:` mask from a `/proc/.../status` text.
fn cap_mask(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

#[test]
fn capabilities_are_dropped_while_the_ping_runs() {
    if !common::enter_netns("capabilities_are_dropped_while_the_ping_runs") {
        return;
    }
    let ours = std::fs::read_to_string("/proc/thread-self/status").expect("own status");
    assert_ne!(
        cap_mask(&ours, "CapEff:"),
        0,
        "the test itself runs with capabilities"
    );

    let mut live = Live::rawkit(&argv("-c 50 -i 0.05 127.0.0.1"));
    assert!(
        live.wait_for_lines(|l| reply_lines(l) >= 1, WAIT),
        "a reply expected: {:?}",
        live.seen
    );
    // Every thread of the process, not only the main one.
    let tasks = std::fs::read_dir(format!("/proc/{}/task", live.pid())).expect("task dir");
    let mut checked = 0;
    for task in tasks {
        let path = task.expect("task").path().join("status");
        let status = std::fs::read_to_string(&path).expect("task status");
        for field in ["CapEff:", "CapPrm:", "CapInh:", "CapAmb:"] {
            assert_eq!(
                cap_mask(&status, field),
                0,
                "{} {field} while pinging",
                path.display()
            );
        }
        checked += 1;
    }
    assert!(checked >= 1);
    live.signal(libc::SIGINT);
    let run = live.finish(WAIT);
    assert_eq!(
        run.code,
        Some(0),
        "still pinging fine without capabilities: {run:?}"
    );
}

/// A `rawkit ping` command that runs as nobody (uid and gid 65534, no supplementary groups;
/// leaving uid 0 empties the capability sets).
fn rawkit_as_nobody(args: &[&str]) -> Run {
    let mut cmd = Command::new(RAWKIT);
    cmd.arg("ping").args(args).uid(NOBODY).gid(NOBODY);
    Live::spawn_cmd(&mut cmd).finish(LIMIT)
}

#[test]
fn unprivileged_user_pings_through_the_datagram_socket_when_the_group_range_allows() {
    if !common::enter_netns(
        "unprivileged_user_pings_through_the_datagram_socket_when_the_group_range_allows",
    ) {
        return;
    }
    // Per namespace: the host's range is untouched.
    common::write_sysctl("net.ipv4.ping_group_range", "0 2147483647").expect("open the range");
    let run = rawkit_as_nobody(&argv("-v -c 3 -i 0.05 127.0.0.1"));
    assert!(
        run.stderr.contains("ICMP datagram"),
        "-v names the datagram socket: {run:?}"
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(stats_counts(&run.stdout), (3, 3), "{}", run.stdout);
    let lines = run.lines();
    for line in &lines[1..4] {
        assert_matches(REPLY_64, line, "datagram socket reply");
    }

    common::write_sysctl("net.ipv4.ping_group_range", "1 0").expect("close the range");
    let run = rawkit_as_nobody(&argv("-c 3 -i 0.05 127.0.0.1"));
    let err: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(err.len(), 1, "one line: {:?}", run.stderr);
    assert!(err[0].starts_with("rawkit: "), "{:?}", err[0]);
    assert!(
        err[0].contains("CAP_NET_RAW") && err[0].contains("ping_group_range"),
        "the line names both ways out: {:?}",
        err[0]
    );
    assert_eq!(run.code, Some(2), "{run:?}");
    assert_eq!(run.stdout, "", "no header before the failure");
}

// ---------------------------------------------------------------------------------------------
// Machine-readable output

#[test]
fn json_lines_are_versioned_events_with_numbers_as_numbers() {
    if !common::enter_netns("json_lines_are_versioned_events_with_numbers_as_numbers") {
        return;
    }
    let run = rawkit_ping(&argv("--json -c 3 -i 0.05 127.0.0.1"));
    assert_eq!(run.code, Some(0), "{run:?}");
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l:?}: {e}")))
        .collect();
    for e in &events {
        assert_eq!(e["v"], 1, "{e}");
        assert_eq!(e["cmd"], "ping", "{e}");
    }
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds.first(), Some(&"start"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"summary"), "{kinds:?}");
    let of = |kind: &'static str| events.iter().filter(move |e| e["event"] == kind);
    let sent: Vec<u64> = of("sent")
        .map(|e| e["seq"].as_u64().expect("seq"))
        .collect();
    assert_eq!(sent, [1, 2, 3]);
    let mut replied = Vec::new();
    for r in of("reply") {
        replied.push(r["seq"].as_u64().expect("seq is a number"));
        assert_eq!(r["from"], "127.0.0.1");
        assert_eq!(r["bytes"].as_u64(), Some(64), "{r}");
        assert_eq!(r["ttl"].as_u64(), Some(64), "{r}");
        assert!(r["rtt_ms"].as_f64().is_some_and(|t| t >= 0.0), "{r}");
        assert_eq!(r["dup"], false);
    }
    replied.sort_unstable();
    assert_eq!(replied, [1, 2, 3]);
    let summary = of("summary").next().expect("summary");
    assert_eq!(summary["transmitted"].as_u64(), Some(3), "{summary}");
    assert_eq!(summary["received"].as_u64(), Some(3), "{summary}");
    assert_eq!(summary["loss_pct"].as_f64(), Some(0.0), "{summary}");
    let rtt = &summary["rtt_ms"];
    for k in ["min", "avg", "max", "mdev"] {
        assert!(
            rtt[k].as_f64().is_some(),
            "rtt_ms.{k} is a number: {summary}"
        );
    }
    assert!(
        rtt["min"].as_f64() <= rtt["avg"].as_f64() && rtt["avg"].as_f64() <= rtt["max"].as_f64()
    );
    assert!(!run.stdout.contains("PING "), "no text with --json");
}

/// Runs `rawkit ping -q -c 3 -i 0.05 --pcap FILE MODE... 127.0.0.1` and checks the file with
/// tshark: three requests and three replies, in order, with good IPv4 and ICMP checksums.
fn assert_pcap_holds_the_three_exchanges(test: &str, mode: &[&str]) {
    let Some(tshark) = common::require_tool("tshark") else {
        return;
    };
    let dir = TempDir::new(test);
    let file = dir.0.join("ping.pcap");
    let path = file.to_str().expect("utf-8 path");
    let mut args = argv("-q -c 3 -i 0.05 --pcap");
    args.push(path);
    args.extend_from_slice(mode);
    args.push("127.0.0.1");
    let run = rawkit_ping(&args);
    assert_eq!(run.code, Some(0), "{run:?}");
    let tshark = tshark.to_str().expect("utf-8 path");
    let fields = |extra: &[&str]| -> Vec<Vec<String>> {
        let mut args = vec!["-r", path];
        args.extend_from_slice(extra);
        let out = Live::spawn(tshark, &args).finish(Duration::from_secs(30));
        assert_eq!(out.code, Some(0), "tshark {args:?}: {out:?}");
        out.stdout
            .lines()
            .map(|l| l.split('\t').map(str::to_owned).collect())
            .collect()
    };
    let rows = fields(&argv("-T fields -e icmp.type -e icmp.seq"));
    let expected: Vec<Vec<String>> = (1..=3)
        .flat_map(|s| {
            [
                vec!["8".to_owned(), s.to_string()],
                vec!["0".to_owned(), s.to_string()],
            ]
        })
        .collect();
    assert_eq!(rows, expected, "{mode:?}: requests and replies, in order");
    let rows = fields(&argv(
        "-o ip.check_checksum:TRUE -T fields -e icmp.type -e ip.checksum.status \
         -e icmp.checksum.status",
    ));
    assert_eq!(rows.len(), 6, "{rows:?}");
    for row in &rows {
        // Wireshark's checksum status 1 is "Good".
        assert_eq!(row[1..], ["1", "1"], "{mode:?}: checksums of {row:?}");
    }
}

/// A directory of this test process, removed when dropped (also when the test fails).
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("rawkit-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn pcap_file_opens_in_tshark_with_the_requests_and_replies() {
    let test = "pcap_file_opens_in_tshark_with_the_requests_and_replies";
    if !common::enter_netns(test) {
        return;
    }
    assert_pcap_holds_the_three_exchanges(test, &["--raw"]);
}

#[test]
fn pcap_file_from_the_datagram_socket_holds_the_requests_too() {
    let test = "pcap_file_from_the_datagram_socket_holds_the_requests_too";
    if !common::enter_netns(test) {
        return;
    }
    common::write_sysctl("net.ipv4.ping_group_range", "0 2147483647").expect("open the range");
    assert_pcap_holds_the_three_exchanges(test, &["--dgram"]);
}

#[test]
fn a_closed_stdout_ends_the_run_quietly() {
    if !common::enter_netns("a_closed_stdout_ends_the_run_quietly") {
        return;
    }
    // `rawkit ping ... | head -3`: the reader goes away after three lines.
    let mut live = Live::rawkit(&argv("-c 200 -i 0.02 127.0.0.1"));
    assert!(
        live.wait_for_lines(|l| l.len() >= 3, WAIT),
        "{:?}",
        live.seen
    );
    let Live { lines, .. } = &mut live;
    // Dropping the receiver ends the reader thread at its next line, which closes the pipe.
    drop(std::mem::replace(lines, mpsc::channel().1));
    let started = Instant::now();
    let run = live.finish(LIMIT);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "ended soon after stdout closed, not after 200 probes"
    );
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stderr, "", "no error for a closed stdout");
}

// ---------------------------------------------------------------------------------------------
// Preload, duplicates, ICMP errors and send failures, against iputils

/// Loads an nftables script into this test's namespace (`nft` runs as a child of the test
/// thread, so in its namespace). False, after the `SKIPPED` line, when `nft` is missing.
fn nft(script: &str) -> bool {
    let Some(nft) = common::require_tool("nft") else {
        return false;
    };
    let run = Live::spawn(nft.to_str().expect("utf-8 path"), &[script]).finish(LIMIT);
    assert_eq!(run.code, Some(0), "nft {script:?}: {run:?}");
    true
}

/// Compares rawkit's stdout and exit status with iputils' for the same arguments, when
/// iputils ping is installed.
fn assert_same_shape_as_iputils(args: &[&str], ours: &Run) {
    let Some(ping) = common::require_tool("ping") else {
        return;
    };
    let theirs = iputils_ping(&ping, args);
    assert_eq!(
        shape(&ours.stdout),
        shape(&theirs.stdout),
        "{args:?}: rawkit's lines differ from iputils'\nrawkit:\n{}\niputils:\n{}",
        ours.stdout,
        theirs.stdout
    );
    assert_eq!(ours.code, theirs.code, "{args:?}: exit status");
}

#[test]
fn preload_sends_a_burst_and_reports_the_pipe() {
    if !common::enter_netns("preload_sends_a_burst_and_reports_the_pipe") {
        return;
    }
    // iputils sends the -l probes back to back before reading any reply, so three are in
    // flight at once and the statistics end in ", pipe 3".
    let args = argv("-c 3 -l 3 -i 0.05 127.0.0.1");
    let run = rawkit_ping(&args);
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines = run.lines();
    assert_matches(
        "3 packets transmitted, 3 received, 0% packet loss, time {d}ms",
        lines[6],
        "-l 3",
    );
    assert_matches(
        "rtt min/avg/max/mdev = {f3}/{f3}/{f3}/{f3} ms, pipe 3",
        lines[7],
        "-l 3",
    );
    assert_same_shape_as_iputils(&args, &run);
}

#[test]
fn duplicate_replies_are_marked_and_counted() {
    if !common::enter_netns("duplicate_replies_are_marked_and_counted") {
        return;
    }
    // The kernel's every echo reply is sent twice.
    if !nft("add table ip t; \
             add chain ip t out { type filter hook output priority 0; }; \
             add rule ip t out icmp type echo-reply dup to 127.0.0.1")
    {
        return;
    }
    let args = argv("-c 3 -i 0.05 127.0.0.1");
    let run = rawkit_ping(&args);
    assert_eq!(run.code, Some(0), "{run:?}");
    let replies: Vec<&str> = run
        .lines()
        .into_iter()
        .filter(|l| l.contains(" bytes from "))
        .collect();
    let dups = replies.iter().filter(|l| l.ends_with(" ms (DUP!)")).count();
    for seq in 1..=3 {
        let fresh = replies
            .iter()
            .filter(|l| icmp_seq(l) == Some(seq) && !l.contains("DUP"))
            .count();
        assert_eq!(
            fresh, 1,
            "one fresh reply for icmp_seq={seq}:\n{}",
            run.stdout
        );
    }
    for line in replies.iter().filter(|l| l.contains("DUP")) {
        assert_matches(&format!("{REPLY_64} (DUP!)"), line, "duplicate");
    }
    assert!(
        dups >= 2,
        "the copies of replies 1 and 2 are seen:\n{}",
        run.stdout
    );
    let stats = format!(
        "3 packets transmitted, 3 received, +{dups} duplicates, 0% packet loss, time {{d}}ms"
    );
    assert!(
        run.lines().iter().any(|l| matches(&stats, l)),
        "statistics count the {dups} duplicates:\n{}",
        run.stdout
    );
    assert_same_shape_as_iputils(&args, &run);
}

#[test]
fn icmp_errors_quoting_the_probes_are_printed_and_counted_once_each() {
    if !common::enter_netns("icmp_errors_quoting_the_probes_are_printed_and_counted_once_each") {
        return;
    }
    // The probes leave; on the way in they are refused with "Packet filtered" (type 3 code 13).
    if !nft("add table ip t; \
             add chain ip t in { type filter hook input priority 0; }; \
             add rule ip t in icmp type echo-request reject with icmp type admin-prohibited")
    {
        return;
    }
    let args = argv("-c 3 -i 0.05 -W 0.2 127.0.0.1");
    let run = rawkit_ping(&args);
    let lines = run.lines();
    assert_eq!(lines.len(), 8, "{}", run.stdout);
    for (i, line) in lines[1..4].iter().enumerate() {
        assert_eq!(
            *line,
            format!("From 127.0.0.1 icmp_seq={} Packet filtered", i + 1)
        );
    }
    assert_matches(
        "3 packets transmitted, 0 received, +3 errors, 100% packet loss, time {d}ms",
        lines[6],
        "ICMP errors",
    );
    assert_eq!(lines[7], "");
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_same_shape_as_iputils(&args, &run);

    // With a deadline, the first error ends the run (iputils' `deadline && nerrors`).
    let args = argv("-w 2 -i 0.05 127.0.0.1");
    let started = Instant::now();
    let run = rawkit_ping(&args);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "ended at the first error, not at the deadline"
    );
    assert_eq!(stats_counts(&run.stdout), (1, 0), "{}", run.stdout);
    assert!(run.stdout.contains(", +1 errors, "), "{}", run.stdout);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_same_shape_as_iputils(&args, &run);
}

#[test]
fn a_probe_the_local_firewall_rejects_is_transmitted_and_its_error_counted_once() {
    if !common::enter_netns(
        "a_probe_the_local_firewall_rejects_is_transmitted_and_its_error_counted_once",
    ) {
        return;
    }
    // Refused on the way out: sendto fails with EPERM *and* an ICMP host unreachable comes
    // back. iputils counts the probe as transmitted and the ICMP error once ("hard local
    // error: pretend we sent the packet"; the send failure itself is not in nerrors).
    if !nft("add table ip t; \
             add chain ip t out { type filter hook output priority 0; }; \
             add rule ip t out icmp type echo-request reject with icmp type host-unreachable")
    {
        return;
    }
    let args = argv("-c 3 -i 0.05 -W 0.2 127.0.0.1");
    let run = rawkit_ping(&args);
    let from_lines = run
        .lines()
        .iter()
        .filter(|l| l.starts_with("From 127.0.0.1 icmp_seq="))
        .count();
    assert!(
        run.stdout.lines().any(
            |l| l.starts_with("3 packets transmitted, 0 received, +3 errors, 100% packet loss")
        ),
        "three probes, three errors:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    assert_eq!(from_lines, 3, "one line per ICMP error:\n{}", run.stdout);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_same_shape_as_iputils(&args, &run);
}

#[test]
fn a_send_the_local_firewall_drops_is_not_an_error_and_the_deadline_runs_on() {
    if !common::enter_netns(
        "a_send_the_local_firewall_drops_is_not_an_error_and_the_deadline_runs_on",
    ) {
        return;
    }
    // Dropped on the way out: sendto fails with EPERM, nothing comes back. iputils keeps
    // sending until the deadline and counts no error (an error would end a -w run at once).
    if !nft("add table ip t; \
             add chain ip t out { type filter hook output priority 0; }; \
             add rule ip t out icmp type echo-request drop")
    {
        return;
    }
    let args = argv("-w 1 -i 0.1 127.0.0.1");
    let run = rawkit_ping(&args);
    let (transmitted, received) = stats_counts(&run.stdout);
    assert!(
        transmitted >= 5 && received == 0,
        "probes every 0.1 s until the 1 s deadline, got {transmitted}:\n{}\nstderr:\n{}",
        run.stdout,
        run.stderr
    );
    assert!(
        !run.stdout.contains("errors"),
        "no ICMP or local error:\n{}",
        run.stdout
    );
    assert_eq!(run.code, Some(1), "{run:?}");
}

#[test]
fn too_big_for_the_mtu_with_df_is_one_local_error_per_probe_on_the_raw_socket() {
    if !common::enter_netns(
        "too_big_for_the_mtu_with_df_is_one_local_error_per_probe_on_the_raw_socket",
    ) {
        return;
    }
    common::set_mtu("lo", 1500).expect("lo mtu 1500");
    let args = argv("-c 3 -i 0.05 -W 0.2 -s 2000 -M do 127.0.0.1");
    let run = rawkit_ping(&args);
    assert_eq!(
        run.stderr,
        "rawkit: local error: message too long, mtu=1500\n".repeat(3),
        "one line per probe"
    );
    assert_matches(
        "3 packets transmitted, 0 received, +3 errors, 100% packet loss, time {d}ms",
        run.lines()[3],
        "-M do",
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_same_shape_as_iputils(&args, &run);
}

#[test]
fn too_big_for_the_mtu_with_df_is_one_local_error_per_probe_on_the_datagram_socket() {
    if !common::enter_netns(
        "too_big_for_the_mtu_with_df_is_one_local_error_per_probe_on_the_datagram_socket",
    ) {
        return;
    }
    common::set_mtu("lo", 1500).expect("lo mtu 1500");
    common::write_sysctl("net.ipv4.ping_group_range", "0 2147483647").expect("open the range");
    let run = rawkit_as_nobody(&argv("-c 3 -i 0.05 -W 0.2 -s 2000 -M do 127.0.0.1"));
    assert_eq!(
        run.stderr,
        "rawkit: local error: message too long, mtu=1500\n".repeat(3),
        "one line per probe, as on the raw socket and as iputils"
    );
    assert!(
        run.stdout.lines().any(
            |l| l.starts_with("3 packets transmitted, 0 received, +3 errors, 100% packet loss")
        ),
        "three probes, three errors:\n{}",
        run.stdout
    );
    assert_eq!(run.code, Some(1), "{run:?}");
}

#[test]
fn oversized_probes_without_df_are_fragmented_by_rawkit_and_answered() {
    if !common::enter_netns("oversized_probes_without_df_are_fragmented_by_rawkit_and_answered") {
        return;
    }
    common::set_mtu("lo", 1500).expect("lo mtu 1500");
    let sniffer = common::Sniffer::start("lo");
    let run = rawkit_ping(&argv("-c 2 -i 0.05 -s 3000 -M dont -e 4242 127.0.0.1"));
    let (seen, _) = sniffer.stop();
    assert_eq!(run.code, Some(0), "{run:?}");
    for line in &run.lines()[1..3] {
        assert_matches(
            "3008 bytes from 127.0.0.1: icmp_seq={d} ttl=64 time={rtt} ms",
            line,
            "-s 3000",
        );
    }
    // On the wire: every datagram fits the MTU; the requests went out as fragments with DF
    // clear, whose first one starts an echo request with our identifier.
    let mut first_fragments = 0;
    for s in &seen {
        let ip = Ipv4Slice::from_slice(&s.datagram).expect("etherparse parses the fragment");
        let h = ip.header();
        assert!(h.total_len() <= 1500, "over the MTU: {}", h.total_len());
        let hdr = h.to_header();
        assert_eq!(
            hdr.calc_header_checksum(),
            hdr.header_checksum,
            "IPv4 checksum"
        );
        if h.source_addr() == Ipv4Addr::LOCALHOST
            && h.fragments_offset().value() == 0
            && h.more_fragments()
        {
            let p = ip.payload().payload;
            if p.first() == Some(&8) && p.get(4..6) == Some(&[0x10, 0x92][..]) {
                assert!(!h.dont_fragment(), "-M dont: DF clear on fragments");
                first_fragments += 1;
            }
        }
    }
    assert_eq!(first_fragments, 2, "two fragmented requests");
}

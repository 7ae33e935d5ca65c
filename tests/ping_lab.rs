//! Tier 4: `rawkit ping` across real routers. Each test builds its own lab
//! (`common::lab`: namespaces `src - r1 - ... - rN - dst` joined by veth, addressed from
//! 198.18.0.0/15), runs the `rawkit` binary inside `src` with `ip netns exec`, and checks its
//! output line by line where every number is known: TTL expiry at each hop, replies whose TTL
//! counts the routers, exact loss and duplicate figures made by deterministic nftables rules,
//! unreachables from a rejecting router, "fragmentation needed" from a 1280-byte link and
//! fragmented probes that still come back, and the same lines as iputils ping.
//!
//! Every run is bounded: a count (`-c`), a short interval and wait, and a time limit after which
//! the child is killed by its PID and the test fails. Probes go only to lab addresses
//! (198.18.0.0/15): [`ping_in`] refuses any other target.

mod common;

use common::lab::{Bounded, Lab, LabOptions, Node, output_within};
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

const RAWKIT: &str = env!("CARGO_BIN_EXE_rawkit");
/// The longest a ping run may take before it is killed and the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(15);

/// True for 198.18.0.0/15, the only addresses these tests send to.
fn in_lab_range(addr: Ipv4Addr) -> bool {
    let [a, b, ..] = addr.octets();
    a == 198 && (b & 0xfe) == 18
}

/// Runs `program args...` in `src`, after checking that the target (the last argument) is a
/// lab address and that the run is bounded by `-c` or `-w`. Fails the test when it hangs.
fn ping_in(lab: &Lab, program: &Path, args: &[&str]) -> Bounded {
    let target: Ipv4Addr = args
        .last()
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("the last argument must be an IPv4 address: {args:?}"));
    assert!(
        in_lab_range(target),
        "refusing to ping {target}: only 198.18.0.0/15 (the lab) is allowed"
    );
    assert!(
        args.iter().any(|a| *a == "-c" || *a == "-w"),
        "every ping must be bounded by -c or -w: {args:?}"
    );
    assert!(args.contains(&"-n"), "always numeric (-n): {args:?}");
    let mut cmd = lab.command(Node::Src, program);
    cmd.args(args).env("LC_ALL", "C");
    let run = output_within(cmd, RUN_LIMIT).expect("spawn ip netns exec");
    assert!(
        !run.timed_out,
        "{} {args:?} still running after {RUN_LIMIT:?}: killed\nstdout:\n{}\nstderr:\n{}",
        program.display(),
        run.stdout(),
        run.stderr()
    );
    run
}

/// `rawkit ping ARGS` in `src`.
fn rawkit_ping(lab: &Lab, args: &[&str]) -> Bounded {
    let mut all = vec!["ping"];
    all.extend_from_slice(args);
    ping_in(lab, Path::new(RAWKIT), &all)
}

/// Matches `line` against `pattern`, where `{n}` stands for a number (`[0-9]+(\.[0-9]+)?`)
/// and everything else is literal: a regex for the only variable part of ping's lines.
fn like(line: &str, pattern: &str) -> bool {
    match pattern.split_once("{n}") {
        None => line == pattern,
        Some((literal, pattern)) => {
            let Some(rest) = line.strip_prefix(literal) else {
                return false;
            };
            let digits = |s: &str| s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
            let whole = digits(rest);
            if whole == 0 {
                return false;
            }
            let rest = &rest[whole..];
            // With a fraction, or without (the pattern may go on with a literal dot).
            let with_fraction = rest
                .strip_prefix('.')
                .filter(|f| digits(f) > 0)
                .is_some_and(|f| like(&f[digits(f)..], pattern));
            with_fraction || like(rest, pattern)
        }
    }
}

/// The lines of stdout that match `pattern` (see [`like`]).
fn lines_like<'a>(out: &'a str, pattern: &str) -> Vec<&'a str> {
    out.lines().filter(|l| like(l, pattern)).collect()
}

/// Asserts that stdout has exactly one line matching `pattern`.
#[track_caller]
fn assert_line(run: &Bounded, pattern: &str) {
    let out = run.stdout();
    let found = lines_like(&out, pattern);
    assert_eq!(
        found.len(),
        1,
        "expected one line like {pattern:?}\nstdout:\n{out}\nstderr:\n{}",
        run.stderr()
    );
}

/// Asserts that the lines of stdout that start with `starts` are exactly `expected` patterns, in
/// order.
#[track_caller]
fn assert_lines(run: &Bounded, starts: &[&str], expected: &[String]) {
    let out = run.stdout();
    let got: Vec<&str> = out
        .lines()
        .filter(|l| starts.iter().any(|s| l.starts_with(s)))
        .collect();
    let ok = got.len() == expected.len() && got.iter().zip(expected).all(|(l, p)| like(l, p));
    assert!(
        ok,
        "lines starting with {starts:?} differ\nexpected:\n{}\ngot:\n{}\nfull stdout:\n{out}\nstderr:\n{}",
        expected.join("\n"),
        got.join("\n"),
        run.stderr()
    );
}

#[track_caller]
fn assert_exit(run: &Bounded, code: i32) {
    assert_eq!(
        run.code(),
        Some(code),
        "exit status\nstdout:\n{}\nstderr:\n{}",
        run.stdout(),
        run.stderr()
    );
}

/// iputils' statistics line without its time.
fn stats(transmitted: u32, received: u32, extra: &str, loss: impl std::fmt::Display) -> String {
    format!(
        "{transmitted} packets transmitted, {received} received{extra}, {loss}% packet loss, time {{n}}ms"
    )
}

/// The test's name, for the lab's messages.
fn test_name() -> String {
    common::current_test_name()
}

#[test]
fn each_ttl_short_of_dst_is_answered_by_the_router_at_that_hop() {
    let Some(lab) = Lab::new(&test_name(), 3) else {
        return;
    };
    let dst = lab.dst_addr().to_string();
    for ttl in 1..=3usize {
        let t = ttl.to_string();
        let run = rawkit_ping(
            &lab,
            &["-n", "-c", "2", "-i", "0.05", "-W", "0.5", "-t", &t, &dst],
        );
        let router = lab.router_addr(ttl);
        assert_eq!(router, Ipv4Addr::new(198, 18, ttl as u8, 2));
        assert_lines(
            &run,
            &["From ", "64 bytes"],
            &[
                format!("From {router} icmp_seq=1 Time to live exceeded"),
                format!("From {router} icmp_seq=2 Time to live exceeded"),
            ],
        );
        assert_line(&run, &stats(2, 0, ", +2 errors", 100));
        assert_exit(&run, 1);
    }
    // One more hop and dst itself answers, with the TTL its reply kept.
    let run = rawkit_ping(&lab, &["-n", "-c", "1", "-W", "0.5", "-t", "4", &dst]);
    assert_line(
        &run,
        &format!("64 bytes from {dst}: icmp_seq=1 ttl=61 time={{n}} ms"),
    );
    assert_exit(&run, 0);
}

#[test]
fn replies_across_routers_carry_ttl_64_minus_the_router_count() {
    for routers in [1usize, 4] {
        let Some(lab) = Lab::new(&test_name(), routers) else {
            return;
        };
        let dst = lab.dst_addr();
        let ttl = 64 - routers;
        let run = rawkit_ping(&lab, &["-n", "-c", "3", "-i", "0.05", &dst.to_string()]);
        assert_line(&run, &format!("PING {dst} ({dst}) 56(84) bytes of data."));
        let expected: Vec<String> = (1..=3)
            .map(|seq| format!("64 bytes from {dst}: icmp_seq={seq} ttl={ttl} time={{n}} ms"))
            .collect();
        assert_lines(&run, &["64 bytes", "From "], &expected);
        assert_line(&run, &stats(3, 3, "", 0));
        assert_line(&run, "rtt min/avg/max/mdev = {n}/{n}/{n}/{n} ms");
        assert_exit(&run, 0);
    }
}

#[test]
fn nft_dropping_every_fourth_request_gives_exact_loss_figures() {
    let Some(lab) = Lab::new(&test_name(), 3) else {
        return;
    };
    if common::require_tool("nft").is_none() {
        return;
    }
    // Deterministic loss: r2 drops the requests whose sequence number is a multiple of 4.
    lab.nft(
        Node::Router(2),
        "table ip lab {
            chain forward {
                type filter hook forward priority 0; policy accept;
                icmp type echo-request icmp sequence & 3 == 0 counter drop
            }
        }",
    );
    let dst = lab.dst_addr();
    let run = rawkit_ping(
        &lab,
        &[
            "-n",
            "-c",
            "20",
            "-i",
            "0.02",
            "-W",
            "0.5",
            &dst.to_string(),
        ],
    );
    let expected: Vec<String> = (1..=20)
        .filter(|seq| seq % 4 != 0)
        .map(|seq| format!("64 bytes from {dst}: icmp_seq={seq} ttl=61 time={{n}} ms"))
        .collect();
    assert_lines(&run, &["64 bytes", "From "], &expected);
    assert_line(&run, &stats(20, 15, "", 25));
    assert_exit(&run, 0);
    let rules = lab.nft_list(Node::Router(2));
    assert!(
        rules.contains("counter packets 5 "),
        "r2 should have dropped exactly 5 requests:\n{rules}"
    );
}

/// r1 duplicates the echo replies that `select` (an nft match) picks, sending the copy to src.
fn duplicate_replies(lab: &Lab, select: &str) {
    let (src, iface) = (lab.src_addr(), lab.iface(1));
    lab.nft(
        Node::Router(1),
        &format!(
            "table ip lab {{
                chain forward {{
                    type filter hook forward priority 0; policy accept;
                    icmp type echo-reply {select} counter dup to {src} device \"{iface}\"
                }}
            }}"
        ),
    );
}

#[test]
fn nft_dup_in_r1_marks_duplicates_and_counts_them() {
    let Some(lab) = Lab::new(&test_name(), 3) else {
        return;
    };
    if common::require_tool("nft").is_none() {
        return;
    }
    // Odd sequence numbers only: the last reply (seq 4) is single, so the figures do not
    // depend on when the run stops.
    duplicate_replies(&lab, "icmp sequence & 1 == 1");
    let dst = lab.dst_addr();
    let run = rawkit_ping(
        &lab,
        &["-n", "-c", "4", "-i", "0.05", "-W", "0.5", &dst.to_string()],
    );
    let reply = |seq: u32, dup: &str| {
        format!("64 bytes from {dst}: icmp_seq={seq} ttl=61 time={{n}} ms{dup}")
    };
    assert_lines(
        &run,
        &["64 bytes", "From "],
        &[
            reply(1, ""),
            reply(1, " (DUP!)"),
            reply(2, ""),
            reply(3, ""),
            reply(3, " (DUP!)"),
            reply(4, ""),
        ],
    );
    assert_line(&run, &stats(4, 4, ", +2 duplicates", 0));
    assert_exit(&run, 0);
}

#[test]
fn duplicate_of_the_last_reply_is_not_counted_with_count_as_in_iputils() {
    // iputils stops reading as soon as nothing is in flight (`in_flight() == 0` in its receive
    // loop), so with -c N the copy of reply N that follows the original is never read: every
    // reply duplicated gives N received and N-1 duplicates, whatever the timing.
    let Some(lab) = Lab::new(&test_name(), 3) else {
        return;
    };
    if common::require_tool("nft").is_none() {
        return;
    }
    duplicate_replies(&lab, "");
    let dst = lab.dst_addr().to_string();
    let args = ["-n", "-c", "3", "-i", "0.05", "-W", "0.5", &dst];
    if let Some(ping) = common::require_tool("ping") {
        let iputils = ping_in(&lab, &ping, &args);
        assert_line(&iputils, &stats(3, 3, ", +2 duplicates", 0));
    }
    let run = rawkit_ping(&lab, &args);
    assert_line(&run, &stats(3, 3, ", +2 duplicates", 0));
    assert_eq!(
        lines_like(
            &run.stdout(),
            &format!("64 bytes from {dst}: icmp_seq={{n}} ttl=61 time={{n}} ms (DUP!)")
        )
        .len(),
        2,
        "{}",
        run.stdout()
    );
}

/// r`router` rejects every echo request toward dst with ICMP `reject_type`.
fn reject_requests(lab: &Lab, router: usize, reject_type: &str) {
    lab.nft(
        Node::Router(router),
        &format!(
            "table ip lab {{
                chain forward {{
                    type filter hook forward priority 0; policy accept;
                    icmp type echo-request reject with icmp type {reject_type}
                }}
            }}"
        ),
    );
}

#[test]
fn router_rejecting_with_host_unreachable_gives_destination_host_unreachable() {
    let Some(lab) = Lab::new(&test_name(), 3) else {
        return;
    };
    if common::require_tool("nft").is_none() {
        return;
    }
    reject_requests(&lab, 2, "host-unreachable");
    let run = rawkit_ping(
        &lab,
        &[
            "-n",
            "-c",
            "3",
            "-i",
            "0.05",
            "-W",
            "0.5",
            &lab.dst_addr().to_string(),
        ],
    );
    let r2 = lab.router_addr(2);
    let expected: Vec<String> = (1..=3)
        .map(|seq| format!("From {r2} icmp_seq={seq} Destination Host Unreachable"))
        .collect();
    assert_lines(&run, &["From ", "64 bytes"], &expected);
    assert_line(&run, &stats(3, 0, ", +3 errors", 100));
    assert_exit(&run, 1);
}

#[test]
fn router_rejecting_with_admin_prohibited_gives_packet_filtered() {
    let Some(lab) = Lab::new(&test_name(), 3) else {
        return;
    };
    if common::require_tool("nft").is_none() {
        return;
    }
    reject_requests(&lab, 3, "admin-prohibited");
    let run = rawkit_ping(
        &lab,
        &[
            "-n",
            "-c",
            "2",
            "-i",
            "0.05",
            "-W",
            "0.5",
            &lab.dst_addr().to_string(),
        ],
    );
    let r3 = lab.router_addr(3);
    assert_lines(
        &run,
        &["From ", "64 bytes"],
        &[
            format!("From {r3} icmp_seq=1 Packet filtered"),
            format!("From {r3} icmp_seq=2 Packet filtered"),
        ],
    );
    assert_line(&run, &stats(2, 0, ", +2 errors", 100));
    assert_exit(&run, 1);
}

/// A 3-router lab whose r2-r3 link (link 3) has an MTU of 1280.
fn lab_with_1280_link() -> Option<Lab> {
    let lab = Lab::new(&test_name(), 3)?;
    lab.set_mtu(3, 1280);
    Some(lab)
}

#[test]
fn df_probe_too_big_for_a_link_gets_frag_needed_from_the_router_before_it() {
    let Some(lab) = lab_with_1280_link() else {
        return;
    };
    let run = rawkit_ping(
        &lab,
        &[
            "-n",
            "-c",
            "1",
            "-W",
            "0.5",
            "-M",
            "do",
            "-s",
            "1400",
            &lab.dst_addr().to_string(),
        ],
    );
    assert_line(
        &run,
        &format!("PING {0} ({0}) 1400(1428) bytes of data.", lab.dst_addr()),
    );
    assert_lines(
        &run,
        &["From ", "1408 bytes"],
        &[format!(
            "From {} icmp_seq=1 Frag needed and DF set (mtu = 1280)",
            lab.router_addr(2)
        )],
    );
    assert_line(&run, &stats(1, 0, ", +1 errors", 100));
    assert_exit(&run, 1);
}

#[test]
fn df_probes_after_the_path_mtu_is_learnt_fail_locally_once_each_as_in_iputils() {
    // Probe 1 reaches r2, which answers "Frag needed"; src's kernel learns the path MTU of
    // 1280, and every later probe fails in src with EMSGSIZE: one error each, one
    // `local error: message too long, mtu=1280` line each, and no "From" line for them.
    let expected_stats = stats(3, 0, ", +3 errors", 100);
    let args_for = |lab: &Lab| {
        [
            "-n", "-c", "3", "-i", "0.05", "-W", "0.5", "-M", "do", "-s", "1400",
        ]
        .map(str::to_owned)
        .into_iter()
        .chain([lab.dst_addr().to_string()])
        .collect::<Vec<String>>()
    };
    // iputils, in a lab of its own (the learnt path MTU stays in src's route cache).
    if let Some(ping) = common::require_tool("ping") {
        let Some(lab) = lab_with_1280_link() else {
            return;
        };
        let args = args_for(&lab);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let iputils = ping_in(&lab, &ping, &args);
        assert_line(&iputils, &expected_stats);
        assert_lines(
            &iputils,
            &["From "],
            &[format!(
                "From {} icmp_seq=1 Frag needed and DF set (mtu = 1280)",
                lab.router_addr(2)
            )],
        );
        assert_eq!(
            iputils
                .stderr()
                .matches("local error: message too long, mtu=1280")
                .count(),
            2,
            "iputils stderr:\n{}",
            iputils.stderr()
        );
    }
    let Some(lab) = lab_with_1280_link() else {
        return;
    };
    let args = args_for(&lab);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = rawkit_ping(&lab, &args);
    let src = lab.src_addr();
    assert!(
        !run.stdout().contains(&format!("From {src} ")),
        "src's own kernel answered rawkit's probe: it must be a local error, not an ICMP error\n{}",
        run.stdout()
    );
    assert_lines(
        &run,
        &["From "],
        &[format!(
            "From {} icmp_seq=1 Frag needed and DF set (mtu = 1280)",
            lab.router_addr(2)
        )],
    );
    assert_line(&run, &expected_stats);
    assert_eq!(
        run.stderr()
            .matches("local error: message too long, mtu=1280")
            .count(),
        2,
        "stderr:\n{}",
        run.stderr()
    );
    assert_exit(&run, 1);
}

#[test]
fn default_pmtu_mode_fragments_once_the_path_mtu_is_learnt_as_in_iputils() {
    // Without -M (iputils' "want"), probe 1 goes out with DF and r2 answers "Frag needed";
    // later probes are fragmented in src to the learnt 1280 and answered. iputils (checked
    // below in a lab of its own, since the learnt MTU stays in src's route cache) prints one
    // error and two replies.
    let expect = |lab: &Lab, run: &Bounded, who: &str| {
        eprintln!("checking {who}'s output");
        let dst = lab.dst_addr();
        assert_lines(
            run,
            &["From ", "1408 bytes"],
            &[
                format!(
                    "From {} icmp_seq=1 Frag needed and DF set (mtu = 1280)",
                    lab.router_addr(2)
                ),
                format!("1408 bytes from {dst}: icmp_seq=2 ttl=61 time={{n}} ms"),
                format!("1408 bytes from {dst}: icmp_seq=3 ttl=61 time={{n}} ms"),
            ],
        );
        assert_line(run, &stats(3, 2, ", +1 errors", "33.3333"));
        assert_exit(run, 0);
    };
    let args = |lab: &Lab| {
        ["-n", "-c", "3", "-i", "0.05", "-W", "0.5", "-s", "1400"]
            .map(str::to_owned)
            .into_iter()
            .chain([lab.dst_addr().to_string()])
            .collect::<Vec<String>>()
    };
    if let Some(ping) = common::require_tool("ping") {
        let Some(lab) = lab_with_1280_link() else {
            return;
        };
        let a = args(&lab);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        expect(&lab, &ping_in(&lab, &ping, &a), "iputils ping");
    }
    let Some(lab) = lab_with_1280_link() else {
        return;
    };
    let a = args(&lab);
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    expect(&lab, &rawkit_ping(&lab, &a), "rawkit ping");
}

#[test]
fn without_df_a_probe_too_big_for_a_link_is_fragmented_by_the_router_and_answered() {
    let Some(lab) = lab_with_1280_link() else {
        return;
    };
    let dst = lab.dst_addr();
    let run = rawkit_ping(
        &lab,
        &[
            "-n",
            "-c",
            "3",
            "-i",
            "0.05",
            "-W",
            "0.5",
            "-M",
            "dont",
            "-s",
            "1400",
            &dst.to_string(),
        ],
    );
    let expected: Vec<String> = (1..=3)
        .map(|seq| format!("1408 bytes from {dst}: icmp_seq={seq} ttl=61 time={{n}} ms"))
        .collect();
    assert_lines(&run, &["1408 bytes", "From "], &expected);
    assert_line(&run, &stats(3, 3, "", 0));
    assert_exit(&run, 0);
}

#[test]
fn without_df_a_probe_over_the_interface_mtu_is_fragmented_by_rawkit_itself() {
    // 3028 bytes exceed src's 1500-byte veth: the kernel refuses an IP_HDRINCL datagram that
    // big, so the fragments on src's link can only be rawkit's. r2 fragments them again for
    // the 1280-byte link, dst reassembles and answers, and src reassembles the reply.
    let Some(lab) = lab_with_1280_link() else {
        return;
    };
    let (src, dst) = (lab.src_addr(), lab.dst_addr());
    let iface = lab.iface(1);
    let sniffer = lab.run_in(Node::Src, || {
        common::Sniffer::start_with(
            &iface,
            rawkit::net::capture::CaptureOptions {
                ignore_outgoing: false,
                ..Default::default()
            },
        )
    });
    let run = rawkit_ping(
        &lab,
        &[
            "-n",
            "-c",
            "2",
            "-i",
            "0.05",
            "-W",
            "0.5",
            "-M",
            "dont",
            "-s",
            "3000",
            &dst.to_string(),
        ],
    );
    let (seen, _) = sniffer.stop();
    let expected: Vec<String> = (1..=2)
        .map(|seq| format!("3008 bytes from {dst}: icmp_seq={seq} ttl=61 time={{n}} ms"))
        .collect();
    assert_lines(&run, &["3008 bytes", "From "], &expected);
    assert_line(&run, &stats(2, 2, "", 0));
    assert_exit(&run, 0);

    // The requests on the wire, read with etherparse: fragments of at most 1500 bytes, DF
    // clear, whose payloads add up to the 3008-byte echo request, twice.
    let mut payload_bytes = 0usize;
    let mut first_fragments = 0;
    for s in seen
        .iter()
        .filter(|s| s.frame.pkttype == rawkit::net::capture::PacketType::Outgoing)
    {
        let h = etherparse::Ipv4HeaderSlice::from_slice(&s.datagram).expect("IPv4 header");
        if h.source_addr() != src || h.destination_addr() != dst || h.protocol().0 != 1 {
            continue;
        }
        assert!(
            h.more_fragments() || h.fragments_offset().value() > 0,
            "an unfragmented request of {} bytes left src",
            h.total_len()
        );
        assert!(!h.dont_fragment(), "a fragment with DF set");
        assert!(
            h.total_len() <= 1500,
            "a fragment of {} bytes",
            h.total_len()
        );
        assert_eq!(usize::from(h.total_len()), s.datagram.len());
        payload_bytes += s.datagram.len() - h.slice().len();
        if h.fragments_offset().value() == 0 {
            first_fragments += 1;
            assert_eq!(s.datagram[h.slice().len()], 8, "echo request type");
        }
    }
    assert_eq!(
        first_fragments,
        2,
        "two requests, {} frames seen",
        seen.len()
    );
    assert_eq!(payload_bytes, 2 * 3008);
}

#[test]
fn time_exceeded_line_and_statistics_equal_iputils() {
    let Some(lab) = Lab::new(&test_name(), 2) else {
        return;
    };
    let Some(ping) = common::require_tool("ping") else {
        return;
    };
    let dst = lab.dst_addr().to_string();
    let args = ["-n", "-c", "2", "-i", "0.05", "-W", "0.5", "-t", "1", &dst];
    let iputils = ping_in(&lab, &ping, &args);
    let run = rawkit_ping(&lab, &args);
    // Only the time of the run may differ.
    let normalise = |out: String| -> Vec<String> {
        out.lines()
            .map(|l| match l.find(", time ") {
                Some(i) => format!("{}, time <T>ms", &l[..i]),
                None => l.to_owned(),
            })
            .collect()
    };
    let (theirs, ours) = (normalise(iputils.stdout()), normalise(run.stdout()));
    let from = format!(
        "From {} icmp_seq=1 Time to live exceeded",
        lab.router_addr(1)
    );
    assert!(theirs.contains(&from), "iputils:\n{}", iputils.stdout());
    assert_eq!(ours, theirs, "rawkit and iputils differ");
    assert_eq!(run.code(), iputils.code(), "exit status");
}

#[test]
fn default_icmp_ratelimit_silences_a_router_after_a_burst() {
    let Some(lab) = Lab::with_options(
        &test_name(),
        2,
        LabOptions {
            keep_icmp_ratelimit: true,
        },
    ) else {
        return;
    };
    let started = Instant::now();
    let run = rawkit_ping(
        &lab,
        &[
            "-n",
            "-c",
            "10",
            "-i",
            "0.01",
            "-W",
            "0.3",
            "-t",
            "1",
            &lab.dst_addr().to_string(),
        ],
    );
    let took = started.elapsed();
    // The kernel's per-peer token bucket (inetpeer.c, XRLIM_BURST_FACTOR) lets a burst of 6
    // errors through, then one per `icmp_ratelimit` (1 s); the ten probes take 0.1 s, so the
    // router answers the first 6 and then stays silent.
    let r1 = lab.router_addr(1);
    let out = run.stdout();
    let answered = lines_like(
        &out,
        &format!("From {r1} icmp_seq={{n}} Time to live exceeded"),
    )
    .len();
    assert!(
        (1..=6).contains(&answered) || took > Duration::from_secs(1),
        "{answered} of 10 probes answered despite the rate limit:\n{out}"
    );
    let expected: Vec<String> = (1..=answered)
        .map(|seq| format!("From {r1} icmp_seq={seq} Time to live exceeded"))
        .collect();
    assert_lines(&run, &["From "], &expected);
    assert_line(&run, &stats(10, 0, &format!(", +{answered} errors"), 100));
    assert_exit(&run, 1);
}

//! Tier 4: `rawkit traceroute` across real routers. Each test builds its own lab (`common::lab`:
//! namespaces `src - r1 - r2 - r3 - dst` joined by veth, addressed from 198.18.0.0/15), runs the
//! `rawkit` binary inside `src` with `ip netns exec`, and checks its output line by line with
//! the round-trip times blanked: the four hops for UDP, ICMP, `-U` and `--paris` (and on the
//! wire, that Paris keeps the flow), a silent router, admin-prohibited and unreachable
//! rejections, the path MTU of a 1280-byte link, the kernel's default ICMP rate limit, the same
//! lines as the Linux traceroute, MPLS labels from a responder with `-e`, JSON and pcap, names
//! looked up off the probe loop with a dead resolver, and capabilities dropped while tracing.
//!
//! Every run is bounded (a time limit after which the child is killed by its PID), targets only
//! lab addresses, and uses `-n` except where names are the point, and then the lab's `src` has
//! its own `/etc/hosts` and a resolver inside the lab.

mod common;
#[path = "common/mpls_responder.rs"]
mod mpls_responder;

use common::lab::{Bounded, Lab, LabOptions, Node, output_within};
use mpls_responder::{MplsResponder, VECTOR_ENTRY};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const RAWKIT: &str = env!("CARGO_BIN_EXE_rawkit");
/// The longest a traceroute run may take before it is killed and the test fails.
const RUN_LIMIT: Duration = Duration::from_secs(20);

fn test_name() -> String {
    common::current_test_name()
}

/// True for 198.18.0.0/15, the only addresses these tests send to.
fn in_lab_range(addr: Ipv4Addr) -> bool {
    let [a, b, ..] = addr.octets();
    a == 198 && (b & 0xfe) == 18
}

/// Runs `program args...` in `src`, after checking that the target is a lab address and that
/// the run is numeric (unless `names`). Fails the test when it hangs.
fn run_in_src(lab: &Lab, program: &Path, args: &[&str], names: bool) -> Bounded {
    let target: Ipv4Addr = args
        .iter()
        .filter_map(|a| a.parse().ok())
        .find(|a: &Ipv4Addr| in_lab_range(*a))
        .unwrap_or_else(|| panic!("no lab target in {args:?}"));
    assert!(in_lab_range(target));
    assert!(
        names || args.contains(&"-n"),
        "always numeric (-n): {args:?}"
    );
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

fn rawkit(lab: &Lab, args: &[&str]) -> Bounded {
    let mut all = vec!["traceroute"];
    all.extend_from_slice(args);
    run_in_src(lab, Path::new(RAWKIT), &all, false)
}

/// The Linux traceroute, when installed (else the test skips, or fails under CI).
fn linux_traceroute() -> Option<PathBuf> {
    common::require_tool("traceroute")
}

/// Replaces each round-trip time (`0.123` before ` ms`) with `N`.
fn blank(line: &str) -> String {
    let words: Vec<&str> = line.split(' ').collect();
    let mut out: Vec<&str> = Vec::with_capacity(words.len());
    for (i, w) in words.iter().enumerate() {
        let is_time = words.get(i + 1) == Some(&"ms")
            && w.contains('.')
            && w.chars().all(|c| c.is_ascii_digit() || c == '.');
        out.push(if is_time { "N" } else { w });
    }
    out.join(" ")
}

fn blanked_lines(run: &Bounded) -> Vec<String> {
    run.stdout().lines().map(blank).collect()
}

#[track_caller]
fn assert_lines(run: &Bounded, expected: &[String]) {
    let got = blanked_lines(run);
    assert_eq!(
        got,
        expected,
        "\nstdout:\n{}\nstderr:\n{}",
        run.stdout(),
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

fn header(dst: Ipv4Addr, len: usize) -> String {
    format!("traceroute to {dst} ({dst}), 30 hops max, {len} byte packets")
}

/// `hop  addr  N ms  N ms  N ms` (three answered probes from one address).
fn full(ttl: usize, addr: Ipv4Addr) -> String {
    format!("{ttl:2}  {addr}  N ms  N ms  N ms")
}

/// The four lines of a lab of three routers, every hop answering.
fn four_hops(lab: &Lab) -> Vec<String> {
    let mut v: Vec<String> = (1..=3).map(|i| full(i, lab.router_addr(i))).collect();
    v.push(full(4, lab.dst_addr()));
    v
}

/// The destination keeps the kernel's default ICMP rate limit (1 s per peer after a burst of
/// 6): tests that trace several times in a row lift it there, or its port unreachables
/// would run out.
fn unlimited_dst(lab: &Lab) {
    lab.sysctl(Node::Dst, "net.ipv4.icmp_ratelimit", "0");
}

/// Makes router `i` drop the time exceeded it sends: a silent router.
fn silence_router(lab: &Lab, i: usize) {
    lab.nft(
        Node::Router(i),
        "table inet silent {\n  chain out {\n    type filter hook output priority 0;\n    icmp type time-exceeded drop\n  }\n}\n",
    );
}

/// Makes router `i` reject what it forwards to `dst` with ICMP `kind`.
fn reject_forwarded(lab: &Lab, i: usize, kind: &str) {
    let dst = lab.dst_addr();
    lab.nft(
        Node::Router(i),
        &format!(
            "flush ruleset\ntable inet rejecting {{\n  chain ff {{\n    type filter hook forward priority 0;\n    ip daddr {dst} reject with icmp type {kind}\n  }}\n}}\n"
        ),
    );
}

#[test]
fn udp_icmp_fixed_port_and_paris_traces_show_the_four_hops() {
    let Some(lab) = Lab::new(&test_name(), 3) else {
        return;
    };
    unlimited_dst(&lab);
    let dst = lab.dst_addr();
    let d = dst.to_string();
    for flags in [
        &["-n"][..],
        &["-n", "-I"],
        &["-n", "-U"],
        &["-n", "--paris"],
        &["-n", "-I", "--paris"],
    ] {
        let mut args = flags.to_vec();
        args.push(&d);
        let run = rawkit(&lab, &args);
        let mut expected = vec![header(dst, 60)];
        expected.extend(four_hops(&lab));
        assert_lines(&run, &expected);
        assert_exit(&run, 0);
        assert!(run.stderr().is_empty(), "{flags:?}: {}", run.stderr());
    }
}

/// The probes r1 forwarded from `src`, as seen on r1's left interface, for one run.
fn probes_seen_by_r1(lab: &Lab, args: &[&str]) -> Vec<Vec<u8>> {
    let sniffer = lab.run_in(Node::Router(1), || common::Sniffer::start("lk1"));
    let run = rawkit(lab, args);
    assert_exit(&run, 0);
    std::thread::sleep(Duration::from_millis(50));
    let (seen, _) = sniffer.stop();
    let src = lab.src_addr();
    // The probes: from src, UDP or ICMP echo requests (IHL 5: rawkit sends no options).
    seen.into_iter()
        .map(|s| s.datagram)
        .filter(|d| d.len() >= 28 && d[12..16] == src.octets())
        .filter(|d| d[9] == 17 || (d[9] == 1 && d[20] == 8))
        .collect()
}

#[test]
fn paris_keeps_the_flow_on_the_wire_and_classic_udp_changes_port() {
    let Some(lab) = Lab::new(&test_name(), 3) else {
        return;
    };
    unlimited_dst(&lab);
    let d = lab.dst_addr().to_string();
    let udp = |p: &[u8]| {
        let e = etherparse::SlicedPacket::from_ip(p).expect("etherparse");
        match e.transport {
            Some(etherparse::TransportSlice::Udp(u)) => {
                (u.source_port(), u.destination_port(), u.checksum())
            }
            other => panic!("not UDP: {other:?}"),
        }
    };
    // Classic: one port per probe, from 33434, as the Linux traceroute.
    let classic = probes_seen_by_r1(&lab, &["-n", &d]);
    assert!(classic.len() >= 12, "{} probes", classic.len());
    let ports: Vec<u16> = classic.iter().map(|p| udp(p).1).collect();
    assert_eq!(ports[0], 33434);
    assert!(ports.windows(2).all(|w| w[1] == w[0] + 1), "{ports:?}");
    // Paris UDP: both ports constant, the checksum tells the probes apart.
    let paris = probes_seen_by_r1(&lab, &["-n", "--paris", &d]);
    assert!(paris.len() >= 12);
    let flows: Vec<(u16, u16)> = paris.iter().map(|p| (udp(p).0, udp(p).1)).collect();
    assert!(flows.iter().all(|f| *f == flows[0]), "{flows:?}");
    assert_eq!(flows[0].1, 33434);
    let mut sums: Vec<u16> = paris.iter().map(|p| udp(p).2).collect();
    sums.sort_unstable();
    sums.dedup();
    assert_eq!(sums.len(), paris.len(), "one checksum per probe");
    // Paris ICMP: identifier and checksum constant, sequence numbers counting up.
    let icmp = probes_seen_by_r1(&lab, &["-n", "-I", "--paris", &d]);
    assert!(icmp.len() >= 12);
    let fields: Vec<(u16, u16, u16)> = icmp
        .iter()
        .map(|p| {
            let e = etherparse::SlicedPacket::from_ip(p).expect("etherparse");
            match e.transport {
                Some(etherparse::TransportSlice::Icmpv4(i)) => match i.icmp_type() {
                    etherparse::Icmpv4Type::EchoRequest(h) => (h.id, h.seq, i.checksum()),
                    t => panic!("not an echo request: {t:?}"),
                },
                other => panic!("not ICMP: {other:?}"),
            }
        })
        .collect();
    assert!(
        fields
            .iter()
            .all(|f| f.0 == fields[0].0 && f.2 == fields[0].2),
        "{fields:?}"
    );
    assert!(
        fields.windows(2).all(|w| w[1].1 == w[0].1 + 1),
        "{fields:?}"
    );
}

#[test]
fn a_silent_router_prints_stars_and_costs_one_short_wait() {
    let Some(lab) = Lab::new(&test_name(), 3) else {
        return;
    };
    if common::require_tool("nft").is_none() {
        return;
    }
    unlimited_dst(&lab);
    silence_router(&lab, 2);
    let dst = lab.dst_addr();
    let d = dst.to_string();
    let started = Instant::now();
    let run = rawkit(&lab, &["-n", &d]);
    let took = started.elapsed();
    let mut expected = vec![header(dst, 60), full(1, lab.router_addr(1))];
    expected.push(" 2  * * *".into());
    expected.push(full(3, lab.router_addr(3)));
    expected.push(full(4, dst));
    assert_lines(&run, &expected);
    assert_exit(&run, 0);
    // NEAR x the round trip of hop 3 (well under a millisecond here), not 5 s per probe.
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // With MAX alone (-w 1), the three probes still cost one wait, not three.
    let started = Instant::now();
    let run = rawkit(&lab, &["-n", "-w", "1", &d]);
    let took = started.elapsed();
    assert_lines(&run, &expected);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(2500),
        "took {took:?}"
    );
}

#[test]
fn a_router_rejecting_with_admin_prohibited_prints_x_and_unreachables_print_n_and_h() {
    let Some(lab) = Lab::new(&test_name(), 3) else {
        return;
    };
    if common::require_tool("nft").is_none() {
        return;
    }
    let dst = lab.dst_addr();
    let d = dst.to_string();
    let r2 = lab.router_addr(2);
    for (kind, mark) in [
        ("admin-prohibited", "!X"),
        ("net-unreachable", "!N"),
        ("host-unreachable", "!H"),
    ] {
        reject_forwarded(&lab, 2, kind);
        for flags in [&["-n"][..], &["-n", "-I"]] {
            let mut args = flags.to_vec();
            args.push(&d);
            let run = rawkit(&lab, &args);
            let expected = vec![
                header(dst, 60),
                full(1, lab.router_addr(1)),
                full(2, r2),
                format!(" 3  {r2}  N ms {mark}  N ms {mark}  N ms {mark}"),
            ];
            assert_lines(&run, &expected);
            // The destination did not answer.
            assert_exit(&run, 1);
        }
    }
}

#[test]
fn a_1280_byte_link_is_found_by_mtu_as_f_1280() {
    let Some(lab) = Lab::new(&test_name(), 3) else {
        return;
    };
    unlimited_dst(&lab);
    lab.set_mtu(3, 1280);
    let dst = lab.dst_addr();
    let d = dst.to_string();
    let (r1, r2, r3) = (lab.router_addr(1), lab.router_addr(2), lab.router_addr(3));
    // Before any PMTU is learnt: a 1400-byte DF probe is refused by r2 with !F-1280.
    let run = rawkit(&lab, &["-n", "-F", &d, "1400"]);
    assert_lines(
        &run,
        &[
            header(dst, 1400),
            full(1, r1),
            full(2, r2),
            format!(" 3  {r2}  N ms !F-1280  N ms !F-1280  N ms !F-1280"),
        ],
    );
    assert_exit(&run, 1);
    // Without DF, 2000 bytes go through: rawkit fragments at the interface, r2 again.
    let run = rawkit(&lab, &["-n", &d, "2000"]);
    let mut expected = vec![header(dst, 2000)];
    expected.extend(four_hops(&lab));
    assert_lines(&run, &expected);
    assert_exit(&run, 0);
    // --mtu: 65000 bytes first; the interface gives 1500 at hop 1, r2 gives 1280 at hop 3.
    for flags in [&["-n", "--mtu"][..], &["-n", "-I", "--mtu"]] {
        let mut args = flags.to_vec();
        args.push(&d);
        let run = rawkit(&lab, &args);
        assert_lines(
            &run,
            &[
                header(dst, 65000),
                format!(" 1  {r1}  N ms F=1500  N ms  N ms"),
                full(2, r2),
                format!(" 3  {r3}  N ms F=1280  N ms  N ms"),
                full(4, dst),
            ],
        );
        assert_exit(&run, 0);
    }
}

#[test]
fn routers_at_the_default_icmp_rate_limit_still_give_a_full_trace() {
    let options = LabOptions {
        keep_icmp_ratelimit: true,
    };
    let Some(lab) = Lab::with_options(&test_name(), 3, options) else {
        return;
    };
    for r in 1..=3 {
        assert_ne!(
            lab.run_in(Node::Router(r), || common::read_sysctl(
                "net.ipv4.icmp_ratelimit"
            ))
            .ok(),
            Some("0".to_string())
        );
    }
    let dst = lab.dst_addr();
    let run = rawkit(&lab, &["-n", &dst.to_string()]);
    let mut expected = vec![header(dst, 60)];
    expected.extend(four_hops(&lab));
    assert_lines(&run, &expected);
    assert_exit(&run, 0);
}

#[test]
fn lines_are_those_of_the_linux_traceroute() {
    let Some(lab) = Lab::new(&test_name(), 3) else {
        return;
    };
    if common::require_tool("nft").is_none() {
        return;
    }
    let Some(linux) = linux_traceroute() else {
        return;
    };
    unlimited_dst(&lab);
    let d = lab.dst_addr().to_string();
    let compare = |what: &str, flags: &[&str]| {
        let mut args = flags.to_vec();
        args.push(&d);
        let theirs = run_in_src(&lab, &linux, &args, false);
        let ours = rawkit(&lab, &args);
        assert_eq!(
            blanked_lines(&ours),
            blanked_lines(&theirs),
            "{what} {flags:?}\nrawkit:\n{}\ntraceroute:\n{}",
            ours.stdout(),
            theirs.stdout()
        );
    };
    for flags in [
        &["-n"][..],
        &["-n", "-I"],
        &["-n", "-U"],
        &["-n", "-q", "1", "-f", "2"],
        &["-n", "-m", "2", "-q", "5"],
        &["-n", "--back"],
        &["-n", "-e"],
        &["-n", "-N", "1", "-w", "1"],
    ] {
        compare("every hop answers", flags);
    }
    silence_router(&lab, 2);
    compare("silent r2", &["-n"]);
    compare("silent r2", &["-n", "-I"]);
    reject_forwarded(&lab, 2, "admin-prohibited");
    compare("r2 prohibits", &["-n"]);
    reject_forwarded(&lab, 2, "host-unreachable");
    compare("r2 host unreachable", &["-n", "-I"]);
    lab.nft(Node::Router(2), "flush ruleset\n");
    lab.set_mtu(3, 1280);
    compare("1280-byte link", &["-n", "--mtu"]);
}

#[test]
fn mpls_labels_from_a_label_switching_router_are_printed_with_e() {
    let Some(lab) = Lab::new(&test_name(), 3) else {
        return;
    };
    if common::require_tool("nft").is_none() {
        return;
    }
    unlimited_dst(&lab);
    let responder = MplsResponder::start(&lab, 2, &[VECTOR_ENTRY]);
    let dst = lab.dst_addr();
    let d = dst.to_string();
    let r2 = lab.router_addr(2);
    let labelled = format!(" 2  {r2} <MPLS:L=19380,E=0,S=1,T=1>  N ms  N ms  N ms");
    // The responder is a thread, not the kernel: its answers take longer than HERE x the
    // previous one may allow on a busy machine, so every run waits a fixed 2 s at most.
    for flags in [
        &["-n", "-w", "2", "-e"][..],
        &["-n", "-w", "2", "-e", "-I"],
        &["-n", "-w", "2", "-e", "--paris"],
    ] {
        let mut args = flags.to_vec();
        args.push(&d);
        let run = rawkit(&lab, &args);
        let mut expected = vec![
            header(dst, 60),
            full(1, lab.router_addr(1)),
            labelled.clone(),
        ];
        expected.push(full(3, lab.router_addr(3)));
        expected.push(full(4, dst));
        assert_lines(&run, &expected);
    }
    // Without -e the labels are not shown.
    let run = rawkit(&lab, &["-n", "-w", "2", &d]);
    let mut expected = vec![header(dst, 60)];
    expected.extend(four_hops(&lab));
    assert_lines(&run, &expected);
    // JSON carries them on each icmp_error from r2.
    let run = rawkit(&lab, &["-n", "-w", "2", "--json", &d]);
    let from_r2: Vec<serde_json::Value> = run
        .stdout()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("JSON line"))
        .filter(|v| v["event"] == "icmp_error" && v["from"] == r2.to_string())
        .collect();
    assert_eq!(from_r2.len(), 3, "{}", run.stdout());
    for v in &from_r2 {
        assert_eq!(
            v["mpls"],
            serde_json::json!([{ "label": 19380, "tc": 0, "s": true, "ttl": 1 }])
        );
    }
    // The Linux traceroute reads the same extension the same way.
    if let Some(linux) = linux_traceroute() {
        let theirs = run_in_src(&lab, &linux, &["-n", "-w", "2", "-e", &d], false);
        let ours = rawkit(&lab, &["-n", "-w", "2", "-e", &d]);
        assert_eq!(
            blanked_lines(&ours),
            blanked_lines(&theirs),
            "{}",
            theirs.stdout()
        );
    }
    assert!(responder.stop() >= 12);
}

#[test]
fn json_events_and_pcap_record_the_trace() {
    let Some(lab) = Lab::new(&test_name(), 3) else {
        return;
    };
    unlimited_dst(&lab);
    let dst = lab.dst_addr();
    let dir = std::env::temp_dir().join(format!("rawkit-trace-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let pcap = dir.join("trace.pcap");
    let p = pcap.to_string_lossy().to_string();
    let run = rawkit(&lab, &["-n", "--json", "--pcap", &p, &dst.to_string()]);
    assert_exit(&run, 0);
    let events: Vec<serde_json::Value> = run
        .stdout()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l}: {e}")))
        .collect();
    assert!(
        events
            .iter()
            .all(|e| e["v"] == 1 && e["cmd"] == "traceroute")
    );
    let of = |name: &str| events.iter().filter(|e| e["event"] == name).count();
    assert_eq!(of("start"), 1);
    assert_eq!(of("summary"), 1);
    assert_eq!(of("hop"), 4);
    let sent = of("sent");
    assert!(sent >= 12, "{sent} sent");
    let errors: Vec<&serde_json::Value> = events
        .iter()
        .filter(|e| e["event"] == "icmp_error")
        .collect();
    assert!(errors.len() >= 12);
    let first = errors
        .iter()
        .find(|e| e["ttl"] == 1)
        .expect("an answer from hop 1");
    assert_eq!(first["from"], lab.router_addr(1).to_string());
    assert_eq!(
        (first["type"].as_u64(), first["code"].as_u64()),
        (Some(11), Some(0))
    );
    assert!(
        first["rtt_ms"]
            .as_f64()
            .is_some_and(|r| r > 0.0 && r < 100.0)
    );
    let hop4 = events
        .iter()
        .find(|e| e["event"] == "hop" && e["ttl"] == 4)
        .expect("hop 4");
    assert_eq!(hop4["addresses"], serde_json::json!([dst.to_string()]));
    assert_eq!(hop4["probes"].as_array().map(Vec::len), Some(3));
    let summary = events
        .iter()
        .find(|e| e["event"] == "summary")
        .expect("summary");
    assert_eq!(summary["reached"], true);
    assert_eq!(summary["hops"], 4);
    assert_eq!(summary["exit"], 0);
    // The pcap holds the probes as sent and the replies as received.
    let mut reader = rawkit::pcap::PcapReader::open(&pcap).expect("pcap");
    let (mut probes, mut replies) = (0, 0);
    while let Some(rec) = reader.next_record() {
        let rec = rec.expect("record");
        let ip = rec.ipv4().expect("IPv4 record");
        let e = etherparse::SlicedPacket::from_ip(ip).expect("etherparse");
        match e.transport {
            Some(etherparse::TransportSlice::Udp(u)) => {
                assert!((33434..33434 + 64).contains(&u.destination_port()));
                probes += 1;
            }
            Some(etherparse::TransportSlice::Icmpv4(_)) => replies += 1,
            other => panic!("unexpected record {other:?}"),
        }
    }
    assert_eq!(probes, sent);
    assert!(replies >= 12);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `/etc/netns/<src namespace>/{hosts,resolv.conf}`, which `ip netns exec` mounts over
/// `/etc` for programs run in `src`; removed on drop.
struct NetnsEtc(PathBuf);

impl NetnsEtc {
    fn new(lab: &Lab, hosts: &str, resolv: &str) -> NetnsEtc {
        let dir = Path::new("/etc/netns").join(lab.netns(Node::Src));
        std::fs::create_dir_all(&dir).expect("mkdir /etc/netns/...");
        std::fs::write(dir.join("hosts"), hosts).expect("hosts");
        std::fs::write(dir.join("resolv.conf"), resolv).expect("resolv.conf");
        NetnsEtc(dir)
    }
}

impl Drop for NetnsEtc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_dir(Path::new("/etc/netns"));
    }
}

#[test]
fn names_are_looked_up_off_the_probe_loop_and_a_dead_resolver_stretches_nothing() {
    let Some(lab) = Lab::new(&test_name(), 3) else {
        return;
    };
    unlimited_dst(&lab);
    let dst = lab.dst_addr();
    let (r1, r2, r3) = (lab.router_addr(1), lab.router_addr(2), lab.router_addr(3));
    // r1, r2 and dst have names in src's hosts file; r3 has none, and the only DNS server is
    // a lab address nobody answers from (dst drops what it does not own): a dead resolver.
    let _etc = NetnsEtc::new(
        &lab,
        &format!("127.0.0.1 localhost\n{r1} r1.lab\n{r2} r2.lab\n{dst} dst.lab\n"),
        "nameserver 198.18.4.77\noptions timeout:3 attempts:1\n",
    );
    let started = Instant::now();
    let run = run_in_src(
        &lab,
        Path::new(RAWKIT),
        &["traceroute", &dst.to_string()],
        true,
    );
    let took = started.elapsed();
    assert_lines(
        &run,
        &[
            header(dst, 60),
            format!(" 1  r1.lab ({r1})  N ms  N ms  N ms"),
            format!(" 2  r2.lab ({r2})  N ms  N ms  N ms"),
            format!(" 3  {r3}  N ms  N ms  N ms"),
            format!(" 4  dst.lab ({dst})  N ms  N ms  N ms"),
        ],
    );
    assert_exit(&run, 0);
    // The resolver blocks 3 s on r3's name; the trace waits for it at most the name grace.
    assert!(took < Duration::from_millis(2000), "took {took:?}");
    // And the round-trip times are the network's, not the resolver's.
    for line in run.stdout().lines().skip(1) {
        for w in line
            .split(' ')
            .filter(|w| w.contains('.') && w.parse::<f64>().is_ok())
        {
            let ms: f64 = w.parse().expect("time");
            assert!(ms < 100.0, "{line}");
        }
    }
}

#[test]
fn capabilities_are_dropped_while_tracing() {
    let Some(lab) = Lab::new(&test_name(), 3) else {
        return;
    };
    if common::require_tool("nft").is_none() {
        return;
    }
    unlimited_dst(&lab);
    silence_router(&lab, 2);
    let d = lab.dst_addr().to_string();
    // A fixed 2 s wait for the silent hop keeps the tracer running long enough to look.
    let mut cmd = lab.command(Node::Src, RAWKIT);
    cmd.args(["traceroute", "-n", "-w", "2", &d])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("spawn");
    let status = format!("/proc/{}/status", child.id());
    let mut seen = None;
    let ok = common::wait_for(
        || {
            let s = std::fs::read_to_string(&status).unwrap_or_default();
            let field = |k: &str| {
                s.lines()
                    .find_map(|l| l.strip_prefix(k))
                    .map(|v| v.trim().to_string())
            };
            let name = field("Name:");
            seen = Some(s.clone());
            name.as_deref() == Some("rawkit")
                && field("CapEff:").as_deref() == Some("0000000000000000")
                && field("CapPrm:").as_deref() == Some("0000000000000000")
        },
        Duration::from_millis(1500),
    );
    let still_running = child.try_wait().expect("try_wait").is_none();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        ok,
        "capabilities not dropped:\n{}",
        seen.unwrap_or_default()
    );
    assert!(
        still_running,
        "the tracer ended before it could be observed"
    );
}

#[test]
fn source_interface_tos_port_and_sendwait_reach_the_wire() {
    let Some(lab) = Lab::new(&test_name(), 3) else {
        return;
    };
    unlimited_dst(&lab);
    let dst = lab.dst_addr();
    let d = dst.to_string();
    let src = lab.src_addr().to_string();
    let started = Instant::now();
    let probes = probes_seen_by_r1(
        &lab,
        &[
            "-n", "-s", &src, "-i", "lk1", "-t", "0x10", "-p", "40000", "-q", "1", "-z", "30", &d,
        ],
    );
    let took = started.elapsed();
    assert_eq!(probes.len(), 4, "one probe per hop");
    for (i, p) in probes.iter().enumerate() {
        let ip = rawkit::packet::ipv4::Ipv4Packet::new_checked(&p[..]).expect("IPv4");
        assert_eq!(ip.tos(), 0x10);
        assert_eq!(ip.src_addr(), lab.src_addr());
        assert!(!ip.dont_frag());
        assert_eq!(u16::from_be_bytes([p[22], p[23]]), 40000 + i as u16);
    }
    // -z 30 (milliseconds, being 10 or more): three gaps of 30 ms at least.
    assert!(took >= Duration::from_millis(90), "took {took:?}");
    // -F sets DF; -i with an interface that does not exist is refused, and so is a source
    // address the host does not have.
    let df = probes_seen_by_r1(&lab, &["-n", "-F", "-q", "1", &d]);
    assert!(df.iter().all(|p| p[6] & 0x40 != 0));
    let run = rawkit(&lab, &["-n", "-i", "nosuch0", &d]);
    assert_exit(&run, 2);
    assert!(
        run.stderr()
            .starts_with("rawkit: -i nosuch0: no such interface")
    );
    let run = rawkit(&lab, &["-n", "-s", "198.18.3.1", &d]);
    assert_exit(&run, 2);
    assert_eq!(run.stderr().lines().count(), 1, "{}", run.stderr());
}

#[test]
fn a_destination_that_answers_in_udp_ends_a_fixed_port_trace() {
    let Some(lab) = Lab::new(&test_name(), 3) else {
        return;
    };
    unlimited_dst(&lab);
    // A DNS-like server on dst: answers every datagram to port 53 with a few bytes.
    let server = lab.run_in(Node::Dst, || {
        let s = std::net::UdpSocket::bind("0.0.0.0:53").expect("bind :53");
        s.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        s
    });
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&stop);
    let answering = std::thread::spawn(move || {
        let (started, mut answered) = (Instant::now(), 0u32);
        let mut buf = [0u8; 2048];
        while !flag.load(std::sync::atomic::Ordering::Relaxed)
            && started.elapsed() < Duration::from_secs(30)
            && answered < 1000
        {
            if let Ok((_, from)) = server.recv_from(&mut buf) {
                let _ = server.send_to(b"answer", from);
                answered += 1;
            }
        }
        answered
    });
    let dst = lab.dst_addr();
    let d = dst.to_string();
    let run = rawkit(&lab, &["-n", "-U", &d]);
    let mut expected = vec![header(dst, 60)];
    expected.extend(four_hops(&lab));
    assert_lines(&run, &expected);
    assert_exit(&run, 0);
    if let Some(linux) = linux_traceroute() {
        let theirs = run_in_src(&lab, &linux, &["-n", "-U", &d], false);
        assert_eq!(blanked_lines(&theirs), expected, "{}", theirs.stdout());
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(answering.join().expect("server") >= 3);
}

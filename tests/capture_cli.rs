//! Tier 2: `rawkit capture`, hermetic. Everything here runs without privileges and sends
//! nothing: pcap files are written by the test (through `rawkit::pcap`, or by `text2pcap`) and
//! read with `rawkit capture -r`.
//!
//! What is proven: every link type rawkit reads (Ethernet, raw IP, raw IPv4, Linux cooked v1
//! and v2) gives the same lines, exact to the timestamp (UTC), for ICMP echoes, UDP, ICMP
//! errors with their quoted datagram and MPLS extensions, fragments, other protocols, ARP and
//! IPv6; the filters keep exactly what their definition says (the same BPF program the kernel
//! runs, interpreted); `-c`, `-x`, `-w` and `--json` do what they say; and bad input (values,
//! combinations, files that are missing, empty, not pcap, pcapng, of an unknown link type, or
//! cut short) gives one line on stderr naming the problem, nothing on stdout (a truncated
//! file: its complete records first), exit status 2, never a panic.
//!
//! With privileges every run happens in a private network namespace anyway (rawkit capture
//! never sends, but a validation that failed to stop it could only ever reach a private `lo`),
//! and each run is killed (by its PID) after a few seconds.

mod common;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, SystemTime};

use rawkit::packet::builder::Ipv4Builder;
use rawkit::packet::fragment::fragment;
use rawkit::packet::icmp::{
    DstUnreachable, ErrorBody, IcmpRepr, MplsEntry, ObjectRepr, TimeExceeded, emit_extensions,
};
use rawkit::pcap::{LinkType, PcapWriter};

const RAWKIT: &str = env!("CARGO_BIN_EXE_rawkit");
/// Longest a run may take (they take milliseconds).
const LIMIT: Duration = Duration::from_secs(10);

/// Moves the test thread into a private network namespace when the privileges allow it.
fn isolate() {
    if !rawkit::net::privilege::has_cap_net_raw() {
        return;
    }
    // SAFETY: `unshare` takes no pointers; CLONE_NEWNET affects only the calling thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0 {
        common::set_link_up("lo").expect("bring lo up in the private namespace");
    }
}

/// What a run printed and how it ended.
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

/// Runs `rawkit capture ARGS`, killing it (by its PID) past [`LIMIT`], which fails the test.
fn capture(args: &[&str]) -> Run {
    let mut cmd = Command::new(RAWKIT);
    cmd.arg("capture").args(args);
    let output = common::process::run_or_fail(cmd, LIMIT, &format!("rawkit capture {args:?}"));
    Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Asserts a refusal: exit 2, nothing on stdout, one line on stderr `rawkit: ...` containing
/// every one of `words`.
fn assert_refused(run: &Run, words: &[&str]) {
    assert_eq!(run.code, Some(2), "{run:?}");
    assert_eq!(run.stdout, "", "{run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "exactly one line on stderr: {run:?}");
    assert!(lines[0].starts_with("rawkit: "), "{run:?}");
    for w in words {
        assert!(lines[0].contains(w), "{w:?} missing from {:?}", lines[0]);
    }
    assert!(!run.stderr.contains("panicked"), "{run:?}");
}

/// A directory of this test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("rawkit-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

// ---------------------------------------------------------------------------------------------
// The sample: datagrams of every kind rawkit decodes, and the lines it must print for them

const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

fn build(b: Ipv4Builder<'_>) -> Vec<u8> {
    let mut buf = vec![0u8; 4096];
    let n = b.emit(&mut buf).expect("emit");
    buf.truncate(n);
    buf
}

/// One packet of the sample: what the network layer carries, and the line rawkit prints.
struct Sample {
    /// The IPv4 datagram, or `None` for the non-IP frames.
    ip: Option<Vec<u8>>,
    /// For non-IP frames: ethertype and the network-layer bytes.
    other: Option<(u16, Vec<u8>)>,
    line: String,
}

/// The time of packet `i`: 1700000000.123456789 + i ms, i.e. 22:13:20.123456 UTC onwards.
fn ts(i: usize) -> SystemTime {
    SystemTime::UNIX_EPOCH
        + Duration::new(1_700_000_000, 123_456_789)
        + Duration::from_millis(i as u64)
}

fn time_text(i: usize) -> String {
    format!("22:13:20.{:06}", 123_456 + i * 1000)
}

fn sample() -> Vec<Sample> {
    let echo = |reply: bool| {
        let data = [0u8; 56];
        let repr = if reply {
            IcmpRepr::EchoReply {
                ident: 4660,
                seq_no: 1,
                data: &data,
            }
        } else {
            IcmpRepr::EchoRequest {
                ident: 4660,
                seq_no: 1,
                data: &data,
            }
        };
        build(Ipv4Builder::new(LO, LO).icmp(&repr))
    };
    let udp = build(Ipv4Builder::new(A, B).ident(9).udp(40000, 53, b"hello"));
    let unreach = build(Ipv4Builder::new(B, A).icmp(&IcmpRepr::DstUnreachable {
        code: DstUnreachable::PortUnreachable,
        next_hop_mtu: 0,
        body: ErrorBody::quote(&udp),
    }));
    let probe = build(
        Ipv4Builder::new(A, Ipv4Addr::new(198, 18, 4, 2))
            .ttl(1)
            .icmp(&IcmpRepr::EchoRequest {
                ident: 4660,
                seq_no: 3,
                data: &[0; 56],
            }),
    );
    let mut ext = [0u8; 16];
    let stack = [MplsEntry {
        label: 24001,
        tc: 0,
        bottom: true,
        ttl: 1,
    }];
    let n = emit_extensions(&[ObjectRepr::Mpls(&stack)], &mut ext).expect("extensions");
    let time_exceeded = build(Ipv4Builder::new(Ipv4Addr::new(198, 18, 1, 2), A).icmp(
        &IcmpRepr::TimeExceeded {
            code: TimeExceeded::TtlExpired,
            body: ErrorBody {
                quote: &probe[..28],
                extensions: Some(&ext[..n]),
            },
        },
    ));
    let big = build(
        Ipv4Builder::new(A, B)
            .ident(77)
            .udp(40000, 53, &[7u8; 3000]),
    );
    let frags = fragment(&big, 1480).expect("fragment");
    assert_eq!(frags.len(), 3);
    let gre = build(
        Ipv4Builder::new(A, B)
            .protocol(rawkit::packet::ipv4::IpProtocol::Gre)
            .raw(&[0, 0, 8, 0]),
    );
    let mut v6 = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
    v6.extend_from_slice(&[0; 32]);
    v6.extend_from_slice(&[0, 1, 0, 2, 0, 8, 0, 0]);
    let arp = {
        let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
        a.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        a.extend_from_slice(&A.octets());
        a.extend_from_slice(&[0; 6]);
        a.extend_from_slice(&B.octets());
        a
    };
    let ip = |d: &[u8], line: &str| Sample {
        ip: Some(d.to_vec()),
        other: None,
        line: line.to_owned(),
    };
    vec![
        ip(
            &echo(false),
            "IP 127.0.0.1 > 127.0.0.1: ICMP echo request, id 4660, seq 1, length 64",
        ),
        ip(
            &echo(true),
            "IP 127.0.0.1 > 127.0.0.1: ICMP echo reply, id 4660, seq 1, length 64",
        ),
        ip(&udp, "IP 198.18.0.1.40000 > 198.18.0.2.53: UDP, length 5"),
        ip(
            &unreach,
            "IP 198.18.0.2 > 198.18.0.1: ICMP 198.18.0.2 udp port 53 unreachable, length 41 \
             [quote: IP 198.18.0.1.40000 > 198.18.0.2.53: udp, ttl 64, length 33]",
        ),
        ip(
            &time_exceeded,
            "IP 198.18.1.2 > 198.18.0.1: ICMP time exceeded in-transit, MPLS L=24001,E=0,S=1,T=1, \
             length 148 [quote: IP 198.18.0.1 > 198.18.4.2: ICMP echo request, id 4660, seq 3, \
             ttl 1, length 84]",
        ),
        ip(
            &frags[0],
            "IP 198.18.0.1.40000 > 198.18.0.2.53: UDP, length 3000 (frag 77:1480@0+)",
        ),
        ip(
            &frags[1],
            "IP 198.18.0.1 > 198.18.0.2: udp, length 1480 (frag 77:1480@1480+)",
        ),
        ip(
            &frags[2],
            "IP 198.18.0.1 > 198.18.0.2: udp, length 48 (frag 77:48@2960)",
        ),
        ip(&gre, "IP 198.18.0.1 > 198.18.0.2: gre, length 4"),
        Sample {
            ip: None,
            other: Some((0x86dd, v6)),
            line: String::new(),
        },
        Sample {
            ip: None,
            other: Some((0x0806, arp)),
            line: String::new(),
        },
    ]
}

/// The frame of a sample packet in a file of link type `link` (`None`: it cannot carry it).
fn frame(link: LinkType, s: &Sample) -> Option<Vec<u8>> {
    let (ethertype, net) = match (&s.ip, &s.other) {
        (Some(ip), _) => (0x0800u16, ip.clone()),
        (None, Some((e, bytes))) => (*e, bytes.clone()),
        _ => return None,
    };
    let mut f = match link {
        LinkType::Ethernet => {
            let mut h = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
            h.extend_from_slice(&ethertype.to_be_bytes());
            h
        }
        LinkType::LinuxSll => {
            let mut h = vec![0, 0, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 1, 0, 0];
            h.extend_from_slice(&ethertype.to_be_bytes());
            h
        }
        LinkType::LinuxSll2 => {
            let mut h = ethertype.to_be_bytes().to_vec();
            h.extend_from_slice(&[0, 0, 0, 0, 0, 2, 0, 1, 0, 6, 0x02, 0, 0, 0, 0, 1, 0, 0]);
            h
        }
        // Raw IP carries IPv4 and IPv6, raw IPv4 only IPv4; neither carries ARP.
        LinkType::RawIpv4 if ethertype != 0x0806 => Vec::new(),
        LinkType::Ipv4 if ethertype == 0x0800 => Vec::new(),
        _ => return None,
    };
    f.extend_from_slice(&net);
    Some(f)
}

/// The line for sample `s` in `frame` (the non-IP lines give the frame's length).
fn line_for(s: &Sample, frame: &[u8]) -> String {
    match &s.other {
        None => s.line.clone(),
        Some((0x86dd, _)) => format!("ethertype 0x86dd (IPv6), length {}", frame.len()),
        Some((e, _)) => format!("ethertype 0x{e:04x} (ARP), length {}", frame.len()),
    }
}

/// Writes the sample as a file of link type `link`; returns the path and the expected lines
/// (with their timestamps), in order.
fn write_sample(dir: &TempDir, link: LinkType) -> (PathBuf, Vec<String>) {
    let path = dir.file(&format!("sample-{}.pcap", link.number()));
    let mut w = PcapWriter::create(&path, link).expect("create");
    let mut lines = Vec::new();
    for (i, s) in sample().iter().enumerate() {
        let Some(f) = frame(link, s) else { continue };
        w.write_packet(ts(i), &f, f.len()).expect("write");
        lines.push(format!("{} {}", time_text(i), line_for(s, &f)));
    }
    w.flush().expect("flush");
    (path, lines)
}

const ALL_LINKS: [LinkType; 5] = [
    LinkType::Ethernet,
    LinkType::RawIpv4,
    LinkType::Ipv4,
    LinkType::LinuxSll,
    LinkType::LinuxSll2,
];

// ---------------------------------------------------------------------------------------------
// Reading files

#[test]
fn every_link_type_reads_as_the_same_exact_lines() {
    isolate();
    let dir = TempDir::new("every_link_type_reads_as_the_same_exact_lines");
    for link in ALL_LINKS {
        let (path, want) = write_sample(&dir, link);
        let run = capture(&["-r", path_str(&path)]);
        assert_eq!(run.code, Some(0), "{link}: {run:?}");
        assert_eq!(run.stderr, "", "{link}: nothing on stderr when all is well");
        assert_eq!(run.lines(), want, "{link}");
    }
}

/// The IPv4 sample lines (no timestamps) whose index is in `keep`.
fn sample_lines(keep: &[usize]) -> Vec<String> {
    let s = sample();
    keep.iter().map(|&i| s[i].line.clone()).collect()
}

fn without_time(run: &Run) -> Vec<String> {
    run.lines()
        .iter()
        .map(|l| {
            assert_eq!(l.as_bytes().get(15), Some(&b' '), "timestamp first: {l}");
            l[16..].to_owned()
        })
        .collect()
}

#[test]
fn filters_keep_exactly_what_they_define_in_every_link_type() {
    isolate();
    let dir = TempDir::new("filters_keep_exactly_what_they_define_in_every_link_type");
    // Sample indexes: 0 echo request, 1 echo reply, 2 UDP to B:53, 3 port unreachable from B,
    // 4 time exceeded, 5-7 fragments of a UDP datagram to B:53, 8 GRE to B.
    let cases: [(&[&str], &[usize]); 9] = [
        (&["--proto", "icmp"], &[0, 1, 3, 4]),
        (&["--proto", "udp"], &[2, 5, 6, 7]),
        (&["--proto", "17"], &[2, 5, 6, 7]),
        (&["--proto", "47"], &[8]),
        (&["--host", "198.18.0.2"], &[2, 3, 5, 6, 7, 8]),
        (&["--host", "127.0.0.1"], &[0, 1]),
        // Only the first fragment carries the ports; errors quoting port 53 do not match.
        (&["--port", "53"], &[2, 5]),
        (
            &["--port", "40000", "--proto", "udp", "--host", "198.18.0.1"],
            &[2, 5],
        ),
        (&["--proto", "tcp"], &[]),
    ];
    for link in ALL_LINKS {
        let (path, _) = write_sample(&dir, link);
        for (args, keep) in cases {
            let mut argv = vec!["-r", path_str(&path)];
            argv.extend_from_slice(args);
            let run = capture(&argv);
            assert_eq!(run.code, Some(0), "{link} {args:?}: {run:?}");
            assert_eq!(without_time(&run), sample_lines(keep), "{link} {args:?}");
        }
    }
}

#[test]
fn a_vlan_tagged_frame_is_shown_but_no_ip_filter_matches_it() {
    isolate();
    let dir = TempDir::new("a_vlan_tagged_frame_is_shown_but_no_ip_filter_matches_it");
    let path = dir.file("vlan.pcap");
    let ip = build(Ipv4Builder::new(A, B).udp(1, 2, b"x"));
    let mut f = vec![
        0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1, 0x81, 0, 0, 7, 8, 0,
    ];
    f.extend_from_slice(&ip);
    let mut w = PcapWriter::create(&path, LinkType::Ethernet).expect("create");
    w.write_packet(ts(0), &f, f.len()).expect("write");
    w.flush().expect("flush");
    let run = capture(&["-r", path_str(&path)]);
    assert_eq!(
        without_time(&run),
        ["IP 198.18.0.1.1 > 198.18.0.2.2: UDP, length 1"]
    );
    // As tcpdump's `ip` primitives: a tagged frame's ethertype is 802.1Q, not IPv4.
    let run = capture(&["-r", path_str(&path), "--proto", "udp"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(run.stdout, "");
}

#[test]
fn count_stops_after_that_many_matching_packets() {
    isolate();
    let dir = TempDir::new("count_stops_after_that_many_matching_packets");
    let (path, _) = write_sample(&dir, LinkType::Ethernet);
    let run = capture(&["-r", path_str(&path), "-c", "2", "--proto", "udp"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    assert_eq!(without_time(&run), sample_lines(&[2, 5]));
}

#[test]
fn hex_dump_follows_each_line_with_the_ip_datagram() {
    isolate();
    let dir = TempDir::new("hex_dump_follows_each_line_with_the_ip_datagram");
    let (path, _) = write_sample(&dir, LinkType::Ethernet);
    let run = capture(&["-r", path_str(&path), "-c", "1", "-x"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let lines = run.lines();
    // 84 bytes: six dump lines after the packet line, the datagram from its IPv4 header on.
    assert_eq!(lines.len(), 7, "{lines:?}");
    assert!(lines[1].starts_with("  0000  45 00 00 54 "), "{}", lines[1]);
    assert!(
        lines[2].starts_with("  0010  7f 00 00 01 08 00 "),
        "{}",
        lines[2]
    );
    assert!(lines[6].starts_with("  0050  00 00 00 00 "), "{}", lines[6]);
}

#[test]
fn read_then_write_copies_the_matching_records() {
    isolate();
    let dir = TempDir::new("read_then_write_copies_the_matching_records");
    for link in [LinkType::LinuxSll2, LinkType::RawIpv4] {
        let (path, _) = write_sample(&dir, link);
        let out = dir.file("copy.pcap");
        let run = capture(&[
            "-r",
            path_str(&path),
            "-q",
            "--proto",
            "icmp",
            "-w",
            path_str(&out),
        ]);
        assert_eq!(run.code, Some(0), "{run:?}");
        assert_eq!(run.stdout, "", "-q prints no lines");
        let again = capture(&["-r", path_str(&out)]);
        assert_eq!(without_time(&again), sample_lines(&[0, 1, 3, 4]), "{link}");
        let reader = rawkit::pcap::PcapReader::open(&out).expect("open copy");
        assert_eq!(reader.link(), link, "the copy keeps the link type");
    }
}

#[test]
fn json_events_carry_the_decoded_fields_as_numbers() {
    isolate();
    let dir = TempDir::new("json_events_carry_the_decoded_fields_as_numbers");
    let (path, _) = write_sample(&dir, LinkType::Ethernet);
    let run = capture(&["-r", path_str(&path), "--json", "-x", "--proto", "icmp"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    let events: Vec<serde_json::Value> = run
        .lines()
        .iter()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(events.len(), 6, "start, 4 packets, summary");
    for e in &events {
        assert_eq!(e["v"], 1);
        assert_eq!(e["cmd"], "capture");
    }
    assert_eq!(events[0]["event"], "start");
    assert_eq!(events[0]["link_type"], 1);
    assert_eq!(events[0]["filter"]["proto"], 1);
    let request = &events[1];
    assert_eq!(request["event"], "packet");
    assert_eq!(request["n"], 1);
    assert_eq!(request["time"], time_text(0));
    assert!((request["ts"].as_f64().expect("ts") - 1_700_000_000.123_456).abs() < 1e-5);
    assert_eq!(request["len"], 98);
    assert_eq!(request["caplen"], 98);
    assert_eq!(request["direction"], serde_json::Value::Null);
    assert_eq!(request["ethertype"], 2048);
    assert_eq!(request["src"], "127.0.0.1");
    assert_eq!(request["proto"], 1);
    assert_eq!(request["ttl"], 64);
    assert_eq!(request["ip_len"], 84);
    assert_eq!(request["type"], 8);
    assert_eq!(request["code"], 0);
    assert_eq!(request["ident"], 4660);
    assert_eq!(request["seq"], 1);
    assert_eq!(request["icmp_checksum_ok"], true);
    assert_eq!(request["summary"], sample()[0].line);
    assert!(
        request["hex"]
            .as_str()
            .expect("hex")
            .starts_with("45000054")
    );
    let unreach = &events[3];
    assert_eq!(
        (unreach["type"].as_u64(), unreach["code"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(unreach["quote"]["src"], "198.18.0.1");
    assert_eq!(unreach["quote"]["dport"], 53);
    assert_eq!(unreach["quote"]["proto"], 17);
    let te = &events[4];
    assert_eq!(te["type"], 11);
    assert_eq!(te["quote"]["ttl"], 1);
    assert_eq!(te["quote"]["ident"], 4660);
    assert_eq!(te["quote"]["seq"], 3);
    assert_eq!(
        te["mpls"],
        serde_json::json!([{"label": 24001, "tc": 0, "s": true, "ttl": 1}])
    );
    let summary = &events[5];
    assert_eq!(summary["event"], "summary");
    assert_eq!(summary["captured"], 4);
    assert_eq!(summary["read"], 11);
    assert_eq!(summary["received_by_filter"], 4);
    assert_eq!(summary["dropped"], 0);
    assert_eq!(summary["exit"], 0);
    assert_eq!(summary["error"], serde_json::Value::Null);
}

#[test]
fn quiet_json_keeps_only_start_and_summary() {
    isolate();
    let dir = TempDir::new("quiet_json_keeps_only_start_and_summary");
    let (path, _) = write_sample(&dir, LinkType::Ethernet);
    let run = capture(&["-r", path_str(&path), "--json", "-q"]);
    let kinds: Vec<String> = run
        .lines()
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("json")["event"].to_string())
        .collect();
    assert_eq!(kinds, ["\"start\"", "\"summary\""]);
}

#[test]
fn a_file_cut_inside_its_last_record_is_decoded_then_refused() {
    isolate();
    let dir = TempDir::new("a_file_cut_inside_its_last_record_is_decoded_then_refused");
    let (path, want) = write_sample(&dir, LinkType::Ethernet);
    let bytes = std::fs::read(&path).expect("read");
    let cut = dir.file("cut.pcap");
    // The last record (an ARP frame of 42 bytes) loses its last 10 bytes.
    std::fs::write(&cut, &bytes[..bytes.len() - 10]).expect("write");
    let run = capture(&["-r", path_str(&cut)]);
    assert_eq!(run.code, Some(2), "{run:?}");
    assert_eq!(
        run.lines(),
        want[..want.len() - 1],
        "every complete record first"
    );
    let err: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(err.len(), 1, "{run:?}");
    assert!(err[0].starts_with(&format!("rawkit: {}: frame 11 truncated", cut.display())));
    assert!(err[0].contains("cut short"), "{}", err[0]);
    assert!(err[0].contains("10 complete records"), "{}", err[0]);
    // With --json the summary says so too.
    let run = capture(&["-r", path_str(&cut), "--json", "-q"]);
    assert_eq!(run.code, Some(2));
    let summary: serde_json::Value =
        serde_json::from_str(run.lines().last().expect("summary")).expect("json");
    assert_eq!(summary["read"], 10);
    assert_eq!(summary["exit"], 2);
    assert!(
        summary["error"]
            .as_str()
            .expect("error")
            .contains("truncated")
    );
    // A record header cut short is the same refusal.
    std::fs::write(&cut, &bytes[..24 + 16 + 98 + 7]).expect("write");
    let run = capture(&["-r", path_str(&cut)]);
    assert_eq!(run.code, Some(2));
    assert_eq!(run.lines().len(), 1);
    assert!(run.stderr.contains("frame 2 truncated"), "{run:?}");
}

#[test]
fn text2pcap_files_are_read() {
    isolate();
    let Some(text2pcap) = common::require_tool("text2pcap") else {
        return;
    };
    let dir = TempDir::new("text2pcap_files_are_read");
    let udp = build(Ipv4Builder::new(A, B).udp(40000, 53, b"hello"));
    let mut hex = String::from("0000 ");
    for b in &udp {
        hex.push_str(&format!("{b:02x} "));
    }
    hex.push('\n');
    let input = dir.file("in.txt");
    std::fs::write(&input, hex).expect("write hex");
    // -l 101: raw IP; -F pcap: classic pcap (newer text2pcap writes pcapng by default).
    for (link, extra) in [("101", vec![]), ("1", vec!["-e", "0x800"])] {
        let out = dir.file(&format!("t2p-{link}.pcap"));
        let mut cmd = Command::new(&text2pcap);
        if link == "101" {
            cmd.args(["-l", "101"]);
        }
        let status = cmd
            .args(&extra)
            .args(["-F", "pcap", "-q"])
            .arg(&input)
            .arg(&out)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run text2pcap");
        assert!(status.success(), "text2pcap -l {link}");
        let run = capture(&["-r", path_str(&out)]);
        assert_eq!(run.code, Some(0), "{run:?}");
        assert_eq!(
            without_time(&run),
            ["IP 198.18.0.1.40000 > 198.18.0.2.53: UDP, length 5"],
            "link type {link}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input

#[test]
fn bad_values_are_refused_with_one_line() {
    isolate();
    let cases: [(&[&str], &[&str]); 13] = [
        (&["-i", "lo", "--proto", "300"], &["--proto", "0 to 255"]),
        (
            &["-i", "lo", "--proto", "ipv9"],
            &["--proto", "not a protocol"],
        ),
        (
            &["-i", "lo", "--host", "localhost"],
            &["--host", "IPv4 address"],
        ),
        (&["-i", "lo", "--host", "198.18.0"], &["--host"]),
        (&["-i", "lo", "--port", "65536"], &["--port", "65535"]),
        (&["-i", "lo", "--port", "-1"], &["--port"]),
        (&["-i", "lo", "-c", "0"], &["-c", "1 <= value"]),
        (&["-i", "lo", "-c", "many"], &["-c", "whole number"]),
        (
            &["-i", "lo", "--timeout", "0"],
            &["--timeout", "more than 0"],
        ),
        (&["-i", "lo", "--timeout", "-2"], &["--timeout"]),
        (
            &["-i", "lo", "--direction", "sideways"],
            &["--direction", "sideways"],
        ),
        (&["-i", "lo", "-B", "16"], &["--buffer-size", "256"]),
        (
            &["-i", "lo", "--proto", "icmp", "--port", "53"],
            &["--port 53", "only tcp, udp and sctp"],
        ),
    ];
    for (args, words) in cases {
        assert_refused(&capture(args), words);
    }
}

#[test]
fn contradictory_or_missing_sources_are_refused() {
    isolate();
    let dir = TempDir::new("contradictory_or_missing_sources_are_refused");
    let (path, _) = write_sample(&dir, LinkType::Ethernet);
    let file = path_str(&path);
    assert_refused(&capture(&[]), &["-i", "-r", "--help"]);
    assert_refused(
        &capture(&["-i", "lo", "-r", file]),
        &["cannot be used with"],
    );
    assert_refused(
        &capture(&["-r", file, "--direction", "in"]),
        &["--direction", "-r", "does not record"],
    );
    assert_refused(
        &capture(&["-r", file, "--timeout", "1"]),
        &["--timeout", "live"],
    );
    assert_refused(&capture(&["-r", file, "-B", "1024"]), &["-B", "live"]);
    assert_refused(
        &capture(&["-r", file, "-w", file]),
        &["-w", "the file -r reads"],
    );
    // Nothing was destroyed.
    assert_eq!(capture(&["-r", file]).code, Some(0));
}

#[test]
fn unknown_interfaces_are_refused_with_the_fix() {
    isolate();
    assert_refused(
        &capture(&["-i", "nosuch0", "-c", "1"]),
        &["nosuch0", "no such interface", "ip link"],
    );
    assert_refused(&capture(&["-i", "", "-c", "1"]), &["-i", "interface"]);
    assert_refused(
        &capture(&["-i", "a-name-longer-than-ifnamsiz", "-c", "1"]),
        &["no such interface"],
    );
}

#[test]
fn unreadable_and_foreign_files_are_refused_with_one_line() {
    isolate();
    let dir = TempDir::new("unreadable_and_foreign_files_are_refused_with_one_line");
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.file(name);
        std::fs::write(&p, bytes).expect("write");
        p
    };
    let missing = dir.file("missing.pcap");
    assert_refused(
        &capture(&["-r", path_str(&missing)]),
        &["missing.pcap", "cannot open", "No such file"],
    );
    let empty = write("empty.pcap", b"");
    assert_refused(
        &capture(&["-r", path_str(&empty)]),
        &["empty.pcap", "empty file"],
    );
    let text = write("notes.txt", b"this is not a capture, just some text\n");
    assert_refused(
        &capture(&["-r", path_str(&text)]),
        &["notes.txt", "not a pcap file", "magic"],
    );
    let short = write("short.pcap", &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0]);
    assert_refused(
        &capture(&["-r", path_str(&short)]),
        &["short.pcap", "24-byte"],
    );
    let mut ng = vec![0x0a, 0x0d, 0x0d, 0x0a, 28, 0, 0, 0, 0x4d, 0x3c, 0x2b, 0x1a];
    ng.extend_from_slice(&[1, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    ng.extend_from_slice(&[28, 0, 0, 0]);
    let ng = write("trace.pcapng", &ng);
    assert_refused(
        &capture(&["-r", path_str(&ng)]),
        &["pcapng", "tshark -F pcap"],
    );
    let mut header = vec![0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0];
    header.extend_from_slice(&[0; 8]);
    header.extend_from_slice(&65535u32.to_le_bytes());
    header.extend_from_slice(&105u32.to_le_bytes()); // IEEE 802.11
    let wifi = write("wifi.pcap", &header);
    assert_refused(
        &capture(&["-r", path_str(&wifi)]),
        &["unsupported link type 105", "Ethernet (1)"],
    );
    let (good, _) = write_sample(&dir, LinkType::Ethernet);
    let bad_out = dir.file("no/such/dir/out.pcap");
    assert_refused(
        &capture(&["-r", path_str(&good), "-w", path_str(&bad_out)]),
        &["out.pcap", "cannot create"],
    );
    // A directory is not a file.
    assert_refused(&capture(&["-r", path_str(&dir.0)]), &["cannot read"]);
}

#[test]
fn help_describes_the_options_filters_and_exit_codes() {
    let run = capture(&["--help"]);
    assert_eq!(run.code, Some(0), "{run:?}");
    for word in [
        "-i, --interface <IFACE>",
        "-r <FILE>",
        "-w <FILE>",
        "-c <COUNT>",
        "--timeout <SECS>",
        "--proto <PROTO>",
        "--host <ADDR>",
        "--port <PORT>",
        "--direction <DIR>",
        "--json",
        "-x",
        "classic BPF",
        "UTC",
        "received by filter",
        "dropped by kernel",
        "CAP_NET_RAW",
        "Exit status",
    ] {
        assert!(
            run.stdout.contains(word),
            "--help lacks {word:?}:\n{}",
            run.stdout
        );
    }
}

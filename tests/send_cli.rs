//! Tier 2: `rawkit send`'s command line, hermetic: the documented `--dry-run` examples print
//! exactly the documented bytes (checked again field by field with etherparse and pnet_packet),
//! bad input is refused with one line and exit status 2, `--dry-run` needs no privilege and
//! writes a pcap that tshark reads with good checksums.
//!
//! Nothing is sent: every run is a `--dry-run` or is refused before a socket is opened (the
//! route lookup for a missing `--src` connects a UDP socket, which sends nothing). With
//! privileges each case runs in a private network namespace anyway, and every run is killed
//! (by its PID) after a few seconds.

mod common;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::Duration;

use etherparse::{Icmpv4Type, IpNumber, Ipv4Slice};
use pnet_packet::Packet as _;

/// Longest one run may take (they take milliseconds).
const LIMIT: Duration = Duration::from_secs(10);

/// Moves the test's thread into a private network namespace when it may (not a skip when it
/// cannot: these tests send nothing either way).
fn isolate() {
    if !rawkit::net::privilege::has_cap_net_raw() {
        return;
    }
    // SAFETY: `unshare` takes no pointers; CLONE_NEWNET affects only the calling thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } == 0 {
        common::set_link_up("lo").expect("lo up in the private namespace");
    }
}

fn command(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rawkit"));
    cmd.arg("send").args(args);
    cmd
}

/// Runs `rawkit send ARGS` to its end (killed by PID after [`LIMIT`], which fails the test).
fn run(cmd: Command) -> Output {
    let what = format!("{cmd:?}");
    common::process::run_or_fail(cmd, LIMIT, &what)
}

fn rawkit(args: &[&str]) -> Output {
    run(command(args))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The hex bytes of a hex dump's lines (`0000  45 00 ...  E...`).
fn dump_bytes(dump: &str) -> Vec<u8> {
    dump.lines()
        .filter(|l| l.len() > 6 && l[..4].chars().all(|c| c.is_ascii_hexdigit()))
        .flat_map(|l| {
            l[6..l.len().min(6 + 49)]
                .split_whitespace()
                .map(|h| u8::from_str_radix(h, 16).expect("hex byte"))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// The examples of the README's `rawkit send` section: arguments and the exact output.
const EXAMPLES: &[(&[&str], &str)] = &[
    (
        &[
            "icmp", "--dst", "127.0.0.1", "--src", "127.0.0.1", "--id", "1", "--ident",
            "0x1234", "--seq", "1", "--dry-run",
        ],
        "IP 127.0.0.1 > 127.0.0.1: ICMP echo request, id 4660, seq 1, length 8
0000  45 00 00 1c 00 01 00 00  40 01 7c de 7f 00 00 01  E.......@.|.....
0010  7f 00 00 01 08 00 e5 ca  12 34 00 01              .........4..

1 datagrams (28 bytes) built, not sent (--dry-run)
",
    ),
    (
        &[
            "udp", "--dst", "127.0.0.1", "--src", "127.0.0.1", "--id", "0x4242", "--sport",
            "40000", "--dport", "7", "--payload", "hello", "--dry-run",
        ],
        "IP 127.0.0.1.40000 > 127.0.0.1.7: UDP, length 5
0000  45 00 00 21 42 42 00 00  40 11 3a 88 7f 00 00 01  E..!BB..@.:.....
0010  7f 00 00 01 9c 40 00 07  00 0d 21 b8 68 65 6c 6c  .....@....!.hell
0020  6f                                                o

1 datagrams (33 bytes) built, not sent (--dry-run)
",
    ),
    (
        &[
            "icmp", "--dst", "198.18.0.2", "--src", "198.18.0.1", "--id", "7", "--ident", "1",
            "--ttl", "1", "--df", "--tos", "0xb8", "--ip-opt", "ra", "--ip-opt", "rr=2",
            "--payload-hex", "ca fe", "--dry-run",
        ],
        "IP 198.18.0.1 > 198.18.0.2: ICMP echo request, id 1, seq 1, length 10 (options RA value 0 RR ptr=4 0.0.0.0 0.0.0.0 EOL)
0000  49 b8 00 2e 00 07 40 00  01 01 49 d9 c6 12 00 01  I.....@...I.....
0010  c6 12 00 02 94 04 00 00  07 0b 04 00 00 00 00 00  ................
0020  00 00 00 00 08 00 2c ff  00 01 00 01 ca fe        ......,.......

1 datagrams (46 bytes) built, not sent (--dry-run)
",
    ),
    (
        &[
            "udp", "--dst", "198.18.0.2", "--src", "198.18.0.1", "--id", "0x0bad", "--sport",
            "1000", "--dport", "2000", "--size", "24", "--pattern", "abcd", "--fragment", "16",
            "--dry-run",
        ],
        "IP 198.18.0.1.1000 > 198.18.0.2.2000: UDP, length 24 (frag 2989:16@0+)
0000  45 00 00 24 0b ad 20 00  40 11 c2 f4 c6 12 00 01  E..$.. .@.......
0010  c6 12 00 02 03 e8 07 d0  00 20 5a 2a ab cd ab cd  ......... Z*....
0020  ab cd ab cd                                       ....

IP 198.18.0.1 > 198.18.0.2: udp, length 16 (frag 2989:16@16)
0000  45 00 00 24 0b ad 00 02  40 11 e2 f2 c6 12 00 01  E..$....@.......
0010  c6 12 00 02 ab cd ab cd  ab cd ab cd ab cd ab cd  ................
0020  ab cd ab cd                                       ....

2 datagrams (72 bytes) built, not sent (--dry-run)
",
    ),
    (
        &[
            "udp", "--dst", "127.0.0.1", "--src", "127.0.0.1", "--id", "9", "--sport", "1",
            "--dport", "2", "--payload", "x", "--udp-checksum", "bad", "--ip-checksum", "0xdead",
            "--ip-len", "1000", "--evil", "--dry-run",
        ],
        "IP 127.0.0.1 > 127.0.0.1: [|udp] ipv4: truncated: need 1000 bytes, have 29 (required by the total length field)
0000  45 00 03 e8 00 09 80 00  40 11 de ad 7f 00 00 01  E.......@.......
0010  7f 00 00 01 00 01 00 02  00 09 89 d7 78           ............x

1 datagrams (29 bytes) built, not sent (--dry-run)
",
    ),
    (
        &[
            "raw", "--dst", "127.0.0.1", "--src", "127.0.0.1", "--id", "3", "--proto", "253",
            "--payload-hex", "de ad be ef", "--dry-run",
        ],
        "IP 127.0.0.1 > 127.0.0.1: ip-proto-253, length 4
0000  45 00 00 18 00 03 00 00  40 fd 7b e4 7f 00 00 01  E.......@.{.....
0010  7f 00 00 01 de ad be ef                           ........

1 datagrams (24 bytes) built, not sent (--dry-run)
",
    ),
    (
        &[
            "icmp", "--type", "time-exceeded", "--dst", "127.0.0.1", "--src", "198.18.0.1",
            "--id", "2", "--quote",
            "udp --dst 198.18.0.9 --sport 40000 --dport 33434 --ttl 1 --id 7", "--mpls",
            "L=24001", "--dry-run",
        ],
        "IP 198.18.0.1 > 127.0.0.1: ICMP time exceeded in-transit, MPLS L=24001,E=0,S=1,T=1, length 148
0000  45 00 00 a8 00 02 00 00  40 01 35 3f c6 12 00 01  E.......@.5?....
0010  7f 00 00 01 0b 00 3a 16  00 20 00 00 45 00 00 1c  ......:.. ..E...
0020  00 07 00 00 01 11 74 ae  7f 00 00 01 c6 12 00 09  ......t.........
0030  9c 40 82 9a 00 08 9b e6  00 00 00 00 00 00 00 00  .@..............
0040  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  ................
0050  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  ................
0060  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  ................
0070  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  ................
0080  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  ................
0090  00 00 00 00 00 00 00 00  00 00 00 00 20 00 c8 19  ............ ...
00a0  00 08 01 01 05 dc 11 01                           ........

1 datagrams (168 bytes) built, not sent (--dry-run)
",
    ),
];

#[test]
fn documented_dry_run_examples_print_exactly_the_documented_bytes() {
    isolate();
    for (args, expected) in EXAMPLES {
        let out = rawkit(args);
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert_eq!(text(&out.stdout), *expected, "{args:?}");
        assert!(out.stderr.is_empty(), "{args:?}: {}", text(&out.stderr));
    }
}

/// Datagram `i` of example `n`, from its documented hex dump.
fn example_datagrams(n: usize) -> Vec<Vec<u8>> {
    EXAMPLES[n]
        .1
        .split("\n\n")
        .filter(|block| block.contains("0000  "))
        .map(dump_bytes)
        .collect()
}

fn etherparse_checksum_ok(d: &[u8]) -> bool {
    let h = Ipv4Slice::from_slice(d)
        .expect("etherparse")
        .header()
        .to_header();
    h.calc_header_checksum() == h.header_checksum
}

#[test]
fn documented_examples_decode_the_same_in_etherparse_and_pnet() {
    // 1: echo request.
    let d = &example_datagrams(0)[0];
    let ip = Ipv4Slice::from_slice(d).unwrap();
    assert!(etherparse_checksum_ok(d));
    assert_eq!(ip.header().identification(), 1);
    let icmp = etherparse::Icmpv4Slice::from_slice(ip.payload().payload).unwrap();
    match icmp.icmp_type() {
        Icmpv4Type::EchoRequest(e) => assert_eq!((e.id, e.seq), (0x1234, 1)),
        t => panic!("{t:?}"),
    }
    assert_eq!(
        icmp.header().icmp_type.calc_checksum(icmp.payload()),
        icmp.checksum()
    );
    // 2: UDP with a payload, checksum over the pseudo-header.
    let d = &example_datagrams(1)[0];
    let p = pnet_packet::ipv4::Ipv4Packet::new(d).unwrap();
    assert_eq!(p.get_checksum(), pnet_packet::ipv4::checksum(&p));
    let u = pnet_packet::udp::UdpPacket::new(p.payload()).unwrap();
    let lo = std::net::Ipv4Addr::LOCALHOST;
    assert_eq!(
        u.get_checksum(),
        pnet_packet::udp::ipv4_checksum(&u, &lo, &lo)
    );
    assert_eq!((u.get_source(), u.get_destination()), (40000, 7));
    assert_eq!(u.payload(), b"hello");
    // 3: TTL, DF, TOS and options.
    let d = &example_datagrams(2)[0];
    let h = Ipv4Slice::from_slice(d).unwrap();
    let h = h.header();
    assert!(etherparse_checksum_ok(d));
    assert_eq!((h.ttl(), h.dcp().value(), h.ecn().value()), (1, 46, 0));
    assert!(h.dont_fragment());
    assert_eq!(
        h.options(),
        &[0x94, 4, 0, 0, 7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    // 4: two fragments that pnet and etherparse place at 0 and 16 with MF on the first.
    let frags = example_datagrams(3);
    assert_eq!(frags.len(), 2);
    for (f, (off, mf)) in frags.iter().zip([(0u16, true), (2, false)]) {
        assert!(etherparse_checksum_ok(f));
        let h = Ipv4Slice::from_slice(f).unwrap();
        assert_eq!(h.header().fragments_offset().value(), off);
        assert_eq!(h.header().more_fragments(), mf);
        assert_eq!(h.header().identification(), 0x0bad);
    }
    // 5: every lie is in the bytes: length 1000, checksum 0xdead, reserved flag, bad UDP sum.
    let d = &example_datagrams(4)[0];
    let p = pnet_packet::ipv4::Ipv4Packet::new(d).unwrap();
    assert_eq!(p.get_total_length(), 1000);
    assert_eq!(p.get_checksum(), 0xdead);
    assert_ne!(pnet_packet::ipv4::checksum(&p), 0xdead);
    assert_eq!(p.get_flags(), 0b100);
    let u = pnet_packet::udp::UdpPacket::new(&d[20..]).unwrap();
    assert_ne!(
        u.get_checksum(),
        pnet_packet::udp::ipv4_checksum(&u, &lo, &lo)
    );
    assert_ne!(u.get_checksum(), 0);
    // 6: raw protocol 253.
    let d = &example_datagrams(5)[0];
    let h = Ipv4Slice::from_slice(d).unwrap();
    assert_eq!(h.header().protocol(), IpNumber(253));
    assert_eq!(h.payload().payload, &[0xde, 0xad, 0xbe, 0xef]);
    // 7: time exceeded quoting a UDP probe, with an RFC 4950 MPLS extension.
    let d = &example_datagrams(6)[0];
    let ip = Ipv4Slice::from_slice(d).unwrap();
    let icmp = etherparse::Icmpv4Slice::from_slice(ip.payload().payload).unwrap();
    assert!(matches!(icmp.icmp_type(), Icmpv4Type::TimeExceeded(_)));
    // etherparse's own checksum for a time exceeded leaves out bytes 5-8 (unused before RFC
    // 4884, which puts the length in byte 5): pnet sums the whole message.
    let pi = pnet_packet::icmp::IcmpPacket::new(ip.payload().payload).unwrap();
    assert_eq!(pnet_packet::icmp::checksum(&pi), icmp.checksum());
    // The RFC 4884 length (byte 5): 128 bytes of quote = 32 words.
    assert_eq!(icmp.bytes5to8()[1], 32);
    let quoted = Ipv4Slice::from_slice(&icmp.payload()[..28]).expect("quoted header");
    assert_eq!(quoted.header().ttl(), 1);
    assert_eq!(quoted.header().identification(), 7);
    assert_eq!(
        quoted.header().destination_addr(),
        std::net::Ipv4Addr::new(198, 18, 0, 9)
    );
    let qu = etherparse::UdpHeaderSlice::from_slice(quoted.payload().payload).unwrap();
    assert_eq!((qu.source_port(), qu.destination_port()), (40000, 33434));
    // RFC 4884 header (version 2, checksum), RFC 4950 object (length 8, class 1, c-type 1),
    // label 24001 = 0x05dc1, TC 0, S 1, TTL 1.
    assert_eq!(
        &icmp.payload()[128..],
        &[
            0x20, 0x00, 0xc8, 0x19, 0x00, 0x08, 0x01, 0x01, 0x05, 0xdc, 0x11, 0x01
        ]
    );
}

#[test]
fn dry_run_json_carries_every_datagram_in_hex_and_a_summary() {
    isolate();
    let out = rawkit(&[
        "udp",
        "--dst",
        "127.0.0.1",
        "--src",
        "127.0.0.1",
        "--sport",
        "5",
        "--dport",
        "6",
        "--size",
        "40",
        "--fragment",
        "16",
        "--frag-order",
        "reverse",
        "-c",
        "2",
        "--dry-run",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(events.len(), 7, "2 x 3 fragments and a summary");
    let mut ids = Vec::new();
    for e in &events[..6] {
        assert_eq!(
            (e["v"].as_u64(), e["cmd"].as_str()),
            (Some(1), Some("send"))
        );
        assert_eq!(e["event"], "datagram");
        let hex = e["hex"].as_str().unwrap();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        assert_eq!(bytes.len() as u64, e["bytes"].as_u64().unwrap());
        let h = Ipv4Slice::from_slice(&bytes).unwrap();
        assert!(etherparse_checksum_ok(&bytes));
        ids.push((e["index"].as_u64().unwrap(), h.header().identification()));
        if e["fragment"] == 1 {
            // Reverse order: the last fragment (offset 32) goes first.
            assert_eq!(h.header().fragments_offset().value(), 4);
        }
    }
    // One identification per datagram, the next one for the next datagram.
    assert_eq!(ids[0].1, ids[2].1);
    assert_eq!(ids[3].1, ids[5].1);
    assert_eq!(ids[3].1, ids[0].1.checked_add(1).unwrap_or(1));
    let s = &events[6];
    assert_eq!(s["event"], "summary");
    assert_eq!(s["datagrams"], 6);
    assert_eq!(s["dry_run"], true);
}

/// Runs `cmd` as the unprivileged user nobody (uid/gid 65534).
fn as_nobody(mut cmd: Command) -> Command {
    // SAFETY: only async-signal-safe calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(65534) != 0
                || libc::setuid(65534) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd
}

#[test]
fn dry_run_needs_no_privilege_and_sending_without_it_names_the_capability() {
    if !rawkit::net::privilege::is_root() {
        common::skip(
            &common::current_test_name(),
            "needs root to run rawkit as nobody",
        );
        return;
    }
    isolate();
    let dir = std::env::temp_dir().join(format!("rawkit-send-nobody-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let pcap = dir.join("dry.pcap");
    let pcap_s = pcap.to_str().unwrap();
    let out = run(as_nobody(command(&[
        "icmp",
        "--dst",
        "127.0.0.1",
        "--id",
        "5",
        "--dry-run",
        "--pcap",
        pcap_s,
    ])));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("ICMP echo request"));
    let mut r = rawkit::pcap::PcapReader::open(&pcap).unwrap();
    assert_eq!(r.link(), rawkit::pcap::LinkType::RawIpv4);
    assert!(r.next().is_some());
    let out = run(as_nobody(command(&["icmp", "--dst", "127.0.0.1"])));
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("rawkit send needs CAP_NET_RAW") || err.contains("needs CAP_NET_RAW"),
        "{err}"
    );
    assert!(err.contains("--dry-run needs no privileges"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn dry_run_pcap_opens_in_tshark_with_good_checksums() {
    let Some(tshark) = common::require_tool("tshark") else {
        return;
    };
    isolate();
    let dir = tempdir("tshark");
    let mut files = Vec::new();
    for (i, args) in [
        &["icmp", "--dst", "127.0.0.1", "-c", "3"][..],
        &["udp", "--dst", "127.0.0.1", "--payload", "hi"][..],
        &[
            "udp",
            "--dst",
            "127.0.0.1",
            "--size",
            "100",
            "--fragment",
            "48",
        ][..],
        &[
            "icmp",
            "--type",
            "unreachable",
            "--code",
            "port",
            "--dst",
            "127.0.0.1",
            "--quote",
            "udp --dst 198.18.0.1 --dport 53",
        ][..],
    ]
    .iter()
    .enumerate()
    {
        let f = dir.join(format!("{i}.pcap"));
        let mut a = args.to_vec();
        a.extend(["--dry-run", "--pcap", f.to_str().unwrap()]);
        let out = rawkit(&a);
        assert!(out.status.success(), "{a:?}: {}", text(&out.stderr));
        files.push(f);
    }
    for f in &files {
        let out = Command::new(&tshark)
            .args(["-n", "-r"])
            .arg(f)
            .args([
                "-o",
                "ip.check_checksum:TRUE",
                "-o",
                "udp.check_checksum:TRUE",
                "-T",
                "fields",
                "-e",
                "ip.checksum.status",
                "-e",
                "icmp.checksum.status",
                "-e",
                "udp.checksum.status",
            ])
            .stderr(Stdio::null())
            .output()
            .expect("tshark");
        let lines = text(&out.stdout);
        assert!(!lines.trim().is_empty(), "tshark read nothing from {f:?}");
        for line in lines.lines() {
            // Status 1 is "Good"; an empty field is a protocol the frame does not have (or a
            // non-first fragment); 0 would be "Bad", 2 "Unverified".
            for field in line.split('\t') {
                for v in field.split(',').filter(|v| !v.is_empty()) {
                    assert_eq!(v, "1", "{f:?}: tshark says {line:?}");
                }
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "rawkit-send-{tag}-{}-{:?}",
        std::process::id(),
        thread::current().id()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn help_names_what_the_kernel_rewrites() {
    let out = rawkit(&["udp", "--help"]);
    assert!(out.status.success());
    let h = text(&out.stdout);
    for needle in [
        "always rewrites the total length",
        "fills in the identification when it is 0 and DF is clear",
        "never fragments",
        "--fragment SIZE",
        "--udp-checksum",
        "N datagrams (B bytes) sent, E errors, R replies",
    ] {
        assert!(h.contains(needle), "help lacks {needle:?}");
    }
    let out = rawkit(&[]);
    assert_eq!(out.status.code(), Some(2), "no protocol: help and exit 2");
}

#[test]
fn bad_input_is_one_line_and_exit_2() {
    isolate();
    let dir = tempdir("bad");
    let unreadable = dir.join("missing-payload");
    let unreadable = unreadable.to_str().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "udp",
                "--dst",
                "127.0.0.1",
                "--size",
                "300",
                "--fragment",
                "100",
            ],
            "--fragment 100: not a multiple of 8",
        ),
        (
            &["udp", "--dst", "127.0.0.1", "--size", "65508"],
            "does not fit",
        ),
        (
            &["raw", "--dst", "127.0.0.1", "--size", "65516"],
            "at most 65515 bytes of payload",
        ),
        (
            &["icmp", "--dst", "127.0.0.1", "--ttl", "256"],
            "'--ttl <TTL>'",
        ),
        (
            &["udp", "--dst", "127.0.0.1", "--payload-hex", "12 3g"],
            "'3g' is not a hex byte",
        ),
        (
            &["udp", "--dst", "127.0.0.1", "--payload-hex", "123"],
            "odd number of hex digits",
        ),
        (
            &["udp", "--dst", "127.0.0.1", "--payload-file", unreadable],
            "cannot read",
        ),
        (&["icmp", "--dst", "127.0.0.1", "--ihl", "4"], "add --force"),
        (
            &["icmp", "--dst", "127.0.0.1", "--type", "pingme"],
            "unknown ICMP type",
        ),
        (
            &[
                "icmp",
                "--dst",
                "127.0.0.1",
                "--type",
                "unreachable",
                "--code",
                "nope",
            ],
            "unknown code for ICMP type 3",
        ),
        (&["icmp", "--dst", "1.2.3"], "not an IPv4 address"),
        (
            &["icmp", "--dst", "127.0.0.1", "--src", "localhost"],
            "not an IPv4 address",
        ),
        (
            &["icmp", "--dst", "127.0.0.1", "--ip-opt", "lsrr=127.0.0.300"],
            "not an IPv4 address",
        ),
        (&["udp", "--src", "127.0.0.1"], "missing --dst"),
        (
            &["icmp", "--dst", "127.0.0.1", "--tos", "1", "--ecn", "1"],
            "cannot be used with",
        ),
        (
            &["icmp", "--dst", "127.0.0.1", "--flood", "--rate", "10"],
            "cannot be used with",
        ),
        (
            &["icmp", "--dst", "127.0.0.1", "--dry-run", "--listen", "1"],
            "cannot be used with",
        ),
        (
            &[
                "icmp",
                "--dst",
                "127.0.0.1",
                "--type",
                "3",
                "--payload",
                "x",
            ],
            "use --quote or --quote-hex",
        ),
        (
            &["icmp", "--dst", "127.0.0.1", "--mpls", "16"],
            "conflicting options: --mpls",
        ),
        (
            &[
                "icmp",
                "--dst",
                "127.0.0.1",
                "--type",
                "3",
                "--quote",
                "udp --dport 9",
            ],
            "--quote 'udp --dport 9': missing --dst",
        ),
        (
            &[
                "icmp",
                "--dst",
                "127.0.0.1",
                "--type",
                "3",
                "--quote",
                "tcp --dst 1.1.1.1",
            ],
            "--quote:",
        ),
        (
            &[
                "udp",
                "--dst",
                "127.0.0.1",
                "--size",
                "64",
                "--fragment",
                "16",
                "--ip-len",
                "9",
            ],
            "conflicting options: --ip-len",
        ),
        (
            &[
                "udp",
                "--dst",
                "127.0.0.1",
                "--size",
                "64",
                "--fragment",
                "16",
                "--overlap",
                "12",
            ],
            "--overlap 12: must be a multiple of 8",
        ),
        (
            &[
                "udp",
                "--dst",
                "127.0.0.1",
                "--ip-opt",
                "rr",
                "--ip-opt",
                "rr=1",
            ],
            "the options take 46 bytes",
        ),
        (
            &["raw", "--from-pcap", unreadable, "--ttl", "9"],
            "conflicting options: --from-pcap",
        ),
        (&["raw", "--from-pcap", unreadable], "cannot open"),
        (
            &["icmp", "--dst", "127.0.0.1", "--bogus"],
            "unexpected argument",
        ),
        (&["tcp", "--dst", "127.0.0.1"], "unrecognized subcommand"),
    ];
    for (args, needle) in cases {
        let mut a = args.to_vec();
        if !a.contains(&"--dry-run") {
            a.push("--dry-run");
        }
        let out = rawkit(&a);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{a:?}: {err}");
        assert!(out.stdout.is_empty(), "{a:?}: stdout {}", text(&out.stdout));
        assert_eq!(err.lines().count(), 1, "{a:?}: {err}");
        assert!(err.starts_with("rawkit: "), "{a:?}: {err}");
        assert!(err.contains(needle), "{a:?}: {err:?} lacks {needle:?}");
        assert!(!err.contains("panicked"), "{a:?}: {err}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

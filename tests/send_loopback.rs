//! Tier 3: `rawkit send` on the wire. Each test runs in a private network namespace of its own
//! (only `lo`), runs the `rawkit` binary there, captures on `lo` and reads the datagrams with
//! etherparse and pnet_packet, never with rawkit's parser (which is used only where the test
//! also compares the bytes with a vector written by hand). The kernel's own verdicts come from
//! real sockets and from the namespace's counters (`/proc/thread-self/net/snmp`, `netstat`).
//!
//! Every datagram goes to 127.0.0.0/8 inside the namespace; every run is bounded in count and
//! killed by its PID after a few seconds.

mod common;

use std::io::Read;
use std::net::{Ipv4Addr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::Sniffer;
use etherparse::{Icmpv4Type, IpNumber, Ipv4Slice, UdpHeaderSlice};
use pnet_packet::Packet as _;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;
const WAIT: Duration = Duration::from_secs(3);
const LIMIT: Duration = Duration::from_secs(15);

fn spawn(args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rawkit"))
        .arg("send")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn rawkit")
}

/// Waits for `child` to end, at most [`LIMIT`] (then kills it by PID and fails).
fn finish(mut child: Child, what: &str) -> Output {
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let o = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = out.read_to_end(&mut v);
        v
    });
    let e = thread::spawn(move || {
        let mut v = Vec::new();
        let _ = err.read_to_end(&mut v);
        v
    });
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if started.elapsed() > LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("rawkit send {what} still running after {LIMIT:?}");
        }
        thread::sleep(Duration::from_millis(2));
    };
    Output {
        status,
        stdout: o.join().expect("stdout"),
        stderr: e.join().expect("stderr"),
    }
}

/// Runs `rawkit send ARGS` in the calling thread's namespace.
fn rawkit(args: &[&str]) -> Output {
    finish(spawn(args), &args.join(" "))
}

/// Runs `rawkit send ARGS` and insists that it succeeded.
fn rawkit_ok(args: &[&str]) -> String {
    let out = rawkit(args);
    assert!(
        out.status.success(),
        "rawkit send {args:?}: exit {:?}: {}",
        out.status.code(),
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A counter of this thread's namespace: `file` is `snmp` or `netstat`, `table` e.g. `Udp`.
fn counter(file: &str, table: &str, name: &str) -> u64 {
    let t = std::fs::read_to_string(format!("/proc/thread-self/net/{file}")).expect("counters");
    let prefix = format!("{table}:");
    let mut lines = t.lines().filter(|l| l.starts_with(&prefix));
    let (names, values) = (lines.next().expect("names"), lines.next().expect("values"));
    let i = names
        .split_whitespace()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("no counter {table} {name}"));
    values.split_whitespace().nth(i).unwrap().parse().unwrap()
}

fn ident(d: &[u8]) -> u16 {
    u16::from_be_bytes([d[4], d[5]])
}

/// The first captured datagram with identification `id`, protocol `proto` and, for ICMP, type
/// `icmp_type` (so that the kernel's answers are never taken for what rawkit sent).
fn find(ds: &[Vec<u8>], id: u16, proto: u8, icmp_type: Option<u8>) -> Option<Vec<u8>> {
    ds.iter()
        .find(|d| {
            d.len() >= 20 && ident(d) == id && d[9] == proto && {
                let hl = usize::from(d[0] & 15) * 4;
                icmp_type.is_none_or(|t| d.get(hl) == Some(&t))
            }
        })
        .cloned()
}

fn etherparse_ip_checksum_ok(d: &[u8]) -> bool {
    let h = Ipv4Slice::from_slice(d)
        .expect("etherparse")
        .header()
        .to_header();
    h.calc_header_checksum() == h.header_checksum
}

fn pnet_ip_checksum_ok(d: &[u8]) -> bool {
    let p = pnet_packet::ipv4::Ipv4Packet::new(d).expect("pnet");
    p.get_checksum() == pnet_packet::ipv4::checksum(&p)
}

fn pnet_udp_checksum(d: &[u8]) -> (u16, u16) {
    let p = pnet_packet::ipv4::Ipv4Packet::new(d).unwrap();
    let u = pnet_packet::udp::UdpPacket::new(p.payload()).unwrap();
    (
        u.get_checksum(),
        pnet_packet::udp::ipv4_checksum(&u, &p.get_source(), &p.get_destination()),
    )
}

fn etherparse_udp_checksum(d: &[u8]) -> (u16, u16) {
    let ip = Ipv4Slice::from_slice(d).unwrap();
    let h = ip.header();
    let p = ip.payload().payload;
    let u = UdpHeaderSlice::from_slice(p).unwrap();
    let calc = u
        .to_header()
        .calc_checksum_ipv4_raw(
            h.source_addr().octets(),
            h.destination_addr().octets(),
            &p[8..],
        )
        .unwrap();
    (u.checksum(), calc)
}

fn pnet_icmp_checksum_ok(d: &[u8]) -> bool {
    let p = pnet_packet::ipv4::Ipv4Packet::new(d).unwrap();
    let i = pnet_packet::icmp::IcmpPacket::new(p.payload()).unwrap();
    i.get_checksum() == pnet_packet::icmp::checksum(&i)
}

/// What a case checks in its datagram.
type Check = Box<dyn Fn(&[u8])>;

/// One case of the wire tests: the flags after `rawkit send`, and what etherparse and pnet
/// must read in the datagram captured.
struct Case {
    name: &'static str,
    args: Vec<String>,
    id: u16,
    proto: u8,
    icmp_type: Option<u8>,
    check: Check,
}

fn case(
    name: &'static str,
    id: u16,
    proto: u8,
    icmp_type: Option<u8>,
    args: &[&str],
    check: impl Fn(&[u8]) + 'static,
) -> Case {
    let mut a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    a.extend(["--id".into(), format!("{id}")]);
    Case {
        name,
        args: a,
        id,
        proto,
        icmp_type,
        check: Box::new(check),
    }
}

/// Sends every case, captures on `lo`, and runs each case's checks on its datagram.
fn run_cases(cases: Vec<Case>) {
    let sniffer = Sniffer::start("lo");
    for c in &cases {
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        rawkit_ok(&args);
    }
    let found = sniffer.wait_for(
        |ds| {
            cases
                .iter()
                .all(|c| find(ds, c.id, c.proto, c.icmp_type).is_some())
        },
        WAIT,
    );
    let (seen, _) = sniffer.stop();
    let ds: Vec<Vec<u8>> = seen.into_iter().map(|s| s.datagram).collect();
    let missing: Vec<&str> = cases
        .iter()
        .filter(|c| find(&ds, c.id, c.proto, c.icmp_type).is_none())
        .map(|c| c.name)
        .collect();
    assert!(found, "not captured: {missing:?}");
    for c in &cases {
        let d = find(&ds, c.id, c.proto, c.icmp_type).unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (c.check)(&d)));
        if r.is_err() {
            panic!("case {}: {:?}: wire bytes {:02x?}", c.name, c.args, d);
        }
    }
}

#[test]
fn every_ipv4_header_flag_reaches_the_wire_as_asked() {
    if !common::enter_netns("every_ipv4_header_flag_reaches_the_wire_as_asked") {
        return;
    }
    let icmp = ["icmp", "--dst", "127.0.0.1"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        icmp.iter().chain(extra).copied().collect()
    };
    let e = |d: &[u8]| {
        Ipv4Slice::from_slice(d)
            .expect("etherparse")
            .header()
            .to_header()
    };
    let p = |d: &[u8]| {
        let p = pnet_packet::ipv4::Ipv4Packet::new(d).expect("pnet");
        (
            p.get_ttl(),
            p.get_dscp(),
            p.get_ecn(),
            p.get_flags(),
            p.get_fragment_offset(),
            p.get_header_length(),
            p.get_source(),
            p.get_next_level_protocol().0,
            p.get_options_raw().to_vec(),
        )
    };
    let options = vec![
        0x94, 4, 0, 0, // router alert
        1, // nop
        7, 11, 4, 0, 0, 0, 0, 0, 0, 0, 0, // record route, 2 slots
        0x44, 12, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, // timestamp, 2 slots
        0, 0, 0, 0, // end of list, then padding
    ];
    let routes = vec![
        0x83, 11, 4, 127, 0, 0, 2, 127, 0, 0, 3, // lsrr
        0x89, 7, 4, 127, 0, 0, 4, // ssrr
        0, 0, // padding
    ];
    let (o1, o2) = (options.clone(), routes.clone());
    let cases = vec![
        case(
            "ttl",
            0x5101,
            1,
            Some(8),
            &with(&["--ttl", "3"]),
            move |d| {
                assert_eq!(e(d).time_to_live, 3);
                assert_eq!(p(d).0, 3);
            },
        ),
        case(
            "ttl 0",
            0x5102,
            1,
            Some(8),
            &with(&["--ttl", "0"]),
            move |d| {
                assert_eq!(e(d).time_to_live, 0);
                assert_eq!(p(d).0, 0);
            },
        ),
        case(
            "tos",
            0x5103,
            1,
            Some(8),
            &with(&["--tos", "0xb8"]),
            move |d| {
                assert_eq!((e(d).dscp.value(), e(d).ecn.value()), (46, 0));
                assert_eq!((p(d).1, p(d).2), (46, 0));
            },
        ),
        case(
            "dscp and ecn",
            0x5104,
            1,
            Some(8),
            &with(&["--dscp", "10", "--ecn", "3"]),
            move |d| {
                assert_eq!((e(d).dscp.value(), e(d).ecn.value()), (10, 3));
                assert_eq!((p(d).1, p(d).2), (10, 3));
            },
        ),
        case("df", 0x5105, 1, Some(8), &with(&["--df"]), move |d| {
            assert!(e(d).dont_fragment && !e(d).more_fragments);
            assert_eq!(p(d).3, 0b010);
        }),
        case(
            "evil bit",
            0x5106,
            1,
            Some(8),
            &with(&["--evil"]),
            move |d| {
                let h = Ipv4Slice::from_slice(d).unwrap();
                assert_eq!(h.header().slice()[6] & 0x80, 0x80);
                assert!(!h.header().dont_fragment() && !h.header().more_fragments());
                assert_eq!(p(d).3, 0b100);
            },
        ),
        case(
            "mf and offset",
            0x5107,
            1,
            Some(8),
            &with(&["--mf", "--frag-offset", "100"]),
            move |d| {
                assert!(e(d).more_fragments);
                assert_eq!(e(d).fragment_offset.value(), 100);
                assert_eq!((p(d).3, p(d).4), (0b001, 100));
            },
        ),
        case(
            "ra nop rr ts eol",
            0x5108,
            1,
            Some(8),
            &with(&[
                "--ip-opt", "ra", "--ip-opt", "nop", "--ip-opt", "rr=2", "--ip-opt", "ts=2",
                "--ip-opt", "eol",
            ]),
            move |d| {
                assert_eq!(e(d).options.as_slice(), &o1[..]);
                assert_eq!(p(d).8, o1);
                assert_eq!(p(d).5, 13);
                assert!(etherparse_ip_checksum_ok(d) && pnet_ip_checksum_ok(d));
            },
        ),
        case(
            "lsrr and ssrr",
            0x5109,
            1,
            Some(8),
            &with(&[
                "--ip-opt",
                "lsrr=127.0.0.2,127.0.0.3",
                "--ip-opt",
                "ssrr=127.0.0.4",
            ]),
            move |d| {
                assert_eq!(e(d).options.as_slice(), &o2[..]);
                assert_eq!(p(d).8, o2);
            },
        ),
        case(
            "ts-addr and hex",
            0x510a,
            1,
            Some(8),
            &with(&["--ip-opt", "ts-addr=1", "--ip-opt", "hex:01 01 01"]),
            move |d| {
                let want = [0x44, 12, 5, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0];
                assert_eq!(e(d).options.as_slice(), &want);
                assert_eq!(p(d).8, want);
            },
        ),
        case(
            "ihl larger than the header",
            0x510b,
            1,
            None,
            &with(&["--ihl", "7", "--payload-hex", "0102030405060708"]),
            move |d| {
                // The header now claims the ICMP header as options; the kernel still fixed
                // length and checksum over the 28 bytes IHL names.
                assert_eq!(Ipv4Slice::from_slice(d).unwrap().header().ihl(), 7);
                assert_eq!(p(d).5, 7);
                assert_eq!(&p(d).8[..2], &[8, 0]);
                assert!(etherparse_ip_checksum_ok(d) && pnet_ip_checksum_ok(d));
            },
        ),
        case(
            "source",
            0x510c,
            1,
            Some(8),
            &with(&["--src", "127.0.0.2"]),
            move |d| {
                assert_eq!(e(d).source, [127, 0, 0, 2]);
                assert_eq!(p(d).6, Ipv4Addr::new(127, 0, 0, 2));
            },
        ),
        case(
            "protocol override",
            0x510d,
            253,
            None,
            &with(&["--proto", "253"]),
            move |d| {
                assert_eq!(e(d).protocol, IpNumber(253));
                assert_eq!(p(d).7, 253);
                // What follows is still the ICMP echo request rawkit built.
                assert_eq!(d[20], 8);
            },
        ),
        case(
            "raw protocol and payload",
            0x510e,
            47,
            None,
            &[
                "raw",
                "--dst",
                "127.0.0.1",
                "--proto",
                "gre",
                "--payload-hex",
                "0000 0800",
            ],
            move |d| {
                let ip = Ipv4Slice::from_slice(d).unwrap();
                assert_eq!(ip.header().protocol(), IpNumber::GRE);
                assert_eq!(ip.payload().payload, &[0, 0, 8, 0]);
                assert_eq!(p(d).7, 47);
            },
        ),
    ];
    run_cases(cases);
}

#[test]
fn every_udp_field_and_payload_flag_reaches_the_wire_as_asked() {
    if !common::enter_netns("every_udp_field_and_payload_flag_reaches_the_wire_as_asked") {
        return;
    }
    let dir = tempdir("payload");
    let file = dir.join("payload.bin");
    std::fs::write(&file, [0u8, 1, 2, 250, 251]).unwrap();
    let file: &'static str = Box::leak(file.to_str().unwrap().to_owned().into_boxed_str());
    let udp = [
        "udp",
        "--dst",
        "127.0.0.1",
        "--sport",
        "40000",
        "--dport",
        "33999",
    ];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        udp.iter().chain(extra).copied().collect()
    };
    let ports = |d: &[u8]| {
        let ip = Ipv4Slice::from_slice(d).unwrap();
        let u = UdpHeaderSlice::from_slice(ip.payload().payload).unwrap();
        let p = pnet_packet::ipv4::Ipv4Packet::new(d).unwrap();
        let pu = pnet_packet::udp::UdpPacket::new(p.payload()).unwrap();
        assert_eq!((u.source_port(), u.destination_port()), (40000, 33999));
        assert_eq!((pu.get_source(), pu.get_destination()), (40000, 33999));
        (
            u.length(),
            pu.get_length(),
            ip.payload().payload[8..].to_vec(),
        )
    };
    let good = |d: &[u8]| {
        let (f, c) = pnet_udp_checksum(d);
        let (f2, c2) = etherparse_udp_checksum(d);
        assert!(f == c && f2 == c2, "checksum {f:04x} {c:04x} {c2:04x}");
    };
    let cases = vec![
        case(
            "payload text",
            0x5201,
            17,
            None,
            &with(&["--payload", "rawkit"]),
            move |d| {
                let (l, pl, payload) = ports(d);
                assert_eq!((l, pl), (14, 14));
                assert_eq!(payload, b"rawkit");
                good(d);
            },
        ),
        case(
            "payload hex",
            0x5202,
            17,
            None,
            &with(&["--payload-hex", "00:ff:10"]),
            move |d| {
                assert_eq!(ports(d).2, [0, 0xff, 0x10]);
                good(d);
            },
        ),
        case(
            "payload file",
            0x5203,
            17,
            None,
            &with(&["--payload-file", file]),
            move |d| {
                assert_eq!(ports(d).2, [0, 1, 2, 250, 251]);
                good(d);
            },
        ),
        case(
            "size and pattern",
            0x5204,
            17,
            None,
            &with(&["--size", "7", "--pattern", "a1b2"]),
            move |d| {
                assert_eq!(ports(d).2, [0xa1, 0xb2, 0xa1, 0xb2, 0xa1, 0xb2, 0xa1]);
                good(d);
            },
        ),
        case(
            "size alone",
            0x5205,
            17,
            None,
            &with(&["--size", "3"]),
            move |d| {
                assert_eq!(ports(d).2, [0, 0, 0]);
                good(d);
            },
        ),
        case(
            "udp length",
            0x5206,
            17,
            None,
            &with(&["--payload", "abc", "--udp-len", "100"]),
            move |d| {
                let (l, pl, _) = ports(d);
                assert_eq!((l, pl), (100, 100));
            },
        ),
        case(
            "udp checksum value",
            0x5207,
            17,
            None,
            &with(&["--udp-checksum", "0x1234"]),
            move |d| {
                assert_eq!(pnet_udp_checksum(d).0, 0x1234);
                assert_eq!(etherparse_udp_checksum(d).0, 0x1234);
            },
        ),
        case(
            "udp checksum none",
            0x5208,
            17,
            None,
            &with(&["--payload", "x", "--udp-checksum", "none"]),
            move |d| {
                assert_eq!(pnet_udp_checksum(d).0, 0);
                assert_eq!(etherparse_udp_checksum(d).0, 0);
            },
        ),
        case(
            "udp checksum bad",
            0x5209,
            17,
            None,
            &with(&["--payload", "x", "--udp-checksum", "bad"]),
            move |d| {
                let (f, c) = pnet_udp_checksum(d);
                let (f2, c2) = etherparse_udp_checksum(d);
                assert!(f != c && f2 != c2 && f != 0);
            },
        ),
        case(
            "default source from the route",
            0x520a,
            17,
            None,
            &with(&["--payload", "route"]),
            move |d| {
                let ip = Ipv4Slice::from_slice(d).unwrap();
                assert_eq!(ip.header().source_addr(), LO);
                good(d);
            },
        ),
    ];
    run_cases(cases);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn every_icmp_field_reaches_the_wire_as_asked() {
    if !common::enter_netns("every_icmp_field_reaches_the_wire_as_asked") {
        return;
    }
    let icmp = ["icmp", "--dst", "127.0.0.1"];
    let with = |extra: &[&'static str]| -> Vec<&'static str> {
        icmp.iter().chain(extra).copied().collect()
    };
    let e = |d: &[u8]| {
        let ip = Ipv4Slice::from_slice(d).unwrap();
        let i = etherparse::Icmpv4Slice::from_slice(ip.payload().payload).unwrap();
        (i.icmp_type(), i.checksum(), i.payload().to_vec())
    };
    let pn = |d: &[u8]| {
        let p = pnet_packet::ipv4::Ipv4Packet::new(d).unwrap();
        let i = pnet_packet::icmp::IcmpPacket::new(p.payload()).unwrap();
        (i.get_icmp_type().0, i.get_icmp_code().0, i.get_checksum())
    };
    let quote28 = "45000020000100004011f9c97f000001c61200050fa0000900085a0a";
    let cases = vec![
        case(
            "ident and seq",
            0x5301,
            1,
            Some(8),
            &with(&["--ident", "0xbeef", "--seq", "9", "--payload", "ping"]),
            move |d| {
                match e(d).0 {
                    Icmpv4Type::EchoRequest(h) => assert_eq!((h.id, h.seq), (0xbeef, 9)),
                    t => panic!("{t:?}"),
                }
                let p = pnet_packet::ipv4::Ipv4Packet::new(d).unwrap();
                let r =
                    pnet_packet::icmp::echo_request::EchoRequestPacket::new(p.payload()).unwrap();
                assert_eq!((r.get_identifier(), r.get_sequence_number()), (0xbeef, 9));
                assert_eq!(r.payload(), b"ping");
                assert!(pnet_icmp_checksum_ok(d));
            },
        ),
        case(
            "any type and code",
            0x5302,
            1,
            Some(42),
            &with(&["--type", "42", "--code", "7", "--payload-hex", "aabb"]),
            move |d| {
                match e(d).0 {
                    Icmpv4Type::Unknown {
                        type_u8, code_u8, ..
                    } => assert_eq!((type_u8, code_u8), (42, 7)),
                    t => panic!("{t:?}"),
                }
                assert_eq!((pn(d).0, pn(d).1), (42, 7));
                assert_eq!(e(d).2, [0xaa, 0xbb]);
                assert!(pnet_icmp_checksum_ok(d));
            },
        ),
        case(
            "echo with a code",
            0x5303,
            1,
            Some(8),
            &with(&["--code", "5"]),
            move |d| {
                assert_eq!((pn(d).0, pn(d).1), (8, 5));
                assert!(matches!(e(d).0, Icmpv4Type::Unknown { code_u8: 5, .. }));
                assert!(pnet_icmp_checksum_ok(d));
            },
        ),
        case(
            "icmp checksum value",
            0x5304,
            1,
            Some(8),
            &with(&["--icmp-checksum", "0xabcd"]),
            move |d| {
                assert_eq!((e(d).1, pn(d).2), (0xabcd, 0xabcd));
            },
        ),
        case(
            "icmp checksum bad",
            0x5305,
            1,
            Some(8),
            &with(&["--icmp-checksum", "bad"]),
            move |d| assert!(!pnet_icmp_checksum_ok(d)),
        ),
        case(
            "frag needed with mtu",
            0x5306,
            1,
            Some(3),
            &with(&[
                "--type",
                "unreachable",
                "--code",
                "frag-needed",
                "--mtu",
                "1400",
                "--quote",
                "udp --dst 198.18.0.5 --dport 9 --sport 4000 --id 1",
            ]),
            move |d| {
                match e(d).0 {
                    Icmpv4Type::DestinationUnreachable(
                        etherparse::icmpv4::DestUnreachableHeader::FragmentationNeeded {
                            next_hop_mtu,
                        },
                    ) => assert_eq!(next_hop_mtu, 1400),
                    t => panic!("{t:?}"),
                }
                assert_eq!((pn(d).0, pn(d).1), (3, 4));
                assert!(pnet_icmp_checksum_ok(d));
                // RFC 792: the quote is the header and 8 bytes.
                let q = e(d).2;
                assert_eq!(q.len(), 28);
                let qh = Ipv4Slice::from_slice(&q).unwrap();
                assert_eq!(qh.header().destination_addr(), Ipv4Addr::new(198, 18, 0, 5));
                assert_eq!(
                    qh.header().source_addr(),
                    LO,
                    "quote --src defaults to --dst"
                );
            },
        ),
        case(
            "parameter problem pointer and quote hex",
            0x5307,
            1,
            Some(12),
            &with(&[
                "--type",
                "parameter-problem",
                "--pointer",
                "20",
                "--quote-hex",
                quote28,
            ]),
            move |d| {
                match e(d).0 {
                    Icmpv4Type::ParameterProblem(
                        etherparse::icmpv4::ParameterProblemHeader::PointerIndicatesError(p),
                    ) => assert_eq!(p, 20),
                    t => panic!("{t:?}"),
                }
                assert_eq!(e(d).2.len(), 28);
                assert!(pnet_icmp_checksum_ok(d));
            },
        ),
        case(
            "redirect gateway",
            0x5308,
            1,
            Some(5),
            &with(&[
                "--type",
                "redirect",
                "--code",
                "host",
                "--gateway",
                "198.18.0.254",
                "--quote",
                "udp --dst 198.18.0.5",
                "--quote-len",
                "all",
            ]),
            move |d| {
                match e(d).0 {
                    Icmpv4Type::Redirect(r) => {
                        assert_eq!(r.gateway_internet_address, [198, 18, 0, 254]);
                        assert_eq!(r.code, etherparse::icmpv4::RedirectCode::RedirectForHost);
                    }
                    t => panic!("{t:?}"),
                }
                assert_eq!(e(d).2.len(), 28, "all of a 28-byte datagram");
            },
        ),
        case(
            "rest of header",
            0x5309,
            1,
            Some(42),
            &with(&["--type", "42", "--rest", "0x01020304"]),
            move |d| {
                assert!(matches!(
                    e(d).0,
                    Icmpv4Type::Unknown {
                        bytes5to8: [1, 2, 3, 4],
                        ..
                    }
                ));
                assert!(pnet_icmp_checksum_ok(d));
            },
        ),
        case(
            "timestamp",
            0x530a,
            1,
            Some(13),
            &with(&["--type", "timestamp", "--ident", "5", "--seq", "6"]),
            move |d| {
                match e(d).0 {
                    Icmpv4Type::TimestampRequest(t) => assert_eq!((t.id, t.seq), (5, 6)),
                    t => panic!("{t:?}"),
                }
                assert!(pnet_icmp_checksum_ok(d));
            },
        ),
        case(
            "extension object",
            0x530b,
            1,
            Some(3),
            &with(&[
                "--type",
                "unreachable",
                "--code",
                "port",
                "--quote",
                "udp --dst 198.18.0.5 --dport 9",
                "--ext-object",
                "2:1:0a0b0c0d",
            ]),
            move |d| {
                let data = e(d).2;
                assert_eq!(
                    data.len(),
                    128 + 12,
                    "quote padded to 128, then the extension"
                );
                let ext = &data[128..];
                assert_eq!(&ext[..2], &[0x20, 0]);
                assert_eq!(&ext[4..], &[0, 8, 2, 1, 0x0a, 0x0b, 0x0c, 0x0d]);
                assert_eq!(ones_complement_sum(ext), 0xffff, "extension checksum");
                assert!(pnet_icmp_checksum_ok(d));
            },
        ),
    ];
    run_cases(cases);
}

/// RFC 1071's sum, written out here (folded, not complemented).
fn ones_complement_sum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[test]
fn the_kernel_rewrites_length_checksum_zero_ident_and_zero_source_only() {
    if !common::enter_netns("the_kernel_rewrites_length_checksum_zero_ident_and_zero_source_only") {
        return;
    }
    let sniffer = Sniffer::start("lo");
    // Lies in the length and checksum: gone on the wire.
    rawkit_ok(&[
        "icmp",
        "--dst",
        "127.0.0.1",
        "--id",
        "0x5401",
        "--ip-len",
        "9999",
        "--ip-checksum",
        "0xdead",
    ]);
    rawkit_ok(&[
        "icmp",
        "--dst",
        "127.0.0.1",
        "--id",
        "0x5402",
        "--ip-checksum",
        "bad",
    ]);
    // Identification 0: filled in unless DF is set.
    rawkit_ok(&[
        "icmp",
        "--dst",
        "127.0.0.1",
        "--id",
        "0",
        "--ident",
        "0x5403",
    ]);
    rawkit_ok(&[
        "icmp",
        "--dst",
        "127.0.0.1",
        "--id",
        "0",
        "--df",
        "--ident",
        "0x5404",
    ]);
    // Source 0.0.0.0: filled in.
    rawkit_ok(&[
        "icmp",
        "--dst",
        "127.0.0.1",
        "--id",
        "0x5405",
        "--src",
        "0.0.0.0",
    ]);
    let echo_with_ident = |ds: &[Vec<u8>], ident: u16| {
        ds.iter()
            .find(|d| d.len() >= 28 && d[20] == 8 && u16::from_be_bytes([d[24], d[25]]) == ident)
            .cloned()
    };
    assert!(sniffer.wait_for(
        |ds| find(ds, 0x5405, 1, Some(8)).is_some() && echo_with_ident(ds, 0x5404).is_some(),
        WAIT
    ));
    let (seen, _) = sniffer.stop();
    let ds: Vec<Vec<u8>> = seen.into_iter().map(|s| s.datagram).collect();
    for id in [0x5401, 0x5402] {
        let d = find(&ds, id, 1, Some(8)).expect("captured");
        let h = Ipv4Slice::from_slice(&d).unwrap();
        assert_eq!(h.header().total_len(), 28);
        assert!(etherparse_ip_checksum_ok(&d) && pnet_ip_checksum_ok(&d));
    }
    let filled = echo_with_ident(&ds, 0x5403).expect("id 0 without DF");
    assert_ne!(ident(&filled), 0, "the kernel chose an identification");
    let kept = echo_with_ident(&ds, 0x5404).expect("id 0 with DF");
    assert_eq!(ident(&kept), 0, "with DF the identification stays 0");
    let d = find(&ds, 0x5405, 1, Some(8)).expect("src 0");
    assert_eq!(
        pnet_packet::ipv4::Ipv4Packet::new(&d).unwrap().get_source(),
        LO
    );
    assert!(pnet_ip_checksum_ok(&d));

    // An IHL below 5 is refused outright.
    let out = rawkit(&["icmp", "--dst", "127.0.0.1", "--ihl", "4", "--force"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("EINVAL") && err.contains("IHL is 5 or more"),
        "{err}"
    );
    assert!(text(&out.stdout).starts_with("0 datagrams (0 bytes) sent, 1 errors"));
}

#[test]
fn a_version_other_than_4_goes_out_with_only_length_and_checksum_fixed() {
    if !common::enter_netns("a_version_other_than_4_goes_out_with_only_length_and_checksum_fixed") {
        return;
    }
    // The sniffer keeps IPv4 only: read the frames here.
    use rawkit::net::capture::{Capture, CaptureOptions};
    let mut cap = Capture::open(
        "lo",
        CaptureOptions {
            read_timeout: Some(Duration::from_millis(50)),
            ..CaptureOptions::default()
        },
    )
    .expect("capture on lo");
    rawkit_ok(&[
        "icmp",
        "--dst",
        "127.0.0.1",
        "--ip-version",
        "6",
        "--ip-len",
        "9999",
        "--id",
        "0x5501",
    ]);
    let mut buf = vec![0u8; 2048];
    let deadline = Instant::now() + WAIT;
    let frame = loop {
        assert!(
            Instant::now() < deadline,
            "the version 6 datagram was not seen"
        );
        if let Ok(Some(f)) = cap.next(&mut buf) {
            let d = &buf[14..f.len];
            if d.len() >= 20 && d[0] >> 4 == 6 && ident(d) == 0x5501 {
                break d.to_vec();
            }
        }
    };
    assert_eq!(frame[0], 0x65);
    assert_eq!(
        u16::from_be_bytes([frame[2], frame[3]]),
        28,
        "length rewritten"
    );
    assert_eq!(
        ones_complement_sum(&frame[..20]),
        0xffff,
        "checksum rewritten"
    );
}

#[test]
fn a_crafted_time_exceeded_with_quote_and_mpls_decodes_back() {
    if !common::enter_netns("a_crafted_time_exceeded_with_quote_and_mpls_decodes_back") {
        return;
    }
    let sniffer = Sniffer::start("lo");
    rawkit_ok(&[
        "icmp",
        "--type",
        "time-exceeded",
        "--dst",
        "127.0.0.1",
        "--src",
        "127.0.0.9",
        "--id",
        "0x5601",
        "--quote",
        "udp --dst 198.18.3.3 --sport 44444 --dport 33435 --ttl 1 --id 0x77",
        "--quote-len",
        "all",
        "--mpls",
        "L=24001,E=5,S=0,T=1",
        "--mpls",
        "L=16,T=255",
    ]);
    assert!(sniffer.wait_for(|ds| find(ds, 0x5601, 1, Some(11)).is_some(), WAIT));
    let (seen, _) = sniffer.stop();
    let ds: Vec<Vec<u8>> = seen.into_iter().map(|s| s.datagram).collect();
    let d = find(&ds, 0x5601, 1, Some(11)).unwrap();
    // Outer parts by etherparse and pnet.
    let ip = Ipv4Slice::from_slice(&d).unwrap();
    assert_eq!(ip.header().source_addr(), Ipv4Addr::new(127, 0, 0, 9));
    assert!(etherparse_ip_checksum_ok(&d));
    let icmp = etherparse::Icmpv4Slice::from_slice(ip.payload().payload).unwrap();
    assert_eq!(
        icmp.icmp_type(),
        Icmpv4Type::TimeExceeded(etherparse::icmpv4::TimeExceededCode::TtlExceededInTransit)
    );
    assert!(pnet_icmp_checksum_ok(&d));
    // RFC 4884: length 128/4 = 32 words in byte 5; a 28-byte quote padded to 128.
    assert_eq!(icmp.bytes5to8(), [0, 32, 0, 0]);
    let data = icmp.payload();
    let quoted = Ipv4Slice::from_slice(&data[..28]).expect("quoted datagram");
    assert_eq!(quoted.header().ttl(), 1);
    assert_eq!(quoted.header().identification(), 0x77);
    assert_eq!(quoted.header().source_addr(), LO);
    assert_eq!(
        quoted.header().destination_addr(),
        Ipv4Addr::new(198, 18, 3, 3)
    );
    let qu = UdpHeaderSlice::from_slice(quoted.payload().payload).unwrap();
    assert_eq!((qu.source_port(), qu.destination_port()), (44444, 33435));
    assert!(data[28..128].iter().all(|b| *b == 0), "zero padding");
    // The extension, against bytes written out from RFC 4884 and RFC 4950: version 2, the
    // checksum, an object of 12 bytes (class 1, c-type 1), then two label stack entries:
    // 24001 << 12 | 5 << 9 | S 0 | TTL 1, and 16 << 12 | S 1 | TTL 255.
    let e1: u32 = (24001 << 12) | (5 << 9) | 1;
    let e2: u32 = (16 << 12) | (1 << 8) | 255;
    let mut want = vec![0x20, 0, 0, 0, 0, 12, 1, 1];
    want.extend(e1.to_be_bytes());
    want.extend(e2.to_be_bytes());
    let ck = !ones_complement_sum(&want);
    want[2..4].copy_from_slice(&ck.to_be_bytes());
    assert_eq!(&data[128..], &want[..]);
    // rawkit's parser reads the same bytes back to the same values.
    let p = rawkit::packet::icmp::IcmpPacket::new_checked(ip.payload().payload).unwrap();
    let ext = p.extensions().expect("extensions").expect("well formed");
    assert!(ext.verify_checksum());
    let entries: Vec<_> = ext
        .objects()
        .map(Result::unwrap)
        .flat_map(|o| o.mpls_entries().collect::<Vec<_>>())
        .map(|m| (m.label, m.tc, m.bottom, m.ttl))
        .collect();
    assert_eq!(entries, vec![(24001, 5, false, 1), (16, 0, true, 255)]);
}

#[test]
fn a_udp_payload_reaches_a_real_udp_socket() {
    if !common::enter_netns("a_udp_payload_reaches_a_real_udp_socket") {
        return;
    }
    let sock = UdpSocket::bind((LO, 0)).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let port = sock.local_addr().unwrap().port().to_string();
    rawkit_ok(&[
        "udp",
        "--dst",
        "127.0.0.1",
        "--sport",
        "40000",
        "--dport",
        &port,
        "--payload",
        "hello from rawkit send",
    ]);
    let mut buf = [0u8; 100];
    let (n, from) = sock.recv_from(&mut buf).expect("delivered");
    assert_eq!(&buf[..n], b"hello from rawkit send");
    assert_eq!(from.port(), 40000);
}

#[test]
fn fragments_in_order_reversed_and_shuffled_are_reassembled_whole() {
    if !common::enter_netns("fragments_in_order_reversed_and_shuffled_are_reassembled_whole") {
        return;
    }
    let sock = UdpSocket::bind((LO, 0)).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let port = sock.local_addr().unwrap().port().to_string();
    let sniffer = Sniffer::start("lo");
    let pattern: Vec<u8> = [0x01, 0x23, 0x45, 0x67, 0x89]
        .iter()
        .copied()
        .cycle()
        .take(3000)
        .collect();
    for (order, id) in [
        ("in", "0x5701"),
        ("reverse", "0x5702"),
        ("random", "0x5703"),
    ] {
        rawkit_ok(&[
            "udp",
            "--dst",
            "127.0.0.1",
            "--dport",
            &port,
            "--id",
            id,
            "--size",
            "3000",
            "--pattern",
            "0123456789",
            "--fragment",
            "512",
            "--frag-order",
            order,
        ]);
        let mut buf = vec![0u8; 4000];
        let (n, _) = sock
            .recv_from(&mut buf)
            .unwrap_or_else(|e| panic!("{order}: {e}"));
        assert_eq!(&buf[..n], &pattern[..], "{order}: reassembled payload");
    }
    let (seen, _) = sniffer.stop();
    for (order, id) in [("in", 0x5701u16), ("reverse", 0x5702), ("random", 0x5703)] {
        let offsets: Vec<u16> = seen
            .iter()
            .map(|s| &s.datagram)
            .filter(|d| ident(d) == id && d[9] == 17)
            .map(|d| {
                let h = Ipv4Slice::from_slice(d).expect("etherparse reads the fragment");
                assert!(h.is_payload_fragmented());
                let p = pnet_packet::ipv4::Ipv4Packet::new(d).unwrap();
                assert_eq!(
                    p.get_fragment_offset(),
                    h.header().fragments_offset().value()
                );
                h.header().fragments_offset().value()
            })
            .collect();
        assert_eq!(
            offsets.len(),
            6,
            "{order}: 3008 bytes of UDP in 512-byte pieces"
        );
        let mut sorted = offsets.clone();
        sorted.sort_unstable();
        match order {
            "in" => assert_eq!(offsets, sorted),
            "reverse" => assert_eq!(offsets, sorted.iter().rev().copied().collect::<Vec<_>>()),
            _ => assert_ne!(offsets, sorted, "random is never the offset order"),
        }
    }
}

#[test]
fn partly_overlapping_fragments_make_linux_drop_the_whole_datagram() {
    if !common::enter_netns("partly_overlapping_fragments_make_linux_drop_the_whole_datagram") {
        return;
    }
    let sock = UdpSocket::bind((LO, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let port = sock.local_addr().unwrap().port().to_string();
    let overlaps = counter("netstat", "IpExt", "ReasmOverlaps");
    let fails = counter("snmp", "Ip", "ReasmFails");
    let oks = counter("snmp", "Ip", "ReasmOKs");
    let sniffer = Sniffer::start("lo");
    rawkit_ok(&[
        "udp",
        "--dst",
        "127.0.0.1",
        "--dport",
        &port,
        "--id",
        "0x5801",
        "--size",
        "200",
        "--fragment",
        "64",
        "--overlap",
    ]);
    let mut buf = [0u8; 400];
    assert!(
        sock.recv_from(&mut buf).is_err(),
        "Linux must not deliver a datagram whose fragments overlap"
    );
    // Fragments [0,64) [56,120) [112,176) [168,208): the second overlaps the first and the
    // kernel throws the queue away (ReasmOverlaps, ReasmFails); the third starts a new queue,
    // which the fourth overlaps again. Nothing is reassembled.
    assert_eq!(counter("netstat", "IpExt", "ReasmOverlaps"), overlaps + 2);
    assert_eq!(counter("snmp", "Ip", "ReasmFails"), fails + 2);
    assert_eq!(counter("snmp", "Ip", "ReasmOKs"), oks);
    // On the wire: each fragment starts 8 bytes before the previous one ended.
    let (seen, _) = sniffer.stop();
    let spans: Vec<(usize, usize)> = seen
        .iter()
        .map(|s| &s.datagram)
        .filter(|d| ident(d) == 0x5801)
        .map(|d| {
            let h = Ipv4Slice::from_slice(d).unwrap();
            let off = usize::from(h.header().fragments_offset().value()) * 8;
            (off, off + h.payload().payload.len())
        })
        .collect();
    assert!(spans.len() >= 3, "{spans:?}");
    for w in spans.windows(2) {
        assert_eq!(w[1].0 + 8, w[0].1, "{spans:?}");
    }
    // The same bytes without overlap are delivered.
    rawkit_ok(&[
        "udp",
        "--dst",
        "127.0.0.1",
        "--dport",
        &port,
        "--id",
        "0x5802",
        "--size",
        "200",
        "--fragment",
        "64",
    ]);
    assert_eq!(sock.recv_from(&mut buf).expect("delivered").0, 200);
}

/// Hex of bytes, for `--payload-hex`.
fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn hand_made_fragments_with_one_contained_in_another_are_still_reassembled() {
    if !common::enter_netns(
        "hand_made_fragments_with_one_contained_in_another_are_still_reassembled",
    ) {
        return;
    }
    let sock = UdpSocket::bind((LO, 0)).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let port = sock.local_addr().unwrap().port().to_string();
    // The UDP datagram (header and 64 bytes), as rawkit would build it.
    let out = rawkit_ok(&[
        "udp",
        "--dst",
        "127.0.0.1",
        "--dport",
        &port,
        "--size",
        "64",
        "--pattern",
        "5a3c",
        "--dry-run",
        "--json",
    ]);
    let ev: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let h = ev["hex"].as_str().unwrap();
    let whole: Vec<u8> = (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16).unwrap())
        .collect();
    let udp = &whole[20..]; // 72 bytes
    // Three fragments made with rawkit's own flags: [0,48) MF, [8,24) MF (inside the first),
    // [48,72) last. Linux ignores a fragment wholly inside one it has (as a duplicate) and
    // still reassembles; only a partial overlap discards the datagram.
    let overlaps = counter("netstat", "IpExt", "ReasmOverlaps");
    for (offset_units, range, mf) in [(0u16, 0..48, true), (1, 8..24, true), (6, 48..72, false)] {
        let units = offset_units.to_string();
        let payload = hex(&udp[range]);
        let mut args = vec![
            "raw",
            "--dst",
            "127.0.0.1",
            "--proto",
            "udp",
            "--id",
            "0x5a01",
            "--frag-offset",
            &units,
            "--payload-hex",
            &payload,
        ];
        if mf {
            args.push("--mf");
        }
        rawkit_ok(&args);
    }
    let mut buf = [0u8; 200];
    let (n, _) = sock.recv_from(&mut buf).expect("reassembled and delivered");
    assert_eq!(&buf[..n], &udp[8..]);
    assert_eq!(counter("netstat", "IpExt", "ReasmOverlaps"), overlaps);
}

#[test]
fn a_wrong_udp_checksum_is_not_delivered_and_is_counted() {
    if !common::enter_netns("a_wrong_udp_checksum_is_not_delivered_and_is_counted") {
        return;
    }
    let sock = UdpSocket::bind((LO, 0)).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let port = sock.local_addr().unwrap().port().to_string();
    let before = counter("snmp", "Udp", "InCsumErrors");
    // Nothing answers a datagram the kernel dropped: --listen ends with status 1.
    let out = rawkit(&[
        "udp",
        "--dst",
        "127.0.0.1",
        "--dport",
        &port,
        "--payload",
        "corrupt",
        "--udp-checksum",
        "bad",
        "--listen",
        "0.3",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "1 datagrams (35 bytes) sent, 0 errors, 0 replies\n"
    );
    let mut buf = [0u8; 100];
    assert!(sock.recv_from(&mut buf).is_err(), "not delivered");
    assert!(common::wait_for(
        || counter("snmp", "Udp", "InCsumErrors") == before + 1,
        WAIT
    ));
    // The same datagram with its checksum right is delivered.
    rawkit_ok(&[
        "udp",
        "--dst",
        "127.0.0.1",
        "--dport",
        &port,
        "--payload",
        "corrupt",
    ]);
    assert_eq!(sock.recv_from(&mut buf).expect("delivered").0, 7);
}

#[test]
fn a_crafted_echo_request_gets_the_kernel_reply_shown_by_listen() {
    if !common::enter_netns("a_crafted_echo_request_gets_the_kernel_reply_shown_by_listen") {
        return;
    }
    let started = Instant::now();
    let out = rawkit_ok(&[
        "icmp",
        "--dst",
        "127.0.0.1",
        "--ident",
        "0x4321",
        "-c",
        "2",
        "-i",
        "0.05",
        "--listen",
        "5",
    ]);
    // Both datagrams answered: the listen ends early.
    assert!(started.elapsed() < Duration::from_secs(4), "{out}");
    let replies: Vec<&str> = out.lines().filter(|l| l.starts_with("reply: ")).collect();
    assert_eq!(replies.len(), 2, "{out}");
    for (i, r) in replies.iter().enumerate() {
        assert!(
            r.starts_with(&format!(
                "reply: IP 127.0.0.1 > 127.0.0.1: ICMP echo reply, id 17185, seq {}, length 8, rtt ",
                i + 1
            )),
            "{r}"
        );
    }
    assert_eq!(
        out.lines().last(),
        Some("2 datagrams (56 bytes) sent, 0 errors, 2 replies")
    );
    // The same in JSON.
    let out = rawkit_ok(&[
        "icmp",
        "--dst",
        "127.0.0.1",
        "--ident",
        "0x4322",
        "--seq",
        "7",
        "--listen",
        "5",
        "--json",
    ]);
    let events: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["sent", "reply", "summary"]);
    let r = &events[1];
    assert_eq!(
        (r["v"].as_u64(), r["cmd"].as_str()),
        (Some(1), Some("send"))
    );
    assert_eq!(r["kind"], "query_reply");
    assert_eq!((r["type"].as_u64(), r["code"].as_u64()), (Some(0), Some(0)));
    assert_eq!(r["from"], "127.0.0.1");
    assert_eq!(r["index"], 1);
    assert!(r["rtt_ms"].as_f64().is_some_and(|x| x >= 0.0));
    let s = &events[2];
    assert_eq!(
        (
            s["datagrams"].as_u64(),
            s["replies"].as_u64(),
            s["exit"].as_u64()
        ),
        (Some(1), Some(1), Some(0))
    );
}

#[test]
fn listen_shows_the_errors_and_answers_that_quote_or_answer_what_was_sent() {
    if !common::enter_netns(
        "listen_shows_the_errors_and_answers_that_quote_or_answer_what_was_sent",
    ) {
        return;
    }
    // UDP to a closed port: the kernel's port unreachable quotes the datagram.
    let out = rawkit_ok(&[
        "udp",
        "--dst",
        "127.0.0.1",
        "--dport",
        "9",
        "--listen",
        "3",
        "--json",
    ]);
    let reply: serde_json::Value =
        serde_json::from_str(out.lines().nth(1).expect("a reply")).unwrap();
    assert_eq!(reply["kind"], "icmp_error");
    assert_eq!(
        (reply["type"].as_u64(), reply["code"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(reply["index"], 1);
    // An unknown protocol: protocol unreachable.
    let out = rawkit_ok(&[
        "raw",
        "--dst",
        "127.0.0.1",
        "--proto",
        "253",
        "--listen",
        "3",
    ]);
    assert!(
        out.contains("reply: IP 127.0.0.1 > 127.0.0.1: ICMP 127.0.0.1 protocol 253 unreachable"),
        "{out}"
    );
    // A UDP server's answer to the source port.
    let server = UdpSocket::bind((LO, 0)).unwrap();
    server
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let port = server.local_addr().unwrap().port().to_string();
    let echo = thread::spawn(move || {
        let mut buf = [0u8; 100];
        let (n, from) = server
            .recv_from(&mut buf)
            .expect("the server got the datagram");
        server.send_to(&buf[..n], from).unwrap();
    });
    let out = rawkit_ok(&[
        "udp",
        "--dst",
        "127.0.0.1",
        "--sport",
        "40001",
        "--dport",
        &port,
        "--payload",
        "ping",
        "--listen",
        "3",
    ]);
    echo.join().unwrap();
    assert!(
        out.contains(&format!(
            "reply: IP 127.0.0.1.{port} > 127.0.0.1.40001: UDP, length 4"
        )),
        "{out}"
    );
    assert!(
        out.ends_with("1 datagrams (32 bytes) sent, 0 errors, 1 replies\n"),
        "{out}"
    );
}

#[test]
fn a_datagram_over_the_mtu_names_the_mtu_and_the_fragment_fix() {
    if !common::enter_netns("a_datagram_over_the_mtu_names_the_mtu_and_the_fragment_fix") {
        return;
    }
    common::set_mtu("lo", 1500).expect("lo MTU 1500");
    let sock = UdpSocket::bind((LO, 0)).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let port = sock.local_addr().unwrap().port().to_string();
    let args = [
        "udp",
        "--dst",
        "127.0.0.1",
        "--dport",
        &port,
        "--size",
        "3000",
    ];
    let out = rawkit(&args);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("rawkit: datagram of 3028 bytes is larger than the MTU (1500)"),
        "{err}"
    );
    assert!(
        err.contains("EMSGSIZE") && err.ends_with("add --fragment 1480\n"),
        "{err}"
    );
    let mut fixed = args.to_vec();
    fixed.extend(["--fragment", "1480"]);
    let out = rawkit_ok(&fixed);
    assert_eq!(out, "3 datagrams (3068 bytes) sent, 0 errors, 0 replies\n");
    let mut buf = vec![0u8; 4000];
    assert_eq!(sock.recv_from(&mut buf).expect("reassembled").0, 3000);
}

#[test]
fn a_flood_is_counted_by_the_kernel() {
    if !common::enter_netns("a_flood_is_counted_by_the_kernel") {
        return;
    }
    let (ins, outs) = (
        counter("snmp", "Icmp", "InEchos"),
        counter("snmp", "Icmp", "OutEchos"),
    );
    let out = rawkit_ok(&["icmp", "--dst", "127.0.0.1", "--flood", "-c", "5000"]);
    assert_eq!(
        out,
        "5000 datagrams (140000 bytes) sent, 0 errors, 0 replies\n"
    );
    assert_eq!(counter("snmp", "Icmp", "InEchos"), ins + 5000);
    // IP_HDRINCL sends of ICMP are counted as output too (raw_send_hdrinc calls
    // icmp_out_count), whereas Ip OutRequests is not (the kernel's replies are).
    assert_eq!(counter("snmp", "Icmp", "OutEchos"), outs + 5000);
}

#[test]
fn rate_and_interval_pace_the_datagrams() {
    if !common::enter_netns("rate_and_interval_pace_the_datagrams") {
        return;
    }
    let t = Instant::now();
    rawkit_ok(&["icmp", "--dst", "127.0.0.1", "-c", "4", "--rate", "20"]);
    let e = t.elapsed();
    assert!(
        e >= Duration::from_millis(145),
        "4 at 20/s take 150 ms: {e:?}"
    );
    let t = Instant::now();
    rawkit_ok(&["icmp", "--dst", "127.0.0.1", "-c", "3", "-i", "0.1"]);
    assert!(t.elapsed() >= Duration::from_millis(195));
}

#[test]
fn capabilities_are_dropped_while_sending_and_ctrl_c_prints_the_summary() {
    if !common::enter_netns("capabilities_are_dropped_while_sending_and_ctrl_c_prints_the_summary")
    {
        return;
    }
    let child = spawn(&[
        "icmp",
        "--dst",
        "127.0.0.1",
        "-c",
        "50",
        "-i",
        "0.1",
        "--listen",
        "1",
    ]);
    let pid = child.id();
    thread::sleep(Duration::from_millis(300));
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    for cap in ["CapEff:", "CapPrm:", "CapInh:", "CapAmb:"] {
        let line = status.lines().find(|l| l.starts_with(cap)).expect(cap);
        assert!(line.ends_with("0000000000000000"), "{line}");
    }
    // SAFETY: signals our own child, by its PID.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGINT) };
    let out = finish(child, "ctrl-c");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    let last = s.lines().last().unwrap_or_default();
    assert!(
        last.contains("datagrams") && last.ends_with("replies"),
        "{s}"
    );
    let n: u64 = last.split(' ').next().unwrap().parse().unwrap();
    assert!((2..50).contains(&n), "stopped early: {last}");
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

/// `tshark`'s checksum verdicts for every frame of `file`: (ip, icmp, udp) status strings.
fn tshark_statuses(tshark: &Path, file: &Path) -> Vec<String> {
    let out = Command::new(tshark)
        .args(["-n", "-r"])
        .arg(file)
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
    text(&out.stdout).lines().map(str::to_owned).collect()
}

#[test]
fn pcap_opens_in_tshark_with_good_checksums_and_replays_byte_for_byte() {
    if !common::enter_netns("pcap_opens_in_tshark_with_good_checksums_and_replays_byte_for_byte") {
        return;
    }
    let Some(tshark) = common::require_tool("tshark") else {
        return;
    };
    let dir = tempdir("pcap");
    let echo = dir.join("echo.pcap");
    let udp = dir.join("udp.pcap");
    let bad = dir.join("bad.pcap");
    rawkit_ok(&[
        "icmp",
        "--dst",
        "127.0.0.1",
        "-c",
        "2",
        "-i",
        "0.02",
        "--listen",
        "3",
        "--pcap",
        echo.to_str().unwrap(),
    ]);
    rawkit_ok(&[
        "udp",
        "--dst",
        "127.0.0.1",
        "--dport",
        "9",
        "--payload",
        "x",
        "--listen",
        "3",
        "--pcap",
        udp.to_str().unwrap(),
    ]);
    let _ = rawkit(&[
        "udp",
        "--dst",
        "127.0.0.1",
        "--dport",
        "9",
        "--udp-checksum",
        "bad",
        "--pcap",
        bad.to_str().unwrap(),
    ]);
    // Requests and replies, every checksum good ("1"); a non-first field is empty.
    let e = tshark_statuses(&tshark, &echo);
    assert_eq!(e, ["1\t1\t", "1\t1\t", "1\t1\t", "1\t1\t"], "echo.pcap");
    let u = tshark_statuses(&tshark, &udp);
    // The datagram; then the port unreachable, whose quote tshark checks too.
    assert_eq!(u.len(), 2, "{u:?}");
    assert_eq!(u[0], "1\t\t1");
    assert!(u[1].starts_with("1,1\t1\t"), "{u:?}");
    // Meant to be bad, and bad it is (0).
    assert_eq!(tshark_statuses(&tshark, &bad), ["1\t\t0"]);

    // Replay both files and find every datagram again on lo, byte for byte.
    let mut want = Vec::new();
    for f in [&echo, &udp] {
        for r in rawkit::pcap::PcapReader::open(f).unwrap() {
            want.push(r.unwrap().data);
        }
    }
    let sniffer = Sniffer::start("lo");
    for f in [&echo, &udp] {
        let out = rawkit_ok(&["raw", "--from-pcap", f.to_str().unwrap()]);
        assert!(out.ends_with(" sent, 0 errors, 0 replies\n"), "{out}");
    }
    let all_seen = |ds: &[Vec<u8>]| want.iter().all(|w| ds.contains(w));
    assert!(
        sniffer.wait_for(all_seen, WAIT),
        "every replayed datagram on the wire"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn replay_strips_link_padding_and_rewrites_the_destination_with_checksums_fixed() {
    if !common::enter_netns(
        "replay_strips_link_padding_and_rewrites_the_destination_with_checksums_fixed",
    ) {
        return;
    }
    let dir = tempdir("replay");
    let sock = UdpSocket::bind((Ipv4Addr::new(127, 0, 0, 2), 0)).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let port = sock.local_addr().unwrap().port();
    // A datagram to 127.0.0.1 built by rawkit (dry run, JSON hex) ...
    let out = rawkit_ok(&[
        "udp",
        "--dst",
        "127.0.0.1",
        "--src",
        "127.0.0.1",
        "--id",
        "0x5901",
        "--dport",
        &port.to_string(),
        "--payload",
        "replayed",
        "--dry-run",
        "--json",
    ]);
    let ev: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    let hex = ev["hex"].as_str().unwrap();
    let datagram: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    // ... stored as an Ethernet frame padded to 60 bytes, as a NIC would capture it.
    let mut frame = vec![0u8; 12];
    frame.extend([0x08, 0x00]);
    frame.extend(&datagram);
    frame.resize(60, 0);
    let file = dir.join("eth.pcap");
    let mut w = rawkit::pcap::PcapWriter::create(&file, rawkit::pcap::LinkType::Ethernet).unwrap();
    w.write_packet(std::time::SystemTime::now(), &frame, frame.len())
        .unwrap();
    w.flush().unwrap();
    drop(w);

    let sniffer = Sniffer::start("lo");
    let out = rawkit_ok(&[
        "raw",
        "--from-pcap",
        file.to_str().unwrap(),
        "--dst",
        "127.0.0.2",
        "-v",
    ]);
    assert!(out.starts_with("sent: IP 127.0.0.1."), "{out}");
    let mut buf = [0u8; 100];
    let (n, _) = sock.recv_from(&mut buf).expect("delivered to 127.0.0.2");
    assert_eq!(&buf[..n], b"replayed");
    assert!(sniffer.wait_for(|ds| find(ds, 0x5901, 17, None).is_some(), WAIT));
    let (seen, _) = sniffer.stop();
    let ds: Vec<Vec<u8>> = seen.into_iter().map(|s| s.datagram).collect();
    let d = find(&ds, 0x5901, 17, None).unwrap();
    assert_eq!(d.len(), datagram.len(), "the Ethernet padding was not sent");
    let p = pnet_packet::ipv4::Ipv4Packet::new(&d).unwrap();
    assert_eq!(p.get_destination(), Ipv4Addr::new(127, 0, 0, 2));
    assert!(pnet_ip_checksum_ok(&d) && etherparse_ip_checksum_ok(&d));
    let (f, c) = pnet_udp_checksum(&d);
    let (f2, c2) = etherparse_udp_checksum(&d);
    assert!(
        f == c && f2 == c2,
        "UDP checksum fixed for the new destination"
    );
    // Everything but the address and the two checksums is as captured.
    let mut expect = datagram.clone();
    expect[16..20].copy_from_slice(&[127, 0, 0, 2]);
    expect[10..12].copy_from_slice(&d[10..12]);
    expect[26..28].copy_from_slice(&d[26..28]);
    assert_eq!(d, expect);
    let _ = std::fs::remove_dir_all(&dir);
}

//! Pcap files through `rawkit::pcap`, hermetic (no privileges).
//!
//! The datagrams are built by hand or with etherparse, never with rawkit's packet module, so the
//! test does not depend on the code it could share a bug with. Where Wireshark's tools are
//! installed (`/usr/bin/tshark`, `text2pcap`, `editcap`), they are the independent oracle in both
//! directions: tshark reads what rawkit wrote, and rawkit reads what text2pcap and tshark wrote.
//! Without them those tests print one `SKIPPED` line, and fail under `CI=true`.

use std::fs;
use std::io::{self, Read};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use etherparse::{PacketBuilder, VlanId};
use rawkit::pcap::{
    LinkType, PcapError, PcapReader, PcapRecord, PcapWriter, Resolution, SNAPLEN, ipv4_payload,
};

// ---- the packets --------------------------------------------------------------------------

/// ICMP echo request 127.0.0.1 -> 127.0.0.2, id 1, seq 0, no data; checksums by hand.
const ECHO_BY_HAND: [u8; 28] = [
    0x45, 0x00, 0x00, 0x1c, 0x00, 0x01, 0x00, 0x00, 0x40, 0x01, 0x7c, 0xde, 127, 0, 0, 1, 127, 0,
    0, 2, // IPv4
    0x08, 0x00, 0xf7, 0xfe, 0x00, 0x01, 0x00, 0x00, // ICMP echo request
];

fn echo_request(src: [u8; 4], dst: [u8; 4], ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .icmpv4_echo_request(ident, seq)
        .write(&mut out, data)
        .unwrap();
    out
}

fn echo_reply(src: [u8; 4], dst: [u8; 4], ident: u16, seq: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(src, dst, 64)
        .icmpv4_echo_reply(ident, seq)
        .write(&mut out, data)
        .unwrap();
    out
}

fn udp(src: [u8; 4], dst: [u8; 4], sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    PacketBuilder::ipv4(src, dst, 1)
        .udp(sport, dport)
        .write(&mut out, data)
        .unwrap();
    out
}

/// What tshark should report for a datagram.
struct Expected {
    datagram: Vec<u8>,
    ts: SystemTime,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    icmp_type: Option<u8>,
    udp_dstport: Option<u16>,
}

/// Five datagrams a ping and a traceroute would log, with nanosecond timestamps.
fn sample() -> Vec<Expected> {
    let t0 = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
    let ms = Duration::from_millis;
    let e = |datagram: Vec<u8>, ts, src, dst, icmp_type, udp_dstport| Expected {
        datagram,
        ts,
        src: Ipv4Addr::from(src),
        dst: Ipv4Addr::from(dst),
        icmp_type,
        udp_dstport,
    };
    vec![
        e(
            ECHO_BY_HAND.to_vec(),
            t0,
            [127, 0, 0, 1],
            [127, 0, 0, 2],
            Some(8),
            None,
        ),
        e(
            echo_reply([127, 0, 0, 2], [127, 0, 0, 1], 1, 0, &[]),
            t0 + Duration::from_nanos(43_001),
            [127, 0, 0, 2],
            [127, 0, 0, 1],
            Some(0),
            None,
        ),
        e(
            echo_request([198, 18, 0, 1], [198, 18, 3, 2], 0x1234, 7, &[0xa5; 56]),
            t0 + ms(1000) + Duration::from_nanos(1),
            [198, 18, 0, 1],
            [198, 18, 3, 2],
            Some(8),
            None,
        ),
        e(
            udp([198, 18, 0, 1], [198, 18, 3, 2], 40000, 33434, &[0x40; 32]),
            t0 + ms(2000) + Duration::from_nanos(999_999_999),
            [198, 18, 0, 1],
            [198, 18, 3, 2],
            None,
            Some(33434),
        ),
        e(
            udp([10, 0, 0, 1], [10, 255, 255, 254], 53, 33435, &[]),
            t0 + ms(5000),
            [10, 0, 0, 1],
            [10, 255, 255, 254],
            None,
            Some(33435),
        ),
    ]
}

fn write_sample(writer: &mut PcapWriter<impl io::Write>, sample: &[Expected]) {
    for p in sample {
        writer
            .write_packet(p.ts, &p.datagram, p.datagram.len())
            .unwrap();
    }
}

fn read_all(bytes: &[u8]) -> Vec<PcapRecord> {
    PcapReader::new(bytes)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
}

// ---- scaffolding ----------------------------------------------------------------------------

/// A fresh directory under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("rawkit-pcap-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The Wireshark tool at `/usr/bin/<name>`, or `None` after a `SKIPPED` line (a panic under
/// `CI=true`, where a skipped oracle would hide a regression).
fn tool(test: &str, name: &str) -> Option<PathBuf> {
    let path = Path::new("/usr/bin").join(name);
    if path.exists() {
        return Some(path);
    }
    let why = format!(
        "{} not found (install tshark / wireshark-common)",
        path.display()
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: {why}; CI must run it");
    }
    eprintln!("SKIPPED {test}: {why}");
    None
}

/// Runs a tool; panics with its stderr when it fails.
fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `tshark -r file -T fields -e ...`, one row of fields per frame.
fn tshark_fields(tshark: &Path, file: &Path, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new(tshark);
    cmd.arg("-n").arg("-r").arg(file).args(["-T", "fields"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    cmd.args(["-E", "separator=,", "-E", "occurrence=f"]);
    run(&mut cmd)
        .lines()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// tshark's `frame.time_epoch` ("1700000000.123456789") as a `SystemTime`, exactly.
fn parse_epoch(s: &str) -> SystemTime {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let nanos = format!("{frac:0<9}");
    SystemTime::UNIX_EPOCH + Duration::new(secs.parse().unwrap(), nanos[..9].parse().unwrap())
}

/// Datagrams as a text2pcap hex dump: each packet from offset 0000, 16 bytes a line.
fn hex_dump(datagrams: &[Vec<u8>]) -> String {
    let mut out = String::new();
    for d in datagrams {
        for (i, chunk) in d.chunks(16).enumerate() {
            out += &format!("{:06x}", i * 16);
            for b in chunk {
                out += &format!(" {b:02x}");
            }
            out += "\n";
        }
        out += "\n";
    }
    out
}

fn micros(ts: SystemTime) -> SystemTime {
    let d = ts.duration_since(SystemTime::UNIX_EPOCH).unwrap();
    SystemTime::UNIX_EPOCH + Duration::new(d.as_secs(), d.subsec_micros() * 1000)
}

/// A classic pcap global header, by hand.
fn global_header(big_endian: bool, nanos: bool, snaplen: u32, link: u32) -> Vec<u8> {
    let magic: u32 = if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 };
    let mut out = Vec::new();
    let put32 = |out: &mut Vec<u8>, v: u32| {
        out.extend_from_slice(&if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        })
    };
    put32(&mut out, magic);
    let (major, minor) = (2u16, 4u16);
    for v in [major, minor] {
        out.extend_from_slice(&if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }
    put32(&mut out, 0); // thiszone
    put32(&mut out, 0); // sigfigs
    put32(&mut out, snaplen);
    put32(&mut out, link);
    out
}

/// A pcap record, by hand.
fn record(big_endian: bool, secs: u32, frac: u32, data: &[u8], orig_len: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for v in [secs, frac, data.len() as u32, orig_len] {
        out.extend_from_slice(&if big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        });
    }
    out.extend_from_slice(data);
    out
}

// ---- writing and reading back ---------------------------------------------------------------

#[test]
fn datagrams_round_trip_with_nanosecond_timestamps() {
    let sample = sample();
    let mut writer = PcapWriter::new(Vec::new(), LinkType::RawIpv4).unwrap();
    write_sample(&mut writer, &sample);
    assert_eq!(writer.packets_written(), 5);
    let file = writer.into_inner().unwrap();

    // Native byte order, nanosecond magic, version 2.4, snaplen 262144, LINKTYPE_RAW.
    assert_eq!(
        file[..24],
        global_header(cfg!(target_endian = "big"), true, 262_144, 101)[..]
    );
    let reader = PcapReader::new(&file[..]).unwrap();
    assert_eq!(reader.link(), LinkType::RawIpv4);
    assert_eq!(reader.resolution(), Resolution::Nanos);
    assert_eq!(reader.snaplen(), SNAPLEN);
    let records: Vec<PcapRecord> = reader.collect::<Result<_, _>>().unwrap();
    assert_eq!(records.len(), sample.len());
    for (r, p) in records.iter().zip(&sample) {
        assert_eq!(r.ts, p.ts);
        assert_eq!(r.data, p.datagram);
        assert_eq!(r.orig_len, p.datagram.len());
        assert_eq!(r.link, LinkType::RawIpv4);
        assert_eq!(ipv4_payload(r), Some(&p.datagram[..]));
    }
}

#[test]
fn microsecond_writer_keeps_timestamps_to_the_microsecond() {
    let sample = sample();
    let mut writer =
        PcapWriter::with_resolution(Vec::new(), LinkType::RawIpv4, Resolution::Micros).unwrap();
    write_sample(&mut writer, &sample);
    let file = writer.into_inner().unwrap();
    assert_eq!(
        PcapReader::new(&file[..]).unwrap().resolution(),
        Resolution::Micros
    );
    let records = read_all(&file);
    assert_eq!(records.len(), sample.len());
    for (r, p) in records.iter().zip(&sample) {
        assert_eq!(r.ts, micros(p.ts), "truncated to the microsecond");
        assert_eq!(r.data, p.datagram);
    }
}

#[test]
fn created_file_is_flushed_on_drop_and_reads_back() {
    let dir = TempDir::new("drop");
    let path = dir.join("probes.pcap");
    let sample = sample();
    {
        let mut writer = PcapWriter::create(&path, LinkType::RawIpv4).unwrap();
        assert_eq!(writer.path(), Some(path.as_path()));
        write_sample(&mut writer, &sample);
        // No flush: Drop does it.
    }
    let reader = PcapReader::open(&path).unwrap();
    assert_eq!(reader.path(), Some(path.as_path()));
    let data: Vec<Vec<u8>> = reader.map(|r| r.unwrap().data).collect();
    let want: Vec<Vec<u8>> = sample.into_iter().map(|p| p.datagram).collect();
    assert_eq!(data, want);
}

#[test]
fn data_beyond_the_snap_length_is_cut_and_orig_len_kept() {
    let big = vec![0x45; SNAPLEN as usize + 1000];
    let ts = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
    let mut writer = PcapWriter::new(Vec::new(), LinkType::RawIpv4).unwrap();
    writer.write_packet(ts, &big, big.len() + 5).unwrap();
    writer.write_packet(ts, &big[..100], 1500).unwrap();
    let records = read_all(&writer.into_inner().unwrap());
    assert_eq!(records[0].data.len(), SNAPLEN as usize);
    assert_eq!(records[0].orig_len, big.len() + 5);
    assert_eq!(records[1].data, big[..100]);
    assert_eq!(records[1].orig_len, 1500);
}

#[test]
fn writer_refuses_packets_classic_pcap_cannot_hold() {
    let mut writer = PcapWriter::new(Vec::new(), LinkType::RawIpv4).unwrap();
    let before_1970 = SystemTime::UNIX_EPOCH - Duration::from_secs(1);
    let err = writer
        .write_packet(before_1970, &ECHO_BY_HAND, 28)
        .unwrap_err();
    assert!(matches!(err, PcapError::InvalidPacket { .. }), "{err:?}");
    assert!(err.to_string().contains("before 1970"), "{err}");

    let after_2106 = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX) + 1);
    let err = writer
        .write_packet(after_2106, &ECHO_BY_HAND, 28)
        .unwrap_err();
    assert!(err.to_string().contains("2106"), "{err}");

    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let err = writer.write_packet(now, &ECHO_BY_HAND, 27).unwrap_err();
    assert_eq!(
        err.to_string(),
        "pcap: cannot store packet: original length 27 is shorter than the 28 bytes of data"
    );
    // A refused packet is not a failed write: the writer goes on.
    writer.write_packet(now, &ECHO_BY_HAND, 28).unwrap();
    assert_eq!(writer.packets_written(), 1);
    assert_eq!(read_all(&writer.into_inner().unwrap()).len(), 1);
}

#[test]
fn full_disk_is_a_clean_error_naming_the_file() {
    let full = Path::new("/dev/full");
    if !full.exists() {
        eprintln!("SKIPPED full_disk_is_a_clean_error_naming_the_file: no /dev/full");
        return;
    }
    // Small records stay in the BufWriter: the error comes with flush.
    let mut writer = PcapWriter::create(full, LinkType::RawIpv4).unwrap();
    let now = SystemTime::now();
    writer.write_packet(now, &ECHO_BY_HAND, 28).unwrap();
    let err = writer.flush().unwrap_err();
    let PcapError::Write { path, source } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(path.as_deref(), Some(full));
    assert_eq!(source.raw_os_error(), Some(libc_enospc()));
    assert_eq!(
        err.to_string(),
        "/dev/full: cannot write: No space left on device (os error 28)"
    );
    // The file may now end in a partial record: the writer refuses to go on, and says why
    // again (a caller that ignored the write errors still learns the reason at the last flush).
    let again = writer.write_packet(now, &ECHO_BY_HAND, 28).unwrap_err();
    assert_eq!(again.to_string(), err.to_string());
    assert_eq!(writer.flush().unwrap_err().to_string(), err.to_string());
    assert_eq!(writer.packets_written(), 1);

    // A record bigger than the buffer goes straight through: write_packet reports it.
    let mut writer = PcapWriter::create(full, LinkType::RawIpv4).unwrap();
    let big = vec![0x45; 20_000];
    let err = writer.write_packet(now, &big, big.len()).unwrap_err();
    assert!(err.to_string().contains("No space left on device"), "{err}");
    assert_eq!(writer.packets_written(), 0);
    let PcapError::Write { source, .. } = writer.flush().unwrap_err() else {
        panic!("a write error");
    };
    assert_eq!(source.raw_os_error(), Some(libc_enospc()));
    drop(writer); // Drop does not panic after a failure.
}

fn libc_enospc() -> i32 {
    28 // ENOSPC on Linux
}

// ---- the oracle reads what rawkit wrote -----------------------------------------------------

#[test]
fn tshark_reads_the_datagrams_rawkit_wrote() {
    let Some(tshark) = tool("tshark_reads_the_datagrams_rawkit_wrote", "tshark") else {
        return;
    };
    let dir = TempDir::new("tshark-raw");
    let sample = sample();
    // LINKTYPE_RAW is what rawkit writes; LINKTYPE_IPV4 must work as well.
    for link in [LinkType::RawIpv4, LinkType::Ipv4] {
        let path = dir.join(&format!("link{}.pcap", link.number()));
        let mut writer = PcapWriter::create(&path, link).unwrap();
        write_sample(&mut writer, &sample);
        writer.flush().unwrap();
        drop(writer);

        let fields = [
            "ip.src",
            "ip.dst",
            "icmp.type",
            "udp.dstport",
            "frame.time_epoch",
            "frame.len",
            "ip.checksum.status",
        ];
        let rows = tshark_fields(&tshark, &path, &fields);
        assert_eq!(rows.len(), sample.len(), "link {link}: {rows:?}");
        for (row, p) in rows.iter().zip(&sample) {
            assert_eq!(row[0], p.src.to_string(), "link {link}");
            assert_eq!(row[1], p.dst.to_string());
            assert_eq!(
                row[2],
                p.icmp_type.map(|t| t.to_string()).unwrap_or_default()
            );
            assert_eq!(
                row[3],
                p.udp_dstport.map(|t| t.to_string()).unwrap_or_default()
            );
            assert_eq!(
                parse_epoch(&row[4]),
                p.ts,
                "nanoseconds survive: {}",
                row[4]
            );
            assert_eq!(row[5], p.datagram.len().to_string());
        }
    }
}

#[test]
fn tshark_reads_ethernet_frames_with_vlan_tags_rawkit_wrote() {
    let Some(tshark) = tool(
        "tshark_reads_ethernet_frames_with_vlan_tags_rawkit_wrote",
        "tshark",
    ) else {
        return;
    };
    let dir = TempDir::new("tshark-eth");
    let path = dir.join("eth.pcap");
    let frames = ethernet_frames();
    let ts = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5);
    let mut writer = PcapWriter::create(&path, LinkType::Ethernet).unwrap();
    for (frame, _) in &frames {
        writer.write_packet(ts, frame, frame.len()).unwrap();
    }
    drop(writer);
    let fields = ["eth.type", "ieee8021ad.id", "vlan.id", "ip.src", "ip.dst"];
    let rows = tshark_fields(&tshark, &path, &fields);
    // tshark calls the 802.1ad service tag ieee8021ad, the 802.1Q tag vlan.
    let want = [
        ["0x0800", "", "", "127.0.0.1", "127.0.0.2"],
        ["0x8100", "", "42", "198.18.0.1", "198.18.3.2"],
        ["0x88a8", "100", "42", "198.18.0.1", "198.18.3.2"],
        ["0x0806", "", "", "", ""],
        ["0x86dd", "", "", "", ""],
    ];
    assert_eq!(rows.len(), want.len(), "{rows:?}");
    for (row, want) in rows.iter().zip(want) {
        assert_eq!(row, &want, "{rows:?}");
    }
}

// ---- rawkit reads what the oracle wrote -----------------------------------------------------

#[test]
fn reads_what_text2pcap_wrote_in_every_link_type_and_resolution() {
    let test = "reads_what_text2pcap_wrote_in_every_link_type_and_resolution";
    let (Some(text2pcap), Some(tshark)) = (tool(test, "text2pcap"), tool(test, "tshark")) else {
        return;
    };
    let dir = TempDir::new("text2pcap");
    let datagrams: Vec<Vec<u8>> = sample().into_iter().map(|p| p.datagram).collect();
    let hex = dir.join("hex.txt");
    fs::write(&hex, hex_dump(&datagrams)).unwrap();

    // (format, link options, the link rawkit must see, the resolution)
    let cases: [(&str, &[&str], LinkType, Resolution); 4] = [
        (
            "pcap",
            &["-e", "0x800"],
            LinkType::Ethernet,
            Resolution::Micros,
        ),
        (
            "nsecpcap",
            &["-e", "0x800"],
            LinkType::Ethernet,
            Resolution::Nanos,
        ),
        (
            "pcap",
            &["-l", "101"],
            LinkType::RawIpv4,
            Resolution::Micros,
        ),
        (
            "nsecpcap",
            &["-l", "228"],
            LinkType::Ipv4,
            Resolution::Nanos,
        ),
    ];
    for (format, link_args, link, resolution) in cases {
        let out = dir.join(&format!("{format}-{}.pcap", link.number()));
        run(Command::new(&text2pcap)
            .args(["-q", "-F", format])
            .args(link_args)
            .arg(&hex)
            .arg(&out));
        let reader = PcapReader::open(&out).unwrap();
        assert_eq!(reader.link(), link, "{format} {link_args:?}");
        assert_eq!(reader.resolution(), resolution, "{format} {link_args:?}");
        let records: Vec<PcapRecord> = reader.collect::<Result<_, _>>().unwrap();
        assert_eq!(records.len(), datagrams.len());
        for (r, datagram) in records.iter().zip(&datagrams) {
            assert_eq!(r.data.len(), r.orig_len);
            let ip = ipv4_payload(r).unwrap();
            if link == LinkType::Ethernet {
                // text2pcap pads short frames to Ethernet's 60 bytes: the payload keeps the
                // padding, and the IPv4 total length marks the datagram's end.
                assert_eq!(r.data[12..14], [0x08, 0x00]);
                assert_eq!(ip.len(), datagram.len().max(60 - 14));
                assert!(ip[datagram.len()..].iter().all(|&b| b == 0));
            }
            assert_eq!(ip[..datagram.len()], datagram[..], "{format} {link_args:?}");
        }
        // text2pcap stamps packets with the current time: tshark says which.
        let epochs = tshark_fields(&tshark, &out, &["frame.time_epoch"]);
        let times: Vec<SystemTime> = records.iter().map(|r| r.ts).collect();
        let want: Vec<SystemTime> = epochs.iter().map(|row| parse_epoch(&row[0])).collect();
        assert_eq!(times, want, "{format} {link_args:?}");
    }
}

#[test]
fn reads_what_tshark_rewrote_and_what_editcap_snapped() {
    let test = "reads_what_tshark_rewrote_and_what_editcap_snapped";
    let (Some(tshark), Some(editcap)) = (tool(test, "tshark"), tool(test, "editcap")) else {
        return;
    };
    let dir = TempDir::new("rewrite");
    let sample = sample();
    let ours = dir.join("ours.pcap");
    let mut writer = PcapWriter::create(&ours, LinkType::RawIpv4).unwrap();
    write_sample(&mut writer, &sample);
    drop(writer);

    // tshark -F pcap writes microseconds; -F nsecpcap nanoseconds.
    for (format, resolution) in [
        ("pcap", Resolution::Micros),
        ("nsecpcap", Resolution::Nanos),
    ] {
        let theirs = dir.join(&format!("tshark-{format}.pcap"));
        run(Command::new(&tshark)
            .args(["-F", format, "-w"])
            .arg(&theirs)
            .arg("-r")
            .arg(&ours));
        let reader = PcapReader::open(&theirs).unwrap();
        assert_eq!(reader.resolution(), resolution);
        let records: Vec<PcapRecord> = reader.collect::<Result<_, _>>().unwrap();
        assert_eq!(records.len(), sample.len());
        for (r, p) in records.iter().zip(&sample) {
            assert_eq!(r.data, p.datagram);
            let want = if resolution == Resolution::Micros {
                micros(p.ts)
            } else {
                p.ts
            };
            assert_eq!(r.ts, want, "{format}");
        }
    }

    // editcap -s 40: each record keeps 40 bytes and its length on the wire, above the file's
    // snap length (pcap-file's own PcapPacket refuses exactly such records).
    let snapped = dir.join("snapped.pcap");
    run(Command::new(&editcap)
        .args(["-F", "pcap", "-s", "40"])
        .arg(&ours)
        .arg(&snapped));
    let reader = PcapReader::open(&snapped).unwrap();
    let records: Vec<PcapRecord> = reader.collect::<Result<_, _>>().unwrap();
    assert_eq!(records.len(), sample.len());
    for (r, p) in records.iter().zip(&sample) {
        let kept = p.datagram.len().min(40);
        assert_eq!(r.data, p.datagram[..kept]);
        assert_eq!(r.orig_len, p.datagram.len());
    }
}

#[test]
fn both_byte_orders_and_resolutions_read_by_hand() {
    for big_endian in [false, true] {
        for nanos in [false, true] {
            let mut file = global_header(big_endian, nanos, 65535, 101);
            let frac = if nanos { 999_999_999 } else { 999_999 };
            file.extend(record(big_endian, 1_700_000_000, frac, &ECHO_BY_HAND, 28));
            file.extend(record(big_endian, 0, 0, &ECHO_BY_HAND[..20], 28));
            let reader = PcapReader::new(&file[..]).unwrap();
            assert_eq!(reader.is_big_endian(), big_endian);
            assert_eq!(reader.snaplen(), 65535);
            let records: Vec<PcapRecord> = reader.collect::<Result<_, _>>().unwrap();
            let nanos_part = if nanos { 999_999_999 } else { 999_999_000 };
            let case = format!("big_endian {big_endian}, nanos {nanos}");
            assert_eq!(
                records[0].ts,
                SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, nanos_part),
                "{case}"
            );
            assert_eq!(records[0].data, ECHO_BY_HAND, "{case}");
            assert_eq!(records[1].ts, SystemTime::UNIX_EPOCH, "{case}");
            assert_eq!(records[1].data, ECHO_BY_HAND[..20], "{case}");
            assert_eq!(records[1].orig_len, 28, "{case}");
            assert_eq!(records.len(), 2, "{case}");
        }
    }
}

// ---- link headers ---------------------------------------------------------------------------

/// Ethernet frames and the IPv4 datagram inside each, if any.
fn ethernet_frames() -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
    let inner = udp([198, 18, 0, 1], [198, 18, 3, 2], 40000, 33434, b"rawkit");
    let mac_a = [2, 0, 0, 0, 0, 1];
    let mac_b = [2, 0, 0, 0, 0, 2];

    // lo on Linux: a zeroed header with only the ethertype.
    let mut lo = vec![0u8; 12];
    lo.extend_from_slice(&[0x08, 0x00]);
    lo.extend_from_slice(&ECHO_BY_HAND);

    let mut one_tag = Vec::new();
    PacketBuilder::ethernet2(mac_a, mac_b)
        .single_vlan(VlanId::try_new(42).unwrap())
        .ipv4([198, 18, 0, 1], [198, 18, 3, 2], 1)
        .udp(40000, 33434)
        .write(&mut one_tag, b"rawkit")
        .unwrap();
    assert_eq!(one_tag[12..14], [0x81, 0x00]);

    let mut two_tags = Vec::new();
    PacketBuilder::ethernet2(mac_a, mac_b)
        .double_vlan(VlanId::try_new(100).unwrap(), VlanId::try_new(42).unwrap())
        .ipv4([198, 18, 0, 1], [198, 18, 3, 2], 1)
        .udp(40000, 33434)
        .write(&mut two_tags, b"rawkit")
        .unwrap();
    assert_eq!(two_tags[12..14], [0x88, 0xa8]);

    let mut arp = [mac_b, [0xff; 6]].concat();
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    arp.extend_from_slice(&[0; 18]);

    let mut ipv6 = [mac_b, mac_a].concat();
    ipv6.extend_from_slice(&[0x86, 0xdd, 0x60, 0, 0, 0, 0, 0, 59, 64]);
    ipv6.extend_from_slice(&[0; 32]);

    vec![
        (lo, Some(ECHO_BY_HAND.to_vec())),
        (one_tag, Some(inner.clone())),
        (two_tags, Some(inner)),
        (arp, None),
        (ipv6, None),
    ]
}

#[test]
fn ethernet_frames_yield_ipv4_with_or_without_vlan_tags() {
    let ts = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let frames = ethernet_frames();
    let mut writer = PcapWriter::new(Vec::new(), LinkType::Ethernet).unwrap();
    for (frame, _) in &frames {
        writer.write_packet(ts, frame, frame.len()).unwrap();
    }
    let file = writer.into_inner().unwrap();
    assert_eq!(
        PcapReader::new(&file[..]).unwrap().link(),
        LinkType::Ethernet
    );
    let records = read_all(&file);
    assert_eq!(records.len(), frames.len());
    for (r, (frame, ip)) in records.iter().zip(&frames) {
        assert_eq!(&r.data, frame);
        assert_eq!(r.link, LinkType::Ethernet);
        assert_eq!(r.ipv4(), ip.as_deref(), "{:02x?}", &frame[..18]);
    }
}

#[test]
fn short_or_foreign_records_have_no_ipv4() {
    let rec = |link, data: &[u8]| PcapRecord {
        ts: SystemTime::UNIX_EPOCH,
        data: data.to_vec(),
        orig_len: data.len(),
        link,
    };
    let cases: [(LinkType, &[u8]); 9] = [
        (LinkType::Ethernet, &[]),
        (LinkType::Ethernet, &[0; 13]),
        (
            LinkType::Ethernet,
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00],
        ), // no IP at all
        (
            LinkType::Ethernet,
            &[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x81, 0x00, 0, 42],
        ),
        (LinkType::RawIpv4, &[]),
        (LinkType::RawIpv4, &[0x60, 0, 0, 0]), // IPv6
        (LinkType::Ipv4, &[0x60, 0, 0, 0]),
        (LinkType::LinuxSll, &[0; 15]),
        (LinkType::LinuxSll2, &[0x08]),
    ];
    for (link, data) in cases {
        assert_eq!(ipv4_payload(&rec(link, data)), None, "{link} {data:02x?}");
    }
    // Ethernet padding stays: the IPv4 total length says where the datagram ends.
    let mut padded = vec![0u8; 12];
    padded.extend_from_slice(&[0x08, 0x00]);
    padded.extend_from_slice(&ECHO_BY_HAND);
    padded.resize(60, 0);
    let r = rec(LinkType::Ethernet, &padded);
    assert_eq!(ipv4_payload(&r).unwrap().len(), 46);
    assert_eq!(ipv4_payload(&r).unwrap()[..28], ECHO_BY_HAND);
}

#[test]
fn linux_cooked_headers_yield_ipv4() {
    // SLL: pkttype 0 (to us), ARPHRD_LOOPBACK 772, address length 6, address, protocol.
    let mut sll = vec![0, 0, 0x03, 0x04, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0, 0x08, 0x00];
    sll.extend_from_slice(&ECHO_BY_HAND);
    // SLL2: protocol, reserved, ifindex 1, ARPHRD_LOOPBACK, pkttype 4 (outgoing), len, address.
    let mut sll2 = vec![
        0x08, 0x00, 0, 0, 0, 0, 0, 1, 0x03, 0x04, 4, 6, 0, 0, 0, 0, 0, 0, 0, 0,
    ];
    sll2.extend_from_slice(&ECHO_BY_HAND);
    let ts = SystemTime::UNIX_EPOCH + Duration::from_secs(1);
    for (link, number, frame) in [
        (LinkType::LinuxSll, 113, sll),
        (LinkType::LinuxSll2, 276, sll2),
    ] {
        let mut file = global_header(false, false, 65535, number);
        file.extend(record(false, 1, 0, &frame, frame.len() as u32));
        let records = read_all(&file);
        assert_eq!(records[0].link, link);
        assert_eq!(records[0].ts, ts);
        assert_eq!(records[0].ipv4(), Some(&ECHO_BY_HAND[..]), "{link}");
        // An ARP frame under the cooked header is not IPv4.
        let mut arp = frame.clone();
        let at = if link == LinkType::LinuxSll { 14 } else { 0 };
        arp[at..at + 2].copy_from_slice(&[0x08, 0x06]);
        let mut r = records[0].clone();
        r.data = arp;
        assert_eq!(r.ipv4(), None);
    }
}

// ---- damaged and foreign files --------------------------------------------------------------

#[test]
fn truncated_last_record_yields_the_earlier_records_then_truncated_record() {
    let dir = TempDir::new("truncated");
    let sample = &sample()[..3];
    let mut writer = PcapWriter::new(Vec::new(), LinkType::RawIpv4).unwrap();
    write_sample(&mut writer, sample);
    let whole = writer.into_inner().unwrap();
    let last_len = sample[2].datagram.len(); // 84 bytes
    let last_record = 16 + last_len;

    // Cut inside the last record's data, at its data's start, and inside its header.
    for chop in [1, 30, last_len, last_len + 1, last_len + 15] {
        let cut = &whole[..whole.len() - chop];
        let path = dir.join(&format!("chop{chop}.pcap"));
        fs::write(&path, cut).unwrap();

        let mut reader = PcapReader::open(&path).unwrap();
        for p in &sample[..2] {
            assert_eq!(
                reader.next().unwrap().unwrap().data,
                p.datagram,
                "chop {chop}"
            );
        }
        let err = reader.next().unwrap().unwrap_err();
        let have = last_record - chop;
        let need = if have >= 16 { last_record } else { 16 };
        match &err {
            PcapError::TruncatedRecord {
                path: p,
                frame,
                have: h,
                need: n,
            } => {
                assert_eq!(p.as_deref(), Some(path.as_path()));
                assert_eq!((*frame, *h, *n), (3, have, need), "chop {chop}");
            }
            other => panic!("chop {chop}: {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            format!(
                "{}: frame 3 truncated: need {need} bytes (record header and data), have {have}",
                path.display()
            )
        );
        assert!(reader.next().is_none(), "the iterator ends after the error");
    }

    // Cutting exactly between records is a whole, shorter file.
    let two = &whole[..whole.len() - last_record];
    assert_eq!(read_all(two).len(), 2);
}

#[test]
fn reading_through_a_slow_reader_gives_the_same_records() {
    /// Hands out at most 7 bytes per read, with an interruption now and then.
    struct Trickle<'a>(&'a [u8], u32);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 += 1;
            if self.1.is_multiple_of(5) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(7).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let mut writer = PcapWriter::new(Vec::new(), LinkType::RawIpv4).unwrap();
    write_sample(&mut writer, &sample());
    let file = writer.into_inner().unwrap();
    let slow: Vec<PcapRecord> = PcapReader::new(Trickle(&file, 0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(slow, read_all(&file));
}

#[test]
fn a_read_error_is_reported_with_its_reason() {
    struct Failing<'a>(&'a [u8]);
    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::from_raw_os_error(5)); // EIO
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let mut writer = PcapWriter::new(Vec::new(), LinkType::RawIpv4).unwrap();
    write_sample(&mut writer, &sample());
    let file = writer.into_inner().unwrap();
    let mut reader = PcapReader::new(Failing(&file[..24 + 44 + 10])).unwrap();
    assert!(reader.next().unwrap().is_ok());
    let err = reader.next().unwrap().unwrap_err();
    assert!(matches!(err, PcapError::Read { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "pcap: cannot read: Input/output error (os error 5)"
    );
    assert!(reader.next().is_none());
}

#[test]
fn corrupt_record_length_is_refused_before_buffering() {
    let mut file = global_header(false, true, 262_144, 101);
    file.extend(record(false, 1, 0, &ECHO_BY_HAND, 28));
    file.extend([
        0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    ]);
    let mut reader = PcapReader::new(&file[..]).unwrap();
    assert!(reader.next().unwrap().is_ok());
    let err = reader.next().unwrap().unwrap_err();
    assert!(
        matches!(
            err,
            PcapError::BadRecord {
                frame: 2,
                incl_len: u32::MAX,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("pcap: frame 2: corrupt record header"),
        "{err}"
    );
}

fn open_err(test: &str, bytes: &[u8]) -> (PathBuf, PcapError, TempDir) {
    let dir = TempDir::new(test);
    let path = dir.join("input.pcap");
    fs::write(&path, bytes).unwrap();
    let err = PcapReader::open(&path).unwrap_err();
    assert_eq!(err.path(), Some(path.as_path()));
    (path, err, dir)
}

#[test]
fn empty_file_is_a_clean_error() {
    let (path, err, _dir) = open_err("empty", &[]);
    assert!(matches!(err, PcapError::Empty { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!("{}: empty file, not a pcap file", path.display())
    );
}

#[test]
fn bad_magic_is_a_clean_error() {
    let (path, err, _dir) = open_err("magic", b"GET / HTTP/1.1\r\nHost: example\r\n\r\n");
    assert!(
        matches!(
            err,
            PcapError::BadMagic {
                magic: 0x4745_5420,
                ..
            }
        ),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: not a pcap file: magic number 0x47455420, expected 0xa1b2c3d4 or 0xa1b23c4d in \
             either byte order",
            path.display()
        )
    );
    // Too short even for a magic number: still "not a pcap file".
    let (_, err, _dir) = open_err("short-magic", b"ab");
    assert!(
        matches!(err, PcapError::TruncatedHeader { have: 2, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("not a pcap file: 2 bytes"),
        "{err}"
    );
}

#[test]
fn truncated_global_header_is_a_clean_error() {
    let header = global_header(false, true, 262_144, 101);
    let (path, err, _dir) = open_err("header", &header[..20]);
    assert!(
        matches!(err, PcapError::TruncatedHeader { have: 20, .. }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        format!(
            "{}: not a pcap file: 20 bytes, shorter than the 24-byte pcap header",
            path.display()
        )
    );
}

#[test]
fn pcapng_file_is_refused_with_the_conversion_command() {
    // A minimal Section Header Block, little-endian.
    let mut shb = Vec::new();
    shb.extend(0x0a0d_0d0au32.to_le_bytes());
    shb.extend(28u32.to_le_bytes());
    shb.extend(0x1a2b_3c4du32.to_le_bytes());
    shb.extend([1, 0, 0, 0]);
    shb.extend([0xff; 8]);
    shb.extend(28u32.to_le_bytes());
    let (path, err, _dir) = open_err("pcapng", &shb);
    assert!(matches!(err, PcapError::Pcapng { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{0}: this is a pcapng file; rawkit reads classic pcap only: convert it with `tshark \
             -F pcap -w out.pcap -r {0}`",
            path.display()
        )
    );
    // Over a stream the message still shows the command.
    let err = PcapReader::new(&shb[..]).unwrap_err();
    assert!(err.to_string().contains("-r in.pcapng`"), "{err}");
}

#[test]
fn pcapng_written_by_text2pcap_is_refused_and_the_advice_works() {
    let test = "pcapng_written_by_text2pcap_is_refused_and_the_advice_works";
    let (Some(text2pcap), Some(tshark)) = (tool(test, "text2pcap"), tool(test, "tshark")) else {
        return;
    };
    let dir = TempDir::new("pcapng-tool");
    let hex = dir.join("hex.txt");
    fs::write(&hex, hex_dump(&[ECHO_BY_HAND.to_vec()])).unwrap();
    let ng = dir.join("in.pcapng");
    run(Command::new(&text2pcap)
        .args(["-q", "-F", "pcapng", "-l", "101"])
        .arg(&hex)
        .arg(&ng));
    let err = PcapReader::open(&ng).unwrap_err();
    assert!(matches!(err, PcapError::Pcapng { .. }), "{err:?}");

    // Follow the advice.
    let out = dir.join("out.pcap");
    run(Command::new(&tshark)
        .args(["-F", "pcap", "-w"])
        .arg(&out)
        .arg("-r")
        .arg(&ng));
    let records: Vec<PcapRecord> = PcapReader::open(&out)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].ipv4(), Some(&ECHO_BY_HAND[..]));
}

#[test]
fn unknown_link_type_is_a_clean_error_naming_the_number() {
    // 147 is LINKTYPE_USER0.
    let (path, err, _dir) = open_err("link", &global_header(true, false, 65535, 147));
    assert!(
        matches!(err, PcapError::UnsupportedLinkType { number: 147, .. }),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.starts_with(&format!("{}: unsupported link type 147;", path.display())),
        "{msg}"
    );
    assert!(!msg.contains('\n'));
    // The FCS bits above the link type (libpcap's LT_FCS_*) do not hide a known type.
    let with_fcs = global_header(false, false, 65535, 0x1400_0001);
    assert_eq!(
        PcapReader::new(&with_fcs[..]).unwrap().link(),
        LinkType::Ethernet
    );
}

#[test]
fn missing_and_unwritable_paths_name_the_file_and_the_os_reason() {
    let dir = TempDir::new("paths");
    let missing = dir.join("missing.pcap");
    let err = PcapReader::open(&missing).unwrap_err();
    assert!(matches!(err, PcapError::Open { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: cannot open: No such file or directory (os error 2)",
            missing.display()
        )
    );

    let nowhere = dir.join("no-such-dir").join("out.pcap");
    let err = PcapWriter::create(&nowhere, LinkType::RawIpv4).unwrap_err();
    assert!(matches!(err, PcapError::Create { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: cannot create: No such file or directory (os error 2)",
            nowhere.display()
        )
    );

    // A directory opens on Linux but cannot be read.
    let err = PcapReader::open(&dir.0).unwrap_err();
    assert!(matches!(err, PcapError::Read { .. }), "{err:?}");
    assert!(
        err.to_string()
            .ends_with("cannot read: Is a directory (os error 21)"),
        "{err}"
    );
}

#[test]
fn link_type_numbers_round_trip() {
    for link in [
        LinkType::Ethernet,
        LinkType::RawIpv4,
        LinkType::Ipv4,
        LinkType::LinuxSll,
        LinkType::LinuxSll2,
    ] {
        assert_eq!(LinkType::from_number(link.number()), Some(link));
    }
    assert_eq!(LinkType::RawIpv4.number(), 101);
    assert_eq!(LinkType::RawIpv4.to_string(), "raw IP (101)");
    assert_eq!(LinkType::from_number(0), None);
}

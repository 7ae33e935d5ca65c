//! `rawkit capture`: watch an interface (or read a pcap file) and print one line per packet,
//! decoded by rawkit's packet layer, as tcpdump does; record to pcap with `-w`.
//!
//! The driver: validate the arguments into `Options`, compile the filter (`--proto`,
//! `--host`, `--port`, `--direction`) to one classic BPF program ([`CaptureFilter`]), open the
//! capture with the program attached before the first frame arrives (so the kernel drops what
//! does not match and its statistics count only what does), create the `-w` file, drop every
//! capability, then read frames from a `TPACKET_V3` ring until `-c`, `--timeout`, SIGINT or
//! SIGTERM. A pcap file (`-r`) is filtered by the very same program, run by rawkit's BPF
//! interpreter, and printed with the same lines.
//!
//! What it prints per packet is the packet layer's line
//! ([`summary_with`](crate::packet::display::summary_with)) after the kernel timestamp (UTC);
//! the JSON event carries the decoded fields. It must never send a packet.

mod decode;

use super::EXIT_ERROR;
use super::args::{int_in, seconds};
use super::output::{Out, warn};
use crate::net::capture::{
    Capture, CaptureOptions, CaptureStats, Frame, LinkType as NetLinkType, RingCapture, RingOptions,
};
use crate::net::filter::{CaptureFilter, Direction, FrameLayout, PORT_PROTOCOLS};
use crate::net::{NetError, poll, privilege};
use crate::pcap::{LinkType, PcapError, PcapReader, PcapWriter, SNAPLEN};
use clap::Args;
use decode::{Packet, Printer};
use serde_json::{Value, json};
use std::fs::File;
use std::io::BufWriter;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// The kernel buffer (the ring) when `-B` is not given: 4 MiB, twice tcpdump's default.
const DEFAULT_BUFFER_KIB: u32 = 4096;
/// Bounds of `-B`, in KiB: one 256 KiB ring block, and 1 GiB.
const MIN_BUFFER_KIB: u32 = 256;
const MAX_BUFFER_KIB: u32 = 1 << 20;

/// `rawkit capture [OPTIONS] (-i IFACE | -r FILE)`
#[derive(Debug, Args)]
#[command(
    group = clap::ArgGroup::new("source").required(true).args(["interface", "read"]),
    about = "Capture packets on an interface, or read a pcap file, and decode them (as tcpdump)",
    after_help = "Filters (all must hold) are compiled to classic BPF and run in the kernel; with -r \
                  the same program filters the file.\n\
                  One line per packet: the kernel timestamp (UTC, HH:MM:SS.ffffff) and rawkit's \
                  decode. At the end (or on Ctrl-C), on stderr: N packets captured, M received by \
                  filter, K dropped by kernel.\n\
                  Exit status: 0 done (count reached, timeout, Ctrl-C, end of file), 1 when \
                  --timeout ended the capture before -c COUNT packets, 2 on errors (bad input, \
                  unreadable or truncated file, missing privilege).\n\
                  Live capture needs CAP_NET_RAW (root, or setcap cap_net_raw+ep): see \
                  capabilities.md."
)]
pub struct CaptureArgs {
    /// Interface to capture on (lo, eth0, a veth or tun...).
    #[arg(short = 'i', long = "interface", value_name = "IFACE")]
    pub interface: Option<String>,

    /// Read packets from this pcap file instead (Ethernet, raw IP, raw IPv4, Linux cooked).
    #[arg(short = 'r', value_name = "FILE")]
    pub read: Option<PathBuf>,

    /// Write the packets to this pcap file (nanosecond timestamps, 256 KiB snap length).
    #[arg(short = 'w', value_name = "FILE")]
    pub write: Option<PathBuf>,

    /// Stop after COUNT packets.
    #[arg(short = 'c', value_name = "COUNT", allow_negative_numbers = true, value_parser = |s: &str| int_in::<u64>(s, 1, i64::MAX as u64))]
    pub count: Option<u64>,

    /// Stop after SECS seconds (fractions allowed).
    #[arg(long, value_name = "SECS", allow_negative_numbers = true, value_parser = parse_timeout)]
    pub timeout: Option<Duration>,

    /// Keep only this IPv4 protocol: icmp, igmp, tcp, udp, gre, esp, ah, sctp, or 0-255.
    #[arg(long = "proto", value_name = "PROTO", value_parser = parse_proto)]
    pub proto: Option<u8>,

    /// Keep only IPv4 datagrams from or to ADDR.
    #[arg(long, value_name = "ADDR", value_parser = parse_host)]
    pub host: Option<Ipv4Addr>,

    /// Keep only TCP, UDP or SCTP datagrams from or to PORT (first fragments).
    #[arg(long, value_name = "PORT", allow_negative_numbers = true, value_parser = |s: &str| int_in::<u16>(s, 0, 65_535))]
    pub port: Option<u16>,

    /// Which frames: in (received), out (sent), both. Default: both, except on lo, where
    /// every packet is sent and received and each is shown once (in).
    #[arg(long, value_name = "DIR", value_parser = ["in", "out", "both"])]
    pub direction: Option<String>,

    /// Also print each packet's bytes (the IPv4 datagram) as a hex dump.
    #[arg(short = 'x')]
    pub hex: bool,

    /// Quiet: no line per packet (with -w, only the file is written).
    #[arg(short = 'q')]
    pub quiet: bool,

    /// JSON Lines on stdout instead of text (one event per packet; see README).
    #[arg(long)]
    pub json: bool,

    /// Kernel buffer in KiB: the capture ring (256 to 1048576; default 4096).
    #[arg(short = 'B', long = "buffer-size", value_name = "KIB", allow_negative_numbers = true, value_parser = |s: &str| int_in::<u32>(s, MIN_BUFFER_KIB, MAX_BUFFER_KIB))]
    pub buffer_kib: Option<u32>,

    /// Put the interface in promiscuous mode while capturing.
    #[arg(long)]
    pub promisc: bool,

    /// Read with one recvmsg(2) per packet instead of the TPACKET_V3 ring (slower; for
    /// comparison).
    #[arg(long)]
    pub no_ring: bool,
}

fn parse_timeout(s: &str) -> Result<Duration, String> {
    let d = seconds(s, 2_147_483.0)?;
    if d.is_zero() {
        return Err(
            "must be more than 0 seconds (leave --timeout out to capture until Ctrl-C)".into(),
        );
    }
    Ok(d)
}

/// The protocol names `--proto` knows, with their numbers.
const PROTOCOL_NAMES: [(&str, u8); 8] = [
    ("icmp", 1),
    ("igmp", 2),
    ("tcp", 6),
    ("udp", 17),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("sctp", 132),
];

fn parse_proto(s: &str) -> Result<u8, String> {
    let t = s.trim().to_ascii_lowercase();
    if let Some((_, n)) = PROTOCOL_NAMES.iter().find(|(name, _)| *name == t) {
        return Ok(*n);
    }
    if t.chars().all(|c| c.is_ascii_digit()) && !t.is_empty() {
        return t
            .parse::<u8>()
            .map_err(|_| "out of range: a protocol number is 0 to 255".to_string());
    }
    Err("not a protocol: use icmp, igmp, tcp, udp, gre, esp, ah, sctp, or a number 0-255".into())
}

fn parse_host(s: &str) -> Result<Ipv4Addr, String> {
    s.trim().parse::<Ipv4Addr>().map_err(|_| {
        "not an IPv4 address: give a dotted quad such as 127.0.0.1 (names are not resolved)".into()
    })
}

/// Where the packets come from.
#[derive(Debug)]
enum Source {
    Live {
        iface: String,
        /// `None`: decided by the link type (in on lo, both elsewhere).
        direction: Option<Direction>,
        timeout: Option<Duration>,
        buffer_bytes: usize,
        promisc: bool,
        ring: bool,
    },
    File(PathBuf),
}

/// Validated options.
#[derive(Debug)]
struct Options {
    source: Source,
    /// The filter, its direction still `Both` until the link type is known.
    filter: CaptureFilter,
    count: Option<u64>,
    write: Option<PathBuf>,
    hex: bool,
    quiet: bool,
    json: bool,
}

impl Options {
    fn from_args(a: CaptureArgs) -> Result<Options, String> {
        let direction = match a.direction.as_deref() {
            None => None,
            Some("in") => Some(Direction::In),
            Some("out") => Some(Direction::Out),
            _ => Some(Direction::Both),
        };
        if let (Some(port), Some(p)) = (a.port, a.proto)
            && !PORT_PROTOCOLS.contains(&p)
        {
            return Err(format!(
                "--port {port} with --proto {p}: only tcp, udp and sctp have ports; drop --proto \
                 or use --proto udp"
            ));
        }
        let filter = CaptureFilter {
            protocol: a.proto,
            host: a.host,
            port: a.port,
            direction: Direction::Both,
        };
        let source = match (a.interface, a.read) {
            (Some(iface), None) => {
                if iface.is_empty() {
                    return Err("-i needs an interface name (list them with `ip link`)".into());
                }
                Source::Live {
                    iface,
                    direction,
                    timeout: a.timeout,
                    buffer_bytes: a.buffer_kib.unwrap_or(DEFAULT_BUFFER_KIB) as usize * 1024,
                    promisc: a.promisc,
                    ring: !a.no_ring,
                }
            }
            (None, Some(file)) => {
                let live_only = [
                    ("--direction", direction.is_some()),
                    ("--timeout", a.timeout.is_some()),
                    ("-B", a.buffer_kib.is_some()),
                    ("--promisc", a.promisc),
                    ("--no-ring", a.no_ring),
                ];
                if let Some((flag, _)) = live_only.iter().find(|(_, given)| *given) {
                    let why = if *flag == "--direction" {
                        "a pcap file does not record which way a packet went"
                    } else {
                        "it applies to live captures only"
                    };
                    return Err(format!("{flag} cannot be used with -r: {why}"));
                }
                if let Some(w) = &a.write
                    && same_file(w, &file)
                {
                    return Err(format!(
                        "-w {} is the file -r reads: writing would destroy it; choose another name",
                        w.display()
                    ));
                }
                Source::File(file)
            }
            // clap requires exactly one of them.
            _ => return Err("give -i IFACE to capture or -r FILE to read (see --help)".into()),
        };
        Ok(Options {
            source,
            filter,
            count: a.count,
            write: a.write,
            hex: a.hex,
            quiet: a.quiet,
            json: a.json,
        })
    }
}

/// True when `a` and `b` name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Runs `rawkit capture`; returns the exit status.
pub fn run(args: CaptureArgs) -> i32 {
    let o = match Options::from_args(args) {
        Ok(o) => o,
        Err(e) => {
            warn(e);
            return EXIT_ERROR;
        }
    };
    match &o.source {
        Source::File(path) => read_file(&o, path),
        Source::Live { .. } => live(&o),
    }
}

/// tcpdump's name of a pcap link type and its description.
fn link_name(link: LinkType) -> &'static str {
    match link {
        LinkType::Ethernet => "EN10MB (Ethernet)",
        LinkType::RawIpv4 => "RAW (Raw IP)",
        LinkType::Ipv4 => "IPV4 (Raw IPv4)",
        LinkType::LinuxSll => "LINUX_SLL (Linux cooked v1)",
        LinkType::LinuxSll2 => "LINUX_SLL2 (Linux cooked v2)",
    }
}

/// The layout the filter is compiled for, for records of a file of this link type.
fn file_layout(link: LinkType) -> FrameLayout {
    match link {
        LinkType::Ethernet => FrameLayout::Ethernet,
        LinkType::RawIpv4 | LinkType::Ipv4 => FrameLayout::RawIp,
        LinkType::LinuxSll => FrameLayout::LinuxSll,
        LinkType::LinuxSll2 => FrameLayout::LinuxSll2,
    }
}

/// The layout of the frames of a live interface, and the pcap link type they are written as;
/// `None` for link types rawkit cannot decode.
fn live_layout(link: NetLinkType) -> Option<(FrameLayout, LinkType)> {
    match link {
        NetLinkType::Ethernet | NetLinkType::Loopback => {
            Some((FrameLayout::Ethernet, LinkType::Ethernet))
        }
        NetLinkType::RawIp => Some((FrameLayout::RawIp, LinkType::RawIpv4)),
        NetLinkType::Other(_) => None,
    }
}

fn direction_name(d: Direction) -> &'static str {
    match d {
        Direction::In => "in",
        Direction::Out => "out",
        Direction::Both => "both",
    }
}

/// The filter as JSON, for the `start` event.
fn filter_json(f: &CaptureFilter, direction: Option<Direction>) -> Value {
    json!({
        "proto": f.protocol, "host": f.host.map(|h| h.to_string()), "port": f.port,
        "direction": direction.map(direction_name),
    })
}

/// Drops every capability once the sockets and files are open (DESIGN: trippy-privilege).
fn drop_capabilities() {
    if privilege::effective_caps().unwrap_or(0) != 0 || privilege::is_root() {
        // Failing to drop leaves the process as privileged as it started; the capture still
        // works, so this is not worth stopping for.
        let _ = privilege::drop_all_capabilities();
    }
}

/// Why a capture ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    Count,
    Timeout,
    Interrupted,
    BrokenPipe,
    EndOfFile,
}

impl Stop {
    fn name(self) -> &'static str {
        match self {
            Stop::Count => "count",
            Stop::Timeout => "timeout",
            Stop::Interrupted => "interrupted",
            Stop::BrokenPipe => "broken_pipe",
            Stop::EndOfFile => "end_of_file",
        }
    }
}

/// The capture as it reads: the ring, or one `recvmsg` per frame.
enum LiveSource {
    Ring(RingCapture),
    Recv { capture: Capture, buf: Vec<u8> },
}

impl LiveSource {
    /// The next frame without waiting.
    fn next(&mut self) -> Result<Option<(Frame, &[u8])>, NetError> {
        match self {
            LiveSource::Ring(r) => r.next_frame(),
            LiveSource::Recv { capture, buf } => Ok(capture
                .next(buf)?
                .map(|f| (f, &buf[..f.len.min(buf.len())]))),
        }
    }

    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            LiveSource::Ring(r) => r.as_fd(),
            LiveSource::Recv { capture, .. } => capture.as_fd(),
        }
    }

    fn link(&self) -> NetLinkType {
        match self {
            LiveSource::Ring(r) => r.link_type(),
            LiveSource::Recv { capture, .. } => capture.link_type(),
        }
    }

    fn statistics(&mut self) -> Result<CaptureStats, NetError> {
        match self {
            LiveSource::Ring(r) => r.statistics(),
            LiveSource::Recv { capture, .. } => capture.statistics(),
        }
    }

    fn set_ignore_outgoing(&mut self) -> Result<(), NetError> {
        match self {
            LiveSource::Ring(r) => r.set_ignore_outgoing(true),
            LiveSource::Recv { capture, .. } => capture.set_ignore_outgoing(true),
        }
    }
}

/// The message for a failure to open the capture on `iface`.
fn open_error(iface: &str, e: &NetError) -> String {
    match e {
        NetError::MissingPrivilege { .. } => format!(
            "capture on {iface}: packet sockets need CAP_NET_RAW: run as root, or setcap \
             cap_net_raw+ep on the binary (see capabilities.md)"
        ),
        NetError::NoSuchInterface { .. } => {
            format!("capture on {iface}: no such interface (list the interfaces with `ip link`)")
        }
        other => format!("capture on {iface}: {other}"),
    }
}

/// Opens the live capture with its filter; returns it and the direction in force.
fn open_live(
    o: &Options,
    iface: &str,
    direction: Option<Direction>,
    buffer_bytes: usize,
    promisc: bool,
    use_ring: bool,
) -> Result<(LiveSource, Direction), String> {
    let opts = CaptureOptions {
        ignore_outgoing: false,
        promiscuous: promisc,
        buffer_bytes: Some(buffer_bytes),
        read_timeout: None,
    };
    let mut chosen = Direction::Both;
    let mut compile = |link: NetLinkType| {
        let layout = live_layout(link)?.0;
        chosen = direction.unwrap_or(if link == NetLinkType::Loopback {
            Direction::In
        } else {
            Direction::Both
        });
        let filter = CaptureFilter {
            direction: chosen,
            ..o.filter
        };
        Some(filter.compile(layout))
    };
    let source = if use_ring {
        let ring = RingOptions {
            buffer_bytes,
            ..RingOptions::default()
        };
        match RingCapture::open(iface, opts, ring, &mut compile) {
            Ok(r) => LiveSource::Ring(r),
            // No memory for the ring: read frame by frame rather than not at all.
            Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => {
                warn(format!(
                    "capture on {iface}: no memory for a {} KiB ring ({e}); reading one packet \
                     per system call instead (try a smaller -B)",
                    buffer_bytes / 1024
                ));
                open_recv(iface, opts, &mut compile)?
            }
            Err(e) => return Err(open_error(iface, &e)),
        }
    } else {
        open_recv(iface, opts, &mut compile)?
    };
    let link = source.link();
    if live_layout(link).is_none() {
        let NetLinkType::Other(hatype) = link else {
            unreachable!("live_layout knows every other link type")
        };
        return Err(format!(
            "capture on {iface}: unsupported link type (ARPHRD {hatype}); rawkit captures on \
             Ethernet, loopback and raw-IP (tun) interfaces"
        ));
    }
    Ok((source, chosen))
}

fn open_recv(
    iface: &str,
    opts: CaptureOptions,
    compile: impl FnOnce(NetLinkType) -> Option<crate::net::filter::BpfProgram>,
) -> Result<LiveSource, String> {
    let capture =
        Capture::open_filtered(iface, opts, compile).map_err(|e| open_error(iface, &e))?;
    capture
        .set_nonblocking(true)
        .map_err(|e| open_error(iface, &e))?;
    Ok(LiveSource::Recv {
        capture,
        buf: vec![0u8; 65_600],
    })
}

/// SIGINT and SIGTERM, as a flag and as a socket that becomes readable (signal-hook's
/// self-pipe). The capture waits on the socket beside the capture itself: a signal that lands
/// after the flag was looked at, but before the wait began, still ends the wait.
struct Interrupt {
    flag: Arc<AtomicBool>,
    wake: Option<UnixStream>,
}

/// How long a wait lasts at most when the self-pipe could not be made (the flag is then
/// looked at this often).
const FLAG_POLL: Duration = Duration::from_millis(100);

impl Interrupt {
    fn register() -> Interrupt {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let flag = Arc::new(AtomicBool::new(false));
        for sig in [SIGINT, SIGTERM] {
            let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
        }
        let wake = UnixStream::pair().ok().and_then(|(read, write)| {
            read.set_nonblocking(true).ok()?;
            write.set_nonblocking(true).ok()?;
            let second = write.try_clone().ok()?;
            signal_hook::low_level::pipe::register(SIGINT, write).ok()?;
            signal_hook::low_level::pipe::register(SIGTERM, second).ok()?;
            Some(read)
        });
        Interrupt { flag, wake }
    }

    fn is_set(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }

    /// Waits until `fd` is readable, `wait` passes or a signal arrives.
    fn wait(&self, fd: BorrowedFd<'_>, wait: Option<Duration>) -> Result<(), NetError> {
        let mut ready = [false, false];
        // Whatever ended the wait, the caller looks at the flag, the clock and the capture.
        let _ = match &self.wake {
            Some(wake) => poll::poll_readable(&[fd, wake.as_fd()], wait, &mut ready)?,
            None => {
                let wait = Some(wait.map_or(FLAG_POLL, |w| w.min(FLAG_POLL)));
                poll::poll_readable(&[fd], wait, &mut ready[..1])?
            }
        };
        Ok(())
    }
}

fn create_writer(path: &Path, link: LinkType) -> Result<PcapWriter<BufWriter<File>>, String> {
    PcapWriter::create(path, link).map_err(|e| e.to_string())
}

fn live(o: &Options) -> i32 {
    let Source::Live {
        iface,
        direction,
        timeout,
        buffer_bytes,
        promisc,
        ring,
    } = &o.source
    else {
        unreachable!("live() is called for live sources")
    };
    let (mut source, direction) =
        match open_live(o, iface, *direction, *buffer_bytes, *promisc, *ring) {
            Ok(s) => s,
            Err(e) => {
                warn(e);
                return EXIT_ERROR;
            }
        };
    if direction == Direction::In {
        // The program already drops outgoing frames; this spares the kernel running it on them.
        let _ = source.set_ignore_outgoing();
    }
    let Some((_, pcap_link)) = live_layout(source.link()) else {
        unreachable!("open_live refuses unsupported link types")
    };
    let mut writer = match &o.write {
        None => None,
        Some(path) => match create_writer(path, pcap_link) {
            Ok(w) => Some(w),
            Err(e) => {
                warn(e);
                return EXIT_ERROR;
            }
        },
    };
    drop_capabilities();
    let interrupt = Interrupt::register();
    // In/Out tags only when asked for both directions: a pcap file does not record them, and
    // without tags `-w` then `-r` prints the same lines.
    let tagged = matches!(
        o.source,
        Source::Live {
            direction: Some(Direction::Both),
            ..
        }
    );
    let mut printer = Printer::new(Out::new("capture", o.json), o.hex, o.quiet, tagged);
    let reader = match source {
        LiveSource::Ring(_) => "ring",
        LiveSource::Recv { .. } => "recvmsg",
    };
    warn(format!(
        "listening on {iface}, link-type {}, snapshot length {SNAPLEN} bytes",
        link_name(pcap_link)
    ));
    printer.out().event(
        "start",
        json!({
            "interface": iface, "link_type": pcap_link.number(), "snaplen": SNAPLEN,
            "filter": filter_json(&o.filter, Some(direction)),
            "reader": reader,
        }),
    );
    let deadline = timeout.map(|t| Instant::now() + t);
    let mut captured: u64 = 0;
    let end = loop {
        if interrupt.is_set() {
            break Stop::Interrupted;
        }
        if printer.is_broken() {
            break Stop::BrokenPipe;
        }
        if o.count.is_some_and(|c| captured >= c) {
            break Stop::Count;
        }
        match source.next() {
            Ok(Some((frame, data))) => {
                captured += 1;
                let ts = frame.timestamp.unwrap_or_else(SystemTime::now);
                if let Some(w) = writer.as_mut()
                    && let Err(e) = w.write_packet(ts, data, frame.orig_len.max(data.len()))
                {
                    printer.flush();
                    warn(e);
                    return EXIT_ERROR;
                }
                if printer.wants_packets() {
                    printer.packet(captured, &Packet::live(&frame, data, ts));
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => {
                printer.flush();
                warn(format!("capture on {iface}: {e}"));
                return EXIT_ERROR;
            }
        }
        printer.flush();
        let wait = match deadline {
            None => None,
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    break Stop::Timeout;
                }
                Some(d - now)
            }
        };
        // A signal ends the wait at once; the flag is looked at on the next turn.
        if let Err(e) = interrupt.wait(source.fd(), wait) {
            warn(format!("capture on {iface}: {e}"));
            return EXIT_ERROR;
        }
    };
    printer.flush();
    if end == Stop::BrokenPipe {
        return 0;
    }
    let stats = match source.statistics() {
        Ok(s) => s,
        Err(e) => {
            warn(format!("capture on {iface}: {e}"));
            return EXIT_ERROR;
        }
    };
    let mut code = match (end, o.count) {
        (Stop::Timeout, Some(c)) if captured < c => 1,
        _ => 0,
    };
    if let Some(w) = writer.as_mut()
        && let Err(e) = w.flush()
    {
        warn(e);
        code = EXIT_ERROR;
    }
    // tcpdump's three counters, on one line, on stderr.
    eprintln!(
        "{captured} packets captured, {} received by filter, {} dropped by kernel",
        stats.packets, stats.drops
    );
    printer.out().event(
        "summary",
        json!({
            "interface": iface, "captured": captured, "received_by_filter": stats.packets,
            "dropped": stats.drops, "end": end.name(), "exit": code,
        }),
    );
    code
}

fn read_file(o: &Options, path: &Path) -> i32 {
    let mut reader = match PcapReader::open(path) {
        Ok(r) => r,
        Err(e) => {
            warn(e);
            return EXIT_ERROR;
        }
    };
    let link = reader.link();
    let program = o.filter.compile(file_layout(link));
    let mut writer = match &o.write {
        None => None,
        Some(w) => match create_writer(w, link) {
            Ok(w) => Some(w),
            Err(e) => {
                warn(e);
                return EXIT_ERROR;
            }
        },
    };
    drop_capabilities();
    let interrupt = Interrupt::register();
    let mut printer = Printer::new(Out::new("capture", o.json), o.hex, o.quiet, false);
    printer.out().event(
        "start",
        json!({
            "file": path.display().to_string(), "link_type": link.number(),
            "snaplen": reader.snaplen(), "filter": filter_json(&o.filter, None),
        }),
    );
    let (mut read, mut matched, mut captured) = (0u64, 0u64, 0u64);
    let mut failure: Option<PcapError> = None;
    let end = loop {
        if interrupt.is_set() {
            break Stop::Interrupted;
        }
        if printer.is_broken() {
            break Stop::BrokenPipe;
        }
        if o.count.is_some_and(|c| captured >= c) {
            break Stop::Count;
        }
        let record = match reader.next_record() {
            None => break Stop::EndOfFile,
            Some(Ok(r)) => r,
            Some(Err(e)) => {
                failure = Some(e);
                break Stop::EndOfFile;
            }
        };
        read += 1;
        if !program.matches(&record.data) {
            continue;
        }
        matched += 1;
        captured += 1;
        if let Some(w) = writer.as_mut()
            && let Err(e) = w.write_packet(record.ts, &record.data, record.orig_len)
        {
            printer.flush();
            warn(e);
            return EXIT_ERROR;
        }
        if printer.wants_packets() {
            printer.packet(captured, &Packet::record(&record));
        }
    };
    printer.flush();
    if end == Stop::BrokenPipe {
        return 0;
    }
    let mut code = if failure.is_some() { EXIT_ERROR } else { 0 };
    let mut error = failure.as_ref().map(ToString::to_string);
    if let Some(w) = writer.as_mut()
        && let Err(e) = w.flush()
    {
        code = EXIT_ERROR;
        error.get_or_insert_with(|| e.to_string());
        if failure.is_none() {
            warn(&e);
        }
    }
    printer.out().event(
        "summary",
        json!({
            "file": path.display().to_string(), "captured": captured, "read": read,
            "received_by_filter": matched, "dropped": 0, "end": end.name(),
            "error": error, "exit": code,
        }),
    );
    // After every complete record was decoded: the file's damage, one line.
    match failure {
        Some(e @ PcapError::TruncatedRecord { .. }) => warn(format!(
            "{e}: the file was cut short; the {read} complete records before it were read"
        )),
        Some(e) => warn(e),
        None => {}
    }
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocol_names_numbers_and_garbage() {
        assert_eq!(parse_proto("icmp"), Ok(1));
        assert_eq!(parse_proto("UDP"), Ok(17));
        assert_eq!(parse_proto("17"), Ok(17));
        assert_eq!(parse_proto("0"), Ok(0));
        assert_eq!(parse_proto("255"), Ok(255));
        assert!(parse_proto("256").unwrap_err().contains("0 to 255"));
        assert!(parse_proto("-1").unwrap_err().contains("not a protocol"));
        assert!(parse_proto("ipv7").unwrap_err().contains("not a protocol"));
        assert!(parse_proto("").is_err());
    }

    #[test]
    fn hosts_are_ipv4_literals() {
        assert_eq!(parse_host("127.0.0.1"), Ok(Ipv4Addr::LOCALHOST));
        assert!(
            parse_host("localhost")
                .unwrap_err()
                .contains("not resolved")
        );
        assert!(parse_host("::1").is_err());
        assert!(parse_timeout("0").unwrap_err().contains("more than 0"));
        assert_eq!(parse_timeout("0.5"), Ok(Duration::from_millis(500)));
    }

    #[test]
    fn every_file_link_type_has_a_layout_and_a_name() {
        for link in [
            LinkType::Ethernet,
            LinkType::RawIpv4,
            LinkType::Ipv4,
            LinkType::LinuxSll,
            LinkType::LinuxSll2,
        ] {
            assert!(link_name(link).contains('('));
            let _ = file_layout(link);
        }
        assert_eq!(
            live_layout(NetLinkType::Loopback),
            Some((FrameLayout::Ethernet, LinkType::Ethernet))
        );
        assert_eq!(
            live_layout(NetLinkType::RawIp),
            Some((FrameLayout::RawIp, LinkType::RawIpv4))
        );
        assert_eq!(live_layout(NetLinkType::Other(776)), None);
    }
}

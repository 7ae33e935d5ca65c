//! `rawkit ping`: iputils ping's flags, output and exit codes, on packets rawkit builds itself.
//!
//! The driver: validate the arguments into [`Options`], resolve the target, open the sockets
//! (raw by default: the IPv4 header and ICMP message are built by rawkit and sent through
//! `IP_HDRINCL`, replies read on a raw ICMP socket behind a BPF filter on the identifier; or the
//! unprivileged ICMP datagram socket), drop every capability, then run the
//! [`PingSession`](crate::probe::ping::PingSession) engine against the clock and the sockets,
//! printing what iputils prints.
//!
//! Each probe's payload starts with 16 bytes where iputils keeps its `struct timeval`: the send
//! time (nanoseconds since the Unix epoch, big-endian) and a random per-run cookie. A reply whose
//! cookie differs belongs to another program that happens to use the same identifier and is
//! ignored, so concurrent pings never see each other's replies.

use super::EXIT_ERROR;
use super::args::{byte_dec_or_hex, int_in, seconds};
use super::output::{Out, ms_f64, warn};
use crate::net::filter::BpfProgram;
use crate::net::poll;
use crate::net::privilege;
use crate::net::resolve::{self, ReverseCache};
use crate::net::route;
use crate::net::socket::{DgramIcmpSocket, HdrInclSender, Incoming, PmtuMode, RawIcmpSocket};
use crate::net::{ErrorOrigin, NetError};
use crate::packet::builder::Ipv4Builder;
use crate::packet::fragment::Fragmenter;
use crate::packet::icmp::{
    self, DstUnreachable, IcmpPacket, IcmpRepr, IcmpType, QuotedTransport, Redirect, TimeExceeded,
};
use crate::packet::ipv4::{IpProtocol, Ipv4Packet};
use crate::pcap::{LinkType, PcapWriter};
use crate::probe::ping::{Next, PingConfig, PingSession, ReplyKind};
use crate::probe::stats::{loss_percent, ms3, reply_time};
use clap::Args;
use serde_json::json;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Largest ICMP payload in an IPv4 datagram: 65535 - 20 - 8.
pub const MAX_PAYLOAD: usize = 65_507;
/// The timestamp and cookie at the front of the payload (iputils' `sizeof(struct timeval)`).
const STAMP_LEN: usize = 16;
/// iputils' minimal interval for users without privileges.
const MIN_USER_INTERVAL: Duration = Duration::from_millis(2);

/// `rawkit ping [OPTIONS] HOST`
#[derive(Debug, Args)]
#[command(
    about = "Send ICMP echo requests to a host, as iputils ping does",
    after_help = "Exit status: 0 if replies came back, 1 if none did (or fewer than -c with -w), 2 on errors.\n\
                  Needs CAP_NET_RAW (root, or setcap cap_net_raw+ep), or an unprivileged ICMP socket \
                  allowed by net.ipv4.ping_group_range: see capabilities.md."
)]
pub struct PingArgs {
    /// Host name or IPv4 address to ping.
    #[arg(value_name = "HOST")]
    pub host: String,

    /// Stop after COUNT replies (or errors).
    #[arg(short = 'c', value_name = "COUNT", allow_negative_numbers = true, value_parser = |s: &str| int_in::<u64>(s, 1, i64::MAX as u64))]
    pub count: Option<u64>,

    /// Seconds between probes; below 0.002 only with privileges.
    #[arg(short = 'i', value_name = "INTERVAL", allow_negative_numbers = true, value_parser = |s: &str| seconds(s, 2_147_483.0))]
    pub interval: Option<Duration>,

    /// Seconds to wait for a reply after the last probe when none came (0: for ever).
    #[arg(short = 'W', value_name = "TIMEOUT", allow_negative_numbers = true, value_parser = |s: &str| seconds(s, 4_294.0))]
    pub timeout: Option<Duration>,

    /// Stop after DEADLINE seconds, however many probes were answered.
    #[arg(short = 'w', value_name = "DEADLINE", allow_negative_numbers = true, value_parser = |s: &str| int_in::<u32>(s, 0, i32::MAX as u32))]
    pub deadline: Option<u32>,

    /// Bytes of ICMP payload (0 to 65507); 16 or more carry a timestamp.
    #[arg(short = 's', value_name = "SIZE", allow_negative_numbers = true, default_value_t = 56, value_parser = |s: &str| int_in::<usize>(s, 0, MAX_PAYLOAD))]
    pub size: usize,

    /// IPv4 time to live (1 to 255).
    #[arg(short = 't', value_name = "TTL", allow_negative_numbers = true, value_parser = |s: &str| int_in::<u8>(s, 1, 255))]
    pub ttl: Option<u8>,

    /// IPv4 TOS byte (DSCP and ECN), decimal or 0x hex.
    #[arg(short = 'Q', value_name = "TOS", value_parser = byte_dec_or_hex)]
    pub tos: Option<u8>,

    /// Up to 16 payload bytes in hex, repeated to fill the payload.
    #[arg(short = 'p', value_name = "PATTERN", value_parser = parse_pattern)]
    pub pattern: Option<Pattern>,

    /// Flood: print a dot per probe and a backspace per reply; send as fast as replies come
    /// back or 100 per second.
    #[arg(short = 'f')]
    pub flood: bool,

    /// Send PRELOAD probes at once before pacing (above 3 only with privileges).
    #[arg(short = 'l', value_name = "PRELOAD", allow_negative_numbers = true, value_parser = |s: &str| int_in::<u32>(s, 1, 65_536))]
    pub preload: Option<u32>,

    /// Quiet: only the header and the statistics.
    #[arg(short = 'q')]
    pub quiet: bool,

    /// Numeric output: no reverse name lookups.
    #[arg(short = 'n')]
    pub numeric: bool,

    /// Print a Unix timestamp before each line.
    #[arg(short = 'D')]
    pub timestamps: bool,

    /// Report a probe that had no answer when the next one is sent.
    #[arg(short = 'O')]
    pub outstanding: bool,

    /// Interface name or source address.
    #[arg(short = 'I', value_name = "INTERFACE")]
    pub interface: Option<String>,

    /// Path MTU discovery: do (DF set, never fragment), dont (DF clear), want, probe.
    #[arg(short = 'M', value_name = "PMTUDISC", value_parser = ["do", "dont", "want", "probe"])]
    pub pmtudisc: Option<String>,

    /// ICMP identifier (0 to 65535); default random (raw) or chosen by the kernel (datagram).
    #[arg(short = 'e', value_name = "IDENT", allow_negative_numbers = true, value_parser = |s: &str| int_in::<u16>(s, 0, 65_535))]
    pub ident: Option<u16>,

    /// Audible: ring the bell on each reply.
    #[arg(short = 'a')]
    pub audible: bool,

    /// Verbose: say which socket is used, print identifiers and other ICMP messages.
    #[arg(short = 'v')]
    pub verbose: bool,

    /// JSON Lines on stdout instead of text (one event per line; see README).
    #[arg(long)]
    pub json: bool,

    /// Also write probes and replies to this pcap file (Wireshark, tshark, tcpdump -r).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// Use the raw socket path only (IP_HDRINCL; needs CAP_NET_RAW).
    #[arg(long, conflicts_with = "dgram")]
    pub raw: bool,

    /// Use the unprivileged ICMP datagram socket only (net.ipv4.ping_group_range).
    #[arg(long)]
    pub dgram: bool,
}

/// The `-p` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(pub Vec<u8>);

fn parse_pattern(s: &str) -> Result<Pattern, String> {
    parse_pattern_bytes(s).map(Pattern)
}

fn parse_pattern_bytes(s: &str) -> Result<Vec<u8>, String> {
    if s.is_empty() {
        return Err("empty pattern: give 1 to 16 bytes of hex, e.g. ff00".into());
    }
    if let Some(bad) = s.find(|c: char| !c.is_ascii_hexdigit()) {
        return Err(format!(
            "patterns must be specified as hex digits: {}",
            &s[bad..]
        ));
    }
    if s.len() > 32 {
        return Err("at most 16 bytes (32 hex digits)".into());
    }
    // iputils reads pairs of digits; an odd last digit is a byte of its own ("abc" = ab 0c).
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(16);
    let mut i = 0;
    while i < bytes.len() {
        let end = (i + 2).min(bytes.len());
        let part = std::str::from_utf8(&bytes[i..end]).unwrap_or("0");
        out.push(u8::from_str_radix(part, 16).map_err(|e| e.to_string())?);
        i = end;
    }
    Ok(out)
}

/// How the probes go out and the replies come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketMode {
    /// rawkit builds IPv4 + ICMP, sends through `IP_HDRINCL`, reads a raw ICMP socket.
    Raw,
    /// The kernel's ICMP datagram socket: rawkit builds the ICMP message only.
    Dgram,
}

/// What `-I` named.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Interface {
    Device(String),
    Source(Ipv4Addr),
}

/// Validated options.
#[derive(Debug)]
struct Options {
    args: PingArgs,
    interval: Duration,
    preload: u32,
    pmtu: PmtuMode,
    pattern: Vec<u8>,
    interface: Option<Interface>,
}

fn privileged() -> bool {
    privilege::is_root() || privilege::has_cap_net_raw()
}

impl Options {
    fn from_args(args: PingArgs) -> Result<Options, String> {
        let interval = match (args.interval, args.flood) {
            (Some(i), _) => i,
            (None, true) => Duration::ZERO,
            (None, false) => Duration::from_secs(1),
        };
        if interval < MIN_USER_INTERVAL && !privileged() {
            return Err(
                "cannot flood, minimal interval for user must be >= 2 ms, use -i 0.002 (or higher); \
                 shorter intervals need CAP_NET_RAW (run as root, or setcap cap_net_raw+ep)"
                    .into(),
            );
        }
        let preload = args.preload.unwrap_or(1);
        if preload > 3 && !privileged() {
            return Err(format!(
                "cannot set preload to value greater than 3: {preload} (needs CAP_NET_RAW)"
            ));
        }
        let pmtu = match args.pmtudisc.as_deref() {
            Some("do") => PmtuMode::Do,
            Some("dont") => PmtuMode::Dont,
            Some("probe") => PmtuMode::Probe,
            _ => PmtuMode::Want,
        };
        let pattern = args.pattern.clone().map(|p| p.0).unwrap_or_default();
        let interface = match args.interface.as_deref() {
            None => None,
            Some("") => return Err("-I needs an interface name or an IPv4 address".into()),
            Some(s) => match s.parse::<Ipv4Addr>() {
                Ok(a) => Some(Interface::Source(a)),
                Err(_) if route::interface_exists(s) => Some(Interface::Device(s.to_string())),
                Err(_) => {
                    return Err(format!(
                        "-I {s}: no such interface (list them with `ip link`, or give a source address)"
                    ));
                }
            },
        };
        Ok(Options {
            args,
            interval,
            preload,
            pmtu,
            pattern,
            interface,
        })
    }

    fn device(&self) -> Option<&str> {
        match &self.interface {
            Some(Interface::Device(d)) => Some(d),
            _ => None,
        }
    }
}

/// The payload template: the pattern (or iputils' `i & 0xff`) over every byte; the first 16
/// bytes are overwritten per probe with the send time and the cookie.
fn payload_template(size: usize, pattern: &[u8]) -> Vec<u8> {
    (0..size)
        .map(|i| {
            if pattern.is_empty() {
                i as u8
            } else {
                pattern[i % pattern.len()]
            }
        })
        .collect()
}

fn random_u64() -> u64 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// The open sockets.
enum Sockets {
    Raw {
        rx: RawIcmpSocket,
        tx: HdrInclSender,
    },
    Dgram(DgramIcmpSocket),
}

/// Opens the sockets the mode asks for, or the best available.
fn open_sockets(o: &Options, ident: u16) -> Result<(Sockets, u16), NetError> {
    let want_raw = o.args.raw || o.args.ident == Some(0);
    let try_raw = || -> Result<Sockets, NetError> {
        let rx = RawIcmpSocket::open()?;
        let tx = HdrInclSender::open()?;
        Ok(Sockets::Raw { rx, tx })
    };
    if o.args.dgram {
        let s = DgramIcmpSocket::open_bound(source_for_bind(o), o.args.ident.unwrap_or(0))?;
        let id = s.local_ident();
        return Ok((Sockets::Dgram(s), id));
    }
    match try_raw() {
        Ok(s) => Ok((s, ident)),
        Err(e) if e.is_permission() && !want_raw => {
            match DgramIcmpSocket::open_bound(source_for_bind(o), o.args.ident.unwrap_or(0)) {
                Ok(s) => {
                    let id = s.local_ident();
                    Ok((Sockets::Dgram(s), id))
                }
                // Neither works: the raw socket's message says both ways to fix it.
                Err(_) => Err(e),
            }
        }
        Err(e) => Err(e),
    }
}

/// The address a datagram socket binds to: the `-I` address, else any.
fn source_for_bind(o: &Options) -> Ipv4Addr {
    match o.interface {
        Some(Interface::Source(a)) => a,
        _ => Ipv4Addr::UNSPECIFIED,
    }
}

/// Everything the receive path needs to recognise our replies.
struct Matcher {
    target: Ipv4Addr,
    /// Our own source address: a "fragmentation needed" from it is the kernel refusing our own
    /// send, already reported by `sendto`.
    source: Ipv4Addr,
    ident: u16,
    cookie: [u8; 8],
    size: usize,
}

impl Matcher {
    /// True when an echo reply's data carries our cookie (or is too short to carry one).
    fn cookie_ok(&self, data: &[u8]) -> bool {
        if self.size < STAMP_LEN || data.len() < STAMP_LEN {
            return true;
        }
        data[8..16] == self.cookie
    }
}

/// A reply or error, decoded, ready for the session and the printer.
enum Event {
    Reply {
        seq: u16,
        from: Ipv4Addr,
        icmp_len: usize,
        ttl: Option<u8>,
        sent_ns: Option<u64>,
        checksum_ok: bool,
        /// Where the echo data lies in the receive buffer (no copy per reply).
        data: core::ops::Range<usize>,
    },
    Error {
        seq: u16,
        from: Ipv4Addr,
        icmp_type: u8,
        code: u8,
        info: u32,
    },
    Notice {
        seq: u16,
        from: Ipv4Addr,
        icmp_type: u8,
        code: u8,
        gateway: Ipv4Addr,
        checksum_ok: bool,
    },
    LocalError {
        errno: i32,
        info: u32,
    },
}

/// Decodes one datagram from the raw ICMP socket (IPv4 header included).
fn decode_raw(m: &Matcher, datagram: &[u8]) -> Option<Event> {
    // Raw sockets deliver whatever arrives: a malformed packet is dropped, never a panic.
    let ip = Ipv4Packet::new_checked(datagram).ok()?;
    if ip.protocol() != IpProtocol::Icmp || ip.is_fragment() {
        return None;
    }
    let icmp = IcmpPacket::new_checked(ip.payload()).ok()?;
    let checksum_ok = icmp.verify_checksum();
    match icmp.msg_type() {
        IcmpType::EchoReply => {
            if icmp.echo_ident() != m.ident || !m.cookie_ok(icmp.data()) {
                return None;
            }
            Some(Event::Reply {
                seq: icmp.echo_seq_no(),
                from: ip.src_addr(),
                icmp_len: icmp.as_bytes().len(),
                ttl: Some(ip.ttl()),
                sent_ns: stamp(m, icmp.data()),
                checksum_ok,
                data: {
                    let start = ip.header_len() + icmp::HEADER_LEN;
                    start..start + icmp.data().len()
                },
            })
        }
        t if t.is_error() => {
            let q = icmp.quote_info()?;
            let QuotedTransport::Icmp {
                msg_type: 8,
                ident,
                seq_no,
                ..
            } = q.transport
            else {
                return None;
            };
            if ident != m.ident || q.dst_addr != m.target {
                return None;
            }
            if t == IcmpType::DstUnreachable
                && DstUnreachable::from(icmp.msg_code()) == DstUnreachable::FragRequired
                && ip.src_addr() == m.source
            {
                return None;
            }
            // When the router quoted enough of the payload, the cookie must match too.
            if let Ok(qip) = icmp.quoted_ipv4() {
                let p = qip.payload();
                if p.len() >= 8 + STAMP_LEN && !m.cookie_ok(&p[8..]) {
                    return None;
                }
            }
            match t {
                IcmpType::Redirect | IcmpType::SourceQuench => Some(Event::Notice {
                    seq: seq_no,
                    from: ip.src_addr(),
                    icmp_type: t.into(),
                    code: icmp.msg_code(),
                    gateway: icmp.gateway(),
                    checksum_ok,
                }),
                _ => Some(Event::Error {
                    seq: seq_no,
                    from: ip.src_addr(),
                    icmp_type: t.into(),
                    code: icmp.msg_code(),
                    info: match t {
                        IcmpType::ParamProblem => icmp.pointer() as u32,
                        _ => icmp.next_hop_mtu() as u32,
                    },
                }),
            }
        }
        _ => None,
    }
}

/// The send time carried in the payload, when it is long enough.
fn stamp(m: &Matcher, data: &[u8]) -> Option<u64> {
    if m.size < STAMP_LEN || data.len() < STAMP_LEN {
        return None;
    }
    Some(u64::from_be_bytes(data[..8].try_into().ok()?))
}

/// The words iputils prints for an ICMP type and code (`pr_icmph`), without the newline.
pub fn icmp_text(icmp_type: u8, code: u8, info: u32, gateway: Option<Ipv4Addr>) -> String {
    match IcmpType::from(icmp_type) {
        IcmpType::EchoReply => "Echo Reply".into(),
        IcmpType::DstUnreachable => match DstUnreachable::from(code) {
            DstUnreachable::FragRequired => format!("Frag needed and DF set (mtu = {info})"),
            c => c.to_string(),
        },
        IcmpType::SourceQuench => "Source Quench".into(),
        IcmpType::Redirect => format!(
            "{}(New nexthop: {})",
            Redirect::from(code),
            gateway.unwrap_or(Ipv4Addr::from(info))
        ),
        IcmpType::EchoRequest => "Echo Request".into(),
        IcmpType::TimeExceeded => TimeExceeded::from(code).to_string(),
        IcmpType::ParamProblem => format!("Parameter problem: pointer = {info}"),
        IcmpType::Timestamp => "Timestamp".into(),
        IcmpType::TimestampReply => "Timestamp Reply".into(),
        IcmpType::InfoRequest => "Information Request".into(),
        IcmpType::InfoReply => "Information Reply".into(),
        IcmpType::AddressMaskRequest => "Address Mask Request".into(),
        IcmpType::AddressMaskReply => "Address Mask Reply".into(),
        _ => format!("Bad ICMP type: {icmp_type}"),
    }
}

/// Runs `rawkit ping`; returns the exit status.
pub fn run(args: PingArgs) -> i32 {
    let o = match Options::from_args(args) {
        Ok(o) => o,
        Err(e) => {
            warn(e);
            return EXIT_ERROR;
        }
    };
    match Driver::start(o) {
        Ok(mut d) => d.run(),
        Err(code) => code,
    }
}

struct Driver {
    o: Options,
    out: Out,
    session: PingSession,
    sockets: Sockets,
    matcher: Matcher,
    hostname: String,
    names: ReverseCache,
    source: Ipv4Addr,
    template: Vec<u8>,
    buf: Vec<u8>,
    rxbuf: Vec<u8>,
    ip_ident: u16,
    pcap: Option<PcapWriter<std::io::BufWriter<std::fs::File>>>,
    start: Instant,
    interrupt: Arc<AtomicBool>,
    status: Arc<AtomicBool>,
    pmtu_cache: Option<u32>,
}

impl Driver {
    fn start(o: Options) -> Result<Driver, i32> {
        let fail = |e: &dyn std::fmt::Display| {
            warn(e);
            EXIT_ERROR
        };
        let resolved = resolve::resolve_ipv4(&o.args.host).map_err(|e| fail(&e))?;
        let target = resolved.addr;
        if target.is_broadcast() || target.is_multicast() {
            return Err(fail(&format!(
                "{target}: broadcast and multicast targets are not supported"
            )));
        }
        if let Some(Interface::Source(a)) = o.interface {
            route::check_local_source(a).map_err(|e| fail(&format!("-I {a}: {e}")))?;
        }
        let source = match &o.interface {
            Some(Interface::Source(a)) => *a,
            _ => route::source_for(target, o.device()).map_err(|e| fail(&e))?,
        };
        let r = random_u64();
        let wanted_ident = o.args.ident.unwrap_or((r >> 48) as u16);
        let (sockets, ident) = open_sockets(&o, wanted_ident).map_err(|e| fail(&e))?;
        let mode = match sockets {
            Sockets::Raw { .. } => SocketMode::Raw,
            Sockets::Dgram(_) => SocketMode::Dgram,
        };
        if let Err(e) = configure(&o, &sockets, ident) {
            return Err(fail(&e));
        }
        let pcap = match &o.args.pcap {
            None => None,
            Some(p) => Some(PcapWriter::create(p, LinkType::RawIpv4).map_err(|e| fail(&e))?),
        };
        // Sockets open: nothing else needs a privilege. Drop them all (DESIGN: trippy-privilege).
        if privilege::effective_caps().unwrap_or(0) != 0 || privilege::is_root() {
            if let Err(e) = privilege::drop_all_capabilities() {
                if o.args.verbose {
                    warn(format!("could not drop capabilities: {e}"));
                }
            }
        }
        let interrupt = Arc::new(AtomicBool::new(false));
        let status = Arc::new(AtomicBool::new(false));
        let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&interrupt));
        let _ = signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&interrupt));
        let _ = signal_hook::flag::register(signal_hook::consts::SIGQUIT, Arc::clone(&status));

        let numeric = o.args.numeric || o.args.flood || resolved.numeric;
        let hostname = resolved.canonical.clone();
        let mut out = Out::new("ping", o.args.json);
        out.set_quiet(o.args.quiet);
        if o.args.verbose {
            warn(format!(
                "{} socket, identifier {ident}, source {source}",
                match mode {
                    SocketMode::Raw => "raw IP_HDRINCL",
                    SocketMode::Dgram => "ICMP datagram (unprivileged)",
                }
            ));
        }
        if !o.pattern.is_empty() && !o.args.quiet {
            let hex: String = o.pattern.iter().map(|b| format!("{b:02x}")).collect();
            out.text(&format!("PATTERN: 0x{hex}\n"));
        }
        let size = o.args.size;
        let mut header = format!("PING {} ({}) ", hostname, target);
        if o.interface.is_some() {
            header.push_str(&format!("from {} {}: ", source, o.device().unwrap_or("")));
        }
        header.push_str(&format!("{}({}) bytes of data.\n", size, size + 28));
        out.text(&header);
        out.event(
            "start",
            json!({
                "target": o.args.host, "addr": target.to_string(), "source": source.to_string(),
                "bytes": size, "ident": ident,
                "socket": match mode { SocketMode::Raw => "raw", SocketMode::Dgram => "dgram" },
            }),
        );
        let cfg = PingConfig {
            count: o.args.count,
            interval: o.interval,
            preload: o.preload,
            deadline: o
                .args
                .deadline
                .filter(|d| *d > 0)
                .map(|d| Duration::from_secs(d as u64)),
            linger: o.args.timeout.unwrap_or(Duration::from_secs(10)),
            flood: o.args.flood,
        };
        let template = payload_template(size, &o.pattern);
        Ok(Driver {
            matcher: Matcher {
                target,
                source,
                ident,
                cookie: r.to_be_bytes(),
                size,
            },
            session: PingSession::new(cfg),
            sockets,
            hostname,
            names: ReverseCache::new(numeric),
            source,
            template,
            buf: vec![0u8; 65_536],
            rxbuf: vec![0u8; 65_536],
            ip_ident: (r >> 32) as u16 | 1,
            pcap,
            start: Instant::now(),
            interrupt,
            status,
            pmtu_cache: None,
            out,
            o,
        })
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    fn prefix(&self) -> String {
        if !self.o.args.timestamps {
            return String::new();
        }
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        format!("[{}.{:06}] ", t.as_secs(), t.subsec_micros())
    }

    fn run(&mut self) -> i32 {
        loop {
            if self.interrupt.load(Ordering::Relaxed) {
                self.session.interrupt();
            }
            if self.status.swap(false, Ordering::Relaxed) {
                self.print_status();
            }
            if self.out.is_broken() {
                break;
            }
            let now = self.now();
            match self.session.next(now) {
                Next::Finish => break,
                Next::Send { seq, no_answer_yet } => {
                    if let Some(prev) = no_answer_yet
                        && self.o.args.outstanding
                        && !self.o.args.flood
                        && !self.o.args.quiet
                    {
                        let p = self.prefix();
                        self.out
                            .text(&format!("{p}no answer yet for icmp_seq={prev}\n"));
                        self.out.event("timeout", json!({ "seq": prev }));
                    }
                    self.send(seq);
                    // On lo the reply is often queued before sendto returns: read it now,
                    // without a poll; but not in the middle of a preload burst, which goes out
                    // whole before anything is read (as iputils: `pipe N`).
                    if self.session.in_flight() >= self.o.preload
                        && let Err(e) = self.receive_ready()
                    {
                        warn(e);
                        return EXIT_ERROR;
                    }
                }
                Next::WaitUntil(t) => {
                    let wait = t.saturating_sub(now);
                    if let Err(e) = self.wait_and_receive(wait) {
                        warn(e);
                        return EXIT_ERROR;
                    }
                }
            }
        }
        self.out.flush();
        self.finish()
    }

    fn send(&mut self, seq: u16) {
        let size = self.o.args.size;
        let mut data = std::mem::take(&mut self.template);
        let sent_at = SystemTime::now();
        if size >= STAMP_LEN {
            data[..8].copy_from_slice(&unix_nanos(sent_at).to_be_bytes());
            data[8..16].copy_from_slice(&self.matcher.cookie);
        }
        let echo = IcmpRepr::EchoRequest {
            ident: self.matcher.ident,
            seq_no: seq,
            data: &data,
        };
        let result = match &self.sockets {
            Sockets::Raw { tx, .. } => {
                self.ip_ident = self.ip_ident.wrapping_add(1).max(1);
                let df = self.o.pmtu != PmtuMode::Dont;
                let mut b = Ipv4Builder::new(self.source, self.matcher.target)
                    .ident(self.ip_ident)
                    .dont_frag(df)
                    .icmp(&echo);
                if let Some(t) = self.o.args.ttl {
                    b = b.ttl(t);
                }
                if let Some(q) = self.o.args.tos {
                    b = b.tos(q);
                }
                match b.emit(&mut self.buf) {
                    Err(e) => Err(SendError::Other(format!("{e}"))),
                    Ok(n) => {
                        let r = send_datagram(
                            tx,
                            &self.buf[..n],
                            self.matcher.target,
                            self.o.pmtu,
                            &mut self.pmtu_cache,
                            self.o.device(),
                        );
                        if r.is_ok()
                            && let Some(w) = self.pcap.as_mut()
                        {
                            let _ = w.write_packet(sent_at, &self.buf[..n], n);
                        }
                        r
                    }
                }
            }
            Sockets::Dgram(s) => {
                // The kernel fills the checksum and the identifier of a ping socket; rawkit
                // computes it anyway (the kernel overwrites it) so the pcap copy is right.
                match echo.emit(&mut self.buf) {
                    Err(e) => Err(SendError::Other(format!("{e}"))),
                    Ok(n) => match s.send_to(&self.buf[..n], self.matcher.target) {
                        Ok(_) => {
                            if let Some(w) = self.pcap.as_mut() {
                                write_synthetic(
                                    w,
                                    sent_at,
                                    self.source,
                                    self.matcher.target,
                                    Some(self.o.args.ttl.unwrap_or(64)),
                                    &self.buf[..n],
                                );
                            }
                            Ok(())
                        }
                        // The error queue reports it (with the MTU), once: see `handle`.
                        Err(NetError::MessageTooLong { .. }) => Err(SendError::Queued),
                        Err(e) => Err(SendError::Other(format!("sendmsg: {e}"))),
                    },
                }
            }
        };
        self.template = data;
        let now = self.now();
        self.session.sent(now);
        match result {
            Ok(()) => {
                if self.o.args.flood && !self.o.args.quiet {
                    self.out.text_later(".");
                }
                if self.out.wants_events() {
                    self.out
                        .event("sent", json!({ "seq": seq, "bytes": size + 8 }));
                }
            }
            // iputils counts a probe it could not send as transmitted, and as an error only
            // when it was too long for the MTU; other failures (a firewall's EPERM) are
            // reported, not counted.
            Err(SendError::Queued) => {}
            Err(SendError::TooLong(text)) => {
                self.session.on_send_error();
                self.report_send_error(seq, &text);
            }
            Err(SendError::Other(text)) => self.report_send_error(seq, &text),
        }
    }

    fn report_send_error(&mut self, seq: u16, text: &str) {
        if self.o.args.flood {
            self.out.text_later("E");
        } else if !self.o.args.quiet {
            warn(text);
        }
        self.out
            .event("local_error", json!({ "seq": seq, "error": text }));
    }

    fn wait_and_receive(&mut self, wait: Duration) -> Result<(), NetError> {
        self.out.flush();
        let fd = match &self.sockets {
            Sockets::Raw { rx, .. } => rx.as_fd(),
            Sockets::Dgram(s) => s.as_fd(),
        };
        let mut ready = [false];
        // Interrupted: back to the loop, which looks at the signal flags at once.
        if poll::poll_readable(&[fd], Some(wait), &mut ready)?.ready_count() == 0 {
            return Ok(());
        }
        self.receive_ready()
    }

    /// Reads and handles everything queued on the receive socket, without blocking.
    fn receive_ready(&mut self) -> Result<(), NetError> {
        // Read everything queued, without blocking (the sockets are non-blocking).
        for _ in 0..4096 {
            let got = match &self.sockets {
                Sockets::Raw { rx, .. } => match rx.recv(&mut self.rxbuf)? {
                    None => None,
                    Some(r) => {
                        let rx_time = r.kernel_time.unwrap_or_else(SystemTime::now);
                        let ev = decode_raw(&self.matcher, &self.rxbuf[..r.len]);
                        if ev.is_some()
                            && let Some(w) = self.pcap.as_mut()
                        {
                            let _ = w.write_packet(rx_time, &self.rxbuf[..r.len], r.len);
                        }
                        Some((ev, rx_time))
                    }
                },
                Sockets::Dgram(s) => match s.recv_any(&mut self.rxbuf)? {
                    None => None,
                    Some(Incoming::Datagram(r)) => {
                        let rx_time = r.kernel_time.unwrap_or_else(SystemTime::now);
                        let ev = decode_dgram(&self.matcher, &self.rxbuf[..r.len], r.from, r.ttl);
                        if ev.is_some()
                            && let Some(w) = self.pcap.as_mut()
                        {
                            write_synthetic(
                                w,
                                rx_time,
                                r.from,
                                self.source,
                                r.ttl,
                                &self.rxbuf[..r.len],
                            );
                        }
                        Some((ev, rx_time))
                    }
                    Some(Incoming::Error(qe)) => {
                        let t = qe.kernel_time.unwrap_or_else(SystemTime::now);
                        let ev = match qe.origin {
                            ErrorOrigin::Local => Some(Event::LocalError {
                                errno: qe.errno,
                                info: qe.info,
                            }),
                            ErrorOrigin::Icmp => {
                                let quoted = &self.rxbuf[..qe.len];
                                let seq = IcmpPacket::new_checked(quoted)
                                    .ok()
                                    .filter(|p| p.msg_type() == IcmpType::EchoRequest)
                                    .map(|p| p.echo_seq_no());
                                seq.map(|seq| Event::Error {
                                    seq,
                                    from: qe.offender.unwrap_or(Ipv4Addr::UNSPECIFIED),
                                    icmp_type: qe.icmp_type,
                                    code: qe.icmp_code,
                                    info: qe.info,
                                })
                            }
                            _ => None,
                        };
                        Some((ev, t))
                    }
                },
            };
            let Some((ev, rx_time)) = got else { break };
            if let Some(ev) = ev {
                self.handle(ev, rx_time);
                // Like iputils: with nothing left in flight, go back to the sender rather than
                // spend a syscall finding the queue empty.
                if self.session.in_flight() == 0 {
                    break;
                }
            }
        }
        Ok(())
    }

    fn handle(&mut self, ev: Event, rx_time: SystemTime) {
        let a = &self.o.args;
        let (quiet, flood) = (a.quiet, a.flood);
        match ev {
            Event::Reply {
                seq,
                from,
                icmp_len,
                ttl,
                sent_ns,
                checksum_ok,
                data,
            } => {
                let rtt_us = sent_ns.map(|s| unix_nanos(rx_time).saturating_sub(s) / 1000);
                let kind = self.session.on_reply(seq, rtt_us, checksum_ok);
                let dup = kind == ReplyKind::Duplicate;
                let different = from != self.matcher.target;
                let truncated = icmp_len < self.o.args.size + 8;
                if self.out.wants_events() {
                    self.out.event(
                        "reply",
                        json!({
                            "seq": seq, "from": from.to_string(), "bytes": icmp_len,
                            "ttl": ttl, "rtt_ms": rtt_us.map(ms_f64), "dup": dup,
                            "bad_checksum": !checksum_ok, "different_address": different,
                            "truncated": truncated,
                        }),
                    );
                }
                if quiet {
                    return;
                }
                if flood {
                    self.out
                        .text_later(if checksum_ok { "\x08 \x08" } else { "\x08C" });
                    if self.o.args.audible {
                        self.out.text_later("\x07");
                    }
                    return;
                }
                let mut line = self.prefix();
                line.push_str(&format!(
                    "{icmp_len} bytes from {}: icmp_seq={seq}",
                    self.names.format(from)
                ));
                // iputils prints the identifier with -v when it chose it (raw) or was given it.
                let own_ident =
                    matches!(self.sockets, Sockets::Raw { .. }) || self.o.args.ident.is_some();
                if self.o.args.verbose && own_ident {
                    line.push_str(&format!(" ident={}", self.matcher.ident));
                }
                line.push_str(&format!(" ttl={}", ttl.unwrap_or(0)));
                if truncated {
                    line.push_str(" (truncated)\n");
                    self.out.text(&line);
                    return;
                }
                if let Some(us) = rtt_us {
                    line.push_str(&format!(" time={} ms", reply_time(us)));
                }
                if dup {
                    line.push_str(" (DUP!)");
                }
                if !checksum_ok {
                    line.push_str(" (BAD CHECKSUM!)");
                }
                if different {
                    line.push_str(" (DIFFERENT ADDRESS!)");
                }
                self.check_data(&self.rxbuf[data], &mut line);
                if self.o.args.audible {
                    line.push('\x07');
                }
                line.push('\n');
                self.out.text(&line);
            }
            Event::Error {
                seq,
                from,
                icmp_type,
                code,
                info,
            } => {
                self.session.on_error(seq);
                // A router's "fragmentation needed" teaches the path MTU (RFC 1191); later
                // probes are sized (or refused) by it, as the kernel does for its own sockets.
                if icmp_type == 3 && code == 4 && info >= 68 {
                    self.pmtu_cache = Some(self.pmtu_cache.map_or(info, |m| m.min(info)));
                }
                let text = icmp_text(icmp_type, code, info, None);
                self.out.event(
                    "icmp_error",
                    json!({ "seq": seq, "from": from.to_string(), "type": icmp_type,
                            "code": code, "text": text, "info": info }),
                );
                if quiet {
                    return;
                }
                if flood {
                    self.out.text_later("\x08E");
                    return;
                }
                let p = self.prefix();
                let line = format!(
                    "{p}From {} icmp_seq={seq} {text}\n",
                    self.names.format(from)
                );
                self.out.text(&line);
            }
            Event::Notice {
                seq,
                from,
                icmp_type,
                code,
                gateway,
                checksum_ok,
            } => {
                let text = icmp_text(icmp_type, code, 0, Some(gateway));
                self.out.event(
                    "icmp_notice",
                    json!({ "seq": seq, "from": from.to_string(), "type": icmp_type,
                            "code": code, "text": text }),
                );
                if quiet || flood {
                    return;
                }
                let p = self.prefix();
                let bad = if checksum_ok { "" } else { "(BAD CHECKSUM)" };
                let line = format!(
                    "{p}From {}: icmp_seq={seq} {bad}{text}\n",
                    self.names.format(from)
                );
                self.out.text(&line);
            }
            Event::LocalError { errno, info } => {
                self.session.on_send_error();
                let text = if errno == libc::EMSGSIZE {
                    format!("local error: message too long, mtu={info}")
                } else {
                    format!("local error: {}", std::io::Error::from_raw_os_error(errno))
                };
                self.out.event("local_error", json!({ "error": text }));
                if flood {
                    self.out.text("E");
                } else if !quiet {
                    warn(text);
                }
            }
        }
    }

    /// iputils' data check: every byte after the timestamp must be what was sent.
    fn check_data(&self, data: &[u8], line: &mut String) {
        let size = self.o.args.size;
        let start = STAMP_LEN.min(size);
        for i in start..size.min(data.len()) {
            if data[i] != self.template[i] {
                line.push_str(&format!(
                    "\nwrong data byte #{i} should be 0x{:x} but was 0x{:x}",
                    self.template[i], data[i]
                ));
                for (j, b) in data.iter().enumerate().take(size).skip(start) {
                    if j % 32 == STAMP_LEN % 32 {
                        line.push_str(&format!("\n#{j}\t"));
                    }
                    line.push_str(&format!("{b:x} "));
                }
                break;
            }
        }
    }

    fn print_status(&self) {
        let s = self.session.summary();
        let loss = if s.transmitted > 0 {
            ((s.transmitted as i64 - s.received as i64) * 100 / s.transmitted as i64) as i32
        } else {
            0
        };
        let mut line = format!("\r{}/{} packets, {}% loss", s.received, s.transmitted, loss);
        if s.received > 0
            && let Some(r) = s.rtt
        {
            line.push_str(&format!(
                ", min/avg/ewma/max = {}/{}/{}/{} ms",
                ms3(r.min_us),
                ms3(r.avg_us),
                ms3(r.ewma_us),
                ms3(r.max_us)
            ));
        }
        eprintln!("{line}");
    }

    fn finish(&mut self) -> i32 {
        let s = self.session.summary();
        let code = self.session.exit_code();
        let elapsed_ms = (s.elapsed.as_nanos() + 500_000) / 1_000_000;
        let loss = loss_percent(s.transmitted, s.received);
        let mut text = String::from("\n");
        text.push_str(&format!("--- {} ping statistics ---\n", self.hostname));
        text.push_str(&format!(
            "{} packets transmitted, {} received",
            s.transmitted, s.received
        ));
        if s.duplicates > 0 {
            text.push_str(&format!(", +{} duplicates", s.duplicates));
        }
        if s.corrupted > 0 {
            text.push_str(&format!(", +{} corrupted", s.corrupted));
        }
        if s.errors > 0 {
            text.push_str(&format!(", +{} errors", s.errors));
        }
        if s.transmitted > 0 {
            text.push_str(&format!(", {loss}% packet loss, time {elapsed_ms}ms"));
        }
        text.push('\n');
        let mut parts = Vec::new();
        let rtt = s.rtt.filter(|_| s.received > 0);
        if let Some(r) = rtt {
            parts.push(format!(
                "rtt min/avg/max/mdev = {}/{}/{}/{} ms",
                ms3(r.min_us),
                ms3(r.avg_us),
                ms3(r.max_us),
                ms3(r.mdev_us)
            ));
        }
        if let Some(p) = s.pipe {
            parts.push(format!("pipe {p}"));
        }
        if let (Some(ipg), Some(r)) = (s.ipg_us, rtt) {
            parts.push(format!("ipg/ewma {}/{} ms", ms3(ipg), ms3(r.ewma_us)));
        }
        text.push_str(&parts.join(", "));
        text.push('\n');
        self.out.text(&text);
        let loss_pct = if s.transmitted > 0 {
            (s.transmitted as f64 - s.received as f64) * 100.0 / s.transmitted as f64
        } else {
            0.0
        };
        self.out.event(
            "summary",
            json!({
                "target": self.o.args.host, "addr": self.matcher.target.to_string(),
                "transmitted": s.transmitted, "received": s.received,
                "duplicates": s.duplicates, "corrupted": s.corrupted, "errors": s.errors,
                "loss_pct": loss_pct, "time_ms": elapsed_ms as u64,
                "rtt_ms": rtt.map(|r| json!({
                    "min": ms_f64(r.min_us), "avg": ms_f64(r.avg_us),
                    "max": ms_f64(r.max_us), "mdev": ms_f64(r.mdev_us),
                    "ewma": ms_f64(r.ewma_us),
                    "p50": self.session.rtt().percentile(0.5).map(ms_f64),
                    "p90": self.session.rtt().percentile(0.9).map(ms_f64),
                    "p99": self.session.rtt().percentile(0.99).map(ms_f64),
                })),
                "pipe": s.pipe, "exit": code,
            }),
        );
        if let Some(w) = self.pcap.as_mut()
            && let Err(e) = w.flush()
        {
            warn(e);
            return EXIT_ERROR;
        }
        code
    }
}

/// Decodes one message from the ICMP datagram socket (no IPv4 header; the kernel matched the
/// identifier already).
fn decode_dgram(m: &Matcher, icmp: &[u8], from: Ipv4Addr, ttl: Option<u8>) -> Option<Event> {
    let p = IcmpPacket::new_checked(icmp).ok()?;
    if p.msg_type() != IcmpType::EchoReply || !m.cookie_ok(p.data()) {
        return None;
    }
    Some(Event::Reply {
        seq: p.echo_seq_no(),
        from,
        icmp_len: icmp.len(),
        ttl: Some(ttl.unwrap_or(0)),
        sent_ns: stamp(m, p.data()),
        checksum_ok: p.verify_checksum(),
        data: icmp::HEADER_LEN..icmp.len(),
    })
}

/// Writes a reply from the datagram socket to the pcap file with an IPv4 header rebuilt from
/// what the kernel told (source, TTL), so the file reads like a capture.
fn write_synthetic(
    w: &mut PcapWriter<std::io::BufWriter<std::fs::File>>,
    t: SystemTime,
    from: Ipv4Addr,
    to: Ipv4Addr,
    ttl: Option<u8>,
    icmp: &[u8],
) {
    let mut buf = vec![0u8; icmp.len() + 20];
    if let Ok(n) = Ipv4Builder::new(from, to)
        .ttl(ttl.unwrap_or(64))
        .protocol(IpProtocol::Icmp)
        .raw(icmp)
        .emit(&mut buf)
    {
        let _ = w.write_packet(t, &buf[..n], n);
    }
}

/// Sends one datagram through `IP_HDRINCL`, minding the path MTU as the kernel does for its own
/// sockets (which it does not do for `IP_HDRINCL`: over a learnt path MTU it both fails the send
/// with EMSGSIZE and sends itself a "fragmentation needed").
///
/// `mtu` is the path MTU rawkit knows (from a "fragmentation needed" error, or from the route
/// after an EMSGSIZE). A datagram larger than it is, with `-M do` or `probe`, a local error
/// (`message too long, mtu=N`, as iputils prints); otherwise (`want`, `dont`) rawkit splits it
/// itself (RFC 791) and sends the fragments with DF clear.
fn send_datagram(
    tx: &HdrInclSender,
    datagram: &[u8],
    dst: Ipv4Addr,
    pmtu: PmtuMode,
    mtu: &mut Option<u32>,
    device: Option<&str>,
) -> Result<(), SendError> {
    let strict = matches!(pmtu, PmtuMode::Do | PmtuMode::Probe);
    let too_long = |m: u32| SendError::TooLong(format!("local error: message too long, mtu={m}"));
    if let Some(m) = *mtu
        && datagram.len() > m as usize
        && pmtu != PmtuMode::Dont
    {
        return if strict {
            Err(too_long(m))
        } else {
            send_fragments(tx, datagram, dst, m)
        };
    }
    match tx.send_to(datagram, dst) {
        Ok(_) => Ok(()),
        Err(NetError::MessageTooLong { .. }) => {
            // The route knows better than the cache (an interface MTU, or a path MTU the
            // kernel learnt from someone else's traffic).
            let m = route::path_mtu(dst, device)
                .ok()
                .into_iter()
                .chain(*mtu)
                .min()
                .unwrap_or(1500)
                .min(datagram.len().saturating_sub(1) as u32);
            *mtu = Some(m);
            if strict {
                Err(too_long(m))
            } else {
                send_fragments(tx, datagram, dst, m)
            }
        }
        Err(e) => Err(SendError::Other(format!("sendmsg: {e}"))),
    }
}

/// Why a probe did not go out.
#[derive(Debug)]
enum SendError {
    /// Longer than the path MTU with DF demanded: an error, counted (iputils' EMSGSIZE).
    TooLong(String),
    /// The socket's error queue will report it; nothing to do now.
    Queued,
    /// Any other failure: reported, not counted.
    Other(String),
}

/// Splits `datagram` into fragments that fit `mtu` (DF clear) and sends them.
fn send_fragments(
    tx: &HdrInclSender,
    datagram: &[u8],
    dst: Ipv4Addr,
    mtu: u32,
) -> Result<(), SendError> {
    let hl = Ipv4Packet::new_checked(datagram)
        .map(|p| p.header_len())
        .unwrap_or(20);
    let size = (mtu as usize).saturating_sub(hl) / 8 * 8;
    let mut copy = datagram.to_vec();
    Ipv4Packet::new_unchecked(&mut copy[..]).set_dont_frag(false);
    let other = |e: String| SendError::Other(e);
    let mut f = Fragmenter::new(&copy, size.max(8)).map_err(|e| other(e.to_string()))?;
    let mut piece = vec![0u8; f.max_fragment_len()];
    while let Some(r) = f.next_into(&mut piece) {
        let n = r.map_err(|e| other(e.to_string()))?;
        tx.send_to(&piece[..n], dst)
            .map_err(|e| other(format!("sendmsg: {e}")))?;
    }
    Ok(())
}

/// Applies the per-socket options.
fn configure(o: &Options, s: &Sockets, ident: u16) -> Result<(), NetError> {
    let a = &o.args;
    match s {
        Sockets::Raw { rx, tx } => {
            // Only replies and errors; then the identifier filter in the kernel; then throw
            // away whatever was queued before the filter was in place.
            rx.set_icmp_type_filter(&[0, 3, 4, 5, 11, 12])?;
            rx.attach_filter(&BpfProgram::icmp_echo_reply_ident(ident))?;
            rx.drain()?;
            if let Some(d) = o.device() {
                rx.bind_device(d)?;
                tx.bind_device(d)?;
            }
            if o.interval.is_zero() || a.flood || o.preload > 16 {
                let _ = rx.set_recv_buffer(4 << 20);
                let _ = tx.set_send_buffer(4 << 20);
            }
            rx.set_nonblocking(true)?;
        }
        Sockets::Dgram(sock) => {
            if let Some(t) = a.ttl {
                sock.set_ttl(t)?;
            }
            if let Some(q) = a.tos {
                sock.set_tos(q)?;
            }
            sock.set_mtu_discover(o.pmtu)?;
            if let Some(d) = o.device() {
                sock.bind_device(d)?;
            }
            if o.interval.is_zero() || a.flood {
                let _ = sock.set_recv_buffer(4 << 20);
            }
            sock.set_nonblocking(true)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_parsing_follows_iputils() {
        assert_eq!(parse_pattern_bytes("ff00"), Ok(vec![0xff, 0x00]));
        assert_eq!(parse_pattern_bytes("abc"), Ok(vec![0xab, 0x0c]));
        assert!(
            parse_pattern_bytes("xyz")
                .unwrap_err()
                .contains("hex digits: xyz")
        );
        assert!(parse_pattern("1x").unwrap_err().contains("hex digits: x"));
        assert!(parse_pattern_bytes(&"a".repeat(33)).is_err());
        assert!(parse_pattern_bytes("").is_err());
    }

    #[test]
    fn payload_template_repeats_the_pattern_or_counts() {
        assert_eq!(payload_template(4, &[]), vec![0, 1, 2, 3]);
        assert_eq!(
            payload_template(5, &[0xa, 0xb]),
            vec![0xa, 0xb, 0xa, 0xb, 0xa]
        );
    }

    #[test]
    fn icmp_texts_are_iputils_words() {
        assert_eq!(icmp_text(3, 1, 0, None), "Destination Host Unreachable");
        assert_eq!(
            icmp_text(3, 4, 1280, None),
            "Frag needed and DF set (mtu = 1280)"
        );
        assert_eq!(icmp_text(11, 0, 0, None), "Time to live exceeded");
        assert_eq!(
            icmp_text(12, 0, 20, None),
            "Parameter problem: pointer = 20"
        );
        assert_eq!(
            icmp_text(5, 1, 0, Some(Ipv4Addr::new(198, 18, 0, 1))),
            "Redirect Host(New nexthop: 198.18.0.1)"
        );
        assert_eq!(icmp_text(42, 0, 0, None), "Bad ICMP type: 42");
    }

    fn matcher() -> Matcher {
        Matcher {
            target: Ipv4Addr::LOCALHOST,
            source: Ipv4Addr::new(127, 0, 0, 2),
            ident: 0x1234,
            cookie: *b"cookie!!",
            size: 56,
        }
    }

    fn reply(ident: u16, cookie: &[u8; 8]) -> Vec<u8> {
        let mut data = payload_template(56, &[]);
        data[..8].copy_from_slice(&42u64.to_be_bytes());
        data[8..16].copy_from_slice(cookie);
        let mut buf = vec![0u8; 200];
        let n = Ipv4Builder::new(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST)
            .icmp(&IcmpRepr::EchoReply {
                ident,
                seq_no: 9,
                data: &data,
            })
            .emit(&mut buf)
            .unwrap();
        buf.truncate(n);
        buf
    }

    #[test]
    fn replies_with_another_ident_or_cookie_are_not_ours() {
        let m = matcher();
        match decode_raw(&m, &reply(0x1234, b"cookie!!")) {
            Some(Event::Reply {
                seq,
                sent_ns,
                checksum_ok,
                ..
            }) => {
                assert_eq!((seq, sent_ns, checksum_ok), (9, Some(42), true));
            }
            _ => panic!("our reply was not recognised"),
        }
        assert!(decode_raw(&m, &reply(0x1235, b"cookie!!")).is_none());
        assert!(decode_raw(&m, &reply(0x1234, b"someone!")).is_none());
        // Garbage and truncations never panic.
        let r = reply(0x1234, b"cookie!!");
        for len in 0..r.len() {
            let _ = decode_raw(&m, &r[..len]);
        }
    }

    #[test]
    fn errors_quoting_our_probe_are_matched_by_ident_and_destination() {
        let m = matcher();
        let mut probe = vec![0u8; 200];
        let n = Ipv4Builder::new(Ipv4Addr::LOCALHOST, Ipv4Addr::LOCALHOST)
            .icmp(&IcmpRepr::EchoRequest {
                ident: 0x1234,
                seq_no: 5,
                data: &[0; 8],
            })
            .emit(&mut probe)
            .unwrap();
        let err = |quote: &[u8]| {
            let mut buf = vec![0u8; 300];
            let k = Ipv4Builder::new(Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::LOCALHOST)
                .icmp(&IcmpRepr::TimeExceeded {
                    code: TimeExceeded::TtlExpired,
                    body: crate::packet::icmp::ErrorBody::quote(quote),
                })
                .emit(&mut buf)
                .unwrap();
            buf.truncate(k);
            buf
        };
        match decode_raw(&m, &err(&probe[..28])) {
            Some(Event::Error {
                seq,
                from,
                icmp_type,
                ..
            }) => assert_eq!(
                (seq, from, icmp_type),
                (5, Ipv4Addr::new(198, 18, 0, 1), 11)
            ),
            _ => panic!("error not matched"),
        }
        let mut other = probe[..n].to_vec();
        other[24] = 0x99; // another identifier
        assert!(decode_raw(&m, &err(&other[..28])).is_none());
    }
}

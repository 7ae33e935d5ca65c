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

use super::args::{byte_dec_or_hex, int_in, seconds};
use super::icmp_io::{
    self, EchoProbe, Event, Matcher, PcapFile, STAMP_LEN, SendError, SocketSetup, Sockets,
    payload_template, stamp_payload, unix_nanos,
};
use super::output::{Out, ms_f64, warn};
use super::{EXIT_ERROR, random_u64};
use crate::net::NetError;
use crate::net::poll;
use crate::net::privilege;
use crate::net::resolve::{self, ReverseCache};
use crate::net::route;
use crate::net::socket::PmtuMode;
use crate::packet::icmp::{DstUnreachable, IcmpType, Redirect, TimeExceeded};
use crate::pcap::{LinkType, PcapWriter};
use crate::probe::ping::{Next, PingConfig, PingSession, ReplyKind};
use crate::probe::stats::{loss_percent, ms3, reply_time};
use clap::Args;
use serde_json::json;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use super::icmp_io::SocketMode;

/// Largest ICMP payload in an IPv4 datagram: 65535 - 20 - 8.
pub const MAX_PAYLOAD: usize = 65_507;
/// iputils' minimal interval for users without privileges.
pub(super) const MIN_USER_INTERVAL: Duration = Duration::from_millis(2);

/// `rawkit ping [OPTIONS] HOST [HOST]...`
#[derive(Debug, Args)]
#[command(
    about = "Send ICMP echo requests to a host, as iputils ping does; to many, as fping does",
    after_help = "Exit status: 0 if replies came back, 1 if none did (or fewer than -c with -w), 2 on errors.\n\
                  Needs CAP_NET_RAW (root, or setcap cap_net_raw+ep), or an unprivileged ICMP socket \
                  allowed by net.ipv4.ping_group_range: see capabilities.md.\n\n\
                  Many targets (several hosts, a CIDR block such as 10.0.0.0/24, a range such as \
                  10.0.0.1-10.0.0.50, --file, or any of --retries --backoff --alive --unreachable \
                  --rate) do fping's job over one socket: 'HOST is alive' / 'HOST is unreachable', \
                  or with -c fping's per-reply lines and per-target xmt/rcv/%loss summaries, then a \
                  Total line; exit 0 when every target answered, 1 when some did not, 2 on errors.\n\
                  The short flags keep their iputils meaning (-f is flood; -r, -B and -a are iputils'), \
                  so fping's options that clash have long names here: --file (fping -f), --retries \
                  (fping -r), --backoff (fping -B), --alive (fping -a), --unreachable (fping -u), \
                  --rate (fping -i, as probes per second). With many targets -i is fping's -p (time \
                  between probes to one target) and -W fping's -t (time a probe waits), in seconds."
)]
pub struct PingArgs {
    /// Host name or IPv4 address to ping; with many targets also CIDR blocks and ranges.
    #[arg(value_name = "HOST", required_unless_present = "file")]
    pub host: Option<String>,

    /// More targets: with several, rawkit ping does fping's job.
    #[arg(value_name = "HOST")]
    pub more: Vec<String>,

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

    /// Many targets: read them from FILE, one per line ('-' for stdin; fping -f).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,

    /// Many targets: probes after the first to a silent target (default 3; fping -r).
    #[arg(long, value_name = "N", value_parser = |s: &str| int_in::<u8>(s, 0, super::sweep::MAX_RETRIES))]
    pub retries: Option<u8>,

    /// Many targets: each retry waits FACTOR times longer (1 to 5, default 1.5; fping -B).
    #[arg(long, value_name = "FACTOR", value_parser = super::sweep::parse_backoff)]
    pub backoff: Option<f64>,

    /// Many targets: print only the names of the targets that answered (fping -a).
    #[arg(long, conflicts_with = "unreachable")]
    pub alive: bool,

    /// Many targets: print only the names of the targets that did not (fping -u).
    #[arg(long)]
    pub unreachable: bool,

    /// Many targets: probes per second over all targets (default 1000; 0: as fast as
    /// possible; above 1000 only with privileges; fping -i as a rate).
    #[arg(long, value_name = "PPS", value_parser = |s: &str| int_in::<u32>(s, 0, 10_000_000))]
    pub rate: Option<u32>,

    /// Many targets: allow more than 131072 targets (up to a /8).
    #[arg(long)]
    pub force: bool,
}

impl PingArgs {
    /// True when these arguments ask for fping's job: more than one target, a CIDR block or
    /// a range, a file of targets, or an option that only means something for many targets.
    pub fn is_sweep(&self) -> bool {
        !self.more.is_empty()
            || self.file.is_some()
            || self.retries.is_some()
            || self.backoff.is_some()
            || self.alive
            || self.unreachable
            || self.rate.is_some()
            || self.host.as_deref().is_some_and(|h| {
                // A malformed block or range is refused by the many-target path, which names it.
                !h.trim().is_empty()
                    && super::targets::parse_spec(h)
                        .map(|s| s.is_block())
                        .unwrap_or(true)
            })
    }
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

/// What `-I` named.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Interface {
    Device(String),
    Source(Ipv4Addr),
}

/// Checks `-I`: an IPv4 source address, or the name of an interface that exists.
pub(super) fn parse_interface(arg: Option<&str>) -> Result<Option<Interface>, String> {
    Ok(match arg {
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
    })
}

/// `-M`: iputils' default is `want`.
pub(super) fn pmtu_mode(arg: Option<&str>) -> PmtuMode {
    match arg {
        Some("do") => PmtuMode::Do,
        Some("dont") => PmtuMode::Dont,
        Some("probe") => PmtuMode::Probe,
        _ => PmtuMode::Want,
    }
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

/// Root, or `CAP_NET_RAW`: what iputils asks before short intervals and big preloads.
pub(super) fn privileged() -> bool {
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
        let pmtu = pmtu_mode(args.pmtudisc.as_deref());
        let pattern = args.pattern.clone().map(|p| p.0).unwrap_or_default();
        let interface = parse_interface(args.interface.as_deref())?;
        Ok(Options {
            args,
            interval,
            preload,
            pmtu,
            pattern,
            interface,
        })
    }

    /// The one target, as typed.
    fn host(&self) -> &str {
        self.args.host.as_deref().unwrap_or_default()
    }

    fn device(&self) -> Option<&str> {
        match &self.interface {
            Some(Interface::Device(d)) => Some(d),
            _ => None,
        }
    }

    /// What the sockets must be.
    fn socket_setup(&self) -> SocketSetup<'_> {
        let a = &self.args;
        SocketSetup {
            raw_only: a.raw || a.ident == Some(0),
            dgram_only: a.dgram,
            ident: a.ident,
            bind_source: match self.interface {
                Some(Interface::Source(s)) => s,
                _ => Ipv4Addr::UNSPECIFIED,
            },
            device: self.device(),
            ttl: a.ttl,
            tos: a.tos,
            pmtu: self.pmtu,
            big_buffers: self.interval.is_zero() || a.flood || self.preload > 16,
        }
    }
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
    if args.is_sweep() {
        return super::sweep::run(args);
    }
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
    pcap: Option<PcapFile>,
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
        let resolved = resolve::resolve_ipv4(o.host()).map_err(|e| fail(&e))?;
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
        let setup = o.socket_setup();
        let (sockets, ident) = icmp_io::open_sockets(&setup, wanted_ident).map_err(|e| fail(&e))?;
        let mode = sockets.mode();
        if let Err(e) = icmp_io::configure(&setup, &sockets, ident) {
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
                "target": o.host(), "addr": target.to_string(), "source": source.to_string(),
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
                target: Some(target),
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

    /// The one target.
    fn target(&self) -> Ipv4Addr {
        self.matcher.target.unwrap_or(Ipv4Addr::UNSPECIFIED)
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
        let mut data = std::mem::take(&mut self.template);
        let sent_at = SystemTime::now();
        stamp_payload(&mut data, sent_at, &self.matcher.cookie);
        if matches!(self.sockets, Sockets::Raw { .. }) {
            self.ip_ident = self.ip_ident.wrapping_add(1).max(1);
        }
        let probe = EchoProbe {
            source: self.source,
            dst: self.target(),
            ident: self.matcher.ident,
            seq,
            data: &data,
            ip_ident: self.ip_ident,
            ttl: self.o.args.ttl,
            tos: self.o.args.tos,
            pmtu: self.o.pmtu,
            device: self.o.device(),
        };
        // On the datagram path a too-long probe is reported (with the MTU) by the error
        // queue, once: see `handle`.
        let result = icmp_io::send_echo(
            &self.sockets,
            &probe,
            &mut self.buf,
            &mut self.pmtu_cache,
            self.pcap.as_mut(),
            sent_at,
        );
        self.template = data;
        let now = self.now();
        self.session.sent(now);
        let size = self.o.args.size;
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
        let fd = self.sockets.rx_fd();
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
            let got = icmp_io::receive_one(
                &self.sockets,
                &self.matcher,
                &mut self.rxbuf,
                self.pcap.as_mut(),
                self.source,
            )?;
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
                let different = from != self.target();
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
                ..
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
                ..
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
                "target": self.o.host(), "addr": self.target().to_string(),
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
}

//! The traceroute session: probes for every TTL in flight, matching of replies to probes, hop
//! results, the adaptive wait and the stop rules of the Linux traceroute (2.1), without I/O.
//!
//! The driver asks [`TraceSession::next`] what to do at `now` (a monotonic time since the session
//! started): send a probe ([`ProbeSpec`]: its TTL, its identity on the wire, its size), wait
//! until a time, or finish. It reports each send with [`TraceSession::sent`], each ICMP error or
//! echo reply with [`TraceSession::on_reply`] (the reply says which probe it answers through a
//! [`ProbeEcho`]: the quoted ports, sequence number, checksum and IPv4 identification), and each
//! local send failure with [`TraceSession::on_local_error`]. Finished hops come out of
//! [`TraceSession::pop_event`] in order, ready to print with [`render_hop`].
//!
//! The probes are numbered as the Linux traceroute numbers them: probe `n` has TTL
//! `n / queries + 1`. The session keeps a window of at most `sim_queries` (`-N`) unanswered
//! probes, starting at the first probe not yet printed; a probe expires only when it is that
//! first one, after the adaptive wait (`-w MAX,HERE,NEAR`): HERE times the round-trip time of a
//! reply already received for the same hop, else NEAR times that of a later hop, else MAX.
//! Probes sent together expire together, so a silent hop costs one wait, not one per probe. A
//! final reply (the destination's port unreachable or echo reply, or any unreachable) ends the
//! trace at its hop; a hop line is complete when all its probes are answered or expired and all
//! earlier hops are complete.
//!
//! This module never reads a clock and never touches a socket: the engine is driven by the real
//! driver in `cli::traceroute` and, in tests, by a simulated network on a virtual clock.

use crate::packet::icmp::MplsEntry;
use core::fmt;
use core::time::Duration;
use std::collections::{HashMap, VecDeque};
use std::net::Ipv4Addr;

/// The largest TTL (`-m`).
pub const MAX_TTL: u8 = 255;
/// The most probes per hop (`-q`).
pub const MAX_QUERIES: u8 = 10;
/// The first destination port of the classic UDP method (`-p` default).
pub const DEFAULT_UDP_PORT: u16 = 33434;
/// The destination port of the fixed-port UDP method (`-U`, DNS).
pub const DEFAULT_FIXED_PORT: u16 = 53;
/// The first ICMP sequence number (`-I`).
pub const DEFAULT_ICMP_SEQ: u16 = 1;
/// IPv4 header plus UDP or ICMP header: the smallest probe.
pub const HEADERS_LEN: usize = 28;
/// The default total probe size (IPv4 header included), as the Linux traceroute.
pub const DEFAULT_PACKET_LEN: usize = 60;
/// The largest probe (`PACKET_LEN`), as the Linux traceroute.
pub const MAX_PACKET_LEN: usize = 65_000;

/// `-w MAX[,HERE,NEAR]`: how long to wait for a probe.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WaitSpec {
    /// The longest wait in any case (default 5 s).
    pub max: Duration,
    /// Factor on the round-trip time of a reply already received from the same hop (default
    /// 3; 0 skips this rule).
    pub here: f64,
    /// Factor on the round-trip time of a reply from a later hop (default 10; 0 skips it).
    pub near: f64,
}

impl Default for WaitSpec {
    fn default() -> Self {
        WaitSpec {
            max: Duration::from_secs(5),
            here: 3.0,
            near: 10.0,
        }
    }
}

impl WaitSpec {
    /// Parses `MAX[,HERE[,NEAR]]` (commas or slashes, floating point seconds and factors). As
    /// the Linux traceroute: with MAX alone, HERE and NEAR are 0 (a fixed wait); HERE without
    /// NEAR leaves NEAR at 0.
    pub fn parse(s: &str) -> Result<WaitSpec, String> {
        let parts: Vec<&str> = s.split([',', '/']).collect();
        if parts.is_empty() || parts.len() > 3 {
            return Err("expected MAX[,HERE,NEAR], e.g. 5,3,10".into());
        }
        let mut v = [0.0f64; 3];
        for (slot, p) in v.iter_mut().zip(&parts) {
            let x: f64 = p
                .trim()
                .parse()
                .map_err(|_| format!("`{p}` is not a number (expected MAX[,HERE,NEAR])"))?;
            if !x.is_finite() || x < 0.0 {
                return Err(format!("`{p}`: must be 0 or more"));
            }
            *slot = x;
        }
        if v[0] > 86_400.0 {
            return Err("MAX must be at most 86400 seconds".into());
        }
        Ok(WaitSpec {
            max: Duration::from_secs_f64(v[0]),
            here: v[1],
            near: v[2],
        })
    }
}

/// How probes are made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// UDP to an unlikely port that goes up by one with each probe (the default).
    Udp,
    /// UDP to one fixed port (`-U`, 53 by default).
    UdpFixed,
    /// ICMP echo requests (`-I`), the sequence number going up by one with each probe.
    Icmp,
}

impl Method {
    /// True for the UDP methods.
    pub fn is_udp(self) -> bool {
        matches!(self, Method::Udp | Method::UdpFixed)
    }
}

/// The flow identity of the probes and how a probe is told from another on the wire.
///
/// Every probe gets a tag, the number of probes sent before it (0, 1, 2...). The tag goes into
/// the IPv4 identification of every probe (`ip_id_base + tag`) and, by method:
///
/// * classic UDP: destination port `port + tag` (the Linux traceroute's port per probe);
/// * `-U`: destination port `port` for all; the probe is known by its IPv4 identification;
/// * ICMP: sequence number `port + tag` (`-p` gives the first one).
///
/// With `paris` the flow identity stays constant, so that per-flow load balancers keep every
/// probe on one path (Paris traceroute): UDP keeps both ports (destination `port`) and puts the
/// tag in the UDP checksum (`tag + 1`, reached by choosing two payload bytes); ICMP keeps the
/// checksum at `icmp_checksum` (the sequence number still counts up; two payload bytes make up
/// the difference).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Flow {
    /// The method.
    pub method: Method,
    /// First destination port (classic UDP), the fixed port (`-U`), or the first sequence
    /// number (ICMP).
    pub port: u16,
    /// Paris traceroute: constant flow identity.
    pub paris: bool,
    /// IPv4 identification of the probe with tag 0.
    pub ip_id_base: u16,
    /// The constant ICMP checksum of Paris ICMP probes.
    pub icmp_checksum: u16,
}

/// The fields a probe carries on the wire, derived from its tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProbeFields {
    /// UDP destination port (UDP methods).
    pub dst_port: u16,
    /// ICMP echo sequence number (ICMP method).
    pub icmp_seq: u16,
    /// IPv4 identification.
    pub ip_id: u16,
    /// The UDP checksum the probe must have (Paris UDP).
    pub udp_checksum: Option<u16>,
    /// The ICMP checksum the probe must have (Paris ICMP).
    pub icmp_checksum: Option<u16>,
}

/// What a reply tells about the probe it answers: the fields of the quoted datagram (for an
/// ICMP error) or of the reply itself (an echo reply carries the sequence number).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct ProbeEcho {
    /// The quoted IPv4 identification.
    pub ip_id: Option<u16>,
    /// The quoted UDP destination port (or, for a UDP reply, its source port).
    pub dst_port: Option<u16>,
    /// The quoted UDP checksum.
    pub udp_checksum: Option<u16>,
    /// The ICMP echo sequence number.
    pub icmp_seq: Option<u16>,
}

impl Flow {
    /// The flow of `method` with the Linux traceroute's default port (or first sequence number)
    /// unless `port` is given (0 counts as not given, as in the Linux traceroute).
    pub fn new(method: Method, port: Option<u16>, paris: bool) -> Flow {
        let default = match method {
            Method::Udp => DEFAULT_UDP_PORT,
            Method::UdpFixed => DEFAULT_FIXED_PORT,
            Method::Icmp => DEFAULT_ICMP_SEQ,
        };
        Flow {
            method,
            port: port.filter(|p| *p != 0).unwrap_or(default),
            paris,
            ip_id_base: 1,
            icmp_checksum: 0x5a5a,
        }
    }

    /// The wire fields of the probe with `tag`.
    pub fn fields(&self, tag: u16) -> ProbeFields {
        let (dst_port, icmp_seq) = match self.method {
            Method::Udp if !self.paris => (self.port.wrapping_add(tag), 0),
            Method::Udp | Method::UdpFixed => (self.port, 0),
            Method::Icmp => (0, self.port.wrapping_add(tag)),
        };
        ProbeFields {
            dst_port,
            icmp_seq,
            ip_id: self.ip_id_base.wrapping_add(tag),
            udp_checksum: (self.paris && self.method.is_udp()).then(|| paris_udp_checksum(tag)),
            icmp_checksum: (self.paris && self.method == Method::Icmp)
                .then_some(self.icmp_checksum),
        }
    }

    /// The tags a reply may belong to, most specific first.
    fn candidate_tags(&self, e: &ProbeEcho) -> [Option<u16>; 2] {
        let by_ip_id = e.ip_id.map(|id| id.wrapping_sub(self.ip_id_base));
        match self.method {
            Method::Icmp => [e.icmp_seq.map(|s| s.wrapping_sub(self.port)), None],
            Method::Udp if !self.paris => [e.dst_port.map(|p| p.wrapping_sub(self.port)), None],
            _ if self.paris => [e.udp_checksum.map(|c| c.wrapping_sub(1)), by_ip_id],
            _ => [by_ip_id, None],
        }
    }
}

/// The UDP checksum that identifies the Paris probe with `tag`: never 0 (which means "no
/// checksum", RFC 768).
fn paris_udp_checksum(tag: u16) -> u16 {
    match tag.wrapping_add(1) {
        0 => 0xffff,
        c => c,
    }
}

/// What the session is asked to do.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceConfig {
    /// The first TTL (`-f`), 1 to `max_ttl`.
    pub first_ttl: u8,
    /// The last TTL (`-m`), 1 to 255.
    pub max_ttl: u8,
    /// Probes per hop (`-q`), 1 to 10.
    pub queries: u8,
    /// Probes in flight at once (`-N`), at least 1.
    pub sim_queries: u16,
    /// The adaptive wait (`-w`).
    pub wait: WaitSpec,
    /// The least time between two probes (`-z`).
    pub send_wait: Duration,
    /// The flow identity and the probe numbering.
    pub flow: Flow,
    /// Total probe size, IPv4 header included.
    pub packet_len: usize,
    /// Path MTU discovery (`--mtu`): a "fragmentation needed" (or a local "message too long")
    /// for a size below the current one lowers the size, notes `F=NUM` on the probe and sends
    /// it again.
    pub mtu_discovery: bool,
}

impl Default for TraceConfig {
    fn default() -> Self {
        TraceConfig {
            first_ttl: 1,
            max_ttl: 30,
            queries: 3,
            sim_queries: 16,
            wait: WaitSpec::default(),
            send_wait: Duration::ZERO,
            flow: Flow::new(Method::Udp, None, false),
            packet_len: DEFAULT_PACKET_LEN,
            mtu_discovery: false,
        }
    }
}

/// A probe to send now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProbeSpec {
    /// The probe's number in the session (`(ttl - 1) * queries + probe`).
    pub index: usize,
    /// Its TTL.
    pub ttl: u8,
    /// Its place in its hop, from 0.
    pub probe: u8,
    /// Its tag (see [`Flow`]).
    pub tag: u16,
    /// Its fields on the wire.
    pub fields: ProbeFields,
    /// Its total size, IPv4 header included.
    pub packet_len: usize,
}

/// What to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Send this probe now, then call [`TraceSession::sent`] (or, when it could not be sent
    /// for a reason that will pass, such as a full buffer, wait a little and ask again).
    Send(ProbeSpec),
    /// Nothing to send before this time (on the session clock); read replies until then.
    WaitUntil(Duration),
    /// The trace is over.
    Finish,
}

/// The kind of reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ReplyKind {
    /// ICMP time exceeded (type 11) with its code (0: TTL exceeded in transit).
    TimeExceeded {
        /// The code.
        code: u8,
    },
    /// ICMP destination unreachable (type 3): code 3 (port unreachable) is the destination.
    DstUnreachable {
        /// The code.
        code: u8,
        /// The next-hop MTU (code 4, RFC 1191).
        mtu: u16,
    },
    /// An ICMP echo reply to an ICMP probe: the destination.
    EchoReply,
    /// A UDP datagram from the destination, in reply to a UDP probe.
    UdpReply,
    /// Any other ICMP error quoting a probe (parameter problem...).
    Other {
        /// The ICMP type.
        icmp_type: u8,
        /// The code.
        code: u8,
    },
}

/// One RFC 4884 extension object of a reply.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExtObject {
    /// An RFC 4950 MPLS label stack (class 1, c-type 1).
    Mpls(Vec<MplsEntry>),
    /// Any other object: its class, c-type and payload words.
    Other {
        /// Class-num.
        class_num: u8,
        /// C-type.
        c_type: u8,
        /// The payload as 32-bit words.
        words: Vec<u32>,
    },
}

/// A reply to a probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Who sent it.
    pub from: Ipv4Addr,
    /// When it was received, on the session clock.
    pub at: Duration,
    /// What it is.
    pub kind: ReplyKind,
    /// The TTL it arrived with (for `--back`).
    pub reply_ttl: Option<u8>,
    /// Its RFC 4884 extensions.
    pub extensions: Vec<ExtObject>,
}

/// A local failure to send a probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalError {
    /// The probe is larger than the MTU of the way out (`EMSGSIZE`), which is `mtu`.
    TooBig {
        /// The MTU the kernel reported.
        mtu: u32,
    },
}

/// The annotation a reply adds after its round-trip time, as the Linux traceroute prints it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Annotation {
    /// `!N`: network unreachable (codes 0, 6, 9, 11).
    Net,
    /// `!H`: host unreachable (codes 1, 7, 10, 12).
    Host,
    /// `!P`: protocol unreachable (code 2).
    Protocol,
    /// `!F-<mtu>`: fragmentation needed (code 4), or a probe too big to leave this host.
    Frag(u32),
    /// `!S`: source route failed (code 5).
    SourceRoute,
    /// `!X`: communication administratively prohibited (codes 9... see [`Annotation::from_unreachable`]).
    Prohibited,
    /// `!V`: host precedence violation (code 14).
    Precedence,
    /// `!C`: precedence cutoff in effect (code 15).
    PrecedenceCutoff,
    /// `!<code>`: another unreachable code.
    Unreachable(u8),
    /// `!<type-code>`: another ICMP error.
    Icmp(u8, u8),
}

impl Annotation {
    /// The annotation of a destination unreachable with `code`; `None` for port unreachable
    /// (the destination answered).
    pub fn from_unreachable(code: u8, mtu: u16) -> Option<Annotation> {
        Some(match code {
            3 => return None,
            0 | 6 | 8 | 11 => Annotation::Net,
            1 | 7 | 12 => Annotation::Host,
            9 | 10 | 13 => Annotation::Prohibited,
            2 => Annotation::Protocol,
            4 => Annotation::Frag(u32::from(mtu)),
            5 => Annotation::SourceRoute,
            14 => Annotation::Precedence,
            15 => Annotation::PrecedenceCutoff,
            c => Annotation::Unreachable(c),
        })
    }
}

impl fmt::Display for Annotation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Annotation::Net => f.write_str("!N"),
            Annotation::Host => f.write_str("!H"),
            Annotation::Protocol => f.write_str("!P"),
            Annotation::Frag(m) => write!(f, "!F-{m}"),
            Annotation::SourceRoute => f.write_str("!S"),
            Annotation::Prohibited => f.write_str("!X"),
            Annotation::Precedence => f.write_str("!V"),
            Annotation::PrecedenceCutoff => f.write_str("!C"),
            Annotation::Unreachable(c) => write!(f, "!<{c}>"),
            Annotation::Icmp(t, c) => write!(f, "!<{t}-{c}>"),
        }
    }
}

/// The answer a probe got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// Who answered (`None` for a local error: nobody did).
    pub from: Option<Ipv4Addr>,
    /// Round-trip time.
    pub rtt: Duration,
    /// The TTL the reply arrived with.
    pub reply_ttl: Option<u8>,
    /// What the reply was.
    pub kind: Option<ReplyKind>,
    /// The annotation, if any.
    pub annotation: Option<Annotation>,
    /// Extension objects.
    pub extensions: Vec<ExtObject>,
    /// True when this answer ends the trace.
    pub is_final: bool,
}

/// What became of one probe of a finished hop.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// The answer; `None` when the probe expired (`*`).
    pub answer: Option<Answer>,
    /// A note printed before the annotation (`F=1280` with `--mtu`).
    pub note: Option<String>,
}

/// A finished hop, ready to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HopReport {
    /// The TTL.
    pub ttl: u8,
    /// Its probes, in order.
    pub probes: Vec<ProbeReport>,
}

impl HopReport {
    /// The distinct addresses that answered, in order of first appearance.
    pub fn addresses(&self) -> Vec<Ipv4Addr> {
        let mut out = Vec::new();
        for a in self.probes.iter().filter_map(|p| p.answer.as_ref()?.from) {
            if !out.contains(&a) {
                out.push(a);
            }
        }
        out
    }
}

/// Something the driver should report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A probe got no answer in time.
    Timeout {
        /// Its TTL.
        ttl: u8,
        /// Its place in the hop, from 0.
        probe: u8,
    },
    /// A hop is complete (printed in order).
    Hop(HopReport),
}

/// How [`TraceSession::on_reply`] took a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accepted {
    /// The first answer of probe `index`.
    Fresh {
        /// The probe.
        index: usize,
        /// Its TTL.
        ttl: u8,
        /// Its place in the hop, from 0.
        probe: u8,
        /// The round-trip time.
        rtt: Duration,
        /// True when it ends the trace.
        is_final: bool,
        /// With `--mtu`: the probe will be sent again at this smaller size.
        new_mtu: Option<usize>,
    },
    /// An answer for a probe that had already expired.
    Late {
        /// The probe.
        index: usize,
        /// Its TTL.
        ttl: u8,
        /// Its place in the hop.
        probe: u8,
    },
    /// Another answer for a probe already answered.
    Duplicate,
    /// Not one of this session's probes.
    Foreign,
}

/// The totals of a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TraceSummary {
    /// Probes sent (resent ones included).
    pub sent: u64,
    /// Probes answered.
    pub answered: u64,
    /// Probes that expired.
    pub timeouts: u64,
    /// Answers that came after their probe expired.
    pub late: u64,
    /// The last TTL printed.
    pub last_ttl: Option<u8>,
    /// True when the trace ended on the destination's answer (port unreachable, echo reply or
    /// a UDP reply), false when it ran out of hops, hit an unreachable or was interrupted.
    pub reached: bool,
}

#[derive(Debug, Clone, Default)]
struct Slot {
    sent_at: Option<Duration>,
    done: bool,
    is_final: bool,
    answer: Option<Answer>,
    note: Option<String>,
    tag: Option<u16>,
}

impl Slot {
    /// The round-trip time of the answer, when positive (the Linux traceroute's
    /// `recv_time - send_time > 0`).
    fn positive_rtt(&self) -> Option<Duration> {
        if !self.done {
            return None;
        }
        self.answer.as_ref().map(|a| a.rtt).filter(|r| !r.is_zero())
    }

    fn has_text(&self) -> bool {
        self.note.is_some() || self.answer.as_ref().is_some_and(|a| a.annotation.is_some())
    }

    fn from(&self) -> Option<Ipv4Addr> {
        self.answer.as_ref().and_then(|a| a.from)
    }

    fn reply_ttl(&self) -> Option<u8> {
        self.answer
            .as_ref()
            .and_then(|a| a.reply_ttl)
            .filter(|t| *t != 0)
    }
}

/// The number of hops back from a reply's TTL, assuming the sender started at 64, 128 or 255
/// (the Linux traceroute's guess, from tracepath).
pub fn ttl_to_hops(ttl: u8) -> u32 {
    let t = u32::from(ttl);
    let initial = if t <= 64 {
        65
    } else if t <= 128 {
        129
    } else {
        256
    };
    initial - t
}

/// A traceroute session.
#[derive(Debug, Clone)]
pub struct TraceSession {
    cfg: TraceConfig,
    q: usize,
    slots: Vec<Slot>,
    start: usize,
    end: usize,
    last_send: Option<Duration>,
    next_tag: u16,
    tags: HashMap<u16, usize>,
    packet_len: usize,
    events: VecDeque<Event>,
    hop: Vec<ProbeReport>,
    interrupted: bool,
    summary: TraceSummary,
}

impl TraceSession {
    /// A session that starts at time zero. Out-of-range values are brought into range (the
    /// driver validates them first): TTLs 1 to 255 with `first_ttl <= max_ttl`, 1 to 10
    /// queries, at least one probe in flight, a packet at least as large as its headers.
    pub fn new(mut cfg: TraceConfig) -> TraceSession {
        cfg.max_ttl = cfg.max_ttl.max(1);
        cfg.first_ttl = cfg.first_ttl.clamp(1, cfg.max_ttl);
        cfg.queries = cfg.queries.clamp(1, MAX_QUERIES);
        cfg.sim_queries = cfg.sim_queries.max(1);
        cfg.packet_len = cfg.packet_len.clamp(HEADERS_LEN, MAX_PACKET_LEN);
        let q = usize::from(cfg.queries);
        let n = usize::from(cfg.max_ttl) * q;
        TraceSession {
            q,
            slots: vec![Slot::default(); n],
            start: (usize::from(cfg.first_ttl) - 1) * q,
            end: n,
            last_send: None,
            next_tag: 0,
            tags: HashMap::new(),
            packet_len: cfg.packet_len,
            events: VecDeque::new(),
            hop: Vec::new(),
            interrupted: false,
            summary: TraceSummary::default(),
            cfg,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &TraceConfig {
        &self.cfg
    }

    /// The current probe size (smaller than the configured one once `--mtu` learnt a path MTU).
    pub fn packet_len(&self) -> usize {
        self.packet_len
    }

    /// Stop at the next call to [`TraceSession::next`] (SIGINT): hops not complete are not
    /// reported.
    pub fn interrupt(&mut self) {
        self.interrupted = true;
    }

    /// The totals so far.
    pub fn summary(&self) -> TraceSummary {
        self.summary
    }

    /// Probes sent and neither answered nor expired.
    pub fn in_flight(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.sent_at.is_some() && !s.done)
            .count()
    }

    /// The next event to report, in order.
    pub fn pop_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    fn ttl_of(&self, index: usize) -> u8 {
        (index / self.q + 1) as u8
    }

    fn probe_of(&self, index: usize) -> u8 {
        (index % self.q) as u8
    }

    fn hop_end(&self, index: usize) -> usize {
        (index / self.q + 1) * self.q
    }

    /// How long to wait for probe `index` (the Linux traceroute's `get_timeout`, with the
    /// factors applied to the round-trip time as the man page defines them): HERE times the
    /// first positive round-trip time of an answered probe of the same hop, else NEAR times
    /// that of the first answered probe among those sent after it, capped at MAX; else MAX.
    pub fn timeout_for(&self, index: usize) -> Duration {
        let w = &self.cfg.wait;
        let scaled = |rtt: Duration, factor: f64| -> Duration {
            let v = rtt.as_secs_f64() * factor;
            if v >= w.max.as_secs_f64() {
                w.max
            } else {
                Duration::from_secs_f64(v)
            }
        };
        if w.here > 0.0 {
            let first = index - index % self.q;
            if let Some(rtt) = self.slots[first..first + self.q]
                .iter()
                .find_map(Slot::positive_rtt)
            {
                return scaled(rtt, w.here);
            }
        }
        if w.near > 0.0 {
            let found = self.slots[index + 1..]
                .iter()
                .take_while(|s| s.sent_at.is_some())
                .find_map(Slot::positive_rtt);
            if let Some(rtt) = found {
                return scaled(rtt, w.near);
            }
        }
        w.max
    }

    /// True when [`TraceSession::next`] at `now` would expire a probe: the driver reads every
    /// reply already queued first, so that an answer that came in time is never lost to a late
    /// wake-up.
    pub fn expiry_due(&self, now: Duration) -> bool {
        if self.interrupted {
            return false;
        }
        // The first probe `next` will find unanswered, past those it will print.
        let (mut n, mut end) = (self.start, self.end);
        while n < end && self.slots[n].done {
            if self.slots[n].is_final {
                end = end.min(self.hop_end(n));
            }
            n += 1;
        }
        n < end
            && self.slots[n]
                .sent_at
                .is_some_and(|sent| sent.saturating_add(self.timeout_for(n)) <= now)
    }

    /// What to do at `now`.
    pub fn next(&mut self, now: Duration) -> Next {
        if self.interrupted {
            return Next::Finish;
        }
        let mut next_time: Option<Duration> = None;
        let mut num = 0usize;
        let mut n = self.start;
        while n < self.end {
            if n == self.start
                && !self.slots[n].done
                && let Some(sent) = self.slots[n].sent_at
            {
                let expire = sent.saturating_add(self.timeout_for(n));
                if expire > now {
                    next_time = Some(expire);
                } else {
                    self.expire(n);
                    self.check_expired(n);
                }
            }
            if self.slots[n].done {
                if n == self.start {
                    self.complete(n);
                    self.start += 1;
                }
                if self.slots[n].is_final {
                    self.end = self.hop_end(n).min(self.end);
                }
                n += 1;
                continue;
            }
            let Some(sent) = self.slots[n].sent_at else {
                if !self.cfg.send_wait.is_zero()
                    && let Some(last) = self.last_send
                {
                    let allowed = last.saturating_add(self.cfg.send_wait);
                    if allowed > now {
                        next_time = Some(next_time.map_or(allowed, |t| t.min(allowed)));
                        break;
                    }
                }
                return Next::Send(self.spec(n));
            };
            if next_time.is_none() {
                next_time = Some(sent.saturating_add(self.timeout_for(n)));
            }
            num += 1;
            if num >= usize::from(self.cfg.sim_queries) {
                break;
            }
            n += 1;
        }
        if self.start >= self.end {
            if let Some(last) = self.summary.last_ttl {
                let final_slot = (usize::from(last) - 1) * self.q;
                self.summary.reached =
                    self.slots[final_slot..final_slot + self.q].iter().any(|s| {
                        s.is_final
                            && s.answer
                                .as_ref()
                                .is_some_and(|a| a.annotation.is_none() && a.from.is_some())
                    });
            }
            return Next::Finish;
        }
        Next::WaitUntil(next_time.unwrap_or(now))
    }

    fn spec(&mut self, index: usize) -> ProbeSpec {
        let tag = match self.slots[index].tag {
            Some(t) => t,
            None => {
                let t = self.next_tag;
                self.next_tag = self.next_tag.wrapping_add(1);
                if let Some(old) = self.tags.insert(t, index)
                    && old != index
                {
                    // Tags wrapped (more than 65536 probes): the old probe is forgotten.
                    self.slots[old].tag = None;
                }
                self.slots[index].tag = Some(t);
                t
            }
        };
        ProbeSpec {
            index,
            ttl: self.ttl_of(index),
            probe: self.probe_of(index),
            tag,
            fields: self.cfg.flow.fields(tag),
            packet_len: self.packet_len,
        }
    }

    /// Records that probe `index` (from [`Next::Send`]) went out at `at`.
    pub fn sent(&mut self, index: usize, at: Duration) {
        if let Some(slot) = self.slots.get_mut(index)
            && slot.sent_at.is_none()
        {
            slot.sent_at = Some(at);
            self.last_send = Some(at);
            self.summary.sent += 1;
        }
    }

    fn expire(&mut self, index: usize) {
        let slot = &mut self.slots[index];
        slot.done = true;
        self.summary.timeouts += 1;
        let (ttl, probe) = (self.ttl_of(index), self.probe_of(index));
        self.events.push_back(Event::Timeout { ttl, probe });
    }

    /// The Linux traceroute's `check_expired`: probe `idx` just expired. When a later probe
    /// already got a final unreachable (`!H`, `!X`...) that probably belongs here (the final
    /// hop answered only the latest of several probes sent together), that answer moves here.
    fn check_expired(&mut self, idx: usize) {
        let first = idx - idx % self.q;
        let mut previous_final = false;
        for p in first..idx {
            if !self.slots[p].done || !self.slots[p].is_final {
                return;
            }
            previous_final = true;
        }
        let mut fp = None;
        for p in idx + 1..self.slots.len() {
            if self.slots[p].sent_at.is_none() {
                break;
            }
            if self.slots[p].done {
                if !self.slots[p].is_final {
                    return;
                }
                fp = Some(p);
                break;
            }
        }
        let Some(fp) = fp else { return };
        // Port unreachables and echo replies come in order: only error reports move.
        if !self.slots[fp].has_text() {
            return;
        }
        let replace = previous_final
            || (idx % self.q) + (fp - idx) < self.q
            || self.same_address_before(idx, fp)
            || self.back_hops_say_here(idx, fp);
        if !replace {
            return;
        }
        let moved = std::mem::take(&mut self.slots[fp]);
        if let Some(tag) = moved.tag {
            self.tags.insert(tag, idx);
        }
        // The moved answer no longer counts as a timeout here.
        self.summary.timeouts = self.summary.timeouts.saturating_sub(1);
        if let Some(Event::Timeout { ttl, probe }) = self.events.back()
            && (*ttl, *probe) == (self.ttl_of(idx), self.probe_of(idx))
        {
            self.events.pop_back();
        }
        self.slots[idx] = moved;
        // The emptied probe counts as sent long ago and never answered.
        self.slots[fp] = Slot {
            sent_at: Some(Duration::ZERO),
            done: true,
            ..Slot::default()
        };
    }

    fn same_address_before(&self, idx: usize, fp: usize) -> bool {
        let Some(addr) = self.slots[fp].from() else {
            return false;
        };
        self.slots[..idx]
            .iter()
            .rev()
            .any(|s| s.from() == Some(addr))
    }

    fn back_hops_say_here(&self, idx: usize, fp: usize) -> bool {
        let Some(rttl) = self.slots[fp].reply_ttl() else {
            return false;
        };
        let mut back_hops = ttl_to_hops(rttl) as i64;
        for p in (0..idx).rev() {
            let s = &self.slots[p];
            if s.done
                && !s.is_final
                && let Some(t) = s.reply_ttl()
            {
                let hops = ttl_to_hops(t) as i64;
                if hops < back_hops {
                    let ttl = i64::from(self.ttl_of(p));
                    back_hops = back_hops - hops + ttl;
                    break;
                }
            }
        }
        back_hops <= i64::from(self.ttl_of(idx))
    }

    fn complete(&mut self, index: usize) {
        let slot = &self.slots[index];
        self.hop.push(ProbeReport {
            answer: slot.answer.clone(),
            note: slot.note.clone(),
        });
        if (index + 1) % self.q == 0 {
            let ttl = self.ttl_of(index);
            self.summary.last_ttl = Some(ttl);
            let probes = std::mem::take(&mut self.hop);
            self.events.push_back(Event::Hop(HopReport { ttl, probes }));
        }
    }

    /// Finds the probe a reply belongs to.
    pub fn probe_for(&self, echo: &ProbeEcho) -> Option<usize> {
        self.cfg
            .flow
            .candidate_tags(echo)
            .into_iter()
            .flatten()
            .find_map(|tag| {
                let &index = self.tags.get(&tag)?;
                let slot = &self.slots[index];
                (slot.tag == Some(tag) && slot.sent_at.is_some()).then_some(index)
            })
    }

    /// The probe an answer that quotes nothing (a UDP reply to a `-U` probe) most likely
    /// belongs to: the first probe in flight whose TTL is above every TTL that got a time
    /// exceeded.
    pub fn probe_for_unquoted(&self) -> Option<usize> {
        let beyond = self
            .slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.done && !s.is_final && s.from().is_some())
            .map(|(i, _)| i / self.q + 1)
            .max()
            .unwrap_or(0);
        self.slots
            .iter()
            .enumerate()
            .skip(beyond * self.q)
            .find(|(_, s)| s.sent_at.is_some() && !s.done)
            .map(|(i, _)| i)
    }

    /// Takes a reply for probe `index` (found with [`TraceSession::probe_for`]).
    pub fn on_reply(&mut self, index: usize, reply: Reply) -> Accepted {
        let Some(slot) = self.slots.get(index) else {
            return Accepted::Foreign;
        };
        let Some(sent) = slot.sent_at else {
            return Accepted::Foreign;
        };
        let (ttl, probe) = (self.ttl_of(index), self.probe_of(index));
        if slot.done {
            return if slot.answer.is_some() {
                Accepted::Duplicate
            } else {
                self.summary.late += 1;
                Accepted::Late { index, ttl, probe }
            };
        }
        let (annotation, is_final) = match reply.kind {
            ReplyKind::TimeExceeded { code: 0 } => (None, false),
            ReplyKind::TimeExceeded { code } => (Some(Annotation::Icmp(11, code)), true),
            ReplyKind::DstUnreachable { code, mtu } => {
                (Annotation::from_unreachable(code, mtu), true)
            }
            ReplyKind::EchoReply | ReplyKind::UdpReply => (None, true),
            ReplyKind::Other { icmp_type, code } => (Some(Annotation::Icmp(icmp_type, code)), true),
        };
        let rtt = reply.at.saturating_sub(sent);
        let mtu = match reply.kind {
            ReplyKind::DstUnreachable { code: 4, mtu } if mtu > 0 => Some(usize::from(mtu)),
            _ => None,
        };
        if let Some(new_mtu) = self.mtu_step(index, mtu) {
            return Accepted::Fresh {
                index,
                ttl,
                probe,
                rtt,
                is_final: false,
                new_mtu: Some(new_mtu),
            };
        }
        let answer = Answer {
            from: Some(reply.from),
            rtt,
            reply_ttl: reply.reply_ttl,
            kind: Some(reply.kind),
            annotation,
            extensions: reply.extensions,
            is_final,
        };
        self.finish_probe(index, answer);
        Accepted::Fresh {
            index,
            ttl,
            probe,
            rtt,
            is_final,
            new_mtu: None,
        }
    }

    /// Takes a local failure to send probe `index` at `at` (after [`TraceSession::sent`]): as
    /// the Linux traceroute, a probe too big for the way out is answered `!F-<mtu>` by nobody,
    /// and ends the trace (with `--mtu`, the size drops to `mtu` and the probe goes again).
    pub fn on_local_error(&mut self, index: usize, at: Duration, err: LocalError) -> Accepted {
        let Some(slot) = self.slots.get(index) else {
            return Accepted::Foreign;
        };
        let Some(sent) = slot.sent_at.filter(|_| !slot.done) else {
            return Accepted::Foreign;
        };
        let (ttl, probe) = (self.ttl_of(index), self.probe_of(index));
        let LocalError::TooBig { mtu } = err;
        let rtt = at.saturating_sub(sent);
        if let Some(new_mtu) = self.mtu_step(index, Some(mtu as usize)) {
            return Accepted::Fresh {
                index,
                ttl,
                probe,
                rtt,
                is_final: false,
                new_mtu: Some(new_mtu),
            };
        }
        let answer = Answer {
            from: None,
            rtt,
            reply_ttl: None,
            kind: None,
            annotation: Some(Annotation::Frag(mtu)),
            extensions: Vec::new(),
            is_final: true,
        };
        self.finish_probe(index, answer);
        Accepted::Fresh {
            index,
            ttl,
            probe,
            rtt,
            is_final: true,
            new_mtu: None,
        }
    }

    /// With `--mtu`, an MTU between the headers and the current size: lower the size, note
    /// `F=NUM` on the probe and make it unsent again (the previous hop answered for it).
    fn mtu_step(&mut self, index: usize, mtu: Option<usize>) -> Option<usize> {
        let mtu = mtu?;
        if !self.cfg.mtu_discovery || mtu < HEADERS_LEN || mtu >= self.packet_len {
            return None;
        }
        self.packet_len = mtu;
        let slot = &mut self.slots[index];
        if let Some(tag) = slot.tag.take() {
            self.tags.remove(&tag);
        }
        *slot = Slot {
            note: Some(format!("F={mtu}")),
            ..Slot::default()
        };
        Some(mtu)
    }

    fn finish_probe(&mut self, index: usize, answer: Answer) {
        let slot = &mut self.slots[index];
        slot.is_final = answer.is_final;
        slot.answer = Some(answer);
        slot.done = true;
        self.summary.answered += 1;
    }
}

/// How hop lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RenderOptions {
    /// `-e`: print extensions (`<MPLS:L=...>`).
    pub extensions: bool,
    /// `--back`: print the number of backward hops when it differs (`'-N'`).
    pub back: bool,
}

/// The extensions of an answer as the Linux traceroute prints them with `-e`: objects
/// separated by `;`, an MPLS stack as `MPLS:L=..,E=..,S=..,T=..` with entries separated by `/`,
/// other objects as `CLASS/CTYPE:` and their words in hex.
pub fn extensions_text(ext: &[ExtObject]) -> String {
    let mut s = String::new();
    for (i, o) in ext.iter().enumerate() {
        if i > 0 {
            s.push(';');
        }
        match o {
            ExtObject::Mpls(entries) if !entries.is_empty() => {
                s.push_str("MPLS:");
                for (j, e) in entries.iter().enumerate() {
                    if j > 0 {
                        s.push('/');
                    }
                    s.push_str(&e.to_string());
                }
            }
            ExtObject::Mpls(_) => s.push_str("1/1:"),
            ExtObject::Other {
                class_num,
                c_type,
                words,
            } => {
                s.push_str(&format!("{class_num}/{c_type}:"));
                let hex: Vec<String> = words.iter().map(|w| format!("{w:08x}")).collect();
                s.push_str(&hex.join(","));
            }
        }
    }
    s
}

/// One hop line, without the newline, exactly as the Linux traceroute prints it:
/// `" 2  198.18.2.2  0.123 ms  0.101 ms  0.098 ms"`, `" 3  * * *"`, several addresses inline
/// (each printed when it differs from the previous answer's), annotations after the times.
/// `addr_text` gives the text of an address (`name (addr)`, or the bare address).
pub fn render_hop(
    hop: &HopReport,
    opts: RenderOptions,
    addr_text: &mut dyn FnMut(Ipv4Addr) -> String,
) -> String {
    let mut s = format!("{:2} ", hop.ttl);
    let ext_of = |p: &ProbeReport| -> String {
        match (&p.answer, opts.extensions) {
            (Some(a), true) => extensions_text(&a.extensions),
            _ => String::new(),
        }
    };
    for (np, p) in hop.probes.iter().enumerate() {
        match p.answer.as_ref().and_then(|a| a.from.map(|f| (a, f))) {
            None => s.push_str(" *"),
            Some((a, from)) => {
                let previous = hop.probes[..np]
                    .iter()
                    .rev()
                    .find(|q| q.answer.as_ref().is_some_and(|qa| qa.from.is_some()));
                let print = match previous {
                    None => true,
                    Some(q) => {
                        let qa = q.answer.as_ref().expect("found with an answer");
                        qa.from != Some(from)
                            || ext_of(q) != ext_of(p)
                            || (opts.back && qa.reply_ttl != a.reply_ttl)
                    }
                };
                if print {
                    s.push(' ');
                    s.push_str(&addr_text(from));
                    let ext = ext_of(p);
                    if !ext.is_empty() {
                        s.push_str(&format!(" <{ext}>"));
                    }
                    if opts.back
                        && let Some(t) = a.reply_ttl.filter(|t| *t != 0)
                    {
                        let hops = ttl_to_hops(t);
                        if hops != u32::from(hop.ttl) {
                            s.push_str(&format!(" '-{hops}'"));
                        }
                    }
                }
            }
        }
        if let Some(a) = &p.answer {
            s.push_str(&format!("  {:.3} ms", a.rtt.as_secs_f64() * 1000.0));
        }
        let mut text = p.note.clone().unwrap_or_default();
        if let Some(ann) = p.answer.as_ref().and_then(|a| a.annotation) {
            text.push_str(&ann.to_string());
        }
        if !text.is_empty() {
            s.push(' ');
            s.push_str(&text);
        }
    }
    s
}

/// The header line, without the newline: `traceroute to HOST (ADDR), 30 hops max, 60 byte
/// packets`.
pub fn header_line(host: &str, addr: Ipv4Addr, max_ttl: u8, packet_len: usize) -> String {
    format!("traceroute to {host} ({addr}), {max_ttl} hops max, {packet_len} byte packets")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn us(v: u64) -> Duration {
        Duration::from_micros(v)
    }

    fn te(from: [u8; 4], at: Duration) -> Reply {
        Reply {
            from: Ipv4Addr::from(from),
            at,
            kind: ReplyKind::TimeExceeded { code: 0 },
            reply_ttl: Some(64),
            extensions: vec![],
        }
    }

    fn numeric(a: Ipv4Addr) -> String {
        a.to_string()
    }

    /// Sends everything the session wants at `now`; returns the specs.
    fn send_all(s: &mut TraceSession, now: Duration) -> Vec<ProbeSpec> {
        let mut out = vec![];
        while let Next::Send(spec) = s.next(now) {
            s.sent(spec.index, now);
            out.push(spec);
        }
        out
    }

    fn hops(s: &mut TraceSession) -> Vec<String> {
        let mut out = vec![];
        while let Some(e) = s.pop_event() {
            if let Event::Hop(h) = e {
                out.push(render_hop(&h, RenderOptions::default(), &mut numeric));
            }
        }
        out
    }

    #[test]
    fn wait_spec_parses_like_the_linux_traceroute() {
        assert_eq!(WaitSpec::parse("5,3,10"), Ok(WaitSpec::default()));
        assert_eq!(
            WaitSpec::parse("2"),
            Ok(WaitSpec {
                max: Duration::from_secs(2),
                here: 0.0,
                near: 0.0
            })
        );
        assert_eq!(
            WaitSpec::parse("1.5/2"),
            Ok(WaitSpec {
                max: Duration::from_millis(1500),
                here: 2.0,
                near: 0.0
            })
        );
        assert!(WaitSpec::parse("-1").is_err());
        assert!(WaitSpec::parse("1,x").is_err());
        assert!(WaitSpec::parse("1,2,3,4").is_err());
        assert!(WaitSpec::parse("").is_err());
    }

    #[test]
    fn all_probes_of_the_window_go_out_at_once() {
        let mut s = TraceSession::new(TraceConfig::default());
        let specs = send_all(&mut s, ms(0));
        assert_eq!(specs.len(), 16);
        assert_eq!(specs[0].ttl, 1);
        assert_eq!(specs[15].ttl, 6);
        assert_eq!(specs[15].probe, 0);
        // Classic UDP: the port goes up with each probe, from 33434.
        assert_eq!(specs[0].fields.dst_port, 33434);
        assert_eq!(specs[15].fields.dst_port, 33449);
        assert_eq!(s.next(ms(0)), Next::WaitUntil(ms(5000)));
        assert_eq!(s.in_flight(), 16);
    }

    #[test]
    fn adaptive_wait_uses_here_then_near_then_max() {
        let mut s = TraceSession::new(TraceConfig::default());
        send_all(&mut s, ms(0));
        // Nothing back: MAX.
        assert_eq!(s.timeout_for(0), Duration::from_secs(5));
        // A reply from hop 3 (probe 6) after 2 ms: NEAR = 10 x 2 ms for earlier probes.
        let i = s.probe_for(&ProbeEcho {
            dst_port: Some(33434 + 6),
            ..Default::default()
        });
        assert_eq!(i, Some(6));
        s.on_reply(6, te([198, 18, 3, 2], ms(2)));
        assert_eq!(s.timeout_for(0), ms(20));
        // And HERE = 3 x RTT for the other probes of hop 3.
        assert_eq!(s.timeout_for(7), ms(6));
        // A hop-1 answer takes over for hop 1.
        s.on_reply(1, te([198, 18, 1, 2], us(500)));
        assert_eq!(s.timeout_for(0), us(1500));
        // Factors of 0 skip the rules; the cap is MAX.
        let cfg = TraceConfig {
            wait: WaitSpec {
                max: ms(10),
                here: 0.0,
                near: 100.0,
            },
            ..TraceConfig::default()
        };
        let mut s = TraceSession::new(cfg);
        send_all(&mut s, ms(0));
        s.on_reply(1, te([198, 18, 1, 2], ms(1)));
        assert_eq!(s.timeout_for(0), ms(10));
        assert_eq!(s.timeout_for(2), ms(10));
    }

    #[test]
    fn a_silent_hop_costs_one_wait() {
        let cfg = TraceConfig {
            max_ttl: 3,
            ..TraceConfig::default()
        };
        let mut s = TraceSession::new(cfg);
        let specs = send_all(&mut s, ms(0));
        assert_eq!(specs.len(), 9);
        // Hop 1 and 3 answer at 1 ms and 3 ms; hop 2 is silent.
        for i in [0, 1, 2] {
            s.on_reply(i, te([198, 18, 1, 2], ms(1)));
        }
        for i in [6, 7, 8] {
            let mut r = te([198, 18, 3, 2], ms(3));
            r.kind = ReplyKind::DstUnreachable { code: 3, mtu: 0 };
            s.on_reply(i, r);
        }
        // Probe 3 waits NEAR x 3 ms = 30 ms, and so do 4 and 5 (sent at the same time).
        assert_eq!(s.next(ms(3)), Next::WaitUntil(ms(30)));
        assert_eq!(s.next(ms(30)), Next::Finish);
        assert_eq!(
            hops(&mut s),
            vec![
                " 1  198.18.1.2  1.000 ms  1.000 ms  1.000 ms",
                " 2  * * *",
                " 3  198.18.3.2  3.000 ms  3.000 ms  3.000 ms",
            ]
        );
        let sum = s.summary();
        assert!(sum.reached);
        assert_eq!((sum.sent, sum.answered, sum.timeouts), (9, 6, 3));
    }

    #[test]
    fn expiry_is_announced_before_it_happens() {
        let cfg = TraceConfig {
            wait: WaitSpec::parse("1").unwrap(),
            ..TraceConfig::default()
        };
        let mut s = TraceSession::new(cfg);
        assert!(!s.expiry_due(ms(0)));
        send_all(&mut s, ms(0));
        assert!(!s.expiry_due(ms(999)));
        assert!(s.expiry_due(ms(1000)));
        // An answer read in time (the driver drains first) is not expired.
        s.on_reply(0, te([198, 18, 1, 2], ms(3)));
        assert!(s.expiry_due(ms(1000)), "probe 2 is still due");
        s.next(ms(1000));
        let e = s.pop_event();
        assert_eq!(e, Some(Event::Timeout { ttl: 1, probe: 1 }));
        // Once the hop's other probes are answered too, nothing is due.
        let mut s = TraceSession::new(TraceConfig {
            max_ttl: 1,
            ..TraceConfig::default()
        });
        send_all(&mut s, ms(0));
        for i in 0..3 {
            s.on_reply(i, te([198, 18, 1, 2], ms(1)));
        }
        assert!(!s.expiry_due(ms(10_000)));
    }

    #[test]
    fn the_window_slides_as_probes_are_answered() {
        let cfg = TraceConfig {
            sim_queries: 4,
            queries: 2,
            ..TraceConfig::default()
        };
        let mut s = TraceSession::new(cfg);
        let specs = send_all(&mut s, ms(0));
        assert_eq!(
            specs.iter().map(|p| p.index).collect::<Vec<_>>(),
            [0, 1, 2, 3]
        );
        // An answer for a probe further on frees a place in the window: one more goes out.
        s.on_reply(3, te([198, 18, 2, 2], ms(1)));
        let more = send_all(&mut s, ms(1));
        assert_eq!(more.iter().map(|p| p.index).collect::<Vec<_>>(), [4]);
        s.on_reply(0, te([198, 18, 1, 2], ms(2)));
        s.on_reply(1, te([198, 18, 1, 2], ms(2)));
        let more = send_all(&mut s, ms(2));
        assert_eq!(more.iter().map(|p| p.index).collect::<Vec<_>>(), [5, 6]);
        assert_eq!(hops(&mut s), vec![" 1  198.18.1.2  2.000 ms  2.000 ms"]);
    }

    #[test]
    fn send_wait_spaces_the_probes() {
        let cfg = TraceConfig {
            send_wait: ms(50),
            ..TraceConfig::default()
        };
        let mut s = TraceSession::new(cfg);
        let Next::Send(p) = s.next(ms(0)) else {
            panic!()
        };
        s.sent(p.index, ms(0));
        assert_eq!(s.next(ms(10)), Next::WaitUntil(ms(50)));
        assert!(matches!(s.next(ms(50)), Next::Send(p) if p.index == 1));
    }

    #[test]
    fn a_final_answer_ends_the_trace_at_its_hop() {
        let cfg = TraceConfig {
            queries: 1,
            ..TraceConfig::default()
        };
        let mut s = TraceSession::new(cfg);
        send_all(&mut s, ms(0));
        let unreach = |at| Reply {
            kind: ReplyKind::DstUnreachable { code: 3, mtu: 0 },
            ..te([198, 18, 4, 2], at)
        };
        // The destination is hop 4: probes with TTL 4 and above all reach it.
        for i in 3..16 {
            s.on_reply(i, unreach(ms(4)));
        }
        for i in 0..3 {
            s.on_reply(i, te([198, 18, i as u8 + 1, 2], ms(1)));
        }
        assert_eq!(s.next(ms(4)), Next::Finish);
        let lines = hops(&mut s);
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[3], " 4  198.18.4.2  4.000 ms");
        assert!(s.summary().reached);
        assert_eq!(s.summary().last_ttl, Some(4));
    }

    #[test]
    fn unreachables_annotate_and_end_the_trace() {
        let cfg = TraceConfig {
            queries: 2,
            ..TraceConfig::default()
        };
        let mut s = TraceSession::new(cfg);
        send_all(&mut s, ms(0));
        s.on_reply(0, te([198, 18, 1, 2], ms(1)));
        s.on_reply(1, te([198, 18, 1, 2], ms(1)));
        for (i, code) in [(2, 13), (3, 13)] {
            let r = Reply {
                kind: ReplyKind::DstUnreachable { code, mtu: 0 },
                ..te([198, 18, 1, 2], ms(2))
            };
            s.on_reply(i, r);
        }
        assert_eq!(s.next(ms(2)), Next::Finish);
        assert_eq!(
            hops(&mut s),
            vec![
                " 1  198.18.1.2  1.000 ms  1.000 ms",
                " 2  198.18.1.2  2.000 ms !X  2.000 ms !X"
            ]
        );
        assert!(!s.summary().reached);
    }

    #[test]
    fn annotations_are_the_linux_traceroute_words() {
        let t = |code| Annotation::from_unreachable(code, 1280).map(|a| a.to_string());
        assert_eq!(t(0).as_deref(), Some("!N"));
        assert_eq!(t(1).as_deref(), Some("!H"));
        assert_eq!(t(2).as_deref(), Some("!P"));
        assert_eq!(t(3), None);
        assert_eq!(t(4).as_deref(), Some("!F-1280"));
        assert_eq!(t(5).as_deref(), Some("!S"));
        assert_eq!(t(6).as_deref(), Some("!N"));
        assert_eq!(t(7).as_deref(), Some("!H"));
        assert_eq!(t(9).as_deref(), Some("!X"));
        assert_eq!(t(10).as_deref(), Some("!X"));
        assert_eq!(t(11).as_deref(), Some("!N"));
        assert_eq!(t(12).as_deref(), Some("!H"));
        assert_eq!(t(13).as_deref(), Some("!X"));
        assert_eq!(t(14).as_deref(), Some("!V"));
        assert_eq!(t(15).as_deref(), Some("!C"));
        assert_eq!(t(16).as_deref(), Some("!<16>"));
        assert_eq!(Annotation::Icmp(11, 1).to_string(), "!<11-1>");
    }

    #[test]
    fn replies_after_the_wait_are_late_and_duplicates_are_ignored() {
        let cfg = TraceConfig {
            max_ttl: 1,
            queries: 1,
            wait: WaitSpec::parse("1").unwrap(),
            ..TraceConfig::default()
        };
        let mut s = TraceSession::new(cfg);
        send_all(&mut s, ms(0));
        assert_eq!(s.next(ms(1000)), Next::Finish);
        assert_eq!(
            s.on_reply(0, te([198, 18, 1, 2], ms(1200))),
            Accepted::Late {
                index: 0,
                ttl: 1,
                probe: 0
            }
        );
        assert_eq!(s.pop_event(), Some(Event::Timeout { ttl: 1, probe: 0 }));
        assert_eq!(hops(&mut s), vec![" 1  *"]);
        assert_eq!(s.summary().late, 1);

        let mut s = TraceSession::new(TraceConfig::default());
        send_all(&mut s, ms(0));
        assert!(matches!(
            s.on_reply(0, te([198, 18, 1, 2], ms(1))),
            Accepted::Fresh { .. }
        ));
        assert_eq!(
            s.on_reply(0, te([198, 18, 1, 2], ms(2))),
            Accepted::Duplicate
        );
        assert_eq!(
            s.probe_for(&ProbeEcho {
                dst_port: Some(1000),
                ..Default::default()
            }),
            None
        );
    }

    #[test]
    fn a_final_unreachable_moves_onto_an_expired_probe_of_its_hop() {
        // "* !H": the first probe of the hop expired, the second got !H: the Linux traceroute
        // assumes the whole hop is final and moves the answer.
        let cfg = TraceConfig {
            max_ttl: 2,
            queries: 2,
            wait: WaitSpec::parse("1").unwrap(),
            ..TraceConfig::default()
        };
        let mut s = TraceSession::new(cfg);
        send_all(&mut s, ms(0));
        s.on_reply(0, te([198, 18, 1, 2], ms(1)));
        s.on_reply(1, te([198, 18, 1, 2], ms(1)));
        let r = Reply {
            kind: ReplyKind::DstUnreachable { code: 1, mtu: 0 },
            ..te([198, 18, 2, 2], ms(2))
        };
        s.on_reply(3, r);
        assert_eq!(s.next(ms(2)), Next::WaitUntil(ms(1000)));
        assert_eq!(s.next(ms(1000)), Next::Finish);
        assert_eq!(
            hops(&mut s),
            vec![
                " 1  198.18.1.2  1.000 ms  1.000 ms",
                " 2  198.18.2.2  2.000 ms !H *"
            ]
        );
    }

    #[test]
    fn mtu_discovery_lowers_the_size_notes_it_and_sends_again() {
        let cfg = TraceConfig {
            mtu_discovery: true,
            sim_queries: 1,
            packet_len: MAX_PACKET_LEN,
            queries: 1,
            max_ttl: 2,
            ..TraceConfig::default()
        };
        let mut s = TraceSession::new(cfg);
        let Next::Send(p) = s.next(ms(0)) else {
            panic!()
        };
        assert_eq!(p.packet_len, 65_000);
        s.sent(p.index, ms(0));
        let a = s.on_local_error(0, ms(0), LocalError::TooBig { mtu: 1500 });
        assert!(matches!(
            a,
            Accepted::Fresh {
                new_mtu: Some(1500),
                ..
            }
        ));
        let Next::Send(p) = s.next(ms(0)) else {
            panic!()
        };
        assert_eq!((p.index, p.packet_len), (0, 1500));
        assert_ne!(p.tag, 0, "a resent probe gets a new tag");
        s.sent(0, ms(1));
        s.on_reply(0, te([198, 18, 1, 2], ms(2)));
        let Next::Send(p) = s.next(ms(2)) else {
            panic!()
        };
        s.sent(p.index, ms(2));
        let r = Reply {
            kind: ReplyKind::DstUnreachable { code: 4, mtu: 1280 },
            ..te([198, 18, 1, 2], ms(3))
        };
        s.on_reply(1, r);
        let Next::Send(p) = s.next(ms(3)) else {
            panic!()
        };
        assert_eq!((p.index, p.packet_len), (1, 1280));
        s.sent(1, ms(3));
        let r = Reply {
            kind: ReplyKind::DstUnreachable { code: 3, mtu: 0 },
            ..te([198, 18, 2, 2], ms(4))
        };
        s.on_reply(1, r);
        assert_eq!(s.next(ms(4)), Next::Finish);
        assert_eq!(
            hops(&mut s),
            vec![
                " 1  198.18.1.2  1.000 ms F=1500",
                " 2  198.18.2.2  1.000 ms F=1280"
            ]
        );
    }

    #[test]
    fn without_mtu_discovery_a_probe_too_big_is_a_local_frag_error() {
        let cfg = TraceConfig {
            queries: 1,
            ..TraceConfig::default()
        };
        let mut s = TraceSession::new(cfg);
        let Next::Send(p) = s.next(ms(0)) else {
            panic!()
        };
        s.sent(p.index, ms(0));
        s.on_local_error(0, us(8), LocalError::TooBig { mtu: 1500 });
        assert_eq!(s.next(ms(0)), Next::Finish);
        // The line, as the Linux traceroute prints a local error: nobody answered.
        assert_eq!(hops(&mut s), vec![" 1  *  0.008 ms !F-1500"]);
    }

    #[test]
    fn flows_number_probes_by_method() {
        let f = Flow::new(Method::Icmp, None, false);
        assert_eq!(f.fields(0).icmp_seq, 1);
        assert_eq!(f.fields(5).icmp_seq, 6);
        assert_eq!(f.fields(5).icmp_checksum, None);
        let f = Flow::new(Method::UdpFixed, None, false);
        assert_eq!(f.fields(0).dst_port, 53);
        assert_eq!(f.fields(9).dst_port, 53);
        assert_ne!(f.fields(9).ip_id, f.fields(8).ip_id);
        let f = Flow::new(Method::Udp, Some(40000), true);
        assert_eq!(f.fields(0).dst_port, 40000);
        assert_eq!(f.fields(7).dst_port, 40000);
        assert_eq!(f.fields(7).udp_checksum, Some(8));
        let f = Flow::new(Method::Icmp, Some(100), true);
        assert_eq!(f.fields(3).icmp_seq, 103);
        assert_eq!(f.fields(3).icmp_checksum, f.fields(4).icmp_checksum);
        assert_eq!(Flow::new(Method::Udp, Some(0), false).port, 33434);
    }

    #[test]
    fn replies_are_matched_by_the_fields_of_each_method() {
        for (method, paris) in [
            (Method::Udp, false),
            (Method::Udp, true),
            (Method::UdpFixed, false),
            (Method::UdpFixed, true),
            (Method::Icmp, false),
            (Method::Icmp, true),
        ] {
            let cfg = TraceConfig {
                flow: Flow {
                    ip_id_base: 0xfff0,
                    ..Flow::new(method, None, paris)
                },
                ..TraceConfig::default()
            };
            let mut s = TraceSession::new(cfg);
            let specs = send_all(&mut s, ms(0));
            for spec in &specs {
                let f = spec.fields;
                let echo = ProbeEcho {
                    ip_id: Some(f.ip_id),
                    dst_port: method.is_udp().then_some(f.dst_port),
                    udp_checksum: f.udp_checksum.or(Some(0x1234)),
                    icmp_seq: (method == Method::Icmp).then_some(f.icmp_seq),
                };
                assert_eq!(
                    s.probe_for(&echo),
                    Some(spec.index),
                    "{method:?} paris={paris}"
                );
            }
        }
    }

    #[test]
    fn render_prints_each_address_when_it_changes_and_extensions_and_back_hops() {
        let ans = |from: Option<[u8; 4]>, rtt_us: u64, reply_ttl: u8| {
            Some(Answer {
                from: from.map(Ipv4Addr::from),
                rtt: us(rtt_us),
                reply_ttl: Some(reply_ttl),
                kind: Some(ReplyKind::TimeExceeded { code: 0 }),
                annotation: None,
                extensions: vec![],
                is_final: false,
            })
        };
        let p = |answer| ProbeReport { answer, note: None };
        let hop = HopReport {
            ttl: 2,
            probes: vec![
                p(ans(Some([198, 18, 2, 2]), 123, 63)),
                p(None),
                p(ans(Some([198, 18, 2, 2]), 101, 63)),
                p(ans(Some([198, 18, 20, 2]), 98, 62)),
            ],
        };
        let line = render_hop(&hop, RenderOptions::default(), &mut numeric);
        assert_eq!(
            line,
            " 2  198.18.2.2  0.123 ms *  0.101 ms 198.18.20.2  0.098 ms"
        );
        let line = render_hop(
            &hop,
            RenderOptions {
                back: true,
                extensions: false,
            },
            &mut numeric,
        );
        assert_eq!(
            line,
            " 2  198.18.2.2  0.123 ms *  0.101 ms 198.18.20.2 '-3'  0.098 ms"
        );
        let mut with_ext = hop.clone();
        with_ext.probes[0].answer.as_mut().unwrap().extensions =
            vec![ExtObject::Mpls(vec![MplsEntry {
                label: 24001,
                tc: 0,
                bottom: true,
                ttl: 1,
            }])];
        let named = &mut |a: Ipv4Addr| format!("r2.lab ({a})");
        let line = render_hop(
            &with_ext,
            RenderOptions {
                extensions: true,
                back: false,
            },
            named,
        );
        // The extensions differ between probes 1 and 3: the address is printed again.
        assert_eq!(
            line,
            " 2  r2.lab (198.18.2.2) <MPLS:L=24001,E=0,S=1,T=1>  0.123 ms * \
             r2.lab (198.18.2.2)  0.101 ms r2.lab (198.18.20.2)  0.098 ms"
        );
        assert_eq!(
            render_hop(
                &HopReport {
                    ttl: 12,
                    probes: vec![p(None), p(None), p(None)]
                },
                RenderOptions::default(),
                &mut numeric
            ),
            "12  * * *"
        );
    }

    #[test]
    fn extension_text_joins_objects_and_entries() {
        let e = |label| MplsEntry {
            label,
            tc: 0,
            bottom: label == 2,
            ttl: 255,
        };
        let ext = vec![
            ExtObject::Mpls(vec![e(1), e(2)]),
            ExtObject::Other {
                class_num: 2,
                c_type: 3,
                words: vec![0xdeadbeef, 1],
            },
        ];
        assert_eq!(
            extensions_text(&ext),
            "MPLS:L=1,E=0,S=0,T=255/L=2,E=0,S=1,T=255;2/3:deadbeef,00000001"
        );
    }

    #[test]
    fn ttl_to_hops_assumes_64_128_or_255() {
        assert_eq!(ttl_to_hops(61), 4);
        assert_eq!(ttl_to_hops(64), 1);
        assert_eq!(ttl_to_hops(126), 3);
        assert_eq!(ttl_to_hops(250), 6);
    }

    #[test]
    fn first_ttl_starts_the_trace_there() {
        let cfg = TraceConfig {
            first_ttl: 3,
            max_ttl: 4,
            queries: 1,
            ..TraceConfig::default()
        };
        let mut s = TraceSession::new(cfg);
        let specs = send_all(&mut s, ms(0));
        assert_eq!(specs.iter().map(|p| p.ttl).collect::<Vec<_>>(), [3, 4]);
        assert_eq!(specs[0].fields.dst_port, 33434);
        assert_eq!(s.next(ms(4999)), Next::WaitUntil(ms(5000)));
        assert_eq!(s.next(ms(5000)), Next::Finish);
        let lines = hops(&mut s);
        assert_eq!(lines, vec![" 3  *", " 4  *"]);
    }

    #[test]
    fn interrupt_finishes_at_once() {
        let mut s = TraceSession::new(TraceConfig::default());
        send_all(&mut s, ms(0));
        s.interrupt();
        assert_eq!(s.next(ms(1)), Next::Finish);
        assert!(!s.summary().reached);
    }
}

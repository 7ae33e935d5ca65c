//! `rawkit send`: craft IPv4 datagrams with every field reachable (UDP, ICMP or raw bytes,
//! IPv4 options, fragments, wrong values on purpose), send them at a rate or as fast as the
//! machine goes, show the replies that answer them, record a pcap and replay one.
//!
//! The flow: the flags ([`args`]) are turned into a [`Plan`] ([`craft`]: the datagram, or its
//! fragments, built by the packet layer, and what changes from one datagram to the next); with
//! `--dry-run` the plan is printed and nothing is opened. Otherwise the `IP_HDRINCL` sender is
//! opened, with `--listen` a raw ICMP socket (replies and errors) and, for UDP, a raw UDP socket
//! (answers to the source port), then every capability is dropped and the loop sends, paced by
//! a monotonic clock or not at all (`--flood`), reading replies as they come ([`listen`]).
//!
//! What Linux does to an `IP_HDRINCL` datagram (measured on 6.18 with a capture on `lo`; see
//! [`AFTER_HELP`]) decides what can be crafted: the total length and header checksum are always
//! rewritten, so their lies exist only in `--dry-run` and `--pcap`.
//!
//! The flood loop allocates nothing and formats nothing per datagram: it copies the prebuilt
//! datagram, patches the identification (and the ICMP sequence number) with incremental
//! checksum updates, and calls `sendto`.

mod args;
mod craft;
mod listen;

pub use args::SendArgs;

use super::EXIT_ERROR;
use super::output::{Out, ms_f64, warn};
use crate::net::NetError;
use crate::net::poll;
use crate::net::privilege;
use crate::net::route;
use crate::net::socket::{HdrInclSender, RawIcmpSocket, RawIpSocket};
use crate::packet::checksum;
use crate::packet::display;
use crate::packet::ipv4::{self, Ipv4Packet};
use crate::pcap::{LinkType, PcapReader, PcapWriter};
use args::{Ipv4Args, PayloadArgs, ProtoArgs, RawArgs, RunArgs};
use craft::{Plan, Rng, SentTransport};
use listen::{Matcher, Reply};
use serde_json::json;
use std::io::BufWriter;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// The `--help` epilogue: what the kernel changes, exit status, privileges.
pub const AFTER_HELP: &str = "\
What the kernel changes (Linux IP_HDRINCL, checked with a capture on lo): it always rewrites the \
total length (to the bytes sent) and the header checksum; it fills in the identification when it \
is 0 and DF is clear, and the source when it is 0.0.0.0. Everything else goes out as built: \
version, IHL and options, TOS, the DF, MF and reserved flags, fragment offset, TTL, protocol, and \
all of UDP and ICMP, wrong checksums included. It refuses (EINVAL) datagrams shorter than 20 \
bytes or whose IHL is below 5 or past their end, and never fragments: over the route's MTU \
sendto fails (EMSGSIZE): use --fragment SIZE. So --ip-len and --ip-checksum lies show only in \
--dry-run and --pcap (which hold the datagrams as rawkit built them).

Final line: N datagrams (B bytes) sent, E errors, R replies (a fragment counts as a datagram).
Exit status: 0 when every datagram went out (and, with --listen, a reply came), 1 with --listen \
when no reply matched, 2 on errors.
Needs CAP_NET_RAW (root, or setcap cap_net_raw+ep) except with --dry-run: see capabilities.md.";

/// Replies shown per RTT lookup: the send times of this many recent datagrams are kept.
const RTT_RING: usize = 1024;

/// How often the flood loop looks at the signal flag and the receive sockets (datagrams).
const FLOOD_CHECK_EVERY: u64 = 64;

/// Runs `rawkit send`; returns the exit status.
pub fn run(args: SendArgs) -> i32 {
    let proto = args.proto;
    let run = proto.run().clone();
    let mut rng = Rng::new();
    let (plan, replay) = match &proto {
        ProtoArgs::Raw(r) if r.from_pcap.is_some() => match replay_plan(r) {
            Ok(p) => (p, true),
            Err(e) => {
                warn(e);
                return EXIT_ERROR;
            }
        },
        _ => {
            let mut warnings = Vec::new();
            match craft::plan(&proto, &mut rng, &mut warnings) {
                Ok(p) => {
                    for w in warnings {
                        warn(w);
                    }
                    (p, false)
                }
                Err(e) => {
                    warn(e);
                    return EXIT_ERROR;
                }
            }
        }
    };
    if run.dry_run {
        return dry_run(&plan, &run, &mut rng);
    }
    match Driver::start(plan, run, replay, rng) {
        Ok(mut d) => d.run(),
        Err(code) => code,
    }
}

/// Prints each datagram (hex dump and one-line decode) and writes the pcap; sends nothing.
fn dry_run(plan: &Plan, run: &RunArgs, rng: &mut Rng) -> i32 {
    let mut out = Out::new("send", run.json);
    let mut pcap = match &run.pcap {
        None => None,
        Some(p) => match PcapWriter::create(p, LinkType::RawIpv4) {
            Ok(w) => Some(w),
            Err(e) => {
                warn(e);
                return EXIT_ERROR;
            }
        },
    };
    let count = run.count.unwrap_or(1);
    let mut buf = vec![0u8; plan.max_len()];
    let mut order = Vec::new();
    let (mut datagrams, mut bytes) = (0u64, 0u64);
    let now = SystemTime::now();
    for k in 0..count {
        if out.is_broken() {
            break;
        }
        plan.order_into(rng, &mut order);
        for (j, &i) in order.iter().enumerate() {
            let n = plan.piece_into(k, i, &mut buf);
            let d = &buf[..n];
            datagrams += 1;
            bytes += n as u64;
            let summary = display::summary(d);
            out.text(&format!("{summary}\n{}\n", display::hexdump(d)));
            out.event(
                "datagram",
                json!({
                    "index": k + 1,
                    "fragment": plan.fragmented.then_some(j + 1),
                    "bytes": n, "summary": summary, "hex": display::hex(d),
                }),
            );
            if let Some(w) = pcap.as_mut()
                && let Err(e) = w.write_packet(now, d, n)
            {
                warn(e);
                return EXIT_ERROR;
            }
        }
    }
    out.text(&format!(
        "{datagrams} datagrams ({bytes} bytes) built, not sent (--dry-run)\n"
    ));
    out.event(
        "summary",
        json!({
            "datagrams": datagrams, "bytes": bytes, "errors": 0, "replies": 0,
            "time_ms": 0, "dry_run": true, "exit": 0,
        }),
    );
    if let Some(w) = pcap.as_mut()
        && let Err(e) = w.flush()
    {
        warn(e);
        return EXIT_ERROR;
    }
    0
}

/// The names of the crafting flags set alongside `--from-pcap`.
fn crafting_flags(ip: &Ipv4Args, payload: &PayloadArgs, fragment: bool) -> Vec<&'static str> {
    let mut v = Vec::new();
    let mut add = |set: bool, name: &'static str| {
        if set {
            v.push(name);
        }
    };
    add(ip.src.is_some(), "--src");
    add(ip.ttl.is_some(), "--ttl");
    add(
        ip.tos.is_some() || ip.dscp.is_some() || ip.ecn.is_some(),
        "--tos",
    );
    add(ip.id.is_some(), "--id");
    add(ip.df || ip.mf || ip.evil, "--df/--mf/--evil");
    add(ip.frag_offset.is_some(), "--frag-offset");
    add(!ip.ip_opt.is_empty(), "--ip-opt");
    add(ip.ihl.is_some(), "--ihl");
    add(ip.ip_len.is_some(), "--ip-len");
    add(ip.ip_checksum.is_some(), "--ip-checksum");
    add(ip.ip_version.is_some(), "--ip-version");
    add(ip.proto.is_some(), "--proto");
    add(
        payload.payload.is_some()
            || payload.payload_hex.is_some()
            || payload.payload_file.is_some()
            || payload.size.is_some(),
        "a payload",
    );
    add(fragment, "--fragment");
    v
}

/// Reads the datagrams to replay, rewritten to `--dst` when given.
fn replay_plan(r: &RawArgs) -> Result<Plan, String> {
    let set = crafting_flags(&r.ip, &r.payload, r.frag.fragment.is_some());
    if !set.is_empty() {
        return Err(format!(
            "conflicting options: --from-pcap replays datagrams as captured; {} would craft \
             one (only --dst, timing and output flags apply)",
            set.join(", ")
        ));
    }
    if r.run.listen.is_some() {
        return Err(
            "conflicting options: --listen matches replies to one crafted datagram, not to a \
             replayed capture: capture the replies with rawkit capture or tcpdump"
                .into(),
        );
    }
    let path = r.from_pcap.as_deref().unwrap_or(Path::new(""));
    let (datagrams, skipped) = load_pcap(path, r.ip.dst)?;
    if skipped > 0 {
        warn(format!(
            "{}: skipped {skipped} records that hold no whole IPv4 datagram (other protocols, \
             or cut short by the snap length)",
            path.display()
        ));
    }
    if datagrams.is_empty() {
        return Err(format!(
            "--from-pcap {}: no IPv4 datagram to replay",
            path.display()
        ));
    }
    Ok(Plan::fixed(datagrams))
}

/// The IPv4 datagrams of a pcap file, cut to their total length (link padding removed), with
/// the destination rewritten to `dst` when given; and how many records were skipped.
pub fn load_pcap(path: &Path, dst: Option<Ipv4Addr>) -> Result<(Vec<Vec<u8>>, usize), String> {
    let reader = PcapReader::open(path).map_err(|e| format!("--from-pcap: {e}"))?;
    let mut out = Vec::new();
    let mut skipped = 0;
    for record in reader {
        let record = record.map_err(|e| format!("--from-pcap: {e}"))?;
        let Some(ip) = record.ipv4() else {
            skipped += 1;
            continue;
        };
        if record.data.len() < record.orig_len || ip.len() < ipv4::HEADER_LEN {
            skipped += 1;
            continue;
        }
        let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
        let mut d = if (ipv4::HEADER_LEN..=ip.len()).contains(&total) {
            ip[..total].to_vec()
        } else {
            ip.to_vec()
        };
        if let Some(a) = dst {
            rewrite_dst(&mut d, a);
        }
        out.push(d);
    }
    Ok((out, skipped))
}

/// Replaces the destination address of `d` and fixes the checksums that cover it with RFC 1624
/// incremental updates, so that whatever was wrong before stays exactly as wrong: the IPv4
/// header checksum and, in a datagram that holds the transport header, the UDP (unless 0,
/// "none") and TCP checksums (their pseudo-header has the address).
pub fn rewrite_dst(d: &mut [u8], dst: Ipv4Addr) {
    if d.len() < ipv4::HEADER_LEN {
        return;
    }
    let old = [
        u16::from_be_bytes([d[16], d[17]]),
        u16::from_be_bytes([d[18], d[19]]),
    ];
    let o = dst.octets();
    let new = [
        u16::from_be_bytes([o[0], o[1]]),
        u16::from_be_bytes([o[2], o[3]]),
    ];
    let update = |mut c: u16| {
        for w in 0..2 {
            c = checksum::update(c, old[w], new[w]);
        }
        c
    };
    d[16..20].copy_from_slice(&o);
    let c = update(u16::from_be_bytes([d[10], d[11]]));
    d[10..12].copy_from_slice(&c.to_be_bytes());
    let hl = usize::from(d[0] & 0x0f) * 4;
    let first = u16::from_be_bytes([d[6], d[7]]) & 0x1fff == 0;
    if hl < ipv4::HEADER_LEN || !first {
        return;
    }
    let at = match d[9] {
        17 => hl + 6,
        6 => hl + 16,
        _ => return,
    };
    if d.len() < at + 2 {
        return;
    }
    let old_c = u16::from_be_bytes([d[at], d[at + 1]]);
    if d[9] == 17 && old_c == 0 {
        return;
    }
    let mut c = update(old_c);
    // RFC 768: a computed 0 is sent as all ones.
    if d[9] == 17 && c == 0 {
        c = 0xffff;
    }
    d[at..at + 2].copy_from_slice(&c.to_be_bytes());
}

/// How datagrams are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Pace {
    /// One every interval (zero: back to back, through the general loop).
    Every(Duration),
    /// No pacing, the flood loop.
    Flood,
}

/// The receive sockets of `--listen`.
struct Listener {
    icmp: RawIcmpSocket,
    udp: Option<RawIpSocket>,
    matcher: Matcher,
}

impl Listener {
    fn open(plan: &Plan, flood: bool) -> Result<Listener, NetError> {
        let icmp = RawIcmpSocket::open()?;
        // Replies to queries and the error types; never the requests themselves.
        icmp.set_icmp_type_filter(&[0, 3, 4, 5, 11, 12, 14, 16, 18])?;
        icmp.drain()?;
        icmp.set_nonblocking(true)?;
        let udp = match plan.meta.transport {
            SentTransport::Udp { .. } => {
                let s = RawIpSocket::open(17)?;
                s.drain()?;
                s.set_nonblocking(true)?;
                Some(s)
            }
            _ => None,
        };
        if flood {
            let _ = icmp.set_recv_buffer(4 << 20);
            if let Some(u) = &udp {
                let _ = u.set_recv_buffer(4 << 20);
            }
        }
        Ok(Listener {
            icmp,
            udp,
            matcher: Matcher::new(plan.meta),
        })
    }

    fn fds(&self) -> Vec<BorrowedFd<'_>> {
        let mut v = vec![self.icmp.as_fd()];
        if let Some(u) = &self.udp {
            v.push(u.as_fd());
        }
        v
    }
}

/// Why the send loop stopped early.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// Ctrl-C, SIGTERM, or stdout closed.
    Interrupted,
    /// A send failed in a way every later send would too.
    Fatal,
}

struct Driver {
    plan: Plan,
    run: RunArgs,
    replay: bool,
    pace: Pace,
    count: Option<u64>,
    out: Out,
    tx: HdrInclSender,
    listener: Option<Listener>,
    pcap: Option<PcapWriter<BufWriter<std::fs::File>>>,
    interrupt: Arc<AtomicBool>,
    rng: Rng,
    buf: Vec<u8>,
    rxbuf: Vec<u8>,
    order: Vec<usize>,
    /// Whole datagrams (repetitions) started.
    reps: u64,
    /// Datagrams on the wire (fragments count one each).
    datagrams: u64,
    bytes: u64,
    errors: u64,
    replies: u64,
    reported: Vec<i32>,
    send_times: Vec<(u64, SystemTime)>,
    start: Instant,
}

impl Driver {
    fn start(plan: Plan, run: RunArgs, replay: bool, rng: Rng) -> Result<Driver, i32> {
        let fail = |e: &dyn std::fmt::Display| {
            warn(e);
            EXIT_ERROR
        };
        let pace = if run.flood {
            Pace::Flood
        } else if let Some(r) = run.rate {
            Pace::Every(Duration::from_secs_f64(1.0 / r))
        } else {
            Pace::Every(run.interval.unwrap_or(if replay {
                Duration::ZERO
            } else {
                Duration::from_secs(1)
            }))
        };
        let count = run.count.or(if run.flood { None } else { Some(1) });
        let tx = HdrInclSender::open().map_err(|e| fail(&open_error(e)))?;
        let fast = pace == Pace::Flood || pace == Pace::Every(Duration::ZERO);
        if fast {
            let _ = tx.set_send_buffer(4 << 20);
        }
        let listener = match run.listen {
            None => None,
            Some(_) => Some(Listener::open(&plan, fast).map_err(|e| fail(&open_error(e)))?),
        };
        let pcap = match &run.pcap {
            None => None,
            Some(p) => Some(PcapWriter::create(p, LinkType::RawIpv4).map_err(|e| fail(&e))?),
        };
        // Sockets open: nothing else needs a privilege (DESIGN: drop them all).
        if (privilege::effective_caps().unwrap_or(0) != 0 || privilege::is_root())
            && let Err(e) = privilege::drop_all_capabilities()
            && run.verbose
        {
            warn(format!("could not drop capabilities: {e}"));
        }
        let interrupt = Arc::new(AtomicBool::new(false));
        let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&interrupt));
        let _ = signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&interrupt));
        let listening = listener.is_some();
        Ok(Driver {
            buf: vec![0u8; plan.max_len().max(ipv4::HEADER_LEN)],
            rxbuf: vec![0u8; 65_536],
            order: Vec::with_capacity(plan.pieces.len()),
            send_times: if listening {
                vec![(u64::MAX, SystemTime::UNIX_EPOCH); RTT_RING]
            } else {
                Vec::new()
            },
            out: Out::new("send", run.json),
            plan,
            replay,
            pace,
            count,
            tx,
            listener,
            pcap,
            interrupt,
            rng,
            reps: 0,
            datagrams: 0,
            bytes: 0,
            errors: 0,
            replies: 0,
            reported: Vec::new(),
            start: Instant::now(),
            run,
        })
    }

    fn interrupted(&self) -> bool {
        self.interrupt.load(Ordering::Relaxed) || self.out.is_broken()
    }

    fn run(&mut self) -> i32 {
        let stop = match self.pace {
            Pace::Flood if self.is_bare_flood() => self.bare_flood(),
            _ => self.paced(),
        };
        if stop != Some(Stop::Fatal) && !self.interrupted() {
            self.listen_after();
        }
        self.finish()
    }

    /// True when nothing but `sendto` has to happen per datagram.
    fn is_bare_flood(&self) -> bool {
        self.listener.is_none()
            && self.pcap.is_none()
            && !self.run.verbose
            && self.plan.pieces.len() == 1
            && !self.replay
    }

    /// The flood loop: copy, patch, send; the signal flag every few datagrams.
    fn bare_flood(&mut self) -> Option<Stop> {
        let constant = self.plan.is_constant();
        let dst = self.plan.meta.dst;
        let mut k = 0u64;
        while self.count.is_none_or(|c| k < c) {
            if k % FLOOD_CHECK_EVERY == 0 && self.interrupted() {
                return Some(Stop::Interrupted);
            }
            let result = if constant {
                self.tx.send_to(&self.plan.pieces[0], dst)
            } else {
                let n = self.plan.piece_into(k, 0, &mut self.buf);
                self.tx.send_to(&self.buf[..n], dst)
            };
            k += 1;
            self.reps = k;
            match result {
                Ok(n) => {
                    self.datagrams += 1;
                    self.bytes += n as u64;
                }
                Err(e) => {
                    if self.on_send_error(e, k - 1, 0) {
                        return Some(Stop::Fatal);
                    }
                }
            }
        }
        None
    }

    /// The general loop: pacing on a monotonic clock, replies read between datagrams.
    fn paced(&mut self) -> Option<Stop> {
        let interval = match self.pace {
            Pace::Every(d) => d,
            Pace::Flood => Duration::ZERO,
        };
        let origin = Instant::now();
        let mut k = 0u64;
        while self.count.is_none_or(|c| k < c) {
            if self.interrupted() {
                return Some(Stop::Interrupted);
            }
            if k > 0 && !interval.is_zero() {
                let due = origin + interval.mul_f64(k as f64);
                self.wait_until(due);
                if self.interrupted() {
                    return Some(Stop::Interrupted);
                }
            }
            if self.send_repetition(k) {
                return Some(Stop::Fatal);
            }
            k += 1;
            let check = interval.is_zero() && k % FLOOD_CHECK_EVERY != 0;
            if self.listener.is_some() && !check {
                self.receive_ready();
            }
        }
        None
    }

    /// Sends every piece of repetition `k`; true on a fatal error.
    fn send_repetition(&mut self, k: u64) -> bool {
        self.reps = k + 1;
        self.plan.order_into(&mut self.rng, &mut self.order);
        let stamp = self.listener.is_some()
            || self.pcap.is_some()
            || self.run.verbose
            || self.out.wants_events() && self.pace != Pace::Flood;
        for j in 0..self.order.len() {
            let i = self.order[j];
            let n = self.plan.piece_into(k, i, &mut self.buf);
            let dst = if self.replay && n >= ipv4::HEADER_LEN {
                Ipv4Addr::new(self.buf[16], self.buf[17], self.buf[18], self.buf[19])
            } else {
                self.plan.meta.dst
            };
            let t = if stamp { Some(SystemTime::now()) } else { None };
            match self.tx.send_to(&self.buf[..n], dst) {
                Ok(_) => {
                    self.datagrams += 1;
                    self.bytes += n as u64;
                    if let Some(t) = t {
                        self.after_send(k, j, n, t);
                    }
                }
                Err(e) => {
                    if self.on_send_error(e, k, n) {
                        return true;
                    }
                }
            }
        }
        false
    }

    /// Records and reports one datagram that went out.
    fn after_send(&mut self, k: u64, j: usize, n: usize, t: SystemTime) {
        if !self.send_times.is_empty() {
            self.send_times[(k % RTT_RING as u64) as usize] = (k, t);
        }
        let d = &self.buf[..n];
        if let Some(w) = self.pcap.as_mut()
            && let Err(e) = w.write_packet(t, d, n)
        {
            warn(e);
            self.pcap = None;
            self.errors += 1;
        }
        let events = self.out.wants_events() && (self.pace != Pace::Flood || self.run.verbose);
        if !self.run.verbose && !events {
            return;
        }
        let summary = display::summary(d);
        if self.run.verbose {
            self.out.text(&format!("sent: {summary}\n"));
        }
        if events {
            let ident = u16::from_be_bytes([d[4], d[5]]);
            self.out.event(
                "sent",
                json!({
                    "index": k + 1,
                    "fragment": self.plan.fragmented.then_some(j + 1),
                    "bytes": n, "ip_id": ident, "summary": summary,
                }),
            );
        }
    }

    /// Handles a failed `sendto` of repetition `k`; returns true when the loop must stop.
    fn on_send_error(&mut self, e: NetError, k: u64, len: usize) -> bool {
        self.errors += 1;
        let errno = e.raw_os_error().unwrap_or(0);
        let fatal = !self.replay && !matches!(errno, libc::ENOBUFS | libc::EAGAIN | libc::EINTR);
        let text = match &e {
            NetError::MessageTooLong { len: l, .. } => {
                let dst = if self.replay && len >= ipv4::HEADER_LEN {
                    Ipv4Addr::new(self.buf[16], self.buf[17], self.buf[18], self.buf[19])
                } else {
                    self.plan.meta.dst
                };
                self.too_long_text(l.unwrap_or(len).max(len), dst)
            }
            _ if errno == libc::EINVAL => "sendto: the kernel refused the datagram (EINVAL): \
                 Linux sends an IP_HDRINCL datagram only when it has at least 20 bytes and its \
                 IHL is 5 or more and within its length; look at it with --dry-run"
                .to_string(),
            other => format!("sendto: {other}"),
        };
        let text = if self.replay {
            format!("datagram {}: {text}", k + 1)
        } else {
            text
        };
        if self.replay || !self.reported.contains(&errno) {
            self.reported.push(errno);
            warn(&text);
            self.out
                .event("error", json!({ "index": k + 1, "error": text }));
        }
        fatal
    }

    fn too_long_text(&self, len: usize, dst: Ipv4Addr) -> String {
        let mtu = route::path_mtu(dst, None).ok();
        let hl = Ipv4Packet::new_unchecked(&self.plan.pieces[0][..])
            .header_len()
            .clamp(ipv4::HEADER_LEN, ipv4::MAX_HEADER_LEN);
        let mut text = format!("datagram of {len} bytes");
        if let Some(m) = mtu {
            text.push_str(&format!(
                " is larger than the MTU ({m}) of the route to {dst}"
            ));
        } else {
            text.push_str(" is larger than the MTU of the route");
        }
        text.push_str(": the kernel never fragments IP_HDRINCL datagrams (EMSGSIZE)");
        let fit = mtu.map(|m| (m as usize).saturating_sub(hl) / 8 * 8);
        match (self.replay, self.plan.fragmented, fit) {
            (true, _, _) => {}
            (false, false, Some(f)) if f >= 8 => text.push_str(&format!(": add --fragment {f}")),
            (false, true, Some(f)) if f >= 8 => {
                text.push_str(&format!(": use a smaller --fragment (at most {f})"))
            }
            _ => text.push_str(": send it as fragments with --fragment SIZE"),
        }
        text
    }

    /// Waits until `due`, reading replies meanwhile when listening.
    fn wait_until(&mut self, due: Instant) {
        loop {
            let now = Instant::now();
            if now >= due || self.interrupted() {
                return;
            }
            let wait = (due - now).min(Duration::from_millis(100));
            if self.listener.is_some() && wait >= Duration::from_millis(1) {
                self.poll(wait);
            } else {
                std::thread::sleep(wait);
                if self.listener.is_some() {
                    self.receive_ready();
                }
            }
        }
    }

    /// Waits up to `wait` for a receive socket to become readable, then reads.
    fn poll(&mut self, wait: Duration) {
        let Some(l) = &self.listener else {
            std::thread::sleep(wait);
            return;
        };
        let fds = l.fds();
        let mut ready = vec![false; fds.len()];
        match poll::poll_readable(&fds, Some(wait), &mut ready) {
            Ok(o) if o.ready_count() > 0 => self.receive_ready(),
            Ok(_) => {}
            Err(e) => {
                warn(&e);
                std::thread::sleep(wait);
            }
        }
    }

    /// After the last datagram: up to `--listen` seconds for replies, less once every datagram
    /// has had one.
    fn listen_after(&mut self) {
        let Some(secs) = self.run.listen else {
            return;
        };
        let deadline = Instant::now() + secs;
        self.receive_ready();
        loop {
            let now = Instant::now();
            if now >= deadline || self.interrupted() || self.replies >= self.reps {
                return;
            }
            self.poll((deadline - now).min(Duration::from_millis(100)));
        }
    }

    /// Reads everything queued on the receive sockets, without blocking.
    fn receive_ready(&mut self) {
        for which in 0..2 {
            for _ in 0..4096 {
                let Some(l) = &self.listener else { return };
                let got = match which {
                    0 => l.icmp.recv(&mut self.rxbuf),
                    _ => match &l.udp {
                        Some(u) => u.recv(&mut self.rxbuf),
                        None => break,
                    },
                };
                let r = match got {
                    Ok(Some(r)) => r,
                    Ok(None) => break,
                    Err(e) => {
                        warn(&e);
                        break;
                    }
                };
                let d = &self.rxbuf[..r.len];
                if let Some(reply) = l.matcher.classify(d, self.reps) {
                    let t = r.kernel_time.unwrap_or_else(SystemTime::now);
                    self.on_reply(reply, r.len, t);
                }
            }
        }
    }

    fn on_reply(&mut self, reply: Reply, len: usize, t: SystemTime) {
        self.replies += 1;
        let d = &self.rxbuf[..len];
        let rtt_us = reply.index.and_then(|k| {
            let (kk, sent) = *self.send_times.get((k % RTT_RING as u64) as usize)?;
            (kk == k).then(|| t.duration_since(sent).map(|x| x.as_micros() as u64).ok())?
        });
        if let Some(w) = self.pcap.as_mut()
            && let Err(e) = w.write_packet(t, d, len)
        {
            warn(e);
            self.pcap = None;
            self.errors += 1;
        }
        let summary = display::summary(d);
        let rtt = rtt_us.map(|us| format!(", rtt {} ms", super::super::probe::stats::ms3(us)));
        self.out
            .text(&format!("reply: {summary}{}\n", rtt.unwrap_or_default()));
        if self.out.is_json() {
            let mpls: Vec<_> = reply
                .mpls
                .iter()
                .map(|e| json!({"label": e.label, "tc": e.tc, "s": e.bottom, "ttl": e.ttl}))
                .collect();
            self.out.event(
                "reply",
                json!({
                    "kind": reply.kind.name(), "from": reply.from.to_string(),
                    "bytes": len, "ttl": reply.ttl,
                    "type": reply.icmp.map(|x| x.0), "code": reply.icmp.map(|x| x.1),
                    "index": reply.index.map(|k| k + 1),
                    "rtt_ms": rtt_us.map(ms_f64), "mpls": mpls, "summary": summary,
                }),
            );
        }
    }

    fn finish(&mut self) -> i32 {
        let elapsed = self.start.elapsed();
        let code = if self.errors > 0 {
            EXIT_ERROR
        } else if self.run.listen.is_some() && self.replies == 0 {
            1
        } else {
            0
        };
        self.out.text(&format!(
            "{} datagrams ({} bytes) sent, {} errors, {} replies\n",
            self.datagrams, self.bytes, self.errors, self.replies
        ));
        let secs = elapsed.as_secs_f64();
        self.out.event(
            "summary",
            json!({
                "datagrams": self.datagrams, "bytes": self.bytes, "errors": self.errors,
                "replies": self.replies, "time_ms": elapsed.as_millis() as u64,
                "pps": if secs > 0.0 { (self.datagrams as f64 / secs).round() } else { 0.0 },
                "dry_run": false, "exit": code,
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

/// The message for a socket that could not be opened.
fn open_error(e: NetError) -> String {
    if e.is_permission() {
        "rawkit send needs CAP_NET_RAW for its raw sockets: run as root, or setcap \
         cap_net_raw+ep on the binary; --dry-run needs no privileges"
            .into()
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::builder::Ipv4Builder;
    use crate::packet::udp::UdpPacket;

    #[test]
    fn rewriting_the_destination_keeps_checksums_right_and_wrong_ones_wrong() {
        let a = Ipv4Addr::new(127, 0, 0, 1);
        let b = Ipv4Addr::new(198, 18, 7, 9);
        let mut buf = vec![0u8; 64];
        let n = Ipv4Builder::new(a, a)
            .ident(3)
            .udp(1000, 2000, b"hello")
            .emit(&mut buf)
            .unwrap();
        let mut d = buf[..n].to_vec();
        rewrite_dst(&mut d, b);
        let ip = Ipv4Packet::new_checked(&d[..]).unwrap();
        assert_eq!(ip.dst_addr(), b);
        assert!(ip.verify_checksum());
        assert!(
            UdpPacket::new_checked(ip.payload())
                .unwrap()
                .verify_checksum(a, b)
        );
        // No UDP checksum stays none.
        let n = Ipv4Builder::new(a, a)
            .udp(1, 2, b"x")
            .udp_checksum(crate::packet::builder::UdpChecksum::None)
            .emit(&mut buf)
            .unwrap();
        let mut d = buf[..n].to_vec();
        rewrite_dst(&mut d, b);
        assert_eq!(&d[26..28], &[0, 0]);
        // A wrong header checksum stays wrong.
        let n = Ipv4Builder::new(a, a)
            .checksum(0x1234)
            .raw(b"x")
            .emit(&mut buf)
            .unwrap();
        let mut d = buf[..n].to_vec();
        rewrite_dst(&mut d, b);
        assert!(!Ipv4Packet::new_checked(&d[..]).unwrap().verify_checksum());
        // Garbage never panics.
        for len in 0..30 {
            let mut g = vec![0x4f; len];
            rewrite_dst(&mut g, b);
        }
    }
}

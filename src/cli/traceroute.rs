//! `rawkit traceroute`: the Linux traceroute's flags and output, on probes rawkit builds itself.
//!
//! The driver: validate the arguments into a [`TraceConfig`] ([`engine_config`]), resolve the
//! target, open the sockets (an `IP_HDRINCL` sender for the probes rawkit builds, a raw ICMP
//! socket behind a BPF filter for the replies, and for UDP probes a UDP socket whose
//! kernel-chosen port is the probes' source port, which keeps it ours and catches UDP replies),
//! drop every capability, then run the [`TraceSession`] engine against the clock and the
//! sockets. Hop lines are printed in order as they complete; reverse names come from worker
//! threads (module `names`) and never hold up the probes or their round-trip times.
//!
//! Exit status: 0 when the destination answered, 1 when it did not (out of hops, an
//! unreachable, interrupted), 2 on errors (bad input, no privilege, I/O).

mod names;
mod wire;

use super::EXIT_ERROR;
use super::args::{byte_dec_or_hex, int_in};
use super::output::{Out, warn};
use crate::cli::icmp_io::{SendError, send_fragments};
use crate::cli::random_u64;
use crate::net::NetError;
use crate::net::filter::BpfProgram;
use crate::net::poll;
use crate::net::privilege;
use crate::net::resolve;
use crate::net::route;
use crate::net::socket::{HdrInclSender, PmtuMode, RawIcmpSocket};
use crate::pcap::{LinkType, PcapWriter};
use crate::probe::trace::{
    Accepted, DEFAULT_PACKET_LEN, Event, ExtObject, Flow, HEADERS_LEN, HopReport, LocalError,
    MAX_PACKET_LEN, MAX_QUERIES, Method, Next, ProbeEcho, ProbeSpec, RenderOptions, Reply,
    ReplyKind, TraceConfig, TraceSession, WaitSpec, extensions_text, header_line, render_hop,
};
use clap::Args;
use names::{NAME_GRACE, Names};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};
use wire::{DecodeContext, ProbeTemplate};

/// `rawkit traceroute [OPTIONS] HOST [PACKET_LEN]`
#[derive(Debug, Clone, Args)]
#[command(
    about = "Print the route packets take to a host, as the Linux traceroute does",
    after_help = "Exit status: 0 if the destination answered, 1 if it did not, 2 on errors.\n\
                  Needs CAP_NET_RAW (root, or setcap cap_net_raw+ep): see capabilities.md."
)]
pub struct TracerouteArgs {
    /// Host name or IPv4 address to trace.
    #[arg(value_name = "HOST")]
    pub host: String,

    /// Total probe size in bytes, IPv4 header included (default 60, 65000 with --mtu; sizes
    /// below the headers grow to them).
    #[arg(value_name = "PACKET_LEN", allow_negative_numbers = true, value_parser = |s: &str| int_in::<usize>(s, 0, MAX_PACKET_LEN))]
    pub packet_len: Option<usize>,

    /// Start from this TTL (default 1).
    #[arg(short = 'f', long = "first", value_name = "FIRST_TTL", allow_negative_numbers = true, value_parser = |s: &str| int_in::<u8>(s, 1, 255))]
    pub first_ttl: Option<u8>,

    /// The largest TTL (hops) to probe.
    #[arg(short = 'm', long = "max-hops", value_name = "MAX_TTL", default_value_t = 30, allow_negative_numbers = true, value_parser = |s: &str| int_in::<u8>(s, 1, 255))]
    pub max_ttl: u8,

    /// Probes per hop.
    #[arg(short = 'q', long = "queries", value_name = "NQUERIES", default_value_t = 3, allow_negative_numbers = true, value_parser = |s: &str| int_in::<u8>(s, 1, MAX_QUERIES))]
    pub queries: u8,

    /// Probes in flight at once (all TTLs).
    #[arg(short = 'N', long = "sim-queries", value_name = "SQUERIES", default_value_t = 16, allow_negative_numbers = true, value_parser = |s: &str| int_in::<u16>(s, 1, u16::MAX))]
    pub sim_queries: u16,

    /// Wait MAX seconds at most for a probe; or HERE times the round trip of a reply from the
    /// same hop, or NEAR times that of a later hop (default 5,3,10).
    #[arg(short = 'w', long = "wait", value_name = "MAX,HERE,NEAR", allow_negative_numbers = true, value_parser = WaitSpec::parse)]
    pub wait: Option<WaitSpec>,

    /// Least time between probes: seconds, or milliseconds when 10 or more.
    #[arg(short = 'z', long = "sendwait", value_name = "SENDWAIT", allow_negative_numbers = true, value_parser = parse_sendwait)]
    pub sendwait: Option<Duration>,

    /// UDP: first destination port (33434, one more per probe); -U: the port (53); -I: the
    /// first sequence number (1).
    #[arg(short = 'p', long = "port", value_name = "PORT", allow_negative_numbers = true, value_parser = |s: &str| int_in::<u16>(s, 0, u16::MAX))]
    pub port: Option<u16>,

    /// IPv4 TOS byte, decimal or 0x hex.
    #[arg(short = 't', long = "tos", value_name = "TOS", value_parser = byte_dec_or_hex)]
    pub tos: Option<u8>,

    /// Source address (an address of this host).
    #[arg(short = 's', long = "source", value_name = "SRC_ADDR", value_parser = parse_source)]
    pub source: Option<Ipv4Addr>,

    /// Send through this interface.
    #[arg(short = 'i', long = "interface", value_name = "DEVICE")]
    pub interface: Option<String>,

    /// Numeric output: no reverse name lookups.
    #[arg(short = 'n')]
    pub numeric: bool,

    /// ICMP echo probes.
    #[arg(short = 'I', long = "icmp", conflicts_with = "udp")]
    pub icmp: bool,

    /// UDP probes to one fixed port (53 unless -p).
    #[arg(short = 'U', long = "udp")]
    pub udp: bool,

    /// Set Don't Fragment.
    #[arg(short = 'F', long = "dont-fragment")]
    pub dont_fragment: bool,

    /// Show ICMP extensions (RFC 4884), MPLS label stacks (RFC 4950) parsed.
    #[arg(short = 'e', long = "extensions")]
    pub extensions: bool,

    /// Discover the path MTU (implies -F -N 1; prints F=NUM where it changes).
    #[arg(long)]
    pub mtu: bool,

    /// Print the number of backward hops when it differs from the forward one.
    #[arg(long)]
    pub back: bool,

    /// Paris traceroute: keep the flow identity (addresses, protocol, ports, ICMP checksum)
    /// constant so that per-flow load balancers keep one path.
    #[arg(long)]
    pub paris: bool,

    /// IPv4 (the only family rawkit traces; accepted for compatibility).
    #[arg(short = '4', hide = true)]
    pub ipv4: bool,

    /// JSON Lines on stdout instead of text (one event per line; see README).
    #[arg(long)]
    pub json: bool,

    /// Also write probes and replies to this pcap file.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
}

/// `-z`: seconds, or milliseconds when 10 or more (as the Linux traceroute).
fn parse_sendwait(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| "not a number (seconds, or milliseconds when 10 or more)".to_string())?;
    if !v.is_finite() || v < 0.0 {
        return Err("must be 0 or more".into());
    }
    let secs = if v >= 10.0 { v / 1000.0 } else { v };
    if secs > 86_400.0 {
        return Err("must be at most a day".into());
    }
    Ok(Duration::from_secs_f64(secs))
}

fn parse_source(s: &str) -> Result<Ipv4Addr, String> {
    s.trim()
        .parse()
        .map_err(|_| "not an IPv4 address (e.g. 198.18.1.1)".to_string())
}

/// The probing method the flags choose.
pub fn method_of(a: &TracerouteArgs) -> Method {
    if a.icmp {
        Method::Icmp
    } else if a.udp {
        Method::UdpFixed
    } else {
        Method::Udp
    }
}

/// Validates the arguments into the engine's configuration (no resolution, no I/O).
pub fn engine_config(a: &TracerouteArgs) -> Result<TraceConfig, String> {
    let first = a.first_ttl.unwrap_or(1);
    if first > a.max_ttl {
        return Err(format!(
            "first hop out of range: -f {first} is above the max hops ({}); -f must be at most -m",
            a.max_ttl
        ));
    }
    let paris_room = if a.paris { 2 } else { 0 };
    let default_len = if a.mtu {
        MAX_PACKET_LEN
    } else {
        DEFAULT_PACKET_LEN
    };
    let packet_len = a
        .packet_len
        .unwrap_or(default_len)
        .max(HEADERS_LEN + paris_room);
    Ok(TraceConfig {
        first_ttl: first,
        max_ttl: a.max_ttl,
        queries: a.queries,
        sim_queries: if a.mtu { 1 } else { a.sim_queries },
        wait: a.wait.unwrap_or_default(),
        send_wait: a.sendwait.unwrap_or(Duration::ZERO),
        flow: Flow::new(method_of(a), a.port, a.paris),
        packet_len,
        mtu_discovery: a.mtu,
    })
}

/// Runs `rawkit traceroute`; returns the exit status.
pub fn run(args: TracerouteArgs) -> i32 {
    let cfg = match engine_config(&args) {
        Ok(c) => c,
        Err(e) => {
            warn(e);
            return EXIT_ERROR;
        }
    };
    match Driver::start(args, cfg) {
        Ok(mut d) => d.run(),
        Err(code) => code,
    }
}

/// How a send went.
enum Sent {
    /// Out (or answered locally): ask the engine what next.
    Done,
    /// A full buffer: try again a little later.
    Retry,
}

/// A complete hop waiting for the names of its addresses.
struct Line {
    hop: HopReport,
    ready: Instant,
}

struct Driver {
    a: TracerouteArgs,
    session: TraceSession,
    out: Out,
    rx: RawIcmpSocket,
    tx: HdrInclSender,
    udp: Option<UdpSocket>,
    template: ProbeTemplate,
    ctx: DecodeContext,
    names: Names,
    pcap: Option<PcapWriter<std::io::BufWriter<std::fs::File>>>,
    start: Instant,
    start_sys: SystemTime,
    interrupt: Arc<AtomicBool>,
    buf: Vec<u8>,
    rxbuf: Vec<u8>,
    lines: VecDeque<Line>,
    /// The MTU of the way out, once a send was refused as too long.
    out_mtu: Option<u32>,
    render: RenderOptions,
}

impl Driver {
    fn start(a: TracerouteArgs, mut cfg: TraceConfig) -> Result<Driver, i32> {
        let fail = |e: &dyn std::fmt::Display| {
            warn(e);
            EXIT_ERROR
        };
        let device = a.interface.clone().filter(|d| !d.is_empty());
        if let Some(d) = &device
            && !route::interface_exists(d)
        {
            return Err(fail(&format!(
                "-i {d}: no such interface (list them with `ip link`)"
            )));
        }
        let resolved = resolve::resolve_ipv4(&a.host).map_err(|e| fail(&e))?;
        let target = resolved.addr;
        if target.is_broadcast() || target.is_multicast() || target.is_unspecified() {
            return Err(fail(&format!(
                "{target}: broadcast, multicast and unspecified targets are not supported"
            )));
        }
        let source = match a.source {
            Some(s) => {
                route::check_local_source(s).map_err(|e| fail(&format!("-s {s}: {e}")))?;
                s
            }
            None => route::source_for(target, device.as_deref()).map_err(|e| fail(&e))?,
        };
        let method = cfg.flow.method;
        let r = random_u64();
        cfg.flow.ip_id_base = ((r >> 16) as u16 % 0xe000) + 1;
        cfg.flow.icmp_checksum = (r >> 32) as u16 | 1;
        let privileged = |e: NetError| {
            if e.is_permission() {
                fail(
                    &"traceroute needs CAP_NET_RAW (it sends the probes it builds through \
                        IP_HDRINCL and reads replies on a raw ICMP socket): run as root, or \
                        setcap cap_net_raw+ep on the binary",
                )
            } else {
                fail(&e)
            }
        };
        let rx = RawIcmpSocket::open().map_err(privileged)?;
        let tx = HdrInclSender::open().map_err(privileged)?;
        // UDP probes leave from a port the kernel gave a socket of ours: nobody else gets it,
        // and UDP answers from the destination land there.
        let (udp, port_or_ident) = if method.is_udp() {
            let s = UdpSocket::bind((source, 0))
                .map_err(|e| fail(&format!("bind UDP source port on {source}: {e}")))?;
            let port = s
                .local_addr()
                .map_err(|e| fail(&format!("getsockname: {e}")))?
                .port();
            s.set_nonblocking(true)
                .map_err(|e| fail(&format!("fcntl(O_NONBLOCK): {e}")))?;
            (Some(s), port)
        } else {
            (None, (r >> 48) as u16)
        };
        let configure = || -> Result<(), NetError> {
            let (types, filter): (&[u8], BpfProgram) = match method {
                Method::Icmp => (
                    &[0, 3, 4, 5, 11, 12],
                    BpfProgram::icmp_echo_reply_ident(port_or_ident),
                ),
                Method::Udp | Method::UdpFixed => (
                    &[3, 4, 5, 11, 12],
                    BpfProgram::icmp_errors_quoting_udp(port_or_ident),
                ),
            };
            rx.set_icmp_type_filter(types)?;
            rx.attach_filter(&filter)?;
            rx.drain()?;
            if let Some(d) = device.as_deref() {
                rx.bind_device(d)?;
                tx.bind_device(d)?;
            }
            // As the Linux traceroute (IP_PMTUDISC_PROBE with -F): a DF probe leaves whenever
            // it fits the interface, whatever path MTU the kernel learnt, so that the router
            // that cannot forward it is the one that answers.
            tx.set_mtu_discover(PmtuMode::Probe)?;
            rx.set_nonblocking(true)
        };
        configure().map_err(|e| fail(&e))?;
        let pcap = match &a.pcap {
            None => None,
            Some(p) => Some(PcapWriter::create(p, LinkType::RawIpv4).map_err(|e| fail(&e))?),
        };
        // Sockets open: nothing else needs a privilege (DESIGN: trippy-privilege). No other
        // thread exists yet (the name resolvers start later), so dropping them for this thread
        // drops them for the process.
        if privilege::effective_caps().unwrap_or(0) != 0 || privilege::is_root() {
            let _ = privilege::drop_thread_capabilities();
        }
        let interrupt = Arc::new(AtomicBool::new(false));
        let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&interrupt));
        let _ = signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&interrupt));

        let numeric = a.numeric;
        let mut out = Out::new("traceroute", a.json);
        let packet_len = cfg.packet_len;
        out.text_later(&header_line(&a.host, target, cfg.max_ttl, packet_len));
        out.text_later("\n");
        let w = cfg.wait;
        out.event(
            "start",
            json!({
                "target": a.host, "addr": target.to_string(), "source": source.to_string(),
                "first_ttl": cfg.first_ttl, "max_hops": cfg.max_ttl, "queries": cfg.queries,
                "sim_queries": cfg.sim_queries, "packet_len": packet_len,
                "method": match method { Method::Udp => "udp", Method::UdpFixed => "udp-fixed", Method::Icmp => "icmp" },
                "paris": cfg.flow.paris, "port": cfg.flow.port,
                "src_port": method.is_udp().then_some(port_or_ident),
                "ident": (method == Method::Icmp).then_some(port_or_ident),
                "wait": {"max_s": w.max.as_secs_f64(), "here": w.here, "near": w.near},
            }),
        );
        let template = ProbeTemplate {
            src: source,
            dst: target,
            method,
            port_or_ident,
            tos: a.tos.unwrap_or(0),
            dont_frag: a.dont_fragment || a.mtu,
        };
        let ctx = DecodeContext {
            method,
            port_or_ident,
            source,
            target,
        };
        let render = RenderOptions {
            extensions: a.extensions,
            back: a.back,
        };
        Ok(Driver {
            session: TraceSession::new(cfg),
            out,
            rx,
            tx,
            udp,
            template,
            ctx,
            names: Names::new(numeric, resolve::reverse_name),
            pcap,
            start: Instant::now(),
            start_sys: SystemTime::now(),
            interrupt,
            buf: vec![0u8; MAX_PACKET_LEN + 64],
            rxbuf: vec![0u8; 65_536],
            lines: VecDeque::new(),
            out_mtu: None,
            render,
            a,
        })
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// A kernel receive time on the session clock.
    fn at(&self, kernel: Option<SystemTime>) -> Duration {
        kernel
            .and_then(|t| t.duration_since(self.start_sys).ok())
            .unwrap_or_else(|| self.now())
    }

    fn run(&mut self) -> i32 {
        loop {
            if self.interrupt.load(Ordering::Relaxed) {
                self.session.interrupt();
            }
            if self.out.is_broken() {
                return 0;
            }
            let now = self.now();
            if self.session.expiry_due(now) {
                // Read what is queued before anything expires: an answer that came in time is
                // never lost to a late wake-up.
                if let Err(e) = self.receive_raw() {
                    warn(e);
                    return EXIT_ERROR;
                }
                self.receive_udp();
            }
            match self.session.next(now) {
                Next::Finish => break,
                Next::Send(spec) => match self.send(spec) {
                    Ok(Sent::Done) => {}
                    Ok(Sent::Retry) => {
                        if let Err(e) = self.wait_and_receive(now + Duration::from_millis(1)) {
                            warn(e);
                            return EXIT_ERROR;
                        }
                    }
                    Err(e) => {
                        warn(e);
                        return EXIT_ERROR;
                    }
                },
                Next::WaitUntil(t) => {
                    self.take_events();
                    self.print_ready(false);
                    if let Err(e) = self.wait_and_receive(t) {
                        warn(e);
                        return EXIT_ERROR;
                    }
                }
            }
        }
        self.take_events();
        self.finish_lines();
        self.finish()
    }

    /// Builds and sends one probe.
    fn send(&mut self, spec: ProbeSpec) -> Result<Sent, String> {
        let n = wire::build_probe(&self.template, &spec, &mut self.buf)
            .map_err(|e| format!("building probe: {e}"))?;
        let target = self.template.dst;
        if let Some(mtu) = self.out_mtu
            && n > mtu as usize
        {
            return self.send_too_long(spec, n, mtu);
        }
        let sent_at = self.now();
        let sent_sys = SystemTime::now();
        match self.tx.send_to(&self.buf[..n], target) {
            Ok(_) => {
                self.session.sent(spec.index, sent_at);
                if let Some(w) = self.pcap.as_mut() {
                    let _ = w.write_packet(sent_sys, &self.buf[..n], n);
                }
                self.event_sent(&spec, n);
                Ok(Sent::Done)
            }
            Err(NetError::MessageTooLong { .. }) => {
                // The kernel never fragments an IP_HDRINCL datagram: learn the MTU of the way
                // out and fragment (or, with DF, report it as the Linux traceroute does).
                let mtu = out_interface_mtu(self.template.src, self.a.interface.as_deref())
                    .or_else(|| route::path_mtu(target, self.a.interface.as_deref()).ok())
                    .unwrap_or(1500)
                    .min(n.saturating_sub(1) as u32)
                    .max(68);
                self.out_mtu = Some(mtu);
                self.send_too_long(spec, n, mtu)
            }
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ENOBUFS) | Some(libc::EAGAIN) | Some(libc::EINTR)
                ) =>
            {
                Ok(Sent::Retry)
            }
            Err(e) => Err(format!("sendto {target}: {e}")),
        }
    }

    /// A probe of `n` bytes over the MTU of the way out: with DF it is refused here (`!F-mtu`,
    /// or with `--mtu` a smaller size); without, rawkit fragments it (RFC 791).
    fn send_too_long(&mut self, spec: ProbeSpec, n: usize, mtu: u32) -> Result<Sent, String> {
        let sent_at = self.now();
        if self.template.dont_frag {
            self.session.sent(spec.index, sent_at);
            self.event_sent(&spec, n);
            let at = self.now();
            let acc = self
                .session
                .on_local_error(spec.index, at, LocalError::TooBig { mtu });
            self.out.event(
                "local_error",
                json!({ "ttl": spec.ttl, "probe": spec.probe + 1,
                        "error": format!("message too long, mtu={mtu}"), "mtu": mtu,
                        "new_packet_len": match acc { Accepted::Fresh { new_mtu, .. } => new_mtu, _ => None } }),
            );
            return Ok(Sent::Done);
        }
        let sent_sys = SystemTime::now();
        let pcap = &mut self.pcap;
        send_fragments(&self.tx, &self.buf[..n], self.template.dst, mtu, |piece| {
            if let Some(w) = pcap.as_mut() {
                let _ = w.write_packet(sent_sys, piece, piece.len());
            }
        })
        .map_err(|e| match e {
            SendError::TooLong(t) | SendError::Other(t) => t,
            SendError::Queued => String::new(),
        })?;
        self.session.sent(spec.index, sent_at);
        self.event_sent(&spec, n);
        Ok(Sent::Done)
    }

    fn event_sent(&mut self, spec: &ProbeSpec, bytes: usize) {
        if !self.out.wants_events() {
            return;
        }
        let f = spec.fields;
        let (port, seq) = match self.template.method {
            Method::Icmp => (None, Some(f.icmp_seq)),
            _ => (Some(f.dst_port), None),
        };
        self.out.event(
            "sent",
            json!({ "ttl": spec.ttl, "probe": spec.probe + 1, "bytes": bytes,
                    "dst_port": port, "seq": seq, "ip_id": f.ip_id,
                    "t_ms": ms(self.now()) }),
        );
    }

    /// Waits for replies (and names) until `until` on the session clock, then reads what came.
    fn wait_and_receive(&mut self, until: Duration) -> Result<(), NetError> {
        self.out.flush();
        let now = self.now();
        let mut wait = until.saturating_sub(now);
        if let Some(deadline) = self.print_deadline() {
            wait = wait.min(deadline.saturating_duration_since(Instant::now()));
        }
        let mut ready = [false; 3];
        let outcome = {
            let mut fds: Vec<BorrowedFd<'_>> = vec![self.rx.as_fd()];
            if let Some(u) = &self.udp {
                fds.push(u.as_fd());
            }
            if let Some(w) = self.names.wake_fd() {
                fds.push(w);
            }
            poll::poll_readable(&fds, Some(wait), &mut ready[..fds.len()])?
        };
        // Always read, even after a timeout: a reply that came in time is never expired.
        let _ = outcome;
        self.receive_raw()?;
        self.receive_udp();
        self.names.collect();
        Ok(())
    }

    fn receive_raw(&mut self) -> Result<(), NetError> {
        for _ in 0..4096 {
            let Some(r) = self.rx.recv(&mut self.rxbuf)? else {
                break;
            };
            let at = self.at(r.kernel_time);
            let Some(d) = wire::decode(&self.ctx, &self.rxbuf[..r.len]) else {
                continue;
            };
            if let Some(w) = self.pcap.as_mut() {
                let t = r.kernel_time.unwrap_or_else(SystemTime::now);
                let _ = w.write_packet(t, &self.rxbuf[..r.len], r.len);
            }
            let Some(index) = self.session.probe_for(&d.echo) else {
                continue;
            };
            let reply = Reply {
                from: d.from,
                at,
                kind: d.kind,
                reply_ttl: Some(d.reply_ttl),
                extensions: d.extensions,
            };
            self.accept(index, reply, d.icmp_type, d.code);
        }
        Ok(())
    }

    fn receive_udp(&mut self) {
        let Some(sock) = self.udp.as_ref() else {
            return;
        };
        let mut got = Vec::new();
        for _ in 0..256 {
            match sock.recv_from(&mut self.rxbuf) {
                Ok((_, std::net::SocketAddr::V4(from))) if *from.ip() == self.template.dst => {
                    got.push((*from.ip(), from.port()));
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
        for (from, port) in got {
            let index = match self.template.method {
                Method::Udp if !self.session.config().flow.paris => {
                    self.session.probe_for(&ProbeEcho {
                        dst_port: Some(port),
                        ..ProbeEcho::default()
                    })
                }
                _ => self.session.probe_for_unquoted(),
            };
            if let Some(index) = index {
                let reply = Reply {
                    from,
                    at: self.now(),
                    kind: ReplyKind::UdpReply,
                    reply_ttl: None,
                    extensions: Vec::new(),
                };
                self.accept(index, reply, 0, 0);
            }
        }
    }

    fn accept(&mut self, index: usize, reply: Reply, icmp_type: u8, code: u8) {
        let from = reply.from;
        let kind = reply.kind;
        let reply_ttl = reply.reply_ttl;
        let ext = if self.out.wants_events() {
            ext_json(&reply.extensions)
        } else {
            Value::Null
        };
        let accepted = self.session.on_reply(index, reply);
        self.names.request(from);
        if !self.out.wants_events() {
            return;
        }
        match accepted {
            Accepted::Fresh {
                ttl,
                probe,
                rtt,
                is_final,
                new_mtu,
                ..
            } => {
                let (event, kind_name) = match kind {
                    ReplyKind::EchoReply => ("reply", "echo_reply"),
                    ReplyKind::UdpReply => ("reply", "udp_reply"),
                    ReplyKind::TimeExceeded { .. } => ("icmp_error", "time_exceeded"),
                    ReplyKind::DstUnreachable { .. } => ("icmp_error", "dst_unreachable"),
                    ReplyKind::Other { .. } => ("icmp_error", "other"),
                };
                let mut v = json!({
                    "ttl": ttl, "probe": probe + 1, "from": from.to_string(),
                    "rtt_ms": ms(rtt), "reply_ttl": reply_ttl, "kind": kind_name,
                    "final": is_final,
                });
                if event == "icmp_error" {
                    v["type"] = json!(icmp_type);
                    v["code"] = json!(code);
                    if let ReplyKind::DstUnreachable { code: 4, mtu } = kind {
                        v["mtu"] = json!(mtu);
                    }
                    if let Some(m) = new_mtu {
                        v["new_packet_len"] = json!(m);
                    }
                    if let (Value::Object(e), Some(o)) = (ext, v.as_object_mut()) {
                        o.extend(e);
                    }
                }
                self.out.event(event, v);
            }
            Accepted::Late { ttl, probe, .. } => {
                self.out.event(
                    "late",
                    json!({ "ttl": ttl, "probe": probe + 1, "from": from.to_string() }),
                );
            }
            Accepted::Duplicate | Accepted::Foreign => {}
        }
    }

    /// Moves the engine's events to the output: timeouts as JSON, hops to the print queue.
    fn take_events(&mut self) {
        while let Some(e) = self.session.pop_event() {
            match e {
                Event::Timeout { ttl, probe } => {
                    self.out
                        .event("timeout", json!({ "ttl": ttl, "probe": probe + 1 }));
                }
                Event::Hop(hop) => {
                    for a in hop.addresses() {
                        self.names.request(a);
                    }
                    self.lines.push_back(Line {
                        hop,
                        ready: Instant::now(),
                    });
                }
            }
        }
    }

    /// When the first waiting line stops waiting for its names.
    fn print_deadline(&self) -> Option<Instant> {
        self.lines.front().map(|l| l.ready + NAME_GRACE)
    }

    /// Prints the lines whose names are known or overdue (all of them with `force`).
    fn print_ready(&mut self, force: bool) {
        self.names.collect();
        while let Some(line) = self.lines.front() {
            let settled = line
                .hop
                .addresses()
                .into_iter()
                .all(|a| self.names.settled(a));
            if !(force || settled || line.ready.elapsed() >= NAME_GRACE) {
                break;
            }
            let Some(line) = self.lines.pop_front() else {
                break;
            };
            self.print_line(&line.hop);
        }
    }

    fn print_line(&mut self, hop: &HopReport) {
        let names = &self.names;
        let text = render_hop(hop, self.render, &mut |a| names.text(a));
        self.out.text_later(&text);
        self.out.text_later("\n");
        if self.out.wants_events() {
            let probes: Vec<Value> = hop
                .probes
                .iter()
                .map(|p| {
                    let a = p.answer.as_ref();
                    let from = a.and_then(|a| a.from);
                    let mut v = json!({
                        "from": from.map(|f| f.to_string()),
                        "name": from.and_then(|f| names.name(f).map(str::to_string)),
                        "rtt_ms": a.map(|a| ms(a.rtt)),
                        "annotation": a.and_then(|a| a.annotation.map(|x| x.to_string())),
                        "note": p.note,
                        "reply_ttl": a.and_then(|a| a.reply_ttl),
                    });
                    if let (Some(a), Value::Object(o)) = (a, &mut v)
                        && let Value::Object(e) = ext_json(&a.extensions)
                    {
                        o.extend(e);
                    }
                    v
                })
                .collect();
            let addrs: Vec<String> = hop.addresses().iter().map(|a| a.to_string()).collect();
            self.out.event(
                "hop",
                json!({ "ttl": hop.ttl, "addresses": addrs, "probes": probes, "line": text }),
            );
        }
    }

    /// After the last probe: waits for the names of the remaining lines (each at most
    /// [`NAME_GRACE`] from when it was complete), then prints them.
    fn finish_lines(&mut self) {
        loop {
            self.print_ready(false);
            if self.lines.is_empty() || self.interrupt.load(Ordering::Relaxed) {
                break;
            }
            self.out.flush();
            let Some(deadline) = self.print_deadline() else {
                break;
            };
            let wait = deadline.saturating_duration_since(Instant::now());
            let Some(fd) = self.names.wake_fd() else {
                break;
            };
            let mut ready = [false];
            if poll::poll_readable(&[fd], Some(wait), &mut ready).is_err() {
                break;
            }
        }
        self.print_ready(true);
        self.out.flush();
    }

    fn finish(&mut self) -> i32 {
        let s = self.session.summary();
        let interrupted = self.interrupt.load(Ordering::Relaxed);
        let code = if s.reached { 0 } else { 1 };
        self.out.event(
            "summary",
            json!({
                "target": self.a.host, "addr": self.template.dst.to_string(),
                "reached": s.reached, "hops": s.last_ttl, "sent": s.sent,
                "answered": s.answered, "timeouts": s.timeouts, "late": s.late,
                "packet_len": self.session.packet_len(),
                "time_ms": ms(self.now()), "interrupted": interrupted, "exit": code,
            }),
        );
        self.out.flush();
        if let Some(w) = self.pcap.as_mut()
            && let Err(e) = w.flush()
        {
            warn(e);
            return EXIT_ERROR;
        }
        code
    }
}

/// The MTU of the interface probes leave by: `-i`, else the interface that holds the source
/// address (from `/proc/net/dev`, this network namespace's interfaces). With
/// `IP_PMTUDISC_PROBE` the kernel refuses a probe only when it exceeds this MTU, and this is
/// what the Linux traceroute reports (`F=1500`, `!F-1500`), whatever path MTU was learnt.
fn out_interface_mtu(source: Ipv4Addr, device: Option<&str>) -> Option<u32> {
    if let Some(d) = device {
        return route::interface_mtu(d).ok();
    }
    let list = std::fs::read_to_string("/proc/net/dev").ok()?;
    list.lines()
        .filter_map(|l| Some(l.split_once(':')?.0.trim()))
        .find(|name| route::interface_ipv4(name).ok().flatten() == Some(source))
        .and_then(|name| route::interface_mtu(name).ok())
}

/// Milliseconds with microsecond precision, as a JSON number.
fn ms(d: Duration) -> f64 {
    (d.as_micros() as f64) / 1000.0
}

/// The extensions as JSON fields: `mpls` (a list of label stack entries) and `extensions`
/// (every object, and the text `-e` prints).
fn ext_json(ext: &[ExtObject]) -> Value {
    if ext.is_empty() {
        return Value::Null;
    }
    let mpls: Vec<Value> = ext
        .iter()
        .filter_map(|o| match o {
            ExtObject::Mpls(e) => Some(e),
            ExtObject::Other { .. } => None,
        })
        .flatten()
        .map(|e| json!({ "label": e.label, "tc": e.tc, "s": e.bottom, "ttl": e.ttl }))
        .collect();
    let objects: Vec<Value> = ext
        .iter()
        .map(|o| match o {
            ExtObject::Mpls(e) => json!({ "class": 1, "c_type": 1, "entries": e.len() }),
            ExtObject::Other {
                class_num,
                c_type,
                words,
            } => json!({ "class": class_num, "c_type": c_type, "words": words }),
        })
        .collect();
    json!({ "mpls": mpls, "extensions": objects, "extensions_text": extensions_text(ext) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(flatten)]
        a: TracerouteArgs,
    }

    fn parse(args: &[&str]) -> Result<TracerouteArgs, String> {
        let mut v = vec!["traceroute"];
        v.extend_from_slice(args);
        Cmd::try_parse_from(v)
            .map(|c| c.a)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_are_the_linux_traceroute_defaults() {
        let a = parse(&["198.18.4.2"]).unwrap();
        let c = engine_config(&a).unwrap();
        assert_eq!(
            (c.first_ttl, c.max_ttl, c.queries, c.sim_queries),
            (1, 30, 3, 16)
        );
        assert_eq!(c.wait, WaitSpec::default());
        assert_eq!(c.packet_len, 60);
        assert_eq!(c.flow.method, Method::Udp);
        assert_eq!(c.flow.port, 33434);
        let a = parse(&["-I", "-p", "7", "198.18.4.2", "100"]).unwrap();
        let c = engine_config(&a).unwrap();
        assert_eq!(
            (c.flow.method, c.flow.port, c.packet_len),
            (Method::Icmp, 7, 100)
        );
        let a = parse(&["-U", "198.18.4.2"]).unwrap();
        assert_eq!(engine_config(&a).unwrap().flow.port, 53);
    }

    #[test]
    fn mtu_implies_one_probe_at_a_time_and_65000_bytes() {
        let c = engine_config(&parse(&["--mtu", "x"]).unwrap()).unwrap();
        assert_eq!((c.sim_queries, c.packet_len), (1, 65_000));
        assert!(c.mtu_discovery);
        let c = engine_config(&parse(&["--paris", "x", "0"]).unwrap()).unwrap();
        assert_eq!(c.packet_len, 30, "Paris needs two payload bytes");
        let c = engine_config(&parse(&["x", "10"]).unwrap()).unwrap();
        assert_eq!(c.packet_len, 28);
    }

    #[test]
    fn bad_input_is_refused_with_one_line() {
        for args in [
            &["-m", "0", "x"][..],
            &["-m", "256", "x"],
            &["-q", "11", "x"],
            &["-q", "0", "x"],
            &["-N", "0", "x"],
            &["-w", "-1", "x"],
            &["-w", "5,a", "x"],
            &["-z", "-1", "x"],
            &["-t", "300", "x"],
            &["-s", "nonsense", "x"],
            &["x", "65001"],
            &["x", "-5"],
            &["-I", "-U", "x"],
        ] {
            assert!(parse(args).is_err(), "{args:?} accepted");
        }
        let a = parse(&["-f", "5", "-m", "3", "x"]).unwrap();
        let e = engine_config(&a).unwrap_err();
        assert!(e.contains("first hop"), "{e}");
        assert!(!e.contains('\n'));
    }

    #[test]
    fn sendwait_above_10_is_milliseconds() {
        assert_eq!(parse_sendwait("0.5"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_sendwait("10"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_sendwait("250"), Ok(Duration::from_millis(250)));
        assert!(parse_sendwait("x").is_err());
    }

    #[test]
    fn extension_json_lists_mpls_entries() {
        let e = crate::packet::icmp::MplsEntry {
            label: 24001,
            tc: 0,
            bottom: true,
            ttl: 1,
        };
        let v = ext_json(&[ExtObject::Mpls(vec![e])]);
        assert_eq!(
            v["mpls"],
            json!([{ "label": 24001, "tc": 0, "s": true, "ttl": 1 }])
        );
        assert_eq!(v["extensions_text"], "MPLS:L=24001,E=0,S=1,T=1");
        assert_eq!(ext_json(&[]), Value::Null);
    }
}

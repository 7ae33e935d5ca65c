//! The echo-request I/O that `rawkit ping` shares between its single-target driver
//! ([`super::ping`]) and its many-target driver ([`super::sweep`]): opening and configuring the
//! sockets, stamping the payload, sending a probe (with its pcap copy), reading one datagram and
//! decoding it into an [`Event`].
//!
//! Each probe's payload starts with 16 bytes where iputils keeps its `struct timeval`: the send
//! time (nanoseconds since the Unix epoch, big-endian) and a random per-run cookie. A reply whose
//! cookie differs belongs to another program that happens to use the same identifier and is
//! ignored, so concurrent pings never see each other's replies.
//!
//! Nothing here prints or keeps state between calls: the drivers decide what an event means.

use crate::net::filter::BpfProgram;
use crate::net::route;
use crate::net::socket::{DgramIcmpSocket, HdrInclSender, Incoming, PmtuMode, RawIcmpSocket};
use crate::net::{ErrorOrigin, NetError};
use crate::packet::builder::Ipv4Builder;
use crate::packet::fragment::Fragmenter;
use crate::packet::icmp::{self, DstUnreachable, IcmpPacket, IcmpRepr, IcmpType, QuotedTransport};
use crate::packet::ipv4::{IpProtocol, Ipv4Packet};
use crate::pcap::PcapWriter;
use std::net::Ipv4Addr;
use std::time::{SystemTime, UNIX_EPOCH};

/// The timestamp and cookie at the front of the payload (iputils' `sizeof(struct timeval)`).
pub const STAMP_LEN: usize = 16;

/// The pcap file the drivers write.
pub type PcapFile = PcapWriter<std::io::BufWriter<std::fs::File>>;

/// The payload template: the pattern (or iputils' `i & 0xff`) over every byte; the first 16
/// bytes are overwritten per probe with the send time and the cookie.
pub fn payload_template(size: usize, pattern: &[u8]) -> Vec<u8> {
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

/// Nanoseconds since the Unix epoch (0 before it).
pub fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// Writes the send time and the cookie into the first [`STAMP_LEN`] bytes of `data` (when it
/// is that long).
pub fn stamp_payload(data: &mut [u8], sent_at: SystemTime, cookie: &[u8; 8]) {
    if data.len() >= STAMP_LEN {
        data[..8].copy_from_slice(&unix_nanos(sent_at).to_be_bytes());
        data[8..16].copy_from_slice(cookie);
    }
}

/// How the probes go out and the replies come back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SocketMode {
    /// rawkit builds IPv4 + ICMP, sends through `IP_HDRINCL`, reads a raw ICMP socket.
    Raw,
    /// The kernel's ICMP datagram socket: rawkit builds the ICMP message only.
    Dgram,
}

/// The open sockets.
#[derive(Debug)]
pub enum Sockets {
    /// The raw path: a raw ICMP socket to read, an `IP_HDRINCL` socket to send.
    Raw {
        /// Receives every ICMP packet that passes the filters.
        rx: RawIcmpSocket,
        /// Sends whole IPv4 datagrams.
        tx: HdrInclSender,
    },
    /// The unprivileged ICMP datagram socket.
    Dgram(DgramIcmpSocket),
}

impl Sockets {
    /// Which path these sockets are.
    pub fn mode(&self) -> SocketMode {
        match self {
            Sockets::Raw { .. } => SocketMode::Raw,
            Sockets::Dgram(_) => SocketMode::Dgram,
        }
    }

    /// The descriptor replies arrive on.
    pub fn rx_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        use std::os::fd::AsFd;
        match self {
            Sockets::Raw { rx, .. } => rx.as_fd(),
            Sockets::Dgram(s) => s.as_fd(),
        }
    }
}

/// What the sockets are asked to be: the choice of path and the per-socket options.
#[derive(Debug, Clone)]
pub struct SocketSetup<'a> {
    /// `--raw` (or `-e 0`, which only the raw path can send): no fallback to the datagram socket.
    pub raw_only: bool,
    /// `--dgram`: the datagram socket only.
    pub dgram_only: bool,
    /// `-e`: the identifier the datagram socket binds to (0 or `None`: the kernel picks).
    pub ident: Option<u16>,
    /// The address a datagram socket binds to (the `-I` address, else any).
    pub bind_source: Ipv4Addr,
    /// `-I` with an interface name.
    pub device: Option<&'a str>,
    /// `-t`, applied by the kernel on the datagram path.
    pub ttl: Option<u8>,
    /// `-Q`, applied by the kernel on the datagram path.
    pub tos: Option<u8>,
    /// `-M`, applied by the kernel on the datagram path.
    pub pmtu: PmtuMode,
    /// Many probes at once (flood, short intervals, big preloads, sweeps): 4 MiB buffers.
    pub big_buffers: bool,
}

/// Opens the sockets `setup` asks for, or the best available; returns them with the echo
/// identifier in use (`wanted_ident` on the raw path, the kernel's on the datagram path).
pub fn open_sockets(
    setup: &SocketSetup<'_>,
    wanted_ident: u16,
) -> Result<(Sockets, u16), NetError> {
    let try_raw = || -> Result<Sockets, NetError> {
        let rx = RawIcmpSocket::open()?;
        let tx = HdrInclSender::open()?;
        Ok(Sockets::Raw { rx, tx })
    };
    let dgram = || DgramIcmpSocket::open_bound(setup.bind_source, setup.ident.unwrap_or(0));
    if setup.dgram_only {
        let s = dgram()?;
        let id = s.local_ident();
        return Ok((Sockets::Dgram(s), id));
    }
    match try_raw() {
        Ok(s) => Ok((s, wanted_ident)),
        Err(e) if e.is_permission() && !setup.raw_only => match dgram() {
            Ok(s) => {
                let id = s.local_ident();
                Ok((Sockets::Dgram(s), id))
            }
            // Neither works: the raw socket's message says both ways to fix it.
            Err(_) => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Applies the per-socket options.
pub fn configure(setup: &SocketSetup<'_>, s: &Sockets, ident: u16) -> Result<(), NetError> {
    match s {
        Sockets::Raw { rx, tx } => {
            // Only replies and errors; then the identifier filter in the kernel; then throw
            // away whatever was queued before the filter was in place.
            rx.set_icmp_type_filter(&[0, 3, 4, 5, 11, 12])?;
            rx.attach_filter(&BpfProgram::icmp_echo_reply_ident(ident))?;
            rx.drain()?;
            if let Some(d) = setup.device {
                rx.bind_device(d)?;
                tx.bind_device(d)?;
            }
            if setup.big_buffers {
                let _ = rx.set_recv_buffer(4 << 20);
                let _ = tx.set_send_buffer(4 << 20);
            }
            rx.set_nonblocking(true)?;
        }
        Sockets::Dgram(sock) => {
            if let Some(t) = setup.ttl {
                sock.set_ttl(t)?;
            }
            if let Some(q) = setup.tos {
                sock.set_tos(q)?;
            }
            sock.set_mtu_discover(setup.pmtu)?;
            if let Some(d) = setup.device {
                sock.bind_device(d)?;
            }
            if setup.big_buffers {
                let _ = sock.set_recv_buffer(4 << 20);
            }
            sock.set_nonblocking(true)?;
        }
    }
    Ok(())
}

/// Everything the receive path needs to recognise our replies.
#[derive(Debug, Clone)]
pub struct Matcher {
    /// The only destination an ICMP error may quote (one target), or `None` to accept errors
    /// about any destination and let the caller sort them out ([`Event::Error::dst`]).
    pub target: Option<Ipv4Addr>,
    /// Our own source address: a "fragmentation needed" from it is the kernel refusing our own
    /// send, already reported by `sendto`.
    pub source: Ipv4Addr,
    /// The echo identifier.
    pub ident: u16,
    /// The per-run cookie in bytes 8..16 of every payload.
    pub cookie: [u8; 8],
    /// The payload size sent.
    pub size: usize,
}

impl Matcher {
    /// True when an echo reply's data carries our cookie (or is too short to carry one).
    pub fn cookie_ok(&self, data: &[u8]) -> bool {
        if self.size < STAMP_LEN || data.len() < STAMP_LEN {
            return true;
        }
        data[8..16] == self.cookie
    }
}

/// A reply or error, decoded, ready for the engine and the printer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// An echo reply carrying our identifier and cookie.
    Reply {
        /// Its sequence number.
        seq: u16,
        /// Who sent it.
        from: Ipv4Addr,
        /// Length of the ICMP message.
        icmp_len: usize,
        /// The TTL of its IPv4 header (0 when the datagram socket did not say).
        ttl: Option<u8>,
        /// The send time carried in the payload.
        sent_ns: Option<u64>,
        /// Whether the ICMP checksum verified.
        checksum_ok: bool,
        /// Where the echo data lies in the receive buffer (no copy per reply).
        data: core::ops::Range<usize>,
    },
    /// An ICMP error quoting one of our probes.
    Error {
        /// The quoted probe's sequence number.
        seq: u16,
        /// Who sent the error.
        from: Ipv4Addr,
        /// The destination of the quoted probe (unspecified when the kernel did not say).
        dst: Ipv4Addr,
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
        /// Next-hop MTU or parameter-problem pointer.
        info: u32,
    },
    /// A redirect or source quench quoting one of our probes.
    Notice {
        /// The quoted probe's sequence number.
        seq: u16,
        /// Who sent it.
        from: Ipv4Addr,
        /// The destination of the quoted probe.
        dst: Ipv4Addr,
        /// ICMP type.
        icmp_type: u8,
        /// ICMP code.
        code: u8,
        /// The redirect's gateway.
        gateway: Ipv4Addr,
        /// Whether the ICMP checksum verified.
        checksum_ok: bool,
    },
    /// A local error from the datagram socket's error queue.
    LocalError {
        /// The errno.
        errno: i32,
        /// `ee_info` (the MTU for `EMSGSIZE`).
        info: u32,
    },
}

/// Decodes one datagram from the raw ICMP socket (IPv4 header included).
pub fn decode_raw(m: &Matcher, datagram: &[u8]) -> Option<Event> {
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
            if ident != m.ident || m.target.is_some_and(|t| q.dst_addr != t) {
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
                    dst: q.dst_addr,
                    icmp_type: t.into(),
                    code: icmp.msg_code(),
                    gateway: icmp.gateway(),
                    checksum_ok,
                }),
                _ => Some(Event::Error {
                    seq: seq_no,
                    from: ip.src_addr(),
                    dst: q.dst_addr,
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
pub fn stamp(m: &Matcher, data: &[u8]) -> Option<u64> {
    if m.size < STAMP_LEN || data.len() < STAMP_LEN {
        return None;
    }
    Some(u64::from_be_bytes(data[..8].try_into().ok()?))
}

/// Decodes one message from the ICMP datagram socket (no IPv4 header; the kernel matched the
/// identifier already).
pub fn decode_dgram(m: &Matcher, icmp: &[u8], from: Ipv4Addr, ttl: Option<u8>) -> Option<Event> {
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

/// Reads one datagram (or queued error), without blocking, and decodes it.
///
/// `Ok(None)`: nothing was queued. `Ok(Some((None, t)))`: something arrived at `t` that is not
/// ours. A decoded datagram is copied to `pcap`; on the datagram path the reply gets an IPv4
/// header rebuilt with `local` as its destination.
pub fn receive_one(
    sockets: &Sockets,
    m: &Matcher,
    buf: &mut [u8],
    pcap: Option<&mut PcapFile>,
    local: Ipv4Addr,
) -> Result<Option<(Option<Event>, SystemTime)>, NetError> {
    Ok(match sockets {
        Sockets::Raw { rx, .. } => match rx.recv(buf)? {
            None => None,
            Some(r) => {
                let rx_time = r.kernel_time.unwrap_or_else(SystemTime::now);
                let ev = decode_raw(m, &buf[..r.len]);
                if ev.is_some()
                    && let Some(w) = pcap
                {
                    let _ = w.write_packet(rx_time, &buf[..r.len], r.len);
                }
                Some((ev, rx_time))
            }
        },
        Sockets::Dgram(s) => match s.recv_any(buf)? {
            None => None,
            Some(Incoming::Datagram(r)) => {
                let rx_time = r.kernel_time.unwrap_or_else(SystemTime::now);
                let ev = decode_dgram(m, &buf[..r.len], r.from, r.ttl);
                if ev.is_some()
                    && let Some(w) = pcap
                {
                    write_synthetic(w, rx_time, r.from, local, r.ttl, &buf[..r.len]);
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
                        let quoted = &buf[..qe.len];
                        let seq = IcmpPacket::new_checked(quoted)
                            .ok()
                            .filter(|p| p.msg_type() == IcmpType::EchoRequest)
                            .map(|p| p.echo_seq_no());
                        seq.map(|seq| Event::Error {
                            seq,
                            from: qe.offender.unwrap_or(Ipv4Addr::UNSPECIFIED),
                            dst: qe.original_dst.unwrap_or(Ipv4Addr::UNSPECIFIED),
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
    })
}

/// Writes a reply from the datagram socket to the pcap file with an IPv4 header rebuilt from
/// what the kernel told (source, TTL), so the file reads like a capture.
pub fn write_synthetic(
    w: &mut PcapFile,
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

/// One echo request to send.
#[derive(Debug, Clone, Copy)]
pub struct EchoProbe<'a> {
    /// The IPv4 source (0.0.0.0: the kernel fills in the route's; raw path only).
    pub source: Ipv4Addr,
    /// The target.
    pub dst: Ipv4Addr,
    /// The echo identifier (the datagram socket overwrites it).
    pub ident: u16,
    /// The echo sequence number.
    pub seq: u16,
    /// The echo data, already stamped.
    pub data: &'a [u8],
    /// The IPv4 identification (raw path).
    pub ip_ident: u16,
    /// `-t` (raw path; the datagram socket was configured with it).
    pub ttl: Option<u8>,
    /// `-Q` (raw path).
    pub tos: Option<u8>,
    /// `-M`: DF is set unless `Dont`; over the path MTU, `Do` and `Probe` refuse, the others
    /// fragment.
    pub pmtu: PmtuMode,
    /// `-I` with an interface name (for the route's MTU).
    pub device: Option<&'a str>,
}

/// Builds and sends one echo request through `sockets`, copying it to `pcap` when it went out.
/// `buf` must hold the whole datagram; `mtu` is the path MTU learnt so far (raw path).
pub fn send_echo(
    sockets: &Sockets,
    p: &EchoProbe<'_>,
    buf: &mut [u8],
    mtu: &mut Option<u32>,
    pcap: Option<&mut PcapFile>,
    sent_at: SystemTime,
) -> Result<(), SendError> {
    let echo = IcmpRepr::EchoRequest {
        ident: p.ident,
        seq_no: p.seq,
        data: p.data,
    };
    match sockets {
        Sockets::Raw { tx, .. } => {
            let df = p.pmtu != PmtuMode::Dont;
            let mut b = Ipv4Builder::new(p.source, p.dst)
                .ident(p.ip_ident)
                .dont_frag(df)
                .icmp(&echo);
            if let Some(t) = p.ttl {
                b = b.ttl(t);
            }
            if let Some(q) = p.tos {
                b = b.tos(q);
            }
            match b.emit(buf) {
                Err(e) => Err(SendError::Other(format!("{e}"))),
                Ok(n) => {
                    let r = send_datagram(tx, &buf[..n], p.dst, p.pmtu, mtu, p.device);
                    if r.is_ok()
                        && let Some(w) = pcap
                    {
                        let _ = w.write_packet(sent_at, &buf[..n], n);
                    }
                    r
                }
            }
        }
        Sockets::Dgram(s) => {
            // The kernel fills the checksum and the identifier of a ping socket; rawkit
            // computes it anyway (the kernel overwrites it) so the pcap copy is right.
            match echo.emit(buf) {
                Err(e) => Err(SendError::Other(format!("{e}"))),
                Ok(n) => match s.send_to(&buf[..n], p.dst) {
                    Ok(_) => {
                        if let Some(w) = pcap {
                            write_synthetic(
                                w,
                                sent_at,
                                p.source,
                                p.dst,
                                Some(p.ttl.unwrap_or(64)),
                                &buf[..n],
                            );
                        }
                        Ok(())
                    }
                    // The error queue reports it (with the MTU), once.
                    Err(NetError::MessageTooLong { .. }) => Err(SendError::Queued),
                    Err(e) => Err(SendError::Other(format!("sendmsg: {e}"))),
                },
            }
        }
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
pub fn send_datagram(
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
            send_fragments(tx, datagram, dst, m, |_| {})
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
                send_fragments(tx, datagram, dst, m, |_| {})
            }
        }
        Err(e) => Err(SendError::Other(format!("sendmsg: {e}"))),
    }
}

/// Why a probe did not go out.
#[derive(Debug)]
pub enum SendError {
    /// Longer than the path MTU with DF demanded: an error, counted (iputils' EMSGSIZE).
    TooLong(String),
    /// The socket's error queue will report it; nothing to do now.
    Queued,
    /// Any other failure: reported, not counted.
    Other(String),
}

/// Splits `datagram` into fragments that fit `mtu` (DF clear, RFC 791: the kernel never
/// fragments an `IP_HDRINCL` datagram) and sends them, handing each to `on_piece` once it went
/// out (for a pcap file). Shared by ping, the sweep and traceroute.
pub fn send_fragments(
    tx: &HdrInclSender,
    datagram: &[u8],
    dst: Ipv4Addr,
    mtu: u32,
    mut on_piece: impl FnMut(&[u8]),
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
            .map_err(|e| other(format!("sendto {dst}: {e}")))?;
        on_piece(&piece[..n]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::icmp::TimeExceeded;

    #[test]
    fn payload_template_repeats_the_pattern_or_counts() {
        assert_eq!(payload_template(4, &[]), vec![0, 1, 2, 3]);
        assert_eq!(
            payload_template(5, &[0xa, 0xb]),
            vec![0xa, 0xb, 0xa, 0xb, 0xa]
        );
    }

    #[test]
    fn stamping_writes_the_time_and_the_cookie_in_front() {
        let mut data = payload_template(24, &[]);
        let t = UNIX_EPOCH + std::time::Duration::from_nanos(0x0102_0304_0506_0708);
        stamp_payload(&mut data, t, b"cookie!!");
        assert_eq!(&data[..8], &[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&data[8..16], b"cookie!!");
        assert_eq!(&data[16..], &[16, 17, 18, 19, 20, 21, 22, 23]);
        // Too short to carry a stamp: untouched.
        let mut short = vec![0xa5u8; 8];
        stamp_payload(&mut short, t, b"cookie!!");
        assert_eq!(short, vec![0xa5u8; 8]);
    }

    fn matcher() -> Matcher {
        Matcher {
            target: Some(Ipv4Addr::LOCALHOST),
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

    fn probe_to(dst: Ipv4Addr, ident: u16) -> Vec<u8> {
        let mut probe = vec![0u8; 200];
        let n = Ipv4Builder::new(Ipv4Addr::LOCALHOST, dst)
            .icmp(&IcmpRepr::EchoRequest {
                ident,
                seq_no: 5,
                data: &[0; 8],
            })
            .emit(&mut probe)
            .unwrap();
        probe.truncate(n);
        probe
    }

    fn time_exceeded(quote: &[u8]) -> Vec<u8> {
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
    }

    #[test]
    fn errors_quoting_our_probe_are_matched_by_ident_and_destination() {
        let m = matcher();
        let probe = probe_to(Ipv4Addr::LOCALHOST, 0x1234);
        match decode_raw(&m, &time_exceeded(&probe[..28])) {
            Some(Event::Error {
                seq,
                from,
                dst,
                icmp_type,
                ..
            }) => assert_eq!(
                (seq, from, dst, icmp_type),
                (5, Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::LOCALHOST, 11)
            ),
            other => panic!("error not matched: {other:?}"),
        }
        let mut other = probe.clone();
        other[24] = 0x99; // another identifier
        assert!(decode_raw(&m, &time_exceeded(&other[..28])).is_none());
        // Another destination: not ours when the matcher has one target...
        let elsewhere = probe_to(Ipv4Addr::new(127, 0, 0, 9), 0x1234);
        assert!(decode_raw(&m, &time_exceeded(&elsewhere[..28])).is_none());
        // ...and reported with its destination when it has many.
        let many = Matcher {
            target: None,
            ..matcher()
        };
        match decode_raw(&many, &time_exceeded(&elsewhere[..28])) {
            Some(Event::Error { dst, .. }) => assert_eq!(dst, Ipv4Addr::new(127, 0, 0, 9)),
            other => panic!("error not matched: {other:?}"),
        }
    }
}

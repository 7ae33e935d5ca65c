//! Packet capture on one interface with an `AF_PACKET` socket.
//!
//! [`Capture`] sees every frame that crosses the interface, link-layer header included, with a
//! kernel timestamp, the frame's real length even when the buffer cut it short, and the
//! direction the kernel saw it go ([`PacketType`]). On `lo` each packet passes twice, once
//! outgoing and once incoming; [`CaptureOptions::ignore_outgoing`] (the default) keeps one copy.
//!
//! It reads one frame per `recvmsg(2)` (a `TPACKET_V3` ring may replace this when speed
//! matters). It must never change what it captures or send anything: it is a passive observer.

use std::ffi::CString;
use std::io;
use std::mem;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::time::{Duration, SystemTime};

use socket2::{Domain, Protocol, Socket, Type};

use super::NetError;
use super::filter::BpfProgram;
use super::socket::{
    getsockname_bytes, getsockopt_bytes, set_read_timeout, setsockopt, setsockopt_int,
};
use super::time::{self, NAME_LEN};

/// The ethertype of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;

/// At most this many frames are discarded by one [`Capture::drain`].
const DRAIN_LIMIT: usize = 1 << 16;

/// How a capture is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureOptions {
    /// Skip the frames this host sends (`PACKET_IGNORE_OUTGOING`). On `lo`, where every packet
    /// is both sent and received, this shows each packet once. Default: `true`.
    pub ignore_outgoing: bool,
    /// Put the interface in promiscuous mode while the capture is open (`PACKET_MR_PROMISC`),
    /// to see frames addressed to other hosts. Default: `false`.
    pub promiscuous: bool,
    /// The socket receive buffer (`SO_RCVBUF`, or `SO_RCVBUFFORCE` beyond `net.core.rmem_max`
    /// when privileged). Default: the system's.
    pub buffer_bytes: Option<usize>,
    /// How long [`Capture::next`] waits before returning `Ok(None)`. Default: for ever. Zero is
    /// refused (the kernel would read it as "for ever").
    pub read_timeout: Option<Duration>,
}

impl Default for CaptureOptions {
    fn default() -> CaptureOptions {
        CaptureOptions {
            ignore_outgoing: true,
            promiscuous: false,
            buffer_bytes: None,
            read_timeout: None,
        }
    }
}

/// The link-layer type of an interface (its `ARPHRD_*` hardware type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `ARPHRD_ETHER`: a 14-byte Ethernet header.
    Ethernet,
    /// `ARPHRD_LOOPBACK`: on Linux, a 14-byte Ethernet header with both addresses zero.
    Loopback,
    /// `ARPHRD_NONE` (e.g. a TUN device): no link header, frames start at the IP header.
    RawIp,
    /// Any other hardware type.
    Other(u16),
}

impl LinkType {
    /// Maps an `ARPHRD_*` value.
    pub fn from_arphrd(hatype: u16) -> LinkType {
        match hatype {
            libc::ARPHRD_ETHER => LinkType::Ethernet,
            libc::ARPHRD_LOOPBACK => LinkType::Loopback,
            libc::ARPHRD_NONE => LinkType::RawIp,
            other => LinkType::Other(other),
        }
    }
}

/// Where the network-layer header starts in a frame of this link type, when rawkit knows.
pub fn network_offset(link: LinkType) -> Option<usize> {
    match link {
        LinkType::Ethernet | LinkType::Loopback => Some(14),
        LinkType::RawIp => Some(0),
        LinkType::Other(_) => None,
    }
}

/// Which way a frame went, as the kernel classified it (`sll_pkttype`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PacketType {
    /// `PACKET_HOST`: addressed to this host.
    Host,
    /// `PACKET_BROADCAST`: link-layer broadcast.
    Broadcast,
    /// `PACKET_MULTICAST`: link-layer multicast.
    Multicast,
    /// `PACKET_OTHERHOST`: addressed to another host (seen in promiscuous mode).
    OtherHost,
    /// `PACKET_OUTGOING`: sent by this host.
    Outgoing,
    /// Any other value.
    Unknown(u8),
}

impl From<u8> for PacketType {
    fn from(raw: u8) -> PacketType {
        match raw {
            libc::PACKET_HOST => PacketType::Host,
            libc::PACKET_BROADCAST => PacketType::Broadcast,
            libc::PACKET_MULTICAST => PacketType::Multicast,
            libc::PACKET_OTHERHOST => PacketType::OtherHost,
            libc::PACKET_OUTGOING => PacketType::Outgoing,
            other => PacketType::Unknown(other),
        }
    }
}

/// One captured frame. Its bytes are the first [`len`](Frame::len) bytes of the buffer given to
/// [`Capture::next`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    /// Bytes captured into the buffer.
    pub len: usize,
    /// The frame's real length; larger than `len` when the buffer was too small.
    pub orig_len: usize,
    /// When the kernel received (or sent) it (`SO_TIMESTAMPNS`).
    pub timestamp: Option<SystemTime>,
    /// Its direction.
    pub pkttype: PacketType,
    /// Its link-layer protocol (`sll_protocol`, an ethertype), in host order.
    pub protocol: u16,
    /// The index of the interface it crossed.
    pub ifindex: u32,
    /// The link type of that interface (`sll_hatype`).
    pub link_type: LinkType,
}

impl Frame {
    /// True when the buffer was too small for the whole frame.
    pub fn is_truncated(&self) -> bool {
        self.len < self.orig_len
    }

    /// The IPv4 datagram in the frame, given the buffer the frame was read into: `None` unless
    /// the protocol is IPv4 and the link type's header length is known. The bytes are cut to
    /// the datagram's total length when that is consistent, which removes link-layer padding
    /// (Ethernet pads short frames to 60 bytes); a truncated capture gives what was captured.
    pub fn ip_payload<'a>(&self, buf: &'a [u8]) -> Option<&'a [u8]> {
        if self.protocol != ETHERTYPE_IPV4 {
            return None;
        }
        let start = network_offset(self.link_type)?;
        let bytes = buf.get(start..self.len.min(buf.len()))?;
        if bytes.first()? >> 4 != 4 {
            return None;
        }
        let total = bytes
            .get(2..4)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])));
        match total {
            Some(total) if (20..=bytes.len()).contains(&total) => Some(&bytes[..total]),
            _ => Some(bytes),
        }
    }
}

/// Counters of a capture since it was opened (`PACKET_STATISTICS`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Frames that passed the filter, including those dropped.
    pub packets: u64,
    /// Frames dropped because the receive buffer was full.
    pub drops: u64,
}

/// The parts of a `struct sockaddr_ll` rawkit uses, parsed from bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LinkAddr {
    protocol: u16,
    ifindex: u32,
    hatype: u16,
    pkttype: u8,
}

fn parse_sockaddr_ll(bytes: &[u8]) -> Option<LinkAddr> {
    let field = |at: usize, len: usize| bytes.get(at..at + len);
    let family = u16::from_ne_bytes(
        field(mem::offset_of!(libc::sockaddr_ll, sll_family), 2)?
            .try_into()
            .ok()?,
    );
    if i32::from(family) != libc::AF_PACKET {
        return None;
    }
    let protocol = u16::from_be_bytes(
        field(mem::offset_of!(libc::sockaddr_ll, sll_protocol), 2)?
            .try_into()
            .ok()?,
    );
    let ifindex = i32::from_ne_bytes(
        field(mem::offset_of!(libc::sockaddr_ll, sll_ifindex), 4)?
            .try_into()
            .ok()?,
    );
    let hatype = u16::from_ne_bytes(
        field(mem::offset_of!(libc::sockaddr_ll, sll_hatype), 2)?
            .try_into()
            .ok()?,
    );
    let pkttype = *bytes.get(mem::offset_of!(libc::sockaddr_ll, sll_pkttype))?;
    Some(LinkAddr {
        protocol,
        ifindex: u32::try_from(ifindex).ok()?,
        hatype,
        pkttype,
    })
}

/// The index of interface `iface` in the calling thread's network namespace.
pub fn interface_index(iface: &str) -> Result<u32, NetError> {
    let no_such = |source| NetError::NoSuchInterface {
        name: Some(iface.to_owned()),
        source,
    };
    if iface.is_empty() || iface.len() >= libc::IFNAMSIZ {
        return Err(no_such(None));
    }
    let name = CString::new(iface).map_err(|_| no_such(None))?;
    // SAFETY: `name` is a valid NUL-terminated string that outlives the call.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::ENODEV) | Some(libc::ENXIO) => Err(no_such(Some(err))),
            _ => Err(NetError::from_io("if_nametoindex", err).with_interface(iface)),
        };
    }
    Ok(index)
}

/// `bind(2)` of a packet socket to `addr`.
fn bind_link(fd: BorrowedFd<'_>, addr: &libc::sockaddr_ll) -> io::Result<()> {
    // SAFETY: `addr` points to a live, fully initialised `sockaddr_ll` of the length given; the
    // kernel only reads it during the call.
    let rc = unsafe {
        libc::bind(
            fd.as_raw_fd(),
            (addr as *const libc::sockaddr_ll).cast(),
            mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A capture on one interface: `socket(AF_PACKET, SOCK_RAW, ETH_P_ALL)` bound to it.
#[derive(Debug)]
pub struct Capture {
    sock: Socket,
    iface: String,
    ifindex: u32,
    link: LinkType,
    /// Outgoing frames to skip here because the kernel lacks `PACKET_IGNORE_OUTGOING`.
    skip_outgoing: bool,
    totals: CaptureStats,
}

impl Capture {
    /// Opens a capture on `iface` (in the calling thread's network namespace).
    ///
    /// Fails with [`NetError::NoSuchInterface`] for an unknown name and with
    /// [`NetError::MissingPrivilege`] without `CAP_NET_RAW`.
    pub fn open(iface: &str, opts: CaptureOptions) -> Result<Capture, NetError> {
        let ifindex = interface_index(iface)?;
        // Protocol 0 receives nothing: set the options first, then `bind` with ETH_P_ALL to
        // start receiving on this interface only (never on all interfaces in between).
        let sock = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(0)))
            .map_err(|e| NetError::from_io("open packet capture socket", e))?;
        let fd = sock.as_fd();
        let mut skip_outgoing = false;
        if opts.ignore_outgoing {
            match setsockopt_int(fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, 1) {
                Ok(()) => {}
                // Before Linux 4.20: skip them in `next` instead.
                Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => skip_outgoing = true,
                Err(e) => {
                    return Err(NetError::from_io("setsockopt(PACKET_IGNORE_OUTGOING)", e));
                }
            }
        }
        time::enable_timestamps(fd)
            .map_err(|e| NetError::from_io("setsockopt(SO_TIMESTAMPNS)", e))?;
        if let Some(bytes) = opts.buffer_bytes {
            let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
            if setsockopt_int(fd, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, size).is_err() {
                sock.set_recv_buffer_size(bytes)
                    .map_err(|e| NetError::from_io("setsockopt(SO_RCVBUF)", e))?;
            }
        }
        if opts.read_timeout.is_some() {
            set_read_timeout(&sock, opts.read_timeout)?;
        }
        let addr = libc::sockaddr_ll {
            sll_family: libc::AF_PACKET as u16,
            sll_protocol: (libc::ETH_P_ALL as u16).to_be(),
            sll_ifindex: i32::try_from(ifindex).unwrap_or(0),
            sll_hatype: 0,
            sll_pkttype: 0,
            sll_halen: 0,
            sll_addr: [0; 8],
        };
        bind_link(fd, &addr)
            .map_err(|e| NetError::from_io("bind packet socket", e).with_interface(iface))?;
        if opts.promiscuous {
            let mreq = libc::packet_mreq {
                mr_ifindex: addr.sll_ifindex,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            setsockopt(fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
                .map_err(|e| NetError::from_io("setsockopt(PACKET_ADD_MEMBERSHIP)", e))?;
        }
        let mut name = [0u8; NAME_LEN];
        let name_len =
            getsockname_bytes(fd, &mut name).map_err(|e| NetError::from_io("getsockname", e))?;
        let link = parse_sockaddr_ll(&name[..name_len])
            .map_or(LinkType::Other(0), |a| LinkType::from_arphrd(a.hatype));
        Ok(Capture {
            sock,
            iface: iface.to_owned(),
            ifindex,
            link,
            skip_outgoing,
            totals: CaptureStats::default(),
        })
    }

    /// The interface name.
    pub fn interface(&self) -> &str {
        &self.iface
    }

    /// The interface index.
    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// The interface's link-layer type.
    pub fn link_type(&self) -> LinkType {
        self.link
    }

    /// Reads the next frame into `buf`.
    ///
    /// Returns `Ok(None)` when nothing arrived before the read timeout, when the socket is
    /// non-blocking and nothing is queued, or when a signal interrupted the wait.
    pub fn next(&mut self, buf: &mut [u8]) -> Result<Option<Frame>, NetError> {
        // Bounded: only the userspace skipping of outgoing frames (old kernels) loops.
        for _ in 0..DRAIN_LIMIT {
            // MSG_TRUNC: return the real length of the frame even when `buf` is shorter.
            let msg = match time::recv_msg(self.sock.as_fd(), buf, libc::MSG_TRUNC) {
                Ok(msg) => msg,
                Err(e) if time::is_no_data(&e) => return Ok(None),
                Err(e) => return Err(NetError::from_io("recvmsg", e)),
            };
            let addr = parse_sockaddr_ll(msg.name());
            let pkttype = addr.map_or(PacketType::Unknown(u8::MAX), |a| a.pkttype.into());
            if self.skip_outgoing && pkttype == PacketType::Outgoing {
                continue;
            }
            return Ok(Some(Frame {
                len: msg.copied(buf.len()),
                orig_len: msg.ret,
                timestamp: msg.control.timestamp,
                pkttype,
                protocol: addr.map_or(0, |a| a.protocol),
                ifindex: addr.map_or(self.ifindex, |a| a.ifindex),
                link_type: addr.map_or(self.link, |a| LinkType::from_arphrd(a.hatype)),
            }));
        }
        Ok(None)
    }

    /// The counters since the capture was opened. The kernel resets its counters on every
    /// read; this keeps running totals.
    pub fn statistics(&mut self) -> Result<CaptureStats, NetError> {
        let mut raw = [0u8; mem::size_of::<libc::tpacket_stats>()];
        let len = getsockopt_bytes(
            self.sock.as_fd(),
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            &mut raw,
        )
        .map_err(|e| NetError::from_io("getsockopt(PACKET_STATISTICS)", e))?;
        let word = |at: usize| {
            raw.get(at..at + 4)
                .filter(|_| at + 4 <= len)
                .and_then(|b| b.try_into().ok())
                .map_or(0, u32::from_ne_bytes)
        };
        self.totals.packets += u64::from(word(mem::offset_of!(libc::tpacket_stats, tp_packets)));
        self.totals.drops += u64::from(word(mem::offset_of!(libc::tpacket_stats, tp_drops)));
        Ok(self.totals)
    }

    /// Attaches a classic BPF filter, which sees frames from their link-layer header on.
    /// Frames queued before the call are not filtered: [`drain`](Self::drain) them.
    pub fn attach_filter(&self, program: &BpfProgram) -> Result<(), NetError> {
        program.attach(&self.sock)
    }

    /// Reads and discards every queued frame, without blocking; returns how many went.
    pub fn drain(&mut self) -> Result<usize, NetError> {
        let mut scratch = [0u8; 64];
        let mut drained = 0;
        while drained < DRAIN_LIMIT {
            match time::recv_msg(self.sock.as_fd(), &mut scratch, libc::MSG_DONTWAIT) {
                Ok(_) => drained += 1,
                Err(e) if e.raw_os_error() == Some(libc::EINTR) => {}
                Err(e) if time::is_no_data(&e) => break,
                Err(e) => return Err(NetError::from_io("recvmsg", e)),
            }
        }
        Ok(drained)
    }

    /// Changes how long [`next`](Self::next) waits (`None`: for ever; zero is refused, as the
    /// kernel would read it as "for ever").
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> Result<(), NetError> {
        set_read_timeout(&self.sock, timeout)
    }

    /// Switches non-blocking mode.
    pub fn set_nonblocking(&self, nonblocking: bool) -> Result<(), NetError> {
        self.sock
            .set_nonblocking(nonblocking)
            .map_err(|e| NetError::from_io("fcntl(O_NONBLOCK)", e))
    }
}

impl AsFd for Capture {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
    }
}

impl AsRawFd for Capture {
    fn as_raw_fd(&self) -> RawFd {
        self.sock.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(protocol: u16, link_type: LinkType, len: usize) -> Frame {
        Frame {
            len,
            orig_len: len,
            timestamp: None,
            pkttype: PacketType::Host,
            protocol,
            ifindex: 1,
            link_type,
        }
    }

    /// 14 zero bytes (lo's pseudo Ethernet header), then a 28-byte IPv4 datagram, then padding.
    fn loopback_bytes() -> Vec<u8> {
        let mut b = vec![0u8; 14];
        b.extend_from_slice(&[0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 17, 0, 0]);
        b.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
        b.extend_from_slice(&[0, 1, 0, 2, 0, 8, 0, 0]);
        b.extend_from_slice(&[0xee; 18]);
        b
    }

    #[test]
    fn ip_payload_skips_the_link_header_and_the_padding() {
        let buf = loopback_bytes();
        let f = frame(ETHERTYPE_IPV4, LinkType::Loopback, buf.len());
        let ip = f.ip_payload(&buf).expect("ipv4");
        assert_eq!(ip.len(), 28);
        assert_eq!(ip[0], 0x45);
        assert_eq!(&ip[12..16], &[127, 0, 0, 1]);
    }

    #[test]
    fn ip_payload_of_a_truncated_capture_is_what_was_captured() {
        let buf = loopback_bytes();
        let mut f = frame(ETHERTYPE_IPV4, LinkType::Ethernet, 30);
        f.orig_len = buf.len();
        assert!(f.is_truncated());
        assert_eq!(f.ip_payload(&buf).map(<[u8]>::len), Some(16));
    }

    #[test]
    fn ip_payload_needs_ipv4_and_a_known_link() {
        let buf = loopback_bytes();
        assert_eq!(
            frame(0x86dd, LinkType::Loopback, buf.len()).ip_payload(&buf),
            None
        );
        assert_eq!(
            frame(ETHERTYPE_IPV4, LinkType::Other(776), buf.len()).ip_payload(&buf),
            None
        );
        assert_eq!(
            frame(ETHERTYPE_IPV4, LinkType::Loopback, 10).ip_payload(&buf),
            None
        );
        // A frame length beyond the buffer must not panic.
        assert!(
            frame(ETHERTYPE_IPV4, LinkType::Loopback, 4096)
                .ip_payload(&buf)
                .is_some()
        );
        let raw = &buf[14..];
        assert_eq!(
            frame(ETHERTYPE_IPV4, LinkType::RawIp, raw.len())
                .ip_payload(raw)
                .map(<[u8]>::len),
            Some(28)
        );
    }

    #[test]
    fn link_types_and_offsets() {
        assert_eq!(LinkType::from_arphrd(1), LinkType::Ethernet);
        assert_eq!(LinkType::from_arphrd(772), LinkType::Loopback);
        assert_eq!(LinkType::from_arphrd(0xfffe), LinkType::RawIp);
        assert_eq!(LinkType::from_arphrd(776), LinkType::Other(776));
        assert_eq!(network_offset(LinkType::Loopback), Some(14));
        assert_eq!(network_offset(LinkType::RawIp), Some(0));
        assert_eq!(network_offset(LinkType::Other(1)), None);
    }

    #[test]
    fn packet_types_keep_unknown_values() {
        assert_eq!(PacketType::from(0), PacketType::Host);
        assert_eq!(PacketType::from(4), PacketType::Outgoing);
        assert_eq!(PacketType::from(9), PacketType::Unknown(9));
    }

    #[test]
    fn sockaddr_ll_bytes_are_parsed() {
        let mut b = [0u8; 20];
        b[0..2].copy_from_slice(&(libc::AF_PACKET as u16).to_ne_bytes());
        b[2..4].copy_from_slice(&0x0800u16.to_be_bytes());
        b[4..8].copy_from_slice(&7i32.to_ne_bytes());
        b[8..10].copy_from_slice(&772u16.to_ne_bytes());
        b[10] = 4;
        let a = parse_sockaddr_ll(&b).expect("parsed");
        assert_eq!(
            (a.protocol, a.ifindex, a.hatype, a.pkttype),
            (0x0800, 7, 772, 4)
        );
        assert_eq!(parse_sockaddr_ll(&b[..10]), None);
        assert_eq!(parse_sockaddr_ll(&[0; 20]), None);
    }

    #[test]
    fn bad_interface_names_are_refused_before_any_syscall() {
        for name in ["", "this-name-is-far-too-long", "nul\0x"] {
            assert!(matches!(
                interface_index(name),
                Err(NetError::NoSuchInterface { .. })
            ));
        }
    }
}

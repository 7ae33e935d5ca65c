//! Packet capture on one interface with an `AF_PACKET` socket.
//!
//! [`Capture`] sees every frame that crosses the interface, link-layer header included, with a
//! kernel timestamp, the frame's real length even when the buffer cut it short, and the
//! direction the kernel saw it go ([`PacketType`]). On `lo` each packet passes twice, once
//! outgoing and once incoming; [`CaptureOptions::ignore_outgoing`] (the default) keeps one copy.
//!
//! [`Capture`] reads one frame per `recvmsg(2)`. [`RingCapture`] shares a `TPACKET_V3` ring with
//! the kernel instead (`PACKET_RX_RING`, `mmap`): the kernel fills blocks of frames and hands
//! each whole block over, so a flood costs one wake-up per block instead of one system call per
//! frame. Both can take a classic BPF filter that is attached *before* the socket starts
//! receiving ([`Capture::open_filtered`]), so no unfiltered frame is ever queued or counted.
//!
//! Neither must ever change what it captures or send anything: they are passive observers.

use std::ffi::CString;
use std::io;
use std::mem;
use std::ops::Range;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
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

/// `PACKET_IGNORE_OUTGOING` on or off; returns whether outgoing frames must be skipped in user
/// space instead (kernels before 4.20 lack the option).
fn set_ignore_outgoing(fd: BorrowedFd<'_>, ignore: bool) -> Result<bool, NetError> {
    let value = libc::c_int::from(ignore);
    match setsockopt_int(fd, libc::SOL_PACKET, libc::PACKET_IGNORE_OUTGOING, value) {
        Ok(()) => Ok(false),
        Err(e) if e.raw_os_error() == Some(libc::ENOPROTOOPT) => Ok(ignore),
        Err(e) => Err(NetError::from_io("setsockopt(PACKET_IGNORE_OUTGOING)", e)),
    }
}

/// A packet socket for `iface` that receives nothing yet (protocol 0), with the options of
/// `opts` that apply to both capture kinds. Returns it, the interface index, and whether
/// outgoing frames must be skipped in user space.
fn open_socket(iface: &str, opts: &CaptureOptions) -> Result<(Socket, u32, bool), NetError> {
    let ifindex = interface_index(iface)?;
    // Protocol 0 receives nothing: set the options first, then `bind` with ETH_P_ALL to start
    // receiving on this interface only (never on all interfaces in between).
    let sock = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(0)))
        .map_err(|e| NetError::from_io("open packet capture socket", e))?;
    let skip_outgoing = if opts.ignore_outgoing {
        set_ignore_outgoing(sock.as_fd(), true)?
    } else {
        false
    };
    Ok((sock, ifindex, skip_outgoing))
}

fn link_addr(ifindex: u32, protocol: u16) -> libc::sockaddr_ll {
    libc::sockaddr_ll {
        sll_family: libc::AF_PACKET as u16,
        sll_protocol: protocol.to_be(),
        sll_ifindex: i32::try_from(ifindex).unwrap_or(0),
        sll_hatype: 0,
        sll_pkttype: 0,
        sll_halen: 0,
        sll_addr: [0; 8],
    }
}

/// Starts a socket made by [`open_socket`]: binds it to the interface with protocol 0 (still
/// receiving nothing) to learn the link type, attaches the filter made for that link type, and
/// only then binds with `ETH_P_ALL`, which starts the flow of frames.
fn start(
    sock: &Socket,
    iface: &str,
    ifindex: u32,
    promiscuous: bool,
    filter: impl FnOnce(LinkType) -> Option<BpfProgram>,
) -> Result<LinkType, NetError> {
    let fd = sock.as_fd();
    bind_link(fd, &link_addr(ifindex, 0))
        .map_err(|e| NetError::from_io("bind packet socket", e).with_interface(iface))?;
    let mut name = [0u8; NAME_LEN];
    let name_len =
        getsockname_bytes(fd, &mut name).map_err(|e| NetError::from_io("getsockname", e))?;
    let link = parse_sockaddr_ll(&name[..name_len])
        .map_or(LinkType::Other(0), |a| LinkType::from_arphrd(a.hatype));
    if let Some(program) = filter(link) {
        program.attach(sock)?;
    }
    let addr = link_addr(ifindex, libc::ETH_P_ALL as u16);
    bind_link(fd, &addr)
        .map_err(|e| NetError::from_io("bind packet socket", e).with_interface(iface))?;
    if promiscuous {
        let mreq = libc::packet_mreq {
            mr_ifindex: addr.sll_ifindex,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        setsockopt(fd, libc::SOL_PACKET, libc::PACKET_ADD_MEMBERSHIP, &mreq)
            .map_err(|e| NetError::from_io("setsockopt(PACKET_ADD_MEMBERSHIP)", e))?;
    }
    Ok(link)
}

/// Adds the kernel's counters since the last read (`PACKET_STATISTICS` resets them) to
/// `totals`. The `tpacket_stats_v3` of a ring begins with the same two counters.
fn add_statistics(fd: BorrowedFd<'_>, totals: &mut CaptureStats) -> Result<(), NetError> {
    let mut raw = [0u8; mem::size_of::<libc::tpacket_stats>()];
    let len = getsockopt_bytes(fd, libc::SOL_PACKET, libc::PACKET_STATISTICS, &mut raw)
        .map_err(|e| NetError::from_io("getsockopt(PACKET_STATISTICS)", e))?;
    let word = |at: usize| {
        raw.get(at..at + 4)
            .filter(|_| at + 4 <= len)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_ne_bytes)
    };
    totals.packets += u64::from(word(mem::offset_of!(libc::tpacket_stats, tp_packets)));
    totals.drops += u64::from(word(mem::offset_of!(libc::tpacket_stats, tp_drops)));
    Ok(())
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
        Capture::open_filtered(iface, opts, |_| None)
    }

    /// Opens a capture on `iface` whose filter is in place before the first frame arrives:
    /// `filter` is called with the interface's link type (which says how its frames begin) and
    /// the program it returns is attached before the socket starts receiving, so no frame that
    /// fails it is ever queued, read or counted in [`statistics`](Self::statistics). `None`
    /// keeps every frame.
    pub fn open_filtered(
        iface: &str,
        opts: CaptureOptions,
        filter: impl FnOnce(LinkType) -> Option<BpfProgram>,
    ) -> Result<Capture, NetError> {
        let (sock, ifindex, skip_outgoing) = open_socket(iface, &opts)?;
        time::enable_timestamps(sock.as_fd())
            .map_err(|e| NetError::from_io("setsockopt(SO_TIMESTAMPNS)", e))?;
        if let Some(bytes) = opts.buffer_bytes {
            let size = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
            if setsockopt_int(sock.as_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, size).is_err() {
                sock.set_recv_buffer_size(bytes)
                    .map_err(|e| NetError::from_io("setsockopt(SO_RCVBUF)", e))?;
            }
        }
        if opts.read_timeout.is_some() {
            set_read_timeout(&sock, opts.read_timeout)?;
        }
        let link = start(&sock, iface, ifindex, opts.promiscuous, filter)?;
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
        add_statistics(self.sock.as_fd(), &mut self.totals)?;
        Ok(self.totals)
    }

    /// Skips (or stops skipping) the frames this host sends, as
    /// [`CaptureOptions::ignore_outgoing`] does at opening. Frames already queued stay.
    pub fn set_ignore_outgoing(&mut self, ignore: bool) -> Result<(), NetError> {
        self.skip_outgoing = set_ignore_outgoing(self.sock.as_fd(), ignore)?;
        Ok(())
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

/// How the ring of a [`RingCapture`] is sized and paced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RingOptions {
    /// Bytes of the whole ring, the kernel's buffer: rounded down to whole blocks, at least
    /// one. Default: 4 MiB.
    pub buffer_bytes: usize,
    /// Bytes of one block: rounded up to a power of two of at least a page. A frame longer
    /// than a block (less its headers) is cut. Default: 256 KiB, which holds `lo`'s 64 KiB
    /// frames whole.
    pub block_bytes: usize,
    /// How long the kernel fills a block before it hands it over with what it holds
    /// (`tp_retire_blk_tov`, in whole milliseconds, at least 1): the latency of a quiet
    /// capture. Default: 10 ms.
    pub block_timeout: Duration,
}

impl Default for RingOptions {
    fn default() -> RingOptions {
        RingOptions {
            buffer_bytes: 4 << 20,
            block_bytes: 256 << 10,
            block_timeout: Duration::from_millis(10),
        }
    }
}

/// The size the kernel is asked for per frame slot: only its arithmetic matters to
/// `TPACKET_V3`, whose frames have variable sizes (it must be 16-byte aligned and hold the
/// headers).
const RING_FRAME_SLOT: usize = 2048;

/// Where a frame's `sockaddr_ll` lies after its `tpacket3_hdr` (`TPACKET_ALIGN`).
const RING_ADDR_AT: usize = (mem::size_of::<libc::tpacket3_hdr>() + libc::TPACKET_ALIGNMENT - 1)
    & !(libc::TPACKET_ALIGNMENT - 1);

/// Offsets of the words of a block descriptor (`tpacket_block_desc`, then `tpacket_hdr_v1`).
const BLOCK_STATUS_AT: usize = mem::offset_of!(libc::tpacket_block_desc, hdr)
    + mem::offset_of!(libc::tpacket_hdr_v1, block_status);
const BLOCK_NUM_PKTS_AT: usize = mem::offset_of!(libc::tpacket_block_desc, hdr)
    + mem::offset_of!(libc::tpacket_hdr_v1, num_pkts);
const BLOCK_FIRST_AT: usize = mem::offset_of!(libc::tpacket_block_desc, hdr)
    + mem::offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt);
const BLOCK_DESC_LEN: usize = mem::size_of::<libc::tpacket_block_desc>();

/// The page size (`sysconf(_SC_PAGESIZE)`), 4096 if it cannot be read.
fn page_size() -> usize {
    // SAFETY: `sysconf` takes no pointers and has no preconditions.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    usize::try_from(size)
        .ok()
        .filter(|s| s.is_power_of_two())
        .unwrap_or(4096)
}

/// The `tpacket_req3` for `opts`.
fn ring_request(opts: &RingOptions) -> Result<libc::tpacket_req3, NetError> {
    let invalid = || NetError::Io {
        op: "setsockopt(PACKET_RX_RING)",
        source: io::Error::from_raw_os_error(libc::EINVAL),
    };
    let block = opts
        .block_bytes
        .max(page_size())
        .max(RING_FRAME_SLOT)
        .checked_next_power_of_two()
        .ok_or_else(invalid)?;
    let blocks = (opts.buffer_bytes / block).max(1);
    let to_u32 = |v: usize| u32::try_from(v).map_err(|_| invalid());
    let timeout_ms = opts
        .block_timeout
        .as_millis()
        .clamp(1, u128::from(u32::MAX));
    Ok(libc::tpacket_req3 {
        tp_block_size: to_u32(block)?,
        tp_block_nr: to_u32(blocks)?,
        tp_frame_size: to_u32(RING_FRAME_SLOT)?,
        tp_frame_nr: to_u32(block / RING_FRAME_SLOT * blocks)?,
        tp_retire_blk_tov: u32::try_from(timeout_ms).unwrap_or(u32::MAX),
        tp_sizeof_priv: 0,
        tp_feature_req_word: 0,
    })
}

/// Where reading stands in the block user space owns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    /// Frames of the block not handed out yet.
    remaining: u32,
    /// Where the next frame's `tpacket3_hdr` starts, from the block's start.
    next: usize,
    /// Where the first frame starts: the readable part of the block begins here (past the
    /// descriptor and its status word).
    first: usize,
}

/// The `mmap`ed `TPACKET_V3` ring: `blocks` blocks of `block_size` bytes. Each block belongs
/// either to the kernel, which fills it, or to user space, which reads it; its status word
/// (`block_status`, `TP_STATUS_USER` or `TP_STATUS_KERNEL`) says which, and is the only word
/// both sides touch: with an acquire load (the kernel's writes to the block are visible once
/// it reads `TP_STATUS_USER`) and a release store (our reads are done before the kernel may
/// write again). Blocks go round in order.
#[derive(Debug)]
struct Ring {
    base: NonNull<u8>,
    block_size: usize,
    blocks: usize,
    /// The block read next (or being read).
    current: usize,
    /// Set while user space owns `current`.
    cursor: Option<Cursor>,
}

impl Ring {
    /// Maps the ring the kernel made for `fd` with `req`.
    fn map(fd: BorrowedFd<'_>, req: &libc::tpacket_req3) -> Result<Ring, NetError> {
        let block_size = req.tp_block_size as usize;
        let blocks = req.tp_block_nr as usize;
        let len = block_size * blocks;
        // SAFETY: a new shared mapping of the socket's ring at an address the kernel chooses;
        // no memory of this process is affected. `len` is the size of the ring just set up.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(NetError::from_io(
                "mmap packet ring",
                io::Error::last_os_error(),
            ));
        }
        let base = NonNull::new(ptr.cast::<u8>()).ok_or(NetError::Io {
            op: "mmap packet ring",
            source: io::Error::from_raw_os_error(libc::EINVAL),
        })?;
        Ok(Ring {
            base,
            block_size,
            blocks,
            current: 0,
            cursor: None,
        })
    }

    /// A word of block `block`'s descriptor, as an atomic shared with the kernel.
    fn word(&self, block: usize, at: usize) -> &AtomicU32 {
        debug_assert!(block < self.blocks && at + 4 <= BLOCK_DESC_LEN);
        // SAFETY: `block * block_size + at` lies inside the mapping, which lives as long as
        // `self`; blocks start on page boundaries and `at` is a multiple of 4, so the word is
        // aligned. The kernel reads and writes these descriptor words with single aligned
        // accesses and barriers, and no non-atomic reference to them is ever made here (block
        // slices begin past the descriptor).
        unsafe {
            AtomicU32::from_ptr(
                self.base
                    .as_ptr()
                    .add(block * self.block_size + at)
                    .cast::<u32>(),
            )
        }
    }

    /// Takes the current block if the kernel handed it over; true when it did.
    fn acquire(&mut self) -> bool {
        let status = self
            .word(self.current, BLOCK_STATUS_AT)
            .load(Ordering::Acquire);
        if status & libc::TP_STATUS_USER == 0 {
            return false;
        }
        let remaining = self
            .word(self.current, BLOCK_NUM_PKTS_AT)
            .load(Ordering::Relaxed);
        let first = self
            .word(self.current, BLOCK_FIRST_AT)
            .load(Ordering::Relaxed) as usize;
        // A first frame inside the descriptor or past the block cannot be: read nothing.
        let sane = (BLOCK_DESC_LEN..self.block_size).contains(&first);
        self.cursor = Some(Cursor {
            remaining: if sane { remaining } else { 0 },
            next: first,
            first: if sane { first } else { self.block_size },
        });
        true
    }

    /// Gives the current block back to the kernel and moves to the next one.
    fn release(&mut self) {
        self.word(self.current, BLOCK_STATUS_AT)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.current = (self.current + 1) % self.blocks;
        self.cursor = None;
    }

    /// The frames part of the block user space owns: from its first frame to its end. Empty
    /// when no block is owned.
    fn frames(&self) -> &[u8] {
        let Some(cursor) = self.cursor else {
            return &[];
        };
        let first = cursor.first.min(self.block_size);
        // SAFETY: the bytes lie inside the mapping, which lives as long as `self`. User space
        // owns this block (its status was `TP_STATUS_USER` on an acquire load, and it is
        // released only through `&mut self`, which cannot happen while this borrow lives), and
        // the kernel does not write to a block user space owns. The slice starts past the
        // descriptor, so it never overlaps the status word accessed atomically.
        unsafe {
            std::slice::from_raw_parts(
                self.base
                    .as_ptr()
                    .add(self.current * self.block_size + first),
                self.block_size - first,
            )
        }
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: `base` and the length are those `mmap` returned, and every slice into the
        // mapping borrows `self`, so none outlives it.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.block_size * self.blocks);
        }
    }
}

/// A frame's place in the block, parsed from its `tpacket3_hdr` and `sockaddr_ll`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RingEntry {
    frame: Frame,
    /// The frame's bytes, within [`Ring::frames`].
    data: Range<usize>,
    /// `tp_next_offset`: where the next frame starts, from this one (0 for the last).
    next_offset: usize,
}

/// Parses the frame whose `tpacket3_hdr` starts at `at` in `frames` (a block's readable part);
/// `None` when anything in it points outside the block.
fn parse_ring_entry(frames: &[u8], at: usize, ifindex: u32, link: LinkType) -> Option<RingEntry> {
    // Everything below is relative to the header, inside `entry`: no sum can overflow.
    let entry = frames.get(at..)?;
    let word = |field: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(
            entry.get(field..field + 4)?.try_into().ok()?,
        ))
    };
    let next_offset = word(mem::offset_of!(libc::tpacket3_hdr, tp_next_offset))? as usize;
    let sec = word(mem::offset_of!(libc::tpacket3_hdr, tp_sec))?;
    let nsec = word(mem::offset_of!(libc::tpacket3_hdr, tp_nsec))?;
    let snaplen = word(mem::offset_of!(libc::tpacket3_hdr, tp_snaplen))? as usize;
    let len = word(mem::offset_of!(libc::tpacket3_hdr, tp_len))? as usize;
    let mac_at = mem::offset_of!(libc::tpacket3_hdr, tp_mac);
    let mac = usize::from(u16::from_ne_bytes(
        entry.get(mac_at..mac_at + 2)?.try_into().ok()?,
    ));
    let addr = entry.get(RING_ADDR_AT..RING_ADDR_AT + mem::size_of::<libc::sockaddr_ll>())?;
    let addr = parse_sockaddr_ll(addr);
    // The frame starts past the headers and ends inside the block.
    if mac < RING_ADDR_AT || snaplen > entry.len().saturating_sub(mac) {
        return None;
    }
    Some(RingEntry {
        frame: Frame {
            len: snaplen,
            orig_len: len.max(snaplen),
            timestamp: time::timespec_to_system_time(i64::from(sec), i64::from(nsec)),
            pkttype: addr.map_or(PacketType::Unknown(u8::MAX), |a| a.pkttype.into()),
            protocol: addr.map_or(0, |a| a.protocol),
            ifindex: addr.map_or(ifindex, |a| a.ifindex),
            link_type: addr.map_or(link, |a| LinkType::from_arphrd(a.hatype)),
        },
        // `at + mac + snaplen <= frames.len()`, checked above.
        data: at + mac..at + mac + snaplen,
        next_offset,
    })
}

/// A capture on one interface through a `TPACKET_V3` ring shared with the kernel.
///
/// The kernel writes frames into the ring's blocks without a system call per frame and hands
/// over each block when it is full or after [`RingOptions::block_timeout`];
/// [`next_frame`](Self::next_frame) reads them in place and gives each block back once all its
/// frames were read. It never blocks: wait for the descriptor to become readable
/// (`net::poll`) when it returns `None`. Statistics, filters and directions work as for
/// [`Capture`].
#[derive(Debug)]
pub struct RingCapture {
    /// Declared before `sock`: unmapped before the socket is closed.
    ring: Ring,
    sock: Socket,
    iface: String,
    ifindex: u32,
    link: LinkType,
    skip_outgoing: bool,
    totals: CaptureStats,
}

impl RingCapture {
    /// Opens a ring capture on `iface`, its filter in place before the first frame (see
    /// [`Capture::open_filtered`]). `opts.buffer_bytes` and `opts.read_timeout` do not apply
    /// (the ring is the buffer, and reads never wait).
    ///
    /// Fails as [`Capture::open`] does, and with [`NetError::Io`] when the kernel cannot make
    /// or map the ring (`ENOMEM` for a ring too large).
    pub fn open(
        iface: &str,
        opts: CaptureOptions,
        ring: RingOptions,
        filter: impl FnOnce(LinkType) -> Option<BpfProgram>,
    ) -> Result<RingCapture, NetError> {
        let (sock, ifindex, skip_outgoing) = open_socket(iface, &opts)?;
        let fd = sock.as_fd();
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        setsockopt_int(fd, libc::SOL_PACKET, libc::PACKET_VERSION, version)
            .map_err(|e| NetError::from_io("setsockopt(PACKET_VERSION)", e))?;
        let req = ring_request(&ring)?;
        setsockopt(fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req)
            .map_err(|e| NetError::from_io("setsockopt(PACKET_RX_RING)", e))?;
        let ring = Ring::map(fd, &req)?;
        let link = start(&sock, iface, ifindex, opts.promiscuous, filter)?;
        Ok(RingCapture {
            ring,
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

    /// The ring's size: bytes per block and number of blocks.
    pub fn ring_size(&self) -> (usize, usize) {
        (self.ring.block_size, self.ring.blocks)
    }

    /// The next frame and its bytes, without waiting: `None` when the kernel has handed over
    /// nothing more yet. The bytes stay valid until the next call, which may give their block
    /// back to the kernel.
    pub fn next_frame(&mut self) -> Result<Option<(Frame, &[u8])>, NetError> {
        // Bounded: each turn hands out a frame, skips one, or gives a block back.
        let mut found = None;
        for _ in 0..DRAIN_LIMIT {
            let Some(cursor) = self.ring.cursor else {
                if !self.ring.acquire() {
                    break;
                }
                continue;
            };
            if cursor.remaining == 0 {
                self.ring.release();
                continue;
            }
            let at = cursor.next - cursor.first;
            let entry = parse_ring_entry(self.ring.frames(), at, self.ifindex, self.link);
            let Some(entry) = entry else {
                // A frame pointing outside its block: skip the rest of the block.
                self.ring.cursor = Some(Cursor {
                    remaining: 0,
                    ..cursor
                });
                continue;
            };
            let remaining = if entry.next_offset == 0 {
                0
            } else {
                cursor.remaining - 1
            };
            self.ring.cursor = Some(Cursor {
                remaining,
                next: cursor.next.saturating_add(entry.next_offset),
                ..cursor
            });
            if self.skip_outgoing && entry.frame.pkttype == PacketType::Outgoing {
                continue;
            }
            found = Some(entry);
            break;
        }
        Ok(found.map(|e| (e.frame, &self.ring.frames()[e.data])))
    }

    /// The counters since the capture was opened (see [`Capture::statistics`]).
    pub fn statistics(&mut self) -> Result<CaptureStats, NetError> {
        add_statistics(self.sock.as_fd(), &mut self.totals)?;
        Ok(self.totals)
    }

    /// Skips (or stops skipping) the frames this host sends (see
    /// [`Capture::set_ignore_outgoing`]).
    pub fn set_ignore_outgoing(&mut self, ignore: bool) -> Result<(), NetError> {
        self.skip_outgoing = set_ignore_outgoing(self.sock.as_fd(), ignore)?;
        Ok(())
    }
}

impl AsFd for RingCapture {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.sock.as_fd()
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

    /// A block's frames part holding one frame at `at`: its `tpacket3_hdr`, `sockaddr_ll`, and
    /// `data` at `mac` bytes from the header.
    fn ring_bytes(at: usize, mac: usize, data: &[u8], next: u32) -> Vec<u8> {
        let mut b = vec![0u8; at + mac + data.len() + 8];
        let put = |b: &mut Vec<u8>, field: usize, v: u32| {
            b[at + field..at + field + 4].copy_from_slice(&v.to_ne_bytes());
        };
        put(
            &mut b,
            mem::offset_of!(libc::tpacket3_hdr, tp_next_offset),
            next,
        );
        put(
            &mut b,
            mem::offset_of!(libc::tpacket3_hdr, tp_sec),
            1_700_000_000,
        );
        put(&mut b, mem::offset_of!(libc::tpacket3_hdr, tp_nsec), 5);
        put(
            &mut b,
            mem::offset_of!(libc::tpacket3_hdr, tp_snaplen),
            data.len() as u32,
        );
        put(
            &mut b,
            mem::offset_of!(libc::tpacket3_hdr, tp_len),
            data.len() as u32 + 100,
        );
        let m = at + mem::offset_of!(libc::tpacket3_hdr, tp_mac);
        b[m..m + 2].copy_from_slice(&(mac as u16).to_ne_bytes());
        let a = at + RING_ADDR_AT;
        b[a..a + 2].copy_from_slice(&(libc::AF_PACKET as u16).to_ne_bytes());
        b[a + 2..a + 4].copy_from_slice(&0x0800u16.to_be_bytes());
        b[a + 4..a + 8].copy_from_slice(&3i32.to_ne_bytes());
        b[a + 8..a + 10].copy_from_slice(&772u16.to_ne_bytes());
        b[a + 10] = libc::PACKET_OUTGOING;
        b[at + mac..at + mac + data.len()].copy_from_slice(data);
        b
    }

    #[test]
    fn ring_entries_are_parsed_from_their_headers() {
        let data = loopback_bytes();
        let bytes = ring_bytes(16, 82, &data, 200);
        let e = parse_ring_entry(&bytes, 16, 9, LinkType::Ethernet).expect("entry");
        assert_eq!(&bytes[e.data.clone()], &data[..]);
        assert_eq!(e.next_offset, 200);
        let f = e.frame;
        assert_eq!((f.len, f.orig_len), (data.len(), data.len() + 100));
        assert!(f.is_truncated());
        assert_eq!(
            f.timestamp,
            Some(SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 5))
        );
        assert_eq!(f.pkttype, PacketType::Outgoing);
        assert_eq!((f.protocol, f.ifindex), (0x0800, 3));
        assert_eq!(f.link_type, LinkType::Loopback);
        assert_eq!(f.ip_payload(&bytes[e.data]).map(<[u8]>::len), Some(28));
    }

    #[test]
    fn ring_entries_pointing_outside_their_block_are_refused() {
        let data = [0xabu8; 40];
        let good = ring_bytes(0, 82, &data, 0);
        assert!(parse_ring_entry(&good, 0, 1, LinkType::Ethernet).is_some());
        // Data running past the end of the block.
        let mut bad = good.clone();
        let at = mem::offset_of!(libc::tpacket3_hdr, tp_snaplen);
        bad[at..at + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert!(parse_ring_entry(&bad, 0, 1, LinkType::Ethernet).is_none());
        // Data that would overlap the headers.
        let mut bad = good.clone();
        let at = mem::offset_of!(libc::tpacket3_hdr, tp_mac);
        bad[at..at + 2].copy_from_slice(&4u16.to_ne_bytes());
        assert!(parse_ring_entry(&bad, 0, 1, LinkType::Ethernet).is_none());
        // A header past the end, and every cut of a good one: never a panic.
        assert!(parse_ring_entry(&good, good.len(), 1, LinkType::Ethernet).is_none());
        assert!(parse_ring_entry(&good, usize::MAX - 8, 1, LinkType::Ethernet).is_none());
        for cut in 0..good.len() {
            let _ = parse_ring_entry(&good[..cut], 0, 1, LinkType::Ethernet);
        }
    }

    #[test]
    fn ring_requests_are_whole_power_of_two_blocks() {
        let req = ring_request(&RingOptions::default()).expect("default");
        assert_eq!((req.tp_block_size, req.tp_block_nr), (256 << 10, 16));
        assert_eq!(req.tp_frame_size as usize, RING_FRAME_SLOT);
        assert_eq!(req.tp_frame_nr, (256 << 10) / 2048 * 16);
        assert_eq!(req.tp_retire_blk_tov, 10);
        let odd = ring_request(&RingOptions {
            buffer_bytes: 1000,
            block_bytes: 5000,
            block_timeout: Duration::from_micros(10),
        })
        .expect("odd sizes");
        assert_eq!((odd.tp_block_size, odd.tp_block_nr), (8192, 1));
        assert_eq!(odd.tp_retire_blk_tov, 1);
        assert!(
            ring_request(&RingOptions {
                block_bytes: usize::MAX,
                ..RingOptions::default()
            })
            .is_err()
        );
        assert_eq!(RING_ADDR_AT % libc::TPACKET_ALIGNMENT, 0);
        assert!(RING_ADDR_AT >= mem::size_of::<libc::tpacket3_hdr>());
        assert_eq!(BLOCK_STATUS_AT % 4, 0);
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

//! Pcap files: the one place rawkit reads and writes them, through the `pcap-file` crate (2.0).
//!
//! [`PcapWriter`] writes classic pcap (not pcapng) with nanosecond timestamps (magic
//! `0xa1b23c4d`, native byte order), a snap length of [`SNAPLEN`] and one link type for the
//! whole file: [`LinkType::RawIpv4`] (`LINKTYPE_RAW`, 101) for IPv4 datagrams as rawkit sends and
//! receives them on raw sockets, [`LinkType::Ethernet`] (1) for whole frames captured on an
//! interface (`lo` on Linux delivers a 14-byte all-zero Ethernet header).
//!
//! [`PcapReader`] reads classic pcap in either byte order and either resolution, for the link
//! types of [`LinkType`]; [`ipv4_payload`] strips the link header. A file cut short in its last
//! record yields every complete record and then [`PcapError::TruncatedRecord`].
//!
//! This module must never panic on any input file, and never hand pcap-file's types to callers:
//! its error and link-type types are rawkit's own, so that the crate can be replaced.
//!
//! ```
//! use rawkit::pcap::{LinkType, PcapReader, PcapWriter, ipv4_payload};
//! use std::time::{Duration, SystemTime};
//!
//! // An ICMP echo request from 127.0.0.1 to 127.0.0.2, built by hand.
//! let datagram = [
//!     0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0x7c, 0xde, 127, 0, 0, 1, 127, 0, 0, 2, //
//!     8, 0, 0xf7, 0xfe, 0, 1, 0, 0,
//! ];
//! let ts = SystemTime::UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789);
//!
//! let mut writer = PcapWriter::new(Vec::new(), LinkType::RawIpv4).unwrap();
//! writer.write_packet(ts, &datagram, datagram.len()).unwrap();
//! let file = writer.into_inner().unwrap();
//!
//! let mut reader = PcapReader::new(&file[..]).unwrap();
//! let record = reader.next().unwrap().unwrap();
//! assert_eq!(record.ts, ts);
//! assert_eq!(ipv4_payload(&record), Some(&datagram[..]));
//! assert!(reader.next().is_none());
//! ```

use std::fmt;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapParser};
use pcap_file::{DataLink, Endianness, TsResolution};

/// The snap length rawkit writes: 256 KiB, as tcpdump and dumpcap use, so that `lo`'s 64 KiB
/// frames are never cut.
pub const SNAPLEN: u32 = 262_144;

/// The longest record rawkit reads (16 MiB). A record header that claims more is taken for
/// corruption rather than buffered.
pub const MAX_RECORD_LEN: usize = 16 << 20;

/// Classic pcap magic numbers, as read big-endian from the first four bytes.
const MAGIC_MICROS: u32 = 0xa1b2_c3d4;
const MAGIC_NANOS: u32 = 0xa1b2_3c4d;
/// The first block type of a pcapng file (a Section Header Block); the same in both byte orders.
const PCAPNG_MAGIC: u32 = 0x0a0d_0d0a;

const GLOBAL_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;

const ETHERTYPE_IPV4: u16 = 0x0800;
/// IEEE 802.1Q customer VLAN tag, 802.1ad service tag, and the pre-standard QinQ tag.
const ETHERTYPE_VLAN_TAGS: [u16; 3] = [0x8100, 0x88a8, 0x9100];

/// The link-layer header type of a pcap file (the `network` field of its global header).
///
/// Only the types rawkit can take IPv4 out of are listed; a file with any other is refused with
/// [`PcapError::UnsupportedLinkType`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinkType {
    /// `LINKTYPE_ETHERNET` (1): an Ethernet II header, possibly with VLAN tags.
    Ethernet,
    /// `LINKTYPE_RAW` (101): a raw IP packet, IPv4 or IPv6 as its version nibble says. What
    /// rawkit writes for datagrams: every pcap reader decodes it.
    RawIpv4,
    /// `LINKTYPE_IPV4` (228): a raw IPv4 packet.
    Ipv4,
    /// `LINKTYPE_LINUX_SLL` (113): the 16-byte Linux "cooked" header (`tcpdump -i any`).
    LinuxSll,
    /// `LINKTYPE_LINUX_SLL2` (276): the 20-byte Linux cooked header, version 2.
    LinuxSll2,
}

impl LinkType {
    /// The `LINKTYPE_*` number written in the file.
    pub const fn number(self) -> u32 {
        match self {
            LinkType::Ethernet => 1,
            LinkType::RawIpv4 => 101,
            LinkType::Ipv4 => 228,
            LinkType::LinuxSll => 113,
            LinkType::LinuxSll2 => 276,
        }
    }

    /// The link type with this `LINKTYPE_*` number, if rawkit knows it.
    pub const fn from_number(number: u32) -> Option<LinkType> {
        match number {
            1 => Some(LinkType::Ethernet),
            101 => Some(LinkType::RawIpv4),
            228 => Some(LinkType::Ipv4),
            113 => Some(LinkType::LinuxSll),
            276 => Some(LinkType::LinuxSll2),
            _ => None,
        }
    }
}

impl fmt::Display for LinkType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            LinkType::Ethernet => "Ethernet",
            LinkType::RawIpv4 => "raw IP",
            LinkType::Ipv4 => "raw IPv4",
            LinkType::LinuxSll => "Linux cooked",
            LinkType::LinuxSll2 => "Linux cooked v2",
        };
        write!(f, "{name} ({})", self.number())
    }
}

/// The timestamp resolution of a pcap file, given by its magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Resolution {
    /// Magic `0xa1b2c3d4`: the fraction counts microseconds (the original format).
    Micros,
    /// Magic `0xa1b23c4d`: the fraction counts nanoseconds. What rawkit writes by default.
    Nanos,
}

/// An error reading or writing a pcap file. Each variant names the file when it is known
/// (`path` is `None` for readers and writers built over a stream); [`fmt::Display`] gives one
/// line, `<file>: <what>: <why>`, the OS reason included.
#[derive(Debug)]
#[non_exhaustive]
pub enum PcapError {
    /// The file could not be opened for reading.
    Open { path: PathBuf, source: io::Error },
    /// The file could not be created for writing.
    Create { path: PathBuf, source: io::Error },
    /// Reading failed (an I/O error, not a format problem).
    Read {
        path: Option<PathBuf>,
        source: io::Error,
    },
    /// Writing or flushing failed (a full disk, a closed pipe, ...). Once this happened, the
    /// file may end in a partial record: the writer refuses further packets and flushes,
    /// repeating this first failure's reason.
    Write {
        path: Option<PathBuf>,
        source: io::Error,
    },
    /// The file has no bytes at all.
    Empty { path: Option<PathBuf> },
    /// The file is shorter than the 24-byte pcap global header.
    TruncatedHeader { path: Option<PathBuf>, have: usize },
    /// The file does not start with a pcap magic number.
    BadMagic { path: Option<PathBuf>, magic: u32 },
    /// The file is pcapng, which rawkit does not read.
    Pcapng { path: Option<PathBuf> },
    /// The file's link type is not one of [`LinkType`].
    UnsupportedLinkType { path: Option<PathBuf>, number: u32 },
    /// The file ends inside a record. `frame` counts from 1, as Wireshark numbers frames;
    /// `need` is the record's header plus its captured bytes, `have` what the file still held.
    /// Every record before it was read.
    TruncatedRecord {
        path: Option<PathBuf>,
        frame: u64,
        have: usize,
        need: usize,
    },
    /// A record header that cannot be right: it claims more than [`MAX_RECORD_LEN`] bytes.
    BadRecord {
        path: Option<PathBuf>,
        frame: u64,
        incl_len: u32,
    },
    /// A packet the writer cannot store: a timestamp outside what classic pcap holds (1970 to
    /// 2106), or an original length shorter than the data or above `u32::MAX`.
    InvalidPacket {
        path: Option<PathBuf>,
        reason: String,
    },
}

impl PcapError {
    /// The file the error is about, when known.
    pub fn path(&self) -> Option<&Path> {
        match self {
            PcapError::Open { path, .. } | PcapError::Create { path, .. } => Some(path),
            PcapError::Read { path, .. }
            | PcapError::Write { path, .. }
            | PcapError::Empty { path }
            | PcapError::TruncatedHeader { path, .. }
            | PcapError::BadMagic { path, .. }
            | PcapError::Pcapng { path }
            | PcapError::UnsupportedLinkType { path, .. }
            | PcapError::TruncatedRecord { path, .. }
            | PcapError::BadRecord { path, .. }
            | PcapError::InvalidPacket { path, .. } => path.as_deref(),
        }
    }
}

impl fmt::Display for PcapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.path() {
            Some(path) => write!(f, "{}: ", path.display())?,
            None => f.write_str("pcap: ")?,
        }
        match self {
            PcapError::Open { source, .. } => write!(f, "cannot open: {source}"),
            PcapError::Create { source, .. } => write!(f, "cannot create: {source}"),
            PcapError::Read { source, .. } => write!(f, "cannot read: {source}"),
            PcapError::Write { source, .. } => write!(f, "cannot write: {source}"),
            PcapError::Empty { .. } => f.write_str("empty file, not a pcap file"),
            PcapError::TruncatedHeader { have, .. } => write!(
                f,
                "not a pcap file: {have} bytes, shorter than the {GLOBAL_HEADER_LEN}-byte pcap header"
            ),
            PcapError::BadMagic { magic, .. } => write!(
                f,
                "not a pcap file: magic number {magic:#010x}, expected {MAGIC_MICROS:#010x} or \
                 {MAGIC_NANOS:#010x} in either byte order"
            ),
            PcapError::Pcapng { path } => {
                let input = path.as_deref().unwrap_or(Path::new("in.pcapng"));
                write!(
                    f,
                    "this is a pcapng file; rawkit reads classic pcap only: convert it with \
                     `tshark -F pcap -w out.pcap -r {}`",
                    input.display()
                )
            }
            PcapError::UnsupportedLinkType { number, .. } => write!(
                f,
                "unsupported link type {number}; rawkit reads Ethernet (1), raw IP (101), raw \
                 IPv4 (228), Linux cooked (113) and Linux cooked v2 (276)"
            ),
            PcapError::TruncatedRecord {
                frame, have, need, ..
            } => write!(
                f,
                "frame {frame} truncated: need {need} bytes (record header and data), have {have}"
            ),
            PcapError::BadRecord {
                frame, incl_len, ..
            } => write!(
                f,
                "frame {frame}: corrupt record header: captured length {incl_len} exceeds \
                 {MAX_RECORD_LEN} bytes"
            ),
            PcapError::InvalidPacket { reason, .. } => write!(f, "cannot store packet: {reason}"),
        }
    }
}

/// The OS reason is part of the one-line [`fmt::Display`], so `source` adds nothing to print;
/// the `io::Error` itself is in the variant for callers who match on it.
impl std::error::Error for PcapError {}

/// One record of a pcap file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PcapRecord {
    /// When the packet was captured.
    pub ts: SystemTime,
    /// The captured bytes, link header included; fewer than `orig_len` when the capture was
    /// cut at the snap length.
    pub data: Vec<u8>,
    /// The packet's length on the wire.
    pub orig_len: usize,
    /// The file's link type: what `data` starts with.
    pub link: LinkType,
}

impl PcapRecord {
    /// The IPv4 datagram inside this record; see [`ipv4_payload`].
    pub fn ipv4(&self) -> Option<&[u8]> {
        ipv4_payload(self)
    }
}

/// The IPv4 datagram of a record, its link header stripped: `None` when the record does not
/// carry IPv4 (an ARP frame, IPv6, a header cut short).
///
/// Ethernet frames carry IPv4 under ethertype 0x0800, after zero, one or two VLAN tags (802.1Q
/// 0x8100, 802.1ad 0x88a8, 0x9100). Raw IP records must start with version nibble 4. Linux cooked
/// headers carry the ethertype at offset 14 (SLL) or 0 (SLL2).
///
/// The slice runs to the end of the captured bytes, so it may end with link-layer padding (an
/// Ethernet frame is at least 60 bytes): the IPv4 total length says where the datagram ends.
pub fn ipv4_payload(record: &PcapRecord) -> Option<&[u8]> {
    let data = &record.data[..];
    let ip = match record.link {
        LinkType::RawIpv4 | LinkType::Ipv4 => data,
        LinkType::Ethernet => ethernet_ipv4(data)?,
        LinkType::LinuxSll => {
            // sll_pkttype, sll_hatype, sll_halen, sll_addr[8], then the protocol.
            (read_be16(data, 14)? == ETHERTYPE_IPV4).then_some(data.get(16..)?)?
        }
        LinkType::LinuxSll2 => {
            // The protocol first, then reserved, ifindex, hatype, pkttype, halen, addr[8].
            (read_be16(data, 0)? == ETHERTYPE_IPV4).then_some(data.get(20..)?)?
        }
    };
    (ip.first()? >> 4 == 4).then_some(ip)
}

fn ethernet_ipv4(frame: &[u8]) -> Option<&[u8]> {
    // Destination and source addresses, then the ethertype; each VLAN tag inserts a TPID (the
    // tag's ethertype) and a TCI before the real ethertype. At most two tags (QinQ).
    let mut at = 12;
    for _ in 0..=2 {
        let ethertype = read_be16(frame, at)?;
        if ethertype == ETHERTYPE_IPV4 {
            return frame.get(at + 2..);
        }
        if !ETHERTYPE_VLAN_TAGS.contains(&ethertype) {
            return None;
        }
        at += 4;
    }
    None
}

fn read_be16(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

/// Writes a classic pcap file over any [`Write`].
///
/// The global header is written at creation; each [`write_packet`](PcapWriter::write_packet)
/// appends one record. Call [`flush`](PcapWriter::flush) (or
/// [`into_inner`](PcapWriter::into_inner)) to learn whether everything reached the file: `Drop`
/// flushes too, but can only ignore an error.
pub struct PcapWriter<W: Write> {
    /// `None` only once `into_inner` took it.
    inner: Option<Sinks<W>>,
    path: Option<PathBuf>,
    link: LinkType,
    resolution: Resolution,
    packets_written: u64,
    /// The first write failure, repeated by every later call.
    failed: Option<Failure>,
}

/// What is kept of a write failure to report it again (`io::Error` is not `Clone`).
#[derive(Debug)]
struct Failure {
    os_error: Option<i32>,
    kind: io::ErrorKind,
    message: String,
}

impl Failure {
    fn of(e: &io::Error) -> Failure {
        Failure {
            os_error: e.raw_os_error(),
            kind: e.kind(),
            message: e.to_string(),
        }
    }

    fn to_io_error(&self) -> io::Error {
        match self.os_error {
            Some(code) => io::Error::from_raw_os_error(code),
            None => io::Error::new(self.kind, self.message.clone()),
        }
    }
}

impl PcapWriter<BufWriter<File>> {
    /// Creates (or truncates) the file at `path` and writes the pcap header with nanosecond
    /// timestamps.
    pub fn create(
        path: impl AsRef<Path>,
        link: LinkType,
    ) -> Result<PcapWriter<BufWriter<File>>, PcapError> {
        let path = path.as_ref();
        let file = File::create(path).map_err(|source| PcapError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        PcapWriter::build(
            BufWriter::new(file),
            link,
            Resolution::Nanos,
            Some(path.to_path_buf()),
        )
    }
}

impl<W: Write> PcapWriter<W> {
    /// A writer over `writer` with nanosecond timestamps; writes the pcap header.
    pub fn new(writer: W, link: LinkType) -> Result<PcapWriter<W>, PcapError> {
        PcapWriter::build(writer, link, Resolution::Nanos, None)
    }

    /// A writer over `writer` with the given timestamp resolution (microseconds for tools that
    /// predate the nanosecond magic); writes the pcap header.
    pub fn with_resolution(
        writer: W,
        link: LinkType,
        resolution: Resolution,
    ) -> Result<PcapWriter<W>, PcapError> {
        PcapWriter::build(writer, link, resolution, None)
    }

    fn build(
        writer: W,
        link: LinkType,
        resolution: Resolution,
        path: Option<PathBuf>,
    ) -> Result<PcapWriter<W>, PcapError> {
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen: SNAPLEN,
            datalink: DataLink::from(link.number()),
            ts_resolution: match resolution {
                Resolution::Micros => TsResolution::MicroSecond,
                Resolution::Nanos => TsResolution::NanoSecond,
            },
            endianness: Endianness::native(),
        };
        let sink = Arc::new(Mutex::new(writer));
        let pcap = pcap_file::pcap::PcapWriter::with_header(SharedSink(Arc::clone(&sink)), header)
            .map_err(|e| write_error(&path, e))?;
        Ok(PcapWriter {
            inner: Some(Sinks { pcap, sink }),
            path,
            link,
            resolution,
            packets_written: 0,
            failed: None,
        })
    }

    /// Appends one record: the packet captured at `ts`, `data` its captured bytes and
    /// `orig_len` its length on the wire (at least `data.len()`). Data beyond [`SNAPLEN`] is
    /// cut, as a capture would, and `orig_len` keeps the real length. The timestamp is stored
    /// to the writer's resolution (truncated, not rounded).
    pub fn write_packet(
        &mut self,
        ts: SystemTime,
        data: &[u8],
        orig_len: usize,
    ) -> Result<(), PcapError> {
        if let Some(failure) = &self.failed {
            return Err(self.repeat(failure));
        }
        let since_epoch = ts.duration_since(SystemTime::UNIX_EPOCH).map_err(|_| {
            self.invalid_packet("timestamp before 1970; classic pcap cannot store it".to_string())
        })?;
        if since_epoch.as_secs() > u64::from(u32::MAX) {
            return Err(self.invalid_packet(format!(
                "timestamp {} s after 1970 is past 2106, beyond classic pcap's 32-bit seconds",
                since_epoch.as_secs()
            )));
        }
        if orig_len < data.len() {
            return Err(self.invalid_packet(format!(
                "original length {orig_len} is shorter than the {} bytes of data",
                data.len()
            )));
        }
        let orig_len = u32::try_from(orig_len).map_err(|_| {
            self.invalid_packet(format!("original length {orig_len} exceeds u32::MAX"))
        })?;
        let captured = &data[..data.len().min(SNAPLEN as usize)];
        let packet = PcapPacket::new(since_epoch, orig_len, captured);
        let Some(inner) = self.inner.as_mut() else {
            return Ok(());
        };
        if let Err(e) = inner.pcap.write_packet(&packet) {
            let err = write_error(&self.path, e);
            if let PcapError::Write { source, .. } = &err {
                self.failed = Some(Failure::of(source));
            }
            return Err(err);
        }
        self.packets_written += 1;
        Ok(())
    }

    /// Pushes buffered records to the file; reports a full disk or a closed pipe.
    pub fn flush(&mut self) -> Result<(), PcapError> {
        if let Some(failure) = &self.failed {
            return Err(self.repeat(failure));
        }
        let Some(inner) = self.inner.as_ref() else {
            return Ok(());
        };
        let result = lock(&inner.sink).flush();
        result.map_err(|source| {
            self.failed = Some(Failure::of(&source));
            PcapError::Write {
                path: self.path.clone(),
                source,
            }
        })
    }

    /// How many records [`write_packet`](PcapWriter::write_packet) accepted (some may still be
    /// buffered: [`flush`](PcapWriter::flush) says whether they reached the file).
    pub fn packets_written(&self) -> u64 {
        self.packets_written
    }

    /// The link type given at creation.
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// The timestamp resolution given at creation.
    pub fn resolution(&self) -> Resolution {
        self.resolution
    }

    /// The file written, when the writer was made by [`PcapWriter::create`].
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Flushes and returns the underlying writer.
    pub fn into_inner(mut self) -> Result<W, PcapError> {
        self.flush()?;
        let Some(Sinks { pcap, sink }) = self.inner.take() else {
            unreachable!("only into_inner takes the sinks, and it consumes the writer")
        };
        // pcap-file's writer holds the only other handle on the sink.
        drop(pcap);
        match Arc::try_unwrap(sink) {
            Ok(mutex) => Ok(mutex.into_inner().unwrap_or_else(PoisonError::into_inner)),
            Err(_) => unreachable!("the sink has no other handle once pcap-file's writer is gone"),
        }
    }

    fn invalid_packet(&self, reason: String) -> PcapError {
        PcapError::InvalidPacket {
            path: self.path.clone(),
            reason,
        }
    }

    fn repeat(&self, failure: &Failure) -> PcapError {
        PcapError::Write {
            path: self.path.clone(),
            source: failure.to_io_error(),
        }
    }
}

impl<W: Write> Drop for PcapWriter<W> {
    fn drop(&mut self) {
        if let Some(inner) = &self.inner
            && self.failed.is_none()
        {
            let _ = lock(&inner.sink).flush();
        }
    }
}

impl<W: Write> fmt::Debug for PcapWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcapWriter")
            .field("path", &self.path)
            .field("link", &self.link)
            .field("resolution", &self.resolution)
            .field("packets_written", &self.packets_written)
            .field("failed", &self.failed.as_ref().map(|f| &f.message))
            .finish_non_exhaustive()
    }
}

/// pcap-file's writer, and a second handle on the sink it writes to: pcap-file 2.0's writer offers
/// neither `flush` nor `get_mut`.
struct Sinks<W: Write> {
    pcap: pcap_file::pcap::PcapWriter<SharedSink<W>>,
    sink: Arc<Mutex<W>>,
}

/// The sink as pcap-file's writer sees it: a second handle on the writer rawkit keeps, so that
/// rawkit can flush it and take it back. Only `&mut PcapWriter` methods touch either handle, so
/// the lock is never contended.
struct SharedSink<W>(Arc<Mutex<W>>);

impl<W: Write> Write for SharedSink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        lock(&self.0).write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        lock(&self.0).write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        lock(&self.0).flush()
    }
}

fn lock<W>(sink: &Mutex<W>) -> std::sync::MutexGuard<'_, W> {
    // A panic while writing leaves at worst a partial record, which the error already reported.
    sink.lock().unwrap_or_else(PoisonError::into_inner)
}

fn write_error(path: &Option<PathBuf>, e: pcap_file::PcapError) -> PcapError {
    let path = path.clone();
    match e {
        pcap_file::PcapError::IoError(source) => PcapError::Write { path, source },
        // write_packet validates lengths and timestamps first, so only I/O can fail here.
        other => PcapError::InvalidPacket {
            path,
            reason: other.to_string(),
        },
    }
}

/// Reads a classic pcap file from any [`Read`]; an [`Iterator`] of records.
///
/// The global header is read and checked by [`PcapReader::new`] (or [`PcapReader::open`]):
/// bad magic, pcapng, an empty or short file, or an unknown link type fail there. Records then
/// come one at a time, each validated before its bytes are buffered. After the first error the
/// iterator ends.
pub struct PcapReader<R: Read> {
    input: Input<R>,
    path: Option<PathBuf>,
    parser: PcapParser,
    link: LinkType,
    /// Records yielded so far.
    frames: u64,
    done: bool,
}

impl PcapReader<File> {
    /// Opens the file at `path` and reads its pcap header.
    pub fn open(path: impl AsRef<Path>) -> Result<PcapReader<File>, PcapError> {
        let path = path.as_ref();
        let file = File::open(path).map_err(|source| PcapError::Open {
            path: path.to_path_buf(),
            source,
        })?;
        PcapReader::build(file, Some(path.to_path_buf()))
    }
}

impl<R: Read> PcapReader<R> {
    /// A reader over `reader`; reads and checks the pcap header.
    pub fn new(reader: R) -> Result<PcapReader<R>, PcapError> {
        PcapReader::build(reader, None)
    }

    fn build(reader: R, path: Option<PathBuf>) -> Result<PcapReader<R>, PcapError> {
        let mut input = Input {
            reader,
            buf: vec![0; 64 * 1024],
            start: 0,
            end: 0,
            eof: false,
        };
        input
            .fill_to(GLOBAL_HEADER_LEN)
            .map_err(|source| PcapError::Read {
                path: path.clone(),
                source,
            })?;
        let head = input.available();
        if head.is_empty() {
            return Err(PcapError::Empty { path });
        }
        if let Some(magic) = head.get(..4) {
            let magic = u32::from_be_bytes(magic.try_into().expect("four bytes"));
            if magic == PCAPNG_MAGIC {
                return Err(PcapError::Pcapng { path });
            }
            let known = [MAGIC_MICROS, MAGIC_NANOS];
            if !known.contains(&magic) && !known.contains(&magic.swap_bytes()) {
                return Err(PcapError::BadMagic { path, magic });
            }
        }
        if head.len() < GLOBAL_HEADER_LEN {
            return Err(PcapError::TruncatedHeader {
                path,
                have: head.len(),
            });
        }
        let parser = match PcapParser::new(head) {
            Ok((_, parser)) => parser,
            // The magic was checked and the length suffices: pcap-file has nothing else to
            // reject in a global header.
            Err(_) => {
                let magic = u32::from_be_bytes([head[0], head[1], head[2], head[3]]);
                return Err(PcapError::BadMagic { path, magic });
            }
        };
        // The upper bits of the field may carry FCS information (libpcap's LT_LINKTYPE mask).
        let number = u32::from(parser.header().datalink) & 0xffff;
        let Some(link) = LinkType::from_number(number) else {
            return Err(PcapError::UnsupportedLinkType { path, number });
        };
        input.start = GLOBAL_HEADER_LEN;
        Ok(PcapReader {
            input,
            path,
            parser,
            link,
            frames: 0,
            done: false,
        })
    }

    /// The file's link type.
    pub fn link(&self) -> LinkType {
        self.link
    }

    /// The file's timestamp resolution.
    pub fn resolution(&self) -> Resolution {
        match self.parser.header().ts_resolution {
            TsResolution::MicroSecond => Resolution::Micros,
            TsResolution::NanoSecond => Resolution::Nanos,
        }
    }

    /// The snap length the file's header declares (not enforced: some writers set it wrong).
    pub fn snaplen(&self) -> u32 {
        self.parser.header().snaplen
    }

    /// True when the file was written big-endian.
    pub fn is_big_endian(&self) -> bool {
        self.parser.header().endianness.is_big()
    }

    /// The file being read, when the reader was made by [`PcapReader::open`].
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The next record, `None` at the end of the file or after an error.
    pub fn next_record(&mut self) -> Option<Result<PcapRecord, PcapError>> {
        if self.done {
            return None;
        }
        let result = self.read_record();
        if !matches!(result, Some(Ok(_))) {
            self.done = true;
        }
        result
    }

    fn read_record(&mut self) -> Option<Result<PcapRecord, PcapError>> {
        let frame = self.frames + 1;
        if let Err(e) = self.fill_to(RECORD_HEADER_LEN) {
            return Some(Err(e));
        }
        let have = self.input.available().len();
        if have == 0 {
            return None;
        }
        if have < RECORD_HEADER_LEN {
            return Some(Err(self.truncated(frame, have, RECORD_HEADER_LEN)));
        }
        // incl_len, the third field, sizes the record: check it before buffering that much.
        let field: [u8; 4] = self.input.available()[8..12]
            .try_into()
            .expect("four bytes");
        let incl_len = match self.parser.header().endianness {
            Endianness::Big => u32::from_be_bytes(field),
            Endianness::Little => u32::from_le_bytes(field),
        };
        if incl_len as usize > MAX_RECORD_LEN {
            return Some(Err(PcapError::BadRecord {
                path: self.path.clone(),
                frame,
                incl_len,
            }));
        }
        let need = RECORD_HEADER_LEN + incl_len as usize;
        if let Err(e) = self.fill_to(need) {
            return Some(Err(e));
        }
        let have = self.input.available().len();
        if have < need {
            return Some(Err(self.truncated(frame, have, need)));
        }
        // pcap-file's PcapPacket would also reject orig_len > snaplen, which every capture cut
        // at its snap length has (tcpdump -s 96): take the raw record and keep what it says.
        let raw = match self.parser.next_raw_packet(self.input.available()) {
            Ok((_, raw)) => raw,
            // The whole record is buffered, and a raw record has nothing else to reject.
            Err(_) => return Some(Err(self.truncated(frame, have, need))),
        };
        let fraction = match self.parser.header().ts_resolution {
            TsResolution::MicroSecond => Duration::from_micros(u64::from(raw.ts_frac)),
            TsResolution::NanoSecond => Duration::from_nanos(u64::from(raw.ts_frac)),
        };
        // A fraction of a second or more (a sloppy writer) carries into the seconds, as
        // Wireshark shows it.
        let ts = SystemTime::UNIX_EPOCH + Duration::from_secs(u64::from(raw.ts_sec)) + fraction;
        let record = PcapRecord {
            ts,
            data: raw.data.into_owned(),
            orig_len: raw.orig_len as usize,
            link: self.link,
        };
        self.input.start += need;
        self.frames = frame;
        Some(Ok(record))
    }

    fn fill_to(&mut self, want: usize) -> Result<(), PcapError> {
        self.input.fill_to(want).map_err(|source| PcapError::Read {
            path: self.path.clone(),
            source,
        })
    }

    fn truncated(&self, frame: u64, have: usize, need: usize) -> PcapError {
        PcapError::TruncatedRecord {
            path: self.path.clone(),
            frame,
            have,
            need,
        }
    }
}

/// The reader's input and what was read of it but not parsed yet: `buf[start..end]`.
struct Input<R> {
    reader: R,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
}

impl<R: Read> Input<R> {
    fn available(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Reads until `want` bytes are available or the input ends.
    fn fill_to(&mut self, want: usize) -> io::Result<()> {
        while self.end - self.start < want && !self.eof {
            if self.start + want > self.buf.len() {
                // Move what is left to the front, and grow if a record needs more room.
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
                if want > self.buf.len() {
                    self.buf.resize(want, 0);
                }
            }
            match self.reader.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(n) => self.end += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl<R: Read> Iterator for PcapReader<R> {
    type Item = Result<PcapRecord, PcapError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_record()
    }
}

impl<R: Read> std::iter::FusedIterator for PcapReader<R> {}

impl<R: Read> fmt::Debug for PcapReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PcapReader")
            .field("path", &self.path)
            .field("link", &self.link)
            .field("resolution", &self.resolution())
            .field("frames", &self.frames)
            .finish_non_exhaustive()
    }
}

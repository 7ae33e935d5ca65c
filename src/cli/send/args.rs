//! The command line of `rawkit send`: clap structures and the value parsers behind them.
//!
//! Each parser returns the words that follow `invalid value 'X' for '--flag <V>': ` in clap's
//! one-line message. Nothing here opens a socket or reads a file: checks that need several flags
//! at once live in [`super::craft`].

use super::super::args::{int_in, seconds};
use crate::packet::display::parse_hex;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

/// `rawkit send udp|icmp|raw --dst ADDR [OPTIONS]`
#[derive(Debug, Args)]
#[command(
    about = "Craft and send IPv4 datagrams (UDP, ICMP or raw): every header field, IPv4 options, \
             fragments, wrong checksums; show the replies; record and replay pcap",
    subcommand_required = true,
    arg_required_else_help = true,
    after_help = super::AFTER_HELP
)]
pub struct SendArgs {
    /// What to send.
    #[command(subcommand)]
    pub proto: ProtoArgs,
}

/// The protocol after the IPv4 header.
#[derive(Debug, Subcommand)]
pub enum ProtoArgs {
    /// A UDP datagram (protocol 17).
    #[command(after_help = super::AFTER_HELP)]
    Udp(Box<UdpArgs>),
    /// An ICMP message (protocol 1): echo, errors with a quoted datagram and RFC 4884 MPLS
    /// extensions, any type and code.
    #[command(after_help = super::AFTER_HELP)]
    Icmp(Box<IcmpArgs>),
    /// Raw bytes after the IPv4 header (any --proto); or replay a capture with --from-pcap.
    #[command(after_help = super::AFTER_HELP)]
    Raw(Box<RawArgs>),
}

/// Parses the text of `--quote`: the same flags as `rawkit send`, for the datagram to quote.
#[derive(Debug, Parser)]
#[command(name = "--quote", no_binary_name = true, disable_help_flag = true)]
pub struct QuoteCli {
    /// The quoted datagram.
    #[command(subcommand)]
    pub proto: ProtoArgs,
}

/// The IPv4 header.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "IPv4 header")]
pub struct Ipv4Args {
    /// Destination address (a dotted quad; names are not looked up).
    #[arg(long, value_name = "ADDR", value_parser = addr)]
    pub dst: Option<Ipv4Addr>,

    /// Source address [default: the address the route to --dst uses].
    #[arg(long, value_name = "ADDR", value_parser = addr)]
    pub src: Option<Ipv4Addr>,

    /// Time to live, 0 to 255 [default: 64].
    #[arg(long, value_name = "TTL", value_parser = |s: &str| int_in::<u8>(s, 0, 255))]
    pub ttl: Option<u8>,

    /// The whole TOS byte (DSCP and ECN), decimal or 0x hex.
    #[arg(long, value_name = "TOS", value_parser = u8_dec_or_hex, conflicts_with_all = ["dscp", "ecn"])]
    pub tos: Option<u8>,

    /// DSCP, the upper six bits of the TOS byte (0 to 63).
    #[arg(long, value_name = "DSCP", value_parser = |s: &str| int_in::<u8>(s, 0, 63))]
    pub dscp: Option<u8>,

    /// ECN, the lower two bits of the TOS byte (0 to 3).
    #[arg(long, value_name = "ECN", value_parser = |s: &str| int_in::<u8>(s, 0, 3))]
    pub ecn: Option<u8>,

    /// Identification, decimal or 0x hex, the same in every datagram [default: random, not 0,
    /// plus one per datagram]. 0 with DF clear is replaced by the kernel.
    #[arg(long, value_name = "ID", value_parser = u16_dec_or_hex)]
    pub id: Option<u16>,

    /// Set Don't Fragment.
    #[arg(long)]
    pub df: bool,

    /// Set More Fragments.
    #[arg(long)]
    pub mf: bool,

    /// Set the reserved flag bit (the "evil" bit of RFC 3514).
    #[arg(long)]
    pub evil: bool,

    /// Fragment offset in 8-byte units, as in the header (0 to 8191).
    #[arg(long, value_name = "UNITS", value_parser = |s: &str| int_in::<u16>(s, 0, 0x1fff))]
    pub frag_offset: Option<u16>,

    /// An IPv4 option, repeatable, in order: rr[=SLOTS], ts[=SLOTS], ts-addr[=PAIRS],
    /// lsrr=A,B,..., ssrr=A,B,..., ra[=VALUE], nop, eol, hex:BYTES. 40 bytes at most in all.
    #[arg(long = "ip-opt", value_name = "OPT", value_parser = ip_option)]
    pub ip_opt: Vec<IpOptArg>,

    /// Header length field in 32-bit words (0 to 15) instead of the real one; below 5 needs
    /// --force (Linux refuses to send it).
    #[arg(long, value_name = "WORDS", value_parser = |s: &str| int_in::<u8>(s, 0, 15))]
    pub ihl: Option<u8>,

    /// Total length field instead of the real one (the kernel rewrites it when sending).
    #[arg(long = "ip-len", value_name = "BYTES", value_parser = u16_dec_or_hex)]
    pub ip_len: Option<u16>,

    /// Header checksum: a value, or "bad" (the right one with a bit flipped); the kernel
    /// rewrites it when sending.
    #[arg(long = "ip-checksum", value_name = "VALUE|bad", value_parser = checksum_arg)]
    pub ip_checksum: Option<ChecksumArg>,

    /// Version field (default 4).
    #[arg(long = "ip-version", value_name = "N", value_parser = |s: &str| int_in::<u8>(s, 0, 15))]
    pub ip_version: Option<u8>,

    /// Protocol field, a number or a name (icmp, igmp, tcp, udp, gre, esp, ah, sctp...)
    /// [default: 17 for udp, 1 for icmp, 255 for raw].
    #[arg(long, value_name = "PROTO", value_parser = protocol)]
    pub proto: Option<u8>,

    /// Build headers no stack accepts (IHL below 5).
    #[arg(long)]
    pub force: bool,
}

/// The payload.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Payload")]
pub struct PayloadArgs {
    /// Payload text, as UTF-8 bytes.
    #[arg(long, value_name = "TEXT", group = "payload_source")]
    pub payload: Option<String>,

    /// Payload bytes in hex (pairs of digits; spaces, ':' and '-' allowed between bytes).
    #[arg(long = "payload-hex", value_name = "HEX", value_parser = hex_bytes, group = "payload_source")]
    pub payload_hex: Option<HexBytes>,

    /// Payload read from a file.
    #[arg(long = "payload-file", value_name = "PATH", group = "payload_source")]
    pub payload_file: Option<PathBuf>,

    /// Payload of SIZE bytes: zeros, or --pattern repeated.
    #[arg(long, value_name = "SIZE", value_parser = |s: &str| int_in::<usize>(s, 0, 65_535), group = "payload_source")]
    pub size: Option<usize>,

    /// Bytes in hex to repeat over the --size payload.
    #[arg(long, value_name = "HEX", value_parser = nonempty_hex, requires = "size")]
    pub pattern: Option<HexBytes>,
}

/// Splitting into fragments.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Fragments")]
pub struct FragArgs {
    /// Split the datagram into fragments of SIZE payload bytes (a multiple of 8).
    #[arg(long, value_name = "SIZE", value_parser = |s: &str| int_in::<usize>(s, 1, 65_535))]
    pub fragment: Option<usize>,

    /// Order the fragments go out in [default: in].
    #[arg(
        long = "frag-order",
        value_name = "ORDER",
        value_enum,
        requires = "fragment"
    )]
    pub frag_order: Option<FragOrder>,

    /// Make each fragment start BYTES before the previous one ended (a multiple of 8)
    /// [default when given alone: 8].
    #[arg(long, value_name = "BYTES", num_args = 0..=1, default_missing_value = "8", requires = "fragment",
          value_parser = |s: &str| int_in::<usize>(s, 1, 65_535))]
    pub overlap: Option<usize>,
}

/// Timing and output.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Timing and output")]
pub struct RunArgs {
    /// Send COUNT datagrams (with --fragment, COUNT times all the fragments) [default: 1, or
    /// until Ctrl-C with --flood].
    #[arg(short = 'c', long = "count", value_name = "COUNT", value_parser = |s: &str| int_in::<u64>(s, 1, i64::MAX as u64))]
    pub count: Option<u64>,

    /// Seconds between datagrams [default: 1].
    #[arg(short = 'i', long = "interval", value_name = "SECS", value_parser = |s: &str| seconds(s, 2_147_483.0),
          conflicts_with_all = ["rate", "flood"])]
    pub interval: Option<Duration>,

    /// Datagrams per second.
    #[arg(long, value_name = "PPS", value_parser = rate, conflicts_with = "flood")]
    pub rate: Option<f64>,

    /// As fast as the machine goes, no pacing; per-datagram output only with -v.
    #[arg(long)]
    pub flood: bool,

    /// Print the datagrams (hex dump and one-line decode) instead of sending them; needs no
    /// privileges.
    #[arg(long = "dry-run", conflicts_with = "listen")]
    pub dry_run: bool,

    /// One line per datagram sent.
    #[arg(short = 'v', long = "verbose")]
    pub verbose: bool,

    /// After the last datagram, wait up to SECS for replies that match what was sent (echo and
    /// other query replies, ICMP errors quoting it, UDP answers) and show them.
    #[arg(long, value_name = "SECS", value_parser = |s: &str| seconds(s, 86_400.0))]
    pub listen: Option<Duration>,

    /// JSON Lines on stdout (events sent, reply, summary; see README).
    #[arg(long)]
    pub json: bool,

    /// Also write the datagrams sent and the replies to this pcap file (raw IP link type).
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,
}

/// `rawkit send udp`.
#[derive(Debug, Clone, Args)]
pub struct UdpArgs {
    #[command(flatten)]
    pub ip: Ipv4Args,

    /// Source port [default: random, 32768 to 60999].
    #[arg(long, value_name = "PORT", value_parser = |s: &str| int_in::<u16>(s, 0, 65_535), help_heading = "UDP")]
    pub sport: Option<u16>,

    /// Destination port [default: 33434].
    #[arg(long, value_name = "PORT", value_parser = |s: &str| int_in::<u16>(s, 0, 65_535), help_heading = "UDP")]
    pub dport: Option<u16>,

    /// Length field instead of the real one.
    #[arg(long = "udp-len", value_name = "BYTES", value_parser = u16_dec_or_hex, help_heading = "UDP")]
    pub udp_len: Option<u16>,

    /// Checksum: a value, "bad" (the right one with a bit flipped, never 0) or "none" (0)
    /// [default: computed over the pseudo-header].
    #[arg(long = "udp-checksum", value_name = "VALUE|bad|none", value_parser = udp_checksum_arg, help_heading = "UDP")]
    pub udp_checksum: Option<UdpChecksumArg>,

    #[command(flatten)]
    pub payload: PayloadArgs,

    #[command(flatten)]
    pub frag: FragArgs,

    #[command(flatten)]
    pub run: RunArgs,
}

/// `rawkit send icmp`.
#[derive(Debug, Clone, Args)]
pub struct IcmpArgs {
    #[command(flatten)]
    pub ip: Ipv4Args,

    /// Type, a number or a name: echo-request, echo-reply, unreachable, source-quench,
    /// redirect, time-exceeded, parameter-problem, timestamp, timestamp-reply, info-request,
    /// info-reply, mask-request, mask-reply, router-advert, router-solicit [default:
    /// echo-request].
    #[arg(long = "type", value_name = "TYPE", value_parser = icmp_type, help_heading = "ICMP")]
    pub icmp_type: Option<u8>,

    /// Code, a number or a name for the type (port-unreachable, frag-needed, ttl, reassembly,
    /// host, ...) [default: 0].
    #[arg(long, value_name = "CODE", help_heading = "ICMP")]
    pub code: Option<String>,

    /// Identifier of echo, timestamp, information and mask messages [default: random].
    #[arg(long, value_name = "IDENT", value_parser = u16_dec_or_hex, help_heading = "ICMP")]
    pub ident: Option<u16>,

    /// Sequence number, the same in every datagram [default: 1, plus one per datagram].
    #[arg(long, value_name = "SEQ", value_parser = u16_dec_or_hex, help_heading = "ICMP")]
    pub seq: Option<u16>,

    /// Checksum: a value, or "bad" (the right one with a bit flipped) [default: computed].
    #[arg(long = "icmp-checksum", value_name = "VALUE|bad", value_parser = checksum_arg, help_heading = "ICMP")]
    pub icmp_checksum: Option<ChecksumArg>,

    /// The 4 bytes after the checksum ("rest of header"), decimal or 0x hex, for any type.
    #[arg(long, value_name = "VALUE", value_parser = u32_dec_or_hex, help_heading = "ICMP",
          conflicts_with_all = ["ident", "seq", "mtu", "pointer", "gateway"])]
    pub rest: Option<u32>,

    /// Next-hop MTU of a destination unreachable (RFC 1191, with --code frag-needed).
    #[arg(long, value_name = "MTU", value_parser = |s: &str| int_in::<u16>(s, 0, 65_535), help_heading = "ICMP")]
    pub mtu: Option<u16>,

    /// Pointer of a parameter problem (the offending byte's offset in the quote).
    #[arg(long, value_name = "OFFSET", value_parser = |s: &str| int_in::<u8>(s, 0, 255), help_heading = "ICMP")]
    pub pointer: Option<u8>,

    /// Gateway address of a redirect [default: 0.0.0.0].
    #[arg(long, value_name = "ADDR", value_parser = addr, help_heading = "ICMP")]
    pub gateway: Option<Ipv4Addr>,

    /// For error types: the datagram to quote, described with the flags of rawkit send, e.g.
    /// 'udp --dst 198.18.0.9 --dport 33434 --ttl 1' (its --src defaults to this --dst).
    #[arg(
        long,
        value_name = "DESCRIPTION",
        help_heading = "ICMP errors",
        conflicts_with = "quote_hex"
    )]
    pub quote: Option<String>,

    /// For error types: the quoted datagram as hex bytes.
    #[arg(long = "quote-hex", value_name = "HEX", value_parser = hex_bytes, help_heading = "ICMP errors")]
    pub quote_hex: Option<HexBytes>,

    /// How much of the --quote datagram to quote: a byte count or "all" [default: its header
    /// and 8 bytes, as RFC 792].
    #[arg(long = "quote-len", value_name = "BYTES|all", value_parser = quote_len, requires = "quote", help_heading = "ICMP errors")]
    pub quote_len: Option<QuoteLen>,

    /// An RFC 4950 MPLS label stack entry for an RFC 4884 extension (types 3, 11, 12),
    /// repeatable, top of the stack first: L=LABEL[,E=TC][,S=0|1][,T=TTL], or just the label
    /// [defaults: E=0, S=1 on the last entry only, T=1].
    #[arg(long, value_name = "ENTRY", value_parser = mpls_entry, help_heading = "ICMP errors")]
    pub mpls: Vec<MplsArg>,

    /// Another RFC 4884 extension object, repeatable: CLASS:CTYPE:HEX.
    #[arg(long = "ext-object", value_name = "CLASS:CTYPE:HEX", value_parser = ext_object, help_heading = "ICMP errors")]
    pub ext_object: Vec<ExtObjectArg>,

    #[command(flatten)]
    pub payload: PayloadArgs,

    #[command(flatten)]
    pub frag: FragArgs,

    #[command(flatten)]
    pub run: RunArgs,
}

/// `rawkit send raw`.
#[derive(Debug, Clone, Args)]
pub struct RawArgs {
    #[command(flatten)]
    pub ip: Ipv4Args,

    #[command(flatten)]
    pub payload: PayloadArgs,

    #[command(flatten)]
    pub frag: FragArgs,

    #[command(flatten)]
    pub run: RunArgs,

    /// Replay the IPv4 datagrams of this pcap file byte for byte (with --dst: to that address,
    /// checksums fixed); -c repeats the file.
    #[arg(long = "from-pcap", value_name = "FILE", help_heading = "Replay")]
    pub from_pcap: Option<PathBuf>,
}

impl ProtoArgs {
    /// The IPv4 flags.
    pub fn ip(&self) -> &Ipv4Args {
        match self {
            ProtoArgs::Udp(a) => &a.ip,
            ProtoArgs::Icmp(a) => &a.ip,
            ProtoArgs::Raw(a) => &a.ip,
        }
    }

    /// The payload flags.
    pub fn payload(&self) -> &PayloadArgs {
        match self {
            ProtoArgs::Udp(a) => &a.payload,
            ProtoArgs::Icmp(a) => &a.payload,
            ProtoArgs::Raw(a) => &a.payload,
        }
    }

    /// The fragment flags.
    pub fn frag(&self) -> &FragArgs {
        match self {
            ProtoArgs::Udp(a) => &a.frag,
            ProtoArgs::Icmp(a) => &a.frag,
            ProtoArgs::Raw(a) => &a.frag,
        }
    }

    /// The timing and output flags.
    pub fn run(&self) -> &RunArgs {
        match self {
            ProtoArgs::Udp(a) => &a.run,
            ProtoArgs::Icmp(a) => &a.run,
            ProtoArgs::Raw(a) => &a.run,
        }
    }

    /// `udp`, `icmp` or `raw`.
    pub fn name(&self) -> &'static str {
        match self {
            ProtoArgs::Udp(_) => "udp",
            ProtoArgs::Icmp(_) => "icmp",
            ProtoArgs::Raw(_) => "raw",
        }
    }
}

/// A checksum override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChecksumArg {
    /// This value.
    Value(u16),
    /// The right checksum with its low bit flipped.
    Bad,
}

/// The UDP checksum choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UdpChecksumArg {
    /// This value.
    Value(u16),
    /// Wrong on purpose (never 0).
    Bad,
    /// 0: no checksum.
    None,
}

/// How much of a described datagram to quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QuoteLen {
    /// The first N bytes.
    Bytes(usize),
    /// All of it.
    All,
}

/// Order of fragments on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FragOrder {
    /// Offset order.
    In,
    /// Last fragment first.
    Reverse,
    /// Shuffled, never in offset order (a new order for each datagram).
    Random,
}

/// One `--ip-opt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpOptArg {
    /// Record route with this many empty slots.
    RecordRoute(usize),
    /// Timestamps only (flag 0), this many slots.
    Timestamp(usize),
    /// Address and timestamp pairs (flag 1), this many pairs.
    TimestampAddr(usize),
    /// Loose source and record route through these hops.
    Lsrr(Vec<Ipv4Addr>),
    /// Strict source and record route through these hops.
    Ssrr(Vec<Ipv4Addr>),
    /// Router alert with this value.
    RouterAlert(u16),
    /// No operation.
    Nop,
    /// End of option list.
    Eol,
    /// Bytes as given.
    Hex(Vec<u8>),
}

/// One `--mpls` entry; `bottom` is decided later when not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MplsArg {
    /// 20-bit label.
    pub label: u32,
    /// Traffic class.
    pub tc: u8,
    /// Bottom of stack, when given.
    pub bottom: Option<bool>,
    /// TTL.
    pub ttl: u8,
}

/// One `--ext-object`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtObjectArg {
    /// Class-num.
    pub class_num: u8,
    /// C-type.
    pub c_type: u8,
    /// Payload.
    pub payload: Vec<u8>,
}

/// Hex bytes (a newtype so that clap does not read `Vec<u8>` as a list of values).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HexBytes(pub Vec<u8>);

/// An IPv4 address as a dotted quad.
pub fn addr(s: &str) -> Result<Ipv4Addr, String> {
    s.trim().parse().map_err(|_| {
        "not an IPv4 address: write it as a dotted quad such as 127.0.0.1 (names are not \
         looked up)"
            .to_string()
    })
}

fn dec_or_hex(s: &str, max: u64) -> Result<u64, String> {
    let t = s.trim();
    let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16).map_err(|_| "not a hex number".to_string())?
    } else {
        t.parse::<u64>()
            .map_err(|_| "not a number (decimal, or hex with 0x)".to_string())?
    };
    if v > max {
        return Err(format!("out of range: 0 <= value <= {max} (0x{max:x})"));
    }
    Ok(v)
}

/// A byte, decimal or `0x` hex.
pub fn u8_dec_or_hex(s: &str) -> Result<u8, String> {
    dec_or_hex(s, u8::MAX.into()).map(|v| v as u8)
}

/// A 16-bit value, decimal or `0x` hex.
pub fn u16_dec_or_hex(s: &str) -> Result<u16, String> {
    dec_or_hex(s, u16::MAX.into()).map(|v| v as u16)
}

/// A 32-bit value, decimal or `0x` hex.
pub fn u32_dec_or_hex(s: &str) -> Result<u32, String> {
    dec_or_hex(s, u32::MAX.into()).map(|v| v as u32)
}

/// `VALUE|bad`.
pub fn checksum_arg(s: &str) -> Result<ChecksumArg, String> {
    match s.trim() {
        "bad" => Ok(ChecksumArg::Bad),
        t => u16_dec_or_hex(t)
            .map(ChecksumArg::Value)
            .map_err(|e| format!("{e}; or \"bad\"")),
    }
}

/// `VALUE|bad|none`.
pub fn udp_checksum_arg(s: &str) -> Result<UdpChecksumArg, String> {
    match s.trim() {
        "bad" => Ok(UdpChecksumArg::Bad),
        "none" => Ok(UdpChecksumArg::None),
        t => u16_dec_or_hex(t)
            .map(UdpChecksumArg::Value)
            .map_err(|e| format!("{e}; or \"bad\", or \"none\"")),
    }
}

/// Hex bytes, possibly none.
pub fn hex_bytes(s: &str) -> Result<HexBytes, String> {
    parse_hex(s).map(HexBytes)
}

fn nonempty_hex(s: &str) -> Result<HexBytes, String> {
    let b = parse_hex(s)?;
    if b.is_empty() {
        return Err("empty: give at least one byte, e.g. ff".into());
    }
    Ok(HexBytes(b))
}

fn rate(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| "not a number of datagrams per second".to_string())?;
    if !v.is_finite() || v <= 0.0 || v > 1e9 {
        return Err("must be more than 0 and at most 1000000000".into());
    }
    Ok(v)
}

fn quote_len(s: &str) -> Result<QuoteLen, String> {
    match s.trim() {
        "all" => Ok(QuoteLen::All),
        t => int_in::<usize>(t, 0, 65_535)
            .map(QuoteLen::Bytes)
            .map_err(|e| format!("{e}; or \"all\"")),
    }
}

/// IANA protocol names rawkit knows.
const PROTOCOLS: [(&str, u8); 10] = [
    ("icmp", 1),
    ("igmp", 2),
    ("tcp", 6),
    ("udp", 17),
    ("ipv6", 41),
    ("gre", 47),
    ("esp", 50),
    ("ah", 51),
    ("icmpv6", 58),
    ("sctp", 132),
];

/// A protocol number or name.
pub fn protocol(s: &str) -> Result<u8, String> {
    let t = s.trim().to_ascii_lowercase();
    if let Some((_, n)) = PROTOCOLS.iter().find(|(name, _)| *name == t) {
        return Ok(*n);
    }
    int_in::<u8>(&t, 0, 255).map_err(|_| {
        let names: Vec<&str> = PROTOCOLS.iter().map(|(n, _)| *n).collect();
        format!(
            "unknown protocol: use a number 0 to 255 or one of {}",
            names.join(", ")
        )
    })
}

/// ICMP type names (RFC 792, RFC 950, RFC 1256).
pub const ICMP_TYPES: [(&str, u8); 17] = [
    ("echo-reply", 0),
    ("unreachable", 3),
    ("dest-unreach", 3),
    ("source-quench", 4),
    ("redirect", 5),
    ("echo-request", 8),
    ("echo", 8),
    ("router-advert", 9),
    ("router-solicit", 10),
    ("time-exceeded", 11),
    ("parameter-problem", 12),
    ("timestamp", 13),
    ("timestamp-reply", 14),
    ("info-request", 15),
    ("info-reply", 16),
    ("mask-request", 17),
    ("mask-reply", 18),
];

/// An ICMP type number or name.
pub fn icmp_type(s: &str) -> Result<u8, String> {
    let t = s.trim().to_ascii_lowercase();
    if let Some((_, n)) = ICMP_TYPES.iter().find(|(name, _)| *name == t) {
        return Ok(*n);
    }
    int_in::<u8>(&t, 0, 255).map_err(|_| {
        let names: Vec<&str> = ICMP_TYPES.iter().map(|(n, _)| *n).collect();
        format!(
            "unknown ICMP type: use a number 0 to 255 or one of {}",
            names.join(", ")
        )
    })
}

/// Code names per type.
fn code_names(icmp_type: u8) -> &'static [(&'static str, u8)] {
    match icmp_type {
        3 => &[
            ("net-unreachable", 0),
            ("net", 0),
            ("host-unreachable", 1),
            ("host", 1),
            ("protocol-unreachable", 2),
            ("protocol", 2),
            ("port-unreachable", 3),
            ("port", 3),
            ("frag-needed", 4),
            ("source-route-failed", 5),
            ("net-unknown", 6),
            ("host-unknown", 7),
            ("host-isolated", 8),
            ("net-prohibited", 9),
            ("host-prohibited", 10),
            ("net-tos", 11),
            ("host-tos", 12),
            ("admin-prohibited", 13),
            ("precedence-violation", 14),
            ("precedence-cutoff", 15),
        ],
        5 => &[("net", 0), ("host", 1), ("tos-net", 2), ("tos-host", 3)],
        11 => &[
            ("ttl", 0),
            ("ttl-exceeded", 0),
            ("reassembly", 1),
            ("frag-reassembly", 1),
        ],
        12 => &[("pointer", 0), ("missing-option", 1), ("bad-length", 2)],
        _ => &[],
    }
}

/// An ICMP code for `icmp_type`: a number, or a name that type knows.
pub fn icmp_code(icmp_type: u8, s: &str) -> Result<u8, String> {
    let t = s.trim().to_ascii_lowercase();
    if let Some((_, n)) = code_names(icmp_type).iter().find(|(name, _)| *name == t) {
        return Ok(*n);
    }
    int_in::<u8>(&t, 0, 255).map_err(|_| {
        let names: Vec<&str> = code_names(icmp_type).iter().map(|(n, _)| *n).collect();
        if names.is_empty() {
            format!("--code {s}: unknown code for ICMP type {icmp_type}: use a number 0 to 255")
        } else {
            format!(
                "--code {s}: unknown code for ICMP type {icmp_type}: use a number 0 to 255 or \
                 one of {}",
                names.join(", ")
            )
        }
    })
}

/// Most slots a record route or timestamp option can have in 40 bytes.
const MAX_SLOTS: usize = 9;

fn slots(value: Option<&str>, default: usize, max: usize, what: &str) -> Result<usize, String> {
    match value {
        None => Ok(default),
        Some(v) => int_in::<usize>(v, 1, max).map_err(|e| format!("{what}: {e}")),
    }
}

fn hops(value: Option<&str>, name: &str) -> Result<Vec<Ipv4Addr>, String> {
    let Some(v) = value.filter(|v| !v.trim().is_empty()) else {
        return Err(format!(
            "{name} needs its hops: {name}=A,B,... (dotted quads, the final destination last)"
        ));
    };
    let list: Vec<Ipv4Addr> = v
        .split(',')
        .map(|a| addr(a).map_err(|e| format!("{name}: '{a}': {e}")))
        .collect::<Result<_, _>>()?;
    if list.len() > MAX_SLOTS {
        return Err(format!(
            "{name}: {} hops, at most {MAX_SLOTS} fit in 40 bytes",
            list.len()
        ));
    }
    Ok(list)
}

/// One `--ip-opt` value.
pub fn ip_option(s: &str) -> Result<IpOptArg, String> {
    let s = s.trim();
    if let Some(h) = s.strip_prefix("hex:") {
        let b = parse_hex(h)?;
        if b.is_empty() || b.len() > 40 {
            return Err("hex: gives 1 to 40 bytes of options".into());
        }
        return Ok(IpOptArg::Hex(b));
    }
    let (name, value) = match s.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (s, None),
    };
    let no_value = |o: IpOptArg| {
        if value.is_some() {
            Err(format!("{name} takes no value"))
        } else {
            Ok(o)
        }
    };
    match name.to_ascii_lowercase().as_str() {
        "rr" => Ok(IpOptArg::RecordRoute(slots(
            value, MAX_SLOTS, MAX_SLOTS, "rr",
        )?)),
        "ts" => Ok(IpOptArg::Timestamp(slots(
            value, MAX_SLOTS, MAX_SLOTS, "ts",
        )?)),
        "ts-addr" => Ok(IpOptArg::TimestampAddr(slots(value, 4, 4, "ts-addr")?)),
        "lsrr" => Ok(IpOptArg::Lsrr(hops(value, "lsrr")?)),
        "ssrr" => Ok(IpOptArg::Ssrr(hops(value, "ssrr")?)),
        "ra" => Ok(IpOptArg::RouterAlert(match value {
            None => 0,
            Some(v) => u16_dec_or_hex(v).map_err(|e| format!("ra: {e}"))?,
        })),
        "nop" => no_value(IpOptArg::Nop),
        "eol" => no_value(IpOptArg::Eol),
        _ => Err(
            "unknown option: use rr[=SLOTS], ts[=SLOTS], ts-addr[=PAIRS], lsrr=A,B,..., \
             ssrr=A,B,..., ra[=VALUE], nop, eol or hex:BYTES"
                .into(),
        ),
    }
}

/// One `--mpls` entry: `L=24001,E=0,S=1,T=1` (any order, L required) or a bare label.
pub fn mpls_entry(s: &str) -> Result<MplsArg, String> {
    let mut e = MplsArg {
        label: 0,
        tc: 0,
        bottom: None,
        ttl: 1,
    };
    let s = s.trim();
    if !s.contains('=') {
        e.label = int_in::<u32>(s, 0, 0xf_ffff)
            .map_err(|x| format!("label: {x} (20 bits); or L=LABEL,E=TC,S=0|1,T=TTL"))?;
        return Ok(e);
    }
    let mut have_label = false;
    for part in s.split(',') {
        let Some((k, v)) = part.split_once('=') else {
            return Err(format!("'{part}': write KEY=VALUE (L, E, S, T)"));
        };
        match k.trim().to_ascii_uppercase().as_str() {
            "L" | "LABEL" => {
                e.label = int_in::<u32>(v, 0, 0xf_ffff).map_err(|x| format!("L: {x}"))?;
                have_label = true;
            }
            "E" | "TC" | "EXP" => e.tc = int_in::<u8>(v, 0, 7).map_err(|x| format!("E: {x}"))?,
            "S" => e.bottom = Some(int_in::<u8>(v, 0, 1).map_err(|x| format!("S: {x}"))? == 1),
            "T" | "TTL" => e.ttl = int_in::<u8>(v, 0, 255).map_err(|x| format!("T: {x}"))?,
            other => return Err(format!("unknown key '{other}': use L, E, S or T")),
        }
    }
    if !have_label {
        return Err("the label is missing: L=LABEL".into());
    }
    Ok(e)
}

/// One `--ext-object`: `CLASS:CTYPE:HEX`.
pub fn ext_object(s: &str) -> Result<ExtObjectArg, String> {
    let mut parts = s.trim().splitn(3, ':');
    let (Some(c), Some(t), Some(h)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("write CLASS:CTYPE:HEX, e.g. 2:1:0000000a".into());
    };
    let payload = parse_hex(h)?;
    if payload.len() > 65_531 {
        return Err("the object is longer than 65535 bytes".into());
    }
    Ok(ExtObjectArg {
        class_num: int_in::<u8>(c, 0, 255).map_err(|e| format!("class: {e}"))?,
        c_type: int_in::<u8>(t, 0, 255).map_err(|e| format!("c-type: {e}"))?,
        payload,
    })
}

/// Splits the text of `--quote` into words: whitespace separates, single or double quotes
/// group (without escapes).
pub fn split_words(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in s.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            None => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err("unbalanced quote".into());
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_parse_with_their_defaults_and_limits() {
        assert_eq!(ip_option("rr"), Ok(IpOptArg::RecordRoute(9)));
        assert_eq!(ip_option("rr=2"), Ok(IpOptArg::RecordRoute(2)));
        assert!(ip_option("rr=10").is_err());
        assert_eq!(ip_option("ts"), Ok(IpOptArg::Timestamp(9)));
        assert_eq!(ip_option("ts-addr"), Ok(IpOptArg::TimestampAddr(4)));
        assert_eq!(
            ip_option("lsrr=127.0.0.2,127.0.0.1"),
            Ok(IpOptArg::Lsrr(vec![
                Ipv4Addr::new(127, 0, 0, 2),
                Ipv4Addr::LOCALHOST
            ]))
        );
        assert!(ip_option("lsrr").unwrap_err().contains("needs its hops"));
        assert!(ip_option("ssrr=1.2.3").unwrap_err().contains("dotted quad"));
        assert_eq!(ip_option("ra"), Ok(IpOptArg::RouterAlert(0)));
        assert_eq!(ip_option("ra=0x1"), Ok(IpOptArg::RouterAlert(1)));
        assert_eq!(ip_option("nop"), Ok(IpOptArg::Nop));
        assert!(ip_option("nop=1").is_err());
        assert_eq!(ip_option("hex:01 01"), Ok(IpOptArg::Hex(vec![1, 1])));
        assert!(ip_option("hex:zz").unwrap_err().contains("not a hex byte"));
        assert!(
            ip_option("bogus")
                .unwrap_err()
                .starts_with("unknown option")
        );
    }

    #[test]
    fn mpls_entries_take_the_traceroute_form_or_a_bare_label() {
        assert_eq!(
            mpls_entry("L=24001,E=5,S=0,T=7"),
            Ok(MplsArg {
                label: 24001,
                tc: 5,
                bottom: Some(false),
                ttl: 7
            })
        );
        assert_eq!(
            mpls_entry("16"),
            Ok(MplsArg {
                label: 16,
                tc: 0,
                bottom: None,
                ttl: 1
            })
        );
        assert!(mpls_entry("L=1048576").is_err());
        assert!(mpls_entry("E=1").unwrap_err().contains("label is missing"));
        assert!(mpls_entry("L=1,X=2").unwrap_err().contains("unknown key"));
    }

    #[test]
    fn types_codes_and_protocols_by_name_or_number() {
        assert_eq!(icmp_type("time-exceeded"), Ok(11));
        assert_eq!(icmp_type("42"), Ok(42));
        assert!(icmp_type("bogus").unwrap_err().contains("echo-request"));
        assert_eq!(icmp_code(3, "port-unreachable"), Ok(3));
        assert_eq!(icmp_code(3, "frag-needed"), Ok(4));
        assert_eq!(icmp_code(11, "reassembly"), Ok(1));
        assert_eq!(icmp_code(8, "7"), Ok(7));
        assert!(icmp_code(8, "port").unwrap_err().contains("use a number"));
        assert_eq!(protocol("gre"), Ok(47));
        assert_eq!(protocol("253"), Ok(253));
        assert!(protocol("256").unwrap_err().contains("unknown protocol"));
    }

    #[test]
    fn numbers_checksums_and_words() {
        assert_eq!(u16_dec_or_hex("0xbeef"), Ok(0xbeef));
        assert!(
            u16_dec_or_hex("65536")
                .unwrap_err()
                .contains("out of range")
        );
        assert_eq!(checksum_arg("bad"), Ok(ChecksumArg::Bad));
        assert_eq!(udp_checksum_arg("none"), Ok(UdpChecksumArg::None));
        assert_eq!(udp_checksum_arg("0x1"), Ok(UdpChecksumArg::Value(1)));
        assert!(addr("1.2.3").is_err());
        assert_eq!(
            split_words("udp --dst 1.2.3.4 --payload 'a b'  \"c\""),
            Ok(vec![
                "udp".to_string(),
                "--dst".into(),
                "1.2.3.4".into(),
                "--payload".into(),
                "a b".into(),
                "c".into()
            ])
        );
        assert!(split_words("udp 'x").is_err());
        assert_eq!(
            ext_object("2:1:0a0b"),
            Ok(ExtObjectArg {
                class_num: 2,
                c_type: 1,
                payload: vec![10, 11]
            })
        );
        assert!(ext_object("2:1").is_err());
    }
}

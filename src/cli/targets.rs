//! The targets of a many-target `rawkit ping`: host names and addresses, CIDR blocks
//! (`127.0.0.0/16`), address ranges (`127.0.0.1-127.0.3.255`) and `--file FILE` (`-` for
//! stdin), turned into a [`TargetSet`] of compact ranges.
//!
//! As fping: a CIDR block shorter than /31 leaves out its network and broadcast addresses
//! (`-g 192.168.1.0/24` gives .1 to .254), a /31 or /32 keeps every address, host bits in the
//! block's address are ignored (`127.0.0.9/24` is `127.0.0.0/24`); a range keeps both ends; a
//! file gives the first word of each line, skipping blank lines and `#` comments, and each word
//! may itself be a host, a block or a range.
//!
//! Every block, range and file is checked before any name is looked up and before any socket
//! is opened: a malformed block or range, a range that ends before it starts, more targets
//! than [`LIMIT`] without `--force` (or than [`MAX_TARGETS`] at all), a multicast or broadcast
//! address, or a file that cannot be read is one error line. Names are resolved last; a name
//! that does not resolve is reported and left out (fping does the same, and exits 2 at the end).

use crate::probe::sweep::{MAX_TARGETS, TargetSet};
use std::io::{BufRead, BufReader, Read};
use std::net::Ipv4Addr;
use std::path::Path;

/// Most targets a sweep takes without `--force`: fping's limit for `-g` (`MAX_GENERATE`),
/// two /16 blocks.
pub const LIMIT: u64 = 131_072;

/// One target as typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Spec {
    /// Addresses `first..=last` from a CIDR block or a range.
    Block {
        /// The text as typed (for messages).
        text: String,
        /// First address.
        first: Ipv4Addr,
        /// Last address (not before `first`).
        last: Ipv4Addr,
    },
    /// A host name or a single address, resolved later.
    Host(String),
}

impl Spec {
    /// How many targets this gives (a host: one).
    pub fn count(&self) -> u64 {
        match self {
            Spec::Block { first, last, .. } => u64::from(u32::from(*last) - u32::from(*first)) + 1,
            Spec::Host(_) => 1,
        }
    }

    /// True for a block or range (never empty: a spec always gives at least one target).
    pub fn is_block(&self) -> bool {
        matches!(self, Spec::Block { .. })
    }
}

/// Parses one target as typed: `a.b.c.d/n`, `a.b.c.d-e.f.g.h`, or a host.
pub fn parse_spec(text: &str) -> Result<Spec, String> {
    let t = text.trim();
    if let Some((addr, prefix)) = t.split_once('/') {
        return parse_cidr(t, addr, prefix);
    }
    if let Some((a, b)) = t.split_once('-')
        && looks_numeric(a)
        && looks_numeric(b)
    {
        let first = strict_addr(a).map_err(|e| format!("{t}: malformed range: {e}"))?;
        let last = strict_addr(b).map_err(|e| format!("{t}: malformed range: {e}"))?;
        if last < first {
            return Err(format!(
                "{t}: the range ends before it starts ({last} is before {first})"
            ));
        }
        return block(t, first, last);
    }
    if t.is_empty() {
        return Err("empty target".into());
    }
    Ok(Spec::Host(t.to_owned()))
}

/// True for text made of digits and dots only: meant as an address, so it must be one.
fn looks_numeric(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.')
}

/// A dotted quad, and nothing else (`127.1` and `0x7f.1` are hosts, not block ends).
fn strict_addr(s: &str) -> Result<Ipv4Addr, String> {
    s.parse::<Ipv4Addr>()
        .map_err(|_| format!("{s} is not an IPv4 address (a.b.c.d)"))
}

fn parse_cidr(text: &str, addr: &str, prefix: &str) -> Result<Spec, String> {
    let bad = |why: String| format!("{text}: malformed CIDR block: {why}");
    let addr = strict_addr(addr).map_err(bad)?;
    if prefix.is_empty() || !prefix.bytes().all(|b| b.is_ascii_digit()) || prefix.len() > 2 {
        return Err(bad(format!(
            "the prefix length must be a number from 0 to 32, not {prefix:?}"
        )));
    }
    let len: u32 = prefix.parse().map_err(|_| bad("bad prefix".into()))?;
    if len > 32 {
        return Err(bad(format!("the prefix length must be 0 to 32, not {len}")));
    }
    let mask = if len == 0 { 0 } else { u32::MAX << (32 - len) };
    let net = u32::from(addr) & mask;
    let broadcast = net | !mask;
    // fping -g: a block shorter than /31 leaves out its network and broadcast addresses
    // (RFC 3021 gives both addresses of a /31 to hosts; a /32 is one host).
    let (first, last) = if len < 31 {
        (net + 1, broadcast - 1)
    } else {
        (net, broadcast)
    };
    block(text, Ipv4Addr::from(first), Ipv4Addr::from(last))
}

fn block(text: &str, first: Ipv4Addr, last: Ipv4Addr) -> Result<Spec, String> {
    // Class D and E, and the limited broadcast: one echo request would reach many hosts, or
    // none; rawkit ping refuses them for one target too.
    let reserved = Ipv4Addr::new(224, 0, 0, 0);
    if last >= reserved {
        return Err(format!(
            "{text}: reaches {}: broadcast and multicast targets are not supported",
            if first >= reserved { first } else { reserved }
        ));
    }
    Ok(Spec::Block {
        text: text.to_owned(),
        first,
        last,
    })
}

/// Reads the targets of `--file` (`-` for stdin): the first word of each line, without blank
/// lines and `#` comments.
pub fn read_file(path: &Path) -> Result<Vec<String>, String> {
    let what = format!("--file {}", path.display());
    let reader: Box<dyn Read> = if path == Path::new("-") {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| format!("{what}: {e}"))?)
    };
    let mut words = Vec::new();
    for line in BufReader::new(reader).lines() {
        let line = line.map_err(|e| format!("{what}: {e}"))?;
        match line.split_whitespace().next() {
            Some(w) if !w.starts_with('#') => words.push(w.to_owned()),
            _ => {}
        }
    }
    Ok(words)
}

/// The parsed targets, checked against the limits, before names are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Specs {
    /// In order.
    pub specs: Vec<Spec>,
    /// How many targets in all.
    pub total: u64,
}

/// Parses every target (`words`, then the file's), refusing malformed ones and more targets
/// than the limit allows.
pub fn parse_all(words: &[String], file: Option<&Path>, force: bool) -> Result<Specs, String> {
    let mut all: Vec<String> = words.to_vec();
    if let Some(f) = file {
        all.extend(read_file(f)?);
    }
    let mut specs = Vec::with_capacity(all.len());
    let mut total = 0u64;
    for w in &all {
        let spec = parse_spec(w)?;
        let n = spec.count();
        total += n;
        let over = |limit: u64, fix: &str| {
            if n > limit {
                format!("{w}: {n} targets, more than {limit}{fix}", w = w.trim())
            } else {
                format!("the targets add up to {total}, more than {limit}{fix}")
            }
        };
        if total > MAX_TARGETS {
            return Err(over(MAX_TARGETS, " (a /8), even with --force"));
        }
        if total > LIMIT && !force {
            return Err(over(
                LIMIT,
                " (fping's -g limit, a /15): add --force to sweep them all",
            ));
        }
        specs.push(spec);
    }
    if specs.is_empty() {
        return Err(match file {
            Some(f) => format!("--file {}: no targets in it", f.display()),
            None => "no targets".into(),
        });
    }
    Ok(Specs { specs, total })
}

/// Builds the target set, resolving hosts with `resolve` (which returns the address, or the
/// message to print). Returns the set and the messages of the hosts left out.
pub fn build(
    specs: &Specs,
    mut resolve: impl FnMut(&str) -> Result<Ipv4Addr, String>,
) -> Result<(TargetSet, Vec<String>), String> {
    let mut set = TargetSet::new();
    let mut failed = Vec::new();
    let too_many = |e: crate::probe::sweep::TooManyTargets| {
        format!("{} targets, more than {MAX_TARGETS}", e.would_be)
    };
    for spec in &specs.specs {
        match spec {
            Spec::Block { first, last, .. } => set.push_range(*first, *last).map_err(too_many)?,
            Spec::Host(name) => match resolve(name) {
                Ok(addr)
                    if addr.is_multicast() || addr.is_broadcast() || addr.octets()[0] >= 240 =>
                {
                    failed.push(format!(
                        "{name}: broadcast and multicast targets are not supported"
                    ));
                }
                Ok(addr) => {
                    let label = (addr.to_string() != *name).then_some(name.as_str());
                    set.push_host(addr, label).map_err(too_many)?;
                }
                Err(msg) => failed.push(msg),
            },
        }
    }
    Ok((set, failed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn block_of(s: &str) -> (Ipv4Addr, Ipv4Addr) {
        match parse_spec(s).unwrap() {
            Spec::Block { first, last, .. } => (first, last),
            other => panic!("{s}: not a block: {other:?}"),
        }
    }

    fn a(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn cidr_blocks_leave_out_network_and_broadcast_like_fping() {
        assert_eq!(
            block_of("127.0.0.0/20"),
            (a("127.0.0.1"), a("127.0.15.254"))
        );
        assert_eq!(parse_spec("127.0.0.0/20").unwrap().count(), 4094);
        assert_eq!(block_of("127.0.0.9/24"), (a("127.0.0.1"), a("127.0.0.254")));
        assert_eq!(block_of("127.0.0.4/30"), (a("127.0.0.5"), a("127.0.0.6")));
        // RFC 3021 /31 and a /32: every address.
        assert_eq!(block_of("127.0.0.4/31"), (a("127.0.0.4"), a("127.0.0.5")));
        assert_eq!(block_of("127.0.0.4/32"), (a("127.0.0.4"), a("127.0.0.4")));
        assert_eq!(parse_spec("127.0.0.0/12").unwrap().count(), 1_048_574);
    }

    #[test]
    fn ranges_keep_both_ends() {
        assert_eq!(
            block_of("127.0.0.1-127.0.3.255"),
            (a("127.0.0.1"), a("127.0.3.255"))
        );
        assert_eq!(parse_spec("127.0.0.1-127.0.3.255").unwrap().count(), 1023);
        assert_eq!(
            block_of("127.0.0.7-127.0.0.7"),
            (a("127.0.0.7"), a("127.0.0.7"))
        );
    }

    #[test]
    fn malformed_blocks_and_ranges_are_refused_naming_them() {
        for (bad, words) in [
            ("127.0.0.0/33", &["127.0.0.0/33", "0 to 32"][..]),
            ("127.0.0.0/", &["127.0.0.0/", "prefix"]),
            ("127.0.0.0/8x", &["127.0.0.0/8x", "prefix"]),
            (
                "127.0.0/8",
                &["127.0.0/8", "127.0.0 is not an IPv4 address"],
            ),
            ("localhost/8", &["localhost/8", "malformed CIDR"]),
            (
                "127.0.0.9-127.0.0.1",
                &["127.0.0.9-127.0.0.1", "ends before it starts"],
            ),
            (
                "127.0.0.1-127.0.0.300",
                &["127.0.0.300 is not an IPv4 address"],
            ),
            ("224.0.0.0/24", &["multicast"]),
            ("223.255.255.0-224.0.0.1", &["224.0.0.0", "multicast"]),
        ] {
            let e = parse_spec(bad).unwrap_err();
            for w in words {
                assert!(e.contains(w), "{bad}: {e:?} does not say {w:?}");
            }
        }
    }

    #[test]
    fn hosts_are_anything_else() {
        assert_eq!(parse_spec("localhost"), Ok(Spec::Host("localhost".into())));
        assert_eq!(parse_spec("my-host"), Ok(Spec::Host("my-host".into())));
        assert_eq!(parse_spec("127.1"), Ok(Spec::Host("127.1".into())));
    }

    #[test]
    fn the_limit_needs_force_and_the_maximum_holds_even_with_it() {
        let words = |w: &[&str]| w.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let e = parse_all(&words(&["127.0.0.0/12"]), None, false).unwrap_err();
        assert!(
            e.contains("1048574 targets") && e.contains("--force"),
            "{e}"
        );
        assert_eq!(
            parse_all(&words(&["127.0.0.0/12"]), None, true)
                .unwrap()
                .total,
            1_048_574
        );
        let slash15 = "127.0.0.0-127.1.255.255";
        assert_eq!(
            parse_all(&words(&[slash15]), None, false).unwrap().total,
            LIMIT
        );
        let e = parse_all(&words(&[slash15, "10.0.0.1"]), None, false).unwrap_err();
        assert!(e.contains("add up to 131073"), "{e}");
        let e = parse_all(&words(&["10.0.0.0/7"]), None, true).unwrap_err();
        assert!(e.contains("even with --force"), "{e}");
    }

    #[test]
    fn files_give_the_first_word_of_each_line() {
        let dir = std::env::temp_dir().join(format!("rawkit-targets-{}", std::process::id()));
        std::fs::write(
            &dir,
            "# lab hosts\n127.0.0.1 first\n\n   127.0.0.0/30   # a block\n  # indented comment\nlocalhost\n",
        )
        .unwrap();
        let got = read_file(&dir).unwrap();
        let _ = std::fs::remove_file(&dir);
        assert_eq!(got, vec!["127.0.0.1", "127.0.0.0/30", "localhost"]);
        let e = read_file(Path::new("/nonexistent/rawkit-targets")).unwrap_err();
        assert!(e.starts_with("--file /nonexistent/rawkit-targets: "), "{e}");
    }

    #[test]
    fn building_resolves_hosts_and_keeps_their_names() {
        let words = ["127.0.0.0/30", "localhost", "nosuch.invalid", "127.0.0.9"]
            .map(String::from)
            .to_vec();
        let specs = parse_all(&words, None, false).unwrap();
        let (set, failed) = build(&specs, |h| match h {
            "localhost" => Ok(a("127.0.0.1")),
            "127.0.0.9" => Ok(a("127.0.0.9")),
            other => Err(format!("{other}: Name or service not known")),
        })
        .unwrap();
        assert_eq!(set.len(), 4);
        assert_eq!(set.addr(2), Some(a("127.0.0.1")));
        assert_eq!(set.label(2), Some("localhost"));
        assert_eq!(set.label(3), None, "an address is printed as itself");
        assert_eq!(failed, vec!["nosuch.invalid: Name or service not known"]);
    }
}

//! Host names to IPv4 addresses and back, through the C library's resolver (`getaddrinfo(3)`,
//! `getnameinfo(3)`), with iputils ping's semantics and messages.
//!
//! * [`resolve_ipv4`] turns what the user typed into an address. Numeric forms that
//!   `inet_aton(3)` accepts (`127.0.0.1`, `127.1`, `2130706433`, `0x7f.1`) are parsed without
//!   asking any resolver and marked [`Resolved::numeric`]; names go through `getaddrinfo` with
//!   `AI_CANONNAME`. Failures print as iputils prints them: `nosuch.invalid: Name or service
//!   not known`.
//! * [`reverse_name`] asks for the name of an address; [`ReverseCache`] formats addresses for
//!   output as iputils' `pr_addr` does (`name (addr)`, or `addr`), remembering the last answer.
//!
//! Both directions may block on DNS for seconds (the resolver's timeouts and retries, from
//! `/etc/resolv.conf`) and cannot be cancelled. This module must never be called from a path
//! that measures time (resolve before the first probe; look names up after the reply's time is
//! recorded), and must never resolve anything the caller did not ask for.

use std::ffi::{CStr, CString};
use std::fmt;
use std::io;
use std::mem;
use std::net::Ipv4Addr;
use std::ptr;

use super::error::os_error_text;

unsafe extern "C" {
    /// `inet_aton(3)` of the C library (glibc and musl export it; the `libc` crate does not
    /// bind it). Returns 1 and stores the address when `cp` is a valid address, else 0.
    fn inet_aton(cp: *const libc::c_char, inp: *mut libc::in_addr) -> libc::c_int;
}

/// A host resolved to an IPv4 address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Resolved {
    /// The address to send to (the first IPv4 address the resolver returned).
    pub addr: Ipv4Addr,
    /// The name to show: the canonical name from the resolver (`AI_CANONNAME`), or for a
    /// numeric host the string as typed (iputils prints `PING 127.1 (127.0.0.1)`).
    pub canonical: String,
    /// True when the host was a numeric address (`inet_aton` accepted it). iputils then turns
    /// off reverse lookups of replies when there is a single target.
    pub numeric: bool,
}

/// Why a host could not be resolved.
#[derive(Debug)]
#[non_exhaustive]
pub enum ResolveErrorKind {
    /// The host was the empty string.
    Empty,
    /// The host contained a NUL byte, which no C resolver can be given.
    NulByte,
    /// Only digits and dots, but not an address `inet_aton` accepts (`300.1.1.1`, `1..2`): a
    /// mistyped address, refused without asking a name server.
    BadAddress,
    /// `getaddrinfo` failed with this `EAI_*` code; `message` is `gai_strerror(code)`.
    /// A successful lookup with no IPv4 address is reported as `EAI_NODATA`.
    Gai {
        /// The `EAI_*` code (negative on glibc).
        code: i32,
        /// The C library's text for it, e.g. `Name or service not known`.
        message: String,
    },
    /// `getaddrinfo` failed with `EAI_SYSTEM`; this is the errno it left.
    System(io::Error),
}

/// A failure of [`resolve_ipv4`]: the host, and why. Prints as iputils does,
/// `<host>: <gai_strerror text>`.
#[derive(Debug)]
pub struct ResolveError {
    host: String,
    kind: ResolveErrorKind,
}

impl ResolveError {
    /// The host that could not be resolved, as given.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Why it could not be resolved.
    pub fn kind(&self) -> &ResolveErrorKind {
        &self.kind
    }

    /// True for a failure that may pass if tried again later (`EAI_AGAIN`: no resolver
    /// answered).
    pub fn is_temporary(&self) -> bool {
        matches!(self.kind, ResolveErrorKind::Gai { code, .. } if code == libc::EAI_AGAIN)
    }

    fn gai(host: &str, code: libc::c_int) -> ResolveError {
        ResolveError {
            host: host.to_owned(),
            kind: ResolveErrorKind::Gai {
                code,
                message: gai_message(code),
            },
        }
    }
}

impl fmt::Display for ResolveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ResolveErrorKind::Empty => f.write_str("empty host name"),
            ResolveErrorKind::NulByte => {
                write!(f, "{:?}: host name contains a NUL byte", self.host)
            }
            ResolveErrorKind::BadAddress => write!(
                f,
                "{}: not a valid IPv4 address (four numbers from 0 to 255, e.g. 127.0.0.1)",
                self.host
            ),
            ResolveErrorKind::Gai { message, .. } => write!(f, "{}: {message}", self.host),
            ResolveErrorKind::System(err) => write!(f, "{}: {}", self.host, os_error_text(err)),
        }
    }
}

impl std::error::Error for ResolveError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ResolveErrorKind::System(err) => Some(err),
            _ => None,
        }
    }
}

/// `gai_strerror(code)` as a `String`.
fn gai_message(code: libc::c_int) -> String {
    // SAFETY: gai_strerror accepts any code and returns a pointer to a static, NUL-terminated
    // string (glibc: "Unknown error" for codes it does not know), never null; it is copied out
    // at once.
    let text = unsafe { libc::gai_strerror(code) };
    if text.is_null() {
        return format!("resolver error {code}");
    }
    // SAFETY: non-null, NUL-terminated and static (see above).
    unsafe { CStr::from_ptr(text) }
        .to_string_lossy()
        .into_owned()
}

/// The address of `host` when `inet_aton(3)` accepts it whole.
///
/// glibc's `inet_aton` stops at the first whitespace and ignores the rest (`"127.0.0.1 x"`
/// passes); iputils never gets that far because `getaddrinfo` rejects it first, so a host with
/// whitespace is not numeric here either.
fn parse_numeric(host: &CStr) -> Option<Ipv4Addr> {
    if host.to_bytes().iter().any(u8::is_ascii_whitespace) {
        return None;
    }
    let mut addr = libc::in_addr { s_addr: 0 };
    // SAFETY: `host` is a valid NUL-terminated string and `addr` a live, writable in_addr for
    // the duration of the call; inet_aton reads one and writes the other only.
    let ok = unsafe { inet_aton(host.as_ptr(), &mut addr) };
    (ok == 1).then(|| Ipv4Addr::from(u32::from_be(addr.s_addr)))
}

/// The list `getaddrinfo(3)` returns, freed on drop.
struct AddrInfo(*mut libc::addrinfo);

impl AddrInfo {
    /// The first IPv4 address and the canonical name (glibc puts it on the first entry).
    fn first_ipv4(&self) -> (Option<Ipv4Addr>, Option<String>) {
        let (mut addr, mut canonical) = (None, None);
        let mut node = self.0;
        while !node.is_null() && (addr.is_none() || canonical.is_none()) {
            // SAFETY: `node` is a non-null element of the list getaddrinfo returned, alive until
            // freeaddrinfo; `ai_canonname` is null or NUL-terminated; `ai_addr` is null or a
            // sockaddr of `ai_addrlen` bytes of family `ai_family` (sockaddr_in for AF_INET).
            unsafe {
                let entry = &*node;
                node = entry.ai_next;
                if canonical.is_none() && !entry.ai_canonname.is_null() {
                    let name = CStr::from_ptr(entry.ai_canonname).to_string_lossy();
                    canonical = Some(name.into_owned());
                }
                if addr.is_none()
                    && entry.ai_family == libc::AF_INET
                    && !entry.ai_addr.is_null()
                    && entry.ai_addrlen as usize >= mem::size_of::<libc::sockaddr_in>()
                {
                    let sin = &*entry.ai_addr.cast::<libc::sockaddr_in>();
                    addr = Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
                }
            }
        }
        (addr, canonical)
    }
}

impl Drop for AddrInfo {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from a successful getaddrinfo and is freed only here.
            unsafe { libc::freeaddrinfo(self.0) };
        }
    }
}

/// Resolves `host` to an IPv4 address, as iputils ping does.
///
/// A numeric host (anything `inet_aton(3)` accepts: `127.0.0.1`, `127.1`, `2130706433`,
/// `0x7f000001`) is parsed without asking a resolver; `canonical` is the string as typed and
/// `numeric` is true. A name goes to `getaddrinfo(3)` (`AF_INET`, `AI_CANONNAME`, so
/// `/etc/hosts` and then DNS, per `/etc/nsswitch.conf`); `canonical` is the canonical name the
/// resolver gives (`localhost` for `localhost`), or the name as typed when it gives none.
///
/// May block on DNS for seconds. The error prints `<host>: <gai_strerror text>`, e.g.
/// `nosuch.invalid: Name or service not known` (or `Temporary failure in name resolution`
/// when no DNS server answers); the empty string and a string with a NUL byte are errors too.
pub fn resolve_ipv4(host: &str) -> Result<Resolved, ResolveError> {
    if host.is_empty() {
        return Err(ResolveError {
            host: String::new(),
            kind: ResolveErrorKind::Empty,
        });
    }
    let c_host = CString::new(host).map_err(|_| ResolveError {
        host: host.to_owned(),
        kind: ResolveErrorKind::NulByte,
    })?;
    if let Some(addr) = parse_numeric(&c_host) {
        return Ok(Resolved {
            addr,
            canonical: host.to_owned(),
            numeric: true,
        });
    }
    // No host name is made of digits and dots alone (RFC 1123 2.1: a top-level label is not
    // all-numeric): such a string is a mistyped address, and a name server need not hear of it.
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(ResolveError {
            host: host.to_owned(),
            kind: ResolveErrorKind::BadAddress,
        });
    }
    // SAFETY: `addrinfo` is plain data (integers and pointers) for which all-zero (null
    // pointers) is a valid value, and what getaddrinfo expects in the unused hint fields.
    let mut hints: libc::addrinfo = unsafe { mem::zeroed() };
    hints.ai_family = libc::AF_INET;
    hints.ai_socktype = libc::SOCK_DGRAM;
    hints.ai_flags = libc::AI_CANONNAME;
    let mut list: *mut libc::addrinfo = ptr::null_mut();
    // SAFETY: `c_host` is NUL-terminated, the service may be null, `hints` is a live addrinfo
    // and `list` a live pointer to store the result in; all outlive the call. On success the
    // list is ours until freeaddrinfo (AddrInfo's Drop).
    let rc = unsafe { libc::getaddrinfo(c_host.as_ptr(), ptr::null(), &hints, &mut list) };
    if rc != 0 {
        if rc == libc::EAI_SYSTEM {
            return Err(ResolveError {
                host: host.to_owned(),
                kind: ResolveErrorKind::System(io::Error::last_os_error()),
            });
        }
        return Err(ResolveError::gai(host, rc));
    }
    let list = AddrInfo(list);
    match list.first_ipv4() {
        (Some(addr), canonical) => Ok(Resolved {
            addr,
            canonical: canonical.unwrap_or_else(|| host.to_owned()),
            numeric: false,
        }),
        (None, _) => Err(ResolveError::gai(host, libc::EAI_NODATA)),
    }
}

/// The name of `addr` (`getnameinfo(3)` with `NI_NAMEREQD`): from `/etc/hosts` or a DNS PTR
/// record; `None` when there is none or the lookup fails.
///
/// **This may block for seconds** when a DNS server is slow or unreachable, and cannot be
/// cancelled. Callers must: look names up only after a reply's receive time is recorded (never
/// between receiving and timestamping); remember answers ([`ReverseCache`] keeps the last one,
/// which is what ping's reply lines repeat); honour a numeric mode (`-n`) that skips lookups
/// entirely; and stop looking up once the user asked to quit, so that Ctrl-C prints the
/// statistics at once.
pub fn reverse_name(addr: Ipv4Addr) -> Option<String> {
    // SAFETY: `sockaddr_in` is plain data; all-zero is valid (and zeroes `sin_zero`).
    let mut sin: libc::sockaddr_in = unsafe { mem::zeroed() };
    sin.sin_family = libc::AF_INET as libc::sa_family_t;
    sin.sin_addr.s_addr = u32::from(addr).to_be();
    let mut host = [0 as libc::c_char; libc::NI_MAXHOST as usize];
    // SAFETY: `sin` is a live sockaddr_in of the length given; `host` is writable for its
    // length, which is passed; the service buffer is null with length 0. getnameinfo writes a
    // NUL-terminated name of at most that length.
    let rc = unsafe {
        libc::getnameinfo(
            (&sin as *const libc::sockaddr_in).cast(),
            mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: on success `host` holds a NUL-terminated string within its bounds.
    let name = unsafe { CStr::from_ptr(host.as_ptr()) };
    let name = name.to_string_lossy();
    (!name.is_empty()).then(|| name.into_owned())
}

/// Formats addresses for output as iputils' `pr_addr`: `name (addr)` when the address has a
/// name, `addr` when it has none or the name is the address itself; and, like `pr_addr`,
/// remembers the last address and its text, so that a run of replies from one host costs one
/// lookup.
///
/// With `numeric` set it never looks anything up and prints the address.
#[derive(Debug, Clone)]
pub struct ReverseCache {
    numeric: bool,
    lookup: fn(Ipv4Addr) -> Option<String>,
    last: Option<(Ipv4Addr, String)>,
}

impl ReverseCache {
    /// A cache that looks names up with [`reverse_name`], or never when `numeric`.
    pub fn new(numeric: bool) -> ReverseCache {
        ReverseCache::with_lookup(numeric, reverse_name)
    }

    /// A cache that looks names up with `lookup` (a test double, or another resolver).
    pub fn with_lookup(numeric: bool, lookup: fn(Ipv4Addr) -> Option<String>) -> ReverseCache {
        ReverseCache {
            numeric,
            lookup,
            last: None,
        }
    }

    /// True when no lookups are made.
    pub fn numeric(&self) -> bool {
        self.numeric
    }

    /// Turns lookups off (e.g. once the user pressed Ctrl-C) or on. Forgets the remembered
    /// text, which was made under the other mode.
    pub fn set_numeric(&mut self, numeric: bool) {
        if numeric != self.numeric {
            self.numeric = numeric;
            self.last = None;
        }
    }

    /// The text for `addr`: `name (addr)` or `addr`. Looks the name up (possibly blocking on
    /// DNS) unless in numeric mode or `addr` was the last address formatted.
    pub fn format(&mut self, addr: Ipv4Addr) -> &str {
        let stale = !matches!(&self.last, Some((last, _)) if *last == addr);
        if stale {
            let text = if self.numeric {
                addr.to_string()
            } else {
                pr_addr_text(addr, (self.lookup)(addr).as_deref())
            };
            self.last = Some((addr, text));
        }
        self.last.as_ref().map_or("", |(_, text)| text.as_str())
    }
}

/// iputils' `pr_addr` rule: `name (addr)` unless there is no name or it is the address text.
fn pr_addr_text(addr: Ipv4Addr, name: Option<&str>) -> String {
    let numeric = addr.to_string();
    match name {
        Some(name) if !name.is_empty() && name != numeric => format!("{name} ({numeric})"),
        _ => numeric,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mistyped_dotted_quads_are_refused_without_a_lookup() {
        for host in ["300.1.1.1", "1..2", "127.0.0.1.5", "1.2.3.4.5.6"] {
            let e = resolve_ipv4(host).unwrap_err();
            assert!(
                matches!(e.kind(), ResolveErrorKind::BadAddress),
                "{host}: {e}"
            );
            assert!(
                e.to_string()
                    .starts_with(&format!("{host}: not a valid IPv4 address"))
            );
        }
        // What inet_aton accepts stays numeric, as in iputils.
        assert_eq!(resolve_ipv4("127.1").unwrap().addr, Ipv4Addr::LOCALHOST);
    }
    use std::cell::Cell;
    use std::error::Error as _;

    fn resolved(host: &str) -> Resolved {
        resolve_ipv4(host).unwrap_or_else(|e| panic!("{host}: {e}"))
    }

    #[test]
    fn inet_aton_forms_are_numeric_and_kept_as_typed() {
        for host in [
            "127.0.0.1",
            "127.1",
            "2130706433",
            "0x7f.1",
            "0177.0.0.1",
            "0x7f000001",
        ] {
            let r = resolved(host);
            assert_eq!(r.addr, Ipv4Addr::LOCALHOST, "{host}");
            assert_eq!(r.canonical, host);
            assert!(r.numeric, "{host}");
        }
        assert_eq!(resolved("10.1.2").addr, Ipv4Addr::new(10, 1, 0, 2));
        assert_eq!(resolved("198.18.0.1").addr, Ipv4Addr::new(198, 18, 0, 1));
    }

    #[test]
    fn what_inet_aton_refuses_is_not_numeric() {
        for host in [
            "256.0.0.1",
            "1.2.3.4.5",
            "127.0.0.1 x",
            " 127.0.0.1",
            "0x1g",
        ] {
            let c = CString::new(host).expect("no NUL");
            assert_eq!(parse_numeric(&c), None, "{host:?}");
        }
    }

    #[test]
    fn empty_and_nul_hosts_are_errors() {
        let err = resolve_ipv4("").expect_err("empty");
        assert!(matches!(err.kind(), ResolveErrorKind::Empty));
        assert_eq!(err.to_string(), "empty host name");
        let err = resolve_ipv4("local\0host").expect_err("NUL");
        assert!(matches!(err.kind(), ResolveErrorKind::NulByte));
        assert_eq!(err.host(), "local\0host");
        assert_eq!(
            err.to_string(),
            "\"local\\0host\": host name contains a NUL byte"
        );
    }

    #[test]
    fn gai_errors_print_like_iputils() {
        let err = ResolveError::gai("nosuch.invalid", libc::EAI_NONAME);
        assert_eq!(err.to_string(), "nosuch.invalid: Name or service not known");
        assert!(!err.is_temporary());
        let err = ResolveError::gai("example.test", libc::EAI_AGAIN);
        assert_eq!(
            err.to_string(),
            "example.test: Temporary failure in name resolution"
        );
        assert!(err.is_temporary());
        let err = ResolveError {
            host: "h".into(),
            kind: ResolveErrorKind::System(io::Error::from_raw_os_error(libc::EMFILE)),
        };
        assert_eq!(err.to_string(), "h: Too many open files");
        assert!(err.source().is_some());
    }

    #[test]
    fn pr_addr_prints_name_and_address_or_just_the_address() {
        let addr = Ipv4Addr::new(198, 18, 0, 1);
        assert_eq!(pr_addr_text(addr, Some("r1.lab")), "r1.lab (198.18.0.1)");
        assert_eq!(pr_addr_text(addr, None), "198.18.0.1");
        assert_eq!(pr_addr_text(addr, Some("198.18.0.1")), "198.18.0.1");
        assert_eq!(pr_addr_text(addr, Some("")), "198.18.0.1");
    }

    thread_local! {
        static LOOKUPS: Cell<usize> = const { Cell::new(0) };
    }

    fn fake_lookup(addr: Ipv4Addr) -> Option<String> {
        LOOKUPS.with(|n| n.set(n.get() + 1));
        match addr.octets() {
            [198, 18, 0, 1] => Some("r1.lab".to_owned()),
            [198, 18, 0, 2] => Some("198.18.0.2".to_owned()),
            _ => None,
        }
    }

    fn lookups() -> usize {
        LOOKUPS.with(Cell::get)
    }

    #[test]
    fn reverse_cache_looks_up_once_per_run_of_one_address() {
        let (r1, r2, r3) = (
            Ipv4Addr::new(198, 18, 0, 1),
            Ipv4Addr::new(198, 18, 0, 2),
            Ipv4Addr::new(198, 18, 0, 3),
        );
        let mut cache = ReverseCache::with_lookup(false, fake_lookup);
        let before = lookups();
        assert_eq!(cache.format(r1), "r1.lab (198.18.0.1)");
        assert_eq!(cache.format(r1), "r1.lab (198.18.0.1)");
        assert_eq!(lookups() - before, 1);
        assert_eq!(cache.format(r2), "198.18.0.2");
        assert_eq!(cache.format(r3), "198.18.0.3");
        // Only the last address is remembered, as in pr_addr.
        assert_eq!(cache.format(r1), "r1.lab (198.18.0.1)");
        assert_eq!(lookups() - before, 4);
    }

    #[test]
    fn numeric_reverse_cache_never_looks_up() {
        let mut cache = ReverseCache::with_lookup(true, fake_lookup);
        let before = lookups();
        assert!(cache.numeric());
        assert_eq!(cache.format(Ipv4Addr::new(198, 18, 0, 1)), "198.18.0.1");
        assert_eq!(lookups(), before);
        // Switching modes forgets the remembered text.
        cache.set_numeric(false);
        assert_eq!(
            cache.format(Ipv4Addr::new(198, 18, 0, 1)),
            "r1.lab (198.18.0.1)"
        );
        cache.set_numeric(true);
        assert_eq!(cache.format(Ipv4Addr::new(198, 18, 0, 1)), "198.18.0.1");
        assert_eq!(lookups() - before, 1);
    }
}

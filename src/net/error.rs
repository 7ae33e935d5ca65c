//! The one error type of [`crate::net`].
//!
//! Every failed syscall becomes a [`NetError`]. The variants that users can act on (a missing
//! capability, a ping group range that leaves them out, an interface name that does not exist, a
//! datagram over the MTU) carry a message that names the cause *and* the fix; everything else is
//! [`NetError::Io`], which prints `op: os error`.
//!
//! Classification looks at [`io::Error::raw_os_error`], never at [`io::ErrorKind`]: Rust maps
//! `EMSGSIZE` to `ErrorKind::Uncategorized`, which cannot be matched on.

use std::fmt;
use std::io;
use std::net::Ipv4Addr;

/// The capability a failed operation needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Privilege {
    /// `CAP_NET_RAW`: raw IP sockets, `AF_PACKET` sockets, `SO_BINDTODEVICE` on old kernels.
    NetRaw,
    /// `CAP_NET_ADMIN`: `SO_MARK`, promiscuous mode, interface configuration.
    NetAdmin,
}

impl Privilege {
    /// The capability's name as `capabilities(7)` spells it.
    pub fn name(self) -> &'static str {
        match self {
            Privilege::NetRaw => "CAP_NET_RAW",
            Privilege::NetAdmin => "CAP_NET_ADMIN",
        }
    }
}

/// An error from the socket layer.
#[derive(Debug)]
#[non_exhaustive]
pub enum NetError {
    /// The kernel refused with `EPERM` or `EACCES` because the process lacks a capability.
    MissingPrivilege {
        /// What was being done, e.g. `"open raw ICMP socket"`.
        op: &'static str,
        /// The capability that would have allowed it.
        needs: Privilege,
        /// The error the kernel returned.
        source: io::Error,
    },
    /// An ICMP datagram ("ping") socket was refused with `EACCES`: the caller's group is outside
    /// `net.ipv4.ping_group_range` (which is per network namespace).
    PingGroupDenied {
        /// The current value of `/proc/sys/net/ipv4/ping_group_range`, when it could be read.
        range: Option<String>,
        /// The caller's effective group id, when it could be read.
        gid: Option<u32>,
        /// The error the kernel returned.
        source: io::Error,
    },
    /// The named network interface does not exist (in this network namespace).
    NoSuchInterface {
        /// The name that was asked for, when known.
        name: Option<String>,
        /// The error the kernel returned, when there was one.
        source: Option<io::Error>,
    },
    /// `EMSGSIZE`: the datagram is larger than the MTU of the route or interface.
    MessageTooLong {
        /// The size of the datagram that was refused, when known.
        len: Option<usize>,
        /// The error the kernel returned.
        source: io::Error,
    },
    /// [`drop_all_capabilities`](crate::net::privilege::drop_all_capabilities) was called while
    /// other threads run: `capset(2)` changes only the calling thread, so the others would keep
    /// their capabilities.
    OtherThreadsRunning {
        /// How many threads the process has, the caller included.
        threads: usize,
    },
    /// `connect(2)` found no route to the destination (`ENETUNREACH`, `EHOSTUNREACH`). Prints
    /// as iputils does: `connect: Network is unreachable`.
    NoRoute {
        /// The destination that has no route.
        dst: Ipv4Addr,
        /// The error the kernel returned.
        source: io::Error,
    },
    /// `bind(2)` to an address that no interface of this host (network namespace) has
    /// (`EADDRNOTAVAIL`).
    AddressNotLocal {
        /// The address that was asked for.
        addr: Ipv4Addr,
        /// The error the kernel returned.
        source: io::Error,
    },
    /// Any other failure of a system call.
    Io {
        /// What was being done, e.g. `"recvmsg"` or `"setsockopt(IP_TTL)"`.
        op: &'static str,
        /// The error the kernel returned.
        source: io::Error,
    },
}

impl NetError {
    /// Classifies `err` from the operation `op` by its errno.
    ///
    /// `EPERM`/`EACCES` become [`NetError::MissingPrivilege`] (`CAP_NET_RAW`), `ENODEV` becomes
    /// [`NetError::NoSuchInterface`], `EMSGSIZE` becomes [`NetError::MessageTooLong`]; anything
    /// else is [`NetError::Io`]. Callers that know more (the interface name, the datagram
    /// length) add it with [`NetError::with_interface`] and [`NetError::with_len`].
    pub fn from_io(op: &'static str, err: io::Error) -> NetError {
        match err.raw_os_error() {
            Some(libc::EPERM) | Some(libc::EACCES) => NetError::MissingPrivilege {
                op,
                needs: Privilege::NetRaw,
                source: err,
            },
            Some(libc::ENODEV) => NetError::NoSuchInterface {
                name: None,
                source: Some(err),
            },
            Some(libc::EMSGSIZE) => NetError::MessageTooLong {
                len: None,
                source: err,
            },
            _ => NetError::Io { op, source: err },
        }
    }

    /// Classifies an error from `sendto`/`sendmsg` of a datagram of `len` bytes.
    ///
    /// Unlike [`NetError::from_io`], `EPERM`/`EACCES` are *not* a missing privilege here: on a
    /// socket that is already open they mean a local firewall rule rejected the packet, or a
    /// broadcast destination without `SO_BROADCAST`, so they stay [`NetError::Io`].
    pub fn from_send(op: &'static str, len: usize, err: io::Error) -> NetError {
        match err.raw_os_error() {
            Some(libc::EMSGSIZE) => NetError::MessageTooLong {
                len: Some(len),
                source: err,
            },
            _ => NetError::Io { op, source: err },
        }
    }

    /// Names the interface of a [`NetError::NoSuchInterface`]; other variants are unchanged.
    pub fn with_interface(self, iface: &str) -> NetError {
        match self {
            NetError::NoSuchInterface { source, .. } => NetError::NoSuchInterface {
                name: Some(iface.to_owned()),
                source,
            },
            other => other,
        }
    }

    /// Records the datagram length of a [`NetError::MessageTooLong`]; other variants are
    /// unchanged.
    pub fn with_len(self, len: usize) -> NetError {
        match self {
            NetError::MessageTooLong { source, .. } => NetError::MessageTooLong {
                len: Some(len),
                source,
            },
            other => other,
        }
    }

    /// Replaces the privilege a [`NetError::MissingPrivilege`] names; other variants are
    /// unchanged.
    pub(crate) fn needing(self, privilege: Privilege) -> NetError {
        match self {
            NetError::MissingPrivilege { op, source, .. } => NetError::MissingPrivilege {
                op,
                needs: privilege,
                source,
            },
            other => other,
        }
    }

    /// True when the error is a refusal for lack of privilege: a missing capability or a ping
    /// group range that excludes the caller.
    pub fn is_permission(&self) -> bool {
        matches!(
            self,
            NetError::MissingPrivilege { .. } | NetError::PingGroupDenied { .. }
        )
    }

    /// The errno of the underlying system call error, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        self.io_source().and_then(io::Error::raw_os_error)
    }

    fn io_source(&self) -> Option<&io::Error> {
        match self {
            NetError::MissingPrivilege { source, .. }
            | NetError::PingGroupDenied { source, .. }
            | NetError::MessageTooLong { source, .. }
            | NetError::NoRoute { source, .. }
            | NetError::AddressNotLocal { source, .. }
            | NetError::Io { source, .. } => Some(source),
            NetError::NoSuchInterface { source, .. } => source.as_ref(),
            NetError::OtherThreadsRunning { .. } => None,
        }
    }
}

impl fmt::Display for NetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NetError::MissingPrivilege {
                needs: Privilege::NetRaw,
                ..
            } => f.write_str(
                "raw sockets need CAP_NET_RAW: run as root, or setcap cap_net_raw+ep on the \
                 binary; ping also works unprivileged when net.ipv4.ping_group_range includes \
                 your group",
            ),
            NetError::MissingPrivilege {
                op,
                needs: Privilege::NetAdmin,
                ..
            } => write!(
                f,
                "{op} needs CAP_NET_ADMIN: run as root, or setcap cap_net_admin+ep on the binary"
            ),
            NetError::PingGroupDenied { range, gid, .. } => {
                f.write_str("ICMP datagram (ping) sockets are refused: net.ipv4.ping_group_range")?;
                if let Some(range) = range {
                    write!(f, " ({range})")?;
                }
                f.write_str(" does not include your group")?;
                if let Some(gid) = gid {
                    write!(f, " (gid {gid})")?;
                }
                f.write_str(
                    "; widen it with: sysctl -w net.ipv4.ping_group_range=\"0 2147483647\", \
                     or use raw sockets (CAP_NET_RAW)",
                )
            }
            NetError::NoSuchInterface { name, .. } => {
                match name {
                    Some(name) => write!(f, "no such interface: {name}")?,
                    None => f.write_str("no such interface")?,
                }
                f.write_str(" (list the interfaces with `ip link`)")
            }
            NetError::MessageTooLong { len, .. } => {
                match len {
                    Some(len) => write!(f, "datagram of {len} bytes")?,
                    None => f.write_str("datagram")?,
                }
                f.write_str(
                    " exceeds the MTU of the route or interface (EMSGSIZE); the kernel never \
                     fragments IP_HDRINCL datagrams: send it as fragments, or make it smaller",
                )
            }
            NetError::OtherThreadsRunning { threads } => write!(
                f,
                "cannot drop capabilities for the whole process: {threads} threads are running \
                 and capset(2) changes only the calling thread; drop capabilities before \
                 spawning threads"
            ),
            NetError::NoRoute { source, .. } => {
                write!(f, "connect: {}", os_error_text(source))
            }
            NetError::AddressNotLocal { addr, source } => write!(
                f,
                "bind: {}: {addr} is not an address of any interface of this host (list them \
                 with `ip -4 addr`)",
                os_error_text(source)
            ),
            NetError::Io { op, source } => write!(f, "{op}: {source}"),
        }
    }
}

/// The text of `err` without the ` (os error N)` that `io::Error`'s `Display` appends to an
/// errno: `Network is unreachable`, as `strerror(3)` and the C tools print it.
pub(crate) fn os_error_text(err: &io::Error) -> String {
    let text = err.to_string();
    match err.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .map_or_else(|| text.clone(), str::to_owned),
        None => text,
    }
}

impl std::error::Error for NetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.io_source()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    fn os(errno: i32) -> io::Error {
        io::Error::from_raw_os_error(errno)
    }

    #[test]
    fn eperm_names_cap_net_raw_and_the_fix() {
        let err = NetError::from_io("open raw ICMP socket", os(libc::EPERM));
        assert!(err.is_permission());
        assert_eq!(
            err.to_string(),
            "raw sockets need CAP_NET_RAW: run as root, or setcap cap_net_raw+ep on the binary; \
             ping also works unprivileged when net.ipv4.ping_group_range includes your group"
        );
        assert_eq!(err.raw_os_error(), Some(libc::EPERM));
        assert!(err.source().is_some());
    }

    #[test]
    fn net_admin_message_names_the_operation() {
        let err =
            NetError::from_io("setsockopt(SO_MARK)", os(libc::EPERM)).needing(Privilege::NetAdmin);
        assert_eq!(
            err.to_string(),
            "setsockopt(SO_MARK) needs CAP_NET_ADMIN: run as root, or setcap cap_net_admin+ep \
             on the binary"
        );
    }

    #[test]
    fn ping_group_message_says_how_to_widen_the_range() {
        let err = NetError::PingGroupDenied {
            range: Some("1\t0".replace('\t', " ")),
            gid: Some(1000),
            source: os(libc::EACCES),
        };
        let text = err.to_string();
        assert!(text.contains("net.ipv4.ping_group_range (1 0) does not include your group"));
        assert!(text.contains("(gid 1000)"));
        assert!(text.contains("sysctl -w net.ipv4.ping_group_range=\"0 2147483647\""));
        assert!(err.is_permission());
    }

    #[test]
    fn emsgsize_is_classified_by_errno_not_kind() {
        let raw = os(libc::EMSGSIZE);
        let err = NetError::from_send("sendto", 2000, raw);
        assert!(matches!(
            err,
            NetError::MessageTooLong {
                len: Some(2000),
                ..
            }
        ));
        let text = err.to_string();
        assert!(text.starts_with("datagram of 2000 bytes exceeds the MTU"));
        assert!(text.contains("never fragments IP_HDRINCL"));
        let err = NetError::from_io("sendto", os(libc::EMSGSIZE)).with_len(9);
        assert!(err.to_string().starts_with("datagram of 9 bytes"));
    }

    #[test]
    fn send_eperm_is_not_a_missing_privilege() {
        let err = NetError::from_send("sendto", 84, os(libc::EPERM));
        assert!(!err.is_permission());
        assert!(err.to_string().starts_with("sendto: "));
    }

    #[test]
    fn enodev_names_the_interface_and_the_hint() {
        let err = NetError::from_io("SO_BINDTODEVICE", os(libc::ENODEV)).with_interface("eth9");
        assert_eq!(
            err.to_string(),
            "no such interface: eth9 (list the interfaces with `ip link`)"
        );
    }

    #[test]
    fn other_errors_print_op_and_source() {
        let err = NetError::from_io("recvmsg", os(libc::EBADF));
        assert!(matches!(err, NetError::Io { .. }));
        assert!(err.to_string().starts_with("recvmsg: Bad file descriptor"));
        assert!(!err.is_permission());
    }
}

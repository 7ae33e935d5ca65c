//! What the kernel's routing table and interfaces say, asked without sending anything: the
//! source address and path MTU towards a destination, whether an address is local, and an
//! interface's IPv4 address and MTU.
//!
//! The route questions use the trick of iputils ping: `connect(2)` a UDP socket to the
//! destination (port 1025), which makes the kernel look up the route and pick a source address
//! but puts nothing on the wire, then read the answer back with `getsockname(2)` or
//! `getsockopt(IP_MTU)`. Everything is asked in the calling thread's network namespace.
//!
//! This module must never send a packet, change a route, an address or an interface, or keep a
//! socket open after it returns.

use std::ffi::{CStr, CString};
use std::io;
use std::mem;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::os::fd::{AsFd, AsRawFd};
use std::ptr;

use socket2::{Domain, SockAddr, Socket, Type};

use super::NetError;
use super::capture::interface_index;
use super::socket::{getsockname_bytes, getsockopt_bytes, setsockopt_int};
use super::time::parse_sockaddr_in;

/// The port the route probes connect to, as iputils ping does. Nothing is ever sent to it.
const PROBE_PORT: u16 = 1025;

/// A UDP socket to ask the kernel questions with. It sends nothing.
fn udp_socket() -> Result<Socket, NetError> {
    Socket::new(Domain::IPV4, Type::DGRAM, None).map_err(|e| NetError::from_io("socket", e))
}

/// Restricts `sock` to interface `device` (`SO_BINDTODEVICE`).
fn bind_to_device(sock: &Socket, device: &str) -> Result<(), NetError> {
    // Refuses empty, over-long and NUL-bearing names (which the kernel would truncate or read as
    // "unbind"), and names that do not exist, with NoSuchInterface.
    interface_index(device)?;
    sock.bind_device(Some(device.as_bytes()))
        .map_err(|e| NetError::from_io("setsockopt(SO_BINDTODEVICE)", e).with_interface(device))
}

/// A UDP socket connected to `dst:1025`, through `device` when given: the kernel has looked up
/// the route and chosen the source address.
fn connected_probe(sock: &Socket, dst: Ipv4Addr, device: Option<&str>) -> Result<(), NetError> {
    if let Some(device) = device {
        bind_to_device(sock, device)?;
    }
    let addr = SockAddr::from(SocketAddrV4::new(dst, PROBE_PORT));
    sock.connect(&addr).map_err(|e| connect_error(dst, e))
}

/// Classifies a failed `connect(2)` of a UDP socket.
///
/// `EACCES` here is not a missing capability: it is a broadcast destination without
/// `SO_BROADCAST`, or a firewall rule, so it stays [`NetError::Io`].
fn connect_error(dst: Ipv4Addr, err: io::Error) -> NetError {
    match err.raw_os_error() {
        Some(libc::ENETUNREACH) | Some(libc::EHOSTUNREACH) => {
            NetError::NoRoute { dst, source: err }
        }
        _ => NetError::Io {
            op: "connect",
            source: err,
        },
    }
}

/// The source address the kernel would use to send to `dst`, optionally through `device`.
///
/// Connects a UDP socket to `dst:1025` (after `SO_BINDTODEVICE` on `device`) and reads its local
/// address, as iputils ping does; no packet is sent. Errors: [`NetError::NoRoute`] (prints
/// `connect: Network is unreachable`) when there is no route,
/// [`NetError::NoSuchInterface`] for an unknown `device`, [`NetError::Io`] (op `connect`) for
/// the rest, such as `EACCES` for a broadcast destination.
pub fn source_for(dst: Ipv4Addr, device: Option<&str>) -> Result<Ipv4Addr, NetError> {
    let sock = udp_socket()?;
    connected_probe(&sock, dst, device)?;
    let mut name = [0u8; mem::size_of::<libc::sockaddr_storage>()];
    let len = getsockname_bytes(sock.as_fd(), &mut name)
        .map_err(|e| NetError::from_io("getsockname", e))?;
    parse_sockaddr_in(&name[..len]).ok_or_else(|| NetError::Io {
        op: "getsockname",
        source: io::Error::new(io::ErrorKind::InvalidData, "not an IPv4 address"),
    })
}

/// The path MTU towards `dst` (optionally through `device`) as the kernel knows it now: the
/// route's cached PMTU when one was learnt from "fragmentation needed" errors, else the MTU of
/// the outgoing interface (or of the route, `ip route ... mtu N`).
///
/// Sets `IP_MTU_DISCOVER` to `IP_PMTUDISC_DO` on a UDP socket, connects it to `dst:1025` (no
/// packet is sent) and reads `IP_MTU`. Errors as [`source_for`].
pub fn path_mtu(dst: Ipv4Addr, device: Option<&str>) -> Result<u32, NetError> {
    let sock = udp_socket()?;
    setsockopt_int(
        sock.as_fd(),
        libc::IPPROTO_IP,
        libc::IP_MTU_DISCOVER,
        libc::IP_PMTUDISC_DO,
    )
    .map_err(|e| NetError::from_io("setsockopt(IP_MTU_DISCOVER)", e))?;
    connected_probe(&sock, dst, device)?;
    let mut value = [0u8; mem::size_of::<libc::c_int>()];
    let len = getsockopt_bytes(sock.as_fd(), libc::IPPROTO_IP, libc::IP_MTU, &mut value)
        .map_err(|e| NetError::from_io("getsockopt(IP_MTU)", e))?;
    if len != value.len() {
        return Err(NetError::Io {
            op: "getsockopt(IP_MTU)",
            source: io::Error::new(io::ErrorKind::InvalidData, "short option value"),
        });
    }
    u32::try_from(libc::c_int::from_ne_bytes(value)).map_err(|_| NetError::Io {
        op: "getsockopt(IP_MTU)",
        source: io::Error::new(io::ErrorKind::InvalidData, "negative MTU"),
    })
}

/// Checks that `addr` can be used as a source address: binds a UDP socket to `addr:0`.
///
/// Fails with [`NetError::AddressNotLocal`] (`bind: Cannot assign requested address: ... is
/// not an address of any interface of this host ...`) when no interface has it. The unspecified
/// address always passes, and so does any address when `net.ipv4.ip_nonlocal_bind` is 1.
pub fn check_local_source(addr: Ipv4Addr) -> Result<(), NetError> {
    let sock = udp_socket()?;
    sock.bind(&SockAddr::from(SocketAddrV4::new(addr, 0)))
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EADDRNOTAVAIL) => NetError::AddressNotLocal { addr, source: e },
            _ => NetError::Io {
                op: "bind",
                source: e,
            },
        })
}

/// True when an interface called `name` exists in this network namespace.
pub fn interface_exists(name: &str) -> bool {
    interface_index(name).is_ok()
}

/// The list `getifaddrs(3)` returns, freed on drop.
struct IfAddrs(*mut libc::ifaddrs);

impl IfAddrs {
    fn get() -> io::Result<IfAddrs> {
        let mut head: *mut libc::ifaddrs = ptr::null_mut();
        // SAFETY: `head` is a live pointer for getifaddrs to store the list head in; on success
        // the list is ours until freeifaddrs (in Drop).
        let rc = unsafe { libc::getifaddrs(&mut head) };
        if rc == 0 {
            Ok(IfAddrs(head))
        } else {
            Err(io::Error::last_os_error())
        }
    }

    /// The first IPv4 address whose interface (or address label) is `name`.
    fn first_ipv4(&self, name: &CStr) -> Option<Ipv4Addr> {
        let mut node = self.0;
        while !node.is_null() {
            // SAFETY: `node` is a non-null element of the list getifaddrs returned, alive until
            // freeifaddrs; its `ifa_name` is a NUL-terminated string and `ifa_addr` is either
            // null or points to a sockaddr of the family it names (sockaddr_in for AF_INET).
            let found = unsafe {
                let entry = &*node;
                node = entry.ifa_next;
                let addr = entry.ifa_addr;
                if entry.ifa_name.is_null()
                    || CStr::from_ptr(entry.ifa_name) != name
                    || addr.is_null()
                    || i32::from((*addr).sa_family) != libc::AF_INET
                {
                    None
                } else {
                    let sin = &*addr.cast::<libc::sockaddr_in>();
                    Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)))
                }
            };
            if found.is_some() {
                return found;
            }
        }
        None
    }
}

impl Drop for IfAddrs {
    fn drop(&mut self) {
        if !self.0.is_null() {
            // SAFETY: the pointer came from a successful getifaddrs and is freed only here.
            unsafe { libc::freeifaddrs(self.0) };
        }
    }
}

/// The first IPv4 address of interface `name` (`getifaddrs(3)`), `None` when it has none.
///
/// `name` may also be an address label such as `eth0:1`, which names that label's addresses.
/// Fails with [`NetError::NoSuchInterface`] when the interface does not exist.
pub fn interface_ipv4(name: &str) -> Result<Option<Ipv4Addr>, NetError> {
    interface_index(name)?;
    let c_name = CString::new(name).map_err(|_| NetError::NoSuchInterface {
        name: Some(name.to_owned()),
        source: None,
    })?;
    let list = IfAddrs::get().map_err(|e| NetError::from_io("getifaddrs", e))?;
    Ok(list.first_ipv4(&c_name))
}

/// An `ifreq` naming `name`, or [`NetError::NoSuchInterface`] for a name the kernel would
/// truncate or that holds a NUL.
fn ifreq_for(name: &str) -> Result<libc::ifreq, NetError> {
    let bad_name = || NetError::NoSuchInterface {
        name: Some(name.to_owned()),
        source: None,
    };
    if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains('\0') {
        return Err(bad_name());
    }
    // SAFETY: `ifreq` is plain data (a name array and a union of integers and plain structs),
    // for which all-zero bytes are a valid value.
    let mut req: libc::ifreq = unsafe { mem::zeroed() };
    // The name is shorter than IFNAMSIZ, so the zeroed tail keeps it NUL-terminated.
    for (dst, &src) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

/// The MTU of interface `name` (`ioctl(SIOCGIFMTU)`).
///
/// Fails with [`NetError::NoSuchInterface`] when the interface does not exist.
pub fn interface_mtu(name: &str) -> Result<u32, NetError> {
    let mut req = ifreq_for(name)?;
    let sock = udp_socket()?;
    // SAFETY: `req` is a live, initialised `ifreq` with a NUL-terminated name, the argument
    // SIOCGIFMTU reads the name from and writes the MTU into; the fd is open for the call.
    let rc = unsafe {
        libc::ioctl(
            sock.as_raw_fd(),
            libc::SIOCGIFMTU,
            &mut req as *mut libc::ifreq,
        )
    };
    if rc != 0 {
        let err = io::Error::last_os_error();
        return Err(NetError::from_io("ioctl(SIOCGIFMTU)", err).with_interface(name));
    }
    // SAFETY: a successful SIOCGIFMTU stored the MTU in the `ifru_mtu` member of the union.
    let mtu = unsafe { req.ifr_ifru.ifru_mtu };
    u32::try_from(mtu).map_err(|_| NetError::Io {
        op: "ioctl(SIOCGIFMTU)",
        source: io::Error::new(io::ErrorKind::InvalidData, "negative MTU"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(errno: i32) -> io::Error {
        io::Error::from_raw_os_error(errno)
    }

    #[test]
    fn unreachable_connect_prints_like_iputils() {
        let dst = Ipv4Addr::new(198, 18, 0, 7);
        let err = connect_error(dst, os(libc::ENETUNREACH));
        assert!(matches!(err, NetError::NoRoute { .. }));
        assert_eq!(err.to_string(), "connect: Network is unreachable");
        assert_eq!(err.raw_os_error(), Some(libc::ENETUNREACH));
        let err = connect_error(dst, os(libc::EHOSTUNREACH));
        assert_eq!(err.to_string(), "connect: No route to host");
    }

    #[test]
    fn connect_eacces_is_not_a_missing_privilege() {
        let err = connect_error(Ipv4Addr::BROADCAST, os(libc::EACCES));
        assert!(!err.is_permission());
        assert!(err.to_string().starts_with("connect: Permission denied"));
    }

    #[test]
    fn address_not_local_names_the_address_and_the_hint() {
        let err = NetError::AddressNotLocal {
            addr: Ipv4Addr::new(198, 18, 9, 9),
            source: os(libc::EADDRNOTAVAIL),
        };
        assert_eq!(
            err.to_string(),
            "bind: Cannot assign requested address: 198.18.9.9 is not an address of any \
             interface of this host (list them with `ip -4 addr`)"
        );
    }

    #[test]
    fn empty_long_and_nul_interface_names_are_no_such_interface() {
        for name in ["", "this-name-is-far-too-long", "nul\0x"] {
            assert!(!interface_exists(name));
            assert!(matches!(
                interface_mtu(name),
                Err(NetError::NoSuchInterface { .. })
            ));
            assert!(matches!(
                interface_ipv4(name),
                Err(NetError::NoSuchInterface { .. })
            ));
            assert!(matches!(
                source_for(Ipv4Addr::LOCALHOST, Some(name)),
                Err(NetError::NoSuchInterface { .. })
            ));
        }
    }

    #[test]
    fn ifreq_name_is_nul_terminated() {
        let req = ifreq_for("a23456789012345").expect("15 bytes fit");
        assert_eq!(req.ifr_name[14], b'5' as libc::c_char);
        assert_eq!(req.ifr_name[15], 0);
    }

    // The host's loopback: a connect sends nothing, and lo exists in every namespace.
    #[test]
    fn loopback_answers_in_any_namespace() {
        assert_eq!(
            source_for(Ipv4Addr::LOCALHOST, None).expect("route to 127.0.0.1"),
            Ipv4Addr::LOCALHOST
        );
        assert_eq!(
            source_for(Ipv4Addr::new(127, 3, 4, 5), None).expect("route to 127/8"),
            Ipv4Addr::LOCALHOST
        );
        assert!(interface_exists("lo"));
        assert_eq!(
            interface_ipv4("lo").expect("lo exists"),
            Some(Ipv4Addr::LOCALHOST)
        );
        check_local_source(Ipv4Addr::LOCALHOST).expect("127.0.0.1 is local");
        check_local_source(Ipv4Addr::UNSPECIFIED).expect("0.0.0.0 always binds");
    }
}

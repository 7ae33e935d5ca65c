//! Tier 3: `rawkit::net::{route, resolve, poll}` against the real kernel and C library. Each
//! privileged test runs in a network namespace of its own (`common::enter_netns`) and builds
//! what it needs there with `ip`: veth pairs (this kernel has no `dummy` driver) and addresses
//! from 198.18.0.0/15; nothing in the host's namespace is touched. Datagrams go only to 127.0.0.1,
//! and name lookups run only inside those namespaces, which have no route to any DNS server, so
//! no test depends on (or sends to) external DNS.

mod common;

use std::net::{Ipv4Addr, UdpSocket};
use std::os::fd::AsFd;
use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rawkit::net::NetError;
use rawkit::net::poll::{PollOutcome, poll_readable};
use rawkit::net::resolve::{ResolveErrorKind, ReverseCache, resolve_ipv4, reverse_name};
use rawkit::net::route::{
    check_local_source, interface_exists, interface_ipv4, interface_mtu, path_mtu, source_for,
};

const LOCALHOST: Ipv4Addr = Ipv4Addr::LOCALHOST;
const LAB_ADDR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// Enters a fresh namespace and finds `ip`; false (after the SKIPPED line) when either fails.
fn lab(test: &str) -> bool {
    common::enter_netns(test) && common::require_tool("ip").is_some()
}

/// Runs `ip args...` in the calling thread's namespace (a child process inherits it) and
/// panics when it fails.
fn ip(args: &[&str]) {
    let tool = common::require_tool("ip").expect("`ip` was found by lab()");
    let out = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("ip {args:?}: {e}"));
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A veth pair `rk0`/`rk1` in this namespace, both up, without addresses.
fn veth_pair() {
    ip(&["link", "add", "rk0", "type", "veth", "peer", "name", "rk1"]);
    ip(&["link", "set", "rk1", "up"]);
    ip(&["link", "set", "rk0", "up"]);
}

/// [`veth_pair`], with 198.18.0.1/24 on `rk0`.
fn lab_link() {
    veth_pair();
    ip(&["addr", "add", "198.18.0.1/24", "dev", "rk0"]);
}

// ---- route ---------------------------------------------------------------------------------

#[test]
fn source_for_loopback_is_loopback() {
    if !common::enter_netns("source_for_loopback_is_loopback") {
        return;
    }
    assert_eq!(source_for(LOCALHOST, None).expect("route"), LOCALHOST);
    assert_eq!(source_for(LOCALHOST, Some("lo")).expect("route"), LOCALHOST);
}

#[test]
fn source_for_picks_the_address_of_the_outgoing_interface() {
    if !lab("source_for_picks_the_address_of_the_outgoing_interface") {
        return;
    }
    lab_link();
    let dst = Ipv4Addr::new(198, 18, 0, 7);
    assert_eq!(source_for(dst, None).expect("route"), LAB_ADDR);
    assert_eq!(source_for(dst, Some("rk0")).expect("route"), LAB_ADDR);
    let err = source_for(dst, Some("nosuch0")).expect_err("unknown device");
    assert!(
        matches!(&err, NetError::NoSuchInterface { name: Some(n), .. } if n == "nosuch0"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "no such interface: nosuch0 (list the interfaces with `ip link`)"
    );
}

#[test]
fn source_for_without_a_route_says_network_is_unreachable() {
    if !lab("source_for_without_a_route_says_network_is_unreachable") {
        return;
    }
    lab_link();
    // The namespace has no default route: 198.19.0.1 is on no connected network.
    let dst = Ipv4Addr::new(198, 19, 0, 1);
    let err = source_for(dst, None).expect_err("no route");
    assert!(
        matches!(err, NetError::NoRoute { dst: d, .. } if d == dst),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "connect: Network is unreachable");
    assert_eq!(err.raw_os_error(), Some(libc::ENETUNREACH));
    let err = path_mtu(dst, None).expect_err("no route");
    assert_eq!(err.to_string(), "connect: Network is unreachable");
}

#[test]
fn path_mtu_of_loopback_is_capped_at_the_largest_ipv4_datagram() {
    if !common::enter_netns("path_mtu_of_loopback_is_capped_at_the_largest_ipv4_datagram") {
        return;
    }
    // lo's MTU is 65536, but the kernel caps a route's MTU at IP_MAX_MTU (65535, the largest
    // total length an IPv4 header can state): IP_MTU says 65535 (measured on Linux 6.18).
    assert_eq!(interface_mtu("lo").expect("SIOCGIFMTU"), 65536);
    assert_eq!(path_mtu(LOCALHOST, None).expect("IP_MTU"), 65535);
    assert_eq!(path_mtu(LOCALHOST, Some("lo")).expect("IP_MTU"), 65535);
}

#[test]
fn path_mtu_follows_the_interface_and_the_route() {
    if !lab("path_mtu_follows_the_interface_and_the_route") {
        return;
    }
    ip(&[
        "link", "add", "rkv0", "type", "veth", "peer", "name", "rkv1",
    ]);
    ip(&["link", "set", "rkv0", "mtu", "1280"]);
    ip(&["addr", "add", "198.18.1.1/24", "dev", "rkv0"]);
    ip(&["link", "set", "rkv1", "up"]);
    ip(&["link", "set", "rkv0", "up"]);
    assert_eq!(interface_mtu("rkv0").expect("SIOCGIFMTU"), 1280);
    assert_eq!(interface_mtu("rkv1").expect("SIOCGIFMTU"), 1500);
    let dst = Ipv4Addr::new(198, 18, 1, 2);
    assert_eq!(path_mtu(dst, None).expect("IP_MTU"), 1280);
    assert_eq!(path_mtu(dst, Some("rkv0")).expect("IP_MTU"), 1280);
    // A route's own MTU wins over the interface's.
    ip(&[
        "route",
        "add",
        "198.18.2.0/24",
        "dev",
        "rkv0",
        "mtu",
        "1000",
    ]);
    assert_eq!(
        path_mtu(Ipv4Addr::new(198, 18, 2, 9), None).expect("IP_MTU"),
        1000
    );
    assert!(matches!(
        interface_mtu("nosuch0"),
        Err(NetError::NoSuchInterface { name: Some(_), .. })
    ));
}

#[test]
fn check_local_source_refuses_an_address_of_no_interface() {
    if !lab("check_local_source_refuses_an_address_of_no_interface") {
        return;
    }
    let err = check_local_source(Ipv4Addr::new(198, 18, 9, 9)).expect_err("not local");
    assert!(matches!(err, NetError::AddressNotLocal { .. }), "{err:?}");
    assert_eq!(err.raw_os_error(), Some(libc::EADDRNOTAVAIL));
    assert_eq!(
        err.to_string(),
        "bind: Cannot assign requested address: 198.18.9.9 is not an address of any interface \
         of this host (list them with `ip -4 addr`)"
    );
    check_local_source(LOCALHOST).expect("127.0.0.1 is local");
    assert!(check_local_source(LAB_ADDR).is_err());
    lab_link();
    check_local_source(LAB_ADDR).expect("198.18.0.1 is on rk0 now");
}

#[test]
fn interface_queries_see_the_namespace_interfaces() {
    if !lab("interface_queries_see_the_namespace_interfaces") {
        return;
    }
    assert!(interface_exists("lo"));
    assert_eq!(interface_ipv4("lo").expect("lo"), Some(LOCALHOST));
    assert!(!interface_exists("rk0"));
    let err = interface_ipv4("rk0").expect_err("not made yet");
    assert!(
        matches!(&err, NetError::NoSuchInterface { name: Some(n), .. } if n == "rk0"),
        "{err:?}"
    );
    veth_pair();
    assert!(interface_exists("rk0"));
    assert_eq!(interface_ipv4("rk0").expect("rk0"), None);
    ip(&["addr", "add", "198.18.0.1/24", "dev", "rk0"]);
    ip(&["addr", "add", "198.18.0.2/24", "dev", "rk0"]);
    assert_eq!(interface_ipv4("rk0").expect("rk0"), Some(LAB_ADDR));
}

// ---- resolve -------------------------------------------------------------------------------

#[test]
fn localhost_resolves_through_the_hosts_file_with_its_canonical_name() {
    if !common::enter_netns("localhost_resolves_through_the_hosts_file_with_its_canonical_name") {
        return;
    }
    let r = resolve_ipv4("localhost").expect("localhost is in /etc/hosts");
    assert_eq!(r.addr, LOCALHOST);
    assert_eq!(r.canonical, "localhost");
    assert!(!r.numeric);
    let r = resolve_ipv4("127.1").expect("numeric");
    assert_eq!(
        (r.addr, r.canonical.as_str(), r.numeric),
        (LOCALHOST, "127.1", true)
    );
    let r = resolve_ipv4("2130706433").expect("numeric");
    assert_eq!(r.addr, LOCALHOST);
    assert!(r.numeric);
}

#[test]
fn an_unknown_name_fails_with_the_resolver_message() {
    if !common::enter_netns("an_unknown_name_fails_with_the_resolver_message") {
        return;
    }
    // No DNS server is reachable from this namespace: glibc says "Name or service not known"
    // or "Temporary failure in name resolution"; either way it is an error, and quick.
    let started = Instant::now();
    for host in ["nosuch.invalid", "127.0.0.1 x"] {
        let err = resolve_ipv4(host).expect_err("must not resolve");
        assert_eq!(err.host(), host);
        match err.kind() {
            ResolveErrorKind::Gai { message, .. } => {
                assert!(!message.is_empty());
                assert_eq!(err.to_string(), format!("{host}: {message}"));
            }
            ResolveErrorKind::System(_) => assert!(err.to_string().starts_with(host)),
            other => panic!("{host}: unexpected {other:?}"),
        }
    }
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(
        resolve_ipv4("").expect_err("empty").to_string(),
        "empty host name"
    );
}

#[test]
fn reverse_lookups_use_the_hosts_file_and_fail_quietly() {
    if !common::enter_netns("reverse_lookups_use_the_hosts_file_and_fail_quietly") {
        return;
    }
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let listed = hosts.lines().any(|l| {
        let mut words = l.split('#').next().unwrap_or("").split_whitespace();
        words.next() == Some("127.0.0.1") && words.next() == Some("localhost")
    });
    if listed {
        assert_eq!(reverse_name(LOCALHOST).as_deref(), Some("localhost"));
        assert_eq!(
            ReverseCache::new(false).format(LOCALHOST),
            "localhost (127.0.0.1)"
        );
    }
    // Not in /etc/hosts, and no DNS server reachable: no name.
    let lab = Ipv4Addr::new(198, 18, 0, 99);
    assert_eq!(reverse_name(lab), None);
    assert_eq!(ReverseCache::new(false).format(lab), "198.18.0.99");
    assert_eq!(ReverseCache::new(true).format(LOCALHOST), "127.0.0.1");
}

// ---- poll ----------------------------------------------------------------------------------

#[test]
fn poll_readable_wakes_for_a_udp_datagram_and_times_out_otherwise() {
    if !common::enter_netns("poll_readable_wakes_for_a_udp_datagram_and_times_out_otherwise") {
        return;
    }
    let quiet = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
    let target = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
    let to = target.local_addr().expect("local_addr");
    let mut ready = [true; 2];

    let started = Instant::now();
    let outcome = poll_readable(
        &[quiet.as_fd(), target.as_fd()],
        Some(Duration::from_millis(50)),
        &mut ready,
    )
    .expect("poll");
    let waited = started.elapsed();
    assert_eq!(outcome, PollOutcome::TimedOut);
    assert_eq!(ready, [false, false]);
    assert!(waited >= Duration::from_millis(50), "{waited:?}");
    assert!(waited < Duration::from_secs(2), "{waited:?}");

    // A datagram sent while poll waits wakes it well before its timeout.
    let sender = thread::spawn(move || {
        thread::sleep(Duration::from_millis(50));
        let tx = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
        tx.send_to(b"wake", to).expect("send");
    });
    let started = Instant::now();
    let outcome = poll_readable(
        &[quiet.as_fd(), target.as_fd()],
        Some(Duration::from_secs(10)),
        &mut ready,
    )
    .expect("poll");
    sender.join().expect("sender");
    assert_eq!(outcome, PollOutcome::Ready(1));
    assert_eq!(ready, [false, true]);
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut buf = [0u8; 16];
    assert_eq!(target.recv(&mut buf).expect("recv"), 4);
}

#[test]
fn poll_readable_counts_a_pending_socket_error_as_ready() {
    if !common::enter_netns("poll_readable_counts_a_pending_socket_error_as_ready") {
        return;
    }
    // A port that nobody listens on: the datagram draws an ICMP port unreachable, which sets
    // the connected socket's error and raises POLLERR (not POLLIN).
    let closed = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
    let port = closed.local_addr().expect("local_addr").port();
    drop(closed);
    let sock = UdpSocket::bind((LOCALHOST, 0)).expect("bind");
    sock.connect((LOCALHOST, port)).expect("connect");
    sock.send(b"nobody home").expect("send");
    let mut ready = [false];
    let outcome =
        poll_readable(&[sock.as_fd()], Some(Duration::from_secs(5)), &mut ready).expect("poll");
    assert_eq!(outcome, PollOutcome::Ready(1));
    assert!(ready[0]);
    let err = sock.recv(&mut [0u8; 16]).expect_err("the pending error");
    assert_eq!(err.raw_os_error(), Some(libc::ECONNREFUSED));
}

extern "C" fn ignore_signal(_: libc::c_int) {}

/// Needs no privilege and sends nothing: a socketpair that never becomes readable, and
/// SIGUSR1 sent to this thread (only this test binary's threads exist; the handler is a no-op).
#[test]
fn poll_readable_returns_interrupted_when_a_signal_arrives() {
    // SAFETY: `sigaction` is plain data (all-zero valid); the handler is an `extern "C"` fn
    // that does nothing (async-signal-safe); no SA_RESTART (poll is never restarted anyway).
    let rc = unsafe {
        let mut action: libc::sigaction = std::mem::zeroed();
        action.sa_sigaction = ignore_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
        action.sa_flags = 0;
        libc::sigemptyset(&mut action.sa_mask);
        libc::sigaction(libc::SIGUSR1, &action, std::ptr::null_mut())
    };
    assert_eq!(rc, 0, "sigaction: {}", std::io::Error::last_os_error());

    let (_keep, idle) = UnixDatagram::pair().expect("socketpair");
    // SAFETY: pthread_self has no preconditions.
    let me = unsafe { libc::pthread_self() };
    let done = Arc::new(AtomicBool::new(false));
    // The signaller keeps knocking until the wait ends, so a signal that lands just before
    // poll is entered cannot make the test hang or fail; it stops before this thread exits.
    let signaller = {
        let done = Arc::clone(&done);
        thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(10);
            while !done.load(Ordering::Acquire) && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(20));
                // SAFETY: `me` is the test thread, alive until it has joined this thread.
                unsafe { libc::pthread_kill(me, libc::SIGUSR1) };
            }
        })
    };
    let mut ready = [true];
    let started = Instant::now();
    let outcome = poll_readable(&[idle.as_fd()], Some(Duration::from_secs(10)), &mut ready);
    let waited = started.elapsed();
    done.store(true, Ordering::Release);
    signaller.join().expect("signaller");
    assert_eq!(outcome.expect("poll"), PollOutcome::Interrupted);
    assert_eq!(ready, [false]);
    assert!(waited < Duration::from_secs(5), "{waited:?}");
}

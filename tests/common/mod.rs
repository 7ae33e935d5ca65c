//! The harness of the privileged tests (tiers 3 and 4), shared with `mod common;`.
//!
//! Every privileged test starts with [`enter_netns`]: the test's thread moves into a fresh
//! network namespace of its own (with only `lo`, brought up here), so tests run in parallel
//! without seeing each other's packets and nothing reaches the host's network. Sockets the
//! thread opens, and the threads and processes it spawns afterwards, live in that namespace
//! (a new thread takes the namespaces of the thread that spawns it; measured on Linux 6.18).
//! The main thread and the other tests' threads keep theirs. A socket stays in the namespace
//! it was opened in wherever it is used, so [`Sniffer`] opens its capture on the caller's
//! thread before handing it to its own.
//!
//! When the privileges are missing a test prints one `SKIPPED <test>: <why>` line and returns;
//! under `CI=true` it fails instead, since CI runs as root and a skipped tier-3 test there
//! would hide a regression.
//!
//! The network rule: send only to 127.0.0.0/8 or to hosts in namespaces the test creates,
//! addressed from 198.18.0.0/15; bound every sending loop in count and time.
#![allow(dead_code, unsafe_code)]

pub mod lab;
pub mod process;

use std::ffi::CString;
use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rawkit::net::capture::{Capture, CaptureOptions, CaptureStats, Frame};
use rawkit::net::privilege;

/// True under CI (`CI=true`), where privileged tests must run, not skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// The name of the running test (libtest names each test's thread after it).
pub fn current_test_name() -> String {
    thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_owned()
}

/// Reports that `test_name` cannot run for `reason`: one `SKIPPED` line on stderr, or, under
/// CI, a panic that fails the test.
pub fn skip(test_name: &str, reason: &str) {
    if in_ci() {
        panic!("{test_name} cannot run under CI=true: {reason}");
    }
    // Straight to the stderr handle, not `eprintln!`, which libtest captures and hides for
    // passing tests: a skip must be visible.
    use std::io::Write as _;
    let _ = writeln!(io::stderr(), "SKIPPED {test_name}: {reason}");
}

const NETNS_REASON: &str =
    "needs CAP_NET_RAW/CAP_SYS_ADMIN for a private network namespace (run as root)";

/// Moves the calling thread into a fresh network namespace and brings its `lo` up.
///
/// Returns false (after printing the `SKIPPED` line) when the privileges are missing; panics
/// under CI instead, and panics when the namespace was made but `lo` cannot be brought up.
pub fn enter_netns(test_name: &str) -> bool {
    // Without CAP_NET_RAW the namespace would be useless to a tier-3 test.
    if !privilege::has_cap_net_raw() {
        skip(test_name, NETNS_REASON);
        return false;
    }
    // SAFETY: `unshare` takes no pointers; CLONE_NEWNET affects only the calling thread.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        let err = io::Error::last_os_error();
        skip(
            test_name,
            &format!("{NETNS_REASON}; unshare(CLONE_NEWNET): {err}"),
        );
        return false;
    }
    if let Err(err) = set_link_up("lo") {
        panic!("{test_name}: bringing lo up in the new network namespace failed: {err}");
    }
    true
}

/// An `AF_INET` datagram socket to issue interface ioctls on (in the thread's namespace).
fn ioctl_socket() -> io::Result<std::net::UdpSocket> {
    std::net::UdpSocket::bind("0.0.0.0:0").or_else(|_| {
        // With lo down, binding still works; this is only a fallback.
        std::net::UdpSocket::bind("127.0.0.1:0")
    })
}

fn ifreq_for(iface: &str) -> io::Result<libc::ifreq> {
    let name = CString::new(iface).map_err(|_| io::ErrorKind::InvalidInput)?;
    let bytes = name.as_bytes_with_nul();
    if bytes.len() > libc::IFNAMSIZ {
        return Err(io::ErrorKind::InvalidInput.into());
    }
    // SAFETY: `ifreq` is plain data (a name and a union of integers/structs); all zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, &src) in req.ifr_name.iter_mut().zip(bytes) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

fn ioctl(
    sock: &std::net::UdpSocket,
    request: libc::Ioctl,
    req: &mut libc::ifreq,
) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `req` is a live, initialised `ifreq`, the argument the SIOC*IF* ioctls take.
    let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request, req as *mut libc::ifreq) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Brings interface `iface` up (`SIOCSIFFLAGS` with `IFF_UP`), without the `ip` tool.
pub fn set_link_up(iface: &str) -> io::Result<()> {
    let sock = ioctl_socket()?;
    let mut req = ifreq_for(iface)?;
    ioctl(&sock, libc::SIOCGIFFLAGS, &mut req)?;
    // SAFETY: SIOCGIFFLAGS filled the `ifru_flags` member of the union.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    req.ifr_ifru.ifru_flags = flags | libc::IFF_UP as libc::c_short;
    ioctl(&sock, libc::SIOCSIFFLAGS, &mut req)
}

/// Sets the MTU of interface `iface` (`SIOCSIFMTU`).
pub fn set_mtu(iface: &str, mtu: u32) -> io::Result<()> {
    let sock = ioctl_socket()?;
    let mut req = ifreq_for(iface)?;
    req.ifr_ifru.ifru_mtu = libc::c_int::try_from(mtu).map_err(|_| io::ErrorKind::InvalidInput)?;
    ioctl(&sock, libc::SIOCSIFMTU, &mut req)
}

/// The network namespace of the calling thread, as `net:[inode]`.
pub fn netns_id() -> String {
    std::fs::read_link("/proc/thread-self/ns/net")
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// Runs `f` on a helper thread moved (`setns`) into the network namespace of the process's
/// main thread, the one the tests started in. `None` when the calling thread is already
/// there (nothing was unshared) or the move fails. Use it to check that a test left the host
/// alone; never to change the host.
pub fn in_main_thread_netns<T: Send>(f: impl FnOnce() -> T + Send) -> Option<T> {
    use std::os::fd::AsRawFd;
    let main_ns = std::fs::File::open("/proc/self/ns/net").ok()?;
    let main_id = std::fs::read_link("/proc/self/ns/net").ok()?;
    if main_id.display().to_string() == netns_id() {
        return None;
    }
    thread::scope(|scope| {
        scope
            .spawn(|| {
                // SAFETY: `main_ns` is an open namespace file; setns moves only this thread.
                let rc = unsafe { libc::setns(main_ns.as_raw_fd(), libc::CLONE_NEWNET) };
                (rc == 0).then(f)
            })
            .join()
            .ok()
            .flatten()
    })
}

/// Writes a sysctl such as `net.ipv4.ping_group_range`. Network sysctls are resolved in the
/// namespace of the *thread* that opens the file, so this affects the test's namespace only.
pub fn write_sysctl(name: &str, value: &str) -> io::Result<()> {
    std::fs::write(sysctl_path(name), value)
}

/// Reads a sysctl, trimmed.
pub fn read_sysctl(name: &str) -> io::Result<String> {
    std::fs::read_to_string(sysctl_path(name)).map(|v| v.trim().to_owned())
}

fn sysctl_path(name: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(name.replace('.', "/"))
}

/// Finds the external tool `tool` on `PATH` (or in `/usr/sbin`, `/sbin`). When it is missing,
/// prints the `SKIPPED` line for the current test and returns `None`; under CI, panics.
pub fn require_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found = std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|candidate| candidate.is_file());
    if found.is_none() {
        skip(&current_test_name(), &format!("needs `{tool}` on PATH"));
    }
    found
}

/// Polls `pred` every few milliseconds until it holds or `timeout` passes; returns whether it
/// held.
pub fn wait_for(mut pred: impl FnMut() -> bool, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if pred() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// The longest a [`Sniffer`] keeps capturing, whatever happens to the test.
const SNIFFER_LIMIT: Duration = Duration::from_secs(60);

/// A frame seen by a [`Sniffer`]: its metadata and the IPv4 datagram it carried.
#[derive(Debug, Clone)]
pub struct Sniffed {
    pub frame: Frame,
    pub datagram: Vec<u8>,
}

/// A capture on an interface that runs in a background thread and collects the IPv4 datagrams
/// it sees. Start it (on the test thread, inside the namespace) before sending.
#[derive(Debug)]
pub struct Sniffer {
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Vec<Sniffed>>>,
    handle: Option<JoinHandle<Option<CaptureStats>>>,
}

impl Sniffer {
    /// Captures on `iface` with the default options (outgoing copies ignored).
    pub fn start(iface: &str) -> Sniffer {
        Sniffer::start_with(iface, CaptureOptions::default())
    }

    /// Captures on `iface` with `opts` (its read timeout is replaced by a short one).
    pub fn start_with(iface: &str, opts: CaptureOptions) -> Sniffer {
        let opts = CaptureOptions {
            read_timeout: Some(Duration::from_millis(20)),
            ..opts
        };
        // Opened on the caller's thread, in its namespace, before anything is sent.
        let mut capture = Capture::open(iface, opts)
            .unwrap_or_else(|e| panic!("sniffer: cannot capture on {iface}: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let handle = {
            let (stop, seen) = (Arc::clone(&stop), Arc::clone(&seen));
            thread::spawn(move || {
                let started = Instant::now();
                let mut buf = vec![0u8; 65_600];
                while !stop.load(Ordering::Relaxed) && started.elapsed() < SNIFFER_LIMIT {
                    match capture.next(&mut buf) {
                        Ok(Some(frame)) => {
                            if let Some(ip) = frame.ip_payload(&buf) {
                                let sniffed = Sniffed {
                                    frame,
                                    datagram: ip.to_vec(),
                                };
                                seen.lock().unwrap_or_else(|p| p.into_inner()).push(sniffed);
                            }
                        }
                        Ok(None) => {}
                        Err(e) => {
                            eprintln!("sniffer: {e}");
                            break;
                        }
                    }
                }
                capture.statistics().ok()
            })
        };
        Sniffer {
            stop,
            seen,
            handle: Some(handle),
        }
    }

    /// The IPv4 datagrams seen so far.
    pub fn datagrams(&self) -> Vec<Vec<u8>> {
        self.sniffed().into_iter().map(|s| s.datagram).collect()
    }

    /// The frames seen so far, with their metadata.
    pub fn sniffed(&self) -> Vec<Sniffed> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until `pred` holds for the datagrams seen so far, at most `timeout`.
    pub fn wait_for(&self, mut pred: impl FnMut(&[Vec<u8>]) -> bool, timeout: Duration) -> bool {
        wait_for(|| pred(&self.datagrams()), timeout)
    }

    /// Stops capturing and returns every datagram seen, with the capture's statistics.
    pub fn stop(mut self) -> (Vec<Sniffed>, Option<CaptureStats>) {
        let stats = self.halt();
        (self.sniffed(), stats)
    }

    fn halt(&mut self) -> Option<CaptureStats> {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.take().and_then(|h| h.join().ok()).flatten()
    }
}

impl Drop for Sniffer {
    fn drop(&mut self) {
        self.halt();
    }
}

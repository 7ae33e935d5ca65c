//! Flood benchmark: `rawkit send icmp --flood -c N --dst 127.0.0.1` beside `hping3 --icmp
//! --flood 127.0.0.1` and beside the ceiling of this kernel path (a bare loop that sends one
//! prebuilt echo request with `sendto`, and the same with `sendmmsg` batches of 32), all in one
//! private network namespace and all counted by the kernel, not by the tools: `Icmp: InEchos`
//! of the namespace's `/proc/thread-self/net/snmp`, the echo requests its ICMP layer received
//! (`OutEchos` is printed beside it: on this kernel `IP_HDRINCL` sends of ICMP count there too;
//! `Ip: OutRequests` does not count them).
//!
//! Needs root (prints SKIPPED otherwise) and runs only under `cargo bench` (`--bench`).
//! hping3 runs for a fixed time (`RAWKIT_BENCH_HPING_SECS`, default 3 s; its rate is taken
//! between 0.5 s after its start and the end, then it is stopped by PID). Each contender runs
//! `RAWKIT_BENCH_ROUNDS` times (default 3), alternating; the best round counts, since the
//! machine is shared.
//!
//! ```text
//! cargo bench --bench send_flood                       # N = 1000000
//! RAWKIT_BENCH_COUNT=200000 cargo bench --bench send_flood
//! ```

mod common;
use common::enter_private_netns;
use rawkit::packet::builder::Ipv4Builder;
use rawkit::packet::icmp::IcmpRepr;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// `Icmp: InEchos` and `OutEchos` of the calling thread's namespace.
fn echos() -> (u64, u64) {
    let t = std::fs::read_to_string("/proc/thread-self/net/snmp").unwrap_or_default();
    let mut lines = t.lines().filter(|l| l.starts_with("Icmp:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return (0, 0);
    };
    let get = |key: &str| -> u64 {
        names
            .split_whitespace()
            .position(|n| n == key)
            .and_then(|i| values.split_whitespace().nth(i))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (get("InEchos"), get("OutEchos"))
}

/// A rate measured by the kernel's counters.
#[derive(Debug, Clone, Copy)]
struct Rate {
    in_echos: u64,
    out_echos: u64,
    secs: f64,
}

impl Rate {
    fn pps(&self) -> f64 {
        self.in_echos as f64 / self.secs
    }
}

/// The datagram rawkit sends by default: an echo request with no data, 28 bytes.
fn prebuilt() -> Vec<u8> {
    let mut buf = vec![0u8; 64];
    let n = Ipv4Builder::new(LO, LO)
        .ident(0x1234)
        .icmp(&IcmpRepr::EchoRequest {
            ident: 0x4242,
            seq_no: 1,
            data: &[],
        })
        .emit(&mut buf)
        .expect("echo request");
    buf.truncate(n);
    buf
}

fn raw_socket() -> Option<libc::c_int> {
    // SAFETY: plain socket(2) call.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_RAW, libc::IPPROTO_RAW) };
    (fd >= 0).then_some(fd)
}

fn lo_sockaddr() -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_ne_bytes(LO.octets()),
        },
        sin_zero: [0; 8],
    }
}

/// The ceiling: `sendto` of one prebuilt datagram, `n` times, nothing else.
fn ceiling_sendto(n: u64) -> Option<Rate> {
    let fd = raw_socket()?;
    let d = prebuilt();
    let sa = lo_sockaddr();
    let (i0, o0) = echos();
    let t = Instant::now();
    for _ in 0..n {
        // SAFETY: `d` and `sa` are live for the call; `fd` is our open socket.
        unsafe {
            libc::sendto(
                fd,
                d.as_ptr().cast(),
                d.len(),
                0,
                (&sa as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            );
        }
    }
    let secs = t.elapsed().as_secs_f64();
    let (i1, o1) = echos();
    // SAFETY: closes the descriptor opened above.
    unsafe { libc::close(fd) };
    Some(Rate {
        in_echos: i1 - i0,
        out_echos: o1 - o0,
        secs,
    })
}

/// The same datagram in `sendmmsg` batches of `batch`.
fn ceiling_sendmmsg(n: u64, batch: usize) -> Option<Rate> {
    let fd = raw_socket()?;
    let mut d = prebuilt();
    let mut sa = lo_sockaddr();
    let mut iov: Vec<libc::iovec> = (0..batch)
        .map(|_| libc::iovec {
            iov_base: d.as_mut_ptr().cast(),
            iov_len: d.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            // SAFETY: mmsghdr is plain data; all-zero is a valid empty message.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_name = (&mut sa as *mut libc::sockaddr_in).cast();
            m.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t;
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    let (i0, o0) = echos();
    let t = Instant::now();
    let mut sent = 0u64;
    while sent < n {
        let k = (n - sent).min(batch as u64) as libc::c_uint;
        // SAFETY: `msgs` points at `k` initialised headers whose buffers outlive the call.
        let r = unsafe { libc::sendmmsg(fd, msgs.as_mut_ptr(), k, 0) };
        sent += if r > 0 { r as u64 } else { 1 };
    }
    let secs = t.elapsed().as_secs_f64();
    let (i1, o1) = echos();
    // SAFETY: closes the descriptor opened above.
    unsafe { libc::close(fd) };
    Some(Rate {
        in_echos: i1 - i0,
        out_echos: o1 - o0,
        secs,
    })
}

/// `rawkit send icmp --flood -c n --dst 127.0.0.1`, counted by the kernel over its whole run.
fn rawkit(n: u64) -> Option<Rate> {
    let (i0, o0) = echos();
    let t = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_rawkit"))
        .args([
            "send",
            "icmp",
            "--flood",
            "-c",
            &n.to_string(),
            "--dst",
            "127.0.0.1",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status()
        .ok()?;
    let secs = t.elapsed().as_secs_f64();
    let (i1, o1) = echos();
    status.success().then_some(Rate {
        in_echos: i1 - i0,
        out_echos: o1 - o0,
        secs,
    })
}

fn hping3_path() -> Option<&'static str> {
    ["/usr/sbin/hping3", "/usr/bin/hping3", "/sbin/hping3"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
}

/// `hping3 --icmp --flood 127.0.0.1` for `secs` seconds after a 0.5 s start, then SIGINT by
/// PID (SIGKILL if it lingers).
fn hping3(path: &str, secs: f64) -> Option<Rate> {
    let mut child = Command::new(path)
        .args(["--icmp", "--flood", "127.0.0.1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    std::thread::sleep(Duration::from_millis(500));
    let (i0, o0) = echos();
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(secs));
    let (i1, o1) = echos();
    let elapsed = t.elapsed().as_secs_f64();
    let pid = child.id() as libc::pid_t;
    // SAFETY: signals our own child by its PID.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(3);
    while child.try_wait().ok()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Some(Rate {
        in_echos: i1 - i0,
        out_echos: o1 - o0,
        secs: elapsed,
    })
}

fn best(a: Option<Rate>, b: Option<Rate>) -> Option<Rate> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if y.pps() > x.pps() { y } else { x }),
        (x, y) => x.or(y),
    }
}

fn line(name: &str, r: Option<Rate>) {
    match r {
        Some(r) => println!(
            "{name:<26} {:>9.0} echo requests/s  (InEchos {} OutEchos {} in {:.3} s)",
            r.pps(),
            r.in_echos,
            r.out_echos,
            r.secs
        ),
        None => println!("{name:<26} did not run"),
    }
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let n: u64 = env_or("RAWKIT_BENCH_COUNT", 1_000_000);
    let rounds: usize = env_or("RAWKIT_BENCH_ROUNDS", 3);
    let hping_secs: f64 = env_or("RAWKIT_BENCH_HPING_SECS", 3.0);
    if let Err(e) = enter_private_netns() {
        println!("SKIPPED send_flood: needs root for a private network namespace ({e})");
        return;
    }
    if raw_socket().is_none() {
        println!("SKIPPED send_flood: needs CAP_NET_RAW for raw sockets");
        return;
    }
    let hping = hping3_path();
    let (mut rk, mut ceil, mut mmsg, mut hp) = (None, None, None, None);
    for _ in 0..rounds {
        rk = best(rk, rawkit(n));
        ceil = best(ceil, ceiling_sendto(n));
        mmsg = best(mmsg, ceiling_sendmmsg(n, 32));
        if let Some(p) = hping {
            hp = best(hp, hping3(p, hping_secs));
        }
    }
    println!(
        "send flood to 127.0.0.1 in a private namespace, counted by the kernel (Icmp InEchos); \
         best of {rounds} rounds"
    );
    line(&format!("rawkit send --flood -c {n}"), rk);
    line("ceiling: sendto loop", ceil);
    line("sendmmsg loop (batch 32)", mmsg);
    match hping {
        Some(_) => line(&format!("hping3 --flood ({hping_secs} s)"), hp),
        None => println!("hping3: not installed (apt-get install -y hping3): no ratio"),
    }
    if let (Some(r), Some(c)) = (rk, ceil) {
        let ratio = r.pps() / c.pps();
        println!(
            "rawkit / ceiling = {ratio:.3} (target >= 0.90: {})",
            if ratio >= 0.9 { "met" } else { "NOT met" }
        );
    }
    if let (Some(m), Some(c)) = (mmsg, ceil) {
        println!("sendmmsg / sendto = {:.3}", m.pps() / c.pps());
    }
    if let (Some(r), Some(h)) = (rk, hp) {
        let ratio = r.pps() / h.pps();
        println!(
            "rawkit / hping3 = {ratio:.3} (target >= 1.5: {})",
            if ratio >= 1.5 { "met" } else { "NOT met" }
        );
        if let Some(c) = ceil {
            println!(
                "ceiling / hping3 = {:.3} (no sender on this kernel path can beat this by much)",
                c.pps() / h.pps()
            );
        }
    }
}

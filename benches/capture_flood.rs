//! Capture benchmark: a flood of UDP datagrams on `lo` (1,000,000 by default), recorded at the
//! same time by `rawkit capture -i lo -w FILE -q` and by `tcpdump -i lo -w FILE`, in a private
//! network namespace (needs root; prints SKIPPED otherwise).
//!
//! Prints, for each capture: packets captured, received by filter and dropped by the kernel
//! (rawkit's PACKET_STATISTICS line, tcpdump's three lines), the records in its file and the
//! CPU time it used (user + system, from `wait4`); then the ratios. Three rounds, each with a
//! fresh pair of captures: both with their defaults; both with tcpdump's 2 MiB buffer and
//! only the received copy of each packet (`-B 2048`, and `-Q in` for tcpdump, which otherwise
//! also takes `lo`'s outgoing copies); and `rawkit capture --no-ring` (one `recvmsg` per
//! packet) beside tcpdump, to show what the `TPACKET_V3` ring is worth.
//!
//! The sender is this process: a connected UDP socket sending 18-byte datagrams (60-byte
//! frames) to a bound UDP socket in the namespace that never reads (so the kernel sends no
//! port unreachable), in a loop bounded by count and by time.
//!
//! ```text
//! cargo bench --bench capture_flood                        # 1,000,000 datagrams
//! RAWKIT_BENCH_COUNT=200000 cargo bench --bench capture_flood
//! ```

mod common;
use common::enter_private_netns;
use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The longest the flood may last, whatever the count.
const SEND_LIMIT: Duration = Duration::from_secs(120);
/// How long the captures get after the flood to hand over what the kernel holds.
const SETTLE: Duration = Duration::from_secs(2);
/// Longest wait for a capture to say it is listening.
const START_LIMIT: Duration = Duration::from_secs(10);

/// A capture running in the background; its stderr lines arrive on a channel.
struct Running {
    name: String,
    child: Child,
    lines: mpsc::Receiver<String>,
    file: PathBuf,
}

fn read_lines(stderr: ChildStderr, tx: mpsc::Sender<String>) {
    let mut reader = BufReader::new(stderr);
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
        let _ = tx.send(line.trim_end().to_owned());
        line.clear();
    }
}

impl Running {
    fn start(name: &str, program: &str, args: &[&str], file: PathBuf) -> Option<Running> {
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| println!("{name}: cannot start {program}: {e}"))
            .ok()?;
        let stderr = child.stderr.take()?;
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || read_lines(stderr, tx));
        let mut running = Running {
            name: name.to_owned(),
            child,
            lines,
            file,
        };
        // Both print "listening on ..." once their filter is attached and packets flow.
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match running.lines.recv_timeout(left) {
                Ok(l) if l.contains("listening on") => return Some(running),
                Ok(_) => {}
                Err(_) => {
                    println!("{name}: did not start listening");
                    let _ = running.stop();
                    return None;
                }
            }
        }
    }

    /// SIGINT (by PID), then the stderr lines it printed while stopping and the CPU time
    /// (user + system, in seconds) it used, from `wait4`.
    fn stop(&mut self) -> (Vec<String>, Option<f64>) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signals our own child, by its PID.
        unsafe { libc::kill(pid, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut cpu = None;
        while Instant::now() < deadline {
            let mut status = 0;
            // SAFETY: `rusage` is plain data the kernel fills in.
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            // SAFETY: valid pointers to live locals; reaps our own child only.
            let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
            if r == pid {
                let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
                cpu = Some(secs(usage.ru_utime) + secs(usage.ru_stime));
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        if cpu.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        let mut lines = Vec::new();
        while let Ok(l) = self.lines.recv_timeout(Duration::from_millis(500)) {
            lines.push(l);
        }
        (lines, cpu)
    }
}

/// Captured, received by filter, dropped by kernel: from rawkit's one line or tcpdump's three.
fn counters(lines: &[String]) -> Option<(u64, u64, u64)> {
    let number_before = |key: &str| -> Option<u64> {
        lines.iter().find_map(|l| {
            l.split(", ").find_map(|part| {
                let n = part.strip_suffix(key)?.trim();
                n.parse().ok()
            })
        })
    };
    Some((
        number_before("packets captured")?,
        number_before("received by filter")
            .or_else(|| number_before("packets received by filter"))?,
        number_before("dropped by kernel")
            .or_else(|| number_before("packets dropped by kernel"))?,
    ))
}

fn records_in(file: &Path) -> Option<u64> {
    let reader = rawkit::pcap::PcapReader::open(file).ok()?;
    Some(reader.filter(|r| r.is_ok()).count() as u64)
}

/// Sends `count` 18-byte datagrams to a bound socket that never reads; returns how many went
/// and how long it took.
fn flood(count: u64) -> (u64, Duration) {
    let sink = UdpSocket::bind("127.0.0.1:0").expect("bind the sink");
    let to = sink.local_addr().expect("sink address");
    let tx = UdpSocket::bind("127.0.0.1:0").expect("bind the sender");
    tx.connect(to).expect("connect");
    let payload = [0x5au8; 18];
    let started = Instant::now();
    let mut sent = 0;
    for i in 0..count {
        if i % 4096 == 0 && started.elapsed() > SEND_LIMIT {
            break;
        }
        if tx.send(&payload).is_ok() {
            sent += 1;
        }
    }
    (sent, started.elapsed())
}

struct Row {
    name: String,
    captured: u64,
    received: u64,
    dropped: u64,
    records: Option<u64>,
    cpu_s: Option<f64>,
}

fn round(
    rawkit_args: &[&str],
    tcpdump_args: &[&str],
    label: &str,
    count: u64,
    dir: &Path,
) -> Option<(Row, Option<Row>)> {
    let rawkit = env!("CARGO_BIN_EXE_rawkit");
    let rk_file = dir.join(format!("rawkit-{label}.pcap"));
    let rk_path = rk_file.to_str()?.to_owned();
    let mut args = vec!["capture", "-i", "lo", "-q", "-w", &rk_path];
    args.extend_from_slice(rawkit_args);
    let mut rk = Running::start(&format!("rawkit ({label})"), rawkit, &args, rk_file.clone())?;
    let td_file = dir.join(format!("tcpdump-{label}.pcap"));
    let td_path = td_file.to_str()?.to_owned();
    let tcpdump = ["/usr/bin/tcpdump", "/usr/sbin/tcpdump"]
        .into_iter()
        .find(|p| Path::new(p).exists());
    let mut td = tcpdump.and_then(|t| {
        let mut args = vec!["-i", "lo", "-n", "-Z", "root", "-w", &td_path];
        args.extend_from_slice(tcpdump_args);
        let name = format!("tcpdump {}", tcpdump_args.join(" "));
        Running::start(name.trim_end(), t, &args, td_file.clone())
    });
    let (sent, took) = flood(count);
    println!(
        "round {label}: sent {sent} datagrams in {:.2} s ({:.0} per second)",
        took.as_secs_f64(),
        sent as f64 / took.as_secs_f64()
    );
    thread::sleep(SETTLE);
    let row = |r: &mut Running| -> Option<Row> {
        let (lines, cpu_s) = r.stop();
        let Some((captured, received, dropped)) = counters(&lines) else {
            println!("{}: no statistics in {lines:?}", r.name);
            return None;
        };
        Some(Row {
            name: r.name.clone(),
            captured,
            received,
            dropped,
            records: records_in(&r.file),
            cpu_s,
        })
    };
    let rk_row = row(&mut rk)?;
    let td_row = td.as_mut().and_then(row);
    if tcpdump.is_none() {
        println!("tcpdump: not installed, no comparison");
    }
    Some((rk_row, td_row))
}

fn print_rows(count: u64, rows: &(Row, Option<Row>)) {
    let print = |r: &Row| {
        println!(
            "  {:<22} captured {:>9}  received by filter {:>9}  dropped by kernel {:>9} ({:.2}%)  records in file {}  CPU {}",
            r.name,
            r.captured,
            r.received,
            r.dropped,
            100.0 * r.dropped as f64 / count.max(1) as f64,
            r.records.map_or("?".to_string(), |n| n.to_string()),
            r.cpu_s.map_or("?".to_string(), |s| format!("{s:.2} s"))
        );
    };
    print(&rows.0);
    if let Some(td) = &rows.1 {
        print(td);
        let ratio = |a: u64, b: u64| {
            if b == 0 {
                if a == 0 {
                    "1 (both 0)".to_string()
                } else {
                    "inf (tcpdump 0)".to_string()
                }
            } else {
                format!("{:.3}", a as f64 / b as f64)
            }
        };
        let cpu = match (rows.0.cpu_s, td.cpu_s) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
            _ => "?".to_string(),
        };
        println!(
            "  ratios rawkit/tcpdump: captured {}, dropped {}, CPU {cpu}",
            ratio(rows.0.captured, td.captured),
            ratio(rows.0.dropped, td.dropped)
        );
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would not: run only when asked.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let count: u64 = std::env::var("RAWKIT_BENCH_COUNT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    // SAFETY: `geteuid` has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("SKIPPED capture_flood: needs root (a private network namespace, AF_PACKET)");
        return;
    }
    if let Err(e) = enter_private_netns() {
        println!("SKIPPED capture_flood: needs root for a private network namespace ({e})");
        return;
    }
    let dir = std::env::temp_dir().join(format!("rawkit-capture-flood-{}", std::process::id()));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        println!("capture_flood: cannot create {}: {e}", dir.display());
        return;
    }
    println!(
        "capture flood: {count} UDP datagrams (60-byte frames) on lo, each round beside tcpdump"
    );
    // 1. Both as they come. 2. The same kernel buffer (tcpdump's 2 MiB) and both taking only
    // the received copy of each packet (tcpdump -Q in; by default tcpdump takes lo's outgoing
    // copies too and drops them in user space). 3. rawkit without its ring.
    let rounds: [(&[&str], &[&str], &str); 3] = [
        (&[], &[], "ring"),
        (&["-B", "2048"], &["-B", "2048", "-Q", "in"], "ring-2MiB"),
        (&["--no-ring"], &[], "recvmsg"),
    ];
    for (rawkit_args, tcpdump_args, label) in rounds {
        match round(rawkit_args, tcpdump_args, label, count, &dir) {
            Some(rows) => print_rows(count, &rows),
            None => println!("round {label}: did not run"),
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

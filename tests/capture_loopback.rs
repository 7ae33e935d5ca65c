//! Tier 3: `rawkit capture` live, end to end. Each test moves its thread into a private network
//! namespace ([`common::enter_netns`]) and runs the real binary there, capturing on that
//! namespace's `lo` (or on a TUN device the test makes), while rawkit's own pings and the
//! test's UDP datagrams, to 127.0.0.0/8 or to 198.18.9.2 behind the TUN device, go by.
//!
//! What is proven: rawkit's pings, the kernel's replies, UDP datagrams and the kernel's port
//! unreachables (with their quoted datagram) are decoded line for line, each once on `lo`, with
//! kernel timestamps (UTC, now); each filter keeps exactly its packets, and the kernel's own
//! counters ("received by filter") count only those, so the filtering happens in the kernel,
//! for the ring and for `recvmsg` alike; `--direction` picks outgoing or incoming copies, or
//! both, tagged; `-w` then `-r` gives the same lines, and `-r` with a filter over the
//! unfiltered file gives what the live filter kept; tshark reads rawkit's file with the same
//! packets and fields, and rawkit reads dumpcap's (Ethernet and Linux cooked); a TUN device
//! is captured as raw IP and written as `LINKTYPE_RAW`; SIGINT, `-c`, `--timeout` and a
//! closed stdout end the capture as documented; capabilities are gone while it runs; `--json`
//! gives versioned events with numbers as numbers.
//!
//! Every run is bounded: a count or a timeout, and a time limit after which the child is
//! killed by its PID and the test fails.

mod common;

use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddrV4, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

const RAWKIT: &str = env!("CARGO_BIN_EXE_rawkit");
/// Longest any run may take before it is killed and the test fails.
const LIMIT: Duration = Duration::from_secs(20);
/// Longest to wait for something that should take milliseconds.
const WAIT: Duration = Duration::from_secs(5);

// ---------------------------------------------------------------------------------------------
// Running programs

/// A finished run.
#[derive(Debug)]
struct Run {
    code: Option<i32>,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

/// A running program whose stdout and stderr lines are read as they come. Killed (by its
/// PID) when dropped unfinished.
struct Live {
    what: String,
    child: Child,
    reaped: bool,
    out: mpsc::Receiver<String>,
    out_seen: Vec<String>,
    err: mpsc::Receiver<String>,
    err_seen: Vec<String>,
}

fn lines_of(stream: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    rx
}

impl Live {
    fn spawn(program: &str, args: &[&str]) -> Live {
        let what = format!("{program} {args:?}");
        let mut child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
        let out = lines_of(child.stdout.take().expect("stdout"));
        let err = lines_of(child.stderr.take().expect("stderr"));
        Live {
            what,
            child,
            reaped: false,
            out,
            out_seen: Vec::new(),
            err,
            err_seen: Vec::new(),
        }
    }

    /// Starts `rawkit capture ARGS` and waits until it says it is listening: its filter is in
    /// the kernel and frames flow.
    fn capture(args: &[&str]) -> Live {
        let mut full = vec!["capture"];
        full.extend_from_slice(args);
        let mut live = Live::spawn(RAWKIT, &full);
        live.wait_stderr("listening on");
        live
    }

    /// Waits until a stderr line contains `text`; panics after [`WAIT`].
    fn wait_stderr(&mut self, text: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.err_seen.iter().any(|l| l.contains(text)) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.err.recv_timeout(left) {
                Ok(l) => self.err_seen.push(l),
                Err(_) => panic!("{}: no {text:?} on stderr: {:?}", self.what, self.err_seen),
            }
        }
    }

    /// Waits until `n` stdout lines arrived; false after [`WAIT`].
    fn wait_stdout(&mut self, n: usize) -> bool {
        let deadline = Instant::now() + WAIT;
        while self.out_seen.len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.out.recv_timeout(left) {
                Ok(l) => self.out_seen.push(l),
                Err(_) => return false,
            }
        }
        true
    }

    fn pid(&self) -> libc::pid_t {
        self.child.id() as libc::pid_t
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: sends a signal to our own child, by its PID.
        unsafe { libc::kill(self.pid(), sig) };
    }

    /// Waits for the end (at most `limit`, else kills it and panics) and returns everything it
    /// printed.
    fn finish(mut self, limit: Duration) -> Run {
        let started = Instant::now();
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            if started.elapsed() > limit {
                let _ = self.child.kill();
                let _ = self.child.wait();
                self.reaped = true;
                panic!("{} still ran after {limit:?}", self.what);
            }
            thread::sleep(Duration::from_millis(5));
        };
        self.reaped = true;
        // The readers end at end of file, now that the child is gone.
        let mut stdout = std::mem::take(&mut self.out_seen);
        stdout.extend(self.out.iter());
        let mut stderr = std::mem::take(&mut self.err_seen);
        stderr.extend(self.err.iter());
        Run {
            code: status.code(),
            stdout,
            stderr,
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a program to its end, at most [`LIMIT`].
fn run(program: &str, args: &[&str]) -> Run {
    Live::spawn(program, args).finish(LIMIT)
}

/// `rawkit ping -c COUNT -i 0.05 -e IDENT 127.0.0.1`: COUNT requests, the kernel's replies.
fn ping(ident: u16, count: u32) {
    let (ident, count) = (ident.to_string(), count.to_string());
    let r = run(
        RAWKIT,
        &[
            "ping",
            "-q",
            "-c",
            &count,
            "-i",
            "0.05",
            "-e",
            &ident,
            "127.0.0.1",
        ],
    );
    assert_eq!(r.code, Some(0), "ping: {r:?}");
}

/// A UDP socket bound to `addr` (port 0: any).
fn udp(addr: Ipv4Addr, port: u16) -> UdpSocket {
    UdpSocket::bind(SocketAddrV4::new(addr, port)).expect("bind UDP")
}

fn port_of(s: &UdpSocket) -> u16 {
    s.local_addr().expect("local address").port()
}

/// A port on which nothing listens (bound, then closed again).
fn closed_port(addr: Ipv4Addr) -> u16 {
    port_of(&udp(addr, 0))
}

// ---------------------------------------------------------------------------------------------
// Lines

/// Splits `HH:MM:SS.ffffff rest` (and checks the timestamp's shape); returns the seconds of
/// the day and the rest.
fn split_time(line: &str) -> (f64, &str) {
    let (time, rest) = line
        .split_once(' ')
        .unwrap_or_else(|| panic!("no timestamp in {line:?}"));
    let parts: Vec<&str> = time.split([':', '.']).collect();
    assert!(
        parts.len() == 4
            && parts[..3].iter().all(|p| p.len() == 2)
            && parts[3].len() == 6
            && time.chars().filter(char::is_ascii_digit).count() == 12,
        "not HH:MM:SS.ffffff: {line:?}"
    );
    let n = |p: &str| p.parse::<f64>().expect("digits");
    let secs = n(parts[0]) * 3600.0 + n(parts[1]) * 60.0 + n(parts[2]) + n(parts[3]) / 1e6;
    (secs, rest)
}

/// The lines without their timestamps, after checking that the timestamps are now (UTC, the
/// kernel's) and never go back.
fn decoded(lines: &[String]) -> Vec<String> {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
        % 86_400.0;
    let mut last = 0.0;
    lines
        .iter()
        .map(|l| {
            let (secs, rest) = split_time(l);
            let age = (now - secs).rem_euclid(86_400.0);
            assert!(
                age < 60.0,
                "{l:?} is not from the last minute (UTC now {now})"
            );
            assert!(secs >= last - 1e-6, "timestamps go back at {l:?}");
            last = secs;
            normalized(rest)
        })
        .collect()
}

/// The kernel's choices that a test cannot know made fixed: the IP identification of
/// fragments, and the partial UDP checksums of `lo`'s offload (which depend on the sender).
fn normalized(line: &str) -> String {
    let mut s = line.replace(", cksum partial (offloaded)", "");
    if let Some(at) = s.find("(frag ") {
        let digits = s[at + 6..].chars().take_while(char::is_ascii_digit).count();
        s.replace_range(at + 6..at + 6 + digits, "ID");
    }
    s
}

fn echo_lines(ident: u16, count: u16) -> Vec<String> {
    (1..=count)
        .flat_map(|seq| {
            ["request", "reply"].map(|kind| {
                format!(
                    "IP 127.0.0.1 > 127.0.0.1: ICMP echo {kind}, id {ident}, seq {seq}, length 64"
                )
            })
        })
        .collect()
}

/// The last stderr line: rawkit's counters.
fn counters_line(run: &Run) -> &str {
    run.stderr.last().map_or("", String::as_str)
}

fn assert_counters(run: &Run, captured: usize, received: usize) {
    assert_eq!(
        counters_line(run),
        format!("{captured} packets captured, {received} received by filter, 0 dropped by kernel"),
        "{run:?}"
    );
}

/// A directory of this test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("rawkit-{test}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn file(&self, name: &str) -> String {
        self.0.join(name).to_str().expect("utf-8 path").to_owned()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `tshark -r FILE -T fields -e ...`, one row of fields per packet (each field as tshark
/// prints it; a quoted header's values follow the outer ones after a comma).
fn tshark_fields(tshark: &Path, file: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut args = vec!["-r", file, "-T", "fields"];
    for f in fields {
        args.extend_from_slice(&["-e", f]);
    }
    let r = run(tshark.to_str().expect("utf-8"), &args);
    assert_eq!(r.code, Some(0), "tshark: {r:?}");
    r.stdout
        .iter()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

fn first(field: &str) -> &str {
    field.split(',').next().unwrap_or("")
}

// ---------------------------------------------------------------------------------------------
// Decoding, files, tshark

#[test]
fn pings_udp_and_the_kernels_answers_are_decoded_line_for_line() {
    let test = "pings_udp_and_the_kernels_answers_are_decoded_line_for_line";
    if !common::enter_netns(test) {
        return;
    }
    let dir = TempDir::new(test);
    let file = dir.file("lo.pcap");
    let cap = Live::capture(&["-i", "lo", "-c", "9", "--timeout", "10", "-w", &file]);
    ping(4660, 3);
    let rx = udp(Ipv4Addr::LOCALHOST, 0);
    let tx = udp(Ipv4Addr::LOCALHOST, 0);
    let closed = closed_port(Ipv4Addr::LOCALHOST);
    tx.send_to(b"hello", (Ipv4Addr::LOCALHOST, port_of(&rx)))
        .expect("send");
    tx.send_to(b"hello", (Ipv4Addr::LOCALHOST, closed))
        .expect("send");
    let out = cap.finish(LIMIT);
    assert_eq!(out.code, Some(0), "{out:?}");
    let (s, r) = (port_of(&tx), port_of(&rx));
    let mut want = echo_lines(4660, 3);
    want.push(format!("IP 127.0.0.1.{s} > 127.0.0.1.{r}: UDP, length 5"));
    want.push(format!(
        "IP 127.0.0.1.{s} > 127.0.0.1.{closed}: UDP, length 5"
    ));
    want.push(format!(
        "IP 127.0.0.1 > 127.0.0.1: ICMP 127.0.0.1 udp port {closed} unreachable, length 41 \
         [quote: IP 127.0.0.1.{s} > 127.0.0.1.{closed}: udp, ttl 64, length 33]"
    ));
    assert_eq!(decoded(&out.stdout), want, "each packet once, decoded");
    assert_eq!(
        out.stderr,
        [
            "rawkit: listening on lo, link-type EN10MB (Ethernet), snapshot length 262144 bytes",
            "9 packets captured, 9 received by filter, 0 dropped by kernel",
        ]
    );

    // -w then -r: the same lines, timestamps included.
    let back = run(RAWKIT, &["capture", "-r", &file]);
    assert_eq!(back.code, Some(0), "{back:?}");
    assert_eq!(
        back.stdout, out.stdout,
        "-r prints what the live capture printed"
    );

    // tshark reads the same packets with the same fields.
    let Some(tshark) = common::require_tool("tshark") else {
        return;
    };
    let rows = tshark_fields(
        &tshark,
        &file,
        &[
            "frame.len",
            "eth.type",
            "ip.src",
            "ip.proto",
            "icmp.type",
            "icmp.ident",
            "icmp.seq",
            "udp.srcport",
            "udp.dstport",
        ],
    );
    assert_eq!(rows.len(), 9, "{rows:?}");
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row[1], "0x0800", "{row:?}");
        assert_eq!(first(&row[2]), "127.0.0.1", "{row:?}");
        if i < 6 {
            let kind = if i % 2 == 0 { "8" } else { "0" };
            let seq = (i / 2 + 1).to_string();
            assert_eq!(row[0], "98", "{row:?}");
            assert_eq!(
                [first(&row[3]), &row[4], &row[5], &row[6]],
                ["1", kind, "4660", seq.as_str()],
                "{row:?}"
            );
        }
    }
    let (s, r, c) = (s.to_string(), r.to_string(), closed.to_string());
    assert_eq!((rows[6][0].as_str(), rows[6][3].as_str()), ("47", "17"));
    assert_eq!(
        [rows[6][7].as_str(), rows[6][8].as_str()],
        [s.as_str(), r.as_str()]
    );
    assert_eq!(
        [rows[7][7].as_str(), rows[7][8].as_str()],
        [s.as_str(), c.as_str()]
    );
    // The port unreachable: ICMP 3 outside, the quoted UDP datagram inside.
    assert_eq!(
        [
            rows[8][0].as_str(),
            first(&rows[8][3]),
            &rows[8][4],
            &rows[8][8]
        ],
        ["75", "1", "3", c.as_str()],
        "{:?}",
        rows[8]
    );
}

#[test]
fn each_filter_keeps_exactly_its_packets_and_the_kernel_counts_only_those() {
    let test = "each_filter_keeps_exactly_its_packets_and_the_kernel_counts_only_those";
    if !common::enter_netns(test) {
        return;
    }
    // A 3000-byte datagram leaves lo in three fragments.
    common::set_mtu("lo", 1500).expect("lo mtu");
    let dir = TempDir::new(test);
    let all_file = dir.file("all.pcap");
    let rx53 = udp(Ipv4Addr::LOCALHOST, 53);
    let tx = udp(Ipv4Addr::LOCALHOST, 0);
    let closed = closed_port(Ipv4Addr::new(127, 0, 0, 2));
    let (s, c) = (port_of(&tx), closed.to_string());
    let filters: Vec<Vec<&str>> = vec![
        vec!["-w", &all_file],
        vec!["--proto", "icmp"],
        vec!["--proto", "udp"],
        vec!["--proto", "17", "--no-ring"],
        vec!["--host", "127.0.0.2"],
        vec!["--port", "53"],
        vec!["--port", &c],
        vec!["--proto", "udp", "--host", "127.0.0.1", "--port", "53"],
        vec!["--direction", "out", "--proto", "icmp"],
        vec!["--direction", "both", "--proto", "udp"],
        vec!["--direction", "in", "--proto", "icmp", "--no-ring"],
    ];
    // All the captures listen at once to the same traffic.
    let mut captures: Vec<Live> = filters
        .iter()
        .map(|f| {
            let mut args = vec!["-i", "lo", "--timeout", "60"];
            args.extend_from_slice(f);
            Live::capture(&args)
        })
        .collect();
    ping(4661, 2);
    tx.send_to(b"hello", (Ipv4Addr::LOCALHOST, 53))
        .expect("send");
    tx.send_to(&[7u8; 3000], (Ipv4Addr::LOCALHOST, 53))
        .expect("send");
    tx.send_to(b"hi", (Ipv4Addr::new(127, 0, 0, 2), closed))
        .expect("send");
    drop(rx53);

    let pings = echo_lines(4661, 2);
    let u1 = format!("IP 127.0.0.1.{s} > 127.0.0.1.53: UDP, length 5");
    let f1 = format!("IP 127.0.0.1.{s} > 127.0.0.1.53: UDP, length 3000 (frag ID:1480@0+)");
    let f2 = "IP 127.0.0.1 > 127.0.0.1: udp, length 1480 (frag ID:1480@1480+)".to_string();
    let f3 = "IP 127.0.0.1 > 127.0.0.1: udp, length 48 (frag ID:48@2960)".to_string();
    let u2 = format!("IP 127.0.0.1.{s} > 127.0.0.2.{c}: UDP, length 2");
    let e2 = format!(
        "IP 127.0.0.2 > 127.0.0.1: ICMP 127.0.0.2 udp port {c} unreachable, length 38 \
         [quote: IP 127.0.0.1.{s} > 127.0.0.2.{c}: udp, ttl 64, length 30]"
    );
    let cat = |parts: &[&[String]]| -> Vec<String> { parts.concat() };
    let icmp = cat(&[&pings, std::slice::from_ref(&e2)]);
    let udp_lines = vec![u1.clone(), f1.clone(), f2.clone(), f3.clone(), u2.clone()];
    let both: Vec<String> = udp_lines
        .iter()
        .flat_map(|l| [format!("Out {l}"), format!("In  {l}")])
        .collect();
    let wants: Vec<Vec<String>> = vec![
        cat(&[&pings, &udp_lines, std::slice::from_ref(&e2)]),
        icmp.clone(),
        udp_lines.clone(),
        udp_lines.clone(),
        vec![u2.clone(), e2.clone()],
        vec![u1.clone(), f1.clone()],
        vec![u2.clone()],
        vec![u1.clone(), f1.clone()],
        icmp.clone(),
        both,
        icmp.clone(),
    ];
    // Each capture ends by SIGINT once it printed what it should, and a moment more for
    // anything it should not have kept.
    for (cap, want) in captures.iter_mut().zip(&wants) {
        assert!(
            cap.wait_stdout(want.len()),
            "{}: {:?}",
            cap.what,
            cap.out_seen
        );
    }
    thread::sleep(Duration::from_millis(300));
    let runs: Vec<Run> = captures
        .into_iter()
        .map(|c| {
            c.signal(libc::SIGINT);
            c.finish(LIMIT)
        })
        .collect();
    for ((f, run), want) in filters.iter().zip(&runs).zip(&wants) {
        assert_eq!(run.code, Some(0), "{f:?}: {run:?}");
        assert_eq!(decoded(&run.stdout), *want, "{f:?}");
        // The kernel's counter: the filter ran there, before anything was queued.
        assert_counters(run, want.len(), want.len());
    }

    // The same filters over the unfiltered file, run by rawkit's BPF interpreter, keep the
    // same packets.
    for (f, want) in filters.iter().zip(&wants).skip(1) {
        if f.contains(&"--direction") {
            continue;
        }
        let mut args = vec!["capture", "-r", &all_file];
        args.extend(f.iter().filter(|a| **a != "--no-ring"));
        let r = run(RAWKIT, &args);
        assert_eq!(r.code, Some(0), "{args:?}: {r:?}");
        assert_eq!(decoded(&r.stdout), *want, "-r with {f:?}");
    }
}

#[test]
fn a_pcap_written_by_dumpcap_reads_as_the_same_packets() {
    let test = "a_pcap_written_by_dumpcap_reads_as_the_same_packets";
    if !common::enter_netns(test) {
        return;
    }
    let Some(dumpcap) = common::require_tool("dumpcap") else {
        return;
    };
    let Some(tshark) = common::require_tool("tshark") else {
        return;
    };
    let dumpcap = dumpcap.to_str().expect("utf-8");
    let dir = TempDir::new(test);
    // lo gives Ethernet frames, "any" Linux cooked ones; -P: classic pcap.
    let files = [dir.file("lo.pcap"), dir.file("any.pcap")];
    let mut caps: Vec<Live> = [("lo", &files[0]), ("any", &files[1])]
        .iter()
        .map(|(iface, file)| {
            let mut l = Live::spawn(dumpcap, &["-i", iface, "-P", "-c", "4", "-w", file]);
            l.wait_stderr("Capturing on");
            l
        })
        .collect();
    // dumpcap says it is capturing a moment before its filter is in place.
    thread::sleep(Duration::from_millis(300));
    ping(4662, 2);
    for c in caps.drain(..) {
        let r = c.finish(LIMIT);
        assert_eq!(r.code, Some(0), "{r:?}");
    }
    for (file, link) in files.iter().zip([1, 113]) {
        let r = run(RAWKIT, &["capture", "-r", file, "--json", "-q"]);
        let start: serde_json::Value = serde_json::from_str(&r.stdout[0]).expect("json");
        assert_eq!(start["link_type"], link, "{file}");
        let r = run(RAWKIT, &["capture", "-r", file]);
        assert_eq!(r.code, Some(0), "{r:?}");
        assert_eq!(decoded(&r.stdout), echo_lines(4662, 2), "{file}");
        let rows = tshark_fields(&tshark, file, &["icmp.type", "icmp.ident", "icmp.seq"]);
        let from_tshark: Vec<String> = rows
            .iter()
            .map(|r| {
                let kind = if r[0] == "8" { "request" } else { "reply" };
                format!(
                    "IP 127.0.0.1 > 127.0.0.1: ICMP echo {kind}, id {}, seq {}, length 64",
                    r[1], r[2]
                )
            })
            .collect();
        assert_eq!(
            from_tshark,
            decoded(&r.stdout),
            "tshark and rawkit agree on {file}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// A TUN device: raw IP frames, both directions

/// Makes TUN device `name` (`IFF_TUN | IFF_NO_PI`: IPv4 datagrams without a link header) and
/// returns its file; the device lives as long as the file is open.
fn open_tun(name: &str) -> Option<std::fs::File> {
    use std::os::fd::AsRawFd;
    let tun = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/net/tun")
        .ok()?;
    // SAFETY: `ifreq` is plain data; all zero is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    req.ifr_ifru.ifru_flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
    // SAFETY: TUNSETIFF reads and writes the live `ifreq` it is given.
    let rc = unsafe { libc::ioctl(tun.as_raw_fd(), libc::TUNSETIFF, &mut req) };
    (rc == 0).then_some(tun)
}

#[test]
fn a_tun_device_is_captured_as_raw_ip_in_both_directions() {
    let test = "a_tun_device_is_captured_as_raw_ip_in_both_directions";
    if !common::enter_netns(test) {
        return;
    }
    let Some(ip) = common::require_tool("ip") else {
        return;
    };
    let ip = ip.to_str().expect("utf-8");
    let Some(mut tun) = open_tun("rk0") else {
        common::skip(test, "cannot make a TUN device (/dev/net/tun)");
        return;
    };
    for args in [
        &["addr", "add", "198.18.9.1/24", "dev", "rk0"][..],
        &["link", "set", "rk0", "up"],
    ] {
        let r = run(ip, args);
        assert_eq!(r.code, Some(0), "ip {args:?}: {r:?}");
    }
    let dir = TempDir::new(test);
    let file = dir.file("tun.pcap");
    let cap = Live::capture(&["-i", "rk0", "-c", "2", "--timeout", "10", "-w", &file]);
    assert!(
        cap.err_seen[0].contains("link-type RAW (Raw IP)"),
        "{:?}",
        cap.err_seen
    );
    // Out: a datagram to 198.18.9.2, routed into the TUN device (the test holds its other end).
    let tx = udp(Ipv4Addr::new(198, 18, 9, 1), 0);
    let s = port_of(&tx);
    tx.send_to(b"ping", (Ipv4Addr::new(198, 18, 9, 2), 9))
        .expect("send");
    // In: an answer written into the device, as if 198.18.9.2 had sent it.
    let mut answer = vec![0u8; 64];
    let n = rawkit::packet::builder::Ipv4Builder::new(
        Ipv4Addr::new(198, 18, 9, 2),
        Ipv4Addr::new(198, 18, 9, 1),
    )
    .udp(9, s, b"pong")
    .emit(&mut answer)
    .expect("emit");
    std::io::Write::write_all(&mut tun, &answer[..n]).expect("write into the TUN device");
    let out = cap.finish(LIMIT);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        decoded(&out.stdout),
        [
            format!("IP 198.18.9.1.{s} > 198.18.9.2.9: UDP, length 4"),
            format!("IP 198.18.9.2.9 > 198.18.9.1.{s}: UDP, length 4"),
        ]
    );
    // Written as LINKTYPE_RAW: rawkit and tshark read it back.
    let back = run(RAWKIT, &["capture", "-r", &file, "--json", "-q"]);
    let start: serde_json::Value = serde_json::from_str(&back.stdout[0]).expect("json");
    assert_eq!(start["link_type"], 101);
    let back = run(RAWKIT, &["capture", "-r", &file]);
    assert_eq!(back.stdout, out.stdout);
    if let Some(tshark) = common::require_tool("tshark") {
        let rows = tshark_fields(&tshark, &file, &["frame.len", "ip.src", "udp.dstport"]);
        let s = s.to_string();
        assert_eq!(
            rows,
            [
                vec!["32".to_string(), "198.18.9.1".into(), "9".into()],
                vec!["32".to_string(), "198.18.9.2".into(), s],
            ]
        );
    }
}

// ---------------------------------------------------------------------------------------------
// How a capture ends; privileges; JSON

#[test]
fn sigint_ends_the_capture_with_the_kernels_counters() {
    if !common::enter_netns("sigint_ends_the_capture_with_the_kernels_counters") {
        return;
    }
    let mut cap = Live::capture(&["-i", "lo"]);
    ping(4663, 2);
    assert!(cap.wait_stdout(4), "{:?}", cap.out_seen);
    cap.signal(libc::SIGINT);
    let out = cap.finish(LIMIT);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(decoded(&out.stdout), echo_lines(4663, 2));
    assert_counters(&out, 4, 4);
}

#[test]
fn a_timeout_before_the_count_exits_1_and_an_idle_capture_counts_nothing() {
    if !common::enter_netns("a_timeout_before_the_count_exits_1_and_an_idle_capture_counts_nothing")
    {
        return;
    }
    let started = Instant::now();
    let out = Live::capture(&["-i", "lo", "-c", "3", "--timeout", "0.5"]).finish(LIMIT);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    assert_counters(&out, 0, 0);
    // Without -c, a timeout is a normal end.
    let out = Live::capture(&["-i", "lo", "--timeout", "0.2"]).finish(LIMIT);
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[test]
fn a_closed_stdout_ends_the_capture_quietly() {
    if !common::enter_netns("a_closed_stdout_ends_the_capture_quietly") {
        return;
    }
    let mut cap = Live::capture(&["-i", "lo", "--timeout", "15"]);
    ping(4664, 1);
    assert!(cap.wait_stdout(1), "{:?}", cap.out_seen);
    // The reader goes away (`rawkit capture ... | head -1`): drop our end of the pipe.
    drop(std::mem::replace(&mut cap.out, mpsc::channel().1));
    let started = Instant::now();
    // Writes now fail; keep traffic coming until rawkit notices.
    let mut out = None;
    for _ in 0..40 {
        ping(4664, 1);
        if cap.child.try_wait().expect("wait").is_some() {
            out = Some(cap.finish(LIMIT));
            break;
        }
    }
    let out = out.expect("rawkit ended after its stdout closed");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr.len(), 1, "only the listening line: {out:?}");
}

fn cap_mask(status: &str, field: &str) -> u64 {
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .map(|v| u64::from_str_radix(v.trim(), 16).expect("hex mask"))
        .unwrap_or_else(|| panic!("no {field} in /proc status"))
}

#[test]
fn capabilities_are_gone_while_the_capture_runs() {
    if !common::enter_netns("capabilities_are_gone_while_the_capture_runs") {
        return;
    }
    let dir = TempDir::new("capabilities_are_gone_while_the_capture_runs");
    let file = dir.file("c.pcap");
    let mut cap = Live::capture(&["-i", "lo", "-w", &file, "--timeout", "10"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", cap.pid())).expect("status");
    for field in ["CapEff:", "CapPrm:", "CapInh:", "CapAmb:"] {
        assert_eq!(cap_mask(&status, field), 0, "{field} while capturing");
    }
    // It still captures, and still writes its file.
    ping(4665, 1);
    assert!(cap.wait_stdout(2), "{:?}", cap.out_seen);
    cap.signal(libc::SIGTERM);
    let out = cap.finish(LIMIT);
    assert_eq!(out.code, Some(0), "{out:?}");
    let back = run(RAWKIT, &["capture", "-r", &file]);
    assert_eq!(back.stdout, out.stdout);
}

#[test]
fn json_lines_are_versioned_events_with_numbers_as_numbers() {
    if !common::enter_netns("json_lines_are_versioned_events_with_numbers_as_numbers") {
        return;
    }
    let cap = Live::capture(&["-i", "lo", "--json", "-c", "4", "--timeout", "10"]);
    ping(4666, 1);
    let tx = udp(Ipv4Addr::LOCALHOST, 0);
    let closed = closed_port(Ipv4Addr::LOCALHOST);
    tx.send_to(b"x", (Ipv4Addr::LOCALHOST, closed))
        .expect("send");
    let out = cap.finish(LIMIT);
    assert_eq!(out.code, Some(0), "{out:?}");
    let events: Vec<serde_json::Value> = out
        .stdout
        .iter()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(events.len(), 6, "{events:?}");
    for e in &events {
        assert_eq!(
            (e["v"].as_u64(), e["cmd"].as_str()),
            (Some(1), Some("capture"))
        );
    }
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().expect("event"))
        .collect();
    assert_eq!(
        kinds,
        ["start", "packet", "packet", "packet", "packet", "summary"]
    );
    assert_eq!(events[0]["interface"], "lo");
    assert_eq!(events[0]["reader"], "ring");
    assert_eq!(events[0]["filter"]["direction"], "in");
    let (req, rep, dgram, err) = (&events[1], &events[2], &events[3], &events[4]);
    for (i, p) in [req, rep, dgram, err].iter().enumerate() {
        assert_eq!(p["n"], i as u64 + 1);
        assert_eq!(p["direction"], "in");
        assert_eq!(p["ethertype"], 2048);
        assert!(p["ts"].as_f64().expect("ts") > 1.6e9);
        // The text line's parts: the UTC time of day, and the one-line decode.
        let line = format!(
            "{} {}",
            p["time"].as_str().expect("time"),
            p["summary"].as_str().expect("summary")
        );
        assert_eq!(decoded(&[line]).len(), 1);
    }
    assert_eq!(req["summary"], echo_lines(4666, 1)[0]);
    assert_eq!(rep["summary"], echo_lines(4666, 1)[1]);
    assert_eq!(
        (
            req["type"].as_u64(),
            req["ident"].as_u64(),
            req["seq"].as_u64()
        ),
        (Some(8), Some(4666), Some(1))
    );
    assert_eq!(
        (
            rep["type"].as_u64(),
            rep["ttl"].as_u64(),
            rep["len"].as_u64()
        ),
        (Some(0), Some(64), Some(98))
    );
    assert_eq!(dgram["dport"], closed);
    assert_eq!(dgram["payload_len"], 1);
    assert_eq!(
        (err["type"].as_u64(), err["code"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(err["quote"]["dport"], closed);
    assert_eq!(err["quote"]["proto"], 17);
    let summary = &events[5];
    assert_eq!(summary["captured"], 4);
    assert_eq!(summary["received_by_filter"], 4);
    assert_eq!(summary["dropped"], 0);
    assert_eq!(summary["end"], "count");
    assert_eq!(summary["exit"], 0);
}

//! `rawkit ping` with many targets: fping's job, over one socket.
//!
//! The driver: validate the arguments (fping's options that clash with iputils' short flags
//! have long names), parse the targets ([`super::targets`]: hosts, CIDR blocks, ranges,
//! `--file`), resolve the names, open the sockets exactly as the single-target ping does
//! ([`super::icmp_io`]), drop every capability, then run the
//! [`SweepSession`](crate::probe::sweep::SweepSession) engine against the clock and the
//! socket, printing what fping prints (all of it on stdout, where fping puts its summaries on
//! stderr) and a final `Total:` line.
//!
//! Each probe's payload carries, after the 16-byte send time and per-run cookie that every
//! rawkit ping probe has, the target's index and the sweep-wide sequence number of the probe
//! (big-endian, 4 bytes each); the echo sequence number is the probe number for its target
//! (fping's `[k]`). A reply counts only when its cookie is this run's and its source is the
//! target's address: the engine finds the probe from the payload at once, however many
//! targets there are.
//!
//! Probes go out in batches; replies are read right after each batch (on `lo` the kernel
//! answers within the `sendto`) and while waiting; results are written a batch at a time. Above
//! 20,000 probes per second (or unlimited) a second thread, started after every capability is
//! dropped, sends every other batch on the same socket: the kernel's work for a probe is done
//! in the sending thread's time, so two cores sweep about twice as fast. The driver alone
//! reads replies, runs the engine and prints.

mod report;

use super::icmp_io::{
    self, EchoProbe, Event, Matcher, PcapFile, SendError, SocketSetup, Sockets, payload_template,
    stamp_payload, unix_nanos,
};
use super::output::warn;
use super::ping::{self, Interface, PingArgs};
use super::targets;
use super::{EXIT_ERROR, random_u64};
use crate::net::NetError;
use crate::net::poll;
use crate::net::privilege;
use crate::net::resolve;
use crate::net::route;
use crate::net::socket::PmtuMode;
use crate::pcap::{LinkType, PcapWriter};
use crate::probe::sweep::{
    Locator, Next, Probe, ReplyOutcome, SweepConfig, SweepEvent, SweepSession, TargetSet,
};
use report::{Progress, Report};
use serde_json::json;
use std::io::IsTerminal;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The most `--retries`.
pub const MAX_RETRIES: u8 = 20;
/// Bytes of payload a sweep needs: send time, cookie, target index, sequence number.
pub const MIN_PAYLOAD: usize = 24;
/// Probes per second without `--rate` (fping's default is 100: one every 10 ms).
pub const DEFAULT_RATE: u32 = 1000;
/// The fastest rate without privileges (fping's 1 ms minimum interval for users).
pub const USER_MAX_RATE: u32 = 1000;
/// Alive check: a probe's wait without `-W` (fping `-t`).
const DEFAULT_TIMEOUT: Duration = Duration::from_millis(500);
/// Count mode: the longest default wait (fping's `AUTOTUNE_TIMEOUT_MAX`).
const MAX_AUTO_TIMEOUT: Duration = Duration::from_secs(2);
/// Probes are sent in batches of this many; replies are read after each batch.
const BATCH: usize = 32;
/// The second sender thread gets batches this large: it only sends, while the driver also
/// reads every reply and runs the engine, so its share is bigger (about 64 to 36 balances
/// the two cores on `lo`).
const HELPER_BATCH: usize = 56;
/// When a wait comes, a batch this large still goes to the idle helper.
const OFFLOAD_MIN: usize = 16;
/// The second sender thread is started only for rates above this (or unlimited): below, one
/// thread sends with time to spare.
const OFFLOAD_RATE: u32 = 20_000;
/// At most this many datagrams are read in one go.
const READ_BATCH: usize = 4096;

/// Parses `--backoff`: a factor from 1 to 5 (fping's bounds).
pub fn parse_backoff(s: &str) -> Result<f64, String> {
    let v: f64 = s
        .trim()
        .parse()
        .map_err(|_| "not a number (e.g. 1.5)".to_string())?;
    if !(1.0..=5.0).contains(&v) {
        return Err("out of range: 1 <= value <= 5".into());
    }
    Ok(v)
}

/// Validated options of a sweep.
#[derive(Debug)]
struct SweepOptions {
    args: PingArgs,
    cfg: SweepConfig,
    interface: Option<Interface>,
    pmtu: PmtuMode,
    pattern: Vec<u8>,
}

impl SweepOptions {
    fn from_args(args: PingArgs) -> Result<SweepOptions, String> {
        let one_target = |flag: &str| {
            format!(
                "{flag} works with one target only; with many targets see --help (fping's options)"
            )
        };
        if args.flood {
            return Err(one_target("-f (flood)") + ", and --rate for speed");
        }
        if args.preload.is_some() {
            return Err(one_target("-l (preload)"));
        }
        if args.outstanding {
            return Err(one_target("-O") + " (with -c, a line per timed-out probe is printed)");
        }
        if args.audible {
            return Err(one_target("-a (audible)") + "; fping's -a is --alive here");
        }
        if args.size < MIN_PAYLOAD {
            return Err(format!(
                "-s {}: with many targets the payload carries the send time, a cookie, the target \
                 and the probe ({MIN_PAYLOAD} bytes): use -s {MIN_PAYLOAD} or more",
                args.size
            ));
        }
        let count = match args.count {
            None => None,
            Some(c) => Some(u16::try_from(c).map_err(|_| {
                format!("-c {c}: with many targets, at most 65535 probes per target")
            })?),
        };
        let interval = args.interval.unwrap_or(Duration::from_secs(1));
        if count.is_some() && interval < ping::MIN_USER_INTERVAL && !ping::privileged() {
            return Err(
                "minimal interval between probes to one target for a user is 2 ms: use -i 0.002 \
                 (or higher); shorter intervals need CAP_NET_RAW (run as root, or setcap \
                 cap_net_raw+ep)"
                    .into(),
            );
        }
        let rate = args.rate.unwrap_or(DEFAULT_RATE);
        if (rate == 0 || rate > USER_MAX_RATE) && !ping::privileged() {
            return Err(format!(
                "--rate {rate}: more than {USER_MAX_RATE} probes per second (or 0, unlimited) \
                 needs CAP_NET_RAW (run as root, or setcap cap_net_raw+ep)"
            ));
        }
        let timeout = match args.timeout {
            Some(t) if t.is_zero() => {
                return Err(
                    "-W 0: with many targets each probe needs a wait above 0 seconds".into(),
                );
            }
            Some(t) => t,
            // fping: the -p period up to 2 s in count mode, 500 ms in the alive check.
            None if count.is_some() => {
                if interval.is_zero() {
                    MAX_AUTO_TIMEOUT
                } else {
                    interval.min(MAX_AUTO_TIMEOUT)
                }
            }
            None => DEFAULT_TIMEOUT,
        };
        let cfg = SweepConfig {
            count,
            retries: args.retries.unwrap_or(3),
            backoff: args.backoff.unwrap_or(1.5),
            timeout,
            interval,
            rate: (rate > 0).then_some(rate),
            deadline: args
                .deadline
                .filter(|d| *d > 0)
                .map(|d| Duration::from_secs(u64::from(d))),
        };
        let pmtu = ping::pmtu_mode(args.pmtudisc.as_deref());
        let pattern = args.pattern.clone().map(|p| p.0).unwrap_or_default();
        let interface = ping::parse_interface(args.interface.as_deref())?;
        Ok(SweepOptions {
            args,
            cfg,
            interface,
            pmtu,
            pattern,
        })
    }

    fn device(&self) -> Option<&str> {
        match &self.interface {
            Some(Interface::Device(d)) => Some(d),
            _ => None,
        }
    }

    /// The source address of the probes: the `-I` address, else 0.0.0.0 (the kernel puts in
    /// each route's own).
    fn source(&self) -> Ipv4Addr {
        match self.interface {
            Some(Interface::Source(a)) => a,
            _ => Ipv4Addr::UNSPECIFIED,
        }
    }

    fn socket_setup(&self) -> SocketSetup<'_> {
        let a = &self.args;
        SocketSetup {
            raw_only: a.raw || a.ident == Some(0),
            dgram_only: a.dgram,
            ident: a.ident,
            bind_source: self.source(),
            device: self.device(),
            ttl: a.ttl,
            tos: a.tos,
            pmtu: self.pmtu,
            big_buffers: true,
        }
    }
}

/// Runs a many-target `rawkit ping`; returns the exit status.
pub fn run(args: PingArgs) -> i32 {
    let o = match SweepOptions::from_args(args) {
        Ok(o) => o,
        Err(e) => {
            warn(e);
            return EXIT_ERROR;
        }
    };
    // Every block, range and file is checked before any name is looked up.
    let words: Vec<String> = o.args.host.iter().chain(&o.args.more).cloned().collect();
    let specs = match targets::parse_all(&words, o.args.file.as_deref(), o.args.force) {
        Ok(s) => s,
        Err(e) => {
            warn(e);
            return EXIT_ERROR;
        }
    };
    let built = targets::build(&specs, |h| {
        resolve::resolve_ipv4(h)
            .map(|r| r.addr)
            .map_err(|e| e.to_string())
    });
    let (set, unresolved) = match built {
        Ok(b) => b,
        Err(e) => {
            warn(e);
            return EXIT_ERROR;
        }
    };
    if !o.args.quiet {
        for msg in &unresolved {
            warn(msg);
        }
    }
    if set.is_empty() {
        if o.args.quiet {
            for msg in &unresolved {
                warn(msg);
            }
        }
        return EXIT_ERROR;
    }
    match Sweeper::start(o, set, unresolved.len()) {
        Ok(mut s) => s.run(),
        Err(code) => code,
    }
}

/// Builds and sends the probes: the payload template, stamped per probe, and the fields every
/// probe shares. The driver has one; the second sender thread has its own copy.
#[derive(Debug, Clone)]
struct Sender {
    template: Vec<u8>,
    buf: Vec<u8>,
    cookie: [u8; 8],
    ident: u16,
    source: Ipv4Addr,
    ttl: Option<u8>,
    tos: Option<u8>,
    pmtu: PmtuMode,
    device: Option<String>,
    ip_ident: u16,
}

impl Sender {
    /// Sends probe `p` (copied to `pcap` when given); the payload carries the send time, the
    /// cookie, the target's index and the probe's sweep-wide sequence number.
    fn send(
        &mut self,
        sockets: &Sockets,
        p: &Probe,
        pcap: Option<&mut PcapFile>,
    ) -> Result<(), SendError> {
        let sent_at = SystemTime::now();
        stamp_payload(&mut self.template, sent_at, &self.cookie);
        self.template[16..20].copy_from_slice(&p.target.to_be_bytes());
        self.template[20..24].copy_from_slice(&p.seq.to_be_bytes());
        if matches!(sockets, Sockets::Raw { .. }) {
            self.ip_ident = self.ip_ident.wrapping_add(1).max(1);
        }
        let probe = EchoProbe {
            source: self.source,
            dst: p.addr,
            ident: self.ident,
            seq: p.probe,
            data: &self.template,
            ip_ident: self.ip_ident,
            ttl: self.ttl,
            tos: self.tos,
            pmtu: self.pmtu,
            device: self.device.as_deref(),
        };
        // Path MTUs differ from target to target: nothing is cached between probes.
        let mut mtu = None;
        icmp_io::send_echo(sockets, &probe, &mut self.buf, &mut mtu, pcap, sent_at)
    }
}

/// Probes for the second sender thread, and what became of them.
#[derive(Debug, Default)]
struct Batch {
    probes: Vec<Probe>,
    /// (target, message) of the sends that failed.
    errors: Vec<(u32, String)>,
}

/// The second sender thread. On `lo` the kernel answers within `sendto`, in the sender's own
/// time, so that a fast sweep spends three quarters of its time there: two threads sending on
/// two cores take about half as long. Batches go out while the driver sends its own; the
/// driver alone reads the replies.
#[derive(Debug)]
struct Offload {
    to_helper: Option<mpsc::SyncSender<Batch>>,
    from_helper: mpsc::Receiver<Batch>,
    busy: bool,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Offload {
    fn start(sockets: Arc<Sockets>, mut sender: Sender) -> Option<Offload> {
        let (to_helper, batches) = mpsc::sync_channel::<Batch>(1);
        let (done, from_helper) = mpsc::sync_channel::<Batch>(1);
        // Another IP identification range than the driver's.
        sender.ip_ident = sender.ip_ident.wrapping_add(0x8000);
        let handle = std::thread::Builder::new()
            .name("rawkit-sender".into())
            .spawn(move || {
                for mut batch in batches {
                    for p in &batch.probes {
                        match sender.send(&sockets, p, None) {
                            Ok(()) | Err(SendError::Queued) => {}
                            Err(SendError::TooLong(t)) | Err(SendError::Other(t)) => {
                                batch.errors.push((p.target, t))
                            }
                        }
                    }
                    if done.send(batch).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Offload {
            to_helper: Some(to_helper),
            from_helper,
            busy: false,
            handle: Some(handle),
        })
    }

    /// The helper's last batch, when it is done with it (waits for it when `wait`).
    fn collect(&mut self, wait: bool) -> Option<Batch> {
        if !self.busy {
            return None;
        }
        let got = if wait {
            self.from_helper.recv().ok()
        } else {
            self.from_helper.try_recv().ok()
        };
        if got.is_some() {
            self.busy = false;
        }
        got
    }

    /// Hands `batch` over; gives it back when the helper is busy (or gone).
    fn give(&mut self, batch: Batch) -> Result<(), Batch> {
        if self.busy {
            return Err(batch);
        }
        let Some(tx) = &self.to_helper else {
            return Err(batch);
        };
        match tx.try_send(batch) {
            Ok(()) => {
                self.busy = true;
                Ok(())
            }
            Err(mpsc::TrySendError::Full(b)) | Err(mpsc::TrySendError::Disconnected(b)) => Err(b),
        }
    }

    /// Lets the helper finish and end.
    fn stop(&mut self) -> Option<Batch> {
        let last = self.collect(true);
        self.to_helper = None;
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        last
    }
}

/// A running sweep.
struct Sweeper {
    o: SweepOptions,
    session: SweepSession,
    sockets: Arc<Sockets>,
    matcher: Matcher,
    source: Ipv4Addr,
    sender: Sender,
    /// Probes the engine gave, not sent yet.
    pending: Vec<Probe>,
    offload: Option<Offload>,
    rxbuf: Vec<u8>,
    pcap: Option<PcapFile>,
    start: Instant,
    interrupt: Arc<AtomicBool>,
    status: Arc<AtomicBool>,
    report: Report,
    progress: Progress,
    /// Column width of the names in count mode's lines.
    width: usize,
    unknown_hosts: usize,
    /// Lines printed per probe (count mode): a blank line then separates the summaries.
    printed_probe_lines: bool,
    send_errors_seen: Vec<String>,
    /// The targets by address, for ICMP errors (built at the first one).
    locator: Option<Locator>,
}

impl Sweeper {
    fn start(o: SweepOptions, targets: TargetSet, unknown_hosts: usize) -> Result<Sweeper, i32> {
        let fail = |e: &dyn std::fmt::Display| {
            warn(e);
            EXIT_ERROR
        };
        if let Some(Interface::Source(a)) = o.interface {
            route::check_local_source(a).map_err(|e| fail(&format!("-I {a}: {e}")))?;
        }
        let r = random_u64();
        let wanted_ident = o.args.ident.unwrap_or((r >> 48) as u16);
        let setup = o.socket_setup();
        let (sockets, ident) = icmp_io::open_sockets(&setup, wanted_ident).map_err(|e| fail(&e))?;
        if let Err(e) = icmp_io::configure(&setup, &sockets, ident) {
            return Err(fail(&e));
        }
        let pcap = match &o.args.pcap {
            None => None,
            Some(p) => Some(PcapWriter::create(p, LinkType::RawIpv4).map_err(|e| fail(&e))?),
        };
        // Sockets open: nothing else needs a privilege. Drop them all.
        if (privilege::effective_caps().unwrap_or(0) != 0 || privilege::is_root())
            && let Err(e) = privilege::drop_all_capabilities()
            && o.args.verbose
        {
            warn(format!("could not drop capabilities: {e}"));
        }
        let interrupt = Arc::new(AtomicBool::new(false));
        let status = Arc::new(AtomicBool::new(false));
        let _ = signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&interrupt));
        let _ = signal_hook::flag::register(signal_hook::consts::SIGTERM, Arc::clone(&interrupt));
        let _ = signal_hook::flag::register(signal_hook::consts::SIGQUIT, Arc::clone(&status));

        let mode = sockets.mode();
        let source = o.source();
        let size = o.args.size;
        if o.args.verbose {
            warn(format!(
                "{} socket, identifier {ident}, {} targets",
                match mode {
                    icmp_io::SocketMode::Raw => "raw IP_HDRINCL",
                    icmp_io::SocketMode::Dgram => "ICMP datagram (unprivileged)",
                },
                targets.len()
            ));
        }
        let mut report = Report::new(o.args.json, o.args.quiet);
        report.event(
            "start",
            false,
            json!({
                "targets": targets.len(),
                "mode": if o.cfg.count.is_some() { "count" } else { "alive" },
                "count": o.cfg.count, "retries": o.cfg.retries, "rate": o.cfg.rate,
                "timeout_ms": o.cfg.timeout.as_secs_f64() * 1000.0,
                "bytes": size, "ident": ident,
                "socket": match mode { icmp_io::SocketMode::Raw => "raw", icmp_io::SocketMode::Dgram => "dgram" },
            }),
        );
        let width = if o.cfg.count.is_some() {
            targets.max_name_len()
        } else {
            0
        };
        let sender = Sender {
            template: payload_template(size, &o.pattern),
            buf: vec![0u8; 65_536],
            cookie: r.to_be_bytes(),
            ident,
            source,
            ttl: o.args.ttl,
            tos: o.args.tos,
            pmtu: o.pmtu,
            device: o.device().map(str::to_owned),
            ip_ident: (r >> 32) as u16 | 1,
        };
        let sockets = Arc::new(sockets);
        // Capabilities are gone: the helper thread starts without any.
        let fast = o.cfg.rate.is_none_or(|r| r > OFFLOAD_RATE);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let offload = if fast && cores > 1 && pcap.is_none() {
            Offload::start(Arc::clone(&sockets), sender.clone())
        } else {
            None
        };
        let progress = Progress::new(std::io::stderr().is_terminal());
        Ok(Sweeper {
            matcher: Matcher {
                target: None,
                source,
                ident,
                cookie: r.to_be_bytes(),
                size,
            },
            session: SweepSession::new(o.cfg.clone(), targets),
            sockets,
            source,
            sender,
            pending: Vec::with_capacity(HELPER_BATCH),
            offload,
            rxbuf: vec![0u8; 65_536],
            pcap,
            start: Instant::now(),
            interrupt,
            status,
            report,
            progress,
            width,
            unknown_hosts,
            printed_probe_lines: false,
            send_errors_seen: Vec::new(),
            locator: None,
            o,
        })
    }

    fn now(&self) -> Duration {
        self.start.elapsed()
    }

    /// `-D`: iputils' `[seconds.micros] ` before each line.
    fn prefix(&self) -> String {
        if !self.o.args.timestamps {
            return String::new();
        }
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        format!("[{}.{:06}] ", t.as_secs(), t.subsec_micros())
    }

    /// How target `i` is printed.
    fn name(&self, i: u32) -> String {
        let t = self.session.targets();
        match t.label(i) {
            Some(l) => l.to_owned(),
            None => t.addr(i).map(|a| a.to_string()).unwrap_or_default(),
        }
    }

    fn addr(&self, i: u32) -> String {
        self.session
            .targets()
            .addr(i)
            .map(|a| a.to_string())
            .unwrap_or_default()
    }

    fn run(&mut self) -> i32 {
        let code = self.run_loop();
        if let Some(mut off) = self.offload.take()
            && let Some(b) = off.stop()
        {
            self.batch_errors(b);
        }
        code.unwrap_or_else(|| self.finish())
    }

    /// The sweep; `Some(code)` when it failed.
    fn run_loop(&mut self) -> Option<i32> {
        loop {
            if self.interrupt.load(Ordering::Relaxed) {
                self.session.interrupt();
            }
            if self.status.swap(false, Ordering::Relaxed) {
                self.progress.clear();
                let line =
                    report::total_line(&self.session.totals(), self.unknown_hosts, self.now());
                eprintln!("{line}");
            }
            if self.report.is_broken() {
                break;
            }
            let now = self.now();
            match self.session.next(now) {
                Next::Finish => break,
                Next::Send(p) => {
                    // Counted now; sent with its batch, within microseconds.
                    self.session.sent(now);
                    self.pending.push(p);
                    if self.pending.len() >= BATCH
                        && let Err(e) = self.send_pending(false)
                    {
                        return Some(self.fail(e));
                    }
                }
                Next::WaitUntil(t) => {
                    if !self.pending.is_empty() {
                        // Send what is pending, read what came back, and ask the engine again:
                        // those replies may have ended the sweep, or moved the time to wait.
                        if let Err(e) = self.send_pending(true) {
                            return Some(self.fail(e));
                        }
                        self.events();
                        continue;
                    }
                    if let Some(b) = self.offload.as_mut().and_then(|o| o.collect(false)) {
                        self.batch_errors(b);
                    }
                    self.events();
                    self.output();
                    self.tick(now);
                    let mut wait = t.saturating_sub(self.now()).min(Duration::from_secs(1));
                    if self.progress.due(now + wait) {
                        wait = wait.min(Duration::from_millis(200));
                    }
                    if self.offload.as_ref().is_some_and(|o| o.busy) {
                        // The helper's batch comes back through a channel, not the socket.
                        wait = wait.min(Duration::from_millis(1));
                    }
                    let mut ready = [false];
                    match poll::poll_readable(&[self.sockets.rx_fd()], Some(wait), &mut ready) {
                        Ok(r) if r.ready_count() > 0 => {
                            if let Err(e) = self.receive_ready() {
                                return Some(self.fail(e));
                            }
                        }
                        // Interrupted or timed out: back to the loop and its signal flags.
                        Ok(_) => {}
                        Err(e) => return Some(self.fail(e)),
                    }
                }
            }
            self.events();
        }
        if let Err(e) = self.send_pending(true) {
            return Some(self.fail(e));
        }
        self.events();
        None
    }

    /// Sends the pending probes: handed to the helper thread when it is idle and the batch is
    /// big, else sent here; then reads the replies. Unless `now` (a wait or the end comes),
    /// an idle helper's batch may keep growing instead.
    fn send_pending(&mut self, now: bool) -> Result<(), NetError> {
        if let Some(b) = self.offload.as_mut().and_then(|o| o.collect(false)) {
            self.batch_errors(b);
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        if let Some(off) = self.offload.as_mut()
            && !off.busy
        {
            let big_enough = if now { OFFLOAD_MIN } else { HELPER_BATCH };
            if self.pending.len() < big_enough {
                if !now {
                    return Ok(());
                }
            } else {
                let batch = Batch {
                    probes: std::mem::replace(&mut self.pending, Vec::with_capacity(HELPER_BATCH)),
                    errors: Vec::new(),
                };
                match off.give(batch) {
                    Ok(()) => return self.receive_ready(),
                    Err(b) => self.pending = b.probes,
                }
            }
        }
        let mut probes = std::mem::take(&mut self.pending);
        for p in &probes {
            let r = self.sender.send(&self.sockets, p, self.pcap.as_mut());
            match r {
                Ok(()) | Err(SendError::Queued) => {}
                Err(SendError::TooLong(text)) | Err(SendError::Other(text)) => {
                    self.send_error(Some(p.target), &text)
                }
            }
        }
        probes.clear();
        self.pending = probes;
        self.receive_ready()?;
        self.tick(self.now());
        Ok(())
    }

    /// Reports the failed sends of a batch the helper sent.
    fn batch_errors(&mut self, b: Batch) {
        for (target, text) in b.errors {
            self.send_error(Some(target), &text);
        }
    }

    fn fail(&mut self, e: NetError) -> i32 {
        self.progress.clear();
        self.report.flush();
        warn(e);
        EXIT_ERROR
    }

    /// Writes the buffered results (the progress line steps aside first).
    fn output(&mut self) {
        if self.report.has_pending() {
            self.progress.clear();
            self.report.flush();
        }
    }

    fn tick(&mut self, now: Duration) {
        if self.progress.due(now) {
            self.output();
            let (done, total) = self.session.progress();
            let sent = self.session.totals().sent;
            self.progress.draw(now, done, total, sent);
        }
    }

    /// Reports a failed send: each different message once (a sweep into a network without a
    /// route would otherwise print one line per target), and every one in JSON.
    fn send_error(&mut self, target: Option<u32>, text: &str) {
        if self.report.wants(true) {
            let fields = match target {
                Some(t) => json!({ "target": self.name(t), "addr": self.addr(t), "error": text }),
                None => json!({ "error": text }),
            };
            self.report.event("local_error", true, fields);
        }
        if self.o.args.quiet || self.send_errors_seen.iter().any(|s| s == text) {
            return;
        }
        self.send_errors_seen.push(text.to_owned());
        self.progress.clear();
        match target {
            Some(t) => warn(format!(
                "{}: {text} (further errors like this one are not shown)",
                self.name(t)
            )),
            None => warn(text),
        }
    }

    /// Reads and handles everything queued on the receive socket, without blocking.
    fn receive_ready(&mut self) -> Result<(), NetError> {
        for _ in 0..READ_BATCH {
            let got = icmp_io::receive_one(
                &self.sockets,
                &self.matcher,
                &mut self.rxbuf,
                self.pcap.as_mut(),
                self.source,
            )?;
            let Some((ev, rx_time)) = got else { break };
            if let Some(ev) = ev {
                self.handle(ev, rx_time);
            }
        }
        Ok(())
    }

    fn handle(&mut self, ev: Event, rx_time: SystemTime) {
        match ev {
            Event::Reply {
                seq,
                from,
                icmp_len,
                ttl,
                sent_ns,
                checksum_ok,
                data,
            } => {
                let d = &self.rxbuf[data];
                // A corrupted reply, or one too short to name its probe, is not counted.
                if !checksum_ok || d.len() < MIN_PAYLOAD {
                    return;
                }
                let target = u32::from_be_bytes([d[16], d[17], d[18], d[19]]);
                let seq32 = u32::from_be_bytes([d[20], d[21], d[22], d[23]]);
                let rtt_us = sent_ns.map_or(0, |s| unix_nanos(rx_time).saturating_sub(s) / 1000);
                let outcome = self.session.on_reply(from, target, seq, seq32, rtt_us);
                self.reply(target, seq, icmp_len, ttl, rtt_us, outcome);
            }
            Event::Error {
                seq,
                from,
                dst,
                icmp_type,
                code,
                ..
            }
            | Event::Notice {
                seq,
                from,
                dst,
                icmp_type,
                code,
                ..
            } => self.icmp_error(seq, from, dst, icmp_type, code),
            Event::LocalError { errno, info } => {
                let text = if errno == libc::EMSGSIZE {
                    format!("local error: message too long, mtu={info}")
                } else {
                    format!("local error: {}", std::io::Error::from_raw_os_error(errno))
                };
                self.send_error(None, &text);
            }
        }
    }

    fn reply(
        &mut self,
        target: u32,
        probe: u16,
        bytes: usize,
        ttl: Option<u8>,
        rtt_us: u64,
        outcome: ReplyOutcome,
    ) {
        let (lines, events) = (self.report.wants_lines(), self.report.wants(true));
        if !lines && !events {
            return;
        }
        let count_mode = self.o.cfg.count.is_some();
        let dup = match outcome {
            ReplyOutcome::Fresh { .. } if count_mode => false,
            ReplyOutcome::Duplicate if count_mode => true,
            ReplyOutcome::Fresh { first: true } => {
                let a = &self.o.args;
                if a.unreachable {
                    return;
                }
                let name = self.name(target);
                if lines {
                    let p = self.prefix();
                    if a.alive {
                        self.report.line(&p, &name);
                    } else {
                        self.report.line(&p, &format!("{name} is alive"));
                    }
                }
                if events {
                    let addr = self.addr(target);
                    self.report.event(
                        "alive",
                        true,
                        json!({ "target": name, "addr": addr, "probe": probe, "bytes": bytes,
                                "ttl": ttl, "rtt_ms": report::json_ms(rtt_us) }),
                    );
                }
                return;
            }
            // Counted in the totals; fping prints nothing for these either.
            _ => return,
        };
        let name = self.name(target);
        if lines && !dup {
            let Some(s) = self.session.stats(target) else {
                return;
            };
            let line = report::reply_line(&name, self.width, probe, bytes, rtt_us, &s);
            let p = self.prefix();
            self.report.line(&p, &line);
            self.printed_probe_lines = true;
        }
        if events {
            let addr = self.addr(target);
            self.report.event(
                "reply",
                true,
                json!({ "target": name, "addr": addr, "probe": probe, "bytes": bytes,
                        "ttl": ttl, "rtt_ms": report::json_ms(rtt_us), "dup": dup }),
            );
        }
    }

    /// An ICMP error about one of our probes: fping's warning on stderr, and an event.
    fn icmp_error(&mut self, probe: u16, from: Ipv4Addr, dst: Ipv4Addr, icmp_type: u8, code: u8) {
        let events = self.report.wants(true);
        if self.o.args.quiet && !events {
            return;
        }
        let Some(target) = self.find(dst) else {
            return;
        };
        let name = self.name(target);
        let words = report::icmp_error_words(icmp_type, code);
        if events {
            self.report.event(
                "icmp_error",
                true,
                json!({ "target": name, "addr": dst.to_string(), "probe": probe,
                        "from": from.to_string(), "type": icmp_type, "code": code, "text": words }),
            );
        }
        if !self.o.args.quiet {
            self.progress.clear();
            warn(format!("{words} from {from} for ICMP Echo sent to {name}"));
        }
    }

    /// The first target whose address is `addr`.
    fn find(&mut self, addr: Ipv4Addr) -> Option<u32> {
        let t = self.session.targets();
        self.locator.get_or_insert_with(|| t.locator()).find(addr)
    }

    /// Prints what the engine reported: count mode's timeouts, the alive check's give-ups.
    fn events(&mut self) {
        while let Some(e) = self.session.pop_event() {
            let (lines, events) = (self.report.wants_lines(), self.report.wants(true));
            if !lines && !events {
                continue;
            }
            match e {
                SweepEvent::Timeout { target, probe } => {
                    let name = self.name(target);
                    if lines && let Some(s) = self.session.stats(target) {
                        let line = report::timeout_line(&name, self.width, probe, &s);
                        let p = self.prefix();
                        self.report.line(&p, &line);
                        self.printed_probe_lines = true;
                    }
                    if events {
                        let addr = self.addr(target);
                        self.report.event(
                            "timeout",
                            true,
                            json!({ "target": name, "addr": addr, "probe": probe }),
                        );
                    }
                }
                SweepEvent::Unreachable { target } => {
                    let a = &self.o.args;
                    if a.alive {
                        continue;
                    }
                    let name = self.name(target);
                    if lines {
                        let p = self.prefix();
                        if a.unreachable {
                            self.report.line(&p, &name);
                        } else {
                            self.report.line(&p, &format!("{name} is unreachable"));
                        }
                    }
                    if events {
                        let addr = self.addr(target);
                        let probes = u32::from(self.o.cfg.retries) + 1;
                        self.report.event(
                            "unreachable",
                            true,
                            json!({ "target": name, "addr": addr, "probes": probes }),
                        );
                    }
                }
            }
        }
    }

    fn finish(&mut self) -> i32 {
        let elapsed = self.now();
        self.progress.clear();
        let a = &self.o.args;
        let (only_alive, only_unreachable) = (a.alive, a.unreachable);
        if self.o.cfg.count.is_some() && !self.report.is_broken() {
            if self.printed_probe_lines {
                self.report.line("", "");
            }
            for i in 0..self.session.targets().len() {
                let Some(s) = self.session.stats(i) else {
                    continue;
                };
                let alive = s.received > 0;
                if (only_alive && !alive) || (only_unreachable && alive) {
                    continue;
                }
                let name = self.name(i);
                self.report
                    .line("", &report::summary_line(&name, self.width, &s));
                let addr = self.addr(i);
                self.report.event(
                    "target_summary",
                    false,
                    json!({
                        "target": name, "addr": addr, "transmitted": s.resolved(),
                        "received": s.received, "duplicates": s.duplicates,
                        "loss_pct": s.loss_pct(), "alive": alive,
                        "rtt_ms": s.avg_us().map(|avg| json!({
                            "min": report::json_ms(u64::from(s.min_us)),
                            "avg": report::json_ms(avg),
                            "max": report::json_ms(u64::from(s.max_us)),
                        })),
                    }),
                );
                if self.report.is_broken() {
                    break;
                }
            }
        }
        let t = self.session.totals();
        let code = if self.unknown_hosts > 0 {
            EXIT_ERROR
        } else {
            self.session.exit_code()
        };
        // --alive and --unreachable print a bare list of names, for scripts.
        if !only_alive && !only_unreachable {
            let line = report::total_line(&t, self.unknown_hosts, elapsed);
            self.report.line("", &line);
        }
        let rtt = match (t.min_us, t.avg_us, t.max_us) {
            (Some(min), Some(avg), Some(max)) => Some(json!({
                "min": report::json_ms(min), "avg": report::json_ms(avg), "max": report::json_ms(max),
            })),
            _ => None,
        };
        self.report.event(
            "summary",
            false,
            json!({
                "targets": t.targets, "alive": t.alive, "unreachable": t.unreachable,
                "pending": t.pending, "unknown_hosts": self.unknown_hosts,
                "transmitted": t.sent, "received": t.received, "duplicates": t.duplicates,
                "late": t.late, "loss_pct": report::loss_pct(t.sent, t.received),
                "rtt_ms": rtt, "time_ms": elapsed.as_millis() as u64, "exit": code,
            }),
        );
        self.report.flush();
        if let Some(w) = self.pcap.as_mut()
            && let Err(e) = w.flush()
        {
            warn(e);
            return EXIT_ERROR;
        }
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_a_factor_from_1_to_5() {
        assert_eq!(parse_backoff("1.5"), Ok(1.5));
        assert_eq!(parse_backoff("1"), Ok(1.0));
        assert_eq!(parse_backoff("5"), Ok(5.0));
        assert!(
            parse_backoff("0.9")
                .unwrap_err()
                .contains("1 <= value <= 5")
        );
        assert!(parse_backoff("6").is_err());
        assert!(parse_backoff("x").is_err());
        assert!(parse_backoff("nan").is_err());
    }
}

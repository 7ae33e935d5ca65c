//! Tier 2: the traceroute engine against simulated networks on a virtual clock. No privileges,
//! no sockets, no sleeps: each scenario is a data file in `tests/scenarios/`, a network (hops,
//! their addresses and round-trip times, silent or rate-limited routers, unreachables, ECMP,
//! routing loops, MPLS labels, link MTUs) and runs of `rawkit traceroute` flags with the hop
//! lines they must print, exactly, and when (in virtual time) the trace must end.
//!
//! # Scenario format
//!
//! One directive per line; `#` starts a comment. The network comes first:
//!
//! ```text
//! hop 1 198.18.1.2 rtt=1ms              router at distance 1: time exceeded after 1 ms
//! hop 2 silent                          never answers
//! hop 3 198.18.3.2|198.18.30.2 rtt=3ms  ECMP: the probe's flow picks the address
//! hop 4 198.18.4.2 rtt=5ms,1ms,3ms      RTTs of its successive answers (out of order)
//! hop 5 198.18.5.2 limit=2/1s           ICMP rate limit: a burst of 2, then 1 per second
//! hop 6 198.18.6.2 reject=13            answers time exceeded, and unreachable (code 13)
//!                                       for probes it would forward
//! hop 7 198.18.7.2 mpls=24001/0/1/1     time exceeded with an RFC 4950 label stack (`+` joins
//!                                       entries)
//! dst 8 198.18.8.2 rtt=8ms              the destination (port unreachable, or echo reply)
//! loop 3 198.18.3.2,198.18.2.2          from distance 3 on, routers cycle through these
//! mtu 3 1280                            the link into distance 3 has MTU 1280: a larger DF
//!                                       probe gets "fragmentation needed" from hop 2
//!                                       (`mtu 1 N`: the sender's own interface, a local error)
//! ```
//!
//! then runs, each followed by what it must give (a directive after a run changes the network
//! for the runs below it):
//!
//! ```text
//! run -n -q 3          the flags of `rawkit traceroute` (the target is implied; `@` places it,
//!                      before a PACKET_LEN: `run -n -F @ 1400`)
//! | 1  198.18.1.2  1.000 ms  1.000 ms  1.000 ms     an expected hop line, after `|`
//! finish-at 4ms        the virtual time the trace ends (exactly)
//! sent 16              probes sent
//! late 3               replies that came after their probe expired
//! reached yes          whether the destination answered
//! ```

use clap::Parser;
use rawkit::cli::traceroute::{TracerouteArgs, engine_config};
use rawkit::packet::icmp::MplsEntry;
use rawkit::probe::trace::{
    Event, ExtObject, LocalError, Method, Next, ProbeEcho, ProbeSpec, RenderOptions, Reply,
    ReplyKind, TraceSession, render_hop,
};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Parser)]
struct Cmd {
    #[command(flatten)]
    args: TracerouteArgs,
}

#[derive(Debug, Clone, Default)]
struct Node {
    addrs: Vec<Ipv4Addr>,
    silent: bool,
    rtts: Vec<Duration>,
    limit: Option<(u32, Duration)>,
    reject: Option<u8>,
    mpls: Vec<MplsEntry>,
}

#[derive(Debug, Clone, Default)]
struct Network {
    hops: HashMap<u32, Node>,
    dst: Option<(u32, Node)>,
    looping: Option<(u32, Node)>,
    mtus: HashMap<u32, usize>,
}

#[derive(Debug, Clone, Default)]
struct Case {
    line: usize,
    net: Network,
    args: Vec<String>,
    expect: Vec<String>,
    finish_at: Option<Duration>,
    sent: Option<u64>,
    late: Option<u64>,
    reached: Option<bool>,
}

fn parse_duration(s: &str) -> Duration {
    let (num, unit) = s
        .find(|c: char| c.is_ascii_alphabetic())
        .map(|i| s.split_at(i))
        .unwrap_or_else(|| panic!("duration without unit: {s}"));
    let v: f64 = num.parse().unwrap_or_else(|_| panic!("bad duration {s}"));
    let secs = match unit {
        "s" => v,
        "ms" => v / 1e3,
        "us" => v / 1e6,
        _ => panic!("bad unit in {s}"),
    };
    Duration::from_secs_f64(secs)
}

fn parse_node(words: &[&str]) -> Node {
    let mut node = Node::default();
    for w in words {
        if *w == "silent" {
            node.silent = true;
        } else if let Some(v) = w.strip_prefix("rtt=") {
            node.rtts = v.split(',').map(parse_duration).collect();
        } else if let Some(v) = w.strip_prefix("limit=") {
            let (burst, every) = v.split_once('/').expect("limit=BURST/INTERVAL");
            node.limit = Some((burst.parse().expect("burst"), parse_duration(every)));
        } else if let Some(v) = w.strip_prefix("reject=") {
            node.reject = Some(v.parse().expect("reject code"));
        } else if let Some(v) = w.strip_prefix("mpls=") {
            node.mpls = v
                .split('+')
                .map(|e| {
                    let f: Vec<u32> = e.split('/').map(|x| x.parse().expect("mpls")).collect();
                    MplsEntry {
                        label: f[0],
                        tc: f[1] as u8,
                        bottom: f[2] == 1,
                        ttl: f[3] as u8,
                    }
                })
                .collect();
        } else {
            node.addrs = w
                .split(['|', ','])
                .map(|a| a.parse().unwrap_or_else(|_| panic!("bad address {a}")))
                .collect();
        }
    }
    if node.rtts.is_empty() {
        node.rtts = vec![Duration::from_millis(1)];
    }
    node
}

/// The runs of a scenario file, each with the network as the directives above it left it.
fn parse(path: &Path) -> Vec<Case> {
    let text = std::fs::read_to_string(path).expect("scenario file");
    let mut net = Network::default();
    let mut cases: Vec<Case> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        if let Some(expected) = raw.strip_prefix('|') {
            cases
                .last_mut()
                .unwrap_or_else(|| panic!("{}:{}: `|` before `run`", path.display(), i + 1))
                .expect
                .push(expected.to_string());
            continue;
        }
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let words: Vec<&str> = line.split_whitespace().collect();
        let num = |k: usize| -> u32 { words[k].parse().expect("number") };
        match words[0] {
            "hop" => {
                net.hops.insert(num(1), parse_node(&words[2..]));
            }
            "dst" => net.dst = Some((num(1), parse_node(&words[2..]))),
            "loop" => net.looping = Some((num(1), parse_node(&words[2..]))),
            "mtu" => {
                net.mtus.insert(num(1), num(2) as usize);
            }
            "run" => cases.push(Case {
                line: i + 1,
                net: net.clone(),
                args: words[1..].iter().map(|s| s.to_string()).collect(),
                ..Case::default()
            }),
            other => {
                let case = cases.last_mut().unwrap_or_else(|| {
                    panic!("{}:{}: `{other}` before `run`", path.display(), i + 1)
                });
                match other {
                    "finish-at" => case.finish_at = Some(parse_duration(words[1])),
                    "sent" => case.sent = Some(num(1).into()),
                    "late" => case.late = Some(num(1).into()),
                    "reached" => case.reached = Some(words[1] == "yes"),
                    _ => panic!("{}:{}: unknown directive {other}", path.display(), i + 1),
                }
            }
        }
    }
    cases
}

/// What the network does with a probe.
enum Outcome {
    Silence,
    Local(u32),
    Answer {
        after: Duration,
        from: Ipv4Addr,
        kind: ReplyKind,
        reply_ttl: u8,
        mpls: Vec<MplsEntry>,
    },
}

/// The simulated network's state: answers counted per node, rate-limit credit.
struct Sim {
    net: Network,
    answers: HashMap<u32, usize>,
    credit: HashMap<u32, (Duration, Duration)>,
}

impl Sim {
    fn node(&self, h: u32) -> Option<(Node, bool)> {
        if let Some((d, n)) = &self.net.dst
            && *d == h
        {
            return Some((n.clone(), true));
        }
        if let Some(n) = self.net.hops.get(&h) {
            return Some((n.clone(), false));
        }
        if let Some((from, n)) = &self.net.looping
            && h >= *from
        {
            let mut n = n.clone();
            let a = n.addrs[((h - from) as usize) % n.addrs.len()];
            n.addrs = vec![a];
            return Some((n, false));
        }
        None
    }

    /// Token bucket per node (the kernel's per-peer ICMP limit).
    fn allowed(&mut self, h: u32, node: &Node, now: Duration) -> bool {
        let Some((burst, every)) = node.limit else {
            return true;
        };
        let cap = every * burst;
        let (credit, last) = self.credit.get(&h).copied().unwrap_or((cap, now));
        let credit = (credit + (now - last)).min(cap);
        if credit >= every {
            self.credit.insert(h, (credit - every, now));
            true
        } else {
            self.credit.insert(h, (credit, now));
            false
        }
    }

    fn answer(
        &mut self,
        h: u32,
        node: &Node,
        now: Duration,
        flow_key: u32,
        kind: ReplyKind,
    ) -> Outcome {
        if node.silent || !self.allowed(h, node, now) {
            return Outcome::Silence;
        }
        let k = self.answers.entry(h).or_default();
        let after = node.rtts[*k % node.rtts.len()];
        *k += 1;
        let from = node.addrs[flow_key as usize % node.addrs.len()];
        Outcome::Answer {
            after,
            from,
            kind,
            reply_ttl: 65 - h as u8,
            mpls: node.mpls.clone(),
        }
    }

    fn outcome(&mut self, p: &ProbeSpec, method: Method, df: bool, now: Duration) -> Outcome {
        let key = match method {
            Method::Icmp => u32::from(p.fields.icmp_checksum.unwrap_or(p.fields.icmp_seq)),
            _ => u32::from(p.fields.dst_port),
        };
        if let Some(&m) = self.net.mtus.get(&1)
            && df
            && p.packet_len > m
        {
            return Outcome::Local(m as u32);
        }
        let ttl = u32::from(p.ttl);
        for h in 1..=255u32 {
            let Some((node, is_dst)) = self.node(h) else {
                return Outcome::Silence;
            };
            if is_dst {
                let kind = match method {
                    Method::Icmp => ReplyKind::EchoReply,
                    _ => ReplyKind::DstUnreachable { code: 3, mtu: 0 },
                };
                return self.answer(h, &node, now, key, kind);
            }
            if ttl == h {
                return self.answer(h, &node, now, key, ReplyKind::TimeExceeded { code: 0 });
            }
            if let Some(code) = node.reject {
                let kind = ReplyKind::DstUnreachable { code, mtu: 0 };
                return self.answer(h, &node, now, key, kind);
            }
            if let Some(&m) = self.net.mtus.get(&(h + 1))
                && df
                && p.packet_len > m
            {
                let kind = ReplyKind::DstUnreachable {
                    code: 4,
                    mtu: m as u16,
                };
                return self.answer(h, &node, now, key, kind);
            }
        }
        Outcome::Silence
    }
}

/// What a run gave.
struct Ran {
    lines: Vec<String>,
    finished: Duration,
    sent: u64,
    late: u64,
    reached: bool,
}

fn run_case(case: &Case) -> Ran {
    // `@` stands for the target (before a PACKET_LEN); without it the target comes last.
    const TARGET: &str = "198.18.255.1";
    let mut argv = vec!["traceroute".to_string()];
    argv.extend(case.args.iter().map(|a| {
        if a == "@" {
            TARGET.to_string()
        } else {
            a.clone()
        }
    }));
    if !case.args.iter().any(|a| a == "@") {
        argv.push(TARGET.into());
    }
    let args = Cmd::try_parse_from(&argv)
        .unwrap_or_else(|e| panic!("line {}: {e}", case.line))
        .args;
    let cfg = engine_config(&args).unwrap_or_else(|e| panic!("line {}: {e}", case.line));
    let method = cfg.flow.method;
    let paris = cfg.flow.paris;
    let df = args.dont_fragment || args.mtu;
    let render = RenderOptions {
        extensions: args.extensions,
        back: args.back,
    };
    let mut s = TraceSession::new(cfg);
    let mut sim = Sim {
        net: case.net.clone(),
        answers: HashMap::new(),
        credit: HashMap::new(),
    };
    let mut now = Duration::ZERO;
    // (arrival, order, probe fields, reply)
    let mut pending: Vec<(Duration, usize, ProbeSpec, Reply)> = Vec::new();
    let mut order = 0;
    let mut lines = Vec::new();
    let mut sent = 0;
    for _ in 0..1_000_000 {
        while let Some(e) = s.pop_event() {
            if let Event::Hop(h) = e {
                lines.push(render_hop(&h, render, &mut |a| a.to_string()));
            }
        }
        match s.next(now) {
            Next::Finish => {
                while let Some(e) = s.pop_event() {
                    if let Event::Hop(h) = e {
                        lines.push(render_hop(&h, render, &mut |a| a.to_string()));
                    }
                }
                return Ran {
                    lines,
                    finished: now,
                    sent,
                    late: s.summary().late,
                    reached: s.summary().reached,
                };
            }
            Next::Send(spec) => {
                s.sent(spec.index, now);
                sent += 1;
                match sim.outcome(&spec, method, df, now) {
                    Outcome::Silence => {}
                    Outcome::Local(mtu) => {
                        s.on_local_error(spec.index, now, LocalError::TooBig { mtu });
                    }
                    Outcome::Answer {
                        after,
                        from,
                        kind,
                        reply_ttl,
                        mpls,
                    } => {
                        let extensions = if mpls.is_empty() {
                            vec![]
                        } else {
                            vec![ExtObject::Mpls(mpls)]
                        };
                        let reply = Reply {
                            from,
                            at: now + after,
                            kind,
                            reply_ttl: Some(reply_ttl),
                            extensions,
                        };
                        pending.push((now + after, order, spec, reply));
                        order += 1;
                    }
                }
            }
            Next::WaitUntil(t) => {
                pending.sort_by_key(|p| (p.0, p.1));
                match pending.first() {
                    Some(p) if p.0 <= t => {
                        let (at, _, spec, reply) = pending.remove(0);
                        now = now.max(at);
                        // What the wire decoder would read back from the quote or the reply.
                        let f = spec.fields;
                        let echo = match (method, reply.kind) {
                            (Method::Icmp, _) => ProbeEcho {
                                icmp_seq: Some(f.icmp_seq),
                                ip_id: Some(f.ip_id),
                                ..ProbeEcho::default()
                            },
                            _ => ProbeEcho {
                                ip_id: Some(f.ip_id),
                                dst_port: Some(f.dst_port),
                                udp_checksum: f.udp_checksum.or(Some(0xbeef)),
                                icmp_seq: None,
                            },
                        };
                        let _ = paris;
                        if let Some(index) = s.probe_for(&echo) {
                            s.on_reply(index, reply);
                        }
                    }
                    _ => {
                        assert!(
                            t > now || !pending.is_empty(),
                            "line {}: stuck at {now:?}",
                            case.line
                        );
                        now = now.max(t);
                    }
                }
            }
        }
    }
    panic!("line {}: the trace never ended", case.line);
}

fn check_file(path: &Path) {
    let cases = parse(path);
    assert!(!cases.is_empty(), "{}: no `run`", path.display());
    let mut failures = Vec::new();
    for case in &cases {
        let ran = run_case(case);
        let here = format!(
            "{}:{} (run {})",
            path.display(),
            case.line,
            case.args.join(" ")
        );
        if ran.lines != case.expect {
            failures.push(format!(
                "{here}: lines differ\nexpected:\n{}\ngot:\n{}",
                case.expect.join("\n"),
                ran.lines.join("\n")
            ));
        }
        if let Some(t) = case.finish_at
            && ran.finished != t
        {
            failures.push(format!(
                "{here}: finished at {:?}, expected {t:?}",
                ran.finished
            ));
        }
        if let Some(n) = case.sent
            && ran.sent != n
        {
            failures.push(format!("{here}: {} probes sent, expected {n}", ran.sent));
        }
        if let Some(n) = case.late
            && ran.late != n
        {
            failures.push(format!("{here}: {} late replies, expected {n}", ran.late));
        }
        if let Some(r) = case.reached
            && ran.reached != r
        {
            failures.push(format!("{here}: reached = {}, expected {r}", ran.reached));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n\n"));
}

fn scenario_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scenarios")
}

macro_rules! scenarios {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                check_file(&scenario_dir().join(concat!(stringify!($name), ".txt")));
            }
        )*

        #[test]
        fn every_scenario_file_has_a_test() {
            let known = [$(concat!(stringify!($name), ".txt")),*];
            for entry in std::fs::read_dir(scenario_dir()).expect("tests/scenarios") {
                let name = entry.expect("entry").file_name().into_string().expect("utf-8");
                assert!(known.contains(&name.as_str()), "{name} is not in the scenarios! list");
            }
        }
    };
}

scenarios!(
    all_answer,
    silent_hop,
    rate_limited_hop,
    out_of_order,
    late_replies,
    admin_prohibited,
    host_unreachable,
    net_unreachable,
    ecmp,
    routing_loop,
    mpls_labels,
    path_mtu,
    first_and_max_ttl,
);

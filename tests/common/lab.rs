//! The tier-4 lab (DESIGN.md section 4): a chain of network namespaces
//! `src - r1 - ... - rN - dst` joined by veth pairs, for tests that need real routers.
//!
//! # Address scheme
//!
//! Hop 0 is `src`, hop `i` is router `ri` (1 <= i <= N), hop N+1 is `dst`. Link `k`
//! (1 <= k <= N+1) joins hop k-1 (its left end) and hop k (its right end); it is the subnet
//! `198.18.k.0/24`, the left end is `198.18.k.1`, the right end `198.18.k.2`, and both ends'
//! interfaces are named `lk<k>`. So with three routers:
//!
//! ```text
//!   src          r1                 r2                 r3                 dst
//!   lk1 ------- lk1  lk2 ------- lk2  lk3 ------- lk3  lk4 ------- lk4
//!  .1.1        .1.2  .2.1        .2.2  .3.1        .3.2  .4.1        .4.2
//! ```
//!
//! A node answers toward `src` from its left end: router `ri` from `198.18.i.2`
//! ([`Lab::router_addr`]), `dst` from `198.18.(N+1).2` ([`Lab::dst_addr`]); `src` is
//! `198.18.1.1`. `src` and `dst` have default routes toward each other; every router has a
//! default route toward `dst` and a route per link behind it toward `src`, with forwarding on.
//! `dst` never forwards, so a probe to an address outside the lab's links is dropped there
//! (`-t` still makes routers answer). Routers have `net.ipv4.icmp_ratelimit=0` unless the
//! lab was made with [`LabOptions::keep_icmp_ratelimit`]; `rp_filter` is 0 everywhere and IPv6
//! is off (no router solicitations or DAD noise in captures); `lo` is up everywhere.
//!
//! # Names and cleanup
//!
//! Namespaces are named `rk<pid>-<n>-<node>` (`n` counts the labs of this process), so tests
//! running in parallel, in this process or another, never collide, and no device is ever made
//! in the caller's own namespace (veth pairs are created with both ends inside their nodes).
//! [`Lab`]'s `Drop` deletes every namespace it made, even when the test panics. Before
//! creating, a lab deletes leftovers of its own exact prefix only (a previous process with the
//! same pid that was killed), never another test's.
//!
//! The lab installs nothing: it needs `ip` (iproute2), and `nft` (nftables) for
//! [`Lab::nft`]; `.ci/run` installs both. It never sends a packet itself.
#![allow(dead_code)]

use std::fmt;
use std::io;
use std::net::Ipv4Addr;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

/// Labs made by this process so far (part of the namespace names).
static LABS: AtomicUsize = AtomicUsize::new(0);

/// The most routers a lab can have: link numbers are the third octet of 198.18.k.0/24.
pub const MAX_ROUTERS: usize = 200;

/// A node of the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Node {
    /// Where probes start (hop 0).
    Src,
    /// Router `ri`, 1-based (hop i).
    Router(usize),
    /// The destination (hop N+1).
    Dst,
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Node::Src => f.write_str("src"),
            Node::Router(i) => write!(f, "r{i}"),
            Node::Dst => f.write_str("dst"),
        }
    }
}

/// How a lab is set up, beyond its size.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabOptions {
    /// Keep the kernel's default ICMP error rate limit (`net.ipv4.icmp_ratelimit`, 1000 ms
    /// per peer after a small burst) in the routers, as real routers do. By default the lab
    /// sets it to 0 so that every probe is answered.
    pub keep_icmp_ratelimit: bool,
}

/// A chain of namespaces `src - r1 - ... - rN - dst`; see the module documentation.
#[derive(Debug)]
pub struct Lab {
    label: String,
    prefix: String,
    routers: usize,
    /// Every namespace created so far, deleted on drop.
    made: Vec<String>,
}

impl Lab {
    /// A lab with `routers` routers and the default options. `name` (the test's name) labels
    /// failures. `None`, after a `SKIPPED` line, when not root or `ip` is missing; under
    /// `CI=true` that panics instead (see [`super::skip`]). Panics when setting up fails.
    pub fn new(name: &str, routers: usize) -> Option<Lab> {
        Lab::with_options(name, routers, LabOptions::default())
    }

    /// A lab with `routers` routers set up as `options` says; see [`Lab::new`].
    pub fn with_options(name: &str, routers: usize, options: LabOptions) -> Option<Lab> {
        assert!(
            (1..=MAX_ROUTERS).contains(&routers),
            "{name}: a lab has 1 to {MAX_ROUTERS} routers, not {routers}"
        );
        if !rawkit::net::privilege::is_root() {
            super::skip(
                name,
                "the lab needs root (network namespaces, veth, sysctls)",
            );
            return None;
        }
        super::require_tool("ip")?;
        let n = LABS.fetch_add(1, Ordering::Relaxed);
        let mut lab = Lab {
            label: name.to_owned(),
            prefix: format!("rk{}-{n}-", std::process::id()),
            routers,
            made: Vec::new(),
        };
        lab.sweep_own_leftovers();
        lab.build(options);
        Some(lab)
    }

    /// The number of routers.
    pub fn routers(&self) -> usize {
        self.routers
    }

    /// Every node, from `src` to `dst`.
    pub fn nodes(&self) -> Vec<Node> {
        (0..=self.routers + 1).map(|h| self.node_at(h)).collect()
    }

    fn node_at(&self, hop: usize) -> Node {
        match hop {
            0 => Node::Src,
            h if h <= self.routers => Node::Router(h),
            _ => Node::Dst,
        }
    }

    /// The hop number of `node`: 0 for `src`, i for `ri`, N+1 for `dst`.
    pub fn hop(&self, node: Node) -> usize {
        match node {
            Node::Src => 0,
            Node::Router(i) => {
                assert!(
                    (1..=self.routers).contains(&i),
                    "{}: no router r{i} in a lab of {}",
                    self.label,
                    self.routers
                );
                i
            }
            Node::Dst => self.routers + 1,
        }
    }

    /// The number of links (routers + 1).
    pub fn links(&self) -> usize {
        self.routers + 1
    }

    fn check_link(&self, link: usize) {
        assert!(
            (1..=self.links()).contains(&link),
            "{}: no link {link} in a lab of {} links",
            self.label,
            self.links()
        );
    }

    /// The two addresses of link `link`: its left end (toward `src`), its right end.
    pub fn link_addrs(&self, link: usize) -> (Ipv4Addr, Ipv4Addr) {
        self.check_link(link);
        let k = link as u8;
        (Ipv4Addr::new(198, 18, k, 1), Ipv4Addr::new(198, 18, k, 2))
    }

    /// The interface name of link `link` (the same at both ends).
    pub fn iface(&self, link: usize) -> String {
        self.check_link(link);
        format!("lk{link}")
    }

    /// The address `node` answers from toward `src` (for `src`, its only address).
    pub fn addr_of(&self, node: Node) -> Ipv4Addr {
        match self.hop(node) {
            0 => self.link_addrs(1).0,
            h => self.link_addrs(h).1,
        }
    }

    /// The address router `ri` sends its ICMP errors from toward `src`: `198.18.i.2`.
    pub fn router_addr(&self, i: usize) -> Ipv4Addr {
        self.addr_of(Node::Router(i))
    }

    /// The address of `src`: `198.18.1.1`.
    pub fn src_addr(&self) -> Ipv4Addr {
        self.addr_of(Node::Src)
    }

    /// The address of `dst`: `198.18.(N+1).2`.
    pub fn dst_addr(&self) -> Ipv4Addr {
        self.addr_of(Node::Dst)
    }

    /// The network namespace name of `node`.
    pub fn netns(&self, node: Node) -> String {
        self.hop(node);
        format!("{}{node}", self.prefix)
    }

    /// A command that runs `program` inside `node` (`ip netns exec NS program`); add its
    /// arguments, then run it (bound the time: see [`output_within`]).
    pub fn command(&self, node: Node, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec"])
            .arg(self.netns(node))
            .arg(program);
        cmd
    }

    /// Runs `cmd` (its program, arguments, environment and directory) inside `node`, waiting at
    /// most `limit`; see [`output_within`].
    pub fn exec(&self, node: Node, cmd: &Command, limit: Duration) -> io::Result<Bounded> {
        let mut inner = self.command(node, cmd.get_program());
        inner.args(cmd.get_args());
        for (key, value) in cmd.get_envs() {
            match value {
                Some(v) => inner.env(key, v),
                None => inner.env_remove(key),
            };
        }
        if let Some(dir) = cmd.get_current_dir() {
            inner.current_dir(dir);
        }
        output_within(inner, limit)
    }

    /// Runs `ip -n NS ARGS...` and panics, with its stderr, when it fails.
    pub fn ip(&self, node: Node, args: &[&str]) {
        let mut cmd = Command::new("ip");
        cmd.arg("-n").arg(self.netns(node)).args(args);
        self.check(
            &format!("ip -n {} {}", self.netns(node), args.join(" ")),
            cmd,
            None,
        );
    }

    /// Runs `ip -n NS -batch -` with `lines` on stdin; panics when a line fails.
    fn ip_batch(&self, node: Node, lines: &[String]) {
        let mut cmd = Command::new("ip");
        cmd.arg("-n").arg(self.netns(node)).args(["-batch", "-"]);
        let script = lines.join("\n") + "\n";
        self.check(
            &format!("ip -n {} -batch:\n{script}", self.netns(node)),
            cmd,
            Some(&script),
        );
    }

    /// Applies the nftables `ruleset` in `node` (`nft -f -`); panics, with nft's message,
    /// when nft refuses it. Tests that call this should first check
    /// `common::require_tool("nft")`.
    pub fn nft(&self, node: Node, ruleset: &str) {
        let cmd = {
            let mut c = self.command(node, "nft");
            c.args(["-f", "-"]);
            c
        };
        self.check(
            &format!("nft -f - in {node} with\n{ruleset}"),
            cmd,
            Some(ruleset),
        );
    }

    /// The nftables ruleset of `node` with its counters (`nft list ruleset`), for messages.
    pub fn nft_list(&self, node: Node) -> String {
        let mut cmd = self.command(node, "nft");
        cmd.args(["list", "ruleset"]);
        String::from_utf8_lossy(&self.check("nft list ruleset", cmd, None).stdout).into_owned()
    }

    /// Sets the MTU of both ends of link `link`.
    pub fn set_mtu(&self, link: usize, mtu: u32) {
        let (iface, mtu) = (self.iface(link), mtu.to_string());
        for node in self.link_ends(link) {
            self.ip(node, &["link", "set", "dev", &iface, "mtu", &mtu]);
        }
    }

    /// Takes both ends of link `link` down.
    pub fn link_down(&self, link: usize) {
        let iface = self.iface(link);
        for node in self.link_ends(link) {
            self.ip(node, &["link", "set", "dev", &iface, "down"]);
        }
    }

    /// Brings both ends of link `link` up (their addresses stay; routes via the link must be
    /// added again after [`Lab::link_down`] removed them).
    pub fn link_up(&self, link: usize) {
        let iface = self.iface(link);
        for node in self.link_ends(link) {
            self.ip(node, &["link", "set", "dev", &iface, "up"]);
        }
    }

    /// The nodes at the left and right ends of link `link`.
    pub fn link_ends(&self, link: usize) -> [Node; 2] {
        self.check_link(link);
        [self.node_at(link - 1), self.node_at(link)]
    }

    /// Writes the sysctl `name` (e.g. `net.ipv4.icmp_ratelimit`) in `node`.
    pub fn sysctl(&self, node: Node, name: &str, value: &str) {
        let (name, value) = (name.to_owned(), value.to_owned());
        self.run_in(node, move || super::write_sysctl(&name, &value))
            .unwrap_or_else(|e| panic!("{}: sysctl in {node}: {e}", self.label));
    }

    /// Runs `f` on a helper thread moved (`setns`) into `node`'s network namespace and returns
    /// its result. Sockets `f` opens, and threads it spawns, stay in that namespace: open a
    /// [`super::Sniffer`] here to capture inside a node.
    pub fn run_in<T: Send>(&self, node: Node, f: impl FnOnce() -> T + Send) -> T {
        let name = self.netns(node);
        let (ns, path) = NETNS_DIRS
            .iter()
            .map(|dir| format!("{dir}/{name}"))
            .find_map(|path| Some((std::fs::File::open(&path).ok()?, path)))
            .unwrap_or_else(|| panic!("{}: no {name} in {NETNS_DIRS:?}", self.label));
        thread::scope(|scope| {
            scope
                .spawn(|| {
                    enter(&ns).unwrap_or_else(|e| panic!("setns({path}): {e}"));
                    f()
                })
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))
        })
    }

    /// Runs `cmd`, panicking with its output when it cannot start, fails or hangs.
    fn check(&self, what: &str, cmd: Command, stdin: Option<&str>) -> Output {
        let out = output_with_stdin(cmd, stdin, SETUP_LIMIT)
            .unwrap_or_else(|e| panic!("{}: {what}: {e}", self.label));
        if out.timed_out || !out.output.status.success() {
            panic!(
                "{}: {what}: {}\nstdout: {}\nstderr: {}",
                self.label,
                if out.timed_out {
                    "timed out".to_owned()
                } else {
                    out.output.status.to_string()
                },
                String::from_utf8_lossy(&out.output.stdout),
                String::from_utf8_lossy(&out.output.stderr),
            );
        }
        out.output
    }

    /// Deletes namespaces left with this lab's own prefix (a killed process whose pid we
    /// reuse); never anything else.
    fn sweep_own_leftovers(&self) {
        let mut stale: Vec<String> = NETNS_DIRS
            .iter()
            .filter_map(|dir| std::fs::read_dir(dir).ok())
            .flatten()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.starts_with(&self.prefix))
            .collect();
        stale.sort();
        stale.dedup();
        delete_netns(&stale);
    }

    fn build(&mut self, options: LabOptions) {
        let nodes = self.nodes();
        for &node in &nodes {
            let ns = self.netns(node);
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "add", &ns]);
            self.check(&format!("ip netns add {ns}"), cmd, None);
            self.made.push(ns);
        }
        // Sysctls first: `conf.default` values then apply to the veths made below.
        let this = &*self;
        thread::scope(|scope| {
            for &node in &nodes {
                scope.spawn(move || this.set_sysctls(node, options));
            }
        });
        // Each veth pair is made inside its left node, with its peer moved straight into the
        // right node: no device ever appears in the caller's namespace.
        for link in 1..=self.links() {
            let [left, right] = self.link_ends(link);
            let iface = self.iface(link);
            self.ip(
                left,
                &[
                    "link",
                    "add",
                    &iface,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &iface,
                    "netns",
                    &self.netns(right),
                ],
            );
        }
        for &node in &nodes {
            let lines = self.node_config(node);
            self.ip_batch(node, &lines);
        }
    }

    fn set_sysctls(&self, node: Node, options: LabOptions) {
        let router = matches!(node, Node::Router(_));
        let mut must = vec![
            ("net.ipv4.ip_forward", if router { "1" } else { "0" }),
            ("net.ipv4.conf.all.rp_filter", "0"),
            ("net.ipv4.conf.default.rp_filter", "0"),
        ];
        if router && !options.keep_icmp_ratelimit {
            must.push(("net.ipv4.icmp_ratelimit", "0"));
        }
        let label = &self.label;
        self.run_in(node, || {
            for (name, value) in must {
                super::write_sysctl(name, value)
                    .unwrap_or_else(|e| panic!("{label}: {node}: {name}={value}: {e}"));
            }
            // Absent when the kernel has no IPv6: nothing to silence then.
            for name in [
                "net.ipv6.conf.all.disable_ipv6",
                "net.ipv6.conf.default.disable_ipv6",
            ] {
                let _ = super::write_sysctl(name, "1");
            }
        });
    }

    /// The `ip -batch` lines that address `node`, bring its links up and add its routes.
    fn node_config(&self, node: Node) -> Vec<String> {
        let hop = self.hop(node);
        let mut lines = vec!["link set dev lo up".to_owned()];
        // Left link (toward src): we are its right end.
        if hop > 0 {
            let (_, me) = self.link_addrs(hop);
            lines.push(format!("addr add {me}/24 dev lk{hop}"));
            lines.push(format!("link set dev lk{hop} up"));
        }
        // Right link (toward dst): we are its left end.
        if hop <= self.routers {
            let link = hop + 1;
            let (me, _) = self.link_addrs(link);
            lines.push(format!("addr add {me}/24 dev lk{link}"));
            lines.push(format!("link set dev lk{link} up"));
        }
        match node {
            Node::Src => lines.push(format!("route add default via {}", self.link_addrs(1).1)),
            Node::Dst => lines.push(format!(
                "route add default via {}",
                self.link_addrs(self.links()).0
            )),
            Node::Router(_) => {
                let toward_dst = self.link_addrs(hop + 1).1;
                lines.push(format!("route add default via {toward_dst}"));
                let toward_src = self.link_addrs(hop).0;
                for behind in 1..hop {
                    lines.push(format!("route add 198.18.{behind}.0/24 via {toward_src}"));
                }
            }
        }
        lines
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        delete_netns(&self.made);
    }
}

/// Deletes the namespaces `names` in one `ip` run, ignoring errors.
fn delete_netns(names: &[String]) {
    if names.is_empty() {
        return;
    }
    let script: String = names.iter().map(|n| format!("netns del {n}\n")).collect();
    let mut cmd = Command::new("ip");
    cmd.args(["-force", "-batch", "-"]);
    let _ = output_with_stdin(cmd, Some(&script), SETUP_LIMIT);
}

/// Moves the calling thread into the network namespace `ns` (an open `/run/netns/NAME`).
fn enter(ns: &std::fs::File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `ns` is an open namespace file; setns moves only the calling thread.
    if unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Where `ip netns add` mounts named namespaces (iproute2's `NETNS_RUN_DIR`; `/var/run` is
/// usually a link to `/run`).
const NETNS_DIRS: [&str; 2] = ["/run/netns", "/var/run/netns"];

/// The longest one setup command may take.
const SETUP_LIMIT: Duration = Duration::from_secs(20);

pub use super::process::{Bounded, output_with_stdin, output_within};

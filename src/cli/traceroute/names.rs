//! Reverse name lookups for `rawkit traceroute`, off the probe loop.
//!
//! `getnameinfo(3)` may block for seconds on a slow or dead DNS server and cannot be cancelled,
//! so lookups run on a few worker threads, each address once, starting the moment the address
//! first answers a probe. Results come back on a channel, and each one writes a byte to a
//! socket pair whose reading end the probe loop polls beside its raw socket: the loop wakes up
//! for names without ever waiting for one. The driver prints a hop line once the names of its
//! addresses are known, or once they have had [`NAME_GRACE`] since the line was complete; a
//! name that does not come in time, or does not exist, prints as the bare address.
//!
//! Threads are started lazily, after the driver dropped its capabilities (which needs a single
//! thread), and never with `-n`. This module must never block the caller.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixDatagram;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a complete hop line waits for the names of its addresses.
pub const NAME_GRACE: Duration = Duration::from_millis(300);
/// Lookups that may block at once.
const WORKERS: usize = 4;

/// A reverse lookup: the name of an address, or `None`.
pub type Lookup = fn(Ipv4Addr) -> Option<String>;

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Pending,
    Known(Option<String>),
}

/// The names seen so far and the lookups in progress.
#[derive(Debug)]
pub struct Names {
    numeric: bool,
    lookup: Lookup,
    states: HashMap<Ipv4Addr, State>,
    jobs: Option<Sender<Ipv4Addr>>,
    results: Option<Receiver<(Ipv4Addr, Option<String>)>>,
    wake: Option<UnixDatagram>,
}

impl Names {
    /// Names looked up with `lookup`, or never when `numeric` (`-n`).
    pub fn new(numeric: bool, lookup: Lookup) -> Names {
        Names {
            numeric,
            lookup,
            states: HashMap::new(),
            jobs: None,
            results: None,
            wake: None,
        }
    }

    /// Starts looking up `addr`, unless numeric or already asked.
    pub fn request(&mut self, addr: Ipv4Addr) {
        if self.numeric || self.states.contains_key(&addr) {
            return;
        }
        if self.jobs.is_none() && !self.start_workers() {
            // No thread, no socket pair: names stay bare rather than block the loop.
            self.states.insert(addr, State::Known(None));
            return;
        }
        let sent = self.jobs.as_ref().is_some_and(|j| j.send(addr).is_ok());
        let state = if sent {
            State::Pending
        } else {
            State::Known(None)
        };
        self.states.insert(addr, state);
    }

    fn start_workers(&mut self) -> bool {
        let Ok((wake_rx, wake_tx)) = UnixDatagram::pair() else {
            return false;
        };
        if wake_rx.set_nonblocking(true).is_err() {
            return false;
        }
        let (jobs_tx, jobs_rx) = mpsc::channel::<Ipv4Addr>();
        let (res_tx, res_rx) = mpsc::channel();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let wake_tx = Arc::new(wake_tx);
        let mut started = 0;
        for i in 0..WORKERS {
            let jobs = Arc::clone(&jobs_rx);
            let results = res_tx.clone();
            let wake = Arc::clone(&wake_tx);
            let lookup = self.lookup;
            let spawned = std::thread::Builder::new()
                .name(format!("rawkit-names-{i}"))
                .stack_size(256 * 1024)
                .spawn(move || {
                    loop {
                        let job = {
                            let Ok(rx) = jobs.lock() else { return };
                            rx.recv()
                        };
                        let Ok(addr) = job else { return };
                        let name = lookup(addr);
                        if results.send((addr, name)).is_err() {
                            return;
                        }
                        let _ = wake.send(&[1]);
                    }
                });
            if spawned.is_ok() {
                started += 1;
            }
        }
        if started == 0 {
            return false;
        }
        self.jobs = Some(jobs_tx);
        self.results = Some(res_rx);
        self.wake = Some(wake_rx);
        true
    }

    /// The descriptor to poll for finished lookups (none before the first request).
    pub fn wake_fd(&self) -> Option<BorrowedFd<'_>> {
        self.wake.as_ref().map(|w| w.as_fd())
    }

    /// Takes the lookups that finished, without blocking.
    pub fn collect(&mut self) {
        if let Some(w) = self.wake.as_ref() {
            // Drain the wake-ups (one byte each); the channel holds the results.
            let mut buf = [0u8; 64];
            while matches!(w.recv(&mut buf), Ok(n) if n > 0) {}
        }
        if let Some(rx) = self.results.as_ref() {
            while let Ok((addr, name)) = rx.try_recv() {
                self.states.insert(addr, State::Known(name));
            }
        }
    }

    /// True when the name of `addr` is known (or will never be looked up).
    pub fn settled(&self, addr: Ipv4Addr) -> bool {
        self.numeric || !matches!(self.states.get(&addr), Some(State::Pending))
    }

    /// The name of `addr`, when known.
    pub fn name(&self, addr: Ipv4Addr) -> Option<&str> {
        match self.states.get(&addr) {
            Some(State::Known(Some(n))) if !self.numeric => Some(n.as_str()),
            _ => None,
        }
    }

    /// How `addr` prints: `name (addr)` when it has a name other than its own text, else the
    /// bare address (also while its lookup is still running).
    pub fn text(&self, addr: Ipv4Addr) -> String {
        let numeric = addr.to_string();
        match self.name(addr) {
            Some(n) if !n.is_empty() && n != numeric => format!("{n} ({numeric})"),
            _ => numeric,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn lab_names(a: Ipv4Addr) -> Option<String> {
        match a.octets() {
            [198, 18, k, 2] if k < 10 => Some(format!("r{k}.lab")),
            [198, 18, 99, 9] => {
                // A dead resolver: the answer never comes in useful time.
                std::thread::sleep(Duration::from_secs(3));
                None
            }
            _ => None,
        }
    }

    fn wait_settled(n: &mut Names, addrs: &[Ipv4Addr], limit: Duration) -> bool {
        let t = Instant::now();
        while t.elapsed() < limit {
            n.collect();
            if addrs.iter().all(|a| n.settled(*a)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        false
    }

    #[test]
    fn names_resolve_off_the_caller_and_unknown_ones_print_bare() {
        let mut n = Names::new(false, lab_names);
        let (r1, other) = (Ipv4Addr::new(198, 18, 1, 2), Ipv4Addr::new(198, 18, 50, 1));
        let t = Instant::now();
        n.request(r1);
        n.request(other);
        n.request(r1);
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "request must not block"
        );
        assert!(n.wake_fd().is_some());
        assert!(wait_settled(&mut n, &[r1, other], Duration::from_secs(5)));
        assert_eq!(n.text(r1), "r1.lab (198.18.1.2)");
        assert_eq!(n.text(other), "198.18.50.1");
    }

    #[test]
    fn a_dead_resolver_blocks_only_its_own_address() {
        let mut n = Names::new(false, lab_names);
        let (dead, r2) = (Ipv4Addr::new(198, 18, 99, 9), Ipv4Addr::new(198, 18, 2, 2));
        let t = Instant::now();
        n.request(dead);
        n.request(r2);
        assert!(wait_settled(&mut n, &[r2], Duration::from_secs(2)));
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(!n.settled(dead));
        assert_eq!(n.text(dead), "198.18.99.9", "pending names print bare");
        assert_eq!(n.text(r2), "r2.lab (198.18.2.2)");
    }

    #[test]
    fn numeric_never_looks_up() {
        let mut n = Names::new(true, |_| panic!("no lookups with -n"));
        let a = Ipv4Addr::new(198, 18, 1, 2);
        n.request(a);
        assert!(n.settled(a));
        assert!(n.wake_fd().is_none());
        assert_eq!(n.text(a), "198.18.1.2");
    }
}

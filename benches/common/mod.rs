//! What the process-level benchmarks share: a private network namespace to flood in, and a
//! child run measured by wall time and peak RSS (`wait4`'s rusage).
#![allow(dead_code)]

use std::process::{Command, Stdio};
use std::time::Instant;

/// Moves this (still single-threaded) process into a new network namespace holding only `lo`,
/// brought up: what it sends and the commands it spawns cannot leave the machine.
pub fn enter_private_netns() -> Result<(), String> {
    // SAFETY: no pointers; moves the calling thread (the only one) into a new namespace, which
    // the commands it spawns inherit.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        return Err(format!(
            "unshare(CLONE_NEWNET): {}",
            std::io::Error::last_os_error()
        ));
    }
    let ok = Command::new("ip")
        .args(["link", "set", "lo", "up"])
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        Ok(())
    } else {
        Err("ip link set lo up failed".into())
    }
}

/// One measured run of a child.
pub struct Run {
    /// Wall time from spawn to exit.
    pub wall_s: f64,
    /// Peak resident set size in KiB.
    pub max_rss_kib: i64,
    /// What it wrote on stdout.
    pub stdout: String,
    /// Exit status (-1 when killed by a signal).
    pub status: i32,
}

/// Runs a command to completion (stdin closed, stderr discarded) and measures its wall time
/// and peak RSS.
pub fn measure(cmd: &mut Command) -> Option<Run> {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .stdin(Stdio::null())
        .spawn()
        .ok()?;
    let pid = child.id() as libc::pid_t;
    let mut out = child.stdout?;
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut out, &mut s);
        s
    });
    let mut status = 0;
    // SAFETY: `rusage` is plain data the kernel fills in.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: valid pointers to live locals; waits for our own child only.
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall_s = start.elapsed().as_secs_f64();
    if r != pid {
        return None;
    }
    Some(Run {
        wall_s,
        max_rss_kib: usage.ru_maxrss,
        stdout: reader.join().unwrap_or_default(),
        status: if libc::WIFEXITED(status) {
            libc::WEXITSTATUS(status)
        } else {
            -1
        },
    })
}

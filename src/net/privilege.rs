//! Capabilities: what the process may do, and giving it all up once the sockets are open.
//!
//! rawkit needs `CAP_NET_RAW` only to *open* raw and packet sockets; an open socket keeps
//! working without it. So the command line opens what it needs, then calls
//! [`drop_all_capabilities`], and a bug in the code that parses untrusted packets can no longer
//! use the privileges.
//!
//! Linux capabilities belong to threads, not processes: `capset(2)` changes only the calling
//! thread, and a thread inherits the sets of the thread that spawned it. Hence
//! [`drop_all_capabilities`] refuses to run while other threads exist (call it before spawning
//! any); [`drop_thread_capabilities`] drops them for the calling thread alone.
//!
//! Note that a process whose user is root regains every capability when it executes another
//! program (unless the securebits say otherwise); dropping capabilities protects the running
//! program, not what it would exec.

use std::io;

use super::NetError;

/// `CAP_NET_ADMIN`: configure interfaces, set `SO_MARK`, promiscuous mode.
pub const CAP_NET_ADMIN: u32 = 12;
/// `CAP_NET_RAW`: open raw and packet sockets.
pub const CAP_NET_RAW: u32 = 13;
/// `CAP_SYS_ADMIN`: among much else, create network namespaces.
pub const CAP_SYS_ADMIN: u32 = 21;

/// `_LINUX_CAPABILITY_VERSION_3`: 64-bit sets as two 32-bit halves.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// `struct __user_cap_header_struct`.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// The capability sets of the calling thread, as bit masks (bit `n` is capability `n`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CapSets {
    /// What the thread may do now.
    pub effective: u64,
    /// What it may make effective.
    pub permitted: u64,
    /// What it may pass across `execve`.
    pub inheritable: u64,
}

impl CapSets {
    /// True when capability `cap` (e.g. [`CAP_NET_RAW`]) is effective.
    pub fn has_effective(&self, cap: u32) -> bool {
        cap < 64 && self.effective & (1 << cap) != 0
    }
}

fn join(halves: [CapData; 2], pick: fn(&CapData) -> u32) -> u64 {
    u64::from(pick(&halves[0])) | (u64::from(pick(&halves[1])) << 32)
}

/// The capability sets of the calling thread (`capget(2)`).
pub fn capabilities() -> Result<CapSets, NetError> {
    let mut header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: `header` is a valid v3 header and `data` has room for the two structs a v3
    // `capget` writes; both outlive the call.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(NetError::from_io("capget", io::Error::last_os_error()));
    }
    Ok(CapSets {
        effective: join(data, |d| d.effective),
        permitted: join(data, |d| d.permitted),
        inheritable: join(data, |d| d.inheritable),
    })
}

/// The effective capability set of the calling thread, as a bit mask.
pub fn effective_caps() -> Result<u64, NetError> {
    capabilities().map(|c| c.effective)
}

/// True when the calling thread has capability `cap` in its effective set. False when the
/// sets cannot be read.
pub fn has_capability(cap: u32) -> bool {
    capabilities().is_ok_and(|c| c.has_effective(cap))
}

/// True when raw and packet sockets can be opened (`CAP_NET_RAW` is effective).
pub fn has_cap_net_raw() -> bool {
    has_capability(CAP_NET_RAW)
}

/// True when `CAP_NET_ADMIN` is effective.
pub fn has_cap_net_admin() -> bool {
    has_capability(CAP_NET_ADMIN)
}

/// True when the effective user id is 0.
pub fn is_root() -> bool {
    // SAFETY: `geteuid` has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The number of threads of this process (`Threads:` in `/proc/self/status`).
pub fn thread_count() -> Result<usize, NetError> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| NetError::from_io("read /proc/self/status", e))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|n| n.trim().parse().ok())
        .ok_or(NetError::Io {
            op: "read /proc/self/status",
            source: io::Error::new(io::ErrorKind::InvalidData, "no Threads: line"),
        })
}

/// Clears the ambient set of the calling thread (`PR_CAP_AMBIENT_CLEAR_ALL`); kernels without
/// ambient capabilities (before 4.3) answer `EINVAL`, which is fine: there is nothing to clear.
fn clear_ambient() -> Result<(), NetError> {
    // SAFETY: `prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)` takes no pointers.
    let rc = unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
            0 as libc::c_ulong,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::EINVAL) {
        Ok(())
    } else {
        Err(NetError::from_io("prctl(PR_CAP_AMBIENT_CLEAR_ALL)", err))
    }
}

/// Clears the effective, permitted, inheritable and ambient capability sets of the calling
/// thread only. Other threads keep theirs; threads it spawns afterwards have none.
pub fn drop_thread_capabilities() -> Result<(), NetError> {
    clear_ambient()?;
    let header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: `header` is a valid v3 header for the calling thread (pid 0) and `data` holds the
    // two structs a v3 `capset` reads; both outlive the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    if rc != 0 {
        return Err(NetError::from_io("capset", io::Error::last_os_error()));
    }
    Ok(())
}

/// Clears every capability set (effective, permitted, inheritable, ambient) of the process, for
/// good: the permitted set is emptied, so nothing can be raised again.
///
/// Must be called while the process has a single thread, typically right after opening the
/// sockets and before starting any thread (signal handlers, progress bars...): `capset(2)`
/// changes only the calling thread, so with other threads running it returns
/// [`NetError::OtherThreadsRunning`] and changes nothing. Use [`drop_thread_capabilities`] to
/// drop them for one thread.
pub fn drop_all_capabilities() -> Result<(), NetError> {
    let threads = thread_count()?;
    if threads != 1 {
        return Err(NetError::OtherThreadsRunning { threads });
    }
    drop_thread_capabilities()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_can_be_read_and_agree_with_proc() {
        let caps = capabilities().expect("capget");
        let status = std::fs::read_to_string("/proc/thread-self/status").expect("status");
        let eff = status
            .lines()
            .find_map(|l| l.strip_prefix("CapEff:"))
            .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
            .expect("CapEff");
        assert_eq!(caps.effective, eff);
        assert_eq!(caps.has_effective(CAP_NET_RAW), eff & (1 << 13) != 0);
        assert!(!caps.has_effective(64));
    }

    #[test]
    fn dropping_for_the_whole_process_is_refused_while_threads_run() {
        // Keep a second thread alive during the call, whatever thread the harness runs on.
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let helper = std::thread::spawn(move || stopped.recv());
        let result = drop_all_capabilities();
        drop(stop);
        let _ = helper.join();
        let err = result.expect_err("several threads");
        assert!(matches!(err, NetError::OtherThreadsRunning { threads } if threads >= 2));
    }

    #[test]
    fn dropping_on_a_thread_empties_its_sets_only() {
        let before = capabilities().expect("capget");
        let after = std::thread::spawn(|| {
            drop_thread_capabilities().expect("capset");
            capabilities().expect("capget")
        })
        .join()
        .expect("thread");
        assert_eq!(after, CapSets::default());
        assert_eq!(capabilities().expect("capget"), before);
    }
}

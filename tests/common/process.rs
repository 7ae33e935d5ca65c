//! Running a child process with a time limit: stdout and stderr captured on threads (a chatty
//! child never blocks on a full pipe), the child killed by its own PID when the limit passes.
//! Shared by every test that runs the `rawkit` binary or a peer tool.

use std::io::{self, Write as _};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// What a bounded run gave.
#[derive(Debug)]
pub struct Bounded {
    /// The exit status and everything written, until it exited or was killed.
    pub output: Output,
    /// True when the limit passed and the child was killed (by its PID).
    pub timed_out: bool,
    /// How long it ran.
    pub elapsed: Duration,
}

impl Bounded {
    /// Standard output as text.
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    /// Standard error as text.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    /// The exit code (`None` when killed by a signal).
    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }
}

/// Runs `cmd` with its output captured, killing it (by its PID, with `Child::kill`) when it
/// has not exited within `limit`.
pub fn output_within(cmd: Command, limit: Duration) -> io::Result<Bounded> {
    output_with_stdin(cmd, None, limit)
}

/// [`output_within`] with `stdin` written to the child first (when given).
pub fn output_with_stdin(
    mut cmd: Command,
    stdin: Option<&str>,
    limit: Duration,
) -> io::Result<Bounded> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn()?;
    if let Some(text) = stdin {
        let mut pipe = child.stdin.take().expect("piped stdin");
        // A child that exits early closes the pipe: its status tells what went wrong.
        let _ = pipe.write_all(text.as_bytes());
    }
    // Read both pipes on threads so a chatty child never blocks on a full pipe.
    let out = reader(child.stdout.take());
    let err = reader(child.stderr.take());
    let (status, timed_out) = wait_bounded(&mut child, limit)?;
    Ok(Bounded {
        output: Output {
            status,
            stdout: out.join().unwrap_or_default(),
            stderr: err.join().unwrap_or_default(),
        },
        timed_out,
        elapsed: started.elapsed(),
    })
}

fn reader(pipe: Option<impl io::Read + Send + 'static>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut buf);
        }
        buf
    })
}

fn wait_bounded(child: &mut Child, limit: Duration) -> io::Result<(ExitStatus, bool)> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok((status, false));
        }
        if Instant::now() >= deadline {
            // `kill` signals this child's own PID only.
            let _ = child.kill();
            return Ok((child.wait()?, true));
        }
        thread::sleep(Duration::from_millis(2));
    }
}

/// Runs `cmd` to its end with stdin closed and the output captured; a child still running after
/// `limit` is killed by its PID and the test fails, naming `what`.
pub fn run_or_fail(cmd: Command, limit: Duration, what: &str) -> Output {
    let b = output_within(cmd, limit).unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    if b.timed_out {
        panic!("{what} was still running after {limit:?}: killed");
    }
    b.output
}

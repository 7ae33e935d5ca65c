//! Where the commands write: stdout for results (text, or JSON Lines with `--json`), stderr for
//! diagnostics. A closed stdout (`rawkit ping ... | head -3`) is not an error: the writer
//! remembers it, and the driver stops quietly.

use serde_json::{Map, Value};
use std::io::{self, Write};

/// Version of the JSON Lines schema, in every event as `"v"`.
pub const JSON_VERSION: u64 = 1;

/// The result stream of one command.
#[derive(Debug)]
pub struct Out {
    stdout: io::Stdout,
    pending: Vec<u8>,
    quiet: bool,
    broken: bool,
    json: bool,
    cmd: &'static str,
}

impl Out {
    /// Output for command `cmd` (`"ping"`), as JSON Lines when `json`.
    pub fn new(cmd: &'static str, json: bool) -> Out {
        Out {
            stdout: io::stdout(),
            pending: Vec::new(),
            quiet: false,
            broken: false,
            json,
            cmd,
        }
    }

    /// True with `--json`.
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// With `-q`: only the `start` and `summary` events are written.
    pub fn set_quiet(&mut self, quiet: bool) {
        self.quiet = quiet;
    }

    /// True when [`Out::event`] would write a per-packet event (JSON on and not quiet).
    pub fn wants_events(&self) -> bool {
        self.json && !self.quiet
    }

    /// True once stdout was closed by the reader.
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// Writes text as is and flushes (iputils flushes every line; flood dots need it too).
    /// Ignored with `--json`.
    pub fn text(&mut self, s: &str) {
        if self.json {
            return;
        }
        self.write_raw(s.as_bytes());
    }

    /// Appends text to be written at the next [`Out::flush`] (flood mode's dots and
    /// backspaces: one write per wait instead of one per packet). Ignored with `--json`.
    pub fn text_later(&mut self, s: &str) {
        if !self.json {
            self.pending.extend_from_slice(s.as_bytes());
        }
    }

    /// Writes what [`Out::text_later`] collected.
    pub fn flush(&mut self) {
        if !self.pending.is_empty() {
            let p = std::mem::take(&mut self.pending);
            self.write_raw(&p);
            self.pending = p;
            self.pending.clear();
        }
    }

    fn write_raw(&mut self, b: &[u8]) {
        if self.broken {
            return;
        }
        let mut lock = self.stdout.lock();
        let pending = std::mem::take(&mut self.pending);
        let r = lock
            .write_all(&pending)
            .and_then(|_| lock.write_all(b))
            .and_then(|_| lock.flush());
        self.pending = pending;
        self.pending.clear();
        if r.is_err() {
            self.broken = true;
        }
    }

    /// Writes one JSON event: `{"v":1,"cmd":..,"event":..,<fields>}`. Ignored without `--json`.
    pub fn event(&mut self, event: &str, fields: Value) {
        if !self.json || (self.quiet && !matches!(event, "start" | "summary")) {
            return;
        }
        let mut m = Map::new();
        m.insert("v".into(), Value::from(JSON_VERSION));
        m.insert("cmd".into(), Value::from(self.cmd));
        m.insert("event".into(), Value::from(event));
        if let Value::Object(f) = fields {
            m.extend(f);
        }
        let mut line = Value::Object(m).to_string();
        line.push('\n');
        self.write_raw(line.as_bytes());
    }
}

/// Prints one diagnostic line, `rawkit: <msg>`, on stderr.
pub fn warn(msg: impl std::fmt::Display) {
    let mut e = io::stderr().lock();
    let _ = writeln!(e, "rawkit: {msg}");
}

/// Milliseconds with microsecond precision, for JSON.
pub fn ms_f64(us: u64) -> f64 {
    us as f64 / 1000.0
}

//! The probing engines, sans I/O.
//!
//! An engine holds the state of a session (what was sent, what came back, what to do next) and
//! nothing else: the driver in `cli` owns the sockets and the clock, hands the engine `now` and
//! each reply, and does what the engine says. So the engines are tested with a virtual clock and
//! simulated replies, without privileges or sleeps. This module never imports `net`.

pub mod ping;
pub mod stats;
pub mod sweep;
pub mod trace;

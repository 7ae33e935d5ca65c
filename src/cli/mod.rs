//! The `rawkit` command line: argument parsing, validation into configurations, the drivers that
//! join the engines to the sockets, and text and JSON output.
//!
//! Exit status, as iputils: 0 success, 1 no answer (the command ran but the target did not
//! reply), 2 any error (bad input, missing privilege, I/O). Errors are one line on stderr,
//! `rawkit: <what>: <why>`, with the fix when there is one. A closed stdout (`| head`) ends the
//! program quietly.

pub mod args;
pub mod capture;
pub mod icmp_io;
pub mod output;
pub mod ping;
pub mod send;
pub mod sweep;
pub mod targets;
pub mod traceroute;
// Subcommand modules: one line each, above this comment.

use clap::Parser;

/// Exit status for errors.
pub const EXIT_ERROR: i32 = 2;

/// 64 random bits for identifiers, cookies, first IPv4 identifications and ports (not for
/// secrets): the process's hash keys, which std seeds from the OS, mixed with the clock and PID.
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.write_u32(std::process::id());
    h.finish()
}

/// rawkit: raw-socket ICMP/IPv4/UDP toolkit.
#[derive(Debug, Parser)]
#[command(
    name = "rawkit",
    version,
    about = "Raw-socket ICMP/IPv4/UDP toolkit on hand-built packets",
    long_about = "Raw-socket ICMP/IPv4/UDP toolkit. Every packet is built and parsed by rawkit's \
                  own IPv4, ICMP and UDP code.\n\nSee capabilities.md for the privileges each \
                  command needs."
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Send ICMP echo requests (iputils ping's flags and output).
    Ping(ping::PingArgs),
    /// Capture packets on an interface (or read a pcap file) and decode them, as tcpdump does.
    Capture(capture::CaptureArgs),
    /// Craft and send IPv4 datagrams (UDP, ICMP, raw), show the replies, replay pcap.
    Send(send::SendArgs),
    /// Print the route packets take to a host (the Linux traceroute's flags and output).
    Traceroute(traceroute::TracerouteArgs),
    // Subcommand variants: one each, above this comment.
}

/// Runs the command line; returns the exit status.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return report_clap_error(e),
    };
    match cli.command {
        Command::Ping(a) => ping::run(a),
        Command::Capture(a) => capture::run(a),
        Command::Send(a) => send::run(a),
        Command::Traceroute(a) => traceroute::run(a),
        // Subcommand dispatch: one arm each, above this comment.
    }
}

/// Prints a clap error as one line (help and version go to stdout in full, exit 0).
fn report_clap_error(e: clap::Error) -> i32 {
    use clap::error::ErrorKind;
    match e.kind() {
        ErrorKind::DisplayHelp
        | ErrorKind::DisplayVersion
        | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                EXIT_ERROR
            } else {
                0
            }
        }
        _ => {
            let text = e.render().to_string();
            let mut lines = text.lines().filter(|l| !l.trim().is_empty());
            let first = lines.next().unwrap_or("invalid arguments");
            let mut first = first.strip_prefix("error: ").unwrap_or(first).to_string();
            if e.kind() == ErrorKind::MissingRequiredArgument {
                // clap lists the missing arguments on the following indented lines.
                let missing: Vec<&str> = lines
                    .take_while(|l| l.starts_with("  "))
                    .map(str::trim)
                    .collect();
                first = format!("{} {}", first.trim_end_matches(':'), missing.join(" "));
            }
            let hint = match e.kind() {
                ErrorKind::MissingRequiredArgument => " (see --help)",
                ErrorKind::UnknownArgument | ErrorKind::InvalidSubcommand => " (see --help)",
                _ => "",
            };
            eprintln!("rawkit: {first}{hint}");
            EXIT_ERROR
        }
    }
}

//! Build an ICMP echo request with rawkit's builder and show it: hex dump and one-line decode.
//! Needs no privileges: nothing is sent.
//!
//! ```text
//! cargo run --example build_echo -- [DST] [SEQ] [PAYLOAD_LEN]
//! ```

use rawkit::packet::builder::Ipv4Builder;
use rawkit::packet::display;
use rawkit::packet::icmp::IcmpRepr;
use std::net::Ipv4Addr;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dst: Ipv4Addr = match args.first().map(|a| a.parse()) {
        None => Ipv4Addr::LOCALHOST,
        Some(Ok(a)) => a,
        Some(Err(_)) => {
            eprintln!(
                "build_echo: '{}' is not an IPv4 address: try 127.0.0.1",
                args[0]
            );
            return ExitCode::from(2);
        }
    };
    let seq_no: u16 = match args.get(1).map(|a| a.parse()) {
        None => 1,
        Some(Ok(s)) => s,
        Some(Err(_)) => {
            eprintln!("build_echo: sequence must be 0 to 65535");
            return ExitCode::from(2);
        }
    };
    let len: usize = match args.get(2).map(|a| a.parse::<usize>()) {
        None => 56,
        Some(Ok(n)) if n <= 65507 => n,
        Some(_) => {
            eprintln!("build_echo: payload length must be 0 to 65507 (65535 - 20 - 8)");
            return ExitCode::from(2);
        }
    };
    // iputils' default payload: bytes counting up from 8 after the timestamp; here simply 0x00..
    let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
    let echo = IcmpRepr::EchoRequest {
        ident: 0x1234,
        seq_no,
        data: &payload,
    };
    let mut buf = vec![0u8; 65535];
    let n = match Ipv4Builder::new(Ipv4Addr::LOCALHOST, dst)
        .ttl(64)
        .ident(0x4242)
        .dont_frag(true)
        .icmp(&echo)
        .emit(&mut buf)
    {
        Ok(n) => n,
        Err(e) => {
            eprintln!("build_echo: {e}");
            return ExitCode::from(2);
        }
    };
    print!("{}", display::hexdump(&buf[..n]));
    println!("{}", display::summary(&buf[..n]));
    ExitCode::SUCCESS
}

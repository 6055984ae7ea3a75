//! Starts one of the test servers for the benchmarks and keeps it up until stdin closes.
//!
//!   cargo run --release -p cairn-testsupport --example serve -- rest|s3|sftp
//!
//! Prints shell assignments first (`LOCATION_BASE=...`, and for S3 the AWS_* variables; for
//! SFTP `SFTP_COMMAND=...`), then `READY`.

use std::io::Read;

fn main() {
    let kind = std::env::args().nth(1).unwrap_or_default();
    // Each arm keeps its server alive in `_keep` until stdin closes.
    let _keep: Box<dyn std::any::Any> = match kind.as_str() {
        "rest" => {
            let s = cairn_testsupport::rclone::RcloneRest::start().expect("rclone");
            println!("LOCATION_BASE='rest:http://127.0.0.1:{}'", s.port);
            Box::new(s)
        }
        "s3" => {
            let g = cairn_testsupport::garage::Garage::start().expect("garage");
            println!("LOCATION_BASE='{}'", g.location("").trim_end_matches('/'));
            for (k, v) in g.env() {
                println!("export {k}='{v}'");
            }
            Box::new(g)
        }
        "sftp" => {
            let s = cairn_testsupport::sshd::Sshd::start().expect("sshd");
            println!("LOCATION_BASE='{}'", s.location("").trim_end_matches('/'));
            println!("SFTP_COMMAND='{}'", s.command());
            Box::new(s)
        }
        other => {
            eprintln!("usage: serve rest|s3|sftp (got {other:?})");
            std::process::exit(2);
        }
    };
    println!("READY");
    let mut sink = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut sink);
}

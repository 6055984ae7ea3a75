//! The CLI's printers of the core's reports: progress and messages as restic prints them.

use crate::global::GlobalOptions;
use cairn_core::repair::Report;
use std::io::Write;
use std::sync::atomic::Ordering;

/// Messages as restic prints them: progress on stdout (not with `--quiet`), warnings on
/// stderr; Ctrl-C asks the core to stop.
pub struct Printer {
    pub quiet: bool,
    pub verbose: u8,
}

impl Printer {
    pub fn new(g: &GlobalOptions) -> Printer {
        Printer {
            quiet: g.quiet,
            verbose: g.verbose,
        }
    }
}

impl Report for Printer {
    fn info(&self, msg: &str) {
        if !self.quiet {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{msg}");
        }
    }
    fn warn(&self, msg: &str) {
        eprintln!("{msg}");
    }
    fn verbose(&self, msg: &str) {
        if self.verbose > 0 && !self.quiet {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{msg}");
        }
    }
    fn cancelled(&self) -> bool {
        crate::signals::INTERRUPTED.load(Ordering::Relaxed)
    }
}

/// Where restic prints the warnings of snapshot selection: stderr, even with `--quiet`.
pub struct Warnings;

impl Report for Warnings {
    fn info(&self, msg: &str) {
        println!("{msg}");
    }
    fn warn(&self, msg: &str) {
        eprintln!("{msg}");
    }
}

//! `cairn`: the command-line program. Each command lives in its own module under
//! `commands/` and stays thin: parse flags, call cairn-core, print.

mod commands;
mod global;
mod output;
mod printer;
mod profile_run;
mod signals;

use clap::Parser;
use global::GlobalOptions;

/// Exit codes, as restic documents them.
pub mod exit {
    pub const OK: i32 = 0;
    pub const FATAL: i32 = 1;
    pub const INCOMPLETE: i32 = 3;
    pub const NO_REPOSITORY: i32 = 10;
    pub const LOCK_FAILED: i32 = 11;
    pub const WRONG_PASSWORD: i32 = 12;
    pub const INTERRUPTED: i32 = 130;
}

#[derive(Parser)]
#[command(
    name = "cairn",
    version,
    about = "Fast, safe, restic-compatible backups",
    long_about = "cairn backs up directories into restic repositories: deduplicated, compressed \
                  and encrypted. Commands, flags, environment variables and exit codes follow restic's."
)]
struct Cli {
    #[command(flatten)]
    global: GlobalOptions,
    /// Optional only for profiles: `cairn -P NAME` runs the configuration's `default-command`.
    #[command(subcommand)]
    command: Option<commands::Command>,
}

/// glibc gives each thread its own malloc arena; the chunk and pack buffers (up to 16 MiB)
/// that move between reader, compressor and uploader threads then fragment several arenas at
/// once. Two arenas cut peak RSS of a 1 GiB backup from ~95 to ~63 MiB at no cost in speed
/// (a fixed mmap threshold saved as much memory but cost a second of page faults).
#[cfg(target_env = "gnu")]
fn tune_allocator() {
    // SAFETY: mallopt only changes allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

#[cfg(not(target_env = "gnu"))]
fn tune_allocator() {}

/// The whole command line's definition (for completions and man pages).
pub fn cli_command() -> clap::Command {
    use clap::CommandFactory;
    Cli::command()
}

/// restic takes `--verbose=N` as well as repeated `-v`; clap counts only the latter, so a
/// level is spelled out as that many `-v` before parsing (only before a `--`).
fn expand_verbose_levels(
    args: impl Iterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    let mut out = Vec::new();
    let mut options_done = false;
    for arg in args {
        if !options_done {
            if arg == "--" {
                options_done = true;
            } else if let Some(level) = arg
                .to_str()
                .and_then(|s| s.strip_prefix("--verbose="))
                .and_then(|n| n.parse::<u8>().ok())
            {
                out.extend((0..level.min(4)).map(|_| std::ffi::OsString::from("-v")));
                continue;
            }
        }
        out.push(arg);
    }
    out
}

fn main() {
    tune_allocator();
    signals::install();
    cairn_backend::retry::stop_retrying_when(&signals::INTERRUPTED);
    let args = profile_run::expand_profile_dot_command(expand_verbose_levels(std::env::args_os()));
    let cli = match Cli::try_parse_from(args.clone()) {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind as K;
            if matches!(
                e.kind(),
                K::DisplayHelp | K::DisplayVersion | K::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                e.exit();
            }
            // A command line restic would refuse: exit 1 as restic does (clap's own is 2).
            let _ = e.print();
            std::process::exit(exit::FATAL);
        }
    };
    if profile_run::applies(&cli, &args) {
        let code = profile_run::run_from_command_line(&cli, args);
        global::release_locks();
        std::process::exit(code);
    }
    let Some(command) = cli.command else {
        use clap::CommandFactory;
        Cli::command()
            .error(
                clap::error::ErrorKind::MissingSubcommand,
                "'cairn' requires a subcommand but one was not provided",
            )
            .exit();
    };
    let result = commands::run(command, &cli.global);
    let result = match (result, cli.global.cleanup_cache) {
        (Ok(code), true) => commands::cache::cleanup_after(&cli.global).map(|_| code),
        (r, _) => r,
    };
    global::release_locks();
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            // Whatever failed after Ctrl-C (a retry cut short, say) failed because of it.
            let code = if signals::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
                exit::INTERRUPTED
            } else {
                classify(&e)
            };
            if cli.global.json {
                let msg = serde_json::json!({"message_type": "exit_error", "code": code, "message": format!("Fatal: {e:#}")});
                eprintln!("{msg}");
            } else {
                eprintln!("Fatal: {}", one_line(&e));
            }
            code
        }
    };
    std::process::exit(code);
}

fn one_line(e: &anyhow::Error) -> String {
    format!("{e:#}").replace('\n', " ")
}

fn classify(e: &anyhow::Error) -> i32 {
    use cairn_core::error::ErrorKind;
    match ErrorKind::of(e) {
        ErrorKind::NoRepository => exit::NO_REPOSITORY,
        ErrorKind::WrongPassword => exit::WRONG_PASSWORD,
        ErrorKind::Locked => exit::LOCK_FAILED,
        ErrorKind::Interrupted => exit::INTERRUPTED,
        ErrorKind::Other => exit::FATAL,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn verbose_levels_become_repeated_flags() {
        let args = ["cairn", "--verbose=2", "backup", "--", "--verbose=1"]
            .iter()
            .map(std::ffi::OsString::from);
        let got = super::expand_verbose_levels(args);
        assert_eq!(
            got,
            ["cairn", "-v", "-v", "backup", "--", "--verbose=1"]
                .iter()
                .map(std::ffi::OsString::from)
                .collect::<Vec<_>>()
        );
        // Not a level: left for clap to judge.
        let args = ["cairn", "--verbose=x"]
            .iter()
            .map(std::ffi::OsString::from);
        assert_eq!(super::expand_verbose_levels(args).len(), 2);
    }

    #[test]
    fn profile_dot_command_becomes_profile_flag() {
        let args = |v: &[&str]| v.iter().map(std::ffi::OsString::from).collect::<Vec<_>>();
        let got = crate::profile_run::expand_profile_dot_command(args(&[
            "cairn",
            "--config",
            "p.conf",
            "web.db.backup",
            "--tag",
            "x.check",
        ]));
        assert_eq!(
            got,
            args(&[
                "cairn",
                "--config",
                "p.conf",
                "--profile",
                "web.db",
                "backup",
                "--tag",
                "x.check"
            ])
        );
        // A command comes first: nothing after it is touched; other dotted words are not commands.
        let same = args(&["cairn", "-r", "/srv/repo.x", "snapshots", "a.check"]);
        assert_eq!(
            crate::profile_run::expand_profile_dot_command(same.clone()),
            same
        );
        let same = args(&["cairn", "backup", "notes.txt"]);
        assert_eq!(
            crate::profile_run::expand_profile_dot_command(same.clone()),
            same
        );
    }

    #[test]
    fn command_line_definition_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}

//! One module per command; each exposes `Args` and `run`.

pub mod backup;
pub mod cache;
pub mod cat;
pub mod check;
pub mod copy;
pub mod diff;
pub mod dump;
pub mod features;
pub mod find;
pub mod forget;
pub mod generate;
pub mod init;
pub mod key;
pub mod list;
pub mod ls;
pub mod migrate;
pub mod mount;
pub mod options;
pub mod profiles;
pub mod prune;
pub mod recover;
pub mod repair;
pub mod restore;
pub mod rewrite;
pub mod schedule;
pub mod serve;
pub mod show;
mod snapshot_ref;
pub mod snapshots;
pub mod stats;
pub mod tag;
pub mod unlock;
pub mod version;

use crate::global::GlobalOptions;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum Command {
    /// Initialize a new repository
    Init(init::Args),
    /// Create a new backup of files and/or directories
    Backup(Box<backup::Args>),
    /// List all snapshots
    Snapshots(snapshots::Args),
    /// List files in a snapshot
    Ls(ls::Args),
    /// Print internal objects to stdout
    Cat(cat::Args),
    /// Extract the data from a snapshot
    Restore(restore::Args),
    /// Manage keys (passwords)
    Key(key::Args),
    /// Print version information
    Version(version::Args),
    /// Show differences between two snapshots
    Diff(diff::Args),
    /// Print a backed-up file or directory (as tar) to stdout
    Dump(dump::Args),
    /// Scan the repository and show basic statistics
    Stats(stats::Args),
    /// Modify tags on snapshots
    Tag(tag::Args),
    /// Find a file, a directory or restic IDs
    Find(find::Args),
    /// Check the repository for errors
    Check(check::Args),
    /// Remove snapshots from the repository
    Forget(Box<forget::Args>),
    /// Mount the repository (read-only, via FUSE)
    Mount(mount::Args),
    /// Remove unneeded data from the repository
    Prune(prune::Args),
    /// Remove locks other processes created
    Unlock(unlock::Args),
    /// Operate on local cache directories
    Cache(cache::Args),
    /// List objects in the repository
    List(list::Args),
    /// Copy snapshots from one repository to another
    Copy(copy::Args),
    /// Apply migrations
    Migrate(migrate::Args),
    /// Recover data from the repository not referenced by snapshots
    Recover(recover::Args),
    /// Repair the repository
    Repair(repair::Args),
    /// Build a new index (restic 0.14's name for `repair index`)
    RebuildIndex(repair::IndexArgs),
    /// Rewrite snapshots to exclude unwanted files
    Rewrite(Box<rewrite::Args>),
    /// Print list of feature flags
    Features(features::Args),
    /// Print list of extended options
    Options(options::Args),
    /// Generate manual pages and auto-completion files (bash, fish, zsh, powershell)
    Generate(generate::Args),
    /// Serve repositories over restic's REST protocol (rest-server's flags)
    Serve(Box<serve::Args>),
    /// List the profiles and groups of the configuration file (--config)
    Profiles(profiles::Args),
    /// Print a profile (-P NAME) as cairn resolves it: the command lines it runs
    Show(show::Args),
    /// Install, show or remove the schedules of profiles (systemd timers or crontab)
    Schedule(schedule::Args),
    /// Run COMMAND@PROFILE under the profile's schedule lock (what the timers run)
    RunSchedule(schedule::RunArgs),
}

/// Runs a command and returns the process exit code.
pub fn run(cmd: Command, g: &GlobalOptions) -> anyhow::Result<i32> {
    match cmd {
        Command::Init(a) => init::run(a, g),
        Command::Backup(a) => backup::run(*a, g),
        Command::Snapshots(a) => snapshots::run(a, g),
        Command::Ls(a) => ls::run(a, g),
        Command::Cat(a) => cat::run(a, g),
        Command::Restore(a) => restore::run(a, g),
        Command::Key(a) => key::run(a, g),
        Command::Version(a) => version::run(a, g),
        Command::Diff(a) => diff::run(a, g),
        Command::Dump(a) => dump::run(a, g),
        Command::Stats(a) => stats::run(a, g),
        Command::Tag(a) => tag::run(a, g),
        Command::Find(a) => find::run(a, g),
        Command::Check(a) => check::run(a, g),
        Command::Forget(a) => forget::run(*a, g),
        Command::Mount(a) => mount::run(a, g),
        Command::Prune(a) => prune::run(a, g),
        Command::Unlock(a) => unlock::run(a, g),
        Command::Cache(a) => cache::run(a, g),
        Command::List(a) => list::run(a, g),
        Command::Copy(a) => copy::run(a, g),
        Command::Migrate(a) => migrate::run(a, g),
        Command::Recover(a) => recover::run(a, g),
        Command::Repair(a) => repair::run(a, g),
        Command::RebuildIndex(a) => repair::run_index(a, g),
        Command::Rewrite(a) => rewrite::run(*a, g),
        Command::Features(a) => features::run(a, g),
        Command::Options(a) => options::run(a, g),
        Command::Generate(a) => generate::run(a, g),
        Command::Serve(a) => serve::run(*a, g),
        Command::Profiles(a) => profiles::run(a, g),
        Command::Show(a) => show::run(a, g),
        Command::Schedule(a) => schedule::run(a, g),
        Command::RunSchedule(a) => schedule::run_schedule(a, g),
    }
}

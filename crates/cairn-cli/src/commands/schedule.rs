//! `schedule install|status|remove` and `run-schedule COMMAND@PROFILE`: a profile's (or a
//! version 2 group's) schedules as systemd timers or crontab entries, and the entry point those run (which takes
//! the profile's schedule lock, then runs the profile). The work is cairn-profile's
//! (`schedule`, `schedlock`); this only selects profiles and prints.

use crate::global::GlobalOptions;
use anyhow::{bail, Context, Result};
use cairn_profile::config::{Config, Group, Target};
use cairn_profile::resolve;
use cairn_profile::schedlock;
use cairn_profile::schedule::{self, Installer, ScheduleSettings};
use serde_json::Value;
use std::path::PathBuf;

/// Which profiles (global `--config` and `-P`, or `--all`), and where their schedules go.
#[derive(clap::Args, Debug)]
pub struct Selection {
    /// Every profile of the configuration file
    #[arg(long)]
    all: bool,
    /// systemd: the user's own units (~/.config/systemd/user, `systemctl --user`)
    #[arg(long)]
    user: bool,
    /// systemd: write the units into DIR and do not call systemctl
    #[arg(long, value_name = "DIR")]
    unit_dir: Option<PathBuf>,
}

#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Write and start the timers (or crontab entries) of the profiles' `schedule` keys
    Install(Selection),
    /// Show the installed schedules with their next and last runs
    Status(Selection),
    /// Stop and delete the profiles' timers (or crontab entries)
    Remove(Selection),
}

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

/// `run-schedule`: what the timers and crontab entries run.
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// COMMAND@PROFILE, e.g. backup@home
    target: String,
}

/// The configuration (global `--config`, or found where resticprofile looks).
fn load(g: &GlobalOptions) -> Result<Config> {
    crate::profile_run::load_config(g)
}

fn global(config: &Config) -> Value {
    Value::Object(config.global.clone())
}

/// What `-P` or `--all` selects: profiles (their sections' `schedule`) and version 2 groups
/// with `schedules` (jobs that run the whole group). `-P GROUP` without `schedules` selects
/// the group's profiles, as resticprofile before 0.29 did.
fn selected<'c>(
    config: &'c Config,
    g: &GlobalOptions,
    all: bool,
) -> Result<(Vec<String>, Vec<&'c Group>)> {
    let has_schedules = |grp: &Group| grp.raw.get("schedules").is_some_and(|v| !v.is_null());
    if all {
        // Checked here rather than by clap: `-P` is a global flag, which a subcommand's
        // `conflicts_with` cannot name.
        if g.profile.is_some() {
            bail!("--all and --profile (-P) cannot be used together");
        }
        let groups = config.groups.iter().filter(|grp| has_schedules(grp));
        return Ok((config.profiles.keys().cloned().collect(), groups.collect()));
    }
    let name = g
        .profile
        .as_deref()
        .unwrap_or(crate::profile_run::DEFAULT_PROFILE);
    Ok(match config.target(name)? {
        Target::Profile(p) => (vec![p.to_string()], Vec::new()),
        Target::Group(grp) if has_schedules(grp) => (Vec::new(), vec![grp]),
        Target::Group(grp) => (grp.profiles.clone(), Vec::new()),
    })
}

/// A profile as the runner sees it: inherited, templated, checked, paths resolved.
fn profile(config: &Config, name: &str) -> Result<Value> {
    let spec = crate::profile_run::flag_spec();
    Ok(Value::Object(resolve::profile(config, name, &spec)?.table))
}

pub fn run(a: Args, g: &GlobalOptions) -> Result<i32> {
    let (Action::Install(sel) | Action::Status(sel) | Action::Remove(sel)) = &a.action;
    let config = load(g)?;
    let global = global(&config);
    let (profiles, groups) = selected(&config, g, sel.all)?;
    let mut jobs = Vec::new();
    for n in &profiles {
        let p = profile(&config, n)?;
        jobs.extend(
            schedule::jobs(n, &p, &global).with_context(|| format!("{}", config.path.display()))?,
        );
    }
    for grp in &groups {
        jobs.extend(
            schedule::group_jobs(grp, &config.dir(), &global)
                .with_context(|| format!("{}", config.path.display()))?,
        );
    }
    let mut names = profiles;
    if sel.all {
        // Every group, so that `remove --all` also finds the units of a group whose
        // `schedules` are gone from the file.
        names.extend(config.groups.iter().map(|grp| grp.name.clone()));
    } else {
        names.extend(groups.iter().map(|grp| grp.name.clone()));
    }
    let mut installer = Installer::new(&config.path, &global)?;
    installer.user_units = sel.user;
    if let Some(d) = &sel.unit_dir {
        installer.unit_dir = Some(std::path::absolute(d)?);
        installer.scheduler = schedule::Scheduler::Systemd;
    }
    let lines = match &a.action {
        Action::Install(_) => {
            if jobs.is_empty() {
                bail!("no schedule in profile(s) {}", names.join(", "));
            }
            installer.install(&jobs)?
        }
        Action::Status(_) => installer.status(&names, &jobs)?,
        Action::Remove(_) => installer.remove(&names)?,
    };
    for l in lines {
        println!("{l}");
    }
    Ok(crate::exit::OK)
}

/// Takes the profile's schedule lock as its section says, then runs
/// `cairn --config FILE -P PROFILE COMMAND` (output to `schedule-log` if set) and exits
/// with its code. The child inherits the lock, so the lock lasts as long as the run even if
/// this process is killed first.
pub fn run_schedule(a: RunArgs, g: &GlobalOptions) -> Result<i32> {
    let (command, name) = schedule::parse_target(&a.target)?;
    let config = load(g)?;
    let global = global(&config);
    let section = match config.target(&name)? {
        // A group's job: its `schedules.COMMAND`; the child runs the whole group.
        Target::Group(grp) => schedule::group_section(grp, &command).unwrap_or(Value::Null),
        Target::Profile(_) => {
            let p = profile(&config, &name)?;
            p.get(&command)
                .or_else(|| (command == "forget").then(|| p.get("retention")).flatten())
                .cloned()
                .unwrap_or(Value::Null)
        }
    };
    let settings = ScheduleSettings::from_section(&section, &global)
        .with_context(|| format!("{}: profile {name}, {command}", config.path.display()))?;
    let lock = match schedlock::acquire(
        &schedlock::default_lock_dir(),
        &name,
        settings.lock_mode,
        settings.lock_wait,
    ) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("Fatal: {e:#}");
            return Ok(crate::exit::LOCK_FAILED);
        }
    };
    if let Some(l) = &lock {
        l.keep_across_exec()?;
    }
    let exe = std::env::current_exe().context("finding the cairn binary")?;
    let mut child = std::process::Command::new(exe);
    child
        .env(
            cairn_profile::profilelock::SCHEDULED_ENV,
            cairn_profile::profilelock::Scheduled::env_value(
                settings.lock_mode,
                settings.lock_wait,
            ),
        )
        .arg("--config")
        .arg(&config.path)
        .arg("-P")
        .arg(&name)
        .arg(&command);
    if let Some(log) = &settings.log {
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("schedule-log {log}"))?;
        child.stdout(f.try_clone()?).stderr(f);
    }
    let status = child.status().context("running the profile")?;
    drop(lock);
    Ok(status.code().unwrap_or(crate::exit::FATAL))
}

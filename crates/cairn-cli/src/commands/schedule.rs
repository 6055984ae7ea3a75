//! `schedule install|status|remove` and `run-schedule COMMAND@PROFILE`: a profile's
//! schedules as systemd timers or crontab entries, and the entry point those run (which takes
//! the profile's schedule lock, then runs the profile). The work is cairn-profile's
//! (`schedule`, `schedlock`); this only selects profiles and prints.

use crate::global::GlobalOptions;
use anyhow::{bail, Context, Result};
use cairn_profile::schedlock;
use cairn_profile::schedule::{self, Installer, ScheduleSettings};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Which profiles, and where their schedules go.
#[derive(clap::Args, Debug)]
pub struct Selection {
    /// Configuration file (resticprofile's format)
    #[arg(long, env = "CAIRN_CONFIG", value_name = "FILE")]
    config: PathBuf,
    /// Profile or group to act on (default: "default")
    #[arg(
        short = 'P',
        long = "profile",
        env = "CAIRN_PROFILE",
        value_name = "NAME"
    )]
    profile: Option<String>,
    /// Every profile of the configuration file
    #[arg(long, conflicts_with = "profile")]
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
    /// Configuration file (resticprofile's format)
    #[arg(long, env = "CAIRN_CONFIG", value_name = "FILE")]
    config: PathBuf,
}

/// The configuration as a JSON value, `{profiles…, "global": …, "groups": …}`.
///
/// A stand-in until the profile configuration reader (TOML, YAML, JSON, inheritance) is
/// merged: it reads JSON only and resolves no `inherit`. Replace the body with that reader's
/// call; everything else here takes the resolved profiles as `serde_json::Value`s.
fn read_config(path: &Path) -> Result<Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let is_json = path.extension().is_some_and(|e| e == "json");
    if !is_json {
        bail!(
            "{}: only JSON configuration files are read by this build",
            path.display()
        );
    }
    let v: Value = serde_json::from_str(&text).with_context(|| format!("{}", path.display()))?;
    if !v.is_object() {
        bail!("{}: not a table of profiles", path.display());
    }
    Ok(v)
}

/// The profiles of a configuration (version 1: every top-level table that is not a reserved
/// key; version 2: the `profiles` table).
fn profiles(config: &Value) -> Vec<(String, &Value)> {
    let reserved = [
        "version", "global", "groups", "includes", "profiles", "mixins",
    ];
    let table = match config.get("profiles") {
        Some(Value::Object(m)) => m,
        _ => match config {
            Value::Object(m) => m,
            _ => return Vec::new(),
        },
    };
    table
        .iter()
        .filter(|(k, v)| {
            v.is_object() && (config.get("profiles").is_some() || !reserved.contains(&k.as_str()))
        })
        .map(|(k, v)| (k.clone(), v))
        .collect()
}

/// The names selected by `-P` (a profile, or a group's profiles) or `--all`.
fn selected(config: &Value, sel: &Selection) -> Result<Vec<String>> {
    let all: Vec<String> = profiles(config).into_iter().map(|(n, _)| n).collect();
    if sel.all {
        return Ok(all);
    }
    let name = sel.profile.clone().unwrap_or_else(|| "default".into());
    if all.contains(&name) {
        return Ok(vec![name]);
    }
    // Groups: `name = [profiles]` (version 1) or `name = {profiles = [...]}` (version 2).
    if let Some(g) = config.get("groups").and_then(|g| g.get(&name)) {
        let list = if g.is_object() {
            g.get("profiles").cloned().unwrap_or(Value::Null)
        } else {
            g.clone()
        };
        let names = schedule::values::strings(&serde_json::json!({ "p": list }), "p")?;
        if let Some(missing) = names.iter().find(|n| !all.contains(n)) {
            bail!("group {name} names profile {missing}, which does not exist");
        }
        return Ok(names);
    }
    bail!("no profile or group named {name}");
}

fn global(config: &Value) -> Value {
    config.get("global").cloned().unwrap_or(Value::Null)
}

fn profile<'a>(config: &'a Value, name: &str) -> Option<&'a Value> {
    profiles(config)
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v)
}

pub fn run(a: Args, _g: &GlobalOptions) -> Result<i32> {
    let (Action::Install(sel) | Action::Status(sel) | Action::Remove(sel)) = &a.action;
    let config = read_config(&sel.config)?;
    let global = global(&config);
    let names = selected(&config, sel)?;
    let mut jobs = Vec::new();
    for n in &names {
        let p = profile(&config, n).context("profile vanished")?;
        jobs.extend(
            schedule::jobs(n, p, &global).with_context(|| format!("{}", sel.config.display()))?,
        );
    }
    let mut installer = Installer::new(&sel.config, &global)?;
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
pub fn run_schedule(a: RunArgs, _g: &GlobalOptions) -> Result<i32> {
    let (command, name) = schedule::parse_target(&a.target)?;
    let config = read_config(&a.config)?;
    let global = global(&config);
    let p = profile(&config, &name)
        .with_context(|| format!("{}: no profile named {name}", a.config.display()))?;
    let section = p
        .get(&command)
        .or_else(|| (command == "forget").then(|| p.get("retention")).flatten())
        .cloned()
        .unwrap_or(Value::Null);
    let settings = ScheduleSettings::from_section(&section, &global)
        .with_context(|| format!("{}: profile {name}, {command}", a.config.display()))?;
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
        .arg("--config")
        .arg(&a.config)
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

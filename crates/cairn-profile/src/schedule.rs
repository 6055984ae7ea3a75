//! Schedules: a profile's `schedule` keys turned into systemd timers (system or user units)
//! or crontab entries, and removed or reported again.
//!
//! How the runner plugs this in: `cairn schedule install|remove|status` gets the jobs of
//! each selected profile with [`jobs`]`(name, profile, global)` (the resolved profile, keys
//! as resticprofile writes them) and hands them to an [`Installer`]. The units and crontab
//! entries run `CAIRN --config CONFIG run-schedule COMMAND@PROFILE` (the absolute path of the
//! running cairn, the absolute configuration path); `run-schedule` reads the section's
//! [`ScheduleSettings`] (lock mode and wait, log), takes the [`crate::schedlock`] lock and then
//! runs `cairn --config CONFIG -P PROFILE COMMAND`, i.e. the runner, unchanged.
//!
//! Keys read (resticprofile's names): in a command section (`backup`, `check`, `forget`,
//! `prune`, `copy`; `retention` as `forget`) `schedule` (an expression, a list, or a table
//! with `at` and the keys below without their `schedule-` prefix), `schedule-permission`
//! (`auto`, `system`, `user`, `user_logged_on`), `schedule-priority` (`standard`,
//! `background`), `schedule-lock-mode`, `schedule-lock-wait`, `schedule-log`,
//! `schedule-after-network-online`; in the profile `systemd-drop-in-files`; in `global`
//! `scheduler`, `schedule-defaults`, `nice`, `ionice`, `ionice-class`, `ionice-level`.

pub mod calendar;
pub mod values;

pub use calendar::CalendarEvent;

use crate::config::Group;
use crate::schedlock::LockMode;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The sections that can be scheduled, as resticprofile allows.
pub const SCHEDULABLE: [&str; 5] = ["backup", "check", "forget", "prune", "copy"];

/// `schedule-permission`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    /// System units in /etc/systemd/system, run as root.
    System,
    /// System units with `User=` the scheduling user (needs root to install).
    User,
    /// The user's own units (~/.config/systemd/user), run while the user is logged on (or
    /// lingering).
    UserLoggedOn,
}

/// `schedule-priority`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    #[default]
    Standard,
    /// Idle CPU and I/O scheduling.
    Background,
}

/// The `schedule-*` settings of one command section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduleSettings {
    /// None: decided at install time (root → system, otherwise the user's own units).
    pub permission: Option<Permission>,
    pub priority: Priority,
    pub lock_mode: LockMode,
    pub lock_wait: Option<Duration>,
    /// A file that receives the scheduled run's output (syslog URLs are not supported).
    pub log: Option<String>,
    pub after_network_online: bool,
}

/// One scheduled command of one profile (or of a group: then `profile` is the group's name,
/// as in resticprofile, whose units name groups the same way).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleJob {
    pub profile: String,
    /// A version 2 group's `schedules`: the job runs the whole group.
    pub group: bool,
    pub command: String,
    pub events: Vec<CalendarEvent>,
    pub settings: ScheduleSettings,
    /// `systemd-drop-in-files` (relative paths are the configuration file's directory's).
    pub drop_in_files: Vec<PathBuf>,
}

/// Reads one setting from, in order of precedence, the section's `schedule-KEY`, the
/// section's `schedule` table's `KEY`, then `global.schedule-defaults.KEY`.
fn setting<'a>(section: &'a Value, global: &'a Value, key: &str) -> Option<(&'a Value, String)> {
    let long = format!("schedule-{key}");
    if section.get(&long).is_some_and(|v| !v.is_null()) {
        return Some((section, long));
    }
    if let Some(t) = section.get("schedule").filter(|v| v.is_object()) {
        if t.get(key).is_some_and(|v| !v.is_null()) {
            return Some((t, key.to_string()));
        }
    }
    let d = global.get("schedule-defaults")?;
    d.get(key)
        .filter(|v| !v.is_null())
        .map(|_| (d, key.to_string()))
}

impl ScheduleSettings {
    /// The settings of a command section (with `global.schedule-defaults`).
    pub fn from_section(section: &Value, global: &Value) -> Result<ScheduleSettings> {
        let text =
            |key: &str| setting(section, global, key).and_then(|(v, k)| values::string(v, &k));
        let permission = match text("permission").as_deref() {
            None | Some("auto") => None,
            Some("system") => Some(Permission::System),
            Some("user") => Some(Permission::User),
            Some("user_logged_on") => Some(Permission::UserLoggedOn),
            Some(other) => bail!(
                "schedule-permission '{other}' is not one of auto, system, user, user_logged_on"
            ),
        };
        let priority = match text("priority").as_deref() {
            None | Some("standard") => Priority::Standard,
            Some("background") => Priority::Background,
            Some(other) => bail!("schedule-priority '{other}' is not one of standard, background"),
        };
        let lock_mode = LockMode::parse(text("lock-mode").as_deref().unwrap_or(""))?;
        let lock_wait = match setting(section, global, "lock-wait") {
            Some((v, k)) => values::duration(v, &k)?,
            None => None,
        };
        let log = text("log");
        if let Some(l) = &log {
            if l.contains("://") || l.starts_with("syslog") {
                bail!("schedule-log '{l}': syslog targets are not supported, only a file");
            }
        }
        let after_network_online = match setting(section, global, "after-network-online") {
            Some((v, k)) => values::boolean(v, &k)?.unwrap_or(false),
            None => false,
        };
        Ok(ScheduleSettings {
            permission,
            priority,
            lock_mode,
            lock_wait,
            log,
            after_network_online,
        })
    }
}

/// The calendar expressions of a section's `schedule` (string, list, or table with `at`).
fn expressions(section: &Value) -> Result<Vec<String>> {
    match section.get("schedule") {
        Some(t @ Value::Object(_)) => values::strings(t, "at"),
        Some(_) => values::strings(section, "schedule"),
        None => Ok(Vec::new()),
    }
    .map(|v| v.into_iter().filter(|s| !s.trim().is_empty()).collect())
}

/// The scheduled jobs of one resolved profile; an error is one line naming the profile, the
/// section and the bad expression or key.
pub fn jobs(profile_name: &str, profile: &Value, global: &Value) -> Result<Vec<ScheduleJob>> {
    let drop_in_files: Vec<PathBuf> = values::strings(profile, "systemd-drop-in-files")
        .with_context(|| format!("profile {profile_name}"))?
        .into_iter()
        .map(PathBuf::from)
        .collect();
    let mut out: Vec<ScheduleJob> = Vec::new();
    for section_name in ["backup", "check", "forget", "prune", "copy", "retention"] {
        let Some(section) = profile.get(section_name) else {
            continue;
        };
        let exprs = expressions(section)
            .with_context(|| format!("profile {profile_name}, {section_name}"))?;
        if exprs.is_empty() {
            continue;
        }
        // resticprofile's deprecated `retention.schedule` is a scheduled forget.
        let command = if section_name == "retention" {
            "forget"
        } else {
            section_name
        };
        if out.iter().any(|j| j.command == command) {
            bail!("profile {profile_name}: both forget and retention have a schedule");
        }
        let mut events = Vec::new();
        for e in &exprs {
            events.push(CalendarEvent::parse(e).map_err(|err| {
                anyhow!("profile {profile_name}, {section_name}: schedule '{e}': {err:#}")
            })?);
        }
        let settings = ScheduleSettings::from_section(section, global)
            .with_context(|| format!("profile {profile_name}, {section_name}"))?;
        out.push(ScheduleJob {
            profile: profile_name.to_string(),
            group: false,
            command: command.to_string(),
            events,
            settings,
            drop_in_files: drop_in_files.clone(),
        });
    }
    out.sort_by_key(|j| SCHEDULABLE.iter().position(|c| *c == j.command));
    Ok(out)
}

/// A group's `schedules.COMMAND` as a command section would carry it (`schedule` = the
/// value: a table with `at` and the settings without their `schedule-` prefix, or
/// expressions), so that [`ScheduleSettings::from_section`] reads it. None: not scheduled.
pub fn group_section(group: &Group, command: &str) -> Option<Value> {
    let v = group.raw.get("schedules")?.get(command)?;
    Some(serde_json::json!({ "schedule": v }))
}

/// The jobs of a version 2 group's `schedules` (`[groups.NAME.schedules.backup] at = …`,
/// resticprofile ≥ 0.29): each runs the whole group, its profiles one after another.
/// `systemd-drop-in-files` there are relative to `config_dir`.
pub fn group_jobs(group: &Group, config_dir: &Path, global: &Value) -> Result<Vec<ScheduleJob>> {
    let name = &group.name;
    let Some(schedules) = group.raw.get("schedules").filter(|v| !v.is_null()) else {
        return Ok(Vec::new());
    };
    let Value::Object(m) = schedules else {
        bail!("group {name}: schedules must be a table of commands (backup, check, …)");
    };
    let mut out = Vec::new();
    for (command, v) in m {
        if !SCHEDULABLE.contains(&command.as_str()) {
            bail!(
                "group {name}: schedules: {command:?} cannot be scheduled (one of {})",
                SCHEDULABLE.join(", ")
            );
        }
        let section = serde_json::json!({ "schedule": v });
        let exprs =
            expressions(&section).with_context(|| format!("group {name}, schedules.{command}"))?;
        if exprs.is_empty() {
            continue;
        }
        let mut events = Vec::new();
        for e in &exprs {
            events.push(CalendarEvent::parse(e).map_err(|err| {
                anyhow!("group {name}, schedules.{command}: schedule '{e}': {err:#}")
            })?);
        }
        let settings = ScheduleSettings::from_section(&section, global)
            .with_context(|| format!("group {name}, schedules.{command}"))?;
        let drop_in_files = if v.is_object() {
            values::strings(v, "systemd-drop-in-files")
                .with_context(|| format!("group {name}, schedules.{command}"))?
                .into_iter()
                .map(|f| config_dir.join(f))
                .collect()
        } else {
            Vec::new()
        };
        out.push(ScheduleJob {
            profile: name.clone(),
            group: true,
            command: command.clone(),
            events,
            settings,
            drop_in_files,
        });
    }
    out.sort_by_key(|j| SCHEDULABLE.iter().position(|c| *c == j.command));
    Ok(out)
}

/// Splits `run-schedule`'s argument `COMMAND@PROFILE`.
pub fn parse_target(target: &str) -> Result<(String, String)> {
    match target.split_once('@') {
        Some((c, p)) if SCHEDULABLE.contains(&c) && !p.is_empty() => Ok((c.into(), p.into())),
        _ => bail!(
            "run-schedule expects COMMAND@PROFILE with COMMAND one of {}, not '{target}'",
            SCHEDULABLE.join(", ")
        ),
    }
}

/// Which scheduler writes the jobs (`global.scheduler`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scheduler {
    Systemd,
    /// The `crontab` tool (`crontab -l`, `crontab -`).
    Crond {
        crontab: PathBuf,
    },
    /// A crontab file written directly; `user` is the user column (None: no such column).
    CrontabFile {
        path: PathBuf,
        user: Option<String>,
    },
}

/// Whether systemd runs this machine (its own test: /run/systemd/system exists).
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").is_dir()
}

/// The scheduler `global.scheduler` names: auto (systemd when it runs, else crond),
/// `systemd`, `crond`, `crond:/path/to/crontab`, `crontab:USER:FILE` (`-`: no user column,
/// `*`: the current user) or `crontab:FILE`.
pub fn scheduler(global: &Value) -> Result<Scheduler> {
    let s = values::string(global, "scheduler").unwrap_or_default();
    Ok(match s.as_str() {
        "" | "auto" if systemd_running() => Scheduler::Systemd,
        "" | "auto" | "crond" => Scheduler::Crond {
            crontab: "crontab".into(),
        },
        "systemd" => Scheduler::Systemd,
        other => {
            if let Some(path) = other.strip_prefix("crond:") {
                Scheduler::Crond {
                    crontab: path.into(),
                }
            } else if let Some(rest) = other.strip_prefix("crontab:") {
                let (user, path) = match rest.split_once(':') {
                    Some(("-", p)) => (None, p),
                    Some(("*", p)) => (Some(current_user()?), p),
                    Some((u, p)) if !u.contains('/') => (Some(u.to_string()), p),
                    _ => (None, rest),
                };
                if path.is_empty() {
                    bail!("global.scheduler '{other}': no crontab file");
                }
                Scheduler::CrontabFile {
                    path: path.into(),
                    user,
                }
            } else {
                bail!("global.scheduler '{other}' is not supported (systemd, crond, crontab:…)")
            }
        }
    })
}

fn current_user() -> Result<String> {
    // SAFETY: getpwuid returns a pointer into static storage or null; read at once.
    unsafe {
        let pw = libc::getpwuid(libc::geteuid());
        if pw.is_null() {
            bail!("cannot find the current user's name");
        }
        Ok(std::ffi::CStr::from_ptr((*pw).pw_name)
            .to_string_lossy()
            .into_owned())
    }
}

fn home_of(user: &str) -> Option<String> {
    let name = std::ffi::CString::new(user).ok()?;
    // SAFETY: getpwnam returns a pointer into static storage or null; read at once.
    unsafe {
        let pw = libc::getpwnam(name.as_ptr());
        if pw.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr((*pw).pw_dir)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Installs, removes and reports jobs.
#[derive(Debug, Clone)]
pub struct Installer {
    /// The cairn binary the jobs run (absolute).
    pub binary: PathBuf,
    /// The configuration file (absolute); its directory is the jobs' working directory.
    pub config_file: PathBuf,
    pub scheduler: Scheduler,
    /// systemd: write the units here and call no systemctl (inspection, tests, images).
    pub unit_dir: Option<PathBuf>,
    /// systemd: the user's own units whatever `schedule-permission` says (`--user`).
    pub user_units: bool,
    /// global `nice`, `ionice-class`, `ionice-level` (when `ionice` is true).
    pub nice: Option<i64>,
    pub ionice: Option<(i64, i64)>,
}

/// The unit name's `PROFILE` part, escaped the way systemd-escape does for characters a unit
/// name cannot hold.
fn unit_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b":_.-".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// `cairn-COMMAND@profile-PROFILE` (resticprofile's pattern with cairn's prefix).
pub fn unit_base(profile: &str, command: &str) -> String {
    format!("cairn-{command}@profile-{}", unit_escape(profile))
}

/// One ExecStart= word: `%` and `$` escaped for systemd, quoted when needed.
fn systemd_word(s: &str) -> String {
    let s = s.replace('%', "%%").replace('$', "$$");
    if s.is_empty()
        || s.contains(|c: char| c.is_whitespace() || c == '"' || c == '\'' || c == '\\' || c == ';')
    {
        format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        s
    }
}

/// One sh word for a crontab line (`%` escaped for cron).
fn sh_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@".contains(&b));
    let w = if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    };
    w.replace('%', "\\%")
}

impl Installer {
    /// An installer for this configuration file, with the running binary and the global
    /// section's scheduler and priorities.
    pub fn new(config_file: &Path, global: &Value) -> Result<Installer> {
        let binary = std::env::current_exe().context("finding the cairn binary")?;
        let config_file = std::path::absolute(config_file)
            .with_context(|| format!("configuration {}", config_file.display()))?;
        let nice = values::string(global, "nice")
            .map(|n| n.parse::<i64>())
            .transpose()
            .map_err(|_| anyhow!("global.nice is not a number"))?;
        let ionice = if values::boolean(global, "ionice")?.unwrap_or(false) {
            let num = |k: &str, d: i64| -> Result<i64> {
                values::string(global, k)
                    .map(|v| {
                        v.parse::<i64>()
                            .map_err(|_| anyhow!("global.{k} is not a number"))
                    })
                    .unwrap_or(Ok(d))
            };
            Some((num("ionice-class", 2)?, num("ionice-level", 4)?))
        } else {
            None
        };
        Ok(Installer {
            binary,
            config_file,
            scheduler: scheduler(global)?,
            unit_dir: None,
            user_units: false,
            nice,
            ionice,
        })
    }

    fn work_dir(&self) -> PathBuf {
        self.config_file
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"))
    }

    /// The command a job runs, as words.
    pub fn command_line(&self, profile: &str, command: &str) -> Vec<String> {
        vec![
            self.binary.to_string_lossy().into_owned(),
            "run-schedule".into(),
            format!("{command}@{profile}"),
            "--config".into(),
            self.config_file.to_string_lossy().into_owned(),
        ]
    }

    fn effective_permission(&self, job: &ScheduleJob) -> Permission {
        if self.user_units {
            return Permission::UserLoggedOn;
        }
        match job.settings.permission {
            Some(p) => p,
            None if is_root() => Permission::System,
            None => Permission::UserLoggedOn,
        }
    }

    /// The directory of system or user units (or the `unit_dir` override).
    pub fn systemd_dir(&self, user: bool) -> Result<PathBuf> {
        if let Some(d) = &self.unit_dir {
            return Ok(d.clone());
        }
        if !user {
            return Ok(PathBuf::from("/etc/systemd/system"));
        }
        let base = match std::env::var_os("XDG_CONFIG_HOME").filter(|v| !v.is_empty()) {
            Some(d) => PathBuf::from(d),
            None => {
                PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".config")
            }
        };
        Ok(base.join("systemd").join("user"))
    }

    /// The `.service` and `.timer` texts of a job.
    pub fn systemd_units(&self, job: &ScheduleJob) -> Result<(String, String)> {
        let permission = self.effective_permission(job);
        let base = unit_base(&job.profile, &job.command);
        let kind = if job.group { "group" } else { "profile" };
        let mut service = format!(
            "[Unit]\nDescription=cairn {} of {kind} {} ({})\n",
            job.command,
            job.profile,
            self.config_file.display()
        );
        if job.settings.after_network_online {
            service.push_str("Wants=network-online.target\nAfter=network-online.target\n");
        }
        service.push_str("\n[Service]\nType=oneshot\n");
        service.push_str(&format!(
            "WorkingDirectory={}\n",
            systemd_word(&self.work_dir().to_string_lossy())
        ));
        let exec: Vec<String> = self
            .command_line(&job.profile, &job.command)
            .iter()
            .map(|w| systemd_word(w))
            .collect();
        service.push_str(&format!("ExecStart={}\n", exec.join(" ")));
        if let Some(n) = self.nice {
            service.push_str(&format!("Nice={n}\n"));
        }
        if job.settings.priority == Priority::Background {
            service.push_str("CPUSchedulingPolicy=idle\n");
        }
        match (self.ionice, job.settings.priority) {
            (Some((class, level)), _) => service.push_str(&format!(
                "IOSchedulingClass={class}\nIOSchedulingPriority={level}\n"
            )),
            (None, Priority::Background) => service.push_str("IOSchedulingClass=idle\n"),
            _ => {}
        }
        let home = if permission == Permission::User {
            let user = match std::env::var("SUDO_USER") {
                Ok(u) if is_root() && !u.is_empty() => u,
                _ => current_user()?,
            };
            service.push_str(&format!("User={}\n", systemd_word(&user)));
            home_of(&user)
        } else {
            std::env::var("HOME").ok()
        };
        if let Some(h) = home.filter(|h| !h.is_empty()) {
            service.push_str(&format!(
                "Environment={}\n",
                systemd_word(&format!("HOME={h}"))
            ));
        }
        let mut timer = format!(
            "[Unit]\nDescription=cairn {} timer of {kind} {}\n\n[Timer]\n",
            job.command, job.profile
        );
        for e in &job.events {
            timer.push_str(&format!("OnCalendar={}\n", e.expression.replace('%', "%%")));
        }
        timer.push_str(&format!(
            "Unit={base}.service\nPersistent=true\n\n[Install]\nWantedBy=timers.target\n"
        ));
        Ok((service, timer))
    }

    /// A job's crontab line (with the user column when the scheduler has one).
    pub fn crontab_line(&self, job: &ScheduleJob, event: &CalendarEvent) -> Result<String> {
        let when = event
            .to_cron()
            .map_err(|e| anyhow!("profile {}, {}: {e:#}", job.profile, job.command))?;
        let user = match &self.scheduler {
            Scheduler::CrontabFile { user: Some(u), .. } => format!("\t{u}"),
            _ => String::new(),
        };
        let words: Vec<String> = self
            .command_line(&job.profile, &job.command)
            .iter()
            .map(|w| sh_word(w))
            .collect();
        Ok(format!(
            "{when}{user}\tcd {} && {} {}",
            sh_word(&self.work_dir().to_string_lossy()),
            words.join(" "),
            cron_marker(&job.profile, &job.command)
        ))
    }

    /// Writes and starts the jobs; returns what was done, one line each.
    pub fn install(&self, jobs: &[ScheduleJob]) -> Result<Vec<String>> {
        match &self.scheduler {
            Scheduler::Systemd => self.install_systemd(jobs),
            _ => {
                let mut lines = Vec::new();
                for job in jobs {
                    for e in &job.events {
                        lines.push(self.crontab_line(job, e)?);
                    }
                }
                let profiles: Vec<String> = jobs.iter().map(|j| j.profile.clone()).collect();
                let mut tab = self.read_crontab()?;
                tab.retain(|l| !profiles.iter().any(|p| is_cairn_line(l, p)));
                tab.extend(lines.iter().cloned());
                self.write_crontab(&tab)?;
                Ok(lines.into_iter().map(|l| format!("crontab: {l}")).collect())
            }
        }
    }

    fn install_systemd(&self, jobs: &[ScheduleJob]) -> Result<Vec<String>> {
        let mut messages = Vec::new();
        let mut reload = [false, false];
        let mut timers: Vec<(bool, String)> = Vec::new();
        for job in jobs {
            let user = self.effective_permission(job) == Permission::UserLoggedOn;
            if !user && !is_root() && self.unit_dir.is_none() {
                bail!(
                    "profile {}, {}: system units need root (sudo); use --user or schedule-permission = \"user_logged_on\"",
                    job.profile,
                    job.command
                );
            }
            let dir = self.systemd_dir(user)?;
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let base = unit_base(&job.profile, &job.command);
            let (service, timer) = self.systemd_units(job)?;
            for (name, text) in [
                (format!("{base}.service"), service),
                (format!("{base}.timer"), timer),
            ] {
                let path = dir.join(&name);
                std::fs::write(&path, text)
                    .with_context(|| format!("writing {}", path.display()))?;
                messages.push(format!("wrote {}", path.display()));
            }
            self.write_drop_ins(&dir, &base, &job.drop_in_files)?;
            reload[usize::from(user)] = true;
            timers.push((user, format!("{base}.timer")));
        }
        if self.unit_dir.is_some() {
            return Ok(messages);
        }
        if !systemd_running() {
            messages
                .push("systemd is not running here: the units are written but not started".into());
            return Ok(messages);
        }
        for (user, needed) in [false, true].into_iter().zip(reload) {
            if needed {
                systemctl(user, &["daemon-reload"])?;
            }
        }
        for (user, timer) in timers {
            systemctl(user, &["enable", "--now", &timer])?;
            messages.push(format!("enabled and started {timer}"));
        }
        Ok(messages)
    }

    /// Copies `systemd-drop-in-files` beside the units: files with a `[Timer]` section
    /// (RandomizedDelaySec=, AccuracySec=, …) to the timer's `.d`, the rest to the service's.
    fn write_drop_ins(&self, dir: &Path, base: &str, files: &[PathBuf]) -> Result<()> {
        for kind in ["service", "timer"] {
            let d = dir.join(format!("{base}.{kind}.d"));
            if d.is_dir() {
                std::fs::remove_dir_all(&d).with_context(|| format!("removing {}", d.display()))?;
            }
        }
        for f in files {
            let f = if f.is_relative() {
                self.work_dir().join(f)
            } else {
                f.clone()
            };
            let text = std::fs::read_to_string(&f)
                .with_context(|| format!("systemd-drop-in-files: {}", f.display()))?;
            let kind = if text.lines().any(|l| l.trim() == "[Timer]") {
                "timer"
            } else {
                "service"
            };
            let d = dir.join(format!("{base}.{kind}.d"));
            std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
            let name = f.file_name().context("drop-in file without a name")?;
            let mut target = d.join(name);
            if target.extension().is_none_or(|e| e != "conf") {
                target.set_extension("conf");
            }
            std::fs::write(&target, text)
                .with_context(|| format!("writing {}", target.display()))?;
        }
        Ok(())
    }

    /// Stops and deletes every job of the profiles (all schedulable commands, whether or not
    /// the configuration still schedules them).
    pub fn remove(&self, profiles: &[String]) -> Result<Vec<String>> {
        let mut messages = Vec::new();
        match &self.scheduler {
            Scheduler::Systemd => {
                for user in self.unit_dirs_to_search() {
                    let dir = self.systemd_dir(user)?;
                    let mut removed = false;
                    for p in profiles {
                        for c in SCHEDULABLE {
                            let base = unit_base(p, c);
                            let timer = dir.join(format!("{base}.timer"));
                            if !timer.exists() && !dir.join(format!("{base}.service")).exists() {
                                continue;
                            }
                            if self.unit_dir.is_none() && systemd_running() {
                                // A timer systemd does not know any more is not an error here.
                                let _ = systemctl(
                                    user,
                                    &["disable", "--now", &format!("{base}.timer")],
                                );
                            }
                            for name in [format!("{base}.timer"), format!("{base}.service")] {
                                let path = dir.join(name);
                                if path.exists() {
                                    std::fs::remove_file(&path)
                                        .with_context(|| format!("removing {}", path.display()))?;
                                    messages.push(format!("removed {}", path.display()));
                                }
                            }
                            for kind in ["service", "timer"] {
                                let d = dir.join(format!("{base}.{kind}.d"));
                                if d.is_dir() {
                                    std::fs::remove_dir_all(&d)
                                        .with_context(|| format!("removing {}", d.display()))?;
                                }
                            }
                            removed = true;
                        }
                    }
                    if removed && self.unit_dir.is_none() && systemd_running() {
                        systemctl(user, &["daemon-reload"])?;
                    }
                }
            }
            _ => {
                let mut tab = self.read_crontab()?;
                let before = tab.len();
                tab.retain(|l| !profiles.iter().any(|p| is_cairn_line(l, p)));
                if tab.len() != before {
                    self.write_crontab(&tab)?;
                    messages.push(format!("removed {} crontab entries", before - tab.len()));
                }
            }
        }
        if messages.is_empty() {
            messages.push(format!("no schedule installed for {}", profiles.join(", ")));
        }
        Ok(messages)
    }

    /// `false` = system units, `true` = user units; the override directory counts once.
    fn unit_dirs_to_search(&self) -> Vec<bool> {
        if self.unit_dir.is_some() || self.user_units {
            vec![true]
        } else if is_root() {
            vec![false, true]
        } else {
            vec![true, false]
        }
    }

    /// One line per job of the profiles: where it is installed, and its next and last runs.
    /// `jobs` are the configured ones (for the computed next run when systemd cannot say).
    pub fn status(&self, profiles: &[String], jobs: &[ScheduleJob]) -> Result<Vec<String>> {
        let now = chrono::Local::now().naive_local();
        let computed = |p: &str, c: &str| -> String {
            jobs.iter()
                .find(|j| j.profile == p && j.command == c)
                .and_then(|j| j.events.iter().filter_map(|e| e.next_after(now)).min())
                .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                .unwrap_or_else(|| "-".into())
        };
        let mut out = Vec::new();
        match &self.scheduler {
            Scheduler::Systemd => {
                for user in self.unit_dirs_to_search() {
                    let dir = self.systemd_dir(user)?;
                    for p in profiles {
                        for c in SCHEDULABLE {
                            let timer = format!("{}.timer", unit_base(p, c));
                            if !dir.join(&timer).exists() {
                                continue;
                            }
                            let live = if self.unit_dir.is_none() && systemd_running() {
                                timer_times(user, &timer).ok()
                            } else {
                                None
                            };
                            let (next, last) = match live {
                                Some((n, l)) => (n, l),
                                None => (
                                    format!("{} (from the schedule)", computed(p, c)),
                                    "unknown".into(),
                                ),
                            };
                            out.push(format!(
                                "{p} {c}: {} next {next}, last {last}",
                                dir.join(&timer).display()
                            ));
                        }
                    }
                }
            }
            _ => {
                for l in self.read_crontab()? {
                    for p in profiles {
                        if is_cairn_line(&l, p) {
                            let c = SCHEDULABLE
                                .iter()
                                .find(|c| l.ends_with(&cron_marker(p, c)))
                                .copied()
                                .unwrap_or("?");
                            out.push(format!("{p} {c}: crontab `{l}` next {}", computed(p, c)));
                        }
                    }
                }
            }
        }
        if out.is_empty() {
            out.push(format!("no schedule installed for {}", profiles.join(", ")));
        }
        Ok(out)
    }

    fn read_crontab(&self) -> Result<Vec<String>> {
        let text = match &self.scheduler {
            Scheduler::CrontabFile { path, .. } => match std::fs::read_to_string(path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
                Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
            },
            Scheduler::Crond { crontab } => {
                let out = Command::new(crontab)
                    .arg("-l")
                    .output()
                    .with_context(|| {
                        format!(
                            "running {} -l: systemd is {}and no crontab tool was found (install cron, or set global.scheduler)",
                            crontab.display(),
                            if systemd_running() { "" } else { "not running " }
                        )
                    })?;
                // "no crontab for USER" is an empty crontab.
                if out.status.success() {
                    String::from_utf8_lossy(&out.stdout).into_owned()
                } else {
                    String::new()
                }
            }
            Scheduler::Systemd => String::new(),
        };
        Ok(text.lines().map(str::to_string).collect())
    }

    fn write_crontab(&self, lines: &[String]) -> Result<()> {
        let mut text = lines.join("\n");
        text.push('\n');
        match &self.scheduler {
            Scheduler::CrontabFile { path, .. } => {
                let dir = path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                let name = path
                    .file_name()
                    .context("crontab file without a name")?
                    .to_string_lossy();
                crate::status::write_atomically(dir, &name, text.as_bytes())
                    .with_context(|| format!("writing {}", path.display()))
            }
            Scheduler::Crond { crontab } => {
                use std::io::Write;
                let mut child = Command::new(crontab)
                    .arg("-")
                    .stdin(std::process::Stdio::piped())
                    .spawn()
                    .with_context(|| format!("running {} -", crontab.display()))?;
                child
                    .stdin
                    .take()
                    .context("crontab's stdin")?
                    .write_all(text.as_bytes())?;
                let status = child.wait()?;
                if !status.success() {
                    bail!("{} - failed: {status}", crontab.display());
                }
                Ok(())
            }
            Scheduler::Systemd => Ok(()),
        }
    }
}

/// The comment that ends a cairn crontab line and names its job.
fn cron_marker(profile: &str, command: &str) -> String {
    format!("# cairn:{}:{command}", profile.replace('%', "\\%"))
}

fn is_cairn_line(line: &str, profile: &str) -> bool {
    SCHEDULABLE
        .iter()
        .any(|c| line.ends_with(&cron_marker(profile, c)))
}

fn systemctl(user: bool, args: &[&str]) -> Result<()> {
    let mut cmd = Command::new("systemctl");
    if user {
        cmd.arg("--user");
    }
    let out = cmd.args(args).output().context("running systemctl")?;
    if !out.status.success() {
        bail!(
            "systemctl {}{}: {}",
            if user { "--user " } else { "" },
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// A timer's next and last trigger, as systemd reports them.
fn timer_times(user: bool, timer: &str) -> Result<(String, String)> {
    let mut cmd = Command::new("systemctl");
    if user {
        cmd.arg("--user");
    }
    let out = cmd
        .args([
            "show",
            "-p",
            "NextElapseUSecRealtime",
            "-p",
            "LastTriggerUSec",
            timer,
        ])
        .output()
        .context("running systemctl show")?;
    if !out.status.success() {
        bail!("systemctl show {timer} failed");
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| {
                if v.is_empty() {
                    "never".to_string()
                } else {
                    v.to_string()
                }
            })
            .unwrap_or_else(|| "unknown".into())
    };
    Ok((get("NextElapseUSecRealtime="), get("LastTriggerUSec=")))
}

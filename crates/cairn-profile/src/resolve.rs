//! From a profile (inheritance already merged) and a command to the steps that run it: each
//! step a cairn command line, plus the environment, the hooks and the sections the reporters
//! read. Keys are checked here: a key that is neither resticprofile's nor a flag of the cairn
//! command its section is for is an error (resticprofile drops those silently; a typo in a
//! backup's `exclude` should not go unnoticed).

pub(crate) mod glob;
mod keys;
mod paths;

pub use paths::{expand_vars, file_templates};

use crate::config::{truthy, Config};
use anyhow::{anyhow, bail};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The long flags of cairn's commands, from the CLI's own definition (so the profile is
/// checked against exactly what a command line would accept).
#[derive(Debug, Clone, Default)]
pub struct FlagSpec {
    /// Flags every command takes (`--repo`, `--password-file`, …).
    pub global: BTreeSet<String>,
    /// Each command's own flags.
    pub commands: BTreeMap<String, BTreeSet<String>>,
}

impl FlagSpec {
    pub fn accepts(&self, command: &str, flag: &str) -> bool {
        self.global.contains(flag) || self.commands.get(command).is_some_and(|f| f.contains(flag))
    }

    fn any_command_accepts(&self, flag: &str) -> bool {
        self.global.contains(flag) || self.commands.values().any(|f| f.contains(flag))
    }
}

/// One flag with its values: `None` is a bare `--flag`, several values repeat the flag.
pub type Flag = (String, Vec<Option<String>>);

/// Flags given on cairn's own command line: they replace the profile's flags of the same name.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Flags every step takes (`--repo`, `--verbose`, …).
    pub global: Vec<Flag>,
    /// Flags of the command named on the command line (its main step only).
    pub command: Vec<Flag>,
    /// Positional arguments (the backup's sources, snapshot IDs), replacing the profile's.
    pub args: Option<Vec<String>>,
    /// A nested command typed after the command (`repair snapshots`).
    pub subcommand: Vec<String>,
}

/// What a step is for: the runner treats them differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// `init`, only when the repository does not exist yet (`initialize`).
    InitIfMissing,
    /// The command asked for.
    Main,
    /// `forget` from `retention` (before or after a backup).
    Retention,
    /// `check` from a backup's `check-before` / `check-after`.
    Check,
}

/// One cairn command line of a plan.
#[derive(Debug, Clone)]
pub struct Step {
    pub kind: StepKind,
    /// resticprofile's name for it, used in status and metrics: "backup", "retention", …
    pub label: String,
    /// cairn's subcommand.
    pub command: String,
    pub flags: Vec<Flag>,
    pub args: Vec<String>,
    /// Exit codes that count as success (`no-error-on-warning` adds 3 for backups).
    pub ok_codes: Vec<i32>,
    /// The directory the step runs in (`source-relative` backups: the sources' base).
    pub work_dir: Option<PathBuf>,
}

impl Step {
    /// The arguments after the program name: `command --flag=value … -- args…`.
    pub fn argv(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = self.command.split(' ').map(OsString::from).collect();
        for (name, values) in &self.flags {
            for value in values {
                v.push(match value {
                    None => format!("--{name}").into(),
                    Some(x) => format!("--{name}={x}").into(),
                });
            }
        }
        if !self.args.is_empty() {
            v.push("--".into());
            v.extend(self.args.iter().map(OsString::from));
        }
        v
    }

    /// The command line as shown to people (`show`, `ERROR_COMMANDLINE`): secrets masked.
    pub fn display(&self) -> String {
        let mut parts = vec!["cairn".to_string()];
        for a in self.argv() {
            let a = a.to_string_lossy().into_owned();
            parts.push(mask_url_password(&a));
        }
        parts
            .iter()
            .map(|p| shell_quote(p))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Shell commands around a command (`run-before`, …), from one level (profile or section).
#[derive(Debug, Clone, Default)]
pub struct Hooks {
    pub before: Vec<String>,
    pub after: Vec<String>,
    pub after_fail: Vec<String>,
    pub finally: Vec<String>,
}

impl Hooks {
    fn from(table: &Map<String, Value>) -> Hooks {
        let list = |k: &str| -> Vec<String> {
            match table.get(k) {
                Some(Value::String(s)) if !s.is_empty() => vec![s.clone()],
                Some(Value::Array(a)) => a
                    .iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            }
        };
        Hooks {
            before: list("run-before"),
            after: list("run-after"),
            after_fail: list("run-after-fail"),
            finally: list("run-finally"),
        }
    }
}

/// Everything needed to run one command of one profile.
#[derive(Debug, Clone)]
pub struct Plan {
    pub config_file: PathBuf,
    pub profile: String,
    /// The command as asked ("backup", "check", …).
    pub command: String,
    pub steps: Vec<Step>,
    /// Set for every step and hook (`env`, `env-file`), on top of the process's environment.
    pub env: Vec<(String, String)>,
    pub profile_hooks: Hooks,
    pub section_hooks: Hooks,
    /// The profile after inheritance, templates and path resolution, keys as in the file
    /// (status-file, prometheus-*, …), for the reporters.
    pub profile_section: Value,
    /// The command's own section (`send-*`, `schedule*`), or null.
    pub command_section: Value,
    /// `base-dir`: hooks run there.
    pub work_dir: Option<PathBuf>,
    /// `stream-error`: commands started when the steps' stderr matches.
    pub stream_errors: Vec<crate::streamerr::Rule>,
}

/// A profile ready to be planned: merged, templated, checked, paths resolved.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub config_file: PathBuf,
    pub version: u32,
    pub table: Map<String, Value>,
    global_initialize: bool,
    /// `source-relative`: the directory the backup runs in, its sources relative to it.
    source_dir: Option<PathBuf>,
}

/// Loads profile `name` from `config` and checks it against `spec`.
pub fn profile(config: &Config, name: &str, spec: &FlagSpec) -> anyhow::Result<Profile> {
    let mut table = config.profile(name)?;
    drop_nulls(&mut table, spec);
    let file = config.path.display().to_string();
    let ctx = paths::Context::new(&config.dir(), name);
    paths::templates(&mut table, &ctx).map_err(|e| anyhow!("{file}: profile {name:?}: {e}"))?;
    keys::check(&table, spec).map_err(|e| anyhow!("{file}: profile {name:?}: {e}"))?;
    let source_dir =
        paths::resolve(&mut table, &ctx).map_err(|e| anyhow!("{file}: profile {name:?}: {e}"))?;
    Ok(Profile {
        source_dir,
        name: name.to_string(),
        config_file: config.path.clone(),
        version: config.version,
        table,
        global_initialize: config.global_bool("initialize"),
    })
}

impl Profile {
    /// The commands that have a section, in file order (`retention` is part of `backup`).
    pub fn sections(&self) -> Vec<String> {
        self.table
            .iter()
            .filter(|(k, v)| v.is_object() && !keys::PROFILE_KEYS.contains(&k.as_str()))
            .map(|(k, _)| k.clone())
            .filter(|k| k != "retention")
            .collect()
    }

    pub fn description(&self) -> Option<&str> {
        self.table.get("description").and_then(Value::as_str)
    }

    fn section(&self, name: &str) -> Option<&Map<String, Value>> {
        self.table.get(name).and_then(Value::as_object)
    }

    /// Flags at the profile level (common to every command), values as written.
    fn common_flags(&self) -> Vec<(String, Value)> {
        self.table
            .iter()
            .filter(|(k, v)| !keys::PROFILE_KEYS.contains(&k.as_str()) && !v.is_object())
            .map(|(k, v)| (rename_common(k).to_string(), v.clone()))
            .collect()
    }

    fn backup_sources(&self) -> Vec<String> {
        self.section("backup")
            .and_then(|b| b.get("source"))
            .map(strings)
            .unwrap_or_default()
    }

    /// The backup's sources as absolute paths, which is how snapshots record them.
    fn backup_paths(&self) -> Vec<String> {
        let sources = self.backup_sources();
        match &self.source_dir {
            Some(d) => sources.iter().map(|s| under(d, s)).collect(),
            None => sources,
        }
    }

    /// `stdin-command`: the shell commands whose output is backed up (resticprofile runs them
    /// one after another into restic's stdin; here one shell runs them, stopping at the
    /// first that fails, through `--stdin-from-command`).
    fn stdin_command(&self) -> Option<Vec<String>> {
        let cmds = self.section("backup")?.get("stdin-command").map(strings)?;
        (!cmds.is_empty()).then(|| {
            let script = std::iter::once("set -e".to_string())
                .chain(cmds)
                .collect::<Vec<_>>()
                .join("\n");
            vec!["sh".to_string(), "-c".to_string(), script]
        })
    }

    /// The backup's tags, for `tag = true` elsewhere: one value, all tags required.
    fn backup_tags(&self) -> Option<String> {
        let tags = self
            .section("backup")
            .and_then(|b| b.get("tag"))
            .map(strings)?;
        (!tags.is_empty()).then(|| tags.join(","))
    }

    /// The flags of a step: profile-level flags the command takes, then the section's own
    /// (which replace those of the same name), with resticprofile's `true` shorthands for
    /// `host`, `tag` and `path` resolved.
    fn flags_for(
        &self,
        command: &str,
        section: Option<&Map<String, Value>>,
        own: &[&str],
        spec: &FlagSpec,
    ) -> anyhow::Result<Vec<Flag>> {
        let mut merged: Vec<(String, Value)> = self
            .common_flags()
            .into_iter()
            .filter(|(k, _)| spec.accepts(command, k))
            .collect();
        if let Some(s) = section {
            for (k, v) in s {
                if own.contains(&k.as_str()) || keys::is_section_key(k) {
                    continue;
                }
                let k = rename_in_section(command, k).to_string();
                merged.retain(|(m, _)| *m != k);
                merged.push((k, v.clone()));
            }
        }
        let mut out = Vec::new();
        for (k, v) in merged {
            let v = match (k.as_str(), &v) {
                ("host", Value::Bool(true)) => Value::String(hostname()),
                ("tag", Value::Bool(true)) => match self.backup_tags() {
                    Some(t) => Value::String(t),
                    None => continue,
                },
                ("path", Value::Bool(true)) => {
                    Value::Array(self.backup_paths().into_iter().map(Value::String).collect())
                }
                _ => v,
            };
            if let Some(values) = flag_values(&k, &v)? {
                out.push((k, values));
            }
        }
        Ok(out)
    }

    fn init_step(&self, spec: &FlagSpec) -> anyhow::Result<Step> {
        Ok(Step {
            kind: StepKind::InitIfMissing,
            label: "init".into(),
            command: "init".into(),
            flags: self.flags_for("init", self.section("init"), keys::INIT_KEYS, spec)?,
            args: Vec::new(),
            ok_codes: vec![0],
            work_dir: None,
        })
    }

    fn retention_step(&self, spec: &FlagSpec) -> anyhow::Result<Step> {
        let mut section = self.section("retention").cloned().unwrap_or_default();
        let has_backup = self.section("backup").is_some();
        if has_backup && !section.contains_key("path") {
            section.insert("path".into(), Value::Bool(true));
        }
        if self.version >= 2 {
            if has_backup && !section.contains_key("tag") && self.backup_tags().is_some() {
                section.insert("tag".into(), Value::Bool(true));
            }
            if !section.contains_key("host") {
                let backup_host = self.section("backup").and_then(|b| b.get("host")).cloned();
                match backup_host {
                    Some(h) => {
                        section.insert("host".into(), h);
                    }
                    None if !self.table.contains_key("host") => {
                        section.insert("host".into(), Value::Bool(true));
                    }
                    None => {}
                }
            }
        }
        Ok(Step {
            kind: StepKind::Retention,
            label: "retention".into(),
            command: "forget".into(),
            flags: self.flags_for("forget", Some(&section), keys::RETENTION_KEYS, spec)?,
            args: Vec::new(),
            ok_codes: vec![0],
            work_dir: None,
        })
    }

    fn check_step(&self, spec: &FlagSpec) -> anyhow::Result<Step> {
        Ok(Step {
            kind: StepKind::Check,
            label: "check".into(),
            command: "check".into(),
            flags: self.flags_for("check", self.section("check"), keys::SECTION_KEYS, spec)?,
            args: Vec::new(),
            ok_codes: vec![0],
            work_dir: None,
        })
    }

    /// `retention.before-backup` / `after-backup`; version 2 turns `after-backup` on when
    /// neither is given and a `keep-*` is.
    fn retention_when(&self) -> (bool, bool) {
        let Some(r) = self.section("retention") else {
            return (false, false);
        };
        let before = r.get("before-backup").is_some_and(truthy);
        let after = match r.get("after-backup") {
            Some(v) => truthy(v),
            None => {
                self.version >= 2
                    && !r.contains_key("before-backup")
                    && r.keys().any(|k| k.starts_with("keep-"))
            }
        };
        (before, after)
    }

    /// The steps of `command`, and its environment and hooks.
    pub fn plan(
        &self,
        command: &str,
        spec: &FlagSpec,
        overrides: &Overrides,
    ) -> anyhow::Result<Plan> {
        if command == "retention" {
            bail!("\"retention\" runs as part of backup; run \"forget\" for it alone");
        }
        if !spec.commands.contains_key(command) {
            bail!("cairn has no command {command:?}");
        }
        let section = self.section(command);
        let mut steps = Vec::new();
        let initialize = self
            .table
            .get("initialize")
            .map(truthy)
            .unwrap_or(self.global_initialize);
        if initialize && command != "init" {
            steps.push(self.init_step(spec)?);
        }
        let main = match command {
            "copy" => {
                let (init, copy) = self.copy_steps(spec)?;
                steps.extend(init);
                copy
            }
            _ => {
                let own: &[&str] = match command {
                    "backup" => keys::BACKUP_KEYS,
                    "init" => keys::INIT_KEYS,
                    _ => keys::SECTION_KEYS,
                };
                let mut ok_codes = vec![0];
                if command == "backup"
                    && section
                        .and_then(|s| s.get("no-error-on-warning"))
                        .is_some_and(truthy)
                {
                    ok_codes.push(3);
                }
                let mut flags = self.flags_for(command, section, own, spec)?;
                let mut args = Vec::new();
                let mut work_dir = None;
                if command == "backup" {
                    args = self.backup_sources();
                    work_dir = self.source_dir.clone();
                    if let Some(script) = self.stdin_command() {
                        flags.retain(|(n, _)| n != "stdin");
                        flags.push(("stdin-from-command".into(), vec![None]));
                        args = script;
                    }
                }
                Step {
                    kind: StepKind::Main,
                    label: command.to_string(),
                    command: command.to_string(),
                    flags,
                    args,
                    ok_codes,
                    work_dir,
                }
            }
        };
        let main = apply_overrides(main, overrides, true);
        if command == "backup" {
            let b = section.cloned().unwrap_or_default();
            let (before, after) = self.retention_when();
            if b.get("check-before").is_some_and(truthy) {
                steps.push(self.check_step(spec)?);
            }
            if before {
                steps.push(self.retention_step(spec)?);
            }
            steps.push(main);
            if after {
                steps.push(self.retention_step(spec)?);
            }
            if b.get("check-after").is_some_and(truthy) {
                steps.push(self.check_step(spec)?);
            }
        } else {
            steps.push(main);
        }
        let steps = steps
            .into_iter()
            .map(|s| {
                if s.kind == StepKind::Main {
                    s
                } else {
                    apply_overrides(s, overrides, false)
                }
            })
            .collect();
        Ok(Plan {
            config_file: self.config_file.clone(),
            profile: self.name.clone(),
            command: command.to_string(),
            steps,
            env: self.env()?,
            profile_hooks: Hooks::from(&self.table),
            section_hooks: section.map(Hooks::from).unwrap_or_default(),
            profile_section: Value::Object(self.table.clone()),
            command_section: section.cloned().map(Value::Object).unwrap_or(Value::Null),
            work_dir: self
                .table
                .get("base-dir")
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from),
            stream_errors: crate::streamerr::parse(
                self.table.get("stream-error").unwrap_or(&Value::Null),
            )
            .map_err(|e| {
                anyhow!(
                    "{}: profile {:?}: {e}",
                    self.config_file.display(),
                    self.name
                )
            })?,
        })
    }

    /// `copy`: with `repository` in the section, the profile's repository is the source and
    /// the section's the target (restic ≥ 0.14's `--from-repo` on the target), as
    /// resticprofile maps it; otherwise the section names the source with `from-*`.
    fn copy_steps(&self, spec: &FlagSpec) -> anyhow::Result<(Option<Step>, Step)> {
        let section = self.section("copy").cloned().unwrap_or_default();
        let snapshots = section.get("snapshot").map(strings).unwrap_or_default();
        let copy_to = section.contains_key("repository") || section.contains_key("repository-file");
        let repo_keys = [
            "repo",
            "repository-file",
            "password-file",
            "password-command",
            "key-hint",
        ];
        let mut flags = self.flags_for("copy", Some(&section), keys::COPY_KEYS, spec)?;
        let mut init = None;
        if copy_to {
            // The profile's repository becomes the source…
            for (name, _) in flags.iter_mut() {
                if repo_keys.contains(&name.as_str()) {
                    *name = format!("from-{name}");
                }
            }
            // …and the section's the target.
            let mut target = Vec::new();
            for (key, flag) in [
                ("repository", "repo"),
                ("repository-file", "repository-file"),
                ("password-file", "password-file"),
                ("password-command", "password-command"),
                ("key-hint", "key-hint"),
            ] {
                if let Some(values) = section
                    .get(key)
                    .map(|v| flag_values(flag, v))
                    .transpose()?
                    .flatten()
                {
                    target.push((flag.to_string(), values));
                }
            }
            let initialize = section
                .get("initialize")
                .map(truthy)
                .unwrap_or(self.global_initialize);
            if initialize {
                let chunker = section
                    .get("initialize-copy-chunker-params")
                    .map(truthy)
                    .unwrap_or(true);
                let mut init_flags: Vec<Flag> = self
                    .flags_for("init", None, &[], spec)?
                    .into_iter()
                    .filter(|(n, _)| !repo_keys.contains(&n.as_str()))
                    .collect();
                if chunker {
                    init_flags.push(("copy-chunker-params".into(), vec![None]));
                    init_flags.extend(
                        flags
                            .iter()
                            .filter(|(n, _)| n.starts_with("from-"))
                            .cloned(),
                    );
                }
                init_flags.extend(target.iter().cloned());
                init = Some(Step {
                    kind: StepKind::InitIfMissing,
                    label: "init".into(),
                    command: "init".into(),
                    flags: init_flags,
                    args: Vec::new(),
                    ok_codes: vec![0],
                    work_dir: None,
                });
            }
            flags.extend(target);
        }
        let copy = Step {
            kind: StepKind::Main,
            label: "copy".into(),
            command: "copy".into(),
            flags,
            args: snapshots,
            ok_codes: vec![0],
            work_dir: None,
        };
        Ok((init, copy))
    }

    /// `env` (names upper-cased, as resticprofile does for names the process does not
    /// already have) after the `env-file` files.
    fn env(&self) -> anyhow::Result<Vec<(String, String)>> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut put = |k: String, v: String| {
            out.retain(|(n, _)| *n != k);
            out.push((k, v));
        };
        if let Some(files) = self.table.get("env-file") {
            for f in strings(files) {
                let text = std::fs::read_to_string(&f).map_err(|e| anyhow!("env-file {f}: {e}"))?;
                for line in text.lines() {
                    let line = line.trim();
                    let line = line.strip_prefix("export ").unwrap_or(line);
                    if line.is_empty() || line.starts_with('#') {
                        continue;
                    }
                    if let Some((k, v)) = line.split_once('=') {
                        let v = v.trim();
                        let v = v
                            .strip_prefix('"')
                            .and_then(|x| x.strip_suffix('"'))
                            .or_else(|| v.strip_prefix('\'').and_then(|x| x.strip_suffix('\'')))
                            .unwrap_or(v);
                        put(k.trim().to_string(), v.to_string());
                    }
                }
            }
        }
        if let Some(Value::Object(env)) = self.table.get("env") {
            for (k, v) in env {
                let name = if std::env::var_os(k).is_some() {
                    k.clone()
                } else {
                    k.to_ascii_uppercase()
                };
                let value = match v {
                    Value::String(s) => s.clone(),
                    Value::Null => String::new(),
                    other => other.to_string(),
                };
                put(name, value);
            }
        }
        Ok(out)
    }
}

/// A key with no value (YAML's `backup:` with nothing under it) is as good as absent; an
/// empty section stays, empty.
fn drop_nulls(table: &mut Map<String, Value>, spec: &FlagSpec) {
    let sections: Vec<String> = table
        .iter()
        .filter(|(k, v)| v.is_null() && (spec.commands.contains_key(*k) || *k == "retention"))
        .map(|(k, _)| k.clone())
        .collect();
    table.retain(|_, v| !v.is_null());
    for (_, v) in table.iter_mut() {
        if let Value::Object(o) = v {
            o.retain(|_, x| !x.is_null());
        }
    }
    // `backup:` alone declares the section.
    for k in sections {
        table.insert(k, Value::Object(Map::new()));
    }
}

/// The command line's flags replace the profile's of the same name.
fn apply_overrides(mut step: Step, o: &Overrides, main: bool) -> Step {
    let mut given: Vec<&Flag> = o.global.iter().collect();
    if main {
        for nested in &o.subcommand {
            step.command = format!("{} {nested}", step.command);
        }
        given.extend(o.command.iter());
        if let Some(a) = &o.args {
            step.args = a.clone();
        }
    }
    step.flags
        .retain(|(n, _)| !given.iter().any(|(g, _)| g == n));
    step.flags.extend(given.into_iter().cloned());
    step
}

/// restic's `--repo` is `repository` in a profile.
fn rename_common(k: &str) -> &str {
    match k {
        "repository" => "repo",
        k => k,
    }
}

fn rename_in_section<'a>(command: &str, k: &'a str) -> &'a str {
    match (command, k) {
        ("backup", "extended-status") => "json",
        (_, "from-repository") => "from-repo",
        (_, k) => rename_common(k),
    }
}

/// Flags whose empty value means something (`--tag=""`: untagged snapshots).
const EMPTY_VALUE_FLAGS: &[&str] = &["keep-tag", "tag", "group-by"];

/// resticprofile's value forms: `true` → `--flag`, `false`, 0 and "" → nothing, a list →
/// the flag repeated.
fn flag_values(name: &str, v: &Value) -> anyhow::Result<Option<Vec<Option<String>>>> {
    Ok(match v {
        Value::Null | Value::Bool(false) => None,
        Value::Bool(true) => Some(vec![None]),
        Value::Number(n) => (n.as_f64() != Some(0.0)).then(|| vec![Some(n.to_string())]),
        Value::String(s) if s.is_empty() => EMPTY_VALUE_FLAGS
            .contains(&name)
            .then(|| vec![Some(String::new())]),
        Value::String(s) => Some(vec![Some(s.clone())]),
        Value::Array(a) => {
            let mut out = Vec::new();
            for item in a {
                match item {
                    Value::String(s) => out.push(Some(s.clone())),
                    Value::Number(n) => out.push(Some(n.to_string())),
                    Value::Bool(b) => out.push(Some(b.to_string())),
                    _ => bail!("{name}: a list of values must hold strings or numbers"),
                }
            }
            (!out.is_empty()).then_some(out)
        }
        Value::Object(_) => bail!("{name}: expected a value, found a table"),
    })
}

/// A string or a list of strings (numbers as text).
pub(crate) fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) => vec![s.clone()],
        Value::Number(n) => vec![n.to_string()],
        Value::Array(a) => a
            .iter()
            .filter_map(|x| match x {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    }
}

pub(crate) fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length, which is passed along.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
        let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
        return String::from_utf8_lossy(&buf[..end]).into_owned();
    }
    String::new()
}

/// `rest:https://user:secret@host/` → `rest:https://user:***@host/`.
fn mask_url_password(s: &str) -> String {
    let Some(scheme_end) = s.find("://") else {
        return s.to_string();
    };
    let rest = &s[scheme_end + 3..];
    let host_end = rest.find('/').unwrap_or(rest.len());
    let Some(at) = rest[..host_end].rfind('@') else {
        return s.to_string();
    };
    let Some(colon) = rest[..at].find(':') else {
        return s.to_string();
    };
    format!(
        "{}{}:***{}",
        &s[..scheme_end + 3],
        &rest[..colon],
        &rest[at..]
    )
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=./:,@%+".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

/// Environment variables shown by `show`: those that look secret are masked.
pub fn mask_env_value(name: &str, value: &str) -> String {
    let n = name.to_ascii_uppercase();
    let secret = ["PASSWORD", "SECRET", "KEY", "TOKEN", "CREDENTIAL", "AUTH"]
        .iter()
        .any(|w| n.contains(w))
        && !n.ends_with("_FILE")
        && n != "RESTIC_KEY_HINT";
    if secret {
        "***".into()
    } else {
        mask_url_password(value)
    }
}

/// A path of the configuration, relative to the file's directory.
pub(crate) fn under(dir: &Path, p: &str) -> String {
    let path = Path::new(p);
    if path.is_absolute() {
        p.to_string()
    } else {
        dir.join(path).to_string_lossy().into_owned()
    }
}

#[cfg(test)]
mod tests;

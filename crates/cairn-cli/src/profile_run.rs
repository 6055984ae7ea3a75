//! Running cairn's commands from a profile (`--config FILE -P NAME COMMAND`). The profile
//! crate plans the steps; each step runs here, in this process, through the same clap
//! parse and `commands::run` as a typed command line, so a profile's flags are checked
//! exactly as a user's would be.

use crate::global::GlobalOptions;
use crate::{commands, exit, global, Cli};
use cairn_profile::config::{find_config_file, Config, Target};
use cairn_profile::resolve::{self, Flag, FlagSpec, Overrides, Plan, Step, StepKind};
use cairn_profile::run::{run_plan, Reporter, StepResult, StepRunner};
use clap::parser::ValueSource;
use clap::{ArgAction, Parser};
use std::collections::BTreeSet;
use std::ffi::OsString;

/// resticprofile's profile when none is named.
pub const DEFAULT_PROFILE: &str = "default";

/// cairn's own commands about profiles, and those that need no repository: these run as
/// typed even with `--config` / `-P`.
const NOT_PROFILE_COMMANDS: &[&str] = &[
    "profiles",
    "show",
    "schedule",
    "run-schedule",
    "version",
    "generate",
    "features",
    "options",
    "help",
];

/// The global flags of profile selection, never part of a step's command line.
const SELECTION_FLAGS: &[&str] = &["config", "profile", "help", "version"];

/// The status file, metrics, webhooks and `lock` file of a profile run (the schedule lock
/// is taken by `run-schedule`, around the whole run; it tells this run how to wait for
/// `lock` through the environment).
fn reporter(config: &Config) -> Box<dyn Reporter> {
    Box::new(cairn_profile::report::Standard {
        global: serde_json::Value::Object(config.global.clone()),
        scheduled: cairn_profile::profilelock::Scheduled::take_from_env(),
    })
}

/// resticprofile's `NAME.COMMAND` (`cairn nightly.backup`) is `-P NAME COMMAND`: the first
/// argument that is not an option and ends in `.` and a command's name is split.
pub fn expand_profile_dot_command(args: Vec<OsString>) -> Vec<OsString> {
    let cmd = crate::cli_command();
    let is_command = |s: &str| cmd.find_subcommand(s).is_some();
    let mut out = Vec::with_capacity(args.len() + 2);
    let mut done = false;
    for (i, arg) in args.into_iter().enumerate() {
        if done || i == 0 {
            out.push(arg);
            continue;
        }
        if arg == "--" {
            done = true;
        } else if let Some(s) = arg.to_str().filter(|s| !s.starts_with('-')) {
            if is_command(s) {
                done = true;
            } else if let Some((profile, command)) = s.rsplit_once('.') {
                if !profile.is_empty() && is_command(command) {
                    out.push("--profile".into());
                    out.push(profile.into());
                    out.push(command.into());
                    done = true;
                    continue;
                }
            }
        }
        out.push(arg);
    }
    out
}

/// Whether the command line asks for a profile run: a profile or a configuration file is
/// given, and the command is a repository command.
pub fn applies(cli: &Cli, args: &[OsString]) -> bool {
    if cli.global.profile.is_none() && cli.global.config.is_none() {
        return false;
    }
    let name = crate::cli_command()
        .try_get_matches_from(args)
        .ok()
        .and_then(|m| m.subcommand_name().map(str::to_string));
    // No command: the configuration's default command.
    match name {
        None => true,
        Some(n) => !NOT_PROFILE_COMMANDS.contains(&n.as_str()),
    }
}

/// The configuration file named by `--config` / `CAIRN_CONFIG`, or found in the usual places.
pub fn load_config(g: &GlobalOptions) -> anyhow::Result<Config> {
    let path = find_config_file(g.config.as_deref())?;
    Config::load(&path)
}

/// The long flags of every command, from the command line's definition.
pub fn flag_spec() -> FlagSpec {
    let mut cmd = crate::cli_command();
    cmd.build();
    let longs = |args: &mut dyn Iterator<Item = &clap::Arg>| -> BTreeSet<String> {
        args.flat_map(|a| {
            a.get_long()
                .into_iter()
                .chain(a.get_all_aliases().unwrap_or_default())
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .filter(|l| !SELECTION_FLAGS.contains(&l.as_str()))
        .collect()
    };
    let global = longs(&mut cmd.get_arguments().filter(|a| a.is_global_set()));
    let commands = cmd
        .get_subcommands()
        .filter(|s| !NOT_PROFILE_COMMANDS.contains(&s.get_name()))
        .map(|s| {
            (
                s.get_name().to_string(),
                longs(&mut s.get_arguments().filter(|a| !a.is_global_set())),
            )
        })
        .collect();
    FlagSpec { global, commands }
}

/// The flags and arguments typed on the command line (not those from the environment or
/// defaults): they replace the profile's.
fn overrides(cmd: &clap::Command, matches: &clap::ArgMatches) -> Overrides {
    let mut o = Overrides::default();
    let Some((name, sub_m)) = matches.subcommand() else {
        // No command (the default command runs): only global flags were typed.
        typed(cmd, matches, matches, &mut o);
        return o;
    };
    let Some(sub) = cmd.find_subcommand(name) else {
        return o;
    };
    typed(sub, sub_m, matches, &mut o);
    // `repair snapshots …`: the nested command and its flags.
    if let Some((nested, nested_m)) = sub_m.subcommand() {
        if let Some(nested_cmd) = sub.find_subcommand(nested) {
            o.subcommand.push(nested.to_string());
            typed(nested_cmd, nested_m, matches, &mut o);
        }
    }
    o
}

/// Adds the flags and arguments of `cmd` that were typed (`m`, or `root_m` for global flags
/// typed before the command).
fn typed(cmd: &clap::Command, m: &clap::ArgMatches, root_m: &clap::ArgMatches, o: &mut Overrides) {
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if SELECTION_FLAGS.contains(&id) {
            continue;
        }
        let m = if m.value_source(id) == Some(ValueSource::CommandLine) {
            m
        } else if arg.is_global_set() && root_m.value_source(id) == Some(ValueSource::CommandLine) {
            root_m
        } else {
            continue;
        };
        let raw = || -> Vec<String> {
            m.get_raw(id)
                .map(|vals| vals.map(|v| v.to_string_lossy().into_owned()).collect())
                .unwrap_or_default()
        };
        let Some(long) = arg.get_long() else {
            if arg.is_positional() {
                o.args.get_or_insert_with(Vec::new).extend(raw());
            }
            continue;
        };
        let values: Vec<Option<String>> = match arg.get_action() {
            ArgAction::SetTrue | ArgAction::SetFalse => vec![None],
            ArgAction::Count => vec![None; usize::from(m.get_count(id))],
            _ => raw().into_iter().map(Some).collect(),
        };
        let flag: Flag = (long.to_string(), values);
        if arg.is_global_set() {
            // Global flags show at every level of a nested command: once is enough.
            if !o.global.iter().any(|(n, _)| *n == flag.0) {
                o.global.push(flag);
            }
        } else {
            o.command.push(flag);
        }
    }
}

/// Runs `cairn [--config F] -P NAME COMMAND …` and returns the exit code.
pub fn run_from_command_line(cli: &Cli, args: Vec<OsString>) -> i32 {
    match run_profile_or_group(&cli.global, args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Fatal: {}", crate::one_line(&e));
            exit::FATAL
        }
    }
}

fn run_profile_or_group(g: &GlobalOptions, args: Vec<OsString>) -> anyhow::Result<i32> {
    let mut cmd = crate::cli_command();
    cmd.build();
    let matches = cmd.clone().try_get_matches_from(args)?;
    let overrides = overrides(&cmd, &matches);
    let config = load_config(g)?;
    // resticprofile's `default-command` (itself defaulting to snapshots) when none is typed.
    let command = match matches.subcommand_name() {
        Some(c) => c.to_string(),
        None => config
            .global
            .get("default-command")
            .and_then(|v| v.as_str())
            .filter(|c| !c.is_empty())
            .unwrap_or("snapshots")
            .to_string(),
    };
    let spec = flag_spec();
    let name = g.profile.as_deref().unwrap_or(DEFAULT_PROFILE);
    let reporter = reporter(&config);
    match config.target(name)? {
        Target::Profile(p) => {
            let plan = resolve::profile(&config, p, &spec)?.plan(&command, &spec, &overrides)?;
            Ok(run_plan(&plan, &InProcess, &*reporter).exit_code)
        }
        Target::Group(grp) => {
            // Every profile of the group is resolved before any runs: a configuration error
            // anywhere means nothing runs.
            let plans = grp
                .profiles
                .iter()
                .map(|p| resolve::profile(&config, p, &spec)?.plan(&command, &spec, &overrides))
                .collect::<anyhow::Result<Vec<Plan>>>()?;
            let continue_on_error = grp
                .continue_on_error
                .unwrap_or_else(|| config.global_bool("group-continue-on-error"));
            let outcomes = cairn_profile::run::run_group(
                &grp.name,
                &plans,
                continue_on_error,
                &InProcess,
                &*reporter,
            );
            for o in &outcomes {
                if o.success {
                    eprintln!(
                        "group '{}': profile '{}': {} succeeded",
                        grp.name, o.profile, o.command
                    );
                } else {
                    eprintln!(
                        "group '{}': profile '{}': {} failed (exit code {}): {}",
                        grp.name,
                        o.profile,
                        o.command,
                        o.exit_code,
                        o.error.as_deref().unwrap_or("")
                    );
                }
            }
            for p in plans.iter().skip(outcomes.len()) {
                eprintln!("group '{}': profile '{}': not run", grp.name, p.profile);
            }
            Ok(outcomes
                .iter()
                .find(|o| !o.success)
                .map_or(exit::OK, |o| o.exit_code))
        }
    }
}

/// Runs steps in this process.
struct InProcess;

impl StepRunner for InProcess {
    fn shares_stderr(&self) -> bool {
        true
    }

    fn run(&self, step: &Step, env: &[(String, String)]) -> StepResult {
        // The profile's environment is the process's for the step (flags read RESTIC_* and
        // backends read their credentials from it), and is put back afterwards so that the
        // next profile of a group starts clean.
        let saved: Vec<(String, Option<OsString>)> = env
            .iter()
            .map(|(k, _)| (k.clone(), std::env::var_os(k)))
            .collect();
        for (k, v) in env {
            std::env::set_var(k, v);
        }
        let r = in_dir(step, run_step);
        for (k, v) in saved {
            match v {
                Some(v) => std::env::set_var(&k, v),
                None => std::env::remove_var(&k),
            }
        }
        r
    }
}

/// Runs the step in its directory (`source-relative` backups), back where it was afterwards.
fn in_dir(step: &Step, f: fn(&Step) -> StepResult) -> StepResult {
    let Some(dir) = &step.work_dir else {
        return f(step);
    };
    let back = std::env::current_dir();
    if let Err(e) = std::env::set_current_dir(dir) {
        let msg = format!("cannot change to {}: {e}", dir.display());
        eprintln!("Fatal: {msg}");
        return failed(exit::FATAL, msg);
    }
    let r = f(step);
    if let Ok(back) = back {
        let _ = std::env::set_current_dir(back);
    }
    r
}

fn run_step(step: &Step) -> StepResult {
    let argv =
        crate::expand_verbose_levels(std::iter::once(OsString::from("cairn")).chain(step.argv()));
    let cli = match Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let msg = e
                .to_string()
                .lines()
                .next()
                .unwrap_or("invalid command line")
                .to_string();
            eprintln!("{msg}");
            return failed(exit::FATAL, msg);
        }
    };
    if step.kind == StepKind::InitIfMissing {
        // `initialize`: only a repository that is not there yet. If that cannot be told,
        // init runs and says why.
        if let Ok(true) = cli
            .global
            .backend()
            .and_then(|b| b.exists().map_err(anyhow::Error::new))
        {
            return StepResult::default();
        }
    }
    let _ = crate::printer::take_backup();
    let json = cli.global.json;
    let Some(command) = cli.command else {
        return failed(exit::FATAL, "no command".to_string());
    };
    let result = commands::run(command, &cli.global);
    global::release_locks();
    let backup = crate::printer::take_backup();
    match result {
        Ok(code) => StepResult {
            exit_code: code,
            error: (code != exit::OK).then(|| match code {
                exit::INCOMPLETE => "at least one source file could not be read".to_string(),
                c => format!("{} exited with code {c}", step.command),
            }),
            backup,
            stderr: None,
        },
        Err(e) => {
            let code = if crate::signals::INTERRUPTED.load(std::sync::atomic::Ordering::SeqCst) {
                exit::INTERRUPTED
            } else {
                crate::classify(&e)
            };
            let msg = crate::one_line(&e);
            if json {
                let m = serde_json::json!({"message_type": "exit_error", "code": code, "message": format!("{e:#}")});
                eprintln!("{m}");
            } else {
                eprintln!("Fatal: {msg}");
            }
            StepResult {
                backup,
                ..failed(code, msg)
            }
        }
    }
}

fn failed(code: i32, msg: String) -> StepResult {
    StepResult {
        exit_code: code,
        error: Some(msg.clone()),
        backup: None,
        stderr: Some(msg),
    }
}

//! Running a [`Plan`] in resticprofile's order: `run-before` of the profile, `initialize`,
//! `send-before`, `run-before` of the section, the steps (for a backup: check-before,
//! retention before, backup, retention after, check-after), `run-after` of the section and
//! of the profile, `send-after`. On a failure anywhere: `send-after-fail`, `run-after-fail`
//! of the section then of the profile (never `run-after`). Always: `run-finally` of the
//! section then of the profile, `send-finally`. The steps themselves are run by the caller
//! ([`StepRunner`]); status, metrics, webhooks and the run lock plug in through [`Reporter`].
//! Each repository step's stderr is watched while it runs (`stream-error`) and its end kept
//! (`ERROR_STDERR`, the status file's `stderr`).

use crate::capture::{OnLine, StderrCapture};
use crate::outcome::{BackupCounts, RunOutcome};
use crate::resolve::{Plan, Step, StepKind};
use crate::streamerr::{Matcher, Rule};
use serde_json::Value;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// What running one step gave.
#[derive(Debug, Clone, Default)]
pub struct StepResult {
    /// restic's exit code.
    pub exit_code: i32,
    /// The error line, when it failed.
    pub error: Option<String>,
    pub backup: Option<BackupCounts>,
    pub stderr: Option<String>,
}

/// Runs one step (a cairn command line) with extra environment variables.
pub trait StepRunner {
    fn run(&self, step: &Step, env: &[(String, String)]) -> StepResult;
    /// Whether the step writes to this process's stderr (it runs in-process): then
    /// [`run_plan`] captures fd 2 around it for `stream-error` and `ERROR_STDERR`
    /// ([`crate::capture`]). Otherwise the step's [`StepResult::stderr`] is what is matched.
    fn shares_stderr(&self) -> bool {
        false
    }
}

/// What the reporters see of the run.
pub struct Context<'a> {
    pub config_file: &'a Path,
    pub profile: &'a str,
    /// The command as asked ("backup", "check", …).
    pub command: &'a str,
    /// The profile after inheritance and path resolution, keys as in the file
    /// (`status-file`, `prometheus-*`, `schedule-lock-*` …).
    pub profile_section: &'a Value,
    /// The command's section (`send-*`), or null.
    pub command_section: &'a Value,
    /// The profile's environment (for webhooks' templates).
    pub env: &'a [(String, String)],
}

/// The hook points for status file, metrics, webhooks and the non-overlap lock. Every
/// method has a default that does nothing, so each part plugs in alone.
pub trait Reporter {
    /// Before anything runs. An error stops the run: nothing runs, the outcome is a failure
    /// with exit code 1 (a lock held by another run, say). The returned guard is dropped
    /// when the run ends.
    fn lock(&self, _ctx: &Context<'_>) -> Result<Option<Box<dyn std::any::Any>>, String> {
        Ok(None)
    }
    /// After the profile's `run-before` and `initialize`, before the command (`send-before`).
    fn before(&self, _ctx: &Context<'_>) {}
    /// After each repository step (backup, retention, check, …), and once for the command
    /// when it failed before its own step ran (status file, metrics).
    fn step(&self, _ctx: &Context<'_>, _outcome: &RunOutcome) {}
    /// After everything, hooks included: `send-after` or `send-after-fail`, then
    /// `send-finally`.
    fn after(&self, _ctx: &Context<'_>, _outcome: &RunOutcome) {}
}

/// A reporter that does nothing.
pub struct NoReporter;
impl Reporter for NoReporter {}

/// Several reporters, called in order.
pub struct Reporters(pub Vec<Box<dyn Reporter>>);

impl Reporter for Reporters {
    fn lock(&self, ctx: &Context<'_>) -> Result<Option<Box<dyn std::any::Any>>, String> {
        let mut guards: Vec<Box<dyn std::any::Any>> = Vec::new();
        for r in &self.0 {
            if let Some(g) = r.lock(ctx)? {
                guards.push(g);
            }
        }
        Ok((!guards.is_empty()).then(|| Box::new(guards) as Box<dyn std::any::Any>))
    }
    fn before(&self, ctx: &Context<'_>) {
        self.0.iter().for_each(|r| r.before(ctx));
    }
    fn step(&self, ctx: &Context<'_>, o: &RunOutcome) {
        self.0.iter().for_each(|r| r.step(ctx, o));
    }
    fn after(&self, ctx: &Context<'_>, o: &RunOutcome) {
        self.0.iter().for_each(|r| r.after(ctx, o));
    }
}

/// Why the run failed, for `run-after-fail`'s environment.
#[derive(Debug, Clone)]
struct Failure {
    message: String,
    command_line: String,
    exit_code: i32,
    stderr: String,
}

/// Runs a plan; the outcome's `exit_code` is what cairn exits with.
pub fn run_plan(plan: &Plan, runner: &dyn StepRunner, reporter: &dyn Reporter) -> RunOutcome {
    run_plan_in(plan, None, runner, reporter)
}

/// Runs a plan as part of `group` (a label of the metrics) when one is named.
fn run_plan_in(
    plan: &Plan,
    group: Option<&str>,
    runner: &dyn StepRunner,
    reporter: &dyn Reporter,
) -> RunOutcome {
    let group = group.map(str::to_string);
    let started = chrono::Local::now();
    let clock = Instant::now();
    let ctx = Context {
        config_file: &plan.config_file,
        profile: &plan.profile,
        command: &plan.command,
        profile_section: &plan.profile_section,
        command_section: &plan.command_section,
        env: &plan.env,
    };
    let outcome = |failure: Option<&Failure>, backup: Option<BackupCounts>| RunOutcome {
        profile: plan.profile.clone(),
        command: plan.command.clone(),
        success: failure.is_none(),
        exit_code: failure.map_or(0, |f| f.exit_code),
        started,
        duration: clock.elapsed(),
        error: failure.map(|f| f.message.clone()),
        stderr: failure.map(|f| f.stderr.clone()).filter(|s| !s.is_empty()),
        backup,
        command_line: failure
            .map(|f| f.command_line.clone())
            .filter(|s| !s.is_empty()),
        group: group.clone(),
    };
    let _guard = match reporter.lock(&ctx) {
        Ok(g) => g,
        Err(message) => {
            eprintln!("profile '{}': {message}", plan.profile);
            let f = Failure {
                message,
                command_line: String::new(),
                exit_code: 1,
                stderr: String::new(),
            };
            return outcome(Some(&f), None);
        }
    };

    let hooks = Hooks { plan, ctx: &ctx };
    let mut backup = None;
    let mut main_reported = false;
    let result = (|| -> Result<(), Failure> {
        hooks.run_list(&plan.profile_hooks.before, "run-before", None)?;
        for step in plan
            .steps
            .iter()
            .filter(|s| s.kind == StepKind::InitIfMissing)
        {
            // resticprofile ignores a failed initialization: the command that follows
            // reports what is wrong with the repository.
            let _ = runner.run(step, &plan.env);
        }
        reporter.before(&ctx);
        hooks.run_list(&plan.section_hooks.before, "run-before", None)?;
        for step in plan
            .steps
            .iter()
            .filter(|s| s.kind != StepKind::InitIfMissing)
        {
            let step_clock = Instant::now();
            let step_started = chrono::Local::now();
            eprintln!("profile '{}': starting '{}'", plan.profile, step.label);
            let r = run_watched(plan, runner, step);
            let ok = step.ok_codes.contains(&r.exit_code);
            if step.kind == StepKind::Main {
                main_reported = true;
                backup = r.backup.clone();
            }
            let step_outcome = RunOutcome {
                profile: plan.profile.clone(),
                command: step.label.clone(),
                success: ok,
                exit_code: r.exit_code,
                started: step_started,
                duration: step_clock.elapsed(),
                error: if ok { None } else { r.error.clone() },
                stderr: r.stderr.clone(),
                backup: r.backup.clone(),
                command_line: (!ok).then(|| step.display()),
                group: group.clone(),
            };
            reporter.step(&ctx, &step_outcome);
            if !ok {
                return Err(Failure {
                    message: r.error.unwrap_or_else(|| {
                        format!("{} failed with exit code {}", step.label, r.exit_code)
                    }),
                    command_line: step.display(),
                    exit_code: r.exit_code,
                    stderr: r.stderr.unwrap_or_default(),
                });
            }
            eprintln!("profile '{}': finished '{}'", plan.profile, step.label);
        }
        hooks.run_list(&plan.section_hooks.after, "run-after", None)?;
        hooks.run_list(&plan.profile_hooks.after, "run-after", None)?;
        Ok(())
    })();

    let failure = result.err();
    if let Some(f) = &failure {
        eprintln!(
            "profile '{}': {} failed: {}",
            plan.profile, plan.command, f.message
        );
        if !main_reported {
            // The command never ran (a hook failed first): status and metrics still
            // record the failure.
            reporter.step(&ctx, &outcome(Some(f), None));
        }
        if hooks
            .run_list(&plan.section_hooks.after_fail, "run-after-fail", Some(f))
            .is_ok()
        {
            let _ = hooks.run_list(&plan.profile_hooks.after_fail, "run-after-fail", Some(f));
        }
    }
    for cmd in plan
        .section_hooks
        .finally
        .iter()
        .chain(&plan.profile_hooks.finally)
    {
        if let Err(e) = hooks.run_one(cmd, failure.as_ref()) {
            eprintln!(
                "profile '{}': run-finally failed: {}",
                plan.profile, e.message
            );
        }
    }
    let done = outcome(failure.as_ref(), backup);
    reporter.after(&ctx, &done);
    done
}

/// Runs one repository step with its stderr watched: `stream-error` rules see each line as
/// it comes, and the step's stderr (its end) is kept for `ERROR_STDERR` and the status file.
fn run_watched(plan: &Plan, runner: &dyn StepRunner, step: &Step) -> StepResult {
    let starter = || StreamErrorStarter {
        env: stream_error_env(plan),
        work_dir: plan.work_dir.clone(),
    };
    if runner.shares_stderr() {
        let starter = starter();
        let mut matcher = Matcher::new(plan.stream_errors.clone());
        let on_line: Option<OnLine> = (!matcher.is_empty()).then(|| {
            Box::new(move |line: &str, real: &File| {
                for rule in matcher.line(line) {
                    starter.start(rule, line, Some(real));
                }
            }) as OnLine
        });
        match StderrCapture::start(on_line) {
            Ok(capture) => {
                let mut r = runner.run(step, &plan.env);
                let text = capture.finish();
                if !text.trim().is_empty() {
                    r.stderr = Some(text);
                }
                return r;
            }
            Err(e) => eprintln!(
                "warning: profile '{}': stderr of {} not watched: {e}",
                plan.profile, step.label
            ),
        }
    }
    let r = runner.run(step, &plan.env);
    let starter = starter();
    let mut matcher = Matcher::new(plan.stream_errors.clone());
    for line in r.stderr.as_deref().unwrap_or_default().lines() {
        for rule in matcher.line(line) {
            starter.start(rule, line, None);
        }
    }
    r
}

/// The environment of `stream-error` commands: the profile's, with `PROFILE_NAME` and
/// `PROFILE_COMMAND`, as the monitored command has it in resticprofile.
fn stream_error_env(plan: &Plan) -> Vec<(String, String)> {
    let mut env = plan.env.clone();
    env.push(("PROFILE_NAME".into(), plan.profile.clone()));
    env.push(("PROFILE_COMMAND".into(), plan.command.clone()));
    env
}

/// Starts `stream-error` commands.
struct StreamErrorStarter {
    env: Vec<(String, String)>,
    work_dir: Option<PathBuf>,
}

impl StreamErrorStarter {
    /// Runs `rule.run` with `sh -c`, the matching line on its stdin, and waits for it (the
    /// step's output waits too, as in resticprofile). Its stderr goes to `real` (the
    /// terminal, not back into the watched pipe). A failure is a warning: it never fails the
    /// step.
    fn start(&self, rule: &Rule, line: &str, real: Option<&File>) {
        let warn = |msg: String| match real {
            Some(mut f) => {
                let _ = writeln!(f, "warning: {msg}");
            }
            None => eprintln!("warning: {msg}"),
        };
        let mut c = Command::new("sh");
        c.arg("-c").arg(&rule.run).stdin(Stdio::piped());
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(d) = &self.work_dir {
            c.current_dir(d);
        }
        if let Some(f) = real {
            match f.try_clone() {
                Ok(f) => {
                    c.stderr(Stdio::from(f));
                }
                Err(e) => return warn(format!("stream-error {:?}: {e}", rule.run)),
            }
        }
        let mut child = match c.spawn() {
            Ok(ch) => ch,
            Err(e) => return warn(format!("stream-error {:?} cannot start: {e}", rule.run)),
        };
        if let Some(mut stdin) = child.stdin.take() {
            // The line without its newline, as resticprofile gives it. A command that does
            // not read its stdin closes it: not an error.
            let _ = stdin.write_all(line.as_bytes());
        }
        match child.wait() {
            Ok(st) if st.success() => {}
            Ok(st) => warn(format!(
                "stream-error action {:?} failed: exit code {}",
                rule.run,
                st.code().unwrap_or(-1)
            )),
            Err(e) => warn(format!("stream-error {:?}: {e}", rule.run)),
        }
    }
}

/// Shell hooks with resticprofile's environment.
struct Hooks<'a> {
    plan: &'a Plan,
    ctx: &'a Context<'a>,
}

impl Hooks<'_> {
    /// Runs the commands in order, stopping at the first that fails.
    fn run_list(
        &self,
        cmds: &[String],
        what: &str,
        failure: Option<&Failure>,
    ) -> Result<(), Failure> {
        for cmd in cmds {
            self.run_one(cmd, failure).map_err(|mut f| {
                f.message = format!("{what} on profile '{}': {}", self.plan.profile, f.message);
                f
            })?;
        }
        Ok(())
    }

    fn run_one(&self, cmd: &str, failure: Option<&Failure>) -> Result<(), Failure> {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(cmd)
            .stdin(Stdio::null())
            .stderr(Stdio::piped());
        c.envs(self.plan.env.iter().map(|(k, v)| (k, v)));
        c.env("PROFILE_NAME", self.ctx.profile);
        c.env("PROFILE_COMMAND", self.ctx.command);
        if let Some(f) = failure {
            c.env("ERROR", &f.message).env("ERROR_MESSAGE", &f.message);
            if !f.command_line.is_empty() {
                c.env("ERROR_COMMANDLINE", &f.command_line);
            }
            c.env("ERROR_EXIT_CODE", f.exit_code.to_string());
            if !f.stderr.is_empty() {
                c.env("ERROR_STDERR", &f.stderr)
                    .env("RESTIC_STDERR", &f.stderr);
            }
        }
        if let Some(d) = &self.plan.work_dir {
            c.current_dir(d);
        }
        let fail = |message: String, code: i32, stderr: String| Failure {
            message,
            command_line: cmd.to_string(),
            exit_code: code,
            stderr,
        };
        let child = c
            .spawn()
            .map_err(|e| fail(format!("cannot start {cmd:?}: {e}"), 1, String::new()))?;
        let out = child
            .wait_with_output()
            .map_err(|e| fail(format!("waiting for {cmd:?}: {e}"), 1, String::new()))?;
        // The hook's stderr goes where ours goes, and is kept for ERROR_STDERR (bounded).
        let stderr =
            String::from_utf8_lossy(&out.stderr[..out.stderr.len().min(64 << 10)]).into_owned();
        eprint!("{stderr}");
        if !out.status.success() {
            let code = out.status.code().unwrap_or(1);
            return Err(fail(format!("{cmd:?} exited with code {code}"), 1, stderr));
        }
        Ok(())
    }
}

/// Runs group `group`'s profiles one after another (their outcomes and metrics carry the
/// group's name); stops at the first failure unless `continue_on_error`. Returns the outcome of each profile that ran, in order.
pub fn run_group(
    group: &str,
    plans: &[Plan],
    continue_on_error: bool,
    runner: &dyn StepRunner,
    reporter: &dyn Reporter,
) -> Vec<RunOutcome> {
    let mut out = Vec::new();
    for plan in plans {
        let o = run_plan_in(plan, Some(group), runner, reporter);
        let failed = !o.success;
        // Ctrl-C ends the group, whatever continue-on-error says.
        let interrupted = o.exit_code == 130;
        out.push(o);
        if interrupted || (failed && !continue_on_error) {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests;

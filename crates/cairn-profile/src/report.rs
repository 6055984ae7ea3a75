//! The reporter every profile run uses: status file and Prometheus metrics after each step,
//! webhooks before and after the command. None of them can fail a run; what goes wrong is a
//! warning on stderr.

use crate::metrics;
use crate::notify::{self, When};
use crate::outcome::RunOutcome;
use crate::profilelock;
use crate::run::{Context, Reporter};
use crate::status;
use serde_json::Value;

/// Status, metrics and webhooks as the profile's keys ask for them.
pub struct Standard {
    /// The configuration's `[global]` section (`send-timeout`, `ca-certificates`).
    pub global: Value,
    /// Set when `run-schedule` started this run: its lock mode and wait for `lock`.
    pub scheduled: Option<profilelock::Scheduled>,
}

fn warn(warnings: Vec<String>) {
    for w in warnings {
        eprintln!("warning: {w}");
    }
}

impl Reporter for Standard {
    /// The profile's `lock` file, held for the whole run.
    fn lock(&self, ctx: &Context<'_>) -> Result<Option<Box<dyn std::any::Any>>, String> {
        let Some(path) = ctx
            .profile_section
            .get("lock")
            .and_then(Value::as_str)
            .filter(|p| !p.is_empty())
        else {
            return Ok(None);
        };
        let force = ctx
            .profile_section
            .get("force-inactive-lock")
            .is_some_and(crate::config::truthy);
        let wait = match self.scheduled {
            Some(profilelock::Scheduled::Ignore) => return Ok(None),
            Some(profilelock::Scheduled::Wait(w)) => w,
            None => std::time::Duration::ZERO,
        };
        let held = profilelock::acquire(std::path::Path::new(path), force, wait)?;
        Ok(held.map(|l| Box::new(l) as Box<dyn std::any::Any>))
    }

    fn before(&self, ctx: &Context<'_>) {
        warn(notify::send(
            When::Before,
            ctx.profile,
            ctx.command,
            ctx.command_section,
            &self.global,
            None,
        ));
    }

    fn step(&self, ctx: &Context<'_>, outcome: &RunOutcome) {
        if let Err(e) = status::record(ctx.profile_section, outcome) {
            eprintln!("warning: status file: {e:#}");
        }
        warn(metrics::export(ctx.profile_section, &self.global, outcome));
    }

    fn after(&self, ctx: &Context<'_>, outcome: &RunOutcome) {
        let when = if outcome.success {
            When::After
        } else {
            When::AfterFail
        };
        for when in [when, When::Finally] {
            warn(notify::send(
                when,
                ctx.profile,
                ctx.command,
                ctx.command_section,
                &self.global,
                Some(outcome),
            ));
        }
    }
}

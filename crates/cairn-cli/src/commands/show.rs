//! `show -P NAME`: a profile as cairn resolves it (inheritance, paths, the `true`
//! shorthands): for each command, the cairn command lines it runs; its environment with
//! secrets masked; its hooks, `stream-error` rules and `lock` file.

use crate::global::GlobalOptions;
use crate::profile_run;
use cairn_profile::config::Target;
use cairn_profile::resolve::{self, mask_env_value, Overrides};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let config = profile_run::load_config(g)?;
    let spec = profile_run::flag_spec();
    let name = g.profile.as_deref().unwrap_or(profile_run::DEFAULT_PROFILE);
    let names: Vec<String> = match config.target(name)? {
        Target::Profile(p) => vec![p.to_string()],
        Target::Group(grp) => {
            println!(
                "group {} ({}): {}",
                grp.name,
                config.path.display(),
                grp.profiles.join(", ")
            );
            grp.profiles.clone()
        }
    };
    for name in names {
        let p = resolve::profile(&config, &name, &spec)?;
        println!();
        println!("profile {name} ({})", config.path.display());
        if let Some(d) = p.description() {
            println!("  description: {d}");
        }
        for command in p.sections() {
            let plan = p.plan(&command, &spec, &Overrides::default())?;
            println!("  {command}:");
            for step in &plan.steps {
                println!("    {}", step.display());
            }
            show_hooks("    ", &plan.section_hooks);
        }
        let plan = p.plan("snapshots", &spec, &Overrides::default())?;
        if !plan.env.is_empty() {
            println!("  env:");
            for (k, v) in &plan.env {
                println!("    {k}={}", mask_env_value(k, v));
            }
        }
        show_hooks("  ", &plan.profile_hooks);
        for r in &plan.stream_errors {
            println!(
                "  stream-error: /{}/ (min-matches {}, max-runs {}): {}",
                r.pattern.as_str(),
                r.min_matches,
                r.max_runs,
                r.run
            );
        }
        if let Some(lock) = p.table.get("lock").and_then(|v| v.as_str()) {
            println!("  lock: {lock}");
        }
    }
    Ok(crate::exit::OK)
}

fn show_hooks(indent: &str, h: &resolve::Hooks) {
    for (what, list) in [
        ("run-before", &h.before),
        ("run-after", &h.after),
        ("run-after-fail", &h.after_fail),
        ("run-finally", &h.finally),
    ] {
        for cmd in list {
            println!("{indent}{what}: {cmd}");
        }
    }
}

//! `profiles`: the profiles and groups of the configuration file, with their commands.

use crate::global::GlobalOptions;
use crate::profile_run;
use cairn_profile::resolve;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let config = profile_run::load_config(g)?;
    let spec = profile_run::flag_spec();
    println!("configuration: {}", config.path.display());
    println!();
    println!("profiles:");
    for name in config.profiles.keys() {
        // A profile that does not resolve is listed with its error, not hidden.
        match resolve::profile(&config, name, &spec) {
            Ok(p) => {
                let sections = p.sections().join(", ");
                let desc = p
                    .description()
                    .map(|d| format!("  {d}"))
                    .unwrap_or_default();
                println!("  {name:<20} ({sections}){desc}");
            }
            Err(e) => println!("  {name:<20} error: {e:#}"),
        }
    }
    if !config.groups.is_empty() {
        println!();
        println!("groups:");
        for grp in &config.groups {
            let desc = grp
                .description
                .as_deref()
                .map(|d| format!("  {d}"))
                .unwrap_or_default();
            println!("  {:<20} [{}]{desc}", grp.name, grp.profiles.join(", "));
        }
    }
    Ok(crate::exit::OK)
}

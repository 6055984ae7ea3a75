//! `options`: the extended options (`-o key=value`) cairn's backends read.

use crate::global::GlobalOptions;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_a: Args, _g: &GlobalOptions) -> anyhow::Result<i32> {
    println!("All Extended Options:");
    let width = cairn_core::EXTENDED_OPTIONS
        .iter()
        .map(|(k, _)| k.len())
        .max()
        .unwrap_or(0);
    for (key, what) in cairn_core::EXTENDED_OPTIONS {
        println!("  {key:<width$}  {what}");
    }
    Ok(crate::exit::OK)
}

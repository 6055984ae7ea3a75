//! `recover` (restic 0.18): a new snapshot, `/recover` tagged `recovered`, of the trees no
//! snapshot refers to. The work is the core's ([`cairn_core::recover`]).

use crate::global::{self, GlobalOptions};
use crate::printer::{printer, During};

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let compression = g.compression()?;
    let repo = g.open_exclusive()?;
    let obs = printer(g, During::Maintenance, false);
    cairn_core::recover::recover(repo, &global::hostname(), compression, &obs)?;
    Ok(crate::exit::OK)
}

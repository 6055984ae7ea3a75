//! `unlock`: removes stale locks (or all of them) left by other processes, and unreadable
//! lock files (too big, undecryptable, undecodable or not a lock), naming each of those.

use crate::global::GlobalOptions;
use crate::printer::{printer, During};

#[derive(clap::Args)]
pub struct Args {
    /// Remove all locks, even non-stale ones
    #[arg(long)]
    remove_all: bool,
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let repo = g.open_unlocked()?;
    let removed =
        cairn_core::lock::remove_locks(&repo, a.remove_all, &printer(g, During::Unlock, false))?;
    if !g.quiet {
        if g.verbose > 0 {
            println!("removed {removed} lock(s)");
        }
        println!("successfully removed locks");
    }
    Ok(crate::exit::OK)
}

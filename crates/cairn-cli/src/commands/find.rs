use crate::global::GlobalOptions;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_a: Args, _g: &GlobalOptions) -> anyhow::Result<i32> {
    anyhow::bail!("find is not implemented yet")
}

use crate::global::GlobalOptions;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let version = env!("CARGO_PKG_VERSION");
    let (os, arch) = (std::env::consts::OS, std::env::consts::ARCH);
    if g.json {
        let m = serde_json::json!({"message_type": "version", "version": version, "go_os": os, "go_arch": arch});
        println!("{m}");
    } else {
        println!("cairn {version} on {os}/{arch} (restic repository format v1 and v2)");
    }
    Ok(crate::exit::OK)
}

use crate::global::{self, GlobalOptions};
use cairn_core::repository::{InitOptions, Repository};
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Repository format version to create: 1 or 2 ("latest" = 2)
    #[arg(long, default_value = "stable")]
    repository_version: String,
    /// File to read the password of the new repository from (overrides -p for init)
    #[arg(long, hide = true)]
    new_password_file: Option<PathBuf>,
    /// Copy chunker parameters from the secondary repository (useful with the copy command)
    #[arg(long)]
    copy_chunker_params: bool,
    #[command(flatten)]
    from: super::copy::FromRepo,
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let version = match a.repository_version.as_str() {
        "1" => 1,
        "2" | "latest" | "stable" => 2,
        v => anyhow::bail!("unsupported repository version {v:?} (use 1 or 2)"),
    };
    let backend = g.backend()?;
    if backend.exists().map_err(anyhow::Error::new)? {
        anyhow::bail!(
            "create repository at {} failed: config file already exists",
            backend.location()
        );
    }
    // The other repository is opened first, as restic does (its password is asked first).
    let polynomial = if a.copy_chunker_params {
        Some(a.from.open("secondary", g)?.polynomial())
    } else if a.from.is_set() {
        anyhow::bail!(
            "Secondary repository must only be specified when copying the chunker parameters"
        );
    } else {
        None
    };
    let pw = global::new_password(
        g,
        a.new_password_file.as_ref(),
        g.insecure_no_password,
        "new repository",
    )?;
    let repo = Repository::init(
        backend,
        &pw,
        InitOptions {
            version,
            kdf: global::kdf_params(),
            polynomial,
            username: global::username(),
            hostname: global::hostname(),
        },
    )?;
    let loc = g.repository()?;
    if g.json {
        println!(
            "{}",
            serde_json::json!({"message_type": "initialized", "id": repo.config().id, "repository": loc})
        );
    } else if !g.quiet {
        println!(
            "created restic repository {} at {}",
            &repo.config().id[..10],
            loc
        );
        println!();
        println!("Please note that knowledge of your password is required to access");
        println!("the repository. Losing your password means that your data is");
        println!("irrecoverably lost.");
    }
    Ok(crate::exit::OK)
}

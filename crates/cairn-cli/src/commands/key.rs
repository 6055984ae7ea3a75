use crate::global::{self, GlobalOptions};
use cairn_core::format::gotime;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// list, add, remove or passwd
    action: String,
    /// Key ID (for remove)
    id: Option<String>,
    /// File from which to read the new password
    #[arg(long)]
    new_password_file: Option<PathBuf>,
    /// Add an empty password for the repository (insecure)
    #[arg(long)]
    new_insecure_no_password: bool,
    /// The username for the new key (default: current user)
    #[arg(long)]
    user: Option<String>,
    /// The hostname for the new key (default: this host)
    #[arg(long)]
    host: Option<String>,
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    // As restic: removing or replacing a key excludes everything else.
    let repo = match a.action.as_str() {
        "remove" | "passwd" => g.open_exclusive()?,
        _ => g.open()?,
    };
    match a.action.as_str() {
        "list" => {
            let mut rows = Vec::new();
            for k in cairn_core::keys::list_keys(&repo)? {
                let k = match k {
                    Ok(k) => k,
                    Err((id, e)) => {
                        eprintln!(
                            "LoadKey() failed: key {}: {e:#}",
                            id.get(..8).unwrap_or(&id)
                        );
                        continue;
                    }
                };
                let created = gotime::parse_rfc3339(&k.created)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default();
                rows.push((
                    k.current,
                    k.id.get(..8).unwrap_or(&k.id).to_string(),
                    k.username,
                    k.hostname,
                    created,
                ));
            }
            if g.json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(cur, id, u, h, c)| serde_json::json!({"current": cur, "id": id, "userName": u, "hostName": h, "created": c}))
                    .collect();
                println!("{}", serde_json::Value::Array(v));
            } else {
                let uw = rows.iter().map(|r| r.2.len()).max().unwrap_or(0).max(4);
                let hw = rows.iter().map(|r| r.3.len()).max().unwrap_or(0).max(4);
                let header = format!(" ID        {:<uw$}  {:<hw$}  Created", "User", "Host");
                let rule = "-".repeat(header.len() + 12);
                println!("{header}");
                println!("{rule}");
                for (cur, id, u, h, c) in &rows {
                    println!(
                        "{}{id}  {u:<uw$}  {h:<hw$}  {c}",
                        if *cur { '*' } else { ' ' }
                    );
                }
                println!("{rule}");
            }
        }
        "add" => {
            let (pw, user, host) = new_key(g, &a)?;
            let id = repo.add_key(&pw, global::kdf_params(), &user, &host)?;
            if !g.quiet {
                println!("saved new key as <Key of {user}@{host}, id {}>", &id[..8]);
            }
        }
        "remove" => {
            let prefix =
                a.id.clone()
                    .ok_or_else(|| anyhow::anyhow!("key remove needs a key ID"))?;
            let id = cairn_core::keys::remove_key(&repo, &prefix)?;
            if !g.quiet {
                println!("removed key {id}");
            }
        }
        "passwd" => {
            let (pw, user, host) = new_key(g, &a)?;
            cairn_core::keys::change_password(&repo, &pw, global::kdf_params(), &user, &host)?;
            if !g.quiet {
                println!("saved new key");
            }
        }
        other => anyhow::bail!("unknown key action {other:?}: use list, add, remove or passwd"),
    }
    Ok(crate::exit::OK)
}

/// The new key's password, user and host (`key add`, `key passwd`).
fn new_key(g: &GlobalOptions, a: &Args) -> anyhow::Result<(Vec<u8>, String, String)> {
    let pw = global::new_password(
        g,
        a.new_password_file.as_ref(),
        a.new_insecure_no_password,
        "the new key",
    )?;
    let user = a.user.clone().unwrap_or_else(global::username);
    let host = a.host.clone().unwrap_or_else(global::hostname);
    Ok((pw, user, host))
}

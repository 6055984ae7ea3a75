use crate::global::{self, GlobalOptions};
use cairn_backend::{FileType, Handle};
use cairn_core::format::gotime;
use cairn_core::format::keyfile::KeyFile;
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
            for f in repo.backend().list(FileType::Key)? {
                if let Err(e) = cairn_core::format::limits::check_stored(FileType::Key, f.size) {
                    eprintln!(
                        "LoadKey() failed: key {}: {e}",
                        f.name.get(..8).unwrap_or(&f.name)
                    );
                    continue;
                }
                let raw = repo
                    .backend()
                    .load(&Handle::new(FileType::Key, &f.name), 0, 0)?;
                let kf = match KeyFile::parse(&raw) {
                    Ok(k) => k,
                    Err(e) => {
                        eprintln!(
                            "LoadKey() failed: key {}: {e:#}",
                            f.name.get(..8).unwrap_or(&f.name)
                        );
                        continue;
                    }
                };
                let created = gotime::parse_rfc3339(&kf.created)
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default();
                rows.push((
                    f.name == repo.key_id(),
                    f.name[..8].to_string(),
                    kf.username,
                    kf.hostname,
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
            let pw = global::new_password(g, a.new_password_file.as_ref(), "the new key")?;
            let user = a.user.clone().unwrap_or_else(global::username);
            let host = a.host.clone().unwrap_or_else(global::hostname);
            let id = repo.add_key(&pw, global::kdf_params(), &user, &host)?;
            if !g.quiet {
                println!("saved new key as <Key of {user}@{host}, id {}>", &id[..8]);
            }
        }
        "remove" => {
            let prefix =
                a.id.clone()
                    .ok_or_else(|| anyhow::anyhow!("key remove needs a key ID"))?;
            let id = repo.find_id(FileType::Key, &prefix)?.to_hex();
            if id == repo.key_id() {
                anyhow::bail!("refusing to remove key currently used to access repository");
            }
            repo.backend().remove(&Handle::new(FileType::Key, &id))?;
            if !g.quiet {
                println!("removed key {id}");
            }
        }
        "passwd" => {
            let pw = global::new_password(g, a.new_password_file.as_ref(), "the new key")?;
            let user = a.user.clone().unwrap_or_else(global::username);
            let host = a.host.clone().unwrap_or_else(global::hostname);
            // The new key is durable before the old one goes, so a crash never locks you out.
            repo.add_key(&pw, global::kdf_params(), &user, &host)?;
            repo.backend()
                .remove(&Handle::new(FileType::Key, repo.key_id()))?;
            if !g.quiet {
                println!("saved new key");
            }
        }
        other => anyhow::bail!("unknown key action {other:?}: use list, add, remove or passwd"),
    }
    Ok(crate::exit::OK)
}

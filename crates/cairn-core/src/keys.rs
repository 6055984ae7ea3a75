//! The repository's key files: listing them, adding, removing and replacing the one in use.

use crate::format::keyfile::{KdfParams, KeyFile};
use crate::format::limits;
use crate::repository::Repository;
use anyhow::Context;
use cairn_backend::{FileType, Handle};

/// One key file, as `key list` shows it.
#[derive(Clone, Debug)]
pub struct KeyInfo {
    /// The key file's name (a hex id).
    pub id: String,
    /// The key the repository was opened with.
    pub current: bool,
    pub username: String,
    pub hostname: String,
    /// When it was created, as stored (RFC 3339).
    pub created: String,
}

/// Every key file; one that is too large or does not parse is an error of its own (named by
/// its id), not a reason to hide the others.
pub fn list_keys(repo: &Repository) -> crate::Result<Vec<Result<KeyInfo, (String, crate::Error)>>> {
    let files = repo
        .backend()
        .list(FileType::Key)
        .map_err(anyhow::Error::new)
        .context("listing keys")?;
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        let read = || -> anyhow::Result<KeyInfo> {
            limits::check_stored(FileType::Key, f.size)?;
            let raw =
                limits::load_bounded(&**repo.backend(), &Handle::new(FileType::Key, &f.name))?;
            let kf = KeyFile::parse(&raw)?;
            Ok(KeyInfo {
                current: f.name == repo.key_id(),
                id: f.name.clone(),
                username: kf.username,
                hostname: kf.hostname,
                created: kf.created,
            })
        };
        out.push(read().map_err(|e| {
            let object = crate::Object::Key(f.name.clone());
            (f.name.clone(), crate::Error::loading(object)(e))
        }));
    }
    Ok(out)
}

/// Removes the key file an id prefix names; never the one in use.
pub fn remove_key(repo: &Repository, prefix: &str) -> crate::Result<String> {
    let id = repo.find_id(FileType::Key, prefix)?.to_hex();
    if id == repo.key_id() {
        crate::error::bail!("refusing to remove key currently used to access repository");
    }
    repo.backend()
        .remove(&Handle::new(FileType::Key, &id))
        .map_err(anyhow::Error::new)
        .with_context(|| format!("removing key {id}"))?;
    Ok(id)
}

/// Replaces the key in use by a new one for another password: the new key is stored durably
/// before the old one is removed, so a crash in between never locks anyone out. Returns the
/// new key's id.
pub fn change_password(
    repo: &Repository,
    password: &[u8],
    kdf: KdfParams,
    username: &str,
    hostname: &str,
) -> crate::Result<String> {
    let id = repo.add_key(password, kdf, username, hostname)?;
    repo.backend()
        .remove(&Handle::new(FileType::Key, repo.key_id()))
        .map_err(anyhow::Error::new)
        .with_context(|| format!("removing the old key {}", repo.key_id()))?;
    Ok(id)
}

//! Repository migrations (restic's `migrate`).

use crate::repository::Repository;
use anyhow::Context;
use cairn_backend::Handle;

/// Replaces the config with one of version 2 (same id and chunker polynomial). A copy of the
/// old file goes to a temporary folder first; if storing the new one fails, the old one is put
/// back (restic's `UpgradeRepoV2.Apply`).
pub fn upgrade_repo_v2(repo: &Repository) -> crate::Result<()> {
    let h = Handle::config();
    let old = crate::format::limits::load_bounded(&**repo.backend(), &h)
        .context("load config file failed")?;
    let dir = std::env::temp_dir().join(format!(
        "cairn-migrate-upgrade-repo-v2-{}",
        crate::Id::random().short()
    ));
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("create temp dir {} failed", dir.display()))?;
    let backup = dir.join("config");
    std::fs::write(&backup, &old)
        .with_context(|| format!("write config file backup to {} failed", dir.display()))?;

    let mut cfg = repo.config().clone();
    cfg.version = 2;
    // The config file is never compressed, in either version.
    let sealed = repo.key().seal(&serde_json::to_vec(&cfg)?);
    if let Err(e) = repo.backend().save(&h, &sealed) {
        let upload = anyhow::Error::new(e);
        let _ = repo.backend().remove(&h);
        return Err(match repo.backend().save(&h, &old) {
            Ok(()) => upload.context(format!(
                "error uploading config, re-uploaded old config was successful, there is a backup of the config file in {}",
                backup.display()
            )),
            Err(e2) => upload.context(format!(
                "error uploading config, re-uploading old config failed as well ({e2}), but there is a backup of the config file in {}",
                backup.display()
            )),
        }
        .into());
    }
    let _ = std::fs::remove_file(&backup);
    let _ = std::fs::remove_dir(&dir);
    Ok(())
}

//! Helpers for the unit tests of the engine.

use crate::format::keyfile::KdfParams;
use crate::repository::{InitOptions, Repository};
use cairn_backend::{Backend, LocalBackend};
use std::sync::Arc;

/// A new, empty v2 repository in a temporary directory (kept alive by the returned guard),
/// with cheap key derivation.
pub(crate) fn new_repo() -> (tempfile::TempDir, Repository) {
    let dir = tempfile::tempdir().expect("temp dir");
    let backend: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path().join("repo")));
    let repo = Repository::init(
        backend,
        b"pw",
        InitOptions {
            version: 2,
            kdf: KdfParams { n: 2, r: 1, p: 1 },
            polynomial: None,
            username: "u".into(),
            hostname: "h".into(),
        },
    )
    .expect("init");
    (dir, repo)
}

//! Errors that callers must tell apart (they map to restic's exit codes).

use crate::Id;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("repository does not exist: unable to open config file: {0}")]
    RepoNotFound(String),
    #[error("wrong password or no key found")]
    WrongPassword,
    #[error("ciphertext verification failed (invalid data or wrong key)")]
    Mac,
    #[error("blob {0} not found in index")]
    BlobNotFound(Id),
    #[error("no matching snapshot found for {0:?}")]
    NoSnapshot(String),
    #[error("interrupted")]
    Interrupted,
}

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

/// What kind of failure an error chain is, for front ends that must tell them apart (the
/// CLI maps these to restic's exit codes; a server or scheduler reports them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// No repository at the location (no config file).
    NoRepository,
    /// No key opens the repository with this password.
    WrongPassword,
    /// The repository is locked by someone else.
    Locked,
    /// Ctrl-C, SIGTERM or a caller's stop flag.
    Interrupted,
    /// Anything else.
    Other,
}

impl ErrorKind {
    /// The kind of the first cause in the chain that has one.
    pub fn of(e: &anyhow::Error) -> ErrorKind {
        for cause in e.chain() {
            if cause.downcast_ref::<crate::lock::LockError>().is_some() {
                return ErrorKind::Locked;
            }
            if let Some(ce) = cause.downcast_ref::<Error>() {
                return match ce {
                    Error::RepoNotFound(_) => ErrorKind::NoRepository,
                    Error::WrongPassword => ErrorKind::WrongPassword,
                    Error::Interrupted => ErrorKind::Interrupted,
                    _ => ErrorKind::Other,
                };
            }
        }
        ErrorKind::Other
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_found_under_context() {
        let e = anyhow::Error::new(Error::WrongPassword).context("opening repository");
        assert_eq!(ErrorKind::of(&e), ErrorKind::WrongPassword);
        let e = anyhow::Error::new(Error::Interrupted)
            .context("a")
            .context("b");
        assert_eq!(ErrorKind::of(&e), ErrorKind::Interrupted);
        let e = anyhow::Error::new(Error::Mac).context("pack 1234");
        assert_eq!(ErrorKind::of(&e), ErrorKind::Other);
        assert_eq!(ErrorKind::of(&anyhow::anyhow!("plain")), ErrorKind::Other);
    }
}

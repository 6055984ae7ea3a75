//! cairn-core: the restic repository format and cairn's backup and restore engine.
//!
//! Every operation lives here — opening and creating repositories, backup, restore, walking
//! trees, check, forget, prune, copy, rewrite, repair, migrations, keys, locks — and takes
//! options, returns results or plans, and reports progress through an observer trait. The
//! command line (`cairn-cli`) and any other front end only translate options and print.
//! Storage is a [`cairn_backend::Backend`]; see `docs/ARCHITECTURE.md` for the map.
//!
//! Data flows one way through the modules:
//! walk ([`archiver`]) → read → chunk ([`chunker`]) → hash ([`id`]) → skip known ([`index`])
//! → compress + encrypt ([`crypto`]) → pack ([`packer`]) → upload (backend) → index → snapshot.
//! [`restorer`] runs the same path backwards.
//!
//! A repository is first opened ([`Repository`]: key, config, snapshots, index files) and
//! then indexed ([`IndexedRepository`]: blobs and trees); only the second can read or write
//! blobs, so deduplicating against an index that was never loaded cannot happen.
//!
//! # Example: back up a directory, list snapshots, restore
//!
//! ```
//! use cairn_core::archiver::{self, BackupOptions};
//! use cairn_core::format::keyfile::KdfParams;
//! use cairn_core::observe::{Event, Observer};
//! use cairn_core::repository::InitOptions;
//! use cairn_core::restorer::{self, RestoreOptions};
//! use cairn_core::Repository;
//! use std::sync::atomic::AtomicBool;
//! use std::sync::Arc;
//!
//! // Every operation reports through one observer: here, errors and warnings go to stderr.
//! struct Log;
//! impl Observer for Log {
//!     fn event(&self, e: Event<'_>) {
//!         match e {
//!             Event::Error { path, error } => eprintln!("{}: {error:#}", path.display()),
//!             Event::Warning { message, .. } => eprintln!("{message}"),
//!             _ => {}
//!         }
//!     }
//! }
//!
//! # fn main() -> anyhow::Result<()> {
//! let tmp = tempfile::tempdir()?;
//! let source = tmp.path().join("source");
//! std::fs::create_dir_all(source.join("docs"))?;
//! std::fs::write(source.join("docs/notes.txt"), b"remember the milk\n")?;
//!
//! // Create a repository on a local disk (cheap key derivation: this is an example).
//! let backend = Arc::new(cairn_backend::local::LocalBackend::new(tmp.path().join("repo")));
//! let opts = InitOptions { kdf: KdfParams { n: 1024, r: 1, p: 1 }, ..Default::default() };
//! let mut repo = Repository::init(backend, b"secret", opts)?.load_index()?;
//!
//! // Back up the directory.
//! let stop = AtomicBool::new(false);
//! let backup = BackupOptions {
//!     paths: vec![source.clone()],
//!     hostname: "example".into(),
//!     ..Default::default()
//! };
//! let result = archiver::backup(&repo, &backup, &Log, &stop)?;
//! let id = result.snapshot_id.expect("a snapshot was written");
//! // The backup stored index files for what it added; reading them back makes those blobs
//! // readable through this handle too.
//! repo.reload_index()?;
//!
//! // List the snapshots.
//! let snapshots = repo.list_snapshots()?;
//! assert_eq!(snapshots.len(), 1);
//! assert_eq!(snapshots[0].0, id);
//!
//! // Restore it somewhere else.
//! let target = tmp.path().join("restored");
//! let restore = RestoreOptions {
//!     target: target.clone(),
//!     verify: true,
//!     ..Default::default()
//! };
//! let stats = restorer::restore(&repo, snapshots[0].1.tree, &restore, &Log, &stop)?;
//! assert_eq!(stats.errors, 0);
//! let restored = target.join(source.strip_prefix("/")?).join("docs/notes.txt");
//! assert_eq!(std::fs::read(restored)?, b"remember the milk\n");
//! # Ok(())
//! # }
//! ```

pub mod adopt;
pub mod archiver;
pub mod blobcache;
pub mod checker;
pub mod chunker;
pub mod content;
pub mod copy;
pub mod crypto;
pub mod diff;
pub mod error;
pub mod find;
pub mod forget;
pub mod format;
pub mod fuzzing;
pub mod id;
pub mod index;
pub mod keys;
pub mod lock;
pub mod migrate;
pub mod observe;
pub mod packer;
pub mod pruner;
pub mod recover;
pub mod repair;
pub mod repository;
pub mod restorer;
pub mod rewrite;
pub mod sizes;
pub mod snapshots;
#[cfg(test)]
mod testing;
pub mod util;
pub mod walk;

/// The local cache directories of repositories, for front ends that list or clean them.
pub mod cache {
    pub use cairn_backend::cache::{list_caches, CacheDir};
}

pub use cairn_backend::is_remote;
pub use cairn_backend::options::KNOWN as EXTENDED_OPTIONS;
pub use cairn_backend::FileType;
pub use error::{Error, ErrorKind, Object, Result};
pub use id::Id;
pub use repository::{IndexedRepository, Repository};

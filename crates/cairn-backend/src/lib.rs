//! Storage backends for cairn: where a restic repository's files live.
//!
//! A backend stores opaque, immutable files addressed by a [`Handle`] (a [`FileType`] and a
//! name, usually the file's SHA-256). It knows nothing of the repository format: encryption,
//! packs and indexes are cairn-core's business.
//!
//! # The trait
//!
//! [`Backend`] is deliberately small — save, load a range, stat, list, remove, plus
//! [`Backend::stage`]/[`Backend::save_staged`] for a file whose name is known only once it is
//! complete (a pack is named by its hash). Saves are durable before they return and never
//! visible half-written; files are never overwritten. Errors are a [`BackendError`] that
//! tells "does not exist" and "already exists" apart from I/O failures.
//!
//! Implementations, one module each: [`local`] (a directory), [`sftp`] (`ssh … -s sftp`),
//! [`rest`] (restic's REST protocol), [`s3`], [`b2`] (B2's sign-in, then its S3 API) and
//! [`rclone`] (`rclone serve restic`, driven through the REST backend).
//!
//! # Decorators
//!
//! Wrappers change a few methods of the backend they wrap and pass the rest through by
//! implementing [`Decorator`]: [`retry::RetryBackend`] (backoff within a time budget, removal
//! of half-written saves, whole-file loads checked against their hash) and
//! [`cache::CacheBackend`] (restic's local cache of snapshots, indexes and tree packs).
//!
//! # Opening a location
//!
//! [`open_with`] takes a location as restic writes it — a path or `local:PATH`,
//! `sftp:[user@]host:path`, `rest:http(s)://…`, `s3:host/bucket/prefix`, `b2:bucket:prefix`,
//! `rclone:remote:path` — and `-o key=value` [`Options`]; remote backends come wrapped in
//! the retry decorator. Failures are an [`OpenError`] saying what was wrong: an unsupported
//! scheme, a location that does not parse, a bad or unknown option, missing credentials, or a
//! store that cannot be reached.
//!
//! ```
//! use cairn_backend::{open_with, FileType, Handle, OpenError, Options};
//!
//! let dir = tempfile::tempdir()?;
//! let opts = Options::parse(&["local.connections=4"])?;
//! let be = open_with(&dir.path().to_string_lossy(), &opts)?;
//! be.create()?;
//! // Files are named by their SHA-256 (listings skip other names).
//! let name = "5e".repeat(32);
//! be.save(&Handle::new(FileType::Key, name.as_str()), b"key file")?;
//! assert_eq!(be.list(FileType::Key)?[0].name, name);
//!
//! // A typo in an option is refused rather than ignored.
//! let typo = Options::parse(&["s3.regoin=eu-west-1"])?;
//! let err = open_with(&dir.path().to_string_lossy(), &typo).err();
//! assert!(matches!(err, Some(OpenError::UnknownOption { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backend;
mod decorator;
mod location;
mod staged;

pub mod b2;
pub mod cache;
pub mod http;
pub mod limit;
pub mod local;
pub mod options;
pub mod rclone;
pub mod rest;
pub mod retry;
pub mod s3;
pub mod sftp;

pub use backend::{Backend, BackendError, FileInfo, FileType, Handle, Result};
pub use decorator::Decorator;
pub use local::LocalBackend;
pub use location::{is_remote, open, open_with, OpenError};
pub use options::Options;
pub use staged::Staged;

//! cairn-core: the restic repository format and cairn's backup and restore engine.
//!
//! Data flows one way through the modules:
//! walk ([`archiver`]) → read → chunk ([`chunker`]) → hash ([`id`]) → skip known ([`index`])
//! → compress + encrypt ([`crypto`]) → pack ([`packer`]) → upload (backend) → index → snapshot.
//! [`restorer`] runs the same path backwards.

pub mod adopt;
pub mod archiver;
pub mod checker;
pub mod chunker;
pub mod copy;
pub mod crypto;
pub mod error;
pub mod forget;
pub mod format;
pub mod fuzzing;
pub mod id;
pub mod index;
pub mod keys;
pub mod lock;
pub mod migrate;
pub mod packer;
pub mod pruner;
pub mod repair;
pub mod repository;
pub mod restorer;
pub mod rewrite;
pub mod walk;

pub use cairn_backend::FileType;
pub use error::Error;
pub use id::Id;
pub use repository::{IndexedRepository, Repository};

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
pub mod lock;
pub mod packer;
pub mod pruner;
pub mod repair;
pub mod repository;
pub mod restorer;
pub mod rewrite;
pub mod snapshots;
#[cfg(test)]
mod testing;
pub mod util;
pub mod walk;

pub use error::Error;
pub use id::Id;

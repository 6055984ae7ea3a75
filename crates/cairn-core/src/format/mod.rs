//! On-disk formats of a restic repository, each in its own module.

pub mod config;
pub mod gojson;
pub mod gotime;
pub mod indexfile;
pub mod keyfile;
pub mod limits;
pub mod pack;
pub mod snapshot;
pub mod tree;
pub mod unpacked;

//! Helpers that several parts of the engine (and its front ends) need and that belong to none
//! of them: Go's path and time semantics (restic's behaviour depends on them), this machine's
//! names, and a small parallel map.

pub mod gopath;
pub mod host;
pub mod parallel;
pub mod timeparse;

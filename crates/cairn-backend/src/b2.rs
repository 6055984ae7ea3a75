//! Backblaze B2 (`b2:bucket:prefix`). Not written yet.

use crate::{Backend, Options};

pub fn open(_spec: &str, _opts: &Options) -> std::result::Result<Box<dyn Backend>, String> {
    Err("the b2 backend is not supported by cairn yet".into())
}

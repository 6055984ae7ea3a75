//! S3 (`s3:https://host/bucket/prefix`, `s3:host/bucket/prefix`). Not written yet.

use crate::{Backend, FileInfo, FileType, Handle, Options, Result};

pub struct S3Backend;

impl S3Backend {
    pub fn open(_spec: &str, _opts: &Options) -> std::result::Result<S3Backend, String> {
        Err("the s3 backend is not supported by cairn yet".into())
    }
}

impl Backend for S3Backend {
    fn location(&self) -> String {
        unreachable!()
    }
    fn create(&self) -> Result<()> {
        unreachable!()
    }
    fn save(&self, _h: &Handle, _d: &[u8]) -> Result<()> {
        unreachable!()
    }
    fn load(&self, _h: &Handle, _o: u64, _l: u64) -> Result<Vec<u8>> {
        unreachable!()
    }
    fn stat(&self, _h: &Handle) -> Result<u64> {
        unreachable!()
    }
    fn list(&self, _k: FileType) -> Result<Vec<FileInfo>> {
        unreachable!()
    }
    fn remove(&self, _h: &Handle) -> Result<()> {
        unreachable!()
    }
}

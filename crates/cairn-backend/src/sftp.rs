//! SFTP (`sftp:user@host:/path`, `sftp://user@host:port//path`). Not written yet.

use crate::{Backend, FileInfo, FileType, Handle, Options, Result};

pub struct SftpBackend;

impl SftpBackend {
    pub fn open(_spec: &str, _opts: &Options) -> std::result::Result<SftpBackend, String> {
        Err("the sftp backend is not supported by cairn yet".into())
    }
}

impl Backend for SftpBackend {
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

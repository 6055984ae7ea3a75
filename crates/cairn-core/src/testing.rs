//! Helpers for the unit tests of the engine.

use crate::format::keyfile::KdfParams;
use crate::repository::{IndexedRepository, InitOptions, Repository};
use cairn_backend::{Backend, LocalBackend};
use std::sync::Arc;

/// A new, empty v2 repository in a temporary directory (kept alive by the returned guard),
/// with cheap key derivation.
pub(crate) fn new_repo() -> (tempfile::TempDir, IndexedRepository) {
    let dir = tempfile::tempdir().expect("temp dir");
    let backend: Arc<dyn Backend> = Arc::new(LocalBackend::new(dir.path().join("repo")));
    let repo = Repository::init(
        backend,
        b"pw",
        InitOptions {
            version: 2,
            kdf: KdfParams { n: 2, r: 1, p: 1 },
            polynomial: None,
            username: "u".into(),
            hostname: "h".into(),
        },
    )
    .expect("init")
    .load_index()
    .expect("index");
    (dir, repo)
}

/// Stores blobs through one writer and makes them visible in the repository's index.
pub(crate) struct Blobs<'r> {
    writer: Option<crate::packer::BlobWriter<'r>>,
}

impl<'r> Blobs<'r> {
    pub(crate) fn new(repo: &'r IndexedRepository) -> Blobs<'r> {
        Blobs {
            writer: Some(repo.blob_writer(crate::packer::Compression::Auto)),
        }
    }

    fn writer(&self) -> &crate::packer::BlobWriter<'r> {
        self.writer.as_ref().expect("not finished")
    }

    /// A data blob; returns its id.
    pub(crate) fn data(&self, plain: &[u8]) -> crate::Id {
        let id = crate::Id::hash(plain);
        self.writer()
            .save(crate::format::pack::BlobType::Data, id, plain)
            .expect("save data");
        id
    }

    /// A tree blob; returns its id.
    pub(crate) fn tree(&self, nodes: Vec<crate::format::tree::Node>) -> crate::Id {
        let json = crate::format::tree::Tree { nodes }.to_json();
        let id = crate::Id::hash(&json);
        self.writer()
            .save(crate::format::pack::BlobType::Tree, id, &json)
            .expect("save tree");
        id
    }

    /// Stores the packs and their index.
    pub(crate) fn finish(mut self) {
        if let Some(w) = self.writer.take() {
            w.finish().expect("finish");
        }
    }
}

/// A file node with this content.
pub(crate) fn file(name: &str, content: Vec<crate::Id>, size: u64) -> crate::format::tree::Node {
    let mut n = crate::format::tree::Node::new(
        name.as_bytes().to_vec(),
        crate::format::tree::NodeType::File,
    );
    n.content = Some(content);
    n.size = size;
    n
}

/// A directory node for this tree.
pub(crate) fn dir(name: &str, subtree: crate::Id) -> crate::format::tree::Node {
    let mut n = crate::format::tree::Node::new(
        name.as_bytes().to_vec(),
        crate::format::tree::NodeType::Dir,
    );
    n.subtree = Some(subtree);
    n
}

/// An observer that keeps the warnings it hears (and ignores everything else).
#[derive(Default)]
pub(crate) struct Warnings(std::sync::Mutex<Vec<String>>);

impl crate::observe::Observer for Warnings {
    fn event(&self, e: crate::observe::Event<'_>) {
        if let crate::observe::Event::Warning { message, .. } = e {
            self.0
                .lock()
                .expect("not poisoned")
                .push(message.to_string());
        }
    }
}

impl Warnings {
    /// The warnings heard so far, leaving none behind.
    pub(crate) fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().expect("not poisoned"))
    }
}

//! A file's content read from the repository as a stream, one blob in memory at a time
//! (for `dump`, and any front end that serves files).

use crate::format::pack::BlobType;
use crate::format::tree::Node;
use crate::repository::IndexedRepository;
use crate::Id;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};

thread_local! {
    /// The data blob read last: files that share content (hard links, copies, and every
    /// name of a DAG-shaped snapshot) follow one another, and read it once.
    static LAST_BLOB: std::cell::RefCell<Option<(Id, std::rc::Rc<[u8]>)>> =
        const { std::cell::RefCell::new(None) };
}

/// Reads a file's content blob by blob, holding one blob in memory at a time.
pub struct BlobReader<'r> {
    repo: &'r IndexedRepository,
    interrupted: Option<&'r AtomicBool>,
    ids: std::vec::IntoIter<Id>,
    cur: std::rc::Rc<[u8]>,
    pos: usize,
}

impl<'r> BlobReader<'r> {
    /// A reader of the blobs `ids`, in order; stops between blobs with
    /// [`crate::Error::Interrupted`] once `interrupted` is set.
    pub fn new(
        repo: &'r IndexedRepository,
        ids: Vec<Id>,
        interrupted: Option<&'r AtomicBool>,
    ) -> Self {
        BlobReader {
            repo,
            interrupted,
            ids: ids.into_iter(),
            cur: std::rc::Rc::from(Vec::new()),
            pos: 0,
        }
    }
}

impl Read for BlobReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.cur.len() {
            let Some(id) = self.ids.next() else {
                return Ok(0);
            };
            // A large file stops at Ctrl-C too, between two blobs.
            if self.interrupted.is_some_and(|f| f.load(Ordering::Relaxed)) {
                return Err(std::io::Error::other(crate::Error::Interrupted));
            }
            self.cur = LAST_BLOB.with(|last| {
                let mut last = last.borrow_mut();
                if let Some((_, b)) = last.as_ref().filter(|(l, _)| *l == id) {
                    return Ok(b.clone());
                }
                let b: std::rc::Rc<[u8]> = self
                    .repo
                    .load_blob(BlobType::Data, &id)
                    .map_err(|e| std::io::Error::other(format!("{e:#}")))?
                    .into();
                *last = Some((id, b.clone()));
                Ok::<_, std::io::Error>(b)
            })?;
            self.pos = 0;
        }
        let n = buf.len().min(self.cur.len() - self.pos);
        buf[..n].copy_from_slice(&self.cur[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// A file's content for an archive member whose header says `size` bytes: exactly that
/// many, or an error naming the file (should the blobs hold more or fewer bytes than the
/// index said) — never bytes past the member's end.
pub struct ExactReader<'r> {
    inner: BlobReader<'r>,
    left: u64,
    path: String,
}

impl<'r> ExactReader<'r> {
    /// The content of file node `n` at `path` (for messages).
    pub fn new(
        repo: &'r IndexedRepository,
        n: &Node,
        path: &[u8],
        interrupted: Option<&'r AtomicBool>,
    ) -> Self {
        ExactReader {
            inner: BlobReader::new(repo, n.content.clone().unwrap_or_default(), interrupted),
            left: n.size,
            path: String::from_utf8_lossy(path).into_owned(),
        }
    }
}

impl Read for ExactReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(std::io::Error::other(format!(
                    "{:?}: content is longer than the file's size",
                    self.path
                ))),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(std::io::Error::other(format!(
                "{:?}: content is shorter than the file's size",
                self.path
            )));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::tree::NodeType;
    use crate::packer::{BlobWriter, Compression};

    #[test]
    fn reads_exactly_the_declared_size() {
        let (_dir, mut repo) = crate::testing::new_repo();
        let parts: [&[u8]; 2] = [b"hello ", b"world"];
        let ids: Vec<Id> = parts.iter().map(|p| Id::hash(p)).collect();
        {
            let w = BlobWriter::new(
                repo.backend().clone(),
                repo.key().clone(),
                repo.version(),
                Compression::Auto,
                repo.index(),
            );
            for (id, p) in ids.iter().zip(parts) {
                w.save(BlobType::Data, *id, p).expect("save");
            }
            w.finish().expect("finish");
        }
        repo.reload_index().expect("index");
        let mut s = String::new();
        BlobReader::new(&repo, ids.clone(), None)
            .read_to_string(&mut s)
            .expect("read");
        assert_eq!(s, "hello world");

        let mut n = Node::new(b"f".to_vec(), NodeType::File);
        n.content = Some(ids.clone());
        n.size = 11;
        let mut v = Vec::new();
        ExactReader::new(&repo, &n, b"/f", None)
            .read_to_end(&mut v)
            .expect("exact");
        assert_eq!(v, b"hello world");
        n.size = 5;
        let e = ExactReader::new(&repo, &n, b"/f", None)
            .read_to_end(&mut Vec::new())
            .expect_err("longer");
        assert!(e.to_string().contains("longer than the file's size"), "{e}");
        n.size = 20;
        let e = ExactReader::new(&repo, &n, b"/f", None)
            .read_to_end(&mut Vec::new())
            .expect_err("shorter");
        assert!(
            e.to_string().contains("shorter than the file's size"),
            "{e}"
        );

        let stop = AtomicBool::new(true);
        let e = BlobReader::new(&repo, ids, Some(&stop))
            .read_to_end(&mut Vec::new())
            .expect_err("interrupted");
        assert!(e.to_string().contains("interrupted"), "{e}");
    }
}

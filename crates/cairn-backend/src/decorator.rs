//! Wrappers around a backend that change a few of its methods and pass the rest through.

use crate::{Backend, FileInfo, FileType, Handle, Result, Staged};

/// A backend that wraps another, changing a few of its methods.
///
/// A wrapper names the backend it wraps ([`Decorator::inner`]) and overrides only the methods
/// it changes; every other method goes to the wrapped backend, and a blanket impl makes every
/// decorator a [`Backend`]. Forwarding lives here once, so a wrapper cannot forget a method
/// and leave it to the trait's default (which would, say, make `exists` bypass a retry's
/// first-contact budget, or `evict` do nothing behind a cache).
///
/// Both traits have the same method names, so a decorator calling one of its own methods
/// names the trait (`Backend::save(self, ..)`), and code that uses decorators imports only
/// [`Backend`].
///
/// ```
/// use cairn_backend::{Backend, Handle, LocalBackend, Result};
///
/// /// Refuses every removal, passes everything else through.
/// struct NoRemove(LocalBackend);
///
/// impl cairn_backend::Decorator for NoRemove {
///     type Inner = LocalBackend;
///     fn inner(&self) -> &LocalBackend {
///         &self.0
///     }
///     fn remove(&self, h: &Handle) -> Result<()> {
///         Err(cairn_backend::BackendError::Io {
///             handle: h.to_string(),
///             err: std::io::ErrorKind::PermissionDenied.into(),
///         })
///     }
/// }
///
/// let dir = tempfile::tempdir()?;
/// let be: Box<dyn Backend> = Box::new(NoRemove(LocalBackend::new(dir.path())));
/// be.create()?;
/// be.save(&Handle::config(), b"config")?;
/// assert!(be.remove(&Handle::config()).is_err());
/// assert!(be.exists()?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait Decorator: Send + Sync {
    type Inner: Backend + ?Sized;

    /// The backend this one wraps.
    fn inner(&self) -> &Self::Inner;

    fn location(&self) -> String {
        self.inner().location()
    }
    fn exists(&self) -> Result<bool> {
        self.inner().exists()
    }
    fn create(&self) -> Result<()> {
        self.inner().create()
    }
    fn save(&self, handle: &Handle, data: &[u8]) -> Result<()> {
        self.inner().save(handle, data)
    }
    fn load(&self, handle: &Handle, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.inner().load(handle, offset, length)
    }
    fn load_capped(&self, handle: &Handle, max: u64) -> Result<Vec<u8>> {
        self.inner().load_capped(handle, max)
    }
    fn stat(&self, handle: &Handle) -> Result<u64> {
        self.inner().stat(handle)
    }
    fn list(&self, kind: FileType) -> Result<Vec<FileInfo>> {
        self.inner().list(kind)
    }
    fn remove(&self, handle: &Handle) -> Result<()> {
        self.inner().remove(handle)
    }
    fn stage(&self, kind: FileType) -> Result<Staged> {
        self.inner().stage(kind)
    }
    fn clean_stale_staging(&self) -> Result<usize> {
        self.inner().clean_stale_staging()
    }
    fn lists_after_write(&self) -> bool {
        self.inner().lists_after_write()
    }
    fn connections(&self) -> usize {
        self.inner().connections()
    }
    fn load_cacheable(&self, handle: &Handle, offset: u64, length: u64) -> Result<Vec<u8>> {
        self.inner().load_cacheable(handle, offset, length)
    }
    fn save_cacheable(&self, handle: &Handle, staged: Staged) -> Result<()> {
        self.inner().save_cacheable(handle, staged)
    }
    fn evict(&self, handle: &Handle) {
        self.inner().evict(handle)
    }
    fn save_staged(&self, handle: &Handle, staged: Staged) -> Result<()> {
        self.inner().save_staged(handle, staged)
    }
}

impl<D: Decorator> Backend for D {
    fn location(&self) -> String {
        Decorator::location(self)
    }
    fn exists(&self) -> Result<bool> {
        Decorator::exists(self)
    }
    fn create(&self) -> Result<()> {
        Decorator::create(self)
    }
    fn save(&self, handle: &Handle, data: &[u8]) -> Result<()> {
        Decorator::save(self, handle, data)
    }
    fn load(&self, handle: &Handle, offset: u64, length: u64) -> Result<Vec<u8>> {
        Decorator::load(self, handle, offset, length)
    }
    fn load_capped(&self, handle: &Handle, max: u64) -> Result<Vec<u8>> {
        Decorator::load_capped(self, handle, max)
    }
    fn stat(&self, handle: &Handle) -> Result<u64> {
        Decorator::stat(self, handle)
    }
    fn list(&self, kind: FileType) -> Result<Vec<FileInfo>> {
        Decorator::list(self, kind)
    }
    fn remove(&self, handle: &Handle) -> Result<()> {
        Decorator::remove(self, handle)
    }
    fn stage(&self, kind: FileType) -> Result<Staged> {
        Decorator::stage(self, kind)
    }
    fn clean_stale_staging(&self) -> Result<usize> {
        Decorator::clean_stale_staging(self)
    }
    fn lists_after_write(&self) -> bool {
        Decorator::lists_after_write(self)
    }
    fn connections(&self) -> usize {
        Decorator::connections(self)
    }
    fn load_cacheable(&self, handle: &Handle, offset: u64, length: u64) -> Result<Vec<u8>> {
        Decorator::load_cacheable(self, handle, offset, length)
    }
    fn save_cacheable(&self, handle: &Handle, staged: Staged) -> Result<()> {
        Decorator::save_cacheable(self, handle, staged)
    }
    fn evict(&self, handle: &Handle) {
        Decorator::evict(self, handle)
    }
    fn save_staged(&self, handle: &Handle, staged: Staged) -> Result<()> {
        Decorator::save_staged(self, handle, staged)
    }
}

/// A boxed backend is the plainest decorator: it changes nothing.
impl<B: Backend + ?Sized> Decorator for Box<B> {
    type Inner = B;
    fn inner(&self) -> &B {
        self
    }
}

#[cfg(test)]
mod tests {
    use crate::{Backend, BackendError, FileInfo, FileType, Handle, Result, Staged};
    use std::sync::Mutex;

    /// Records which methods reached it; each answers with something no default would.
    #[derive(Default)]
    struct Probe(Mutex<Vec<&'static str>>);

    impl Probe {
        fn hit<T>(&self, name: &'static str, v: T) -> T {
            self.0.lock().unwrap_or_else(|e| e.into_inner()).push(name);
            v
        }
    }

    impl Backend for Probe {
        fn location(&self) -> String {
            self.hit("location", "probe".into())
        }
        fn exists(&self) -> Result<bool> {
            self.hit("exists", Ok(true))
        }
        fn create(&self) -> Result<()> {
            self.hit("create", Ok(()))
        }
        fn save(&self, _: &Handle, _: &[u8]) -> Result<()> {
            self.hit("save", Ok(()))
        }
        fn load(&self, _: &Handle, _: u64, _: u64) -> Result<Vec<u8>> {
            self.hit("load", Ok(vec![1]))
        }
        fn stat(&self, _: &Handle) -> Result<u64> {
            self.hit("stat", Err(BackendError::NotFound("x".into())))
        }
        fn list(&self, _: FileType) -> Result<Vec<FileInfo>> {
            self.hit("list", Ok(vec![]))
        }
        fn remove(&self, _: &Handle) -> Result<()> {
            self.hit("remove", Ok(()))
        }
        fn stage(&self, _: FileType) -> Result<Staged> {
            self.hit("stage", Ok(Staged::Memory(vec![])))
        }
        fn clean_stale_staging(&self) -> Result<usize> {
            self.hit("clean_stale_staging", Ok(7))
        }
        fn lists_after_write(&self) -> bool {
            self.hit("lists_after_write", true)
        }
        fn connections(&self) -> usize {
            self.hit("connections", 9)
        }
        fn load_cacheable(&self, _: &Handle, _: u64, _: u64) -> Result<Vec<u8>> {
            self.hit("load_cacheable", Ok(vec![2]))
        }
        fn save_cacheable(&self, _: &Handle, _: Staged) -> Result<()> {
            self.hit("save_cacheable", Ok(()))
        }
        fn evict(&self, _: &Handle) {
            self.hit("evict", ())
        }
        fn save_staged(&self, _: &Handle, _: Staged) -> Result<()> {
            self.hit("save_staged", Ok(()))
        }
    }

    #[test]
    fn a_decorator_that_overrides_nothing_passes_every_method_through() {
        let b: Box<Probe> = Box::default();
        let h = Handle::config();
        b.location();
        b.exists().unwrap();
        b.create().unwrap();
        b.save(&h, b"").unwrap();
        b.load(&h, 0, 0).unwrap();
        b.stat(&h).unwrap_err();
        b.list(FileType::Data).unwrap();
        b.remove(&h).unwrap();
        b.stage(FileType::Data).unwrap();
        b.clean_stale_staging().unwrap();
        b.lists_after_write();
        b.connections();
        b.load_cacheable(&h, 0, 0).unwrap();
        b.save_cacheable(&h, Staged::Memory(vec![])).unwrap();
        b.evict(&h);
        b.save_staged(&h, Staged::Memory(vec![])).unwrap();
        let seen = b.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(
            seen,
            [
                "location",
                "exists",
                "create",
                "save",
                "load",
                "stat",
                "list",
                "remove",
                "stage",
                "clean_stale_staging",
                "lists_after_write",
                "connections",
                "load_cacheable",
                "save_cacheable",
                "evict",
                "save_staged"
            ]
        );
    }
}

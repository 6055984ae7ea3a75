//! A repository in two states: [`Repository`] is opened (backend, master key, config: enough
//! for snapshots, keys, locks and index files), [`IndexedRepository`] has its index loaded as
//! well (enough for blobs and trees). Loading the index is a distinct step, so code that reads
//! blobs cannot run against an index that was never loaded: it does not compile.

use crate::chunker::Polynomial;
use crate::crypto::Key;
use crate::format::config::Config;
use crate::format::indexfile::IndexFile;
use crate::format::keyfile::{KdfParams, KeyFile};
use crate::format::pack::BlobType;
use crate::format::snapshot::Snapshot;
use crate::format::tree::Tree;
use crate::format::{limits, unpacked};
use crate::index::{BlobLocation, MasterIndex};
use crate::{Error, Id, Object};
use anyhow::Context;
use cairn_backend::{Backend, BackendError, FileType, Handle};
use std::sync::Arc;

/// An opened repository: its backend, master key and config.
pub struct Repository {
    backend: Arc<dyn Backend>,
    key: Key,
    /// Name of the key file the password opened.
    key_id: String,
    config: Config,
    polynomial: Polynomial,
    /// The size new packs are cut at (restic's `--pack-size`).
    pack_size: usize,
    /// Writers check each sealed blob before storing it (off with `--no-extra-verify`).
    extra_verify: bool,
}

/// An opened repository with its index loaded: what reading blobs and trees needs. Everything
/// a [`Repository`] offers is available through `Deref`.
pub struct IndexedRepository {
    repo: Repository,
    index: MasterIndex,
}

impl std::ops::Deref for IndexedRepository {
    type Target = Repository;
    fn deref(&self) -> &Repository {
        &self.repo
    }
}

/// Options for creating a repository (default: version 2, restic's key derivation
/// parameters, a random chunker polynomial, no user or host name).
pub struct InitOptions {
    pub version: u32,
    pub kdf: KdfParams,
    pub polynomial: Option<Polynomial>,
    pub username: String,
    pub hostname: String,
}

impl Default for InitOptions {
    fn default() -> InitOptions {
        InitOptions {
            version: 2,
            kdf: KdfParams::default(),
            polynomial: None,
            username: String::new(),
            hostname: String::new(),
        }
    }
}

fn backend_err(e: BackendError) -> Error {
    Error::from(e)
}

impl Repository {
    /// Creates a new repository; refuses if a config already exists.
    pub fn init(
        backend: Arc<dyn Backend>,
        password: &[u8],
        opts: InitOptions,
    ) -> crate::Result<Repository> {
        if backend.exists().map_err(backend_err)? {
            crate::error::bail!(
                "create repository at {} failed: config file already exists",
                backend.location()
            );
        }
        if opts.version != 1 && opts.version != 2 {
            crate::error::invalid!("unsupported repository version {}", opts.version);
        }
        let pol = match opts.polynomial {
            Some(p) => p,
            None => Polynomial::random()?,
        };
        let config = Config::new(opts.version, pol);
        let master = Key::random();
        backend.create().map_err(backend_err)?;
        let kf = KeyFile::create(password, &master, opts.kdf, &opts.username, &opts.hostname)?;
        let kbytes = kf.to_bytes();
        let key_id = Id::hash(&kbytes).to_hex();
        backend
            .save(&Handle::new(FileType::Key, &key_id), &kbytes)
            .map_err(backend_err)?;
        // The config goes last: it is what marks the repository as existing.
        let cbytes = master.seal(&serde_json::to_vec(&config)?);
        backend
            .save(&Handle::config(), &cbytes)
            .map_err(backend_err)?;
        Ok(Repository {
            backend,
            key: master,
            key_id,
            config,
            polynomial: pol,
            pack_size: crate::packer::PACK_SIZE,
            extra_verify: true,
        })
    }

    /// Opens an existing repository with a password.
    pub fn open(
        backend: Arc<dyn Backend>,
        password: &[u8],
        key_hint: Option<&str>,
    ) -> crate::Result<Repository> {
        let config_cap = limits::max_stored(limits::MAX_CONFIG) as u64;
        let cfg_sealed = match backend.load_capped(&Handle::config(), config_cap) {
            Ok(b) => b,
            Err(BackendError::NotFound(_)) => {
                return Err(Error::NoRepository {
                    location: backend.location(),
                });
            }
            Err(cause) => {
                return Err(Error::Backend {
                    object: Some(Object::Config),
                    context: crate::error::Context::new(vec!["unable to open config file".into()]),
                    cause,
                })
            }
        };
        limits::check_stored(FileType::Config, cfg_sealed.len() as u64)
            .context("config")
            .map_err(Error::loading(Object::Config))?;
        let mut keys = backend.list(FileType::Key).map_err(backend_err)?;
        if let Some(hint) = key_hint {
            keys.sort_by_key(|k| !k.name.starts_with(hint));
        }
        let mut found = None;
        for k in keys {
            let h = Handle::new(FileType::Key, &k.name);
            // A key file beyond its ceiling is skipped unread, as a damaged one is.
            if k.size > limits::max_stored(limits::MAX_KEY_FILE) as u64 {
                continue;
            }
            let Ok(bytes) =
                backend.load_capped(&h, limits::max_stored(limits::MAX_KEY_FILE) as u64)
            else {
                continue;
            };
            if bytes.len() > limits::max_stored(limits::MAX_KEY_FILE) {
                continue;
            }
            let Ok(kf) = KeyFile::parse(&bytes) else {
                continue;
            };
            if let Ok(Some(master)) = kf.open(password) {
                found = Some((k.name, master));
                break;
            }
        }
        let (key_id, key) = found.ok_or(Error::WrongPassword)?;
        let cfg_json = key.open(&cfg_sealed).map_err(|_| {
            Error::corrupt(Object::Config, "config: decryption failed (file damaged?)")
        })?;
        let config: Config = serde_json::from_slice(&cfg_json)
            .context("config: invalid JSON")
            .map_err(Error::loading(Object::Config))?;
        let polynomial = config.validate().map_err(Error::loading(Object::Config))?;
        Ok(Repository {
            backend,
            key,
            key_id,
            config,
            polynomial,
            pack_size: crate::packer::PACK_SIZE,
            extra_verify: true,
        })
    }

    /// Do writers check every sealed blob before storing it?
    pub fn extra_verify(&self) -> bool {
        self.extra_verify
    }

    /// Turns the check of sealed blobs before upload on or off.
    pub fn set_extra_verify(&mut self, on: bool) {
        self.extra_verify = on;
    }

    /// The size at which writers of this handle cut new packs.
    pub fn pack_size(&self) -> usize {
        self.pack_size
    }

    /// Sets the target size of new packs in MiB (restic's `--pack-size`, 4 to 128).
    pub fn set_pack_size_mib(&mut self, mib: u64) -> crate::Result<()> {
        if !(4..=128).contains(&mib) {
            crate::error::invalid!("pack size must be between 4 and 128 MiB, not {mib} MiB");
        }
        self.pack_size = (mib as usize) << 20;
        Ok(())
    }

    /// Keeps snapshots, index files and packs of trees in a local cache under `base` (in a
    /// directory named by the repository's id), as restic does.
    pub fn use_cache(&mut self, base: &std::path::Path) -> std::io::Result<()> {
        let cached =
            cairn_backend::cache::CacheBackend::new(self.backend.clone(), base, &self.config.id)?;
        self.backend = Arc::new(cached);
        Ok(())
    }

    pub fn version(&self) -> u32 {
        self.config.version
    }

    /// Where the repository's files are stored (with the local cache, when one is used).
    pub fn backend(&self) -> &Arc<dyn Backend> {
        &self.backend
    }

    /// The master key.
    pub fn key(&self) -> &Key {
        &self.key
    }

    /// Name of the key file the password opened.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    /// How many requests the backend serves at once (restic's `-o *.connections`).
    pub fn connections(&self) -> usize {
        self.backend.connections()
    }

    /// A file's stored bytes, as they are (encrypted), within the ceiling for its type
    /// (packs: [`limits::MAX_PACK_FILE`]).
    pub fn load_raw(&self, kind: FileType, id: &Id) -> crate::Result<Vec<u8>> {
        let h = Handle::new(kind, id.to_hex());
        if kind == FileType::Data {
            limits::load_pack_bounded(&*self.backend, &h)
        } else {
            limits::load_bounded(&*self.backend, &h)
        }
        .map_err(Error::loading(Object::file(kind, id)))
    }

    /// The chunker polynomial of the config.
    pub fn polynomial(&self) -> Polynomial {
        self.polynomial
    }

    /// Loads an unpacked file, checking that its content matches its name.
    pub fn load_unpacked(&self, kind: FileType, id: &Id) -> crate::Result<Vec<u8>> {
        let h = Handle::new(kind, id.to_hex());
        let object = Object::file(kind, id);
        let raw =
            limits::load_bounded(&*self.backend, &h).map_err(Error::loading(object.clone()))?;
        if Id::hash(&raw) != *id {
            return Err(Error::corrupt(
                object,
                format!("{h}: invalid data returned (content does not match its name)"),
            ));
        }
        unpacked::decode_as(kind, self.version(), &self.key, &raw)
            .with_context(|| format!("{h}"))
            .map_err(Error::loading(object))
    }

    /// Seals and stores JSON as an unpacked file, returning its id.
    pub fn save_unpacked(&self, kind: FileType, json: &[u8]) -> crate::Result<Id> {
        let sealed = unpacked::encode(self.version(), &self.key, json)?;
        let id = Id::hash(&sealed);
        self.backend
            .save(&Handle::new(kind, id.to_hex()), &sealed)
            .map_err(backend_err)?;
        Ok(id)
    }

    pub fn list_ids(&self, kind: FileType) -> crate::Result<Vec<Id>> {
        self.backend
            .list(kind)
            .map_err(backend_err)?
            .into_iter()
            .map(|f| Id::from_hex(&f.name))
            .collect()
    }

    /// Reads and parses one index file.
    pub fn load_index_file(&self, id: &Id) -> crate::Result<IndexFile> {
        let json = self.load_unpacked(FileType::Index, id)?;
        IndexFile::parse(&json)
            .with_context(|| format!("index/{id}: invalid index file"))
            .map_err(Error::loading(Object::Index(*id)))
    }

    /// Reads every index file (in parallel) into the in-memory index.
    pub fn load_index(self) -> crate::Result<IndexedRepository> {
        let index = self.read_index()?;
        Ok(IndexedRepository { repo: self, index })
    }

    fn read_index(&self) -> crate::Result<MasterIndex> {
        let ids = self.list_ids(FileType::Index)?;
        // Each file goes into the index as soon as it is parsed and is dropped right away, so
        // peak memory is the index plus a few files, not every file parsed at once.
        let load = |skip: &std::collections::HashSet<Id>| -> crate::Result<(MasterIndex, Vec<Id>)> {
            let idx = std::sync::Mutex::new(MasterIndex::new());
            // Two at a time: a large index file is tens of MB while parsed.
            let supersedes = parallel_map(&ids, 2, |id| -> crate::Result<Vec<Id>> {
                if skip.contains(id) {
                    return Ok(Vec::new());
                }
                let f = self.load_index_file(id)?;
                idx.lock().unwrap_or_else(|e| e.into_inner()).add_file(&f);
                Ok(f.supersedes)
            })?;
            let idx = idx.into_inner().unwrap_or_else(|e| e.into_inner());
            Ok((idx, supersedes.into_iter().flatten().collect()))
        };
        let (mut idx, superseded) = load(&Default::default())?;
        // An index file that another one says it supersedes is obsolete (restic skips it).
        // Rare (restic stopped writing `supersedes`), so a second pass without them is fine.
        let superseded: std::collections::HashSet<Id> = superseded
            .into_iter()
            .filter(|id| ids.contains(id))
            .collect();
        if !superseded.is_empty() {
            idx = load(&superseded)?.0;
        }
        idx.finish();
        Ok(idx)
    }

    /// Decrypts, decompresses and verifies a blob's stored bytes (see [`open_blob`]).
    pub fn open_blob(&self, loc: &BlobLocation, sealed: &[u8]) -> crate::Result<Vec<u8>> {
        open_blob(&self.key, loc, sealed)
    }

    pub fn load_snapshot(&self, id: &Id) -> crate::Result<Snapshot> {
        let json = self.load_unpacked(FileType::Snapshot, id)?;
        Snapshot::parse(&json)
            .with_context(|| format!("snapshot {}: invalid snapshot file", id.short()))
            .map_err(Error::loading(Object::Snapshot(*id)))
    }

    /// Every snapshot, oldest first.
    pub fn list_snapshots(&self) -> crate::Result<Vec<(Id, Snapshot)>> {
        let ids = self.list_ids(FileType::Snapshot)?;
        let snaps = parallel_map(&ids, 4, |id| self.load_snapshot(id))?;
        let mut v: Vec<(Id, Snapshot)> = ids.into_iter().zip(snaps).collect();
        v.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(&b.0)));
        Ok(v)
    }

    /// Resolves a unique id prefix among files of a type.
    pub fn find_id(&self, kind: FileType, prefix: &str) -> crate::Result<Id> {
        if prefix.len() == 64 {
            if let Ok(id) = Id::from_hex(prefix) {
                return Ok(id);
            }
        }
        let mut hits = self
            .backend
            .list(kind)
            .map_err(backend_err)?
            .into_iter()
            .filter(|f| f.name.starts_with(prefix));
        let first = hits.next();
        if hits.next().is_some() {
            crate::error::invalid!("{kind} id prefix {prefix:?} is ambiguous");
        }
        match first {
            Some(f) => Id::from_hex(&f.name),
            None => crate::error::invalid!("no {kind} file matches id {prefix:?}"),
        }
    }

    /// Adds a key file for another password.
    pub fn add_key(
        &self,
        password: &[u8],
        kdf: KdfParams,
        username: &str,
        hostname: &str,
    ) -> crate::Result<String> {
        let kf = KeyFile::create(password, &self.key, kdf, username, hostname)?;
        let bytes = kf.to_bytes();
        let id = Id::hash(&bytes).to_hex();
        self.backend
            .save(&Handle::new(FileType::Key, &id), &bytes)
            .map_err(backend_err)?;
        Ok(id)
    }
}

impl IndexedRepository {
    pub fn index(&self) -> &MasterIndex {
        &self.index
    }

    /// Forgets the loaded index and reads every index file again.
    pub fn reload_index(&mut self) -> crate::Result<()> {
        self.index = self.repo.read_index()?;
        Ok(())
    }

    /// Reads every index file into a new index while the loaded one stays in use, so that a
    /// long-running reader (a mount) is not stalled for the whole reload; swap it in with
    /// [`replace_index`](Self::replace_index).
    pub fn read_fresh_index(&self) -> crate::Result<MasterIndex> {
        self.repo.read_index()
    }

    pub fn replace_index(&mut self, index: MasterIndex) {
        self.index = index;
    }

    /// Adds packs to the loaded index (after storing an index file that names them).
    pub fn add_to_index(&mut self, packs: &[crate::format::indexfile::IndexPack]) {
        for p in packs {
            self.index
                .add_pack(p.id, p.blobs.iter().map(|b| b.to_packed()));
        }
        self.index.finish();
    }

    /// A writer of new blobs that skips every blob this index knows.
    pub fn blob_writer(
        &self,
        compression: crate::packer::Compression,
    ) -> crate::packer::BlobWriter<'_> {
        crate::packer::BlobWriter::for_repo(self, compression, &self.index)
    }

    /// Gives the index up, keeping the opened repository.
    pub fn into_repository(self) -> Repository {
        self.repo
    }

    /// Loads one blob, trying every copy the index knows of.
    pub fn load_blob(&self, ty: BlobType, id: &Id) -> crate::Result<Vec<u8>> {
        let locs = self.index.lookup_all(ty, id);
        if locs.is_empty() {
            return Err(Error::not_found(
                Object::Blob(*id),
                format!("blob {id} not found in index"),
            ));
        }
        let mut last = None;
        for loc in locs {
            // Declared lengths beyond the ceiling are refused before anything is read.
            if let Err(e) = limits::check_blob(&loc.blob) {
                last = Some(Error::corrupt(
                    Object::Pack(loc.pack),
                    format!(
                        "pack {}: {} blob {}: {e}",
                        loc.pack.short(),
                        loc.blob.ty,
                        loc.blob.id
                    ),
                ));
                continue;
            }
            let h = Handle::new(FileType::Data, loc.pack.to_hex());
            let (off, len) = (loc.blob.offset as u64, loc.blob.length as u64);
            let read = |cacheable: bool| {
                let sealed = if cacheable {
                    self.backend.load_cacheable(&h, off, len)
                } else {
                    self.backend.load(&h, off, len)
                };
                sealed
                    .map_err(Error::from)
                    .and_then(|sealed| self.open_blob(&loc, &sealed))
                    .map_err(|e| match e {
                        Error::Backend {
                            object: None,
                            context,
                            cause,
                        } => Error::Backend {
                            object: Some(Object::Pack(loc.pack)),
                            context,
                            cause,
                        },
                        e => e,
                    })
            };
            // Trees come through the local cache when there is one; a damaged cached copy
            // is dropped and the blob read from the repository itself.
            let res = match read(ty == BlobType::Tree) {
                Err(_) if ty == BlobType::Tree => {
                    self.backend.evict(&h);
                    read(false)
                }
                r => r,
            };
            match res {
                Ok(p) => return Ok(p),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one location"))
    }

    pub fn load_tree(&self, id: &Id) -> crate::Result<Tree> {
        let json = self.load_blob(BlobType::Tree, id)?;
        Tree::parse(&json)
            .with_context(|| format!("tree {id}: invalid tree"))
            .map_err(Error::loading(Object::Tree(*id)))
    }
}

/// Decrypts, decompresses and verifies a blob's stored bytes: its declared lengths are
/// checked against the ceilings of [`limits`] first, and decompression never produces more
/// than the declared length.
pub fn open_blob(key: &Key, loc: &BlobLocation, sealed: &[u8]) -> crate::Result<Vec<u8>> {
    // Whatever fails here, the pack's bytes are damaged.
    open_sealed_blob(key, loc, sealed).map_err(Error::loading(Object::Pack(loc.pack)))
}

fn open_sealed_blob(key: &Key, loc: &BlobLocation, sealed: &[u8]) -> anyhow::Result<Vec<u8>> {
    let b = &loc.blob;
    limits::check_blob(b)
        .map_err(|e| anyhow::anyhow!("pack {}: {} blob {}: {e}", loc.pack.short(), b.ty, b.id))?;
    let plain = key.open(sealed).map_err(|_| {
        anyhow::anyhow!(
            "pack {}: {} blob {}: decryption failed (damaged data)",
            loc.pack.short(),
            b.ty,
            b.id
        )
    })?;
    let plain = if b.uncompressed_length != 0 {
        // Checked above: at most the ceiling for its type is allocated.
        let out =
            limits::decompress_exact(&plain, b.uncompressed_length as usize).map_err(|e| {
                anyhow::anyhow!(
                    "pack {}: {} blob {}: decompression failed: {e}",
                    loc.pack.short(),
                    b.ty,
                    b.id
                )
            })?;
        if out.len() != b.uncompressed_length as usize {
            anyhow::bail!(
                "pack {}: {} blob {}: decompressed to {} bytes, expected {}",
                loc.pack.short(),
                b.ty,
                b.id,
                out.len(),
                b.uncompressed_length
            );
        }
        out
    } else {
        if plain.len() > limits::max_blob(b.ty) {
            anyhow::bail!(
                "pack {}: {} blob {}: {} bytes, more than the {} a {} blob may have",
                loc.pack.short(),
                b.ty,
                b.id,
                plain.len(),
                limits::size(limits::max_blob(b.ty)),
                b.ty
            );
        }
        plain
    };
    if Id::hash(&plain) != b.id {
        anyhow::bail!(
            "pack {}: {} blob {}: content does not match its id",
            loc.pack.short(),
            b.ty,
            b.id
        );
    }
    Ok(plain)
}

/// Runs `f` over `items` on up to `threads` threads, keeping order; stops at the first error.
pub fn parallel_map<T: Sync, R: Send, E: Send>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> Result<R, E> + Sync,
) -> Result<Vec<R>, E> {
    if items.len() <= 1 || threads <= 1 {
        return items.iter().map(&f).collect();
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<std::sync::Mutex<Option<Result<R, E>>>> =
        items.iter().map(|_| std::sync::Mutex::new(None)).collect();
    std::thread::scope(|s| {
        for _ in 0..threads.min(items.len()) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= items.len() {
                    break;
                }
                let r = f(&items[i]);
                *results[i].lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            });
        }
    });
    results
        .into_iter()
        .map(|m| {
            m.into_inner()
                .unwrap_or_else(|e| e.into_inner())
                .expect("every item processed")
        })
        .collect()
}

#[cfg(test)]
mod typed_error_tests {
    //! A damaged or missing object is named by the error's variant, not only by its text.

    use crate::format::pack::BlobType;
    use crate::testing::{new_repo, Blobs};
    use crate::{Error, ErrorKind, Object};
    use cairn_backend::FileType;

    /// Flips one byte of a repository file, as a failing disk would.
    fn damage(dir: &std::path::Path, kind: FileType, name: &str, at: u64) {
        let sub = match kind {
            FileType::Data => format!("data/{}/{name}", &name[..2]),
            other => format!("{}/{name}", other.dir()),
        };
        let path = dir.join("repo").join(sub);
        let mut bytes = std::fs::read(&path).expect("read file");
        bytes[at as usize] ^= 0x40;
        std::fs::write(&path, bytes).expect("write file");
    }

    #[test]
    fn a_damaged_pack_is_named_by_the_error() {
        let (dir, mut repo) = new_repo();
        let blobs = Blobs::new(&repo);
        let id = blobs.data(b"the data of a file that will be damaged");
        blobs.finish();
        repo.reload_index().expect("reload");
        let loc = repo.index().lookup(BlobType::Data, &id).expect("indexed");
        assert!(repo.load_blob(BlobType::Data, &id).is_ok());

        damage(
            dir.path(),
            FileType::Data,
            &loc.pack.to_hex(),
            loc.blob.offset as u64 + 20,
        );
        let err = repo.load_blob(BlobType::Data, &id).expect_err("damaged");
        match &err {
            Error::Corrupt {
                object: Object::Pack(pack),
                ..
            } => assert_eq!(*pack, loc.pack),
            other => panic!("not a corrupt pack: {other:?}"),
        }
        assert_eq!(err.kind(), ErrorKind::Other);
        // The text is what it was as an anyhow chain: it names the pack and the blob.
        let text = format!("{err:#}");
        assert!(text.contains(&loc.pack.short()), "{text}");
        assert!(text.contains(&id.to_string()), "{text}");
        assert!(text.contains("decryption failed"), "{text}");
    }

    #[test]
    fn opening_fails_with_the_variant_of_what_is_wrong() {
        let (dir, repo) = new_repo();
        let backend = repo.backend().clone();
        let open = |pw: &[u8]| super::Repository::open(backend.clone(), pw, None).map(|_| ());
        assert!(open(b"pw").is_ok());
        let err = open(b"not the password").expect_err("wrong password");
        assert!(matches!(err, Error::WrongPassword), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::WrongPassword);

        let config = dir.path().join("repo/config");
        let mut bytes = std::fs::read(&config).expect("config");
        bytes[20] ^= 0x40;
        std::fs::write(&config, bytes).expect("write config");
        let err = open(b"pw").expect_err("damaged config");
        assert!(
            matches!(
                &err,
                Error::Corrupt {
                    object: Object::Config,
                    ..
                }
            ),
            "{err:?}"
        );

        let nowhere: std::sync::Arc<dyn cairn_backend::Backend> = std::sync::Arc::new(
            cairn_backend::LocalBackend::new(dir.path().join("no-repo-here")),
        );
        let err = super::Repository::open(nowhere, b"pw", None)
            .map(|_| ())
            .expect_err("no repository");
        assert!(matches!(err, Error::NoRepository { .. }), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::NoRepository);
    }

    #[test]
    fn missing_and_damaged_objects_have_their_variants() {
        let (dir, repo) = new_repo();
        let absent = crate::Id::hash(b"never stored");
        let err = repo.load_blob(BlobType::Data, &absent).expect_err("absent");
        assert!(
            matches!(&err, Error::NotFound { object: Object::Blob(b), .. } if *b == absent),
            "{err:?}"
        );
        assert_eq!(
            format!("{err:#}"),
            format!("blob {absent} not found in index")
        );

        // A snapshot file whose bytes no longer match its name.
        let sid = repo
            .save_unpacked(FileType::Snapshot, br#"{"paths":["/src"]}"#)
            .expect("save snapshot");
        damage(dir.path(), FileType::Snapshot, &sid.to_hex(), 20);
        let err = repo.load_snapshot(&sid).expect_err("damaged snapshot");
        assert!(
            matches!(&err, Error::Corrupt { object: Object::Snapshot(s), .. } if *s == sid),
            "{err:?}"
        );

        // A file that is not there at all: the storage says so, about that snapshot.
        let gone = crate::Id::hash(b"no such snapshot");
        let err = repo.load_snapshot(&gone).expect_err("missing snapshot");
        assert!(
            matches!(
                &err,
                Error::Backend {
                    object: Some(Object::Snapshot(s)),
                    cause: cairn_backend::BackendError::NotFound(_),
                    ..
                } if *s == gone
            ),
            "{err:?}"
        );
    }
}

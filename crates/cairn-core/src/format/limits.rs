//! Ceilings on every length a repository declares, and the one bounded decoder that
//! enforces them.
//!
//! Whoever can write to a repository (or bad hardware under it) decides every length cairn
//! reads from it: a blob's stored and uncompressed length in the index and pack headers, the
//! size a zstd frame expands to, the size of a snapshot, index, key, lock or config file.
//! Each is checked here against a ceiling *before* anything of that size is allocated or
//! read, and a larger one is an error that the caller names (file type and id, or pack and
//! blob). zstd frames are only ever decompressed with an output cap: into a buffer of the
//! size the frame or the index declares when that is within the ceiling, and otherwise
//! streaming, stopping one byte past the ceiling.
//!
//! The ceilings are far above anything restic or cairn writes, so that no real repository
//! hits them, and low enough that a few of them at once fit in the memory of a small machine.

use crate::crypto::OVERHEAD;
use crate::format::pack::{BlobType, PackedBlob};
use cairn_backend::FileType;
use std::io::Read;

const MIB: usize = 1 << 20;

/// A data blob is one chunk, and restic's chunker never cuts one longer than 8 MiB
/// ([`crate::chunker::MAX_SIZE`]; restic has no setting to change it, and neither has cairn).
pub const MAX_DATA_BLOB: usize = crate::chunker::MAX_SIZE;

/// A tree blob is one directory's JSON: about 300–500 bytes per plain entry, plus 67 bytes
/// per content chunk of each file. 256 MiB holds a directory of over half a million files
/// (or a few files of several TiB each); restic keeps whole trees in memory too, so a
/// directory much bigger than that is already a problem for restic itself.
pub const MAX_TREE_BLOB: usize = 256 * MIB;

/// A snapshot is a few hundred bytes plus its paths, tags and excludes. 64 MiB leaves room
/// for `--files-from` lists of several hundred thousand paths; up to four are read at once.
pub const MAX_SNAPSHOT: usize = 64 * MIB;

/// restic starts a new index file after 50,000 blobs (150,000 for compressed repositories),
/// about 10–30 MiB of JSON. 256 MiB is over a million entries in one file, and two read at
/// once (as [`crate::repository::Repository::load_index`] does) stay within 512 MiB.
pub const MAX_INDEX_FILE: usize = 256 * MIB;

/// A key file is about 450 bytes.
pub const MAX_KEY_FILE: usize = MIB;

/// A lock file is about 200 bytes. Anything bigger than this is an unreadable lock.
pub const MAX_LOCK_FILE: usize = MIB;

/// The config file is about 200 bytes.
pub const MAX_CONFIG: usize = MIB;

/// The largest plaintext a blob of this type may have.
pub fn max_blob(ty: BlobType) -> usize {
    match ty {
        BlobType::Data => MAX_DATA_BLOB,
        BlobType::Tree => MAX_TREE_BLOB,
    }
}

/// The largest decoded (decrypted, decompressed) content of an unpacked file of this kind.
/// Pack files are never decoded whole; their blobs have [`max_blob`].
pub fn max_unpacked(kind: FileType) -> usize {
    match kind {
        FileType::Snapshot => MAX_SNAPSHOT,
        FileType::Index => MAX_INDEX_FILE,
        FileType::Key => MAX_KEY_FILE,
        FileType::Lock => MAX_LOCK_FILE,
        FileType::Config => MAX_CONFIG,
        FileType::Data => MAX_DATA_BLOB + MAX_TREE_BLOB,
    }
}

/// The largest stored (compressed and encrypted) form of a plaintext of `plain` bytes:
/// zstd's worst case (`ZSTD_compressBound`, a little over 1/256 more), the v2 version byte
/// and the encryption overhead.
pub fn max_stored(plain: usize) -> usize {
    plain + plain / 128 + 64 * 1024 + 1 + OVERHEAD
}

/// A length beyond its ceiling.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error("declares {declared} bytes uncompressed, more than the {} {} may have", size(*.limit), a(what))]
    Declared {
        what: &'static str,
        declared: u64,
        limit: usize,
    },
    #[error("is {stored} bytes stored, more than {} of at most {} can take", a(what), size(*.limit))]
    Stored {
        what: &'static str,
        stored: u64,
        limit: usize,
    },
    #[error("decompresses to more than the {} {} may have", size(*.limit), a(what))]
    Expands { what: &'static str, limit: usize },
}

/// "a snapshot file", "an index file".
fn a(what: &str) -> String {
    let vowel = what.starts_with(['a', 'e', 'i', 'o', 'u']);
    format!("{} {what}", if vowel { "an" } else { "a" })
}

/// `n` bytes in words: "8 MiB" where exact, else the number.
pub fn size(n: usize) -> String {
    if n >= MIB && n.is_multiple_of(MIB) {
        format!("{} MiB", n / MIB)
    } else {
        format!("{n} bytes")
    }
}

/// What the errors call an object of this kind.
pub fn unpacked_name(kind: FileType) -> &'static str {
    match kind {
        FileType::Snapshot => "snapshot file",
        FileType::Index => "index file",
        FileType::Key => "key file",
        FileType::Lock => "lock file",
        FileType::Config => "config file",
        FileType::Data => "pack file",
    }
}

fn blob_name(ty: BlobType) -> &'static str {
    match ty {
        BlobType::Data => "data blob",
        BlobType::Tree => "tree blob",
    }
}

/// Checks a blob's declared lengths (stored and uncompressed) against its type's ceiling,
/// before it is read or decompressed.
pub fn check_blob(b: &PackedBlob) -> Result<(), LimitError> {
    let limit = max_blob(b.ty);
    let what = blob_name(b.ty);
    if b.uncompressed_length as u64 > limit as u64 {
        return Err(LimitError::Declared {
            what,
            declared: b.uncompressed_length as u64,
            limit,
        });
    }
    if b.length as u64 > max_stored(limit) as u64 {
        return Err(LimitError::Stored {
            what,
            stored: b.length as u64,
            limit,
        });
    }
    Ok(())
}

/// Checks the stored size of an unpacked file (before decrypting it).
pub fn check_stored(kind: FileType, stored: u64) -> Result<(), LimitError> {
    let limit = max_unpacked(kind);
    if stored > max_stored(limit) as u64 {
        return Err(LimitError::Stored {
            what: unpacked_name(kind),
            stored,
            limit,
        });
    }
    Ok(())
}

/// Loads a whole unpacked file of `kind` (or the config), refusing one whose stored size is
/// beyond the ceiling for its kind. Every store reads at most one byte past the ceiling
/// ([`cairn_backend::Backend::load_capped`]), so neither a huge file nor a server that sends
/// endless data costs more memory than the ceiling.
pub fn load_bounded(
    backend: &dyn cairn_backend::Backend,
    h: &cairn_backend::Handle,
) -> crate::Result<Vec<u8>> {
    let max = max_stored(max_unpacked(h.kind)) as u64;
    let raw = backend.load_capped(h, max).map_err(anyhow::Error::new)?;
    if raw.len() as u64 > max {
        // Read only up to the cap: the store's own size, where it tells one, says how big.
        let stored = backend.stat(h).ok().filter(|n| *n > max);
        let stored = stored.unwrap_or(raw.len() as u64);
        check_stored(h.kind, stored).map_err(|e| anyhow::anyhow!("{h}: {e}"))?;
    }
    Ok(raw)
}

/// The largest pack file read whole (prune's repacking, `repair packs`, `cat pack`). restic
/// writes packs of 4–128 MiB (`--pack-size`), plus one blob that did not fit; a gigabyte
/// leaves room for any of them and for trees of very large directories.
pub const MAX_PACK_FILE: u64 = 1024 * MIB as u64;

/// Loads a whole pack file, refusing one larger than [`MAX_PACK_FILE`] before reading it
/// (its size asked of the store first) and after (in case the store's answer lied).
pub fn load_pack_bounded(
    backend: &dyn cairn_backend::Backend,
    h: &cairn_backend::Handle,
) -> crate::Result<Vec<u8>> {
    let refuse = |n: u64| {
        anyhow::anyhow!(
            "{h}: the pack file is {n} bytes, more than the {} a pack may have",
            size(MAX_PACK_FILE as usize)
        )
    };
    if let Ok(n) = backend.stat(h) {
        if n > MAX_PACK_FILE {
            return Err(refuse(n).into());
        }
    }
    let raw = backend
        .load_capped(h, MAX_PACK_FILE)
        .map_err(anyhow::Error::new)?;
    if raw.len() as u64 > MAX_PACK_FILE {
        return Err(refuse(raw.len() as u64).into());
    }
    Ok(raw)
}

thread_local! {
    /// One zstd decompression context per thread: creating one per blob is measurable.
    static UNZSTD: std::cell::RefCell<Option<zstd::bulk::Decompressor<'static>>> =
        const { std::cell::RefCell::new(None) };
}

/// Decompresses zstd frames whose total size is known to be `expected` (a blob's
/// uncompressed length, already checked with [`check_blob`]); more output is an error, never
/// an allocation. A frame that states exactly that size (restic and cairn always write one
/// such frame) goes into a buffer of that size in one call; one that states more is refused
/// at once; anything else (no stated size, several frames) is streamed, so that memory
/// follows what the frames really hold, not what the index claims.
pub fn decompress_exact(src: &[u8], expected: usize) -> std::io::Result<Vec<u8>> {
    match zstd::zstd_safe::get_frame_content_size(src) {
        Ok(Some(n)) if n == expected as u64 => bulk(src, expected),
        Ok(Some(n)) if n > expected as u64 => Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("the frame declares {n} bytes, more than the {expected} expected"),
        )),
        _ => match stream(src, expected) {
            Ok(out) => Ok(out),
            Err(Streamed::Io(e)) => Err(e),
            Err(Streamed::TooMuch) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("decompresses to more than the {expected} bytes expected"),
            )),
        },
    }
}

/// One-shot decompression into a buffer of `capacity` bytes.
fn bulk(src: &[u8], capacity: usize) -> std::io::Result<Vec<u8>> {
    UNZSTD.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            *slot = Some(zstd::bulk::Decompressor::new()?);
        }
        slot.as_mut().expect("set above").decompress(src, capacity)
    })
}

enum Streamed {
    Io(std::io::Error),
    TooMuch,
}

/// Streaming decompression that stops past `limit` bytes of output, with a buffer grown by
/// hand (read_to_end's doubling could reserve twice the limit) and a bounded window.
fn stream(src: &[u8], limit: usize) -> Result<Vec<u8>, Streamed> {
    // A window bigger than the whole output would be pointless: allow the smallest power of
    // two covering the limit, but at least 16 MiB (what encoders use by default).
    let window_log = (usize::BITS - limit.saturating_sub(1).leading_zeros()).clamp(24, 31);
    let mut dec = zstd::stream::read::Decoder::with_buffer(src).map_err(Streamed::Io)?;
    dec.window_log_max(window_log).map_err(Streamed::Io)?;
    let mut out: Vec<u8> = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = dec.read(&mut chunk).map_err(Streamed::Io)?;
        if n == 0 {
            return Ok(out);
        }
        if out.len() + n > limit {
            return Err(Streamed::TooMuch);
        }
        if out.capacity() - out.len() < n {
            let want = (out.capacity() * 2).max(out.len() + n).min(limit);
            out.reserve_exact(want - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Decompresses zstd frames of unknown size, refusing to produce more than `limit` bytes of
/// `what`. A frame that declares its size (restic's and cairn's always do) is checked and
/// then decompressed into a buffer of that size; otherwise the frames are streamed with a
/// cap on the output and on the window the decoder may allocate.
pub fn decompress_capped(src: &[u8], limit: usize, what: &'static str) -> crate::Result<Vec<u8>> {
    if let Ok(Some(declared)) = zstd::zstd_safe::get_frame_content_size(src) {
        if declared > limit as u64 {
            return Err(LimitError::Declared {
                what,
                declared,
                limit,
            }
            .into());
        }
        // One frame, as written by restic and cairn. Concatenated frames do not fit the
        // buffer and are streamed below.
        if let Ok(out) = bulk(src, declared as usize) {
            return Ok(out);
        }
    }
    match stream(src, limit) {
        Ok(out) => Ok(out),
        Err(Streamed::Io(e)) => Err(anyhow::anyhow!("decompressing: {e}").into()),
        Err(Streamed::TooMuch) => Err(LimitError::Expands { what, limit }.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bomb(n: usize) -> Vec<u8> {
        let mut enc = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
        let chunk = vec![0u8; 1 << 20];
        let mut left = n;
        while left > 0 {
            let k = left.min(chunk.len());
            std::io::Write::write_all(&mut enc, &chunk[..k]).unwrap();
            left -= k;
        }
        enc.finish().unwrap()
    }

    #[test]
    fn streamed_frames_stop_at_the_ceiling() {
        // A streaming encoder does not record the size: the cap on the output catches it.
        let z = bomb(64 << 20);
        assert!(zstd::zstd_safe::get_frame_content_size(&z)
            .unwrap()
            .is_none());
        let e = decompress_capped(&z, MIB, "lock file").unwrap_err();
        assert!(
            e.to_string().contains("more than the 1 MiB a lock file"),
            "{e}"
        );
        assert_eq!(
            decompress_capped(&z, 64 << 20, "x").unwrap().len(),
            64 << 20
        );
    }

    #[test]
    fn declared_sizes_are_checked_before_allocating() {
        let z = zstd::bulk::compress(&vec![0u8; 3 * MIB], 3).unwrap();
        let e = decompress_capped(&z, MIB, "snapshot file").unwrap_err();
        assert!(e.to_string().contains("declares 3145728 bytes"), "{e}");
        assert_eq!(decompress_capped(&z, 3 * MIB, "x").unwrap().len(), 3 * MIB);
        // Two frames: more than the first declares, streamed.
        let mut two = z.clone();
        two.extend_from_slice(&z);
        assert_eq!(
            decompress_capped(&two, 6 * MIB, "x").unwrap().len(),
            6 * MIB
        );
        assert!(decompress_capped(&two, 5 * MIB, "x").is_err());
    }

    #[test]
    fn blob_lengths() {
        let mut b = PackedBlob {
            ty: BlobType::Data,
            id: crate::Id::hash(b""),
            offset: 0,
            length: 100,
            uncompressed_length: (8 << 20) as u32,
        };
        assert!(check_blob(&b).is_ok());
        b.uncompressed_length += 1;
        assert!(check_blob(&b).is_err());
        b.ty = BlobType::Tree;
        assert!(check_blob(&b).is_ok());
        b.uncompressed_length = u32::MAX;
        assert!(check_blob(&b).is_err());
        b.uncompressed_length = 0;
        b.length = u32::MAX;
        assert!(check_blob(&b).is_err());
        let z = zstd::bulk::compress(&[1u8; 100], 3).unwrap();
        assert!(decompress_exact(&z, 99).is_err());
        assert_eq!(decompress_exact(&z, 100).unwrap().len(), 100);
        // A frame without a stated size, claimed to be huge: memory follows the real output.
        let mut enc = zstd::stream::Encoder::new(Vec::new(), 1).unwrap();
        std::io::Write::write_all(&mut enc, &[1u8; 100]).unwrap();
        let z = enc.finish().unwrap();
        let out = decompress_exact(&z, 200 << 20).unwrap();
        assert_eq!(out.len(), 100);
        assert!(out.capacity() < 1 << 20);
        assert!(decompress_exact(&z, 99).is_err());
    }

    #[test]
    fn a_pack_file_beyond_the_ceiling_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let be = cairn_backend::local::LocalBackend::new(dir.path());
        let name = "ab".to_string() + &"0".repeat(62);
        let h = cairn_backend::Handle::new(FileType::Data, name.clone());
        std::fs::create_dir_all(dir.path().join("data/ab")).unwrap();
        // Sparse: nothing is written, but a whole-file read would allocate 2 GiB.
        let f = std::fs::File::create(dir.path().join("data/ab").join(&name)).unwrap();
        f.set_len(2 * MAX_PACK_FILE).unwrap();
        let e = load_pack_bounded(&be, &h).unwrap_err().to_string();
        assert!(e.contains("more than the 1024 MiB a pack may have"), "{e}");
        f.set_len(10).unwrap();
        assert_eq!(load_pack_bounded(&be, &h).unwrap().len(), 10);
    }
}

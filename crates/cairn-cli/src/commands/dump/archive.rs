//! The archive formats of `dump`: tar entries as restic's `internal/dump` writes them, and
//! zip entries as Go's `archive/zip` writes them for restic.

use anyhow::Context;
use cairn_core::content::ExactReader;
use cairn_core::format::gotime::{self, GoTime};
use cairn_core::format::tree::{mode, Node, NodeType};
use cairn_core::repository::IndexedRepository;
use chrono::{Datelike, Timelike};
use std::io::Write;

/// Go's zero `time.Time` (0001-01-01T00:00:00Z) in Unix seconds.
const GO_ZERO_TIME: i64 = -62_135_596_800;

// ---------------------------------------------------------------------------------------------
// tar

pub(super) fn tar_entry<W: Write>(
    repo: &IndexedRepository,
    tar: &mut tar::Builder<W>,
    path: &[u8],
    n: &Node,
) -> anyhow::Result<()> {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let p = std::path::Path::new(OsStr::from_bytes(path));
    let shown = || String::from_utf8_lossy(path).into_owned();
    let mut h = tar::Header::new_gnu();
    h.set_mode(mode::to_unix_perm(n.mode));
    h.set_uid(n.uid as u64);
    h.set_gid(n.gid as u64);
    let _ = h.set_username(&n.user);
    let _ = h.set_groupname(&n.group);
    h.set_mtime(gotime::to_unix(&n.mtime).0.max(0) as u64);
    h.set_size(0);
    match n.kind {
        NodeType::Dir => {
            h.set_entry_type(tar::EntryType::Directory);
            let mut dir = path.to_vec();
            dir.push(b'/');
            tar.append_data(
                &mut h,
                std::path::Path::new(OsStr::from_bytes(&dir)),
                std::io::empty(),
            )
        }
        NodeType::Symlink => {
            h.set_entry_type(tar::EntryType::Symlink);
            tar.append_link(
                &mut h,
                p,
                std::path::Path::new(OsStr::from_bytes(&n.linktarget)),
            )
        }
        NodeType::File => {
            h.set_entry_type(tar::EntryType::Regular);
            h.set_size(n.size);
            tar.append_data(
                &mut h,
                p,
                ExactReader::new(repo, n, path, Some(&crate::signals::INTERRUPTED)),
            )
        }
        // Other nodes (only those directly in the dumped directory get here) become empty
        // regular files, as Go's tar writer makes of restic's headers without a type.
        _ => {
            h.set_entry_type(tar::EntryType::Regular);
            tar.append_data(&mut h, p, std::io::empty())
        }
    }
    .with_context(|| format!("writing {:?} to the tar archive", shown()))
}

// ---------------------------------------------------------------------------------------------
// zip

/// Go's `zip.FileHeader.SetMode`: the Unix mode (type, setuid/setgid/sticky and permission
/// bits, from Go's `fs.FileMode` as restic stores it) in the high 16 bits, and the MS-DOS
/// directory and read-only attributes in the low ones.
fn zip_external_attributes(m: u32) -> u32 {
    // Go's fs.ModeIrregular; with the other type bits it makes up fs.ModeType.
    const IRREGULAR: u32 = 1 << 19;
    const TYPE: u32 = mode::DIR
        | mode::SYMLINK
        | mode::NAMED_PIPE
        | mode::SOCKET
        | mode::DEVICE
        | mode::CHAR_DEVICE
        | IRREGULAR;
    let mut unix = match m & TYPE {
        mode::DIR => 0o040000,
        mode::SYMLINK => 0o120000,
        mode::NAMED_PIPE => 0o010000,
        mode::SOCKET => 0o140000,
        mode::DEVICE => 0o060000,
        t if t == mode::DEVICE | mode::CHAR_DEVICE => 0o020000,
        _ => 0o100000,
    };
    if m & mode::SETUID != 0 {
        unix |= 0o4000;
    }
    if m & mode::SETGID != 0 {
        unix |= 0o2000;
    }
    if m & mode::STICKY != 0 {
        unix |= 0o1000;
    }
    unix |= m & mode::PERM;
    let mut attrs = unix << 16;
    if m & mode::DIR != 0 {
        attrs |= 0x10;
    }
    if m & 0o200 == 0 {
        attrs |= 0x01;
    }
    attrs
}

/// Go's `timeToMsDosTime` on the wall-clock time in the time's own offset, including its
/// wrap-around for years outside 1980–2107.
fn msdos_time(t: &GoTime) -> (u16, u16) {
    let n = t.naive_local();
    let date =
        i64::from(n.day()) + (i64::from(n.month()) << 5) + ((i64::from(n.year()) - 1980) << 9);
    let time =
        i64::from(n.second() / 2) + (i64::from(n.minute()) << 5) + (i64::from(n.hour()) << 11);
    (date as u16, time as u16)
}

pub(super) fn zip_entry<W: Write>(
    repo: &IndexedRepository,
    zip: &mut zip::ZipWriter<zip::write::StreamWriter<W>>,
    path: &[u8],
    n: &Node,
) -> anyhow::Result<()> {
    use zip::write::FullFileOptions;
    let shown = || String::from_utf8_lossy(path).into_owned();
    let is_dir = n.kind == NodeType::Dir;
    let mut name = path.to_vec();
    if is_dir {
        name.push(b'/');
    }
    let external = zip_external_attributes(n.mode);
    let (date, time) = msdos_time(&n.mtime);
    let mut opts = FullFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .system(zip::System::Unix)
        .external_attributes(external)
        // A day that the wrap-around made invalid (February 29 of a year that is not a leap
        // year) falls back to 1980-01-01; the timestamp field below still has the time.
        .last_modified_time(zip::DateTime::try_from_msdos(date, time).unwrap_or_default());
    // Info-ZIP's extended timestamp with the modification time only, as Go's writer adds it
    // (unless the time is Go's zero time, 0001-01-01T00:00:00Z).
    let (secs, nanos) = gotime::to_unix(&n.mtime);
    if (secs, nanos) != (GO_ZERO_TIME, 0) {
        let mut ut = [0u8; 5];
        ut[0] = 1;
        // Go's uint32(t.Unix()): wraps outside 1970–2106.
        ut[1..].copy_from_slice(&(secs as u32).to_le_bytes());
        opts.add_extra_field(0x5455, ut, false)
            .context("zip extended timestamp")?;
    }
    // The zip crate writes the entries of (Unix) directory-like types — directories, and the
    // sockets and block devices that may sit directly in the dumped directory — without a data
    // descriptor; in a stream it cannot go back to fill in their header, so they must be
    // complete before they are written.
    let dir_like = {
        let t = (external >> 16) & 0o170000;
        t & 0o040000 != 0
    };
    if !dir_like {
        let opts = opts.large_file(n.size >= u64::from(u32::MAX));
        zip.start_file_with_options(opts.name(&name))
            .with_context(|| format!("writing {:?} to the zip archive", shown()))?;
        match n.kind {
            NodeType::Symlink => zip.write_all(&n.linktarget),
            NodeType::File => std::io::copy(
                &mut ExactReader::new(repo, n, path, Some(&crate::signals::INTERRUPTED)),
                zip,
            )
            .map(|_| ()),
            // Fifos and character devices directly in the dumped directory: empty entries.
            _ => Ok(()),
        }
        .with_context(|| format!("writing {:?} to the zip archive", shown()))?;
        return Ok(());
    }
    match std::str::from_utf8(&name) {
        Ok(s) if is_dir => zip.add_directory(s, opts),
        // A name that is not UTF-8, or a socket or device: written as a complete entry of an
        // archive of its own (in memory, where the header can be finished) and merged in.
        _ => {
            let mut one = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
            one.start_file_with_options(opts.name(&name))
                .and_then(|()| one.finish())
                .and_then(zip::ZipArchive::new)
                .and_then(|a| zip.merge_archive(a))
        }
    }
    .with_context(|| format!("writing {:?} to the zip archive", shown()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_attributes_are_gos() {
        // Values as Go's archive/zip computes them for restic's node modes.
        assert_eq!(zip_external_attributes(0o644), 0o100644 << 16);
        assert_eq!(zip_external_attributes(0o444), (0o100444 << 16) | 1);
        assert_eq!(
            zip_external_attributes(mode::DIR | mode::STICKY | 0o777),
            (0o41777 << 16) | 0x10
        );
        assert_eq!(
            zip_external_attributes(mode::SETUID | 0o755),
            0o104755 << 16
        );
        assert_eq!(
            zip_external_attributes(mode::SYMLINK | 0o777),
            0o120777 << 16
        );
        assert_eq!(
            zip_external_attributes(mode::NAMED_PIPE | 0o644),
            0o10644 << 16
        );
        assert_eq!(
            zip_external_attributes(mode::DEVICE | mode::CHAR_DEVICE | 0o620),
            0o20620 << 16
        );
    }

    #[test]
    fn msdos_time_wraps_like_go() {
        let t = gotime::parse_rfc3339("1975-03-04T05:06:07+02:00").expect("time parses");
        let (d, tm) = msdos_time(&t);
        // (1975-1980) wraps to 123 (2103), as in restic's archives.
        assert_eq!(d >> 9, 123);
        assert_eq!((d >> 5) & 0xf, 3);
        assert_eq!(d & 0x1f, 4);
        assert_eq!(tm >> 11, 5);
        assert_eq!((tm >> 5) & 0x3f, 6);
        assert_eq!(tm & 0x1f, 3);
    }
}

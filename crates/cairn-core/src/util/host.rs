//! This machine's host name and the user running cairn, as restic records them in keys,
//! locks and snapshots.

/// This machine's name (`gethostname`); empty when the system cannot tell.
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length, which is passed along.
    if unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) } == 0 {
        let end = buf.iter().position(|&c| c == 0).unwrap_or(buf.len());
        return String::from_utf8_lossy(&buf[..end]).into_owned();
    }
    String::new()
}

/// The user's name: `$USER`, else the name of the process's uid (as restic's `user.Current`
/// falls back to the password database).
pub fn username() -> String {
    std::env::var("USER")
        .unwrap_or_else(|_| crate::archiver::metadata::NameCache::default().user(current_uid()))
}

/// The process's real uid.
pub fn current_uid() -> u32 {
    current_uid_gid().0
}

/// The process's real uid and gid.
pub fn current_uid_gid() -> (u32, u32) {
    // SAFETY: getuid/getgid have no preconditions and cannot fail.
    unsafe { (libc::getuid(), libc::getgid()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_plain_text() {
        let h = hostname();
        assert!(!h.contains('\0'), "{h:?}");
        assert_eq!(h, hostname(), "stable");
        assert!(!username().contains('\0'));
    }
}

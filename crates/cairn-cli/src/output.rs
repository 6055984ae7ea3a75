//! Human-readable formatting shared by the commands.

pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut v = n as f64 / 1024.0;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.3} {}", UNITS[u])
}

pub fn duration(secs: f64) -> String {
    let s = secs as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

/// `ls -l` style permission string from a Go file mode.
pub fn permissions(mode: u32, kind: &str) -> String {
    use cairn_core::format::tree::mode as m;
    let t = match kind {
        "dir" => 'd',
        "symlink" => 'L',
        "dev" => 'D',
        "chardev" => 'c',
        "fifo" => 'p',
        "socket" => 'S',
        _ => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(t);
    let rwx = [
        (0o400, 'r'),
        (0o200, 'w'),
        (0o100, 'x'),
        (0o40, 'r'),
        (0o20, 'w'),
        (0o10, 'x'),
        (0o4, 'r'),
        (0o2, 'w'),
        (0o1, 'x'),
    ];
    for (i, (bit, c)) in rwx.iter().enumerate() {
        let set = mode & bit != 0;
        let ch = match i {
            2 if mode & m::SETUID != 0 => {
                if set {
                    's'
                } else {
                    'S'
                }
            }
            5 if mode & m::SETGID != 0 => {
                if set {
                    's'
                } else {
                    'S'
                }
            }
            8 if mode & m::STICKY != 0 => {
                if set {
                    't'
                } else {
                    'T'
                }
            }
            _ => {
                if set {
                    *c
                } else {
                    '-'
                }
            }
        };
        s.push(ch);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn formats() {
        assert_eq!(bytes(10), "10 B");
        assert_eq!(bytes(1536), "1.500 KiB");
        assert_eq!(duration(75.0), "1:15");
        assert_eq!(permissions(420, "file"), "-rw-r--r--");
        assert_eq!(permissions(2147484141, "dir"), "drwxr-xr-x");
    }
}

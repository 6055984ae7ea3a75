//! Human-readable formatting shared by the commands.

use cairn_core::format::tree::{mode, Node, NodeType};

/// restic's `ui.FormatBytes`: B below 1 KiB, else three decimals of the largest unit up to TiB.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
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

/// A Go `FileMode.String()`, as restic prints permissions: one letter per set type bit from
/// "dalTLDpSugct?", or "-" when none, then rwxrwxrwx.
pub fn permissions(mode: u32) -> String {
    const TYPE_CHARS: &[u8] = b"dalTLDpSugct?";
    let mut s = String::with_capacity(12);
    for (i, c) in TYPE_CHARS.iter().enumerate() {
        if mode & (1 << (31 - i)) != 0 {
            s.push(*c as char);
        }
    }
    if s.is_empty() {
        s.push('-');
    }
    for i in 0..9 {
        s.push(if mode & (1 << (8 - i)) != 0 {
            b"rwxrwxrwx"[i] as char
        } else {
            '-'
        });
    }
    s
}

/// Go's mode bits for a node's type, as restic's `formatNode` adds them.
fn type_bits(kind: &NodeType) -> u32 {
    match kind {
        NodeType::Dir => mode::DIR,
        NodeType::Symlink => mode::SYMLINK,
        NodeType::Dev => mode::DEVICE,
        NodeType::Chardev => mode::DEVICE | mode::CHAR_DEVICE,
        NodeType::Fifo => mode::NAMED_PIPE,
        NodeType::Socket => mode::SOCKET,
        NodeType::File | NodeType::Other(_) => 0,
    }
}

/// restic's `formatNode` (ls and find): the path, or an `ls -l` style line whose size is
/// right-aligned bytes or, with `human`, restic's `FormatBytes`. Names and link targets are
/// raw bytes, as restic writes them.
pub fn node_line(out: &mut Vec<u8>, path: &[u8], n: &Node, long: bool, human: bool) {
    if !long {
        out.extend_from_slice(path);
        return;
    }
    let size = if human {
        bytes(n.size)
    } else {
        format!("{:6}", n.size)
    };
    out.extend_from_slice(
        format!(
            "{} {:5} {:5} {size} {} ",
            permissions(type_bits(&n.kind) | n.mode),
            n.uid,
            n.gid,
            local_time(&n.mtime)
        )
        .as_bytes(),
    );
    out.extend_from_slice(path);
    if n.kind == NodeType::Symlink {
        out.extend_from_slice(b" -> ");
        out.extend_from_slice(&n.linktarget);
    }
}

/// A snapshot or file time in the local time zone, as restic's text listings show them.
pub fn local_time(t: &cairn_core::format::gotime::GoTime) -> String {
    t.with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn formats() {
        assert_eq!(bytes(10), "10 B");
        assert_eq!(bytes(1536), "1.500 KiB");
        assert_eq!(duration(75.0), "1:15");
        assert_eq!(permissions(420), "-rw-r--r--");
        assert_eq!(permissions(2147484141), "drwxr-xr-x");
        assert_eq!(permissions(8389101), "urwxr-xr-x");
        assert_eq!(permissions(134218239), "Lrwxrwxrwx");
        assert_eq!(permissions((1 << 31) | (1 << 20) | 0o777), "dtrwxrwxrwx");
        assert_eq!(permissions((1 << 26) | (1 << 21) | 0o620), "Dcrw--w----");
    }
}

/// `RESTIC_PROGRESS_FPS` as an interval between progress updates (at most 60 a second), or
/// None when it is not set to a positive number.
pub fn progress_interval() -> Option<std::time::Duration> {
    std::env::var("RESTIC_PROGRESS_FPS")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|fps| fps.is_finite() && *fps > 0.0)
        .map(|fps| std::time::Duration::from_secs_f64(1.0 / fps.min(60.0)))
}

/// A duration as Go's time.ParseDuration reads it ("90s", "5m", "1h30m", "1.5h").
pub fn parse_duration(s: &str) -> anyhow::Result<std::time::Duration> {
    let mut rest = s.trim();
    if rest == "0" {
        return Ok(std::time::Duration::ZERO);
    }
    if rest.is_empty() {
        anyhow::bail!("empty duration");
    }
    let mut secs = 0f64;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| anyhow::anyhow!("missing unit in duration {s:?}"))?;
        let value: f64 = rest[..num_end]
            .parse()
            .map_err(|_| anyhow::anyhow!("invalid duration {s:?}"))?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let scale = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            u => anyhow::bail!("unknown unit {u:?} in duration {s:?}"),
        };
        secs += value * scale;
        rest = &rest[unit_end..];
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod duration_tests {
    use super::parse_duration;
    use std::time::Duration;

    #[test]
    fn go_durations() {
        assert_eq!(parse_duration("5m").unwrap(), Duration::from_secs(300));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for bad in ["", "5", "5x", "m", "1h5"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }
}

//! Times typed on the command line, read as restic reads them: Go's `time.ParseInLocation`
//! with restic's layouts (local time unless a zone is given), and the plain
//! `YYYY-MM-DD hh:mm:ss` of `backup --time` and `rewrite --new-time`.

use crate::format::gotime::GoTime;

/// Why a `YYYY-MM-DD hh:mm:ss` time was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocalTimeError {
    /// Not in the format (chrono's reason).
    #[error("{0}")]
    Format(String),
    /// A wall-clock time the local zone skips (a DST gap).
    #[error("no such local time")]
    NoSuchLocalTime,
}

/// `2006-01-02 15:04:05` in local time (restic's `backup --time`, `rewrite --new-time`).
/// The error is the reason alone; callers say which option it was.
pub fn parse_local_seconds(s: &str) -> Result<GoTime, LocalTimeError> {
    use chrono::TimeZone;
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .map_err(|e| LocalTimeError::Format(e.to_string()))?;
    chrono::Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.fixed_offset())
        .ok_or(LocalTimeError::NoSuchLocalTime)
}

/// restic's accepted layouts, in Go's reference-time notation.
const LAYOUTS: [&str; 11] = [
    "2006-01-02",
    "2006-01-02 15:04",
    "2006-01-02 15:04:05",
    "2006-01-02 15:04:05 -0700",
    "2006-01-02 15:04:05 MST",
    "02.01.2006",
    "02.01.2006 15:04",
    "02.01.2006 15:04:05",
    "02.01.2006 15:04:05 -0700",
    "02.01.2006 15:04:05 MST",
    "Mon Jan 2 15:04:05 -0700 MST 2006",
];

/// The layout elements used in [`LAYOUTS`]; anything else is literal text.
const ELEMENTS: [&str; 11] = [
    "2006", "-0700", "MST", "Jan", "Mon", "01", "02", "15", "04", "05", "2",
];

const MONTHS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
];
const WEEKDAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

/// A time in one of restic's layouts (`find --oldest/--newest`), in local time unless the
/// text names a zone or offset.
pub fn parse(s: &str) -> crate::Result<GoTime> {
    LAYOUTS
        .iter()
        .find_map(|l| parse_layout(s, l))
        .ok_or_else(|| crate::Error::Invalid(format!("unable to parse time: {s:?}")))
}

/// Between `min` and `max` leading digits of `v`.
fn digits(v: &str, min: usize, max: usize) -> Option<(u32, &str)> {
    let n = v.bytes().take(max).take_while(u8::is_ascii_digit).count();
    if n < min {
        return None;
    }
    Some((v[..n].parse().ok()?, &v[n..]))
}

/// Go's `time.ParseInLocation(layout, s, time.Local)` for the elements restic's layouts use.
fn parse_layout(s: &str, layout: &str) -> Option<GoTime> {
    use chrono::{NaiveDate, TimeZone};
    let mut v = s;
    let mut l = layout;
    let (mut y, mut mo, mut d, mut h, mut mi, mut sec, mut nanos) = (0i32, 1, 1, 0, 0, 0, 0);
    let mut offset: Option<i32> = None;
    let mut abbrev: Option<&str> = None;
    while !l.is_empty() {
        let Some(el) = ELEMENTS.iter().find(|e| l.starts_with(**e)) else {
            let c = l.chars().next()?;
            l = &l[c.len_utf8()..];
            if c == ' ' {
                // A space in the layout matches any run of spaces, as in Go.
                let t = v.trim_start_matches(' ');
                if t.len() == v.len() {
                    return None;
                }
                v = t;
            } else {
                v = v.strip_prefix(c)?;
            }
            continue;
        };
        l = &l[el.len()..];
        match *el {
            "2006" => {
                let (n, r) = digits(v, 4, 4)?;
                (y, v) = (n as i32, r);
            }
            "01" => (mo, v) = digits(v, 2, 2)?,
            "02" => (d, v) = digits(v, 2, 2)?,
            "2" => (d, v) = digits(v, 1, 2)?,
            "15" => (h, v) = digits(v, 1, 2)?,
            "04" => (mi, v) = digits(v, 2, 2)?,
            "05" => {
                (sec, v) = digits(v, 2, 2)?;
                // Go accepts a fraction after the seconds even if the layout has none.
                if let Some(r) = v.strip_prefix('.').or_else(|| v.strip_prefix(',')) {
                    let n = r.bytes().take_while(u8::is_ascii_digit).count();
                    if n > 0 {
                        let frac = &r[..n.min(9)];
                        nanos = frac.parse::<u32>().ok()? * 10u32.pow(9 - frac.len() as u32);
                        v = &r[n..];
                    }
                }
            }
            "-0700" => {
                let sign = match v.as_bytes().first()? {
                    b'+' => 1,
                    b'-' => -1,
                    _ => return None,
                };
                let (hh, r) = digits(&v[1..], 2, 2)?;
                let (mm, r) = digits(r, 2, 2)?;
                offset = Some(sign * (hh as i32 * 3600 + mm as i32 * 60));
                v = r;
            }
            "MST" => {
                let n = v.bytes().take_while(u8::is_ascii_uppercase).count();
                if !(3..=5).contains(&n) {
                    return None;
                }
                abbrev = Some(&v[..n]);
                v = &v[n..];
            }
            "Jan" => {
                let name = v.get(..3)?.to_ascii_lowercase();
                mo = MONTHS.iter().position(|m| *m == name)? as u32 + 1;
                v = &v[3..];
            }
            _ => {
                // "Mon": a weekday name, checked for form only, as Go does.
                let name = v.get(..3)?.to_ascii_lowercase();
                WEEKDAYS.iter().position(|m| *m == name)?;
                v = &v[3..];
            }
        }
    }
    if !v.is_empty() || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let naive = NaiveDate::from_ymd_opt(y, mo, d)?.and_hms_nano_opt(h, mi, sec, nanos)?;
    if let Some(off) = offset {
        let tz = chrono::FixedOffset::east_opt(off)?;
        return tz.from_local_datetime(&naive).single();
    }
    let local = local_time_of(naive);
    match abbrev {
        None => Some(local),
        Some(a) if a != "UTC" && local_abbrev(&local).as_deref() == Some(a) => Some(local),
        // "UTC", and (as in Go) an unknown abbreviation: a zone with offset 0.
        Some(_) => Some(chrono::Utc.from_utc_datetime(&naive).fixed_offset()),
    }
}

/// A wall-clock time in the local zone (Go's `ParseInLocation(..., time.Local)`).
fn local_time_of(naive: chrono::NaiveDateTime) -> GoTime {
    use chrono::{LocalResult, Offset, TimeZone};
    match chrono::Local.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.fixed_offset(),
        LocalResult::None => {
            // In a gap: use the offset in effect just before it.
            let off = chrono::Local
                .offset_from_utc_datetime(&(naive - chrono::TimeDelta::hours(1)))
                .fix();
            off.from_local_datetime(&naive)
                .single()
                .unwrap_or_else(|| chrono::Utc.from_utc_datetime(&naive).fixed_offset())
        }
    }
}

/// The local zone's abbreviation at `t` (e.g. "CET"), from the C library.
fn local_abbrev(t: &GoTime) -> Option<String> {
    let secs = t.timestamp() as libc::time_t;
    // SAFETY: localtime_r writes into the zeroed tm we own; tm_zone then points to static
    // storage of the C library (or is null).
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() || tm.tm_zone.is_null() {
            return None;
        }
        Some(
            std::ffi::CStr::from_ptr(tm.tm_zone)
                .to_string_lossy()
                .into_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restics_layouts() {
        let t = |s: &str| parse(s).map(|t| t.timestamp()).ok();
        assert_eq!(t("2020-01-02 03:04:05 +0100"), Some(1577930645));
        assert_eq!(t("02.01.2020 03:04:05 +0100"), Some(1577930645));
        assert_eq!(t("Thu Jan 2 03:04:05 +0100 CET 2020"), Some(1577930645));
        assert_eq!(t("2020-01-02 02:04:05 UTC"), Some(1577930645));
        assert_eq!(t("2020-01-02 03:04:05.5 +0100"), Some(1577930645));
        assert!(t("2020-01-02").is_some());
        assert!(t("2020-01-02 3:04").is_some());
        assert!(t("2020-1-02").is_none());
        assert!(t("2020-02-30").is_none());
        assert!(t("2020-01-02 03:04:05x").is_none());
        assert!(t("xx").is_none());
        assert_eq!(
            parse("xx").expect_err("no layout").to_string(),
            "unable to parse time: \"xx\""
        );
    }

    #[test]
    fn local_seconds() {
        let t = parse_local_seconds("2021-06-07 08:09:10").expect("valid");
        assert_eq!(
            t.format("%Y-%m-%d %H:%M:%S").to_string(),
            "2021-06-07 08:09:10"
        );
        assert!(parse_local_seconds("2021-06-07").is_err());
        assert!(parse_local_seconds("2021-06-07 25:00:00").is_err());
    }
}

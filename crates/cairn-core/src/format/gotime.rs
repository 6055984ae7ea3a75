//! Times as restic stores them: Go's `time.Time` written by `MarshalJSON`
//! (`time.RFC3339Nano`) and read by `UnmarshalJSON` / `time.Parse`.
//!
//! A JSON time value is `"` + [`format_rfc3339_nano`] + `"`: the formatted text never
//! contains characters that JSON would escape.

use anyhow::anyhow;
use chrono::{
    DateTime, Datelike, FixedOffset, Local, NaiveDate, NaiveDateTime, NaiveTime, Offset, TimeZone,
    Timelike, Utc,
};

/// A point in time with the UTC offset it was written with.
pub type GoTime = chrono::DateTime<chrono::FixedOffset>;

const NANOS_PER_SEC: u32 = 1_000_000_000;

/// Go `time.RFC3339Nano` formatting, as `time.Time.MarshalJSON` writes it:
/// `YYYY-MM-DDThh:mm:ss[.fraction](Z|±hh:mm)`. The fraction has up to 9 digits with
/// trailing zeros removed and is omitted when zero; the zone is `Z` when the offset is
/// exactly 0, else `±hh:mm` (seconds of an offset are dropped, as Go does).
///
/// The time first goes through [`clamp_year`] (restic's `FixTime`, applied before
/// every node is written), so the year always has four digits. For a time from
/// [`from_unix_local`], call [`clamp_year_local`] first to match restic exactly when
/// the clamped date falls into another DST period.
pub fn format_rfc3339_nano(t: &GoTime) -> String {
    let t = clamp_year(normalize_leap_second(*t));
    let n = t.naive_local();
    let mut s = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        n.year(),
        n.month(),
        n.day(),
        n.hour(),
        n.minute(),
        n.second()
    );
    let nanos = n.nanosecond();
    if nanos != 0 {
        let frac = format!("{nanos:09}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    let offset = t.offset().local_minus_utc();
    if offset == 0 {
        s.push('Z');
    } else {
        // Go: zone := offset / 60 (truncating), sign from zone, then hh:mm.
        let zone = offset / 60;
        s.push(if zone < 0 { '-' } else { '+' });
        let zone = zone.abs();
        s.push_str(&format!("{:02}:{:02}", zone / 60, zone % 60));
    }
    s
}

/// Parses a time the way Go's `time.Parse(time.RFC3339Nano, s)` (and so
/// `time.Time.UnmarshalJSON`) does.
///
/// Accepted: `YYYY-MM-DDThh:mm:ss[(.|,)digits](Z|±hh:mm)`, with `T` and `Z` uppercase
/// only; any number of fraction digits (digits beyond the ninth are dropped, not
/// rounded); and Go's leniencies: a one-digit hour (`T3:04:05`), a comma before the
/// fraction, zone offsets up to `24:60` in each field. Rejected like Go: a second of
/// 60, days that don't exist (`2023-02-29`), missing zone, trailing text.
///
/// Deviation: offsets of ±24:00 or more, which Go accepts, are an error here because
/// chrono's [`FixedOffset`] cannot hold them.
pub fn parse_rfc3339(s: &str) -> crate::Result<GoTime> {
    parse_go(s.as_bytes())
        .map_err(|why| anyhow!("cannot parse time {s:?} as RFC 3339: {why}").into())
}

/// Reads a Go `getnum`: one or two digits (`fixed`: exactly two).
fn getnum(p: &mut &[u8], fixed: bool) -> Option<u32> {
    let d0 = p.first().filter(|c| c.is_ascii_digit())?;
    match p.get(1).filter(|c| c.is_ascii_digit()) {
        Some(d1) => {
            let v = u32::from(d0 - b'0') * 10 + u32::from(d1 - b'0');
            *p = &p[2..];
            Some(v)
        }
        None if fixed => None,
        None => {
            let v = u32::from(d0 - b'0');
            *p = &p[1..];
            Some(v)
        }
    }
}

fn expect(p: &mut &[u8], c: u8) -> std::result::Result<(), &'static str> {
    match p.split_first() {
        Some((&first, rest)) if first == c => {
            *p = rest;
            Ok(())
        }
        _ => Err("unexpected character"),
    }
}

/// Go's general `time.parse` specialised to the layout
/// `2006-01-02T15:04:05.999999999Z07:00`.
fn parse_go(mut p: &[u8]) -> std::result::Result<GoTime, &'static str> {
    // 2006: exactly four digits.
    let year_digits = p.get(..4).ok_or("bad year")?;
    if !year_digits.iter().all(u8::is_ascii_digit) {
        return Err("bad year");
    }
    let year = year_digits
        .iter()
        .fold(0i32, |acc, d| acc * 10 + i32::from(d - b'0'));
    p = &p[4..];
    expect(&mut p, b'-')?;
    // 01
    let month = getnum(&mut p, true).ok_or("bad month")?;
    if !(1..=12).contains(&month) {
        return Err("month out of range");
    }
    expect(&mut p, b'-')?;
    // 02
    let day = getnum(&mut p, true).ok_or("bad day")?;
    expect(&mut p, b'T')?;
    // 15: one or two digits.
    let hour = getnum(&mut p, false).ok_or("bad hour")?;
    if hour >= 24 {
        return Err("hour out of range");
    }
    expect(&mut p, b':')?;
    // 04
    let minute = getnum(&mut p, true).ok_or("bad minute")?;
    if minute >= 60 {
        return Err("minute out of range");
    }
    expect(&mut p, b':')?;
    // 05
    let second = getnum(&mut p, true).ok_or("bad second")?;
    if second >= 60 {
        return Err("second out of range");
    }
    // .999999999: optional; '.' or ',' then any number of digits, truncated to 9.
    let mut nanos = 0u32;
    if p.len() >= 2 && matches!(p[0], b'.' | b',') && p[1].is_ascii_digit() {
        let n = 1 + p[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        let digits = &p[1..n.min(10)];
        nanos = digits
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'));
        for _ in digits.len()..9 {
            nanos *= 10;
        }
        p = &p[n..];
    }
    // Z07:00
    let offset_secs: i32 = if p.first() == Some(&b'Z') {
        p = &p[1..];
        0
    } else {
        if p.len() < 6 || p[3] != b':' {
            return Err("bad time zone");
        }
        let hh = getnum(&mut &p[1..3], true).ok_or("bad time zone")?;
        let mm = getnum(&mut &p[4..6], true).ok_or("bad time zone")?;
        // Go tests with > rather than >=: offsets of 24 hours or 60 minutes pass.
        if hh > 24 {
            return Err("time zone offset hour out of range");
        }
        if mm > 60 {
            return Err("time zone offset minute out of range");
        }
        let secs = ((hh * 60 + mm) * 60) as i32;
        let secs = match p[0] {
            b'+' => secs,
            b'-' => -secs,
            _ => return Err("bad time zone"),
        };
        p = &p[6..];
        secs
    };
    if !p.is_empty() {
        return Err("extra text");
    }
    let date = NaiveDate::from_ymd_opt(year, month, day).ok_or("day out of range")?;
    let time = NaiveTime::from_hms_nano_opt(hour, minute, second, nanos).ok_or("bad time")?;
    let offset = FixedOffset::east_opt(offset_secs)
        .ok_or("time zone offset of 24 hours or more is not supported")?;
    offset
        .from_local_datetime(&date.and_time(time))
        .single()
        .ok_or("time out of range")
}

/// Local time of a Unix timestamp (secs, nanos) with the machine's local UTC offset at
/// that moment (chrono's [`Local`], which reads `TZ` and `/etc/localtime` like Go), as
/// restic does when it records file times (`time.Unix(secs, nanos)`).
///
/// `nanos` of a second or more carry into `secs`, as in Go's `time.Unix`.
///
/// Instants beyond ±200,000 years, which chrono cannot hold, come back already passed
/// through [`clamp_year_local`] (year 0 or 9999), i.e. as restic would write them.
pub fn from_unix_local(secs: i64, nanos: u32) -> GoTime {
    let secs = secs.saturating_add(i64::from(nanos / NANOS_PER_SEC));
    let nanos = nanos % NANOS_PER_SEC;
    if (-CHRONO_SAFE_SECS..=CHRONO_SAFE_SECS).contains(&secs) {
        if let Some(utc) = DateTime::<Utc>::from_timestamp(secs, nanos) {
            return utc.with_timezone(&Local).fixed_offset();
        }
    }
    // Go's local wall clock for the instant, then restic's FixTime in Local.
    let offset = local_offset_at(secs);
    let local = i128::from(secs) + i128::from(offset);
    let days = local.div_euclid(86_400) as i64;
    let secs_of_day = local.rem_euclid(86_400) as u32;
    let (year, month, day) = civil_from_days(days);
    let target = if year < 0 { 0 } else { 9999 };
    let time =
        NaiveTime::from_num_seconds_from_midnight_opt(secs_of_day, nanos).unwrap_or_default();
    go_date_local(go_date(target, month, day).and_time(time))
}

/// About ±200,000 years: well inside chrono's range (±262,143 years) even after adding
/// an offset or a 400-year shift.
const CHRONO_SAFE_SECS: i64 = 200_000 * 366 * 86_400;

/// Seconds in 400 Gregorian years; calendars (and so time zone rules, which are given
/// by month, week and weekday) repeat with this period.
const SECS_PER_400_YEARS: i64 = 146_097 * 86_400;

/// Local offset (seconds east of UTC) in force at a Unix time, for any i64. Instants
/// chrono cannot hold are moved by whole 400-year periods to its edge of range, which
/// keeps both the first zone (before any transition) and the recurring rules of the
/// far future the same, as Go applies them.
fn local_offset_at(secs: i64) -> i32 {
    let mut s = secs;
    if s > CHRONO_SAFE_SECS {
        let periods = (s - CHRONO_SAFE_SECS) / SECS_PER_400_YEARS + 1;
        s -= periods * SECS_PER_400_YEARS;
    } else if s < -CHRONO_SAFE_SECS {
        let periods = (-CHRONO_SAFE_SECS - s) / SECS_PER_400_YEARS + 1;
        s += periods * SECS_PER_400_YEARS;
    }
    DateTime::<Utc>::from_timestamp(s, 0)
        .map(|utc| {
            Local
                .offset_from_utc_datetime(&utc.naive_utc())
                .fix()
                .local_minus_utc()
        })
        .unwrap_or(0)
}

/// Go's `time.Date(…, time.Local)` for a wall-clock time: the offset is looked up at
/// the wall time taken as UTC, then again at the instant that offset gives; the
/// result is that instant shown in local time (in a DST gap the wall clock moves).
fn go_date_local(wall: NaiveDateTime) -> GoTime {
    let w = wall.and_utc().timestamp();
    let first = local_offset_at(w);
    let offset = local_offset_at(w - i64::from(first));
    let instant = w - i64::from(offset);
    DateTime::<Utc>::from_timestamp(instant, wall.nanosecond())
        .map(|utc| utc.with_timezone(&Local).fixed_offset())
        .unwrap_or_else(|| DateTime::<Utc>::MIN_UTC.fixed_offset())
}

/// (year, month, day) of a count of days since 1970-01-01, proleptic Gregorian, for
/// any i64 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = i128::from(days) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i128::from(month <= 2);
    (
        year.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64,
        month,
        day,
    )
}

/// Go's `time.Date(year, month, day, …)` normalisation for a day that is valid in some
/// year: a day past the end of the month (only February 29 in a non-leap year) rolls
/// over into the next month.
fn go_date(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day)
        .or_else(|| {
            NaiveDate::from_ymd_opt(year, month, 1)
                .and_then(|first| first.checked_add_days(chrono::Days::new(u64::from(day - 1))))
        })
        .unwrap_or_default()
}

/// (secs, nanos) since the Unix epoch.
pub fn to_unix(t: &GoTime) -> (i64, u32) {
    let secs = t.timestamp();
    let nanos = t.timestamp_subsec_nanos();
    if nanos >= NANOS_PER_SEC {
        // chrono's leap-second representation; Go has none.
        (secs + 1, nanos - NANOS_PER_SEC)
    } else {
        (secs, nanos)
    }
}

/// Rewrites chrono's leap-second representation (nanoseconds ≥ 1e9 in second 59) as
/// the following second, since Go has no leap seconds.
fn normalize_leap_second(t: GoTime) -> GoTime {
    if t.nanosecond() < NANOS_PER_SEC {
        return t;
    }
    let (secs, nanos) = to_unix(&t);
    DateTime::<Utc>::from_timestamp(secs, nanos)
        .map(|utc| utc.with_timezone(t.offset()))
        .unwrap_or(t)
}

/// restic's `FixTime`, applied to every node time before it is written:
/// `t.AddDate(-t.Year(), 0, 0)` when the year is below 0 and
/// `t.AddDate(-(t.Year() - 9999), 0, 0)` when it is above 9999. Only the year changes
/// (to 0 or 9999); month, day, time of day and offset stay, except that February 29
/// becomes March 1 when the new year is 9999 (Go's `time.Date` normalisation; year 0
/// is a leap year).
///
/// The offset is kept, which is what Go does for a time in a fixed zone. For a time in
/// the local zone Go looks the offset up again for the new date; use
/// [`clamp_year_local`] for that.
pub fn clamp_year(t: GoTime) -> GoTime {
    let Some(target) = clamped_year(t.year()) else {
        return t;
    };
    let n: NaiveDateTime = t.naive_local();
    let naive = go_date(target, n.month(), n.day()).and_time(n.time());
    t.offset().from_local_datetime(&naive).single().unwrap_or(t)
}

/// The year Go's `FixTime` moves `year` to, if it is outside 0..=9999.
fn clamped_year(year: i32) -> Option<i32> {
    match year {
        y if y < 0 => Some(0),
        y if y > 9999 => Some(9999),
        _ => None,
    }
}

/// [`clamp_year`] for a time that lives in the machine's local zone (as restic's node
/// times do: `time.Unix` gives a `Local` time, and `FixTime` runs `AddDate` in it):
/// the offset for the new date is looked up in the local zone the way Go's
/// `time.Date(…, time.Local)` does, instead of being kept. Use it on times from
/// [`from_unix_local`] before writing them to get restic's bytes even when the new
/// date falls in another DST period than the old one.
pub fn clamp_year_local(t: GoTime) -> GoTime {
    let Some(target) = clamped_year(t.year()) else {
        return t;
    };
    let n = t.naive_local();
    go_date_local(go_date(target, n.month(), n.day()).and_time(n.time()))
}

/// Go's `time.Time.String()`: `2006-01-02 15:04:05.999999999 -0700 MST`, where the zone name
/// is `UTC` at offset 0 and the numeric offset otherwise (as Go names a zone it parsed).
pub fn go_string(t: &GoTime) -> String {
    let nanos = t.timestamp_subsec_nanos();
    let frac = if nanos == 0 {
        String::new()
    } else {
        format!(".{nanos:09}").trim_end_matches('0').to_string()
    };
    let off = t.format("%z").to_string();
    let zone = if t.offset().local_minus_utc() == 0 {
        "UTC".to_string()
    } else {
        off.clone()
    };
    format!("{}{frac} {off} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
}

/// Go's `time.Time.Format(layout)`: the layout is written with Go's reference time
/// (`Mon Jan 2 15:04:05 MST 2006`); every element Go knows is replaced by the time's value in
/// its own offset, everything else is copied. Used for restic's `mount --time-template`.
pub fn format_layout(t: &GoTime, layout: &str) -> String {
    const MONTHS: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    const DAYS: [&str; 7] = [
        "Sunday",
        "Monday",
        "Tuesday",
        "Wednesday",
        "Thursday",
        "Friday",
        "Saturday",
    ];
    let mut out = String::new();
    let (year, month0, day) = (t.year(), t.month0() as usize, t.day());
    let (hour, min, sec) = (t.hour(), t.minute(), t.second());
    let nanos = t.timestamp_subsec_nanos().min(NANOS_PER_SEC - 1);
    let weekday = t.weekday().num_days_from_sunday() as usize;
    let off = t.offset().local_minus_utc();
    let zone = |colon: bool, secs: bool, z: bool, hours_only: bool| -> String {
        if z && off == 0 {
            return "Z".into();
        }
        let sign = if off < 0 { '-' } else { '+' };
        let a = off.unsigned_abs();
        let (h, m, s) = (a / 3600, a / 60 % 60, a % 60);
        let sep = if colon { ":" } else { "" };
        let mut r = format!("{sign}{h:02}");
        if !hours_only {
            r += &format!("{sep}{m:02}");
        }
        if secs {
            r += &format!("{sep}{s:02}");
        }
        r
    };
    let mut l = layout;
    while let Some(c) = l.chars().next() {
        // Longest elements first, in the order Go's nextStdChunk tries them.
        let elements: &[(&str, &dyn Fn() -> String)] = &[
            ("January", &|| MONTHS[month0].into()),
            ("Jan", &|| MONTHS[month0][..3].into()),
            ("Monday", &|| DAYS[weekday].into()),
            ("Mon", &|| DAYS[weekday][..3].into()),
            ("MST", &|| {
                if off == 0 {
                    "UTC".into()
                } else {
                    zone(false, false, false, false)
                }
            }),
            ("2006", &|| format!("{year:04}")),
            ("2", &|| day.to_string()),
            ("_2", &|| format!("{day:>2}")),
            ("002", &|| format!("{:03}", t.ordinal())),
            ("01", &|| format!("{:02}", month0 + 1)),
            ("02", &|| format!("{day:02}")),
            ("03", &|| format!("{:02}", (hour + 11) % 12 + 1)),
            ("04", &|| format!("{min:02}")),
            ("05", &|| format!("{sec:02}")),
            ("06", &|| format!("{:02}", year.rem_euclid(100))),
            ("15", &|| format!("{hour:02}")),
            ("1", &|| (month0 + 1).to_string()),
            ("3", &|| ((hour + 11) % 12 + 1).to_string()),
            ("4", &|| min.to_string()),
            ("5", &|| sec.to_string()),
            ("PM", &|| if hour >= 12 { "PM" } else { "AM" }.into()),
            ("pm", &|| if hour >= 12 { "pm" } else { "am" }.into()),
            ("-07:00:00", &|| zone(true, true, false, false)),
            ("-070000", &|| zone(false, true, false, false)),
            ("-07:00", &|| zone(true, false, false, false)),
            ("-0700", &|| zone(false, false, false, false)),
            ("-07", &|| zone(false, false, false, true)),
            ("Z07:00:00", &|| zone(true, true, true, false)),
            ("Z070000", &|| zone(false, true, true, false)),
            ("Z07:00", &|| zone(true, false, true, false)),
            ("Z0700", &|| zone(false, false, true, false)),
            ("Z07", &|| zone(false, false, true, true)),
        ];
        // Go matches "2006" before "2", "002" before "01"…: try the longest that fits.
        let hit = elements
            .iter()
            .filter(|(e, _)| l.starts_with(e))
            .max_by_key(|(e, _)| e.len());
        // "Jan" inside "January" and the like are settled by the longest match; a fraction is
        // `.` or `,` followed by 0s or 9s and no further digit (Go's stdFracSecond).
        if let Some((e, f)) = hit {
            out += &f();
            l = &l[e.len()..];
            continue;
        }
        if (c == '.' || c == ',') && l.len() > 1 {
            let rest = &l[1..];
            let digit = rest.as_bytes()[0];
            if digit == b'0' || digit == b'9' {
                let n = rest.bytes().take_while(|b| *b == digit).count();
                let next_is_digit = rest.as_bytes().get(n).is_some_and(u8::is_ascii_digit);
                if !next_is_digit {
                    let n9 = n.min(9);
                    let full = format!("{nanos:09}");
                    let mut frac = full[..n9].to_string();
                    if digit == b'9' {
                        frac = frac.trim_end_matches('0').to_string();
                        if !frac.is_empty() {
                            out.push(c);
                            out += &frac;
                        }
                    } else {
                        out.push(c);
                        out += &frac;
                    }
                    l = &rest[n..];
                    continue;
                }
            }
        }
        out.push(c);
        l = &l[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn p(s: &str) -> GoTime {
        parse_rfc3339(s).unwrap_or_else(|e| panic!("{e:#}"))
    }

    #[allow(clippy::too_many_arguments)]
    fn fixed(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32, ns: u32, off: i32) -> GoTime {
        FixedOffset::east_opt(off)
            .unwrap()
            .from_local_datetime(
                &NaiveDate::from_ymd_opt(y, mo, d)
                    .unwrap()
                    .and_hms_nano_opt(h, mi, s, ns)
                    .unwrap(),
            )
            .unwrap()
    }

    #[test]
    fn round_trip_with_offset() {
        let s = "2023-01-02T03:04:05.123456789+01:00";
        let t = p(s);
        assert_eq!(t, fixed(2023, 1, 2, 3, 4, 5, 123_456_789, 3600));
        assert_eq!(t.offset().local_minus_utc(), 3600);
        assert_eq!(format_rfc3339_nano(&t), s);
    }

    #[test]
    fn parse_short_fraction_utc() {
        let t = p("2023-01-02T03:04:05.1Z");
        assert_eq!(t, fixed(2023, 1, 2, 3, 4, 5, 100_000_000, 0));
        assert_eq!(format_rfc3339_nano(&t), "2023-01-02T03:04:05.1Z");
    }

    #[test]
    fn format_fraction_trimming() {
        assert_eq!(
            format_rfc3339_nano(&fixed(2023, 1, 2, 3, 4, 5, 120_000_000, 0)),
            "2023-01-02T03:04:05.12Z"
        );
        assert_eq!(
            format_rfc3339_nano(&fixed(2023, 1, 2, 3, 4, 5, 0, 0)),
            "2023-01-02T03:04:05Z"
        );
        assert_eq!(
            format_rfc3339_nano(&fixed(2023, 1, 2, 3, 4, 5, 1, 0)),
            "2023-01-02T03:04:05.000000001Z"
        );
        assert_eq!(
            format_rfc3339_nano(&fixed(2023, 1, 2, 3, 4, 5, 100, 0)),
            "2023-01-02T03:04:05.0000001Z"
        );
    }

    #[test]
    fn negative_and_odd_offsets() {
        let s = "2021-06-30T23:59:59.5-07:00";
        let t = p(s);
        assert_eq!(t.offset().local_minus_utc(), -7 * 3600);
        assert_eq!(format_rfc3339_nano(&t), s);
        assert_eq!(to_unix(&t), (1_625_122_799, 500_000_000));
        let s = "2021-06-30T23:59:59+05:45";
        assert_eq!(format_rfc3339_nano(&p(s)), s);
        let s = "2021-06-30T23:59:59-09:30";
        assert_eq!(format_rfc3339_nano(&p(s)), s);
        // +00:00 and -00:00 are offset 0, which Go writes as Z.
        assert_eq!(
            format_rfc3339_nano(&p("2021-06-30T23:59:59+00:00")),
            "2021-06-30T23:59:59Z"
        );
        assert_eq!(
            format_rfc3339_nano(&p("2021-06-30T23:59:59-00:00")),
            "2021-06-30T23:59:59Z"
        );
        // Offsets with seconds (e.g. local mean time) lose the seconds, like Go.
        let lmt = fixed(1900, 1, 1, 0, 0, 0, 0, 19 * 60 + 32);
        assert_eq!(format_rfc3339_nano(&lmt), "1900-01-01T00:00:00+00:19");
        let lmt = fixed(1900, 1, 1, 0, 0, 0, 0, -(3600 + 30));
        assert_eq!(format_rfc3339_nano(&lmt), "1900-01-01T00:00:00-01:00");
        let tiny = fixed(1900, 1, 1, 0, 0, 0, 0, -30);
        assert_eq!(format_rfc3339_nano(&tiny), "1900-01-01T00:00:00+00:00");
    }

    #[test]
    fn parse_truncates_long_fractions() {
        assert_eq!(
            p("2023-01-02T03:04:05.1234567899Z").timestamp_subsec_nanos(),
            123_456_789
        );
        assert_eq!(
            p("2023-01-02T03:04:05.999999999999999999999+02:00").timestamp_subsec_nanos(),
            999_999_999
        );
        assert_eq!(
            p("2023-01-02T03:04:05.000000000001Z").timestamp_subsec_nanos(),
            0
        );
    }

    #[test]
    fn parse_go_leniencies() {
        // One-digit hour.
        assert_eq!(p("2023-01-02T3:04:05Z"), fixed(2023, 1, 2, 3, 4, 5, 0, 0));
        // Comma as the fraction separator.
        assert_eq!(
            p("2023-01-02T03:04:05,25Z"),
            fixed(2023, 1, 2, 3, 4, 5, 250_000_000, 0)
        );
        // Minutes of 60 in an offset.
        assert_eq!(
            p("2023-01-02T03:04:05+01:60").offset().local_minus_utc(),
            7200
        );
        // Year 0 and 9999, leap days.
        assert_eq!(p("0000-01-01T00:00:00Z"), fixed(0, 1, 1, 0, 0, 0, 0, 0));
        assert_eq!(
            p("9999-12-31T23:59:59.999999999Z"),
            fixed(9999, 12, 31, 23, 59, 59, 999_999_999, 0)
        );
        assert_eq!(p("2024-02-29T00:00:00Z"), fixed(2024, 2, 29, 0, 0, 0, 0, 0));
        assert_eq!(p("2000-02-29T00:00:00Z"), fixed(2000, 2, 29, 0, 0, 0, 0, 0));
    }

    #[test]
    fn parse_rejects_what_go_rejects() {
        for bad in [
            "",
            "2023-01-02",
            "2023-01-02T03:04:05",          // no zone
            "2023-01-02t03:04:05Z",         // lowercase t
            "2023-01-02T03:04:05z",         // lowercase z
            "2023-01-02 03:04:05Z",         // space
            "2023-01-02T03:04:05ZZ",        // extra text
            "2023-01-02T03:04:05Z ",        // extra text
            "2023-01-02T03:04:05.Z",        // dot without digits
            "2023-01-02T03:04:05.123",      // no zone after fraction
            "2023-01-02T03:04:60Z",         // leap second
            "2023-01-02T24:00:00Z",         // hour 24
            "2023-01-02T03:60:00Z",         // minute 60
            "2023-01-02T03:4:05Z",          // one-digit minute
            "2023-01-02T03:04:5Z",          // one-digit second
            "2023-1-02T03:04:05Z",          // one-digit month
            "2023-01-2T03:04:05Z",          // one-digit day
            "2023-13-02T03:04:05Z",         // month 13
            "2023-00-02T03:04:05Z",         // month 0
            "2023-01-00T03:04:05Z",         // day 0
            "2023-02-29T03:04:05Z",         // not a leap year
            "2023-04-31T03:04:05Z",         // April has 30 days
            "1900-02-29T03:04:05Z",         // not a leap year
            "123-01-02T03:04:05Z",          // short year
            "+2023-01-02T03:04:05Z",        // signed year
            "12023-01-02T03:04:05Z",        // five-digit year
            "2023-01-02T03:04:05+0100",     // offset without colon
            "2023-01-02T03:04:05+01",       // short offset
            "2023-01-02T03:04:05 01:00",    // no sign
            "2023-01-02T03:04:05+25:00",    // offset hour > 24
            "2023-01-02T03:04:05+01:61",    // offset minute > 60
            "2023-01-02T03:04:05+1:00",     // one-digit offset hour
            "2023-01-02T03:04:05+01:00:00", // offset seconds
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad:?} must be rejected");
        }
    }

    #[test]
    fn offsets_of_a_day_or_more_are_unsupported() {
        // Go accepts these; chrono's FixedOffset cannot hold them.
        assert!(parse_rfc3339("2023-01-02T03:04:05+24:00").is_err());
        assert!(parse_rfc3339("2023-01-02T03:04:05-23:60").is_err());
        assert!(parse_rfc3339("2023-01-02T03:04:05+23:59").is_ok());
    }

    #[test]
    fn clamp_year_like_restic_fix_time() {
        // In range: unchanged.
        let t = fixed(2023, 5, 6, 7, 8, 9, 10, 3600);
        assert_eq!(clamp_year(t), t);
        let t = fixed(0, 1, 1, 0, 0, 0, 0, 0);
        assert_eq!(clamp_year(t), t);
        let t = fixed(9999, 12, 31, 23, 59, 59, 999_999_999, 0);
        assert_eq!(clamp_year(t), t);
        // Only the year changes.
        let t = fixed(12345, 6, 7, 8, 9, 10, 500, 7200);
        assert_eq!(clamp_year(t), fixed(9999, 6, 7, 8, 9, 10, 500, 7200));
        assert_eq!(format_rfc3339_nano(&t), "9999-06-07T08:09:10.0000005+02:00");
        let t = fixed(-1, 3, 4, 5, 6, 7, 0, -3600);
        assert_eq!(clamp_year(t), fixed(0, 3, 4, 5, 6, 7, 0, -3600));
        assert_eq!(format_rfc3339_nano(&t), "0000-03-04T05:06:07-01:00");
        // February 29 survives into year 0 (a leap year) but not into 9999.
        assert_eq!(
            clamp_year(fixed(-4, 2, 29, 1, 2, 3, 0, 0)),
            fixed(0, 2, 29, 1, 2, 3, 0, 0)
        );
        assert_eq!(
            clamp_year(fixed(10000, 2, 29, 1, 2, 3, 0, 0)),
            fixed(9999, 3, 1, 1, 2, 3, 0, 0)
        );
        // The year is the one in the time's own offset.
        let t = fixed(9999, 12, 31, 23, 30, 0, 0, -3600); // 10000-01-01T00:30Z
        assert_eq!(clamp_year(t), t);
        assert_eq!(format_rfc3339_nano(&t), "9999-12-31T23:30:00-01:00");
        let t = fixed(10000, 1, 1, 0, 30, 0, 0, 3600); // 9999-12-31T23:30Z
        assert_eq!(format_rfc3339_nano(&t), "9999-01-01T00:30:00+01:00");
    }

    #[test]
    fn clamp_year_local_in_range_is_identity() {
        for secs in [0i64, 1_672_628_645, -62_167_219_200, 253_402_300_799] {
            let t = from_unix_local(secs, 42);
            assert_eq!(clamp_year_local(t), t);
        }
    }

    #[test]
    fn clamp_year_local_keeps_wall_clock_outside_dst_gaps() {
        // 12000-07-15T12:00:00Z and -500-07-15T12:00:00Z (proleptic Gregorian).
        for utc in [
            fixed(12000, 7, 15, 12, 0, 0, 5, 0),
            fixed(-500, 7, 15, 12, 0, 0, 5, 0),
        ] {
            let t = utc.with_timezone(&Local).fixed_offset();
            let c = clamp_year_local(t);
            assert!(c.year() == 0 || c.year() == 9999, "{c}");
            assert_eq!((c.month(), c.day()), (t.month(), t.day()));
            assert_eq!(c.time(), t.time());
            assert_eq!(c.nanosecond(), 5);
            // The offset is the local one at the new instant.
            let (secs, nanos) = to_unix(&c);
            assert_eq!(from_unix_local(secs, nanos), c);
        }
    }

    #[test]
    fn local_offset_at_matches_chrono_and_extends_periodically() {
        for secs in [0i64, 1_000_000_000, -2_000_000_000, 4_000_000_000] {
            let utc = DateTime::<Utc>::from_timestamp(secs, 0).unwrap();
            let expect = utc.with_timezone(&Local).offset().fix().local_minus_utc();
            assert_eq!(local_offset_at(secs), expect);
        }
        let far = CHRONO_SAFE_SECS + 12_345;
        assert_eq!(
            local_offset_at(far),
            local_offset_at(far - SECS_PER_400_YEARS)
        );
        assert_eq!(
            local_offset_at(-far),
            local_offset_at(-far + SECS_PER_400_YEARS)
        );
        let _ = local_offset_at(i64::MAX);
        let _ = local_offset_at(i64::MIN);
    }

    #[test]
    fn unix_round_trip_local() {
        for (secs, nanos) in [
            (0i64, 0u32),
            (1_672_628_645, 123_456_789),
            (-1, 999_999_999),
            (-86_400 * 365 * 100, 5),
            (253_402_300_799, 999_999_999), // 9999-12-31T23:59:59Z
            (-62_167_219_200, 0),           // 0000-01-01T00:00:00Z
        ] {
            let t = from_unix_local(secs, nanos);
            assert_eq!(to_unix(&t), (secs, nanos));
            let local = DateTime::<Utc>::from_timestamp(secs, nanos)
                .unwrap()
                .with_timezone(&Local);
            assert_eq!(
                t.offset().local_minus_utc(),
                local.offset().fix().local_minus_utc()
            );
            assert_eq!(t.naive_local(), local.naive_local());
        }
        // Nanoseconds of a second or more carry over, as in Go's time.Unix.
        assert_eq!(
            to_unix(&from_unix_local(10, 2_500_000_000)),
            (12, 500_000_000)
        );
    }

    #[test]
    fn unix_far_out_of_range_does_not_panic() {
        for secs in [
            i64::MAX,
            i64::MIN,
            200_001 * 366 * 86_400,
            -200_001 * 366 * 86_400,
        ] {
            let t = from_unix_local(secs, 7);
            let s = format_rfc3339_nano(&t);
            assert!(
                s.starts_with(if secs < 0 { "0000-" } else { "9999-" }),
                "{s}"
            );
            assert!((0..=9999).contains(&t.year()));
            assert_eq!(t.nanosecond(), 7);
        }
        assert_eq!(from_unix_local(i64::MAX, 2_000_000_000).year(), 9999);
    }

    #[test]
    fn civil_from_days_matches_chrono() {
        for days in [
            -1_000_000i64,
            -719_528,
            -1,
            0,
            1,
            59,
            60,
            365,
            10_957,
            2_932_896,
            50_000_000,
        ] {
            let expect = NaiveDate::from_ymd_opt(1970, 1, 1)
                .unwrap()
                .checked_add_signed(chrono::Duration::days(days))
                .unwrap();
            assert_eq!(
                civil_from_days(days),
                (i64::from(expect.year()), expect.month(), expect.day()),
                "{days}"
            );
        }
        // Go: time.Unix(math.MaxInt64, 0).UTC() is 292277026596-12-04T15:30:07Z.
        assert_eq!(civil_from_days(i64::MAX / 86_400), (292_277_026_596, 12, 4));
    }

    #[test]
    fn leap_second_representation_is_normalized() {
        let leap = fixed(2016, 12, 31, 23, 59, 59, 1_500_000_000, 0);
        assert_eq!(to_unix(&leap), (1_483_228_800, 500_000_000));
        assert_eq!(format_rfc3339_nano(&leap), "2017-01-01T00:00:00.5Z");
    }

    /// A time in years 0..=9999 at any offset, with its Unix seconds and nanoseconds.
    fn any_time() -> impl Strategy<Value = (DateTime<FixedOffset>, i64, u32)> {
        (
            -62_167_219_200i64..253_402_300_800,
            0u32..1_000_000_000,
            -(23 * 60 + 59)..=(23 * 60 + 59),
        )
            .prop_map(|(secs, nanos, offset_min)| {
                let utc = DateTime::<Utc>::from_timestamp(secs, nanos).unwrap();
                let t = utc.with_timezone(&FixedOffset::east_opt(offset_min * 60).unwrap());
                (t, secs, nanos)
            })
            .prop_filter("year 0..=9999", |(t, _, _)| (0..=9999).contains(&t.year()))
    }

    proptest! {
        #[test]
        fn prop_format_parse_round_trip((t, secs, nanos) in any_time()) {
            let s = format_rfc3339_nano(&t);
            let back = parse_rfc3339(&s).unwrap();
            prop_assert_eq!(back, t);
            prop_assert_eq!(back.offset(), t.offset());
            prop_assert_eq!(to_unix(&back), (secs, nanos));
            prop_assert_eq!(format_rfc3339_nano(&back), s);
        }

        #[test]
        fn prop_matches_chrono_rfc3339_nanos((t, _, _) in any_time()) {
            // chrono's AutoSi writes 0, 3, 6 or 9 digits; Go trims every trailing zero.
            let chrono_s = t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            prop_assert_eq!(parse_rfc3339(&chrono_s).unwrap(), t);
            let ours = format_rfc3339_nano(&t);
            prop_assert_eq!(DateTime::parse_from_rfc3339(&ours).unwrap(), t);
        }

        #[test]
        fn prop_parse_never_panics(s in "[0-9TZ:.,+-]{0,40}") {
            let _ = parse_rfc3339(&s);
        }
    }

    #[test]
    fn go_string_is_gos() {
        let t = parse_rfc3339("2020-01-02T03:04:05.5+01:00").expect("time");
        assert_eq!(go_string(&t), "2020-01-02 03:04:05.5 +0100 +0100");
        let t = parse_rfc3339("2020-01-02T03:04:05Z").expect("time");
        assert_eq!(go_string(&t), "2020-01-02 03:04:05 +0000 UTC");
    }

    #[test]
    fn go_layouts_format_like_go() {
        let t = p("2026-03-05T07:08:09.120000000+01:30");
        assert_eq!(
            format_layout(&t, "2006-01-02T15:04:05Z07:00"),
            "2026-03-05T07:08:09+01:30"
        );
        assert_eq!(
            format_layout(&p("2026-03-05T17:08:09Z"), "2006-01-02T15:04:05Z07:00"),
            "2026-03-05T17:08:09Z"
        );
        assert_eq!(
            format_layout(&t, "2006-01-02_15-04-05"),
            "2026-03-05_07-08-09"
        );
        assert_eq!(
            format_layout(&t, "Mon Jan _2 3:4:5 PM -0700 MST 06"),
            "Thu Mar  5 7:8:9 AM +0130 +0130 26"
        );
        assert_eq!(
            format_layout(&t, "January 2, 2006 15:04:05.000 .999999 ,99"),
            "March 5, 2026 07:08:09.120 .12 ,12"
        );
        assert_eq!(format_layout(&t, "002 x/y"), "064 x/y");
    }
}

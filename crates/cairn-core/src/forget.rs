//! Which snapshots `forget` keeps: restic 0.14's expire policy (`ExpirePolicy`, `ApplyPolicy`),
//! its `--keep-within` durations (`Duration`); tag lists and `--group-by` grouping come
//! from [`crate::snapshots`]. Pure logic: nothing here touches a repository.
//!
//! Times are judged the way restic judges them:
//! - a snapshot falls into the hour, day, ISO week, month and year of its own wall clock, i.e.
//!   the UTC offset written in the snapshot file (Go keeps the parsed offset, and so does
//!   [`GoTime`]); the machine's time zone plays no part there;
//! - `--keep-within*` count back from the newest snapshot that is not in the future, with
//!   Go's `AddDate` calendar arithmetic. That arithmetic runs in the newest snapshot's
//!   location: the machine's local zone (`TZ`) when its offset is the local one at that
//!   instant (Go's `time.Parse` then picks `time.Local`), across DST changes included;
//!   otherwise the fixed offset.

use crate::format::gotime::GoTime;
use crate::format::snapshot::Snapshot;
pub use crate::snapshots::{group_snapshots, Group, GroupBy, GroupKey, TagList};
use crate::Id;
use chrono::{Datelike, Timelike};
use std::fmt;

/// A `--keep-within` duration: restic's `Duration` (`1y5m7d2h`: years, months, days, hours).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Duration {
    pub years: i64,
    pub months: i64,
    pub days: i64,
    pub hours: i64,
}

impl Duration {
    /// Parses restic's format: numbers (optionally negative), each followed by `y`, `m`, `d`
    /// or `h`, in any order; a later unit replaces an earlier one; the empty string is zero.
    pub fn parse(s: &str) -> Result<Duration, String> {
        let mut d = Duration::default();
        let mut rest = s.trim();
        while !rest.is_empty() {
            let (negative, r) = match rest.strip_prefix('-') {
                Some(r) => (true, r),
                None => (false, rest),
            };
            let digits = r.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err("no number found".to_string());
            }
            let mut num: i64 = r[..digits]
                .parse()
                .map_err(|_| format!("number {:?} is too large", &r[..digits]))?;
            if negative {
                num = -num;
            }
            let r = &r[digits..];
            let Some(unit) = r.chars().next() else {
                return Err(format!("no unit found after number {num}"));
            };
            match unit {
                'y' => d.years = num,
                'm' => d.months = num,
                'd' => d.days = num,
                'h' => d.hours = num,
                other => return Err(format!("invalid unit {other:?} found after number {num}")),
            }
            rest = &r[unit.len_utf8()..];
        }
        Ok(d)
    }

    /// All parts zero: the duration is not in use.
    pub fn is_zero(&self) -> bool {
        *self == Duration::default()
    }

    pub fn is_negative(&self) -> bool {
        self.years < 0 || self.months < 0 || self.days < 0 || self.hours < 0
    }
}

impl fmt::Display for Duration {
    /// restic's form: the non-zero parts, `1y2m3d4h`; nothing for zero.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, unit) in [
            (self.years, 'y'),
            (self.months, 'm'),
            (self.days, 'd'),
            (self.hours, 'h'),
        ] {
            if n != 0 {
                write!(f, "{n}{unit}")?;
            }
        }
        Ok(())
    }
}

/// What to keep (restic's `ExpirePolicy`). Counts of 0 and zero durations are off.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExpirePolicy {
    /// The newest n snapshots.
    pub last: u32,
    /// The newest snapshot of each of the last n hours (that have snapshots).
    pub hourly: u32,
    pub daily: u32,
    /// Weeks are ISO 8601 weeks (Monday to Sunday, in the ISO week-numbering year).
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
    /// Every snapshot newer than the newest one minus this duration.
    pub within: Duration,
    /// The newest snapshot of each hour (day, week, ...) newer than the newest one minus this.
    pub within_hourly: Duration,
    pub within_daily: Duration,
    pub within_weekly: Duration,
    pub within_monthly: Duration,
    pub within_yearly: Duration,
    /// Every snapshot that matches one of these tag lists.
    pub tags: Vec<TagList>,
}

impl ExpirePolicy {
    /// Nothing configured: restic then removes nothing.
    pub fn is_empty(&self) -> bool {
        *self == ExpirePolicy::default()
    }
}

impl fmt::Display for ExpirePolicy {
    /// restic's description, e.g. `keep 2 latest, 7 daily snapshots, hourly snapshots within
    /// 2d and all snapshots with tags [[a, b]] and all snapshots within 1y of the newest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let counts: Vec<String> = [
            (self.last, "latest"),
            (self.hourly, "hourly"),
            (self.daily, "daily"),
            (self.weekly, "weekly"),
            (self.monthly, "monthly"),
            (self.yearly, "yearly"),
        ]
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
        let withins: Vec<String> = [
            (self.within_hourly, "hourly"),
            (self.within_daily, "daily"),
            (self.within_weekly, "weekly"),
            (self.within_monthly, "monthly"),
            (self.within_yearly, "yearly"),
        ]
        .iter()
        .filter(|(d, _)| !d.is_zero())
        .map(|(d, what)| format!("{what} snapshots within {d}"))
        .collect();
        let mut s = String::new();
        if !counts.is_empty() {
            s = format!("{} snapshots", counts.join(", "));
        }
        if !withins.is_empty() {
            if !s.is_empty() {
                s.push_str(", ");
            }
            s.push_str(&withins.join(", "));
        }
        if !self.tags.is_empty() {
            if !s.is_empty() {
                s.push_str(" and ");
            }
            let lists: Vec<String> = self.tags.iter().map(|t| t.to_string()).collect();
            s.push_str(&format!("all snapshots with tags [{}]", lists.join(" ")));
        }
        if !self.within.is_zero() {
            if !s.is_empty() {
                s.push_str(" and ");
            }
            s.push_str(&format!(
                "all snapshots within {} of the newest",
                self.within
            ));
        }
        write!(f, "keep {s}")
    }
}

/// How many snapshots each count still had to give after a kept snapshot (restic's
/// `KeepReason.Counters`; zeros are left out of the JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counters {
    #[serde(skip_serializing_if = "is_zero")]
    pub last: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub hourly: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub daily: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub weekly: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub monthly: u32,
    #[serde(skip_serializing_if = "is_zero")]
    pub yearly: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Why a snapshot is kept: restic's match texts ("last snapshot", "daily snapshot",
/// "has tags `[a]`", "within 1y", "weekly within 2m", ...) and the counters after it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KeepReason {
    pub matches: Vec<String>,
    pub counters: Counters,
}

/// The outcome for one group: `keep` and `remove` newest first, `reasons[i]` for `keep[i]`.
#[derive(Debug, Default)]
pub struct Applied {
    pub keep: Vec<(Id, Snapshot)>,
    pub remove: Vec<(Id, Snapshot)>,
    pub reasons: Vec<KeepReason>,
}

/// [`apply_policy_at`] as of now, with the machine's local time zone.
pub fn apply_policy(list: Vec<(Id, Snapshot)>, policy: &ExpirePolicy) -> Applied {
    let now = chrono::Utc::now();
    apply_policy_at(
        list,
        policy,
        (now.timestamp(), now.timestamp_subsec_nanos()),
        &local_offset_at,
    )
}

/// restic's `ApplyPolicy` for the snapshots of one group.
///
/// The list is ordered newest first; snapshots of the same time keep their order in `list`
/// (restic's order for them depends on the order it happened to load them in). `now` (Unix
/// seconds and nanoseconds) only decides which snapshots are in the future and so cannot be
/// the newest one `--keep-within*` count back from; `local` gives the local zone's UTC
/// offset in seconds at a Unix time.
pub fn apply_policy_at(
    mut list: Vec<(Id, Snapshot)>,
    policy: &ExpirePolicy,
    now: (i64, u32),
    local: &dyn Fn(i64) -> i32,
) -> Applied {
    list.sort_by_key(|(_, s)| std::cmp::Reverse(s.time));
    let mut out = Applied::default();
    if policy.is_empty() {
        out.reasons = list
            .iter()
            .map(|_| KeepReason {
                matches: vec!["policy is empty".to_string()],
                counters: Counters::default(),
            })
            .collect();
        out.keep = list;
        return out;
    }
    if list.is_empty() {
        return out;
    }

    struct Bucket {
        count: u32,
        kind: Kind,
        last: Option<i64>,
        reason: &'static str,
    }
    let mut buckets = [
        (policy.last, Kind::Always, "last snapshot"),
        (policy.hourly, Kind::Hour, "hourly snapshot"),
        (policy.daily, Kind::Day, "daily snapshot"),
        (policy.weekly, Kind::Week, "weekly snapshot"),
        (policy.monthly, Kind::Month, "monthly snapshot"),
        (policy.yearly, Kind::Year, "yearly snapshot"),
    ]
    .map(|(count, kind, reason)| Bucket {
        count,
        kind,
        last: None,
        reason,
    });

    let latest = latest_before(&list, now);
    let threshold = |d: &Duration| within_threshold(latest.as_ref(), d, local);
    let within = (!policy.within.is_zero()).then(|| threshold(&policy.within));
    struct WithinBucket {
        threshold: Option<(i128, u32)>,
        duration: Duration,
        kind: Kind,
        last: Option<i64>,
        reason: &'static str,
    }
    let mut within_buckets = [
        (policy.within_hourly, Kind::Hour, "hourly within"),
        (policy.within_daily, Kind::Day, "daily within"),
        (policy.within_weekly, Kind::Week, "weekly within"),
        (policy.within_monthly, Kind::Month, "monthly within"),
        (policy.within_yearly, Kind::Year, "yearly within"),
    ]
    .map(|(duration, kind, reason)| WithinBucket {
        threshold: (!duration.is_zero()).then(|| threshold(&duration)),
        duration,
        kind,
        last: None,
        reason,
    });

    for (nr, cur) in list.into_iter().enumerate() {
        let time = &cur.1.time;
        let mut matches = Vec::new();
        for tags in &policy.tags {
            if tags.matches(&cur.1) {
                matches.push(format!("has tags {tags}"));
            }
        }
        if let Some(t) = within {
            if after(time, t) {
                matches.push(format!("within {}", policy.within));
            }
        }
        for b in buckets.iter_mut().filter(|b| b.count > 0) {
            let val = b.kind.bucket(time, nr);
            if b.last != Some(val) {
                b.last = Some(val);
                b.count -= 1;
                matches.push(b.reason.to_string());
            }
        }
        for b in &mut within_buckets {
            let Some(t) = b.threshold else { continue };
            if after(time, t) {
                let val = b.kind.bucket(time, nr);
                if b.last != Some(val) {
                    b.last = Some(val);
                    matches.push(format!("{} {}", b.reason, b.duration));
                }
            }
        }
        if matches.is_empty() {
            out.remove.push(cur);
        } else {
            out.keep.push(cur);
            out.reasons.push(KeepReason {
                matches,
                counters: Counters {
                    last: buckets[0].count,
                    hourly: buckets[1].count,
                    daily: buckets[2].count,
                    weekly: buckets[3].count,
                    monthly: buckets[4].count,
                    yearly: buckets[5].count,
                },
            });
        }
    }
    out
}

/// The periods the counts keep one snapshot of.
#[derive(Clone, Copy)]
enum Kind {
    /// Every snapshot is its own period (`--keep-last`).
    Always,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

impl Kind {
    /// The period of a time on its own wall clock, as a number (restic's `ymdh`, `ymd`,
    /// `yw`, `ym`, `y`; `nr` for `always`).
    fn bucket(self, t: &GoTime, nr: usize) -> i64 {
        let n = t.naive_local();
        let (y, m, d, h) = (
            i64::from(n.year()),
            i64::from(n.month()),
            i64::from(n.day()),
            i64::from(n.hour()),
        );
        match self {
            Kind::Always => nr as i64,
            Kind::Hour => y * 1_000_000 + m * 10_000 + d * 100 + h,
            Kind::Day => y * 10_000 + m * 100 + d,
            Kind::Week => {
                let w = n.date().iso_week();
                i64::from(w.year()) * 100 + i64::from(w.week())
            }
            Kind::Month => y * 100 + m,
            Kind::Year => y,
        }
    }
}

/// `t` strictly after the instant (Unix seconds, nanoseconds).
fn after(t: &GoTime, instant: (i128, u32)) -> bool {
    (i128::from(t.timestamp()), t.timestamp_subsec_nanos()) > instant
}

/// The newest snapshot time strictly before `now` (restic's `findLatestTimestamp`).
fn latest_before(list: &[(Id, Snapshot)], now: (i64, u32)) -> Option<GoTime> {
    list.iter()
        .map(|(_, s)| s.time)
        .filter(|t| (t.timestamp(), t.timestamp_subsec_nanos()) < now)
        .max()
}

/// `latest.AddDate(-years, -months, -days).Add(-hours)` as Go computes it, as an instant
/// (Unix seconds, nanoseconds). Without a latest time restic counts back from Go's zero time
/// (0001-01-01 UTC). Wide enough (i128) for any duration.
fn within_threshold(
    latest: Option<&GoTime>,
    d: &Duration,
    local: &dyn Fn(i64) -> i32,
) -> (i128, u32) {
    let (wall, nanos, offset) = match latest {
        Some(t) => {
            let n = t.naive_local();
            let off = t.offset().local_minus_utc();
            // Go's time.Parse puts a time into the local zone when the zone there has this
            // offset at that instant ("Z", offset 0, stays UTC).
            let in_local = off != 0 && local(t.timestamp()) == off;
            (n, t.timestamp_subsec_nanos(), (!in_local).then_some(off))
        }
        None => (
            chrono::NaiveDate::from_ymd_opt(1, 1, 1)
                .unwrap_or_default()
                .and_hms_opt(0, 0, 0)
                .unwrap_or_default(),
            0,
            Some(0),
        ),
    };
    // Go's time.Date normalisation: months roll into years, days into months.
    let months = i128::from(wall.year()) * 12 + i128::from(wall.month0())
        - i128::from(d.years) * 12
        - i128::from(d.months);
    let (year, month) = (months.div_euclid(12), months.rem_euclid(12) + 1);
    let days = days_from_civil(year, month) + i128::from(wall.day()) - 1 - i128::from(d.days);
    let wall_secs = days * 86_400 + i128::from(wall.num_seconds_from_midnight());
    let offset = match offset {
        Some(off) => i128::from(off),
        None => {
            // Go's Date in a zone: the offset at the wall time read as UTC, then again at the
            // instant that offset gives.
            let first = local(clamp_i64(wall_secs));
            i128::from(local(clamp_i64(wall_secs - i128::from(first))))
        }
    };
    (wall_secs - offset - i128::from(d.hours) * 3600, nanos)
}

fn clamp_i64(v: i128) -> i64 {
    v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

/// Days since 1970-01-01 of the first day of a month, proleptic Gregorian, for any year
/// (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i128, month: i128) -> i128 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The local zone's UTC offset in seconds at a Unix time (chrono's `Local`: `TZ`, else
/// `/etc/localtime`, as Go reads them). Times chrono cannot hold get the offset at its edge.
pub fn local_offset_at(secs: i64) -> i32 {
    use chrono::{Offset, TimeZone};
    const LIMIT: i64 = 200_000 * 366 * 86_400;
    chrono::DateTime::from_timestamp(secs.clamp(-LIMIT, LIMIT), 0)
        .map(|utc| {
            chrono::Local
                .offset_from_utc_datetime(&utc.naive_utc())
                .fix()
                .local_minus_utc()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::gotime::parse_rfc3339;

    fn snap(time: &str) -> Snapshot {
        snap_with(time, "host", &[], &["/data"])
    }

    fn snap_with(time: &str, host: &str, tags: &[&str], paths: &[&str]) -> Snapshot {
        Snapshot {
            time: parse_rfc3339(time).unwrap_or_else(|e| panic!("{e:#}")),
            parent: None,
            tree: Id::default(),
            paths: paths.iter().map(|p| p.to_string()).collect(),
            hostname: host.to_string(),
            username: String::new(),
            uid: 0,
            gid: 0,
            excludes: vec![],
            tags: tags.iter().map(|t| t.to_string()).collect(),
            original: None,
            program_version: String::new(),
            summary: None,
        }
    }

    /// Snapshots with ids 1, 2, 3, … in the order given.
    fn list(times: &[&str]) -> Vec<(Id, Snapshot)> {
        times
            .iter()
            .enumerate()
            .map(|(i, t)| (id(i + 1), snap(t)))
            .collect()
    }

    fn id(n: usize) -> Id {
        let mut b = [0u8; 32];
        b[0] = n as u8;
        Id(b)
    }

    fn ids(v: &[(Id, Snapshot)]) -> Vec<usize> {
        v.iter().map(|(i, _)| i.0[0] as usize).collect()
    }

    /// Far in the future: nothing is newer than "now".
    const NOW: (i64, u32) = (4_000_000_000, 0);

    fn utc(_: i64) -> i32 {
        0
    }

    fn apply(l: Vec<(Id, Snapshot)>, p: &ExpirePolicy) -> Applied {
        apply_policy_at(l, p, NOW, &utc)
    }

    /// A zone like Europe/Berlin since 1996: +01:00, +02:00 from the last Sunday of March
    /// 01:00 UTC to the last Sunday of October 01:00 UTC.
    fn berlin(secs: i64) -> i32 {
        let t = chrono::DateTime::from_timestamp(secs, 0).unwrap();
        let last_sunday = |month: u32| {
            let mut d = chrono::NaiveDate::from_ymd_opt(t.year(), month, 31).unwrap();
            while d.weekday() != chrono::Weekday::Sun {
                d = d.pred_opt().unwrap();
            }
            d.and_hms_opt(1, 0, 0).unwrap().and_utc()
        };
        if t >= last_sunday(3) && t < last_sunday(10) {
            7200
        } else {
            3600
        }
    }

    #[test]
    fn duration_parse_and_display() {
        let d = Duration::parse("1y2m3d4h").unwrap();
        assert_eq!((d.years, d.months, d.days, d.hours), (1, 2, 3, 4));
        assert_eq!(d.to_string(), "1y2m3d4h");
        // Any order; the later value of a unit wins; spaces around are trimmed.
        let d = Duration::parse(" 5h1d2d ").unwrap();
        assert_eq!((d.days, d.hours), (2, 5));
        assert_eq!(d.to_string(), "2d5h");
        assert!(Duration::parse("").unwrap().is_zero());
        assert!(Duration::parse("0y0d").unwrap().is_zero());
        assert_eq!(Duration::parse("0y0d").unwrap().to_string(), "");
        let d = Duration::parse("-1m").unwrap();
        assert!(d.is_negative());
        assert_eq!(d.to_string(), "-1m");
        assert_eq!(
            Duration::parse("1").unwrap_err(),
            "no unit found after number 1"
        );
        assert_eq!(Duration::parse("y").unwrap_err(), "no number found");
        assert_eq!(Duration::parse("1d-").unwrap_err(), "no number found");
        assert_eq!(
            Duration::parse("3w").unwrap_err(),
            "invalid unit 'w' found after number 3"
        );
        assert!(Duration::parse("99999999999999999999y").is_err());
    }

    #[test]
    fn tag_lists() {
        let s = snap_with("2020-01-01T00:00:00Z", "h", &["a", "b"], &["/"]);
        let untagged = snap_with("2020-01-01T00:00:00Z", "h", &[], &["/"]);
        assert!(TagList::parse("a").matches(&s));
        assert!(TagList::parse(" a , b ").matches(&s));
        assert!(!TagList::parse("a,c").matches(&s));
        // The empty tag stands for "no tags".
        assert!(TagList::parse("").matches(&untagged));
        assert!(!TagList::parse("").matches(&s));
        assert!(!TagList::parse("a,").matches(&s));
        assert_eq!(TagList::parse("a, b").to_string(), "[a, b]");
    }

    #[test]
    fn policy_description_like_restic() {
        let p = ExpirePolicy {
            last: 2,
            daily: 7,
            within_hourly: Duration::parse("2d").unwrap(),
            within_weekly: Duration::parse("1m").unwrap(),
            tags: vec![TagList::parse("a,b"), TagList::parse("c")],
            within: Duration::parse("1y").unwrap(),
            ..Default::default()
        };
        assert_eq!(
            p.to_string(),
            "keep 2 latest, 7 daily snapshots, hourly snapshots within 2d, weekly snapshots \
             within 1m and all snapshots with tags [[a, b] [c]] and all snapshots within 1y of \
             the newest"
        );
        let p = ExpirePolicy {
            within: Duration::parse("3d").unwrap(),
            ..Default::default()
        };
        assert_eq!(p.to_string(), "keep all snapshots within 3d of the newest");
        assert_eq!(ExpirePolicy::default().to_string(), "keep ");
    }

    #[test]
    fn empty_policy_keeps_everything() {
        let p = ExpirePolicy::default();
        assert!(p.is_empty());
        let r = apply(list(&["2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"]), &p);
        assert_eq!(ids(&r.keep), [2, 1]);
        assert!(r.remove.is_empty());
        assert_eq!(r.reasons[0].matches, ["policy is empty"]);
        // A zero duration or count is no policy either.
        let p = ExpirePolicy {
            within: Duration::parse("0d").unwrap(),
            ..Default::default()
        };
        assert!(p.is_empty());
    }

    #[test]
    fn keep_last_orders_newest_first_and_counts_down() {
        let p = ExpirePolicy {
            last: 2,
            ..Default::default()
        };
        let r = apply(
            list(&[
                "2020-01-02T00:00:00Z",
                "2020-01-03T00:00:00Z",
                "2020-01-01T00:00:00Z",
            ]),
            &p,
        );
        assert_eq!(ids(&r.keep), [2, 1]);
        assert_eq!(ids(&r.remove), [3]);
        assert_eq!(r.reasons[0].matches, ["last snapshot"]);
        assert_eq!(r.reasons[0].counters.last, 1);
        assert_eq!(r.reasons[1].counters.last, 0);
        assert!(apply(vec![], &p).keep.is_empty());
    }

    #[test]
    fn equal_times_keep_their_input_order() {
        let p = ExpirePolicy {
            last: 1,
            ..Default::default()
        };
        let t = "2020-01-01T00:00:00Z";
        let r = apply(list(&[t, t, t]), &p);
        assert_eq!(ids(&r.keep), [1]);
        assert_eq!(ids(&r.remove), [2, 3]);
        // The same instant written with another offset is a tie, too.
        let r = apply(list(&["2020-01-01T01:00:00+01:00", t]), &p);
        assert_eq!(ids(&r.keep), [1]);
    }

    #[test]
    fn buckets_use_the_snapshots_own_wall_clock() {
        let p = ExpirePolicy {
            daily: 10,
            ..Default::default()
        };
        // 1 and 2 are one UTC day but two local days at +05:00; 2, 3 and 4 are two UTC days
        // but one local day (2020-01-02).
        let r = apply(
            list(&[
                "2020-01-01T23:30:00+05:00", // 2020-01-01T18:30Z
                "2020-01-02T00:30:00+05:00", // 2020-01-01T19:30Z
                "2020-01-02T18:00:00-05:00", // 2020-01-02T23:00Z
                "2020-01-02T20:00:00-05:00", // 2020-01-03T01:00Z
            ]),
            &p,
        );
        assert_eq!(ids(&r.keep), [4, 1]);
        assert_eq!(ids(&r.remove), [3, 2]);
        assert_eq!(r.reasons[0].counters.daily, 9);
    }

    #[test]
    fn hourly_daily_monthly_yearly() {
        let l = list(&[
            "2019-12-31T23:10:00+01:00",
            "2019-12-31T23:50:00+01:00",
            "2020-01-01T00:10:00+01:00",
            "2020-01-01T00:20:00+01:00",
            "2020-02-15T12:00:00+01:00",
            "2021-03-01T12:00:00+01:00",
        ]);
        let keep = |p: ExpirePolicy| ids(&apply(l.clone(), &p).keep);
        let hourly = keep(ExpirePolicy {
            hourly: 100,
            ..Default::default()
        });
        assert_eq!(hourly, [6, 5, 4, 2]);
        let hourly = keep(ExpirePolicy {
            hourly: 2,
            ..Default::default()
        });
        assert_eq!(hourly, [6, 5]);
        let monthly = keep(ExpirePolicy {
            monthly: 100,
            ..Default::default()
        });
        assert_eq!(monthly, [6, 5, 4, 2]);
        let yearly = keep(ExpirePolicy {
            yearly: 100,
            ..Default::default()
        });
        assert_eq!(yearly, [6, 5, 2]);
    }

    #[test]
    fn weekly_uses_iso_weeks() {
        let p = ExpirePolicy {
            weekly: 10,
            ..Default::default()
        };
        // 2020-12-28 (Mon) .. 2021-01-03 (Sun) is ISO week 2020-53; 2021-01-04 starts 2021-01.
        // 2018-12-31 (Mon) is in ISO week 2019-01, like 2019-01-06 (Sun).
        let r = apply(
            list(&[
                "2018-12-30T12:00:00Z",
                "2018-12-31T12:00:00Z",
                "2019-01-06T12:00:00Z",
                "2020-12-28T12:00:00Z",
                "2021-01-03T12:00:00Z",
                "2021-01-04T12:00:00Z",
            ]),
            &p,
        );
        assert_eq!(ids(&r.keep), [6, 5, 3, 1]);
        assert_eq!(ids(&r.remove), [4, 2]);
        assert!(r.reasons.iter().all(|x| x.matches == ["weekly snapshot"]));
    }

    #[test]
    fn hourly_bucket_ignores_the_dst_fold() {
        // 02:30 CEST and 02:30 CET on 2020-10-25 are an hour apart but the same wall hour.
        let p = ExpirePolicy {
            hourly: 10,
            ..Default::default()
        };
        let r = apply(
            list(&["2020-10-25T02:30:00+02:00", "2020-10-25T02:40:00+01:00"]),
            &p,
        );
        assert_eq!(ids(&r.keep), [2]);
        assert_eq!(ids(&r.remove), [1]);
    }

    #[test]
    fn reasons_and_counters() {
        let p = ExpirePolicy {
            last: 1,
            daily: 2,
            yearly: 5,
            tags: vec![TagList::parse("x"), TagList::parse("")],
            ..Default::default()
        };
        let l = vec![
            (
                id(1),
                snap_with("2020-01-01T10:00:00Z", "h", &["x"], &["/"]),
            ),
            (id(2), snap_with("2020-01-01T11:00:00Z", "h", &[], &["/"])),
            (
                id(3),
                snap_with("2020-01-02T11:00:00Z", "h", &["y"], &["/"]),
            ),
            (
                id(4),
                snap_with("2019-06-01T11:00:00Z", "h", &["y"], &["/"]),
            ),
        ];
        let r = apply(l, &p);
        assert_eq!(ids(&r.keep), [3, 2, 1, 4]);
        assert_eq!(
            r.reasons[0].matches,
            ["last snapshot", "daily snapshot", "yearly snapshot"]
        );
        assert_eq!(
            r.reasons[0].counters,
            Counters {
                daily: 1,
                yearly: 4,
                ..Default::default()
            }
        );
        assert_eq!(r.reasons[1].matches, ["has tags []", "daily snapshot"]);
        assert_eq!(r.reasons[2].matches, ["has tags [x]"]);
        assert_eq!(r.reasons[3].matches, ["yearly snapshot"]);
        assert_eq!(
            serde_json::to_string(&r.reasons[3].counters).unwrap(),
            r#"{"yearly":3}"#
        );
        assert_eq!(serde_json::to_string(&Counters::default()).unwrap(), "{}");
    }

    #[test]
    fn keep_within_counts_back_from_the_newest_snapshot_not_now() {
        let p = ExpirePolicy {
            within: Duration::parse("1d").unwrap(),
            ..Default::default()
        };
        let l = list(&[
            "2000-01-01T00:00:00Z",
            "2000-01-02T00:00:00Z",
            "2000-01-02T00:00:00.000000001Z",
            "2000-01-03T00:00:00Z",
        ]);
        let r = apply(l.clone(), &p);
        // Strictly newer than 2000-01-02T00:00:00Z.
        assert_eq!(ids(&r.keep), [4, 3]);
        assert_eq!(r.reasons[0].matches, ["within 1d"]);
        // A snapshot in the future is not "the newest", but is within.
        let mut l2 = l.clone();
        l2.push((id(9), snap("2000-01-10T00:00:00Z")));
        let now = (
            parse_rfc3339("2000-01-05T00:00:00Z").unwrap().timestamp(),
            0,
        );
        let r = apply_policy_at(l2, &p, now, &utc);
        assert_eq!(ids(&r.keep), [9, 4, 3]);
        // All in the future: restic counts back from Go's zero time, so all are within.
        let r = apply_policy_at(l, &p, (0, 0), &utc);
        assert_eq!(r.keep.len(), 4);
    }

    #[test]
    fn keep_within_calendar_arithmetic() {
        // Go's AddDate: 2021-03-31 minus 1 month is "2021-02-31", i.e. 2021-03-03.
        let l = list(&[
            "2021-03-02T12:00:00Z",
            "2021-03-03T12:00:00Z",
            "2021-03-03T12:00:01Z",
            "2021-03-31T12:00:00Z",
        ]);
        let p = ExpirePolicy {
            within: Duration::parse("1m").unwrap(),
            ..Default::default()
        };
        assert_eq!(ids(&apply(l.clone(), &p).keep), [4, 3]);
        // 1y1m1d1h back from 2021-03-31T12:00Z: "2020-02-30" 12:00, i.e. 2020-03-01T12:00Z,
        // then an hour back.
        let l = list(&[
            "2020-03-01T11:00:00Z",
            "2020-03-01T11:00:01Z",
            "2021-03-31T12:00:00Z",
        ]);
        let p = ExpirePolicy {
            within: Duration::parse("1y1m1d1h").unwrap(),
            ..Default::default()
        };
        assert_eq!(ids(&apply(l, &p).keep), [3, 2]);
        // Huge durations reach back before any snapshot; negative ones ahead of the newest.
        let l = list(&["0001-01-01T00:00:00Z", "2021-01-01T00:00:00Z"]);
        let p = ExpirePolicy {
            within: Duration::parse("9223372036854775807y").unwrap(),
            ..Default::default()
        };
        assert_eq!(ids(&apply(l.clone(), &p).keep), [2, 1]);
        let p = ExpirePolicy {
            within: Duration::parse("-1h").unwrap(),
            last: 1,
            ..Default::default()
        };
        let r = apply(l, &p);
        assert_eq!(r.reasons[0].matches, ["last snapshot"]);
    }

    #[test]
    fn keep_within_in_the_local_zone_follows_dst() {
        // The newest snapshot is in the local zone (+01:00 in January here): "5m" back is
        // 2020-08-01 12:00 local, which is +02:00, i.e. 10:00Z (not 11:00Z).
        let l = list(&[
            "2020-08-01T11:59:00+02:00", // 09:59Z: out
            "2020-08-01T12:30:00+02:00", // 10:30Z: in with the local zone, out with +01:00
            "2021-01-01T12:00:00+01:00",
        ]);
        let p = ExpirePolicy {
            within: Duration::parse("5m").unwrap(),
            ..Default::default()
        };
        assert_eq!(
            ids(&apply_policy_at(l.clone(), &p, NOW, &berlin).keep),
            [3, 2]
        );
        // The same times when the local zone is UTC: the fixed +01:00 is used.
        assert_eq!(ids(&apply_policy_at(l, &p, NOW, &utc).keep), [3]);
        // An offset that is not the local one stays fixed even when TZ has DST.
        let l = list(&[
            "2020-08-01T11:30:00+01:00", // 10:30Z: out
            "2020-08-01T12:30:00+01:00", // 11:30Z
            "2021-01-01T12:00:00+01:00",
        ]);
        let r = apply_policy_at(l, &p, NOW, &|s| berlin(s) + 3600);
        assert_eq!(ids(&r.keep), [3, 2]);
    }

    #[test]
    fn within_buckets() {
        let p = ExpirePolicy {
            within_daily: Duration::parse("2d").unwrap(),
            within_yearly: Duration::parse("1y").unwrap(),
            ..Default::default()
        };
        let l = list(&[
            "2019-06-01T10:00:00Z",
            "2020-01-01T10:00:00Z",
            "2020-01-02T09:00:00Z",
            "2020-01-02T10:00:00Z",
            "2020-01-03T09:00:00Z",
            "2020-01-03T10:00:00Z",
        ]);
        let r = apply(l, &p);
        // 2020-01-01T10:00Z is not after the 2-day threshold and its year is taken; 2019 is
        // within the year.
        assert_eq!(ids(&r.keep), [6, 4, 1]);
        assert_eq!(ids(&r.remove), [5, 3, 2]);
        assert_eq!(
            r.reasons[0].matches,
            ["daily within 2d", "yearly within 1y"]
        );
        assert_eq!(r.reasons[1].matches, ["daily within 2d"]);
        assert_eq!(r.reasons[2].matches, ["yearly within 1y"]);
        assert_eq!(r.reasons[0].counters, Counters::default());
    }

    #[test]
    fn grouping() {
        assert_eq!(
            GroupBy::parse("host,paths").unwrap(),
            GroupBy {
                host: true,
                paths: true,
                tags: false
            }
        );
        assert_eq!(
            GroupBy::parse("hosts,path,tag").unwrap(),
            GroupBy {
                host: true,
                paths: true,
                tags: true
            }
        );
        assert!(!GroupBy::parse("").unwrap().any());
        assert!(!GroupBy::parse(",,").unwrap().any());
        assert_eq!(
            GroupBy::parse("host,x").unwrap_err(),
            "unknown grouping option: 'x'"
        );

        let l = vec![
            (
                id(1),
                snap_with("2020-01-01T00:00:00Z", "b", &["y", "x"], &["/2", "/1"]),
            ),
            (
                id(2),
                snap_with("2020-01-01T00:00:00Z", "a", &["x", "y"], &["/1", "/2"]),
            ),
            (id(3), snap_with("2020-01-01T00:00:00Z", "a", &[], &["/1"])),
            (
                id(4),
                snap_with("2020-01-01T00:00:00Z", "b", &["x", "y"], &["/1"]),
            ),
        ];
        let g = group_snapshots(l.clone(), GroupBy::parse("tags").unwrap());
        assert_eq!(g.len(), 2);
        assert_eq!(
            g[0].0.to_json().to_string(),
            r#"{"hostname":"","paths":null,"tags":["x","y"]}"#
        );
        assert_eq!(ids(&g[0].1), [1, 2, 4]);
        // Paths always, tags when grouping by them, come back sorted.
        assert_eq!(g[0].1[0].1.tags, ["x", "y"]);
        assert_eq!(g[0].1[0].1.paths, ["/1", "/2"]);
        assert_eq!(g[1].0.tags, None);

        let g = group_snapshots(l.clone(), GroupBy::parse("host,paths").unwrap());
        let keys: Vec<String> = g.iter().map(|(k, _)| k.to_json().to_string()).collect();
        assert_eq!(
            keys,
            [
                r#"{"hostname":"a","paths":["/1","/2"],"tags":null}"#,
                r#"{"hostname":"a","paths":["/1"],"tags":null}"#,
                r#"{"hostname":"b","paths":["/1","/2"],"tags":null}"#,
                r#"{"hostname":"b","paths":["/1"],"tags":null}"#,
            ]
        );
        assert_eq!(g[2].1[0].1.tags, ["y", "x"]);

        let g = group_snapshots(l, GroupBy::default());
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].0, GroupKey::default());
        assert_eq!(ids(&g[0].1), [1, 2, 3, 4]);
    }
}

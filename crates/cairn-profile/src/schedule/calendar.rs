//! systemd calendar expressions (`OnCalendar=`, systemd.time(7)), the language of a profile's
//! `schedule`. Parsed here for three reasons: a bad expression must be refused before any unit
//! is written (one line naming it), crontab needs it translated, and `schedule status` can say
//! when a crontab entry runs next. The units themselves get the expression as written: systemd
//! reads its own language best.
//!
//! Supported: the shorthands (`minutely`, `hourly`, `daily`, `weekly`, `monthly`, `yearly`,
//! `annually`, `quarterly`, `semiannually`), `[WEEKDAYS] [[YEAR-]MONTH-DAY] [HOUR:MINUTE[:SECOND]]`
//! with `*`, lists (`,`), ranges (`..`) and repetitions (`/`). Refused: `~` (days counted from
//! the end of the month), time zones and fractional seconds.

use anyhow::{bail, Context, Result};
use chrono::{Datelike, NaiveDate, NaiveDateTime};
use std::collections::BTreeSet;

const WEEKDAYS: [(&str, &str); 7] = [
    ("mon", "monday"),
    ("tue", "tuesday"),
    ("wed", "wednesday"),
    ("thu", "thursday"),
    ("fri", "friday"),
    ("sat", "saturday"),
    ("sun", "sunday"),
];

/// One field of an event: anything, or an explicit set of values.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Field {
    Any,
    Values(BTreeSet<u32>),
}

impl Field {
    fn matches(&self, v: u32) -> bool {
        match self {
            Field::Any => true,
            Field::Values(s) => s.contains(&v),
        }
    }
    fn values(&self, lo: u32, hi: u32) -> Vec<u32> {
        match self {
            Field::Any => (lo..=hi).collect(),
            Field::Values(s) => s
                .iter()
                .copied()
                .filter(|v| (lo..=hi).contains(v))
                .collect(),
        }
    }
    fn single(v: u32) -> Field {
        Field::Values([v].into_iter().collect())
    }
}

/// A parsed calendar expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarEvent {
    /// The expression as the profile wrote it (trimmed); this is what `OnCalendar=` gets.
    pub expression: String,
    /// Monday = 0 … Sunday = 6.
    weekdays: Field,
    years: Field,
    months: Field,
    days: Field,
    hours: Field,
    minutes: Field,
    seconds: Field,
}

fn shorthand(s: &str) -> Option<&'static str> {
    Some(match s {
        "minutely" => "*-*-* *:*:00",
        "hourly" => "*-*-* *:00:00",
        "daily" => "*-*-* 00:00:00",
        "weekly" => "Mon *-*-* 00:00:00",
        "monthly" => "*-*-01 00:00:00",
        "yearly" | "annually" => "*-01-01 00:00:00",
        "quarterly" => "*-01,04,07,10-01 00:00:00",
        "semiannually" => "*-01,07-01 00:00:00",
        _ => return None,
    })
}

impl CalendarEvent {
    /// Parses one expression; the error says what is wrong with it (the caller adds which
    /// profile it came from).
    pub fn parse(expression: &str) -> Result<CalendarEvent> {
        let expression = expression.trim();
        if expression.is_empty() {
            bail!("empty calendar expression");
        }
        if expression.len() > 256 {
            bail!("calendar expression longer than 256 characters");
        }
        let lower = expression.to_ascii_lowercase();
        let text = shorthand(&lower).unwrap_or(expression);
        let mut ev = CalendarEvent {
            expression: expression.to_string(),
            weekdays: Field::Any,
            years: Field::Any,
            months: Field::Any,
            days: Field::Any,
            hours: Field::single(0),
            minutes: Field::single(0),
            seconds: Field::single(0),
        };
        let mut tokens: Vec<&str> = text.split_whitespace().collect();
        // "Wed, 17:48": systemd accepts a comma (and spaces) after the weekdays.
        if tokens.len() > 1 && tokens[0].ends_with(',') {
            tokens[0] = tokens[0].trim_end_matches(',');
        }
        let mut rest = &tokens[..];
        if let Some(first) = rest.first() {
            if first.starts_with(|c: char| c.is_ascii_alphabetic()) {
                ev.weekdays = parse_weekdays(first)?;
                rest = &rest[1..];
            }
        }
        let mut seen_date = false;
        let mut seen_time = false;
        for tok in rest {
            if tok.contains('~') {
                bail!("'~' (days before the end of the month) is not supported");
            }
            if tok.contains(':') && !seen_time {
                seen_time = true;
                ev.parse_time(tok)?;
            } else if tok.contains('-') && !seen_date && !seen_time {
                seen_date = true;
                ev.parse_date(tok)?;
            } else if tok.starts_with(|c: char| c.is_ascii_alphabetic()) {
                bail!("unexpected '{tok}' (time zones are not supported)");
            } else {
                bail!("unexpected '{tok}'");
            }
        }
        if rest.is_empty() && matches!(ev.weekdays, Field::Any) {
            bail!("no weekday, date or time");
        }
        Ok(ev)
    }

    fn parse_date(&mut self, tok: &str) -> Result<()> {
        let parts: Vec<&str> = tok.split('-').collect();
        let (year, month, day) = match parts.as_slice() {
            [m, d] => (None, *m, *d),
            [y, m, d] => (Some(*y), *m, *d),
            _ => bail!("bad date '{tok}'"),
        };
        if let Some(y) = year {
            self.years = parse_field(y, 0, 2199, "year")?;
            // Two-digit years are this century's, as systemd reads them.
            if let Field::Values(s) = &self.years {
                let s: BTreeSet<u32> = s
                    .iter()
                    .map(|&y| if y < 100 { y + 2000 } else { y })
                    .collect();
                if s.iter().any(|&y| y < 1970) {
                    bail!("year before 1970 in '{tok}'");
                }
                self.years = Field::Values(s);
            }
        }
        self.months = parse_field(month, 1, 12, "month")?;
        self.days = parse_field(day, 1, 31, "day")?;
        Ok(())
    }

    fn parse_time(&mut self, tok: &str) -> Result<()> {
        let parts: Vec<&str> = tok.split(':').collect();
        let (h, m, s) = match parts.as_slice() {
            [h, m] => (*h, *m, None),
            [h, m, s] => (*h, *m, Some(*s)),
            _ => bail!("bad time '{tok}'"),
        };
        self.hours = parse_field(h, 0, 23, "hour")?;
        self.minutes = parse_field(m, 0, 59, "minute")?;
        self.seconds = match s {
            Some(s) => parse_field(s, 0, 59, "second")?,
            None => Field::single(0),
        };
        Ok(())
    }

    fn date_matches(&self, d: NaiveDate) -> bool {
        self.weekdays.matches(d.weekday().num_days_from_monday())
            && self.years.matches(d.year().max(0) as u32)
            && self.months.matches(d.month())
            && self.days.matches(d.day())
    }

    /// The first time strictly after `after` that the event elapses (local wall-clock time,
    /// as systemd reads an expression without a time zone), or None within the years systemd
    /// accepts.
    pub fn next_after(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        let mut date = after.date();
        let last = NaiveDate::from_ymd_opt(2200, 1, 1)?;
        while date < last {
            if self.date_matches(date) {
                for h in self.hours.values(0, 23) {
                    for m in self.minutes.values(0, 59) {
                        for s in self.seconds.values(0, 59) {
                            let t = date.and_hms_opt(h, m, s)?;
                            if t > after {
                                return Some(t);
                            }
                        }
                    }
                }
            }
            date = date.succ_opt()?;
        }
        None
    }

    /// The crontab time fields (`minute hour day month weekday`), or why the expression has no
    /// cron equivalent.
    pub fn to_cron(&self) -> Result<String> {
        let why = |what: &str| {
            anyhow::anyhow!(
                "schedule '{}' cannot be written as a crontab entry: {what}",
                self.expression
            )
        };
        if self.years != Field::Any {
            return Err(why("cron has no year field"));
        }
        if self.seconds != Field::single(0) {
            return Err(why("cron runs on whole minutes only"));
        }
        if self.days != Field::Any && self.weekdays != Field::Any {
            // cron runs when *either* the day of month or the weekday matches.
            return Err(why(
                "cron cannot require both a day of the month and a weekday",
            ));
        }
        let weekdays = match &self.weekdays {
            Field::Any => Field::Any,
            // cron counts Sunday as 0, systemd weeks start on Monday.
            Field::Values(s) => Field::Values(s.iter().map(|d| (d + 1) % 7).collect()),
        };
        Ok(format!(
            "{} {} {} {} {}",
            cron_field(&self.minutes),
            cron_field(&self.hours),
            cron_field(&self.days),
            cron_field(&self.months),
            cron_field(&weekdays)
        ))
    }
}

/// `*`, or the values with runs of three or more written as `a-b`.
fn cron_field(f: &Field) -> String {
    let Field::Values(s) = f else {
        return "*".into();
    };
    let v: Vec<u32> = s.iter().copied().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < v.len() {
        let mut j = i;
        while j + 1 < v.len() && v[j + 1] == v[j] + 1 {
            j += 1;
        }
        if j >= i + 2 {
            out.push(format!("{}-{}", v[i], v[j]));
        } else {
            out.extend(v[i..=j].iter().map(|x| x.to_string()));
        }
        i = j + 1;
    }
    out.join(",")
}

fn number(s: &str, what: &str) -> Result<u32> {
    if s.is_empty() || s.len() > 4 || !s.bytes().all(|b| b.is_ascii_digit()) {
        bail!("bad {what} '{s}'");
    }
    s.parse().with_context(|| format!("bad {what} '{s}'"))
}

/// A comma list of `*`, `A`, `A..B`, `A/STEP` or `A..B/STEP`, each value within lo..=hi.
fn parse_field(text: &str, lo: u32, hi: u32, what: &str) -> Result<Field> {
    if text == "*" {
        return Ok(Field::Any);
    }
    let mut set = BTreeSet::new();
    for item in text.split(',') {
        if item == "*" {
            return Ok(Field::Any);
        }
        let (range, step) = match item.split_once('/') {
            Some((r, s)) => (r, Some(number(s, what)?)),
            None => (item, None),
        };
        let (a, b) = match range.split_once("..") {
            Some((a, b)) => (number(a, what)?, Some(number(b, what)?)),
            None => (number(range, what)?, None),
        };
        // Years are checked by the caller (two-digit forms); the rest against their bounds.
        let check = |v: u32| -> Result<u32> {
            if what != "year" && !(lo..=hi).contains(&v) {
                bail!("{what} {v} out of range {lo}..{hi}");
            }
            Ok(v)
        };
        let a = check(a)?;
        let end = match (b, step) {
            (Some(b), _) => check(b)?,
            (None, Some(_)) => hi,
            (None, None) => a,
        };
        if end < a {
            bail!("{what} range '{range}' runs backwards");
        }
        let step = step.unwrap_or(1);
        if step == 0 {
            bail!("{what} repetition '/0'");
        }
        set.extend((a..=end).step_by(step as usize));
    }
    Ok(Field::Values(set))
}

fn parse_weekdays(text: &str) -> Result<Field> {
    let day = |name: &str| -> Result<u32> {
        let lower = name.to_ascii_lowercase();
        WEEKDAYS
            .iter()
            .position(|(short, long)| lower == *short || lower == *long)
            .map(|i| i as u32)
            .with_context(|| format!("unknown weekday '{name}'"))
    };
    let mut set = BTreeSet::new();
    for item in text.split(',').filter(|s| !s.is_empty()) {
        match item.split_once("..") {
            Some((a, b)) => {
                let (a, b) = (day(a)?, day(b)?);
                if b < a {
                    bail!("weekday range '{item}' runs backwards (weeks start on Monday)");
                }
                set.extend(a..=b);
            }
            None => {
                set.insert(day(item)?);
            }
        }
    }
    if set.is_empty() {
        bail!("no weekday in '{text}'");
    }
    Ok(Field::Values(set))
}

//! Reading resticprofile's keys out of a `serde_json::Value`, whatever the file format made of
//! them: TOML and YAML give booleans and numbers where JSON users often write strings.

use anyhow::{bail, Result};
use serde_json::Value;
use std::time::Duration;

/// A string-ish key: strings as they are, numbers and booleans spelled out; None when absent,
/// null or empty.
pub fn string(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A boolean key: true/false, "true"/"false", 1/0; None when absent.
pub fn boolean(v: &Value, key: &str) -> Result<Option<bool>> {
    Ok(match v.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(Value::Number(n)) => Some(n.as_i64() != Some(0)),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "on" | "1" => Some(true),
            "false" | "no" | "off" | "0" | "" => Some(false),
            _ => bail!("'{key}': '{s}' is not a boolean"),
        },
        Some(other) => bail!("'{key}': {other} is not a boolean"),
    })
}

/// A string or a list of strings (resticprofile accepts both for every list key).
pub fn strings(v: &Value, key: &str) -> Result<Vec<String>> {
    Ok(match v.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => {
            let mut out = Vec::with_capacity(a.len());
            for item in a {
                match item {
                    Value::String(s) => out.push(s.clone()),
                    Value::Number(n) => out.push(n.to_string()),
                    other => bail!("'{key}': {other} is not a string"),
                }
            }
            out
        }
        Some(other) => bail!("'{key}': {other} is not a string or a list of strings"),
    })
}

/// A duration the way resticprofile (Go's time.ParseDuration) writes them: "90s", "15m30s",
/// "1h", "1.5h", "250ms"; a bare number counts seconds.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let t = text.trim();
    if t.is_empty() || t.len() > 64 {
        bail!("bad duration '{text}'");
    }
    if let Ok(secs) = t.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let mut total = 0f64;
    let mut rest = t;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let n: f64 = num
            .parse()
            .map_err(|_| anyhow::anyhow!("bad duration '{text}'"))?;
        let scale = match unit {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            "us" | "µs" => 0.000_001,
            "ns" => 0.000_000_001,
            _ => bail!("bad duration '{text}' (units: h, m, s, ms)"),
        };
        total += n * scale;
        rest = tail;
    }
    if !total.is_finite() || total > 1e9 {
        bail!("bad duration '{text}'");
    }
    Ok(Duration::from_secs_f64(total))
}

/// A duration key (string like "15m", or a number of seconds).
pub fn duration(v: &Value, key: &str) -> Result<Option<Duration>> {
    match v.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(s) => Ok(Some(Duration::from_secs(s))),
            None => bail!("'{key}': {n} is not a duration"),
        },
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => parse_duration(s)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("'{key}': {e}")),
        Some(other) => bail!("'{key}': {other} is not a duration"),
    }
}

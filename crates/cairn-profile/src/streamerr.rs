//! resticprofile's `stream-error`: shell commands started when lines of a command's stderr
//! match a pattern. A profile holds a list of `{pattern, run, min-matches, max-runs}`; every
//! stderr line of every repository step is tested against each pattern (a search, not a
//! whole-line match, as Go's regexp does it). A rule's `run` starts each time `min-matches`
//! more lines have matched since its last start, at most `max-runs` times per step (0: no
//! limit), with the matching line on its stdin — resticprofile's counting exactly.

use serde_json::{Map, Value};

/// Longest pattern accepted, and the compiled program's ceiling: a pattern is configuration,
/// but the lines it runs on come from the repository and the network.
const MAX_PATTERN_LEN: usize = 4096;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// One `stream-error` entry.
#[derive(Debug, Clone)]
pub struct Rule {
    pub pattern: regex::Regex,
    pub run: String,
    pub min_matches: u64,
    pub max_runs: u64,
}

/// The profile's `stream-error` value: a list of tables, or one table (as HCL and a YAML
/// mapping write it). Errors name the entry and the key.
pub fn parse(v: &Value) -> Result<Vec<Rule>, String> {
    let entries: Vec<&Map<String, Value>> = match v {
        Value::Null => return Ok(Vec::new()),
        Value::Object(t) => vec![t],
        Value::Array(a) => a
            .iter()
            .enumerate()
            .map(|(i, e)| {
                e.as_object()
                    .ok_or_else(|| format!("stream-error entry {}: not a table", i + 1))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err("stream-error: a list of tables {pattern, run, …} is expected".into()),
    };
    entries
        .into_iter()
        .enumerate()
        .map(|(i, t)| rule(t).map_err(|e| format!("stream-error entry {}: {e}", i + 1)))
        .collect()
}

fn rule(t: &Map<String, Value>) -> Result<Rule, String> {
    if let Some(k) = t
        .keys()
        .find(|k| !["pattern", "run", "min-matches", "max-runs"].contains(&k.as_str()))
    {
        return Err(format!(
            "unknown key {k:?} (pattern, run, min-matches, max-runs)"
        ));
    }
    let text = |k: &str| -> Result<String, String> {
        match t.get(k) {
            Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
            _ => Err(format!("{k:?} is missing or empty")),
        }
    };
    let count = |k: &str| -> Result<u64, String> {
        match t.get(k) {
            None | Some(Value::Null) => Ok(0),
            Some(Value::Number(n)) => n
                .as_u64()
                .ok_or_else(|| format!("{k:?} must be a whole number ≥ 0")),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map_err(|_| format!("{k:?} must be a whole number ≥ 0")),
            Some(_) => Err(format!("{k:?} must be a whole number ≥ 0")),
        }
    };
    let source = text("pattern")?;
    if source.len() > MAX_PATTERN_LEN {
        return Err(format!("pattern longer than {MAX_PATTERN_LEN} bytes"));
    }
    let pattern = regex::RegexBuilder::new(&source)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| format!("pattern {source:?}: {}", reason_line(&e.to_string())))?;
    Ok(Rule {
        pattern,
        run: text("run")?,
        min_matches: count("min-matches")?,
        max_runs: count("max-runs")?,
    })
}

/// The regex crate's multi-line error, as its last line (the reason; the lines before show
/// the pattern with a caret).
fn reason_line(s: &str) -> String {
    s.lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty() && !l.starts_with('^'))
        .unwrap_or(s)
        .to_string()
}

/// The counts of one step: fresh for every step, as resticprofile resets its analyser for
/// each restic command.
#[derive(Debug)]
pub struct Matcher {
    rules: Vec<Rule>,
    state: Vec<RuleState>,
}

#[derive(Debug, Clone, Copy, Default)]
struct RuleState {
    matched: u64,
    /// `matched` when `run` last started.
    at_last_run: u64,
    runs: u64,
}

impl Matcher {
    pub fn new(rules: Vec<Rule>) -> Matcher {
        let state = vec![RuleState::default(); rules.len()];
        Matcher { rules, state }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Tests one line (without its newline) and returns the rules whose `run` starts now,
    /// in the order of the file.
    pub fn line(&mut self, line: &str) -> Vec<&Rule> {
        let mut due = Vec::new();
        for (rule, st) in self.rules.iter().zip(self.state.iter_mut()) {
            if !rule.pattern.is_match(line) {
                continue;
            }
            st.matched += 1;
            let enough = st.matched >= rule.min_matches.saturating_add(st.at_last_run);
            let allowed = rule.max_runs == 0 || st.runs < rule.max_runs;
            if enough && allowed {
                st.at_last_run = st.matched;
                st.runs += 1;
                due.push(rule);
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn runs(rules: Value, lines: &[&str]) -> Vec<String> {
        let mut m = Matcher::new(parse(&rules).unwrap());
        let mut out = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            for r in m.line(l) {
                out.push(format!("{}@{}", r.run, i + 1));
            }
        }
        out
    }

    #[test]
    fn min_matches_counts_since_the_last_run_and_max_runs_caps() {
        let rules = json!([{"pattern": "warn", "run": "a", "min-matches": 2, "max-runs": 2}]);
        let lines = [
            "warn 1", "ok", "warn 2", "warn 3", "warn 4", "warn 5", "warn 6",
        ];
        // Starts at the 2nd and 4th match; the 6th would be a third run.
        assert_eq!(runs(rules, &lines), ["a@3", "a@5"]);
    }

    #[test]
    fn zero_means_every_match_and_no_limit() {
        let rules = json!({"pattern": "^E", "run": "b"});
        assert_eq!(
            runs(rules, &["E1", "xE", "E2", "E3"]),
            ["b@1", "b@3", "b@4"]
        );
    }

    #[test]
    fn several_rules_see_every_line() {
        let rules = json!([
            {"pattern": "disk", "run": "x", "min-matches": 1},
            {"pattern": "no space", "run": "y", "max-runs": 1},
        ]);
        let lines = ["no space left on disk", "no space", "disk"];
        assert_eq!(runs(rules, &lines), ["x@1", "y@1", "x@3"]);
    }

    #[test]
    fn bad_entries_are_refused_naming_them() {
        let err = |v: Value| parse(&v).unwrap_err();
        assert!(err(json!([{"pattern": "(", "run": "x"}])).contains("entry 1: pattern \"(\""));
        assert!(err(json!([{"run": "x"}])).contains("\"pattern\" is missing"));
        assert!(err(json!([{"pattern": "a", "run": "x", "max-runs": -1}])).contains("max-runs"));
        assert!(err(
            json!([{"pattern": "a", "run": "x"}, {"pattern": "a", "run": "x", "when": 1}])
        )
        .contains("entry 2: unknown key \"when\""));
        assert!(err(json!("x")).contains("list of tables"));
    }
}

//! HTTP hooks: `send-before`, `send-after`, `send-after-fail` and `send-finally` of a
//! command section (healthchecks.io, ntfy, Slack, Gotify and the like).
//!
//! How the runner plugs this in: around each command of a profile call
//! [`send`]`(When::Before, …, None)` before it runs, then `When::After` or `When::AfterFail`
//! with the step's [`RunOutcome`], then `When::Finally` with it. Every call returns warnings
//! to print and never an error: a webhook that fails or hangs must not fail the backup.
//!
//! Each hook is a table or a list of tables with `url` (required), `method` (GET),
//! `headers` (a list of `{name, value}`), `body`, `body-template` (a file) and
//! `skip-tls-verification`, as in resticprofile. In `url` and `body`, `$NAME`/`${NAME}` is
//! replaced by `PROFILE_NAME`, `PROFILE_COMMAND`, and after a failure `ERROR`,
//! `ERROR_COMMANDLINE`, `ERROR_EXIT_CODE`, `ERROR_STDERR` (query-escaped in `url`), any
//! other name by the environment variable, `$$` by `$`. A `body-template` file may use
//! `{{ .ProfileName }}`, `{{ .ProfileCommand }}`, `{{ .Error.Message }}`,
//! `{{ .Error.CommandLine }}`, `{{ .Error.ExitCode }}`, `{{ .Error.Stderr }}`, `{{ .Stdout }}`
//! (always empty in cairn), `{{ .Hostname }}` and `{{ .Env.NAME }}`: field substitution only,
//! no pipelines, conditions or loops (a template using them is reported and not sent).
//!
//! Delivery is bounded: `global.send-timeout` (default 30s, as resticprofile) bounds the
//! *whole* delivery of one hook, retries included. A transport error, a timeout or an HTTP
//! 408, 429 or 5xx is retried with growing pauses while time remains; other 4xx are not.
//! `global.ca-certificates` adds trusted roots.

use crate::outcome::RunOutcome;
use crate::schedule::values;
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;
use std::io::Read;
use std::time::{Duration, Instant};

/// Which hooks to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    Before,
    After,
    AfterFail,
    Finally,
}

impl When {
    pub fn key(self) -> &'static str {
        match self {
            When::Before => "send-before",
            When::After => "send-after",
            When::AfterFail => "send-after-fail",
            When::Finally => "send-finally",
        }
    }
}

/// One configured hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub url: String,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub body_template: Option<String>,
    pub skip_tls_verification: bool,
}

/// The hooks of `section[when.key()]`; an error names what is malformed.
pub fn hooks(section: &Value, when: When) -> Result<Vec<Hook>> {
    let key = when.key();
    let items: Vec<&Value> = match section.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(v @ Value::Object(_)) => vec![v],
        Some(other) => bail!("'{key}': {other} is not a table or a list of tables"),
    };
    let mut out = Vec::new();
    for item in items {
        let url = values::string(item, "url").with_context(|| format!("'{key}' without a url"))?;
        let mut headers = Vec::new();
        let list: Vec<&Value> = match item.get("headers") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(a)) => a.iter().collect(),
            Some(v @ Value::Object(_)) => vec![v],
            Some(other) => bail!("'{key}.headers': {other} is not a list of {{name, value}}"),
        };
        for h in list {
            let Some(name) = values::string(h, "name") else {
                continue;
            };
            headers.push((name, values::string(h, "value").unwrap_or_default()));
        }
        out.push(Hook {
            url,
            method: values::string(item, "method")
                .unwrap_or_else(|| "GET".into())
                .to_ascii_uppercase(),
            headers,
            body: values::string(item, "body"),
            body_template: values::string(item, "body-template"),
            skip_tls_verification: values::boolean(item, "skip-tls-verification")?.unwrap_or(false),
        });
    }
    Ok(out)
}

/// What the templates and variables see.
#[derive(Debug, Clone, Default)]
struct Vars {
    profile: String,
    command: String,
    error: Option<ErrorInfo>,
}

#[derive(Debug, Clone, Default)]
struct ErrorInfo {
    message: String,
    command_line: String,
    exit_code: String,
    stderr: String,
}

impl Vars {
    fn new(profile: &str, command: &str, outcome: Option<&RunOutcome>) -> Vars {
        let error = outcome.filter(|o| !o.success).map(|o| ErrorInfo {
            message: o
                .error
                .clone()
                .unwrap_or_else(|| format!("exit status {}", o.exit_code)),
            command_line: o.command_line.clone().unwrap_or_default(),
            exit_code: o.exit_code.to_string(),
            stderr: o.stderr.clone().unwrap_or_default(),
        });
        Vars {
            profile: profile.into(),
            command: command.into(),
            error,
        }
    }

    fn variable(&self, name: &str, in_url: bool) -> String {
        let e = self.error.clone().unwrap_or_default();
        let escape = |s: String| if in_url { query_escape(&s) } else { s };
        match name {
            "PROFILE_NAME" => self.profile.clone(),
            "PROFILE_COMMAND" => self.command.clone(),
            "ERROR" => escape(e.message),
            "ERROR_COMMANDLINE" => escape(e.command_line),
            "ERROR_EXIT_CODE" => e.exit_code,
            "ERROR_STDERR" => escape(e.stderr),
            other => std::env::var(other).unwrap_or_default(),
        }
    }

    fn field(&self, path: &str) -> Result<String> {
        let e = self.error.clone().unwrap_or_default();
        Ok(match path {
            ".ProfileName" => self.profile.clone(),
            ".ProfileCommand" => self.command.clone(),
            ".Error.Message" => e.message,
            ".Error.CommandLine" => e.command_line,
            ".Error.ExitCode" => e.exit_code,
            ".Error.Stderr" => e.stderr,
            ".Stdout" => String::new(),
            ".Hostname" => hostname(),
            other => match other.strip_prefix(".Env.") {
                Some(name) => std::env::var(name).unwrap_or_default(),
                None => bail!("unsupported template action '{{{{ {other} }}}}'"),
            },
        })
    }
}

fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

fn query_escape(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `$NAME`, `${NAME}` and `$$`, the way Go's os.Expand (resticprofile's) reads them.
fn expand(text: &str, ctx: &Vars, in_url: bool) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let tail = &rest[i + 1..];
        if let Some(t) = tail.strip_prefix('$') {
            out.push('$');
            rest = t;
        } else if let Some(t) = tail.strip_prefix('{') {
            match t.find('}') {
                Some(j) => {
                    out.push_str(&ctx.variable(&t[..j], in_url));
                    rest = &t[j + 1..];
                }
                None => {
                    out.push('$');
                    rest = tail;
                }
            }
        } else {
            let n = tail
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(tail.len());
            if n == 0 {
                out.push('$');
            } else {
                out.push_str(&ctx.variable(&tail[..n], in_url));
            }
            rest = &tail[n..];
        }
    }
    out.push_str(rest);
    out
}

/// Field substitution in a Go-template body (`{{ .Field }}`, `{{- … -}}` trimming).
fn render_template(text: &str, ctx: &Vars) -> Result<String> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        let mut before = &rest[..i];
        let tail = &rest[i + 2..];
        let end = tail
            .find("}}")
            .context("'{{' without '}}' in the body template")?;
        let mut action = &tail[..end];
        let mut after = &tail[end + 2..];
        if let Some(a) = action.strip_prefix('-') {
            before = before.trim_end();
            action = a;
        }
        if let Some(a) = action.strip_suffix('-') {
            after = after.trim_start();
            action = a;
        }
        out.push_str(before);
        let action = action.trim();
        if !action.starts_with('.') || action.contains(char::is_whitespace) {
            bail!(
                "unsupported template action '{{{{ {action} }}}}' (only fields like .ProfileName)"
            );
        }
        out.push_str(&ctx.field(action)?);
        rest = after;
    }
    out.push_str(rest);
    Ok(out)
}

/// Sends the section's hooks for `when`; returns one warning per hook that could not be
/// delivered (or was malformed). `outcome` is None before the command runs.
pub fn send(
    when: When,
    profile: &str,
    command: &str,
    section: &Value,
    global: &Value,
    outcome: Option<&RunOutcome>,
) -> Vec<String> {
    let hooks = match hooks(section, when) {
        Ok(h) => h,
        Err(e) => return vec![format!("{}: {e:#}", when.key())],
    };
    if hooks.is_empty() {
        return Vec::new();
    }
    let budget = match values::duration(global, "send-timeout") {
        Ok(Some(d)) if !d.is_zero() => d,
        Ok(_) => Duration::from_secs(30),
        Err(e) => return vec![format!("global: {e:#}")],
    };
    let ca_certs: Vec<std::path::PathBuf> = values::strings(global, "ca-certificates")
        .unwrap_or_default()
        .into_iter()
        .map(Into::into)
        .collect();
    let ctx = Vars::new(profile, command, outcome);
    let mut warnings = Vec::new();
    for hook in hooks {
        if let Err(e) = deliver(&hook, &ctx, budget, &ca_certs) {
            warnings.push(format!(
                "{} {} {}: {e:#}",
                when.key(),
                hook.method,
                redact(&hook.url)
            ));
        }
    }
    warnings
}

/// The URL without user information (a token in it should not end up in logs).
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(a)) if a > s && !url[s + 3..a].contains('/') => {
            format!("{}***{}", &url[..s + 3], &url[a..])
        }
        _ => url.to_string(),
    }
}

fn deliver(
    hook: &Hook,
    ctx: &Vars,
    budget: Duration,
    ca_certs: &[std::path::PathBuf],
) -> Result<()> {
    let url = expand(&hook.url, ctx, true);
    let mut body = match &hook.body_template {
        Some(file) => {
            let mut text = String::new();
            std::fs::File::open(file)
                .and_then(|f| f.take(1 << 20).read_to_string(&mut text))
                .with_context(|| format!("body-template {file}"))?;
            Some(render_template(&text, ctx).with_context(|| format!("body-template {file}"))?)
        }
        None => None,
    };
    if let Some(b) = &hook.body {
        body = Some(expand(b, ctx, false));
    }
    let tls = cairn_backend::http::tls_config(&cairn_backend::http::TlsOptions {
        ca_certs: ca_certs.to_vec(),
        client_cert: None,
        insecure: hook.skip_tls_verification,
    })
    .map_err(|e| anyhow!("{e}"))?;
    let start = Instant::now();
    let mut pause = Duration::from_millis(500);
    loop {
        let left = budget.saturating_sub(start.elapsed());
        if left.is_zero() {
            bail!("no answer within send-timeout {}s", budget.as_secs_f64());
        }
        let mut b = ureq::AgentBuilder::new().timeout(left);
        if let Some(t) = &tls {
            b = b.tls_config(t.clone());
        }
        let mut req = b.build().request(&hook.method, &url);
        let mut has_agent = false;
        for (name, value) in &hook.headers {
            has_agent |= name.eq_ignore_ascii_case("user-agent");
            req = req.set(name, value);
        }
        if !has_agent {
            req = req.set("User-Agent", concat!("cairn/", env!("CARGO_PKG_VERSION")));
        }
        let result = match &body {
            Some(b) => req.send_string(b),
            None => req.call(),
        };
        let retry = match result {
            Ok(_) => return Ok(()),
            Err(ureq::Error::Status(code, _)) if code == 408 || code == 429 || code >= 500 => {
                format!("HTTP {code}")
            }
            Err(ureq::Error::Status(code, r)) => {
                bail!("HTTP {code} {}", r.status_text())
            }
            Err(e) => format!("{e}"),
        };
        let left = budget.saturating_sub(start.elapsed());
        if left <= pause {
            bail!(
                "{retry} (gave up after {:.1}s)",
                start.elapsed().as_secs_f64()
            );
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(8));
    }
}

//! Paths and variables as resticprofile resolves them: files the configuration names
//! (password-file, exclude-file, …) are relative to the configuration file's directory;
//! backup sources, a local repository, the status and metrics files are relative to
//! `base-dir`, else to the directory cairn was started from. `$VAR`, `${VAR}` and `~` are
//! expanded in paths; a small set of resticprofile's `{{ .Name }}` templates in any value.

use super::under;
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

pub struct Context {
    config_dir: PathBuf,
    cwd: PathBuf,
    profile: String,
}

impl Context {
    pub fn new(config_dir: &Path, profile: &str) -> Context {
        Context {
            config_dir: config_dir.to_path_buf(),
            cwd: std::env::current_dir().unwrap_or_else(|_| PathBuf::from("/")),
            profile: profile.to_string(),
        }
    }
}

/// Expands `$NAME` and `${NAME}` with `lookup`; a name it does not know is left as written;
/// `$$` is one dollar.
pub fn expand_vars(s: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(a) = after.strip_prefix('$') {
            out.push('$');
            rest = a;
            continue;
        }
        let (name, len) = if let Some(inner) = after.strip_prefix('{') {
            match inner.find('}') {
                Some(end) => (&inner[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        match lookup(name) {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[i..i + 1 + len]),
        }
        rest = &after[len..];
    }
    out.push_str(rest);
    out
}

/// Environment expansion as Go's `os.ExpandEnv`: unknown variables become empty.
fn expand_env(s: &str) -> String {
    expand_vars(s, |n| Some(std::env::var(n).unwrap_or_default()))
}

fn expand_home(s: &str) -> String {
    if s == "~" || s.starts_with("~/") {
        if let Some(home) = std::env::var_os("HOME") {
            return format!("{}{}", home.to_string_lossy(), &s[1..]);
        }
    }
    s.to_string()
}

/// resticprofile's pre-defined template variables that cairn fills in.
fn template_value(expr: &str, ctx: &Context) -> Option<String> {
    let expr = expr.trim();
    if let Some(name) = expr.strip_prefix(".Env.") {
        // Only a plain name: pipelines (`| or …`) are not supported.
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return None;
        }
        return Some(std::env::var(name).unwrap_or_default());
    }
    Some(match expr {
        ".Profile.Name" => ctx.profile.clone(),
        ".ConfigDir" => ctx.config_dir.to_string_lossy().into_owned(),
        ".CurrentDir" | ".StartupDir" => ctx.cwd.to_string_lossy().into_owned(),
        ".TempDir" => std::env::temp_dir().to_string_lossy().into_owned(),
        ".BinaryDir" => std::env::current_exe()
            .ok()
            .and_then(|p| p.parent().map(|d| d.to_string_lossy().into_owned()))
            .unwrap_or_default(),
        ".Hostname" => super::hostname(),
        ".OS" => std::env::consts::OS.to_string(),
        ".Arch" => match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            a => a,
        }
        .to_string(),
        _ => return None,
    })
}

fn template_string(s: &str, ctx: &Context) -> Result<String, String> {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("{{") {
        out.push_str(&rest[..i]);
        let Some(end) = rest[i..].find("}}") else {
            return Err(format!("unclosed template in {s:?}"));
        };
        let expr = &rest[i + 2..i + end];
        match template_value(expr, ctx) {
            Some(v) => out.push_str(&v),
            None => {
                return Err(format!(
                    "template {{{{{expr}}}}} is not supported by cairn (supported: .Profile.Name, .ConfigDir, .CurrentDir, .StartupDir, .TempDir, .BinaryDir, .Hostname, .OS, .Arch, .Env.NAME)"
                ))
            }
        }
        rest = &rest[i + end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Fills in, in the file's text before it is parsed (as resticprofile does), the templates
/// that do not depend on the profile; the others are left for [`templates`].
pub fn file_templates(text: &str, config_dir: &Path) -> String {
    let ctx = Context::new(config_dir, "");
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("{{") {
        let Some(end) = rest[i..].find("}}") else {
            break;
        };
        let expr = &rest[i + 2..i + end];
        out.push_str(&rest[..i]);
        match template_value(expr, &ctx).filter(|_| expr.trim() != ".Profile.Name") {
            Some(v) => out.push_str(&v),
            None => out.push_str(&rest[i..i + end + 2]),
        }
        rest = &rest[i + end + 2..];
    }
    out.push_str(rest);
    out
}

/// Fills in `{{ … }}` in every string of the profile.
pub fn templates(table: &mut Map<String, Value>, ctx: &Context) -> Result<(), String> {
    fn walk(v: &mut Value, ctx: &Context) -> Result<(), String> {
        match v {
            Value::String(s) if s.contains("{{") => *s = template_string(s, ctx)?,
            Value::Array(a) => a.iter_mut().try_for_each(|x| walk(x, ctx))?,
            Value::Object(o) => o.values_mut().try_for_each(|x| walk(x, ctx))?,
            _ => {}
        }
        Ok(())
    }
    table.values_mut().try_for_each(|v| walk(v, ctx))
}

/// Applies `f` to a string or each string of a list.
fn each(v: Option<&mut Value>, f: &dyn Fn(&str) -> String) {
    match v {
        Some(Value::String(s)) if !s.is_empty() => *s = f(s),
        Some(Value::Array(a)) => {
            for x in a {
                if let Value::String(s) = x {
                    if !s.is_empty() {
                        *s = f(s);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Backends named by a prefix; anything else is a local path.
const REMOTE_PREFIXES: &[&str] = &[
    "sftp:", "rest:", "s3:", "b2:", "azure:", "gs:", "swift:", "rclone:", "http:", "https:",
];

fn local_repository(repo: &str, base: &Path) -> String {
    if REMOTE_PREFIXES.iter().any(|p| repo.starts_with(p)) {
        return repo.to_string();
    }
    let (prefix, path) = match repo.strip_prefix("local:") {
        Some(p) => ("local:", p),
        None => ("", repo),
    };
    let path = expand_home(&expand_env(path));
    format!("{prefix}{}", under(base, &path))
}

/// Resolves the profile's paths in place. With `source-relative`, the sources stay relative
/// and the directory they are relative to is returned.
pub fn resolve(table: &mut Map<String, Value>, ctx: &Context) -> Result<Option<PathBuf>, String> {
    let mut source_dir = None;
    let config_dir = ctx.config_dir.clone();
    let in_config = move |s: &str| under(&config_dir, &expand_home(&expand_env(s)));
    let expanded = |s: &str| expand_home(&expand_env(s));

    let base = match table.get("base-dir").and_then(Value::as_str) {
        Some(b) if !b.trim().is_empty() => PathBuf::from(under(&ctx.cwd, &expanded(b.trim()))),
        _ => ctx.cwd.clone(),
    };
    if table.contains_key("base-dir") {
        table.insert(
            "base-dir".into(),
            Value::String(base.to_string_lossy().into_owned()),
        );
    }
    let from_base = |s: &str| under(&base, &expanded(s));

    for k in [
        "password-file",
        "repository-file",
        "cache-dir",
        "cacert",
        "tls-client-cert",
        "lock",
        "env-file",
        "systemd-drop-in-files",
    ] {
        each(table.get_mut(k), &in_config);
    }
    for k in ["status-file", "prometheus-save-to-file"] {
        each(table.get_mut(k), &from_base);
    }
    each(table.get_mut("repository"), &|r| local_repository(r, &base));

    for (name, section) in table.iter_mut() {
        let Value::Object(section) = section else {
            continue;
        };
        if name == "env" || name == "prometheus-labels" {
            continue;
        }
        for k in [
            "password-file",
            "repository-file",
            "cache-dir",
            "cacert",
            "tls-client-cert",
            "from-password-file",
            "from-repository-file",
            "exclude-file",
            "iexclude-file",
            "files-from",
            "files-from-raw",
            "files-from-verbatim",
        ] {
            each(section.get_mut(k), &in_config);
        }
        for k in ["exclude", "iexclude"] {
            each(section.get_mut(k), &expanded);
        }
        for k in ["repository", "from-repository", "from-repo"] {
            each(section.get_mut(k), &|r| local_repository(r, &base));
        }
        for k in [
            "send-before",
            "send-after",
            "send-after-fail",
            "send-finally",
        ] {
            if let Some(Value::Array(sends)) = section.get_mut(k) {
                for s in sends {
                    if let Value::Object(s) = s {
                        each(s.get_mut("body-template"), &in_config);
                    }
                }
            } else if let Some(Value::Object(s)) = section.get_mut(k) {
                each(s.get_mut("body-template"), &in_config);
            }
        }
        if name == "backup" {
            let source_base = match section.get("source-base").and_then(Value::as_str) {
                Some(b) if !b.trim().is_empty() => PathBuf::from(from_base(b.trim())),
                _ => base.clone(),
            };
            let relative = section
                .get("source-relative")
                .is_some_and(crate::config::truthy);
            if relative {
                each(section.get_mut("source"), &expanded);
            } else {
                each(section.get_mut("source"), &|s| {
                    under(&source_base, &expanded(s))
                });
            }
            // Glob patterns select what they match, now (resticprofile's resolveGlob).
            if let Some(v) = section.get_mut("source") {
                let sources = super::strings(v);
                if sources.iter().any(|s| super::glob::has_meta(s)) {
                    let expanded: Vec<Value> = sources
                        .into_iter()
                        .flat_map(|s| {
                            if super::glob::has_meta(&s) {
                                super::glob::expand(&s, &source_base)
                            } else {
                                vec![s]
                            }
                        })
                        .map(Value::String)
                        .collect();
                    *v = Value::Array(expanded);
                }
            }
            if relative {
                source_dir = Some(source_base);
            }
        }
        // `path` strings select snapshots by absolute path.
        each(section.get_mut("path"), &from_base);
    }
    Ok(source_dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_expand_and_unknown_ones_stay() {
        let got = expand_vars("a $X ${Y} $Z $$ $", |n| match n {
            "X" => Some("1".into()),
            "Y" => Some("2".into()),
            _ => None,
        });
        assert_eq!(got, "a 1 2 $Z $ $");
    }

    #[test]
    fn templates_fill_the_supported_subset_and_refuse_the_rest() {
        let ctx = Context::new(Path::new("/etc/x"), "web");
        assert_eq!(
            template_string("{{ .ConfigDir }}/{{.Profile.Name}}.key", &ctx).unwrap(),
            "/etc/x/web.key"
        );
        for t in [
            "{{ .Now.Weekday }}",
            "{{ .Env.HOME | or \"/x\" }}",
            "{{env}}",
        ] {
            let e = template_string(t, &ctx).unwrap_err();
            assert!(e.contains("not supported"), "{e}");
        }
    }

    #[test]
    fn file_templates_fill_all_but_the_profile_name_and_leave_the_unknown() {
        let got = file_templates(
            "a: {{ .ConfigDir }}/k\nb: \"{{ .Profile.Name }}\"\nc: {{ .Now.Year }}\n",
            Path::new("/etc/c"),
        );
        assert_eq!(
            got,
            "a: /etc/c/k\nb: \"{{ .Profile.Name }}\"\nc: {{ .Now.Year }}\n"
        );
    }

    #[test]
    fn local_repositories_become_absolute_and_remote_ones_stay() {
        let base = Path::new("/srv");
        assert_eq!(local_repository("local:backup", base), "local:/srv/backup");
        assert_eq!(local_repository("backup", base), "/srv/backup");
        assert_eq!(local_repository("/abs", base), "/abs");
        assert_eq!(local_repository("rest:http://h/r", base), "rest:http://h/r");
    }
}

//! Reading a resticprofile configuration file: TOML (`.toml`, `.conf`), YAML or JSON, format
//! version 1 (profiles at the top level) or 2 (`profiles`, `groups.NAME.profiles`, `mixins`),
//! normalized to `serde_json::Value` maps with the keys as written in the file. Inheritance
//! and mixins are applied here ([`Config::profile`]); what the keys mean is `resolve`'s job.

mod find;
mod merge;

pub use find::{find_config_file, search_dirs};

use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// A configuration file is text a person wrote: anything larger is a mistake.
const MAX_CONFIG_BYTES: u64 = 4 << 20;

/// A loaded configuration file.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file, absolute.
    pub path: PathBuf,
    /// 1 or 2 (`version` key; 1 when absent).
    pub version: u32,
    /// The `global` section (empty when absent).
    pub global: Map<String, Value>,
    /// Profiles in file order, each as written (before inheritance).
    pub profiles: Map<String, Value>,
    /// Groups in file order.
    pub groups: Vec<Group>,
    mixins: Map<String, Value>,
}

/// A group of profiles run one after another (`[groups]`).
#[derive(Debug, Clone)]
pub struct Group {
    pub name: String,
    pub description: Option<String>,
    pub profiles: Vec<String>,
    /// `continue-on-error` (else `global.group-continue-on-error`).
    pub continue_on_error: Option<bool>,
    /// The group as written (version 2 groups may carry `schedules`).
    pub raw: Value,
}

/// What a group or a profile name refers to.
pub enum Target<'a> {
    Profile(&'a str),
    Group(&'a Group),
}

/// The keys `[global]` may hold (resticprofile's `config/global.go`).
pub const GLOBAL_KEYS: &[&str] = &[
    "ionice",
    "ionice-class",
    "ionice-level",
    "nice",
    "priority",
    "default-command",
    "initialize",
    "prevent-auto-repository-file",
    "restic-binary",
    "restic-version",
    "restic-arguments-filter",
    "restic-lock-retry-after",
    "restic-stale-lock-age",
    "shell",
    "min-memory",
    "scheduler",
    "schedule-defaults",
    "log",
    "command-output",
    "legacy-arguments",
    "systemd-unit-template",
    "systemd-timer-template",
    "send-timeout",
    "ca-certificates",
    "prevent-sleep",
    "group-continue-on-error",
];

impl Config {
    /// Reads and normalizes a file. Errors are one line naming the file.
    pub fn load(path: &Path) -> anyhow::Result<Config> {
        let path = absolute(path);
        let shown = path.display().to_string();
        let text = read_bounded(&path).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
        let dir = path.parent().unwrap_or(Path::new("/"));
        let text = crate::resolve::file_templates(&text, dir);
        let root = parse(&path, &text).map_err(|e| {
            // A parse error next to a template cairn left alone is most likely its doing.
            let hint = if text.contains("{{") {
                " (resticprofile templates other than .Profile.Name, .ConfigDir, .Env.NAME, … are not supported by cairn)"
            } else {
                ""
            };
            anyhow::anyhow!("{shown}: {e}{hint}")
        })?;
        let root = includes(&path, dir, root)?;
        Config::from_value(path, root).map_err(|e| anyhow::anyhow!("{shown}: {e}"))
    }

    fn from_value(path: PathBuf, root: Value) -> Result<Config, String> {
        let Value::Object(mut root) = root else {
            return Err("the configuration is not a table of profiles".into());
        };
        root.remove("$schema");
        let version = match root.remove("version") {
            None => 1,
            Some(v) => match v.as_str().map(str::trim) {
                Some(s) => s
                    .parse::<f64>()
                    .map_err(|_| format!("version {s:?} is not 1 or 2"))?
                    as u32,
                None => v.as_f64().ok_or("version must be 1 or 2")? as u32,
            },
        };
        if !(1..=2).contains(&version) {
            return Err(format!("version {version} is not supported (1 or 2)"));
        }
        if version == 2 && root.contains_key("schedules") {
            return Err("key \"schedules\" is not supported by cairn".into());
        }
        let global = match root.remove("global") {
            None => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err("global must be a table".into()),
        };
        for k in global.keys() {
            if !GLOBAL_KEYS.contains(&k.as_str()) {
                return Err(format!("global: unknown key {k:?}"));
            }
        }
        let groups = parse_groups(root.remove("groups"))?;
        let (profiles, mixins) = if version == 1 {
            (root, Map::new())
        } else {
            let profiles = match root.remove("profiles") {
                None => Map::new(),
                Some(Value::Object(m)) => m,
                Some(_) => return Err("profiles must be a table".into()),
            };
            let mixins = match root.remove("mixins") {
                None => Map::new(),
                Some(Value::Object(m)) => m,
                Some(_) => return Err("mixins must be a table".into()),
            };
            if let Some(k) = root.keys().next() {
                return Err(format!(
                    "unknown key {k:?} (version 2 keeps profiles under \"profiles\")"
                ));
            }
            (profiles, mixins)
        };
        // An empty YAML table (`name:` and nothing under it) is null.
        let profiles: Map<String, Value> = profiles
            .into_iter()
            .map(|(k, v)| {
                (
                    k,
                    if v.is_null() {
                        Value::Object(Map::new())
                    } else {
                        v
                    },
                )
            })
            .collect();
        for (name, p) in &profiles {
            if !p.is_object() {
                return Err(format!(
                    "{name:?} is not a profile (expected a table of settings)"
                ));
            }
        }
        for g in &groups {
            if profiles.contains_key(&g.name) {
                return Err(format!("{:?} is both a profile and a group", g.name));
            }
            for p in &g.profiles {
                if !profiles.contains_key(p) {
                    return Err(format!("group {:?}: no profile named {p:?}", g.name));
                }
            }
        }
        Ok(Config {
            path,
            version,
            global,
            profiles,
            groups,
            mixins,
        })
    }

    /// The directory relative paths of the file resolve against.
    pub fn dir(&self) -> PathBuf {
        self.path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"))
    }

    /// A profile or a group by name; an unknown name lists the known ones.
    pub fn target(&self, name: &str) -> anyhow::Result<Target<'_>> {
        if let Some((k, _)) = self.profiles.iter().find(|(k, _)| *k == name) {
            return Ok(Target::Profile(k));
        }
        if let Some(g) = self.groups.iter().find(|g| g.name == name) {
            return Ok(Target::Group(g));
        }
        Err(self.unknown_profile(name))
    }

    fn unknown_profile(&self, name: &str) -> anyhow::Error {
        let names: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
        let groups: Vec<&str> = self.groups.iter().map(|g| g.name.as_str()).collect();
        anyhow::anyhow!(
            "{}: no profile or group named {name:?} (profiles: {}; groups: {})",
            self.path.display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            },
            if groups.is_empty() {
                "none".to_string()
            } else {
                groups.join(", ")
            },
        )
    }

    /// A profile with its mixins and its parents (`inherit`, any depth) merged in, as
    /// resticprofile merges them: tables merge key by key, values of the child replace the
    /// parent's; lists merge by index in version 1 and are replaced (or extended by `key...`,
    /// `...key`) in version 2.
    pub fn profile(&self, name: &str) -> anyhow::Result<Map<String, Value>> {
        let file = self.path.display();
        let mut chain: Vec<&str> = Vec::new();
        let mut current = name;
        loop {
            if chain.contains(&current) {
                chain.push(current);
                anyhow::bail!(
                    "{file}: profile {name:?}: inheritance loop {}",
                    chain.join(" -> ")
                );
            }
            let Some(p) = self.profiles.get(current) else {
                if chain.is_empty() {
                    return Err(self.unknown_profile(name));
                }
                anyhow::bail!(
                    "{file}: profile {:?}: inherit: no profile named {current:?}",
                    chain[chain.len() - 1]
                );
            };
            chain.push(current);
            match p.get("inherit") {
                None | Some(Value::Null) => break,
                Some(Value::String(s)) if s.trim().is_empty() => break,
                Some(Value::String(s)) => current = s.trim(),
                Some(_) => {
                    anyhow::bail!("{file}: profile {current:?}: inherit must be a profile name")
                }
            }
        }
        let mut merged = Map::new();
        for n in chain.iter().rev() {
            let Some(Value::Object(own)) = self.profiles.get(*n) else {
                continue;
            };
            let mut own = own.clone();
            own.remove("inherit");
            if self.version >= 2 {
                merge::apply_mixins(&mut own, &self.mixins)
                    .map_err(|e| anyhow::anyhow!("{file}: profile {n:?}: {e}"))?;
            }
            merge::merge_into(&mut merged, own, self.version);
        }
        Ok(merged)
    }

    /// `global.initialize`, `global.group-continue-on-error` and friends as booleans.
    pub fn global_bool(&self, key: &str) -> bool {
        self.global.get(key).is_some_and(truthy)
    }
}

/// resticprofile reads booleans loosely ("true", 1): so does cairn.
pub fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(
            s.trim().to_ascii_lowercase().as_str(),
            "true" | "1" | "yes" | "on"
        ),
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        _ => false,
    }
}

/// At most this many files are included: a pattern matching a whole directory tree by
/// mistake is refused rather than read.
const MAX_INCLUDES: usize = 256;

/// resticprofile's `includes`: each entry a file or a glob pattern (matches in alphabetical
/// order), relative to the main file's directory; each file read, templated and parsed by its
/// own extension, then merged over what came before (tables merge key by key, anything else —
/// lists too — is replaced). Included files' own `includes` are ignored, and relative paths
/// in them stay relative to the main file, as in resticprofile. A file that sets another
/// `version` than the main file is refused.
fn includes(main: &Path, dir: &Path, root: Value) -> anyhow::Result<Value> {
    let Value::Object(mut root) = root else {
        return Ok(root);
    };
    let patterns = match root.remove("includes") {
        None | Some(Value::Null) => return Ok(Value::Object(root)),
        Some(Value::String(s)) => vec![s],
        Some(Value::Array(a)) => a
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(anyhow::anyhow!(
                    "{}: includes must be file names or glob patterns",
                    main.display()
                )),
            })
            .collect::<anyhow::Result<_>>()?,
        Some(_) => anyhow::bail!(
            "{}: includes must be file names or glob patterns",
            main.display()
        ),
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for p in &patterns {
        let full = dir.join(p);
        if full.is_file() {
            files.push(full);
        } else if crate::resolve::glob::has_meta(p) {
            files.extend(
                crate::resolve::glob::expand(p, dir)
                    .into_iter()
                    .map(|m| dir.join(m))
                    .filter(|m| m.is_file()),
            );
        }
        // Neither a file nor a pattern with matches: nothing, as in resticprofile.
    }
    files.retain(|f| f != main);
    if files.len() > MAX_INCLUDES {
        anyhow::bail!(
            "{}: includes select {} files (at most {MAX_INCLUDES})",
            main.display(),
            files.len()
        );
    }
    let version = |m: &Map<String, Value>| m.get("version").map(|v| v.to_string().replace('"', ""));
    let main_version = version(&root);
    for f in files {
        let shown = f.display().to_string();
        let text = read_bounded(&f).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?;
        let text = crate::resolve::file_templates(&text, dir);
        let Value::Object(mut inc) =
            parse(&f, &text).map_err(|e| anyhow::anyhow!("{shown}: {e}"))?
        else {
            anyhow::bail!("{shown}: the included file is not a table of settings");
        };
        inc.remove("includes");
        if let Some(v) = version(&inc) {
            if Some(&v) != main_version.as_ref() && !(main_version.is_none() && v == "1") {
                anyhow::bail!(
                    "{shown}: version {v} differs from {}'s: all included files must use the same version",
                    main.display()
                );
            }
        }
        merge_over(&mut root, inc);
    }
    Ok(Value::Object(root))
}

/// `over` merged into `base`: tables key by key, every other value replaced.
fn merge_over(base: &mut Map<String, Value>, over: Map<String, Value>) {
    for (k, v) in over {
        match (base.get_mut(&k), v) {
            (Some(Value::Object(b)), Value::Object(o)) => merge_over(b, o),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn parse_groups(v: Option<Value>) -> Result<Vec<Group>, String> {
    let Some(v) = v else { return Ok(Vec::new()) };
    let Value::Object(m) = v else {
        return Err("groups must be a table".into());
    };
    let mut out = Vec::new();
    for (name, g) in m {
        let names_of = |v: &Value| -> Result<Vec<String>, String> {
            match v {
                Value::String(s) => Ok(vec![s.clone()]),
                Value::Array(a) => a
                    .iter()
                    .map(|x| {
                        x.as_str()
                            .map(str::to_string)
                            .ok_or_else(|| format!("group {name:?}: profile names must be strings"))
                    })
                    .collect(),
                _ => Err(format!("group {name:?}: expected a list of profile names")),
            }
        };
        let group = match &g {
            Value::Object(o) => {
                for k in o.keys() {
                    if !["description", "profiles", "continue-on-error", "schedules"]
                        .contains(&k.as_str())
                    {
                        return Err(format!("group {name:?}: unknown key {k:?}"));
                    }
                }
                Group {
                    name: name.clone(),
                    description: o
                        .get("description")
                        .and_then(Value::as_str)
                        .map(str::to_string),
                    profiles: names_of(o.get("profiles").unwrap_or(&Value::Array(Vec::new())))?,
                    continue_on_error: o.get("continue-on-error").and_then(|v| match v {
                        Value::String(s) if s == "auto" => None,
                        v => Some(truthy(v)),
                    }),
                    raw: g.clone(),
                }
            }
            other => Group {
                name: name.clone(),
                description: None,
                profiles: names_of(other)?,
                continue_on_error: None,
                raw: g.clone(),
            },
        };
        out.push(group);
    }
    Ok(out)
}

fn read_bounded(path: &Path) -> Result<String, String> {
    use std::io::Read;
    let f = std::fs::File::open(path).map_err(|e| format!("cannot open: {e}"))?;
    let mut text = String::new();
    f.take(MAX_CONFIG_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read: {e}"))?;
    if text.len() as u64 > MAX_CONFIG_BYTES {
        return Err(format!("larger than {MAX_CONFIG_BYTES} bytes"));
    }
    Ok(text)
}

/// Parses by extension, as resticprofile does (`.conf` is TOML).
fn parse(path: &Path, text: &str) -> Result<Value, String> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "toml" | "conf" => toml::from_str::<Value>(text).map_err(|e| one_line(&e.to_string())),
        "yaml" | "yml" => {
            serde_norway::from_str::<Value>(text).map_err(|e| one_line(&e.to_string()))
        }
        "json" => serde_json::from_str::<Value>(text).map_err(|e| one_line(&e.to_string())),
        "hcl" => {
            Err("HCL configurations are not supported by cairn (use TOML, YAML or JSON)".into())
        }
        _ => Err("unknown format (expected .toml, .conf, .yaml, .yml or .json)".into()),
    }
}

/// Parser messages span lines (TOML shows the offending line); one line is the rule.
fn one_line(s: &str) -> String {
    s.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.chars().all(|c| c == '|' || c == '^' || c == ' '))
        .collect::<Vec<_>>()
        .join(" ")
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        return p.to_path_buf();
    }
    std::env::current_dir()
        .map(|d| d.join(p))
        .unwrap_or_else(|_| p.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(name: &str, text: &str) -> anyhow::Result<Config> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        Config::load(&p)
    }

    #[test]
    fn version_1_toml_with_inherit_merges_tables_and_lists_by_index() {
        let c = load(
            "profiles.toml",
            r#"
version = "1"
[groups]
all = ["base", "child"]
[base]
repository = "local:/r"
[base.backup]
source = ["/a", "/b"]
exclude = ["x"]
[child]
inherit = "base"
[child.backup]
source = ["/c"]
"#,
        )
        .unwrap();
        assert_eq!(c.version, 1);
        assert_eq!(c.groups[0].profiles, vec!["base", "child"]);
        let p = c.profile("child").unwrap();
        assert_eq!(p["repository"], "local:/r");
        assert_eq!(p["backup"]["source"], serde_json::json!(["/c", "/b"]));
        assert_eq!(p["backup"]["exclude"], serde_json::json!(["x"]));
        assert!(p.get("inherit").is_none());
    }

    #[test]
    fn version_2_yaml_replaces_lists_appends_and_applies_mixins() {
        let c = load(
            "profiles.yaml",
            r#"
version: 2
mixins:
  repo:
    default-vars: { NAME: main }
    repository: "local:/backup/$NAME"
  hidden:
    exclude...: ["*~"]
groups:
  g:
    profiles: [a, b]
    continue-on-error: true
profiles:
  a:
    use: repo
    backup:
      exclude: [".*"]
      source: [/x, /y]
  b:
    inherit: a
    use:
      - name: repo
        NAME: other
    backup:
      use: hidden
      source: [/z]
"#,
        )
        .unwrap();
        assert_eq!(c.groups[0].continue_on_error, Some(true));
        let a = c.profile("a").unwrap();
        assert_eq!(a["repository"], "local:/backup/main");
        let b = c.profile("b").unwrap();
        assert_eq!(b["repository"], "local:/backup/other");
        assert_eq!(b["backup"]["source"], serde_json::json!(["/z"]));
        assert_eq!(b["backup"]["exclude"], serde_json::json!([".*", "*~"]));
    }

    #[test]
    fn a_single_use_table_names_one_mixin_with_its_variables() {
        let c = load(
            "p.toml",
            "version = 2\n[mixins.m]\nrepository = \"/r/$WHAT\"\n[mixins.m.default-vars]\nWHAT = \"x\"\n[profiles.p]\nuse = { name = \"m\", WHAT = \"y\" }\n",
        )
        .unwrap();
        assert_eq!(c.profile("p").unwrap()["repository"], "/r/y");
    }

    #[test]
    fn inheritance_errors_name_the_profiles() {
        let c = load(
            "p.json",
            r#"{"a": {"inherit": "b"}, "b": {"inherit": "a"}, "c": {"inherit": "nope"}}"#,
        )
        .unwrap();
        let e = c.profile("a").unwrap_err().to_string();
        assert!(e.contains("inheritance loop a -> b -> a"), "{e}");
        let e = c.profile("c").unwrap_err().to_string();
        assert!(
            e.contains("profile \"c\": inherit: no profile named \"nope\""),
            "{e}"
        );
        let e = c.profile("zz").unwrap_err().to_string();
        assert!(e.contains("profiles: a, b, c"), "{e}");
    }

    #[test]
    fn bad_files_are_one_line_errors_naming_the_file() {
        let e = load("p.toml", "[a]\nx = \n").unwrap_err().to_string();
        assert!(e.contains("p.toml: ") && !e.contains('\n'), "{e}");
        let e = load("p.toml", "[global]\nbogus = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("global: unknown key \"bogus\""), "{e}");
        let e = load("p.toml", "[groups]\ng = [\"missing\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no profile named \"missing\""), "{e}");
    }

    /// resticprofile's documented merge: the main file, then each include in order (a
    /// pattern's matches alphabetically); tables merge, lists and values are replaced.
    #[test]
    fn includes_merge_in_order_over_the_main_file() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(
            d.join("profiles.yaml"),
            "version: \"1\"\nincludes:\n  - first.yaml\n  - conf.d/*.toml\n  - missing.yaml\ndefault:\n  backup:\n    source:\n      - /usr\n",
        )
        .unwrap();
        std::fs::write(
            d.join("first.yaml"),
            "version: \"1\"\nincludes: [nested.yaml]\ndefault:\n  initialize: false\n  backup:\n    source:\n      - /etc\n      - /opt\n",
        )
        .unwrap();
        std::fs::create_dir(d.join("conf.d")).unwrap();
        // Alphabetical: b.toml after a.toml, whatever the order they were written in.
        std::fs::write(d.join("conf.d/b.toml"), "[default]\ninitialize = true\n").unwrap();
        std::fs::write(
            d.join("conf.d/a.toml"),
            "[default]\ninitialize = 7\n[default.backup]\nexclude = [\".*\"]\n[other]\nrepository = \"r\"\n",
        )
        .unwrap();
        std::fs::write(d.join("nested.yaml"), "never: {}\n").unwrap();
        let c = Config::load(&d.join("profiles.yaml")).unwrap();
        assert_eq!(
            Value::Object(c.profiles.clone()),
            serde_json::json!({
                "default": {"initialize": true, "backup": {"source": ["/etc", "/opt"], "exclude": [".*"]}},
                "other": {"repository": "r"},
            })
        );

        std::fs::write(d.join("first.yaml"), "version: \"2\"\n").unwrap();
        let e = Config::load(&d.join("profiles.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("first.yaml: version 2 differs"), "{e}");
    }
}

use super::*;
use serde_json::json;

/// A small stand-in for the CLI's flag definition.
fn spec() -> FlagSpec {
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
    FlagSpec {
        global: set(&[
            "repo",
            "password-file",
            "password-command",
            "repository-file",
            "key-hint",
            "verbose",
            "json",
            "cache-dir",
            "insecure-tls",
            "no-cache",
        ]),
        commands: [
            (
                "backup",
                set(&[
                    "tag",
                    "host",
                    "exclude",
                    "exclude-file",
                    "one-file-system",
                    "dry-run",
                ]),
            ),
            (
                "forget",
                set(&[
                    "keep-last",
                    "keep-daily",
                    "prune",
                    "tag",
                    "host",
                    "path",
                    "group-by",
                ]),
            ),
            ("check", set(&["read-data"])),
            (
                "init",
                set(&["copy-chunker-params", "from-repo", "from-password-file"]),
            ),
            (
                "copy",
                set(&[
                    "from-repo",
                    "from-password-file",
                    "from-password-command",
                    "from-key-hint",
                    "from-repository-file",
                    "tag",
                ]),
            ),
            ("snapshots", set(&["tag", "host"])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
    }
}

fn config(dir: &Path, name: &str, text: &str) -> Config {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    Config::load(&p).unwrap()
}

fn argv(s: &Step) -> Vec<String> {
    s.argv()
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn backup_plan_has_retention_paths_tags_and_relative_files_resolved() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().display().to_string();
    let c = config(
        dir.path(),
        "profiles.toml",
        r#"
[nightly]
repository = "local:/repo"
password-file = "key.txt"
initialize = true
insecure-tls = true
[nightly.backup]
source = ["/data", "/etc"]
tag = ["srv", "db"]
exclude-file = "excludes"
one-file-system = true
dry-run = false
check-after = true
[nightly.retention]
after-backup = true
keep-last = 3
keep-daily = 0
prune = true
tag = true
host = true
"#,
    );
    let p = profile(&c, "nightly", &spec()).unwrap();
    let plan = p.plan("backup", &spec(), &Overrides::default()).unwrap();
    let kinds: Vec<_> = plan.steps.iter().map(|s| s.label.as_str()).collect();
    assert_eq!(kinds, ["init", "backup", "retention", "check"]);
    let backup = argv(&plan.steps[1]);
    assert_eq!(
        backup,
        [
            "backup".to_string(),
            "--repo=local:/repo".into(),
            format!("--password-file={d}/key.txt"),
            "--insecure-tls".into(),
            "--tag=srv".into(),
            "--tag=db".into(),
            format!("--exclude-file={d}/excludes"),
            "--one-file-system".into(),
            "--".into(),
            "/data".into(),
            "/etc".into(),
        ]
    );
    let forget = argv(&plan.steps[2]);
    assert!(forget.contains(&"--keep-last=3".to_string()), "{forget:?}");
    assert!(
        !forget.iter().any(|a| a.starts_with("--keep-daily")),
        "0 is omitted: {forget:?}"
    );
    assert!(forget.contains(&"--prune".to_string()));
    assert!(forget.contains(&"--tag=srv,db".to_string()), "{forget:?}");
    assert!(
        forget.contains(&format!("--host={}", hostname())),
        "{forget:?}"
    );
    assert!(
        forget.contains(&"--path=/data".to_string()) && forget.contains(&"--path=/etc".to_string())
    );
}

#[test]
fn unknown_keys_are_refused_with_profile_section_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        "p.yaml",
        "a:\n  repository: /r\n  backup:\n    exlcude: x\n",
    );
    let e = profile(&c, "a", &spec()).unwrap_err().to_string();
    assert!(
        e.contains("p.yaml: profile \"a\": backup: unknown key \"exlcude\""),
        "{e}"
    );
    let c = config(dir.path(), "q.yaml", "a:\n  repositry: /r\n");
    let e = profile(&c, "a", &spec()).unwrap_err().to_string();
    assert!(e.contains("unknown key \"repositry\""), "{e}");
    let c = config(dir.path(), "r.yaml", "a:\n  bakup:\n    source: /x\n");
    let e = profile(&c, "a", &spec()).unwrap_err().to_string();
    assert!(e.contains("unknown section \"bakup\""), "{e}");
}

#[test]
fn profile_level_flags_reach_only_commands_that_take_them() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        "p.json",
        r#"{"a": {"repository": "/r", "tag": ["t"], "host": "h"}}"#,
    );
    let p = profile(&c, "a", &spec()).unwrap();
    let check = argv(
        &p.plan("check", &spec(), &Overrides::default())
            .unwrap()
            .steps[0],
    );
    assert_eq!(check, ["check", "--repo=/r"]);
    let snaps = argv(
        &p.plan("snapshots", &spec(), &Overrides::default())
            .unwrap()
            .steps[0],
    );
    assert_eq!(snaps, ["snapshots", "--repo=/r", "--tag=t", "--host=h"]);
}

#[test]
fn command_line_flags_replace_the_profile_flags() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(dir.path(), "p.toml", "[a]\nrepository = \"/r\"\n[a.backup]\nsource = \"/s\"\ntag = [\"x\"]\n[a.retention]\nafter-backup = true\nkeep-last = 1\n");
    let p = profile(&c, "a", &spec()).unwrap();
    let o = Overrides {
        global: vec![("repo".into(), vec![Some("/other".into())])],
        command: vec![("tag".into(), vec![Some("y".into())])],
        args: Some(vec!["/t".into()]),
        subcommand: vec![],
    };
    let plan = p.plan("backup", &spec(), &o).unwrap();
    assert_eq!(
        argv(&plan.steps[0]),
        ["backup", "--repo=/other", "--tag=y", "--", "/t"]
    );
    let forget = argv(&plan.steps[1]);
    assert!(
        forget.contains(&"--repo=/other".to_string()) && !forget.contains(&"--tag=y".to_string()),
        "{forget:?}"
    );
}

#[test]
fn copy_to_a_second_repository_maps_as_resticprofile_does() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        "p.yaml",
        "a:\n  repository: /src\n  password-file: /k1\n  copy:\n    initialize: true\n    repository: /dst\n    password-file: /k2\n    snapshot: latest\n",
    );
    let p = profile(&c, "a", &spec()).unwrap();
    let plan = p.plan("copy", &spec(), &Overrides::default()).unwrap();
    assert_eq!(
        argv(&plan.steps[0]),
        [
            "init",
            "--copy-chunker-params",
            "--from-repo=/src",
            "--from-password-file=/k1",
            "--repo=/dst",
            "--password-file=/k2"
        ]
    );
    assert_eq!(
        argv(&plan.steps[1]),
        [
            "copy",
            "--from-repo=/src",
            "--from-password-file=/k1",
            "--repo=/dst",
            "--password-file=/k2",
            "--",
            "latest"
        ]
    );
}

#[test]
fn version_2_defaults_retention_after_backup_and_host() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        "p.yaml",
        "version: 2\nprofiles:\n  a:\n    repository: /r\n    backup:\n      source: /s\n    retention:\n      keep-last: 2\n",
    );
    let p = profile(&c, "a", &spec()).unwrap();
    let plan = p.plan("backup", &spec(), &Overrides::default()).unwrap();
    assert_eq!(plan.steps.len(), 2);
    assert!(argv(&plan.steps[1]).contains(&format!("--host={}", hostname())));
    let _ = json!(null);
}

#[test]
fn empty_yaml_keys_are_absent_and_empty_sections_declared() {
    let dir = tempfile::tempdir().unwrap();
    let c = config(
        dir.path(),
        "p.yaml",
        "a:\n  repository: /r\n  tag:\n  check:\nb:\n",
    );
    let p = profile(&c, "a", &spec()).unwrap();
    assert_eq!(p.sections(), ["check"]);
    let snaps = argv(
        &p.plan("snapshots", &spec(), &Overrides::default())
            .unwrap()
            .steps[0],
    );
    assert_eq!(snaps, ["snapshots", "--repo=/r"]);
    assert!(profile(&c, "b", &spec()).unwrap().sections().is_empty());
}

//! Profiles: resticprofile configuration files run by the real `cairn` binary, the results
//! checked with restic 0.14. The nightly routine (init if needed → backup → forget with
//! prune → check), inheritance, groups, relative paths, hooks and their environment, each
//! failure path, configuration errors and command-line overrides.

mod common;

use common::{cairn_bin, restic_available, run_cmd, Run, TempDir, Tool};
use std::ffi::OsStr;
use std::path::Path;

const PW: &str = "profiles-test";

/// `cairn ARGS` in `cwd`, with HOME and the cache inside the test's directory (no user's
/// configuration or cache is read).
fn cairn(t: &TempDir, cwd: &Path, args: &[&str]) -> Run {
    let home = t.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    run_cmd(
        cairn_bin().as_os_str(),
        &args,
        &[
            ("HOME", home.as_os_str()),
            ("XDG_CONFIG_HOME", home.join(".config").as_os_str()),
            ("XDG_CACHE_HOME", home.join(".cache").as_os_str()),
            ("CAIRN_TEST_KDF", OsStr::new("fast")),
        ],
        Some(cwd),
    )
}

/// A test directory with a password file and a small source tree.
fn setup(prefix: &str) -> TempDir {
    let t = TempDir::new(prefix);
    std::fs::write(t.join("password.txt"), format!("{PW}\n")).unwrap();
    let src = t.join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    std::fs::write(src.join("a.txt"), "alpha").unwrap();
    std::fs::write(src.join("sub/b.txt"), "beta").unwrap();
    std::fs::write(src.join("junk.tmp"), "excluded").unwrap();
    t
}

fn restic(repo: &Path) -> Option<Tool> {
    if !restic_available() {
        eprintln!("NOTE: restic is not installed: results are checked with cairn only");
        return None;
    }
    Some(Tool::restic(repo, PW))
}

fn snapshots(repo: &Path) -> Vec<serde_json::Value> {
    match restic(repo) {
        Some(r) => r.snapshots_json(),
        None => Tool::cairn(repo, PW).snapshots_json(),
    }
}

fn lines(p: &Path) -> Vec<String> {
    std::fs::read_to_string(p)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The nightly routine of resticprofile's documented example, in TOML and in YAML.
fn nightly_routine(ext: &str, text: &str) {
    let t = setup("cairn-prof-nightly");
    let repo = t.join("repo");
    let src = t.join("src");
    let text = text
        .replace("@REPO@", &repo.display().to_string())
        .replace("@SRC@", &src.display().to_string());
    let config = t.join(format!("profiles.{ext}"));
    std::fs::write(&config, text).unwrap();
    let config = config.display().to_string();
    for round in 0..3 {
        std::fs::write(src.join("a.txt"), format!("alpha {round}")).unwrap();
        let r = cairn(
            &t,
            t.path(),
            &["--config", &config, "-P", "nightly", "backup"],
        )
        .ok();
        let err = r.stderr_str();
        assert!(
            err.contains("profile 'nightly': finished 'retention'"),
            "{err}"
        );
    }
    cairn(
        &t,
        t.path(),
        &["--config", &config, "-P", "nightly", "check"],
    )
    .ok();

    // keep-last 2 and prune, as restic sees them.
    let snaps = snapshots(&repo);
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    for s in &snaps {
        assert_eq!(s["tags"], serde_json::json!(["nightly"]), "{s}");
        assert_eq!(
            s["paths"],
            serde_json::json!([src.display().to_string()]),
            "{s}"
        );
    }
    if let Some(r) = restic(&repo) {
        r.run(&["check", "--read-data"]).ok();
        let ls = r.run(&["ls", "latest"]).ok().stdout_str();
        assert!(ls.contains("a.txt") && !ls.contains("junk.tmp"), "{ls}");
        let out = r
            .run(&["dump", "latest", &src.join("a.txt").display().to_string()])
            .ok();
        assert_eq!(out.stdout_str(), "alpha 2");
    }
}

#[test]
fn nightly_routine_from_a_resticprofile_toml_file() {
    nightly_routine(
        "toml",
        r#"
version = "1"

[global]
  default-command = "snapshots"

[nightly]
  repository = "local:@REPO@"
  password-file = "password.txt"
  initialize = true

  [nightly.backup]
    verbose = true
    source = [ "@SRC@" ]
    exclude = [ "*.tmp" ]
    tag = [ "nightly" ]
    one-file-system = true

  [nightly.retention]
    after-backup = true
    keep-last = 2
    keep-daily = 0
    prune = true
    tag = true
    host = true

  [nightly.check]
    read-data-subset = "50%"
"#,
    );
}

#[test]
fn nightly_routine_from_a_resticprofile_yaml_file() {
    nightly_routine(
        "yaml",
        r#"
version: "1"

nightly:
  repository: "local:@REPO@"
  password-file: "password.txt"
  initialize: true

  backup:
    source:
      - "@SRC@"
    exclude:
      - "*.tmp"
    tag:
      - nightly

  retention:
    after-backup: true
    keep-last: 2
    prune: true
"#,
    );
}

#[test]
fn inherited_profiles_run_as_a_group_and_each_is_reported() {
    let t = setup("cairn-prof-group");
    let (r1, r2) = (t.join("repo1"), t.join("repo2"));
    std::fs::create_dir_all(t.join("other")).unwrap();
    std::fs::write(t.join("other/c.txt"), "gamma").unwrap();
    let config = t.join("profiles.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
version: "1"
groups:
  all: [first, second]
base:
  password-file: password.txt
  initialize: true
  backup:
    source: ["{src}"]
    tag: [base]
first:
  inherit: base
  repository: "{r1}"
second:
  inherit: first
  repository: "{r2}"
  backup:
    source: ["{other}"]
"#,
            src = t.join("src").display(),
            other = t.join("other").display(),
            r1 = r1.display(),
            r2 = r2.display()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let r = cairn(&t, t.path(), &["--config", &config, "-P", "all", "backup"]).ok();
    let err = r.stderr_str();
    assert!(
        err.contains("group 'all': profile 'first': backup succeeded"),
        "{err}"
    );
    assert!(
        err.contains("group 'all': profile 'second': backup succeeded"),
        "{err}"
    );
    let s1 = snapshots(&r1);
    let s2 = snapshots(&r2);
    assert_eq!(s1.len(), 1);
    assert_eq!(s2.len(), 1);
    assert_eq!(
        s1[0]["paths"],
        serde_json::json!([t.join("src").display().to_string()])
    );
    // Lists merge by index in version 1: the child's one source replaces the first.
    assert_eq!(
        s2[0]["paths"],
        serde_json::json!([t.join("other").display().to_string()])
    );
    assert_eq!(s2[0]["tags"], serde_json::json!(["base"]));

    // `profiles` lists both, and the group.
    let out = cairn(&t, t.path(), &["--config", &config, "profiles"])
        .ok()
        .stdout_str();
    assert!(
        out.contains("first")
            && out.contains("second")
            && out.contains("all")
            && out.contains("[first, second]"),
        "{out}"
    );
}

#[test]
fn relative_paths_resolve_as_resticprofile_does_from_any_directory() {
    let t = setup("cairn-prof-paths");
    let conf_dir = t.join("etc");
    std::fs::create_dir_all(&conf_dir).unwrap();
    std::fs::rename(t.join("password.txt"), conf_dir.join("key")).unwrap();
    std::fs::write(conf_dir.join("excludes"), "*.tmp\n").unwrap();
    let elsewhere = t.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    // Files the configuration names are relative to its directory; the repository and the
    // sources to base-dir, where glob patterns select what they match (a pattern matching
    // nothing, nothing).
    std::fs::write(
        conf_dir.join("profiles.conf"),
        format!(
            r#"
[default]
base-dir = "{base}"
repository = "local:repo"
password-file = "key"
initialize = true
[default.backup]
source = ["s?c", "nothing-*"]
exclude-file = "excludes"
"#,
            base = t.path().display()
        ),
    )
    .unwrap();
    // No -P: resticprofile's "default" profile.
    let config = conf_dir.join("profiles.conf").display().to_string();
    cairn(&t, &elsewhere, &["--config", &config, "backup"]).ok();
    let repo = t.join("repo");
    let snaps = snapshots(&repo);
    assert_eq!(
        snaps.len(),
        1,
        "the repository is under base-dir, not where cairn started"
    );
    assert_eq!(
        snaps[0]["paths"],
        serde_json::json!([t.join("src").display().to_string()])
    );
    assert!(!elsewhere.join("repo").exists());
    let ls = Tool::cairn(&repo, PW)
        .run(&["ls", "latest"])
        .ok()
        .stdout_str();
    assert!(
        !ls.contains("junk.tmp"),
        "exclude-file from the configuration's directory: {ls}"
    );

    // No command: the configuration's default-command.
    std::fs::write(
        conf_dir.join("profiles.conf"),
        std::fs::read_to_string(conf_dir.join("profiles.conf")).unwrap()
            + "[global]\ndefault-command = \"snapshots\"\n",
    )
    .unwrap();
    let r = cairn(&t, &elsewhere, &["--config", &config, "--json"]).ok();
    assert_eq!(r.json().as_array().map(Vec::len), Some(1));
    // Without a profile or a configuration, a command is still required.
    let r = cairn(&t, &elsewhere, &["-r", "/nonexistent"]);
    assert_eq!(r.code, Some(2), "{}", r.stderr_str());

    // The configuration found without --config: profiles.* in the current directory.
    let r = cairn(&t, &conf_dir, &["-P", "default", "snapshots", "--json"]).ok();
    assert_eq!(r.json().as_array().map(Vec::len), Some(1));
}

/// A profile whose hooks append `WHAT NAME COMMAND EXIT-CODE` to `log`.
fn hooks_profile(t: &TempDir, repo: &Path, sources: &[&Path], extra_profile: &str) -> String {
    let log = t.join("hooks.log");
    let hook = |what: &str| {
        format!(
            "'echo \"{what} $PROFILE_NAME $PROFILE_COMMAND ${{ERROR_EXIT_CODE:-}}\" >> {}'",
            log.display()
        )
    };
    let sources: Vec<String> = sources
        .iter()
        .map(|s| format!("\"{}\"", s.display()))
        .collect();
    let config = t.join("profiles.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[hooked]
repository = "{repo}"
password-file = "password.txt"
{extra_profile}
run-before = {pb}
run-after = {pa}
run-after-fail = {pf}
run-finally = {pz}
[hooked.backup]
source = [{sources}]
run-before = {sb}
run-after = {sa}
run-after-fail = {sf}
run-finally = {sz}
"#,
            repo = repo.display(),
            sources = sources.join(", "),
            pb = hook("profile-before"),
            pa = hook("profile-after"),
            pf = hook("profile-fail"),
            pz = hook("profile-finally"),
            sb = hook("backup-before"),
            sa = hook("backup-after"),
            sf = hook("backup-fail"),
            sz = hook("backup-finally"),
        ),
    )
    .unwrap();
    config.display().to_string()
}

#[test]
fn hooks_run_in_order_with_resticprofile_environment() {
    let t = setup("cairn-prof-hooks");
    let repo = t.join("repo");
    let config = hooks_profile(&t, &repo, &[&t.join("src")], "initialize = true");
    cairn(
        &t,
        t.path(),
        &["--config", &config, "-P", "hooked", "backup"],
    )
    .ok();
    assert_eq!(
        lines(&t.join("hooks.log")),
        [
            "profile-before hooked backup ",
            "backup-before hooked backup ",
            "backup-after hooked backup ",
            "profile-after hooked backup ",
            "backup-finally hooked backup ",
            "profile-finally hooked backup ",
        ]
    );
    assert_eq!(snapshots(&repo).len(), 1);
}

#[test]
fn a_missing_source_fails_with_code_3_and_runs_after_fail() {
    let t = setup("cairn-prof-missing");
    let repo = t.join("repo");
    let config = hooks_profile(
        &t,
        &repo,
        &[&t.join("src"), &t.join("no-such-dir")],
        "initialize = true",
    );
    cairn(
        &t,
        t.path(),
        &["--config", &config, "-P", "hooked", "backup"],
    )
    .expect_code(3);
    assert_eq!(
        lines(&t.join("hooks.log")),
        [
            "profile-before hooked backup ",
            "backup-before hooked backup ",
            "backup-fail hooked backup 3",
            "profile-fail hooked backup 3",
            "backup-finally hooked backup 3",
            "profile-finally hooked backup 3",
        ]
    );
}

#[test]
fn an_unreachable_repository_fails_with_code_10_and_runs_after_fail() {
    let t = setup("cairn-prof-norepo");
    let repo = t.join("does-not-exist");
    let config = hooks_profile(&t, &repo, &[&t.join("src")], "");
    let r = cairn(
        &t,
        t.path(),
        &["--config", &config, "-P", "hooked", "backup"],
    )
    .expect_code(10);
    assert!(r.stderr_str().contains("Fatal:"), "{}", r.stderr_str());
    let log = lines(&t.join("hooks.log"));
    assert!(
        log.contains(&"backup-fail hooked backup 10".to_string()),
        "{log:?}"
    );
    assert!(
        log.contains(&"profile-fail hooked backup 10".to_string()),
        "{log:?}"
    );
    assert!(!log.iter().any(|l| l.contains("after")), "{log:?}");
    assert!(!repo.exists());
}

#[test]
fn a_failing_run_before_runs_nothing_but_after_fail_and_finally() {
    let t = setup("cairn-prof-before");
    let repo = t.join("repo");
    let config = hooks_profile(&t, &repo, &[&t.join("src")], "initialize = true");
    // The section's run-before fails: the profile's already ran (and initialized), the
    // backup must not run.
    let text = std::fs::read_to_string(&config).unwrap();
    let text = text.replacen(
        "[hooked.backup]\n",
        "[hooked.backup]\nrun-before = \"exit 4\"\n",
        1,
    );
    let text = {
        // Drop the section's original run-before line (the one after our insertion).
        text.lines()
            .filter(|l| !(l.starts_with("run-before") && l.contains("backup-before")))
            .collect::<Vec<_>>()
            .join("\n")
    };
    std::fs::write(&config, text).unwrap();
    let r = cairn(
        &t,
        t.path(),
        &["--config", &config, "-P", "hooked", "backup"],
    )
    .expect_code(1);
    let err = r.stderr_str();
    assert!(err.contains("run-before"), "{err}");
    assert_eq!(
        lines(&t.join("hooks.log")),
        [
            "profile-before hooked backup ",
            "backup-fail hooked backup 1",
            "profile-fail hooked backup 1",
            "backup-finally hooked backup 1",
            "profile-finally hooked backup 1",
        ]
    );
    assert!(snapshots(&repo).is_empty(), "no backup ran");
}

/// A configuration error is one line naming the file and what is wrong; exit 1; nothing runs.
fn config_error(text: &str, profile: &str, expect: &[&str]) {
    let t = setup("cairn-prof-error");
    let repo = t.join("repo");
    let config = t.join("profiles.toml");
    let marker = t.join("hook-ran");
    std::fs::write(
        &config,
        text.replace("@REPO@", &repo.display().to_string())
            .replace("@MARK@", &marker.display().to_string()),
    )
    .unwrap();
    let config = config.display().to_string();
    let r = cairn(
        &t,
        t.path(),
        &["--config", &config, "-P", profile, "backup"],
    )
    .expect_code(1);
    let err = r.stderr_str();
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains(&config), "names the file: {err}");
    for e in expect {
        assert!(err.contains(e), "{e:?} in {err}");
    }
    assert!(!repo.exists(), "no repository was created");
    assert!(!marker.exists(), "no hook ran");
}

#[test]
fn configuration_errors_are_one_line_and_nothing_runs() {
    let good = "repository = \"@REPO@\"\npassword-file = \"password.txt\"\ninitialize = true\nrun-before = \"touch @MARK@\"\n";
    config_error(
        &format!("[p]\n{good}[p.backup]\nsource = [\"/tmp\"]\nexclud = [\"x\"]\n"),
        "p",
        &["profile \"p\"", "backup", "unknown key \"exclud\""],
    );
    config_error(
        &format!("[p]\n{good}inherit = \"nope\"\n"),
        "p",
        &["inherit", "no profile named \"nope\""],
    );
    config_error(
        &format!("[p]\n{good}"),
        "q",
        &["no profile or group named \"q\"", "profiles: p"],
    );
    config_error(
        &format!("[p]\n{good}\n[q]\n{good}[q.backup]\nsource = \"/tmp\"\none-file-sytem = true\n[groups]\ng = [\"p\", \"q\"]\n"),
        "g",
        &["profile \"q\"", "unknown key \"one-file-sytem\""],
    );
    config_error("[p\nrepository = 1\n", "p", &["profiles.toml: "]);
}

#[test]
fn command_line_flags_override_the_profile() {
    let t = setup("cairn-prof-override");
    let repo = t.join("repo");
    let config = t.join("profiles.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "version": "1",
            "p": {
                "repository": repo.display().to_string(),
                "password-file": "password.txt",
                "initialize": true,
                "env": {"RESTIC_HOST_UNUSED": "x", "AWS_SECRET_ACCESS_KEY": "s3cr3t"},
                "backup": {"source": [t.join("src").display().to_string()], "tag": ["from-profile"], "host": "profile-host"}
            }
        })
        .to_string(),
    )
    .unwrap();
    let config = config.display().to_string();
    cairn(
        &t,
        t.path(),
        &[
            "--config",
            &config,
            "-P",
            "p",
            "backup",
            "--tag",
            "typed",
            "--host=typed-host",
        ],
    )
    .ok();
    let snaps = snapshots(&repo);
    assert_eq!(snaps.len(), 1);
    assert_eq!(snaps[0]["tags"], serde_json::json!(["typed"]));
    assert_eq!(snaps[0]["hostname"], "typed-host");

    // Commands with a nested command or an action run with the profile too.
    cairn(
        &t,
        t.path(),
        &["--config", &config, "-P", "p", "repair", "index"],
    )
    .ok();
    let keys = cairn(
        &t,
        t.path(),
        &["--config", &config, "-P", "p", "key", "list", "--json"],
    )
    .ok();
    assert_eq!(keys.json().as_array().map(Vec::len), Some(1));

    // resticprofile's NAME.COMMAND form.
    cairn(&t, t.path(), &["--config", &config, "p.backup"]).ok();
    assert_eq!(snapshots(&repo).len(), 2);

    // CAIRN_CONFIG / CAIRN_PROFILE name them too; `show` prints the resolved command lines
    // with absolute paths and secrets masked.
    let home = t.join("home");
    let out = run_cmd(
        cairn_bin().as_os_str(),
        &[OsStr::new("show")],
        &[
            ("CAIRN_CONFIG", OsStr::new(&config)),
            ("CAIRN_PROFILE", OsStr::new("p")),
            ("HOME", home.as_os_str()),
        ],
        Some(t.path()),
    )
    .ok()
    .stdout_str();
    assert!(
        out.contains(&format!(
            "--password-file={}",
            t.join("password.txt").display()
        )),
        "{out}"
    );
    assert!(out.contains("--tag=from-profile"), "{out}");
    assert!(
        out.contains("AWS_SECRET_ACCESS_KEY=***") && !out.contains("s3cr3t"),
        "{out}"
    );
}

#[test]
fn copy_section_copies_to_its_own_repository_created_with_the_same_chunker() {
    let t = setup("cairn-prof-copy");
    let (src_repo, dst_repo) = (t.join("primary"), t.join("offsite"));
    std::fs::write(t.join("other-key"), format!("{PW}\n")).unwrap();
    let config = t.join("profiles.yaml");
    std::fs::write(
        &config,
        format!(
            r#"
version: "1"
default:
  repository: "{src_repo}"
  password-file: password.txt
  initialize: true
  backup:
    source: ["{src}"]
  copy:
    initialize: true
    repository: "{dst_repo}"
    password-file: other-key
"#,
            src_repo = src_repo.display(),
            dst_repo = dst_repo.display(),
            src = t.join("src").display()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    cairn(&t, t.path(), &["--config", &config, "backup"]).ok();
    cairn(&t, t.path(), &["--config", &config, "copy"]).ok();
    let copied = snapshots(&dst_repo);
    assert_eq!(copied.len(), 1);
    assert_eq!(copied[0]["paths"], snapshots(&src_repo)[0]["paths"]);
    if let Some(r) = restic(&dst_repo) {
        r.run(&["check", "--read-data"]).ok();
    }
    // `initialize-copy-chunker-params` defaults to true: the target was created with the
    // source's chunker polynomial, so what is copied deduplicates as it did there.
    let a = Tool::cairn(&src_repo, PW)
        .run(&["cat", "config"])
        .ok()
        .json();
    let b = Tool::cairn(&dst_repo, PW)
        .run(&["cat", "config"])
        .ok()
        .json();
    assert_eq!(a["chunker_polynomial"], b["chunker_polynomial"]);
    assert_ne!(a["id"], b["id"]);
}

#[test]
fn stdin_command_and_relative_sources_back_up_as_resticprofile_would() {
    let t = setup("cairn-prof-stdin");
    let repo = t.join("repo");
    let config = t.join("profiles.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[dump]
repository = "{repo}"
password-file = "password.txt"
initialize = true
[dump.backup]
stdin-command = ["echo first", "echo second"]
stdin-filename = "db.sql"
tag = ["db"]

[files]
repository = "{repo}"
password-file = "password.txt"
[files.backup]
source-relative = true
source-base = "{base}"
source = ["src"]
tag = ["files"]
[files.retention]
after-backup = true
keep-last = 1
"#,
            repo = repo.display(),
            base = t.path().display()
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let elsewhere = t.join("home");
    std::fs::create_dir_all(&elsewhere).unwrap();
    cairn(&t, &elsewhere, &["--config", &config, "dump.backup"]).ok();
    cairn(&t, &elsewhere, &["--config", &config, "files.backup"]).ok();
    std::fs::write(t.join("src/a.txt"), "changed").unwrap();
    cairn(&t, &elsewhere, &["--config", &config, "files.backup"]).ok();
    // keep-last 1 found the relative backup's snapshots by their absolute path (with the
    // relative one it would select none and keep both); the dump, another path, stays.
    let snaps = snapshots(&repo);
    assert_eq!(snaps.len(), 2, "{snaps:?}");
    let db = snaps
        .iter()
        .find(|s| s["tags"] == serde_json::json!(["db"]))
        .unwrap();
    assert_eq!(db["paths"], serde_json::json!(["/db.sql"]));
    let files = snaps
        .iter()
        .find(|s| s["tags"] == serde_json::json!(["files"]))
        .unwrap();
    // Backed up from source-base with the relative name; restic records it absolute.
    assert_eq!(
        files["paths"],
        serde_json::json!([t.join("src").display().to_string()])
    );
    let tool = Tool::cairn(&repo, PW);
    let id = db["short_id"].as_str().unwrap();
    let out = tool.run(&["dump", id, "/db.sql"]).ok();
    assert_eq!(out.stdout_str(), "first\nsecond\n");

    // A failing command fails the backup and leaves no snapshot.
    let text = std::fs::read_to_string(t.join("profiles.toml")).unwrap();
    std::fs::write(
        t.join("profiles.toml"),
        text.replace("\"echo second\"", "\"exit 5\""),
    )
    .unwrap();
    let r = cairn(&t, &elsewhere, &["--config", &config, "dump.backup"]);
    assert_ne!(r.code, Some(0), "{}", r.stderr_str());
    assert_eq!(snapshots(&repo).len(), 2);
}

/// An HTTP receiver on loopback: records each request's first line and body, answers 200.
fn receiver() -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let got = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen = got.clone();
    std::thread::spawn(move || {
        for conn in l.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut first = String::new();
            r.read_line(&mut first).unwrap();
            let mut len = 0usize;
            loop {
                let mut h = String::new();
                r.read_line(&mut h).unwrap();
                if h.trim().is_empty() {
                    break;
                }
                if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            r.read_exact(&mut body).unwrap();
            seen.lock().unwrap().push(format!(
                "{} {}",
                first.trim(),
                String::from_utf8_lossy(&body)
            ));
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, got)
}

/// The runner reports every run: the status file and the Prometheus text file get the
/// backup's counts, and the webhooks of success or failure are sent, with the error.
#[test]
fn runs_report_to_status_file_metrics_and_webhooks() {
    let t = setup("cairn-prof-report");
    let (url, got) = receiver();
    let repo = t.join("repo");
    let config = t.join("profiles.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[nightly]
repository = "local:{repo}"
password-file = "password.txt"
initialize = true
status-file = "{dir}/status.json"
prometheus-save-to-file = "{dir}/metrics.prom"
prometheus-labels = {{ host = "box" }}

[nightly.backup]
source = ["{src}"]
send-before = {{ url = "{url}/before", method = "POST", body = "starting $PROFILE_NAME" }}
send-after = {{ url = "{url}/ok", method = "POST", body = "done $PROFILE_NAME" }}
send-after-fail = {{ url = "{url}/fail", method = "POST", body = "failed: $ERROR" }}
send-finally = {{ url = "{url}/finally" }}
"#,
            repo = repo.display(),
            dir = t.path().display(),
            src = t.join("src").display(),
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    cairn(
        &t,
        t.path(),
        &["--config", &config, "-P", "nightly", "backup"],
    )
    .ok();
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.join("status.json")).unwrap()).unwrap();
    let b = &status["profiles"]["nightly"]["backup"];
    assert_eq!(b["success"], true, "{status}");
    assert_eq!(b["files_new"], 3, "{status}");
    let prom = std::fs::read_to_string(t.join("metrics.prom")).unwrap();
    assert!(
        prom.lines()
            .any(|l| l.starts_with("resticprofile_backup_files_new{")
                && l.contains(r#"profile="nightly""#)
                && l.contains(r#"host="box""#)
                && l.ends_with(" 3")),
        "{prom}"
    );
    let calls = got.lock().unwrap().clone();
    assert_eq!(
        calls,
        [
            "POST /before HTTP/1.1 starting nightly",
            "POST /ok HTTP/1.1 done nightly",
            "GET /finally HTTP/1.1 ",
        ],
        "{calls:?}"
    );
    // A source that is gone: exit 3, the failure is recorded and sent; the status file keeps
    // the backup entry merged, now a failure.
    got.lock().unwrap().clear();
    std::fs::remove_dir_all(t.join("src")).unwrap();
    let r = cairn(
        &t,
        t.path(),
        &["--config", &config, "-P", "nightly", "backup"],
    );
    assert_ne!(r.code, Some(0), "{}", r.desc);
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.join("status.json")).unwrap()).unwrap();
    assert_eq!(
        status["profiles"]["nightly"]["backup"]["success"], false,
        "{status}"
    );
    let calls = got.lock().unwrap().clone();
    assert_eq!(calls.len(), 3, "{calls:?}");
    assert!(
        calls[1].starts_with("POST /fail HTTP/1.1 failed: "),
        "{calls:?}"
    );
    assert!(
        calls[1].len() > "POST /fail HTTP/1.1 failed: ".len(),
        "{calls:?}"
    );
}

/// `stream-error`: each rule's command starts when the backup's stderr has matched its
/// pattern `min-matches` more times, at most `max-runs` times, with the line on its stdin;
/// the user's stderr is the same bytes a plain `cairn backup` writes, and `ERROR_STDERR`
/// and the status file carry the backup's stderr.
#[test]
fn stream_error_commands_run_on_matching_stderr_which_still_reaches_the_user() {
    let t = setup("cairn-prof-stream");
    let repo = t.join("repo");
    let sources = ["src", "gone-1", "gone-2", "gone-3"];
    let config = t.join("profiles.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[p]
repository = "{repo}"
password-file = "password.txt"
initialize = true
status-file = "status.json"
run-after-fail = 'printf "%s" "$ERROR_STDERR" > error-stderr.txt'

[[p.stream-error]]
pattern = "gone-[0-9]: no such file"
run = 'echo "$PROFILE_NAME $PROFILE_COMMAND $(cat -)" >> every-second.txt; echo from-the-command >&2'
min-matches = 2

[[p.stream-error]]
pattern = "^error: .*gone"
run = 'cat - >> first-two.txt; echo >> first-two.txt'
max-runs = 2

[p.backup]
source = [{sources}]
"#,
            repo = repo.display(),
            sources = sources.map(|s| format!("\"{s}\"")).join(", "),
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let shown = cairn(&t, t.path(), &["--config", &config, "-P", "p", "show"]).ok();
    assert!(
        shown
            .stdout_str()
            .contains("stream-error: /gone-[0-9]: no such file/ (min-matches 2, max-runs 0): "),
        "{}",
        shown.stdout_str()
    );
    let r = cairn(&t, t.path(), &["--config", &config, "-P", "p", "backup"]).expect_code(3);
    let err = r.stderr_str();
    let gone = |n: u32| {
        format!(
            "error: {}: no such file or directory",
            t.join(format!("gone-{n}")).display()
        )
    };
    // Three matches, min-matches 2: one start, at the second.
    assert_eq!(
        lines(&t.join("every-second.txt")),
        [format!("p backup {}", gone(2))]
    );
    // max-runs 2: the first two matches only.
    assert_eq!(lines(&t.join("first-two.txt")), [gone(1), gone(2)]);
    // The command's own stderr reaches the user once (it does not come back to the matcher).
    assert_eq!(err.matches("from-the-command").count(), 1, "{err}");

    // What a plain backup of the same sources writes to stderr is in the profile run's
    // stderr unchanged, line for line and in order.
    let plain = Tool::cairn(&repo, PW);
    // The profile passes its sources as absolute paths.
    let absolute: Vec<String> = sources
        .iter()
        .map(|s| t.join(s).display().to_string())
        .collect();
    let mut args = vec!["backup"];
    args.extend(absolute.iter().map(String::as_str));
    let direct = plain.run_in(Some(t.path()), &args).expect_code(3);
    let mut profile_lines = err.lines();
    for l in direct.stderr_str().lines() {
        assert!(
            profile_lines.any(|p| p == l),
            "{l:?} missing or out of order in:\n{err}"
        );
    }

    let captured = std::fs::read_to_string(t.join("error-stderr.txt")).unwrap();
    for n in 1..=3 {
        assert!(captured.contains(&gone(n)), "{captured}");
    }
    assert!(!captured.contains("from-the-command"), "{captured}");
    let status: serde_json::Value =
        serde_json::from_slice(&std::fs::read(t.join("status.json")).unwrap()).unwrap();
    let stderr = status["profiles"]["p"]["backup"]["stderr"]
        .as_str()
        .unwrap_or_default();
    assert!(stderr.contains(&gone(3)), "{status}");
}

/// A bad `stream-error` pattern is a configuration error: one line, nothing runs.
#[test]
fn a_bad_stream_error_pattern_is_a_configuration_error() {
    config_error(
        "[p]\nrepository = \"@REPO@\"\npassword-file = \"password.txt\"\ninitialize = true\nrun-before = \"touch @MARK@\"\n[[p.stream-error]]\npattern = \"(unclosed\"\nrun = \"true\"\n[p.backup]\nsource = [\"/tmp\"]\n",
        "p",
        &["profile \"p\"", "stream-error entry 1", "(unclosed"],
    );
}

/// Profile-level `lock`: a second run while the first holds the file fails at once with
/// exit 1 and runs nothing; the file goes when the run ends; a file left by a run that is
/// gone is refused, and taken over with `force-inactive-lock`.
#[test]
fn profile_lock_keeps_a_second_run_out_and_force_inactive_lock_takes_a_stale_one() {
    let t = setup("cairn-prof-lock");
    let repo = t.join("repo");
    let config = t.join("profiles.toml");
    let write_config = |extra: &str| {
        std::fs::write(
            &config,
            format!(
                r#"
[p]
repository = "{repo}"
password-file = "password.txt"
initialize = true
lock = "locks/p.lock"
{extra}
run-before = 'echo before >> runs.log; touch started; i=0; while [ ! -e release ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done'
run-after-fail = 'echo fail >> runs.log'
[p.backup]
source = ["src"]
"#,
                repo = repo.display(),
            ),
        )
        .unwrap();
    };
    write_config("");
    let config = config.display().to_string();
    let lock = t.join("locks/p.lock");
    std::thread::scope(|s| {
        let first = s.spawn(|| cairn(&t, t.path(), &["--config", &config, "-P", "p", "backup"]));
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !t.join("started").exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "first run never started"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let holder = std::fs::read_to_string(&lock).unwrap();
        let second =
            cairn(&t, t.path(), &["--config", &config, "-P", "p", "backup"]).expect_code(1);
        let err = second.stderr_str();
        assert!(
            err.contains("another process is already running this profile"),
            "{err}"
        );
        assert!(err.contains(holder.lines().next().unwrap()), "{err}");
        std::fs::write(t.join("release"), "").unwrap();
        first.join().unwrap().ok();
    });
    assert_eq!(
        lines(&t.join("runs.log")),
        ["before"],
        "the second run ran nothing"
    );
    assert!(!lock.exists(), "the lock file is removed at the end");
    assert_eq!(snapshots(&repo).len(), 1);

    // Left by a run that is gone (a PID that was waited for).
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    let stale = format!("someone on Friday, 04-Dec-26 01:00:00 UTC from elsewhere\n{gone}\n");
    std::fs::write(&lock, &stale).unwrap();
    let r = cairn(&t, t.path(), &["--config", &config, "-P", "p", "backup"]).expect_code(1);
    assert!(
        r.stderr_str().contains("force-inactive-lock"),
        "{}",
        r.stderr_str()
    );
    assert_eq!(lines(&t.join("runs.log")), ["before"]);
    write_config("force-inactive-lock = true");
    let r = cairn(&t, t.path(), &["--config", &config, "-P", "p", "backup"]).ok();
    assert!(
        r.stderr_str().contains("hasn't finished properly"),
        "{}",
        r.stderr_str()
    );
    assert_eq!(lines(&t.join("runs.log")), ["before", "before"]);
    assert_eq!(snapshots(&repo).len(), 2);
    assert!(!lock.exists());
}

/// A profile run from a group: its metrics carry a `group` label; run alone, none.
#[test]
fn metrics_of_a_group_run_carry_the_group_label() {
    let t = setup("cairn-prof-group-label");
    let repo = t.join("repo");
    let config = t.join("profiles.toml");
    std::fs::write(
        &config,
        format!(
            r#"
version = "2"
[profiles.p]
repository = "{repo}"
password-file = "password.txt"
initialize = true
prometheus-save-to-file = "metrics.prom"
[profiles.p.backup]
source = ["src"]
[groups.nightly]
profiles = ["p"]
"#,
            repo = repo.display(),
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let status_line = || {
        std::fs::read_to_string(t.join("metrics.prom"))
            .unwrap()
            .lines()
            .find(|l| l.starts_with("resticprofile_backup_status{"))
            .unwrap_or_default()
            .to_string()
    };
    cairn(
        &t,
        t.path(),
        &["--config", &config, "-P", "nightly", "backup"],
    )
    .ok();
    let l = status_line();
    assert!(
        l.contains(r#"group="nightly""#) && l.contains(r#"profile="p""#),
        "{l}"
    );
    cairn(&t, t.path(), &["--config", &config, "-P", "p", "backup"]).ok();
    let l = status_line();
    assert!(!l.contains("group="), "{l}");
    assert!(l.contains(r#"profile="p""#), "{l}");
}

/// `includes`: a profile spread over the main file and included files of other formats runs
/// as one; a later include's value replaces an earlier one, lists included.
#[test]
fn included_files_merge_into_the_profile_that_runs() {
    let t = setup("cairn-prof-includes");
    let repo = t.join("repo");
    std::fs::create_dir_all(t.join("profiles.d")).unwrap();
    let config = t.join("profiles.toml");
    std::fs::write(
        &config,
        format!(
            "includes = [\"profiles.d/*.yaml\", \"last.json\"]\n[p]\nrepository = \"{}\"\npassword-file = \"password.txt\"\n[p.backup]\ntag = [\"main\"]\n",
            repo.display()
        ),
    )
    .unwrap();
    std::fs::write(
        t.join("profiles.d/10-source.yaml"),
        "p:\n  initialize: true\n  backup:\n    source:\n      - src\n    exclude:\n      - \"*.tmp\"\n",
    )
    .unwrap();
    std::fs::write(
        t.join("last.json"),
        r#"{"p": {"backup": {"tag": ["included"]}}}"#,
    )
    .unwrap();
    let config = config.display().to_string();
    cairn(&t, t.path(), &["--config", &config, "-P", "p", "backup"]).ok();
    let snaps = snapshots(&repo);
    assert_eq!(snaps.len(), 1, "{snaps:?}");
    assert_eq!(
        snaps[0]["tags"],
        serde_json::json!(["included"]),
        "{snaps:?}"
    );
    assert_eq!(
        snaps[0]["paths"],
        serde_json::json!([t.join("src").display().to_string()])
    );
}

//! `migrate upgrade_repo_v2`: a checked version 1 repository becomes version 2 (same id and
//! chunker polynomial), restic agrees, and compressed backups follow; a damaged repository is
//! left alone.

mod common;

use common::{extract_fixture, TempDir, Tool};

const PW: &str = "geheim";

fn config(r: &Tool) -> serde_json::Value {
    serde_json::from_slice(&r.run(&["cat", "config"]).ok().stdout).unwrap()
}

#[test]
fn upgrade_repo_v2_of_a_restic_v1_repository() {
    require_restic!();
    let t = TempDir::new("cairn-migrate");
    let data = t.join("data");
    std::fs::create_dir_all(&data).unwrap();
    extract_fixture("cmd_restic--backup-data.tar.gz", &data);
    let repo = t.join("repo");
    let c = Tool::cairn(&repo, PW);
    let r = Tool::restic(&repo, PW);
    r.run(&["init", "--repository-version", "1"]).ok();
    r.run(&["backup", "-q", data.to_str().unwrap()]).ok();
    let before = config(&r);
    assert_eq!(before["version"], 1);

    let list = c.run(&["migrate"]).ok();
    assert!(
        list.stdout_str()
            .contains("  upgrade_repo_v2\tupgrade a repository to version 2"),
        "{}",
        list.stdout_str()
    );
    let out = c.run(&["migrate", "upgrade_repo_v2"]).ok();
    let text = out.stdout_str();
    for line in [
        "checking repository integrity...",
        "no errors were found",
        "applying migration upgrade_repo_v2...",
        "migration upgrade_repo_v2: success",
    ] {
        assert!(text.lines().any(|l| l == line), "no {line:?} in\n{text}");
    }
    let after = config(&r);
    assert_eq!(after["version"], 2);
    assert_eq!(after["id"], before["id"]);
    assert_eq!(after["chunker_polynomial"], before["chunker_polynomial"]);
    r.run(&["check", "--read-data"]).ok();

    // Nothing more to migrate; a second run needs --force.
    let list = c.run(&["migrate"]).ok();
    assert!(list.stdout_str().contains("no migrations found"));
    let again = c.run(&["migrate", "upgrade_repo_v2"]).ok();
    assert!(
        again
            .stderr_str()
            .contains("repository is already upgraded to version 2"),
        "{}",
        again.stderr_str()
    );
    c.run(&["migrate", "--force", "upgrade_repo_v2"]).ok();
    assert_eq!(config(&r)["version"], 2);

    // Compressed backups from now on, and the old snapshot still restores.
    std::fs::write(data.join("new"), vec![b'z'; 200_000]).unwrap();
    let sum = c
        .run(&["backup", "--json", data.to_str().unwrap()])
        .ok()
        .summary();
    assert!(
        sum["data_added_packed"].as_u64().unwrap() < 20_000,
        "compressed: {sum}"
    );
    r.run(&["check", "--read-data"]).ok();
    r.assert_restores("latest", &data, &t.join("out"));

    let out = c.run(&["migrate", "no_such_migration"]).ok();
    assert!(out
        .stderr_str()
        .contains("unknown migration no_such_migration"));
}

#[test]
fn upgrade_refuses_a_damaged_repository() {
    require_restic!();
    let t = TempDir::new("cairn-migrate-damaged");
    extract_fixture("cmd_restic--repo-data-missing.tar.gz", t.path());
    let repo = t.join("repo");
    let c = Tool::cairn(&repo, PW);
    let r = Tool::restic(&repo, PW);
    assert_eq!(config(&r)["version"], 1);
    let out = c.run(&["migrate", "upgrade_repo_v2"]).expect_code(1);
    assert!(
        out.stderr_str().contains("repository contains errors"),
        "{}",
        out.stderr_str()
    );
    assert!(!out.stdout_str().contains("applying migration"));
    assert_eq!(config(&r)["version"], 1);
}

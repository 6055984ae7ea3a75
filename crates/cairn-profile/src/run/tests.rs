use super::*;
use crate::resolve::{Hooks, Plan, Step, StepKind};
use std::cell::RefCell;

/// Records the steps and answers with a fixed exit code per label.
struct Fake {
    codes: Vec<(&'static str, i32)>,
    ran: RefCell<Vec<String>>,
}

impl StepRunner for Fake {
    fn run(&self, step: &Step, _env: &[(String, String)]) -> StepResult {
        self.ran.borrow_mut().push(step.label.clone());
        let code = self
            .codes
            .iter()
            .find(|(l, _)| *l == step.label)
            .map_or(0, |(_, c)| *c);
        StepResult {
            exit_code: code,
            error: (code != 0).then(|| format!("{} broke", step.label)),
            backup: None,
            stderr: None,
        }
    }
}

fn step(kind: StepKind, label: &str) -> Step {
    Step {
        kind,
        label: label.into(),
        command: label.into(),
        flags: vec![],
        args: vec![],
        ok_codes: vec![0],
        work_dir: None,
    }
}

fn plan(log: &Path, section_before: &str) -> Plan {
    let hook = |what: &str| {
        format!(
            "echo \"{what} $PROFILE_NAME $PROFILE_COMMAND ${{ERROR_EXIT_CODE:-}}\" >> {}",
            log.display()
        )
    };
    Plan {
        config_file: "/x/profiles.toml".into(),
        profile: "p".into(),
        command: "backup".into(),
        steps: vec![
            step(StepKind::Main, "backup"),
            step(StepKind::Retention, "retention"),
        ],
        env: vec![],
        profile_hooks: Hooks {
            before: vec![hook("profile-before")],
            after: vec![hook("profile-after")],
            after_fail: vec![hook("profile-fail")],
            finally: vec![hook("profile-finally")],
        },
        section_hooks: Hooks {
            before: vec![section_before.replace("HOOK", &hook("section-before"))],
            after: vec![hook("section-after")],
            after_fail: vec![hook("section-fail")],
            finally: vec![hook("section-finally")],
        },
        profile_section: Value::Null,
        command_section: Value::Null,
        work_dir: None,
        stream_errors: vec![],
    }
}

#[derive(Default)]
struct Seen(RefCell<Vec<String>>);
impl Reporter for Seen {
    fn before(&self, c: &Context<'_>) {
        self.0.borrow_mut().push(format!("before {}", c.command));
    }
    fn step(&self, _c: &Context<'_>, o: &RunOutcome) {
        self.0
            .borrow_mut()
            .push(format!("step {} {}", o.command, o.exit_code));
    }
    fn after(&self, _c: &Context<'_>, o: &RunOutcome) {
        self.0
            .borrow_mut()
            .push(format!("after {} {}", o.success, o.exit_code));
    }
}

#[test]
fn success_runs_hooks_in_resticprofile_order() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let fake = Fake {
        codes: vec![],
        ran: RefCell::new(vec![]),
    };
    let seen = Seen::default();
    let o = run_plan(&plan(&log, "HOOK"), &fake, &seen);
    assert!(o.success && o.exit_code == 0);
    let got = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        got,
        "profile-before p backup \nsection-before p backup \nsection-after p backup \nprofile-after p backup \nsection-finally p backup \nprofile-finally p backup \n"
    );
    assert_eq!(*fake.ran.borrow(), ["backup", "retention"]);
    assert_eq!(
        *seen.0.borrow(),
        [
            "before backup",
            "step backup 0",
            "step retention 0",
            "after true 0"
        ]
    );
}

#[test]
fn a_failed_step_runs_after_fail_not_after_and_keeps_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let fake = Fake {
        codes: vec![("backup", 3)],
        ran: RefCell::new(vec![]),
    };
    let seen = Seen::default();
    let o = run_plan(&plan(&log, "HOOK"), &fake, &seen);
    assert!(!o.success);
    assert_eq!(o.exit_code, 3);
    assert_eq!(o.error.as_deref(), Some("backup broke"));
    let got = std::fs::read_to_string(&log).unwrap();
    assert_eq!(
        got,
        "profile-before p backup \nsection-before p backup \nsection-fail p backup 3\nprofile-fail p backup 3\nsection-finally p backup 3\nprofile-finally p backup 3\n"
    );
    assert_eq!(
        *fake.ran.borrow(),
        ["backup"],
        "retention does not run after a failed backup"
    );
    assert_eq!(
        *seen.0.borrow(),
        ["before backup", "step backup 3", "after false 3"]
    );
}

#[test]
fn a_failed_run_before_runs_nothing_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let fake = Fake {
        codes: vec![],
        ran: RefCell::new(vec![]),
    };
    let seen = Seen::default();
    let o = run_plan(&plan(&log, "HOOK; exit 7"), &fake, &seen);
    assert!(!o.success);
    assert_eq!(o.exit_code, 1);
    assert!(fake.ran.borrow().is_empty());
    let got = std::fs::read_to_string(&log).unwrap();
    assert!(
        got.contains("section-fail p backup 1\nprofile-fail p backup 1\n"),
        "{got}"
    );
    assert!(!got.contains("after"), "{got}");
    assert_eq!(
        *seen.0.borrow(),
        ["before backup", "step backup 1", "after false 1"]
    );
}

/// A runner whose steps report a fixed stderr (as a runner in another process would).
struct Noisy {
    stderr: &'static str,
    code: i32,
}

impl StepRunner for Noisy {
    fn run(&self, _step: &Step, _env: &[(String, String)]) -> StepResult {
        StepResult {
            exit_code: self.code,
            error: (self.code != 0).then(|| "broke".to_string()),
            backup: None,
            stderr: Some(self.stderr.to_string()),
        }
    }
}

#[test]
fn stream_error_runs_per_step_with_the_line_on_stdin_and_error_stderr_is_the_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let hits = dir.path().join("hits");
    let mut p = plan(&log, "HOOK");
    p.stream_errors = crate::streamerr::parse(&serde_json::json!([{
        "pattern": "^warning: .*denied",
        "run": format!("{{ cat -; echo \" $PROFILE_NAME $PROFILE_COMMAND\"; }} >> {}", hits.display()),
        "min-matches": 2,
    }]))
    .unwrap();
    p.profile_hooks.after_fail = vec![format!(
        "printf '%s|' \"$ERROR_STDERR\" >> {}",
        log.display()
    )];
    let runner = Noisy {
        stderr: "warning: /a: permission denied\nwarning: /b: permission denied\nFatal: x\n",
        code: 3,
    };
    let o = run_plan(&p, &runner, &NoReporter);
    assert_eq!(o.exit_code, 3);
    // The backup fails, so retention never runs: one start, at the second match.
    let got = std::fs::read_to_string(&hits).unwrap();
    assert_eq!(got, "warning: /b: permission denied p backup\n");
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(
        log.contains("warning: /a: permission denied\nwarning: /b: permission denied\nFatal: x\n|"),
        "{log}"
    );
}

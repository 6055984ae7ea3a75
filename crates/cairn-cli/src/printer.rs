//! The CLI's two printers of the core's events ([`cairn_core::observe`]): [`Text`], worded
//! as restic prints its messages, and [`Json`], restic's `--json` messages. Every command
//! hands one of them to the core; which one, and the wording, follow from the operation
//! ([`During`]) and the global flags.

use crate::global::GlobalOptions;
use crate::output;
use cairn_core::checker::Hint;
use cairn_core::observe::{CheckEvent, Event, Observer, RestoreAction};
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The operation whose events are printed: it picks restic's wording, and the `during`
/// field of JSON error messages.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum During {
    Backup,
    /// Backup's adoption of an interrupted run's packs.
    Adopt,
    Restore,
    Prune,
    /// Repairs, copy, rewrite.
    Maintenance,
    /// Choosing snapshots: its messages show even with `--quiet`, as restic's do.
    Selection,
    /// Taking a lock for any command.
    Lock,
    /// `unlock`, which removes unreadable locks instead of skipping them.
    Unlock,
    Check,
}

impl During {
    /// restic's JSON `during` value.
    fn json_name(self) -> &'static str {
        match self {
            During::Backup => "archival",
            During::Adopt => "adopt",
            During::Restore => "restore",
            During::Prune => "prune",
            During::Maintenance => "maintenance",
            During::Selection => "selection",
            During::Lock | During::Unlock => "lock",
            During::Check => "check",
        }
    }
}

/// What the printers count for progress lines and summaries.
pub struct Tally {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: AtomicU64,
    /// The file finished last, shown on the progress line.
    pub current: Mutex<String>,
}

impl Tally {
    const fn new() -> Tally {
        Tally {
            files: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            current: Mutex::new(String::new()),
        }
    }

    fn file(&self, path: &Path, bytes: u64) {
        self.files.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) =
            path.to_string_lossy().into_owned();
    }
}

/// The counts of the last backup's summary, for the profile runner's status file and metrics
/// (a backup run in-process by [`crate::profile_run`] leaves them here).
static LAST_BACKUP: Mutex<Option<cairn_profile::outcome::BackupCounts>> = Mutex::new(None);

pub fn record_backup(counts: cairn_profile::outcome::BackupCounts) {
    *LAST_BACKUP.lock().unwrap_or_else(|e| e.into_inner()) = Some(counts);
}

pub fn take_backup() -> Option<cairn_profile::outcome::BackupCounts> {
    LAST_BACKUP.lock().unwrap_or_else(|e| e.into_inner()).take()
}

/// The settings both printers share.
struct Settings {
    during: During,
    quiet: bool,
    verbose: u8,
    tally: Tally,
}

/// restic's text messages: progress on stdout, warnings and errors on stderr.
pub struct Text {
    s: Settings,
    /// A live progress line is on the terminal; clear it before printing a message.
    live: bool,
    /// Unreadable locks already warned about (locks are looked at twice per attempt).
    warned: Mutex<Vec<cairn_core::Id>>,
    /// check's progress line is on stdout (cleared before anything else is printed).
    check_line: Mutex<bool>,
}

/// Messages of snapshot selection, printed the same whatever the flags.
pub static SELECTION: Text = Text::new(During::Selection, false, 0, false);

impl Text {
    const fn new(during: During, quiet: bool, verbose: u8, live: bool) -> Text {
        Text {
            s: Settings {
                during,
                quiet,
                verbose,
                tally: Tally::new(),
            },
            live,
            warned: Mutex::new(Vec::new()),
            check_line: Mutex::new(false),
        }
    }

    /// Clears check's progress line if it is on screen.
    fn clear_check_line(&self) {
        let mut on = self.check_line.lock().unwrap_or_else(|e| e.into_inner());
        if *on {
            print!("\r\x1b[K");
            *on = false;
        }
    }

    /// check's findings as restic 0.14 prints them: problems on stderr, hints and notes on
    /// stdout (packs no index lists only without --quiet), packs read with -vv, a progress
    /// line on a terminal.
    fn check(&self, e: CheckEvent<'_>) {
        let s = &self.s;
        if !matches!(e, CheckEvent::Progress { .. } | CheckEvent::ReadingPack(_)) {
            self.clear_check_line();
        }
        match e {
            CheckEvent::Problem(p) => {
                s.tally.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("{p}");
            }
            CheckEvent::Hint(h @ Hint::UnreferencedPack { .. }) => {
                if !s.quiet {
                    self.out(&h.to_string());
                }
            }
            CheckEvent::Hint(h) => self.out(&h.to_string()),
            CheckEvent::Note(n) => self.out(n),
            CheckEvent::ReadingPack(id) => {
                if s.verbose > 1 {
                    self.out(&format!("reading pack {id}"));
                }
            }
            CheckEvent::Progress { done, total, start } => {
                if !self.live {
                    return;
                }
                let Some(start) = start else {
                    self.clear_check_line();
                    return;
                };
                let mut on = self.check_line.lock().unwrap_or_else(|e| e.into_inner());
                let pct = if total == 0 {
                    100.0
                } else {
                    done as f64 * 100.0 / total as f64
                };
                let mut out = std::io::stdout().lock();
                let _ = write!(
                    out,
                    "\r\x1b[K[{}] {pct:.2}%  {done} / {total} packs",
                    output::duration(start.elapsed().as_secs_f64())
                );
                let _ = out.flush();
                *on = true;
            }
        }
    }

    fn clear_line(&self) {
        if self.live {
            eprint!("\r\x1b[2K");
        }
    }

    fn out(&self, msg: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{msg}");
    }
}

impl Observer for Text {
    fn event(&self, e: Event<'_>) {
        let s = &self.s;
        match e {
            Event::Info(m) => {
                if !s.quiet || s.during == During::Selection {
                    self.clear_check_line();
                    self.out(m);
                }
            }
            Event::Verbose(m) => {
                if s.verbose > 0 && !s.quiet {
                    self.clear_check_line();
                    self.out(m);
                }
            }
            Event::Warning { path, message } => {
                self.clear_line();
                match (path, s.during) {
                    (Some(p), _) => eprintln!("warning: {}: {message}", p.display()),
                    (None, During::Adopt) => eprintln!("warning: {message}"),
                    (None, _) => eprintln!("{message}"),
                }
            }
            Event::Error { path, error } => {
                s.tally.errors.fetch_add(1, Ordering::Relaxed);
                self.clear_line();
                match s.during {
                    During::Backup => eprintln!("error: {error:#}"),
                    During::Restore => {
                        eprintln!("ignoring error for {}: {error:#}", path.display())
                    }
                    _ => eprintln!("error: {}: {error:#}", path.display()),
                }
            }
            Event::FileSaved { path, bytes, added } => {
                if s.verbose >= 2 {
                    if self.live {
                        print!("\r\x1b[2K");
                    }
                    self.out(&format!(
                        "new       {}, {} ({} added)",
                        path.display(),
                        output::bytes(bytes),
                        output::bytes(added)
                    ));
                }
                s.tally.file(path, bytes);
            }
            Event::FileUnchanged { path, bytes } => {
                if s.verbose >= 2 {
                    self.out(&format!("unchanged {}", path.display()));
                }
                s.tally.file(path, bytes);
            }
            Event::Restored { path, action, size } => {
                if s.verbose >= 2 && !s.quiet {
                    let file = matches!(
                        action,
                        RestoreAction::FileRestored
                            | RestoreAction::FileUpdated
                            | RestoreAction::FileUnchanged
                    );
                    let tail = if file {
                        format!(" with size {}", output::bytes(size))
                    } else {
                        String::new()
                    };
                    self.out(&format!("{:<9} {}{tail}", action.as_str(), path.display()));
                }
            }
            Event::LockRemovedDead { id, info } => eprintln!(
                "removed lock {} of PID {} on this host: that process no longer exists",
                id.short(),
                info.pid
            ),
            Event::LockWaiting { error, left } => {
                if !s.quiet {
                    eprintln!(
                        "{error}; waiting up to {} for the lock",
                        output::duration(left.as_secs_f64())
                    );
                }
            }
            Event::LockUnreadable { id, error } => {
                let error = format!("{error:#}").replace('\n', " ");
                if s.during == During::Unlock {
                    eprintln!("removing unreadable lock {error}");
                    return;
                }
                let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
                if !warned.contains(id) {
                    warned.push(*id);
                    eprintln!(
                        "warning: ignoring unreadable lock {error}; `cairn unlock` removes it"
                    );
                }
            }
            Event::Check(c) => self.check(c),
            Event::RestorePlanned { .. } | Event::RestoreBytes { .. } => {}
        }
    }

    fn cancelled(&self) -> bool {
        crate::signals::INTERRUPTED.load(Ordering::Relaxed)
    }
}

/// restic's `--json` messages: errors as `error` messages on stderr, `-vv` file lines as
/// `verbose_status` on stdout; plain progress messages are left out.
pub struct Json {
    s: Settings,
    /// Events JSON has no message for (locking) are printed as text.
    text: Text,
}

impl Json {
    fn error_message(&self, message: &str, item: Option<&Path>) {
        let m = serde_json::json!({
            "message_type": "error",
            "error": {"message": message},
            "during": self.s.during.json_name(),
            "item": item.map(|p| p.to_string_lossy()).unwrap_or_default(),
        });
        eprintln!("{m}");
    }

    fn verbose_status(&self, action: &str, path: &Path, bytes: u64, added: u64) {
        if self.s.verbose >= 2 {
            let m = serde_json::json!({
                "message_type": "verbose_status", "action": action, "item": path.to_string_lossy(),
                "data_size": bytes, "data_size_in_repo": added,
            });
            println!("{m}");
        }
    }
}

impl Observer for Json {
    fn event(&self, e: Event<'_>) {
        match e {
            Event::Info(_) | Event::Verbose(_) => {}
            Event::Warning { path, message } => self.error_message(message, path),
            Event::Error { path, error } => {
                self.s.tally.errors.fetch_add(1, Ordering::Relaxed);
                self.error_message(&format!("{error:#}"), Some(path));
            }
            Event::FileSaved { path, bytes, added } => {
                self.verbose_status("new", path, bytes, added);
                self.s.tally.file(path, bytes);
            }
            Event::FileUnchanged { path, bytes } => {
                self.verbose_status("unchanged", path, bytes, 0);
                self.s.tally.file(path, bytes);
            }
            Event::Restored { path, action, size } => {
                if self.s.verbose >= 2 {
                    let m = serde_json::json!({
                        "message_type": "verbose_status", "action": action.as_str(),
                        "item": path.to_string_lossy(), "size": size,
                    });
                    println!("{m}");
                }
            }
            Event::LockRemovedDead { .. }
            | Event::LockWaiting { .. }
            | Event::LockUnreadable { .. } => self.text.event(e),
            // restic 0.18's `check --json`: each error a message of its own on stderr, the
            // text ending in a newline as restic's does; nothing else.
            Event::Check(CheckEvent::Problem(p)) => {
                self.s.tally.errors.fetch_add(1, Ordering::Relaxed);
                let m = serde_json::json!({"message_type": "error", "message": format!("{p}\n")});
                eprintln!("{m}");
            }
            Event::Check(_) | Event::RestorePlanned { .. } | Event::RestoreBytes { .. } => {}
        }
    }

    fn cancelled(&self) -> bool {
        crate::signals::INTERRUPTED.load(Ordering::Relaxed)
    }
}

/// One of the two printers, chosen by [`printer`].
pub enum Printer {
    Text(Text),
    Json(Json),
}

impl Printer {
    /// The counts the printer kept.
    pub fn tally(&self) -> &Tally {
        match self {
            Printer::Text(t) => &t.s.tally,
            Printer::Json(j) => &j.s.tally,
        }
    }

    pub fn quiet(&self) -> bool {
        match self {
            Printer::Text(t) => t.s.quiet,
            Printer::Json(j) => j.s.quiet,
        }
    }

    pub fn is_json(&self) -> bool {
        matches!(self, Printer::Json(_))
    }
}

impl Observer for Printer {
    fn event(&self, e: Event<'_>) {
        match self {
            Printer::Text(t) => t.event(e),
            Printer::Json(j) => j.event(e),
        }
    }
    fn cancelled(&self) -> bool {
        crate::signals::INTERRUPTED.load(Ordering::Relaxed)
    }
}

/// The printer for an operation: JSON messages with `--json` where restic has them (backup,
/// restore, check), text otherwise. `live` says a progress line is drawn on the terminal.
pub fn printer(g: &GlobalOptions, during: During, live: bool) -> Printer {
    let text = Text::new(during, g.quiet, g.verbose, live);
    if g.json
        && matches!(
            during,
            During::Backup | During::Adopt | During::Restore | During::Check
        )
    {
        Printer::Json(Json {
            s: Settings {
                during,
                quiet: g.quiet,
                verbose: g.verbose,
                tally: Tally::new(),
            },
            text,
        })
    } else {
        Printer::Text(text)
    }
}

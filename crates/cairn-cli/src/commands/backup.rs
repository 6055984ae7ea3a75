use crate::global::{self, GlobalOptions};
use crate::output;
use crate::signals::INTERRUPTED;
use anyhow::Context;
use cairn_core::archiver::select::SelectOptions;
use cairn_core::archiver::{self, BackupObserver, BackupOptions};
use cairn_core::format::gotime::GoTime;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(clap::Args)]
pub struct Args {
    /// Files and directories to back up
    paths: Vec<PathBuf>,
    /// Add tags for the new snapshot in the format `tag[,tag,...]` (can be specified multiple times)
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Set the hostname for the snapshot manually
    #[arg(short = 'H', long = "host", env = "RESTIC_HOST")]
    host: Option<String>,
    /// Exclude a pattern (can be specified multiple times)
    #[arg(short = 'e', long = "exclude")]
    excludes: Vec<String>,
    /// Read exclude patterns from a file (can be specified multiple times)
    #[arg(long = "exclude-file")]
    exclude_files: Vec<PathBuf>,
    /// Same as --exclude pattern but ignores the casing of filenames
    #[arg(long = "iexclude")]
    iexcludes: Vec<String>,
    /// Same as --exclude-file but ignores casing of filenames in patterns
    #[arg(long = "iexclude-file")]
    iexclude_files: Vec<PathBuf>,
    /// Takes filename[:header], exclude contents of directories containing filename (except filename itself) if header of that file is as provided
    #[arg(long = "exclude-if-present")]
    exclude_if_present: Vec<String>,
    /// Excludes cache directories that are marked with a CACHEDIR.TAG file
    #[arg(long)]
    exclude_caches: bool,
    /// Max size of the files to be backed up (allowed suffixes: k/K, m/M, g/G, t/T)
    #[arg(long)]
    exclude_larger_than: Option<String>,
    /// Exclude other file systems, don't cross filesystem boundaries
    #[arg(short = 'x', long)]
    one_file_system: bool,
    /// Read the files to backup from file (one per line, # comments, globs expanded)
    #[arg(long = "files-from")]
    files_from: Vec<PathBuf>,
    /// Read the files to backup from file (one per line, taken literally)
    #[arg(long = "files-from-verbatim")]
    files_from_verbatim: Vec<PathBuf>,
    /// Read the files to backup from file (NUL-separated, taken literally)
    #[arg(long = "files-from-raw")]
    files_from_raw: Vec<PathBuf>,
    /// Read backup from stdin
    #[arg(long)]
    stdin: bool,
    /// Filename to use when reading from stdin
    #[arg(long, default_value = "stdin")]
    stdin_filename: String,
    /// Execute the command given as arguments and back up its standard output
    #[arg(long)]
    stdin_from_command: bool,
    /// Do not upload or write any data, just show what would be done
    #[arg(short = 'n', long)]
    dry_run: bool,
    /// Skip the snapshot if nothing changed since the parent snapshot
    #[arg(long)]
    skip_if_unchanged: bool,
    /// Time of the backup (ex. '2012-11-01 22:08:41') (default: now)
    #[arg(long)]
    time: Option<String>,
    /// Store the atime for all files and directories
    #[arg(long)]
    with_atime: bool,
    /// Use this parent snapshot (default: the latest snapshot with the same host and paths)
    #[arg(long)]
    parent: Option<String>,
    /// Force re-reading the target files/directories (overrides the "parent" flag)
    #[arg(short, long)]
    force: bool,
    /// Ignore ctime changes when checking for modified files
    #[arg(long)]
    ignore_ctime: bool,
    /// Ignore inode number changes when checking for modified files
    #[arg(long)]
    ignore_inode: bool,
    /// Read this many files at once (default: one per core)
    #[arg(long, env = "RESTIC_READ_CONCURRENCY", default_value_t = 0)]
    read_concurrency: usize,
}

fn parse_time(s: &str) -> anyhow::Result<GoTime> {
    use chrono::TimeZone;
    let naive = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S")
        .map_err(|e| anyhow::anyhow!("invalid --time {s:?} (want 'YYYY-MM-DD hh:mm:ss'): {e}"))?;
    chrono::Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.fixed_offset())
        .ok_or_else(|| anyhow::anyhow!("invalid --time {s:?}: no such local time"))
}

fn read_pattern_file(p: &Path) -> anyhow::Result<Vec<String>> {
    let s = std::fs::read_to_string(p)
        .map_err(|e| anyhow::anyhow!("reading exclude file {}: {e}", p.display()))?;
    Ok(s.lines()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| l.to_string())
        .collect())
}

/// Progress and errors: text on a terminal, restic's JSON messages with --json.
struct Observer {
    json: bool,
    quiet: bool,
    files: AtomicU64,
    bytes: AtomicU64,
    errors: AtomicU64,
    current: Mutex<String>,
    live: bool,
    verbose: u8,
}

impl BackupObserver for Observer {
    fn error(&self, path: &Path, err: &anyhow::Error) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if self.json {
            let m = serde_json::json!({
                "message_type": "error",
                "error": {"message": format!("{err:#}")},
                "during": "archival",
                "item": path.to_string_lossy(),
            });
            eprintln!("{m}");
        } else {
            if self.live {
                eprint!("\r\x1b[2K");
            }
            eprintln!("error: {err:#}");
        }
    }
    fn file_unchanged(&self, path: &Path, bytes: u64) {
        if self.verbose >= 2 {
            if self.json {
                let m = serde_json::json!({
                    "message_type": "verbose_status", "action": "unchanged", "item": path.to_string_lossy(),
                    "data_size": bytes, "data_size_in_repo": 0,
                });
                println!("{m}");
            } else {
                println!("unchanged {}", path.display());
            }
        }
        self.files.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn file_done(&self, path: &Path, bytes: u64, added: u64) {
        if self.verbose >= 2 {
            if self.json {
                let m = serde_json::json!({
                    "message_type": "verbose_status", "action": "new", "item": path.to_string_lossy(),
                    "data_size": bytes, "data_size_in_repo": added,
                });
                println!("{m}");
            } else {
                if self.live {
                    print!("\r\x1b[2K");
                }
                println!(
                    "new       {}, {} ({} added)",
                    path.display(),
                    output::bytes(bytes),
                    output::bytes(added)
                );
            }
        }
        self.files.fetch_add(1, Ordering::Relaxed);
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
        *self.current.lock().unwrap_or_else(|e| e.into_inner()) =
            path.to_string_lossy().into_owned();
    }
}

/// Messages about adopting an interrupted run's packs: lines on a terminal; with --json,
/// warnings as restic's error messages on stderr (the summary counts what was adopted).
struct AdoptReport {
    json: bool,
    quiet: bool,
    verbose: u8,
}

impl cairn_core::repair::Report for AdoptReport {
    fn info(&self, msg: &str) {
        if !self.quiet && !self.json {
            println!("{msg}");
        }
    }
    fn warn(&self, msg: &str) {
        if self.json {
            let m = serde_json::json!({
                "message_type": "error",
                "error": {"message": msg},
                "during": "adopt",
                "item": "",
            });
            eprintln!("{m}");
        } else {
            eprintln!("warning: {msg}");
        }
    }
    fn verbose(&self, msg: &str) {
        if self.verbose > 0 && !self.quiet && !self.json {
            println!("{msg}");
        }
    }
    fn cancelled(&self) -> bool {
        INTERRUPTED.load(Ordering::Relaxed)
    }
}

/// Targets from the positional arguments and the --files-from* lists.
fn targets(a: &Args) -> anyhow::Result<Vec<PathBuf>> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = a.paths.clone();
    for f in &a.files_from {
        for line in read_text(f)?.lines() {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            out.extend(expand_glob(line)?);
        }
    }
    for f in &a.files_from_verbatim {
        out.extend(
            read_text(f)?
                .lines()
                .filter(|l| !l.is_empty())
                .map(PathBuf::from),
        );
    }
    for f in &a.files_from_raw {
        let raw = std::fs::read(f).map_err(|e| anyhow::anyhow!("reading {}: {e}", f.display()))?;
        out.extend(
            raw.split(|b| *b == 0)
                .filter(|p| !p.is_empty())
                .map(|p| PathBuf::from(std::ffi::OsStr::from_bytes(p))),
        );
    }
    Ok(out)
}

fn read_text(f: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(f).map_err(|e| anyhow::anyhow!("reading {}: {e}", f.display()))
}

/// Expands `*`, `?` and `[...]` in each path component, as Go's filepath.Glob does for
/// restic's --files-from; a pattern that matches nothing is kept as it is.
fn expand_glob(pattern: &str) -> anyhow::Result<Vec<PathBuf>> {
    if !pattern.contains(['*', '?', '[']) {
        return Ok(vec![PathBuf::from(pattern)]);
    }
    let mut current = vec![if pattern.starts_with('/') {
        PathBuf::from("/")
    } else {
        PathBuf::new()
    }];
    for comp in pattern.split('/').filter(|c| !c.is_empty()) {
        let mut next = Vec::new();
        if comp.contains(['*', '?', '[']) {
            // Fail early on a malformed pattern, as Go's Glob does.
            archiver::filter::component_matches(comp, b"")
                .map_err(|e| anyhow::anyhow!("invalid pattern {pattern:?}: {e}"))?;
            for dir in &current {
                let list = if dir.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    dir.as_path()
                };
                let Ok(rd) = std::fs::read_dir(list) else {
                    continue;
                };
                let mut names: Vec<_> = rd
                    .flatten()
                    .map(|e| e.file_name())
                    .filter(|n| {
                        use std::os::unix::ffi::OsStrExt;
                        archiver::filter::component_matches(comp, n.as_bytes()).unwrap_or(false)
                    })
                    .collect();
                names.sort();
                next.extend(names.into_iter().map(|n| dir.join(n)));
            }
        } else {
            next = current.iter().map(|d| d.join(comp)).collect();
        }
        current = next;
    }
    Ok(if current.is_empty() {
        vec![PathBuf::from(pattern)]
    } else {
        current
    })
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let from_stdin = a.stdin || a.stdin_from_command;
    let paths = if from_stdin { Vec::new() } else { targets(&a)? };
    if !from_stdin && paths.is_empty() {
        anyhow::bail!("nothing to backup, please specify target files/dirs");
    }
    if a.stdin && !a.paths.is_empty() {
        anyhow::bail!("--stdin was specified and files/dirs were listed as arguments");
    }
    if a.stdin_from_command && a.paths.is_empty() {
        anyhow::bail!("--stdin-from-command needs a command to run as arguments");
    }
    let mut excludes = a.excludes.clone();
    for f in &a.exclude_files {
        excludes.extend(read_pattern_file(f)?);
    }
    let mut iexcludes = a.iexcludes.clone();
    for f in &a.iexclude_files {
        iexcludes.extend(read_pattern_file(f)?);
    }
    let mut markers = a.exclude_if_present.clone();
    if a.exclude_caches {
        markers.push(archiver::select::CACHEDIR_TAG.to_string());
    }
    let select = SelectOptions {
        excludes,
        iexcludes,
        exclude_if_present: markers,
        exclude_larger_than: a
            .exclude_larger_than
            .as_deref()
            .map(archiver::select::parse_size)
            .transpose()?,
        one_file_system: a.one_file_system,
    };
    let time = a.time.as_deref().map(parse_time).transpose()?;
    let compression = g.compression()?;
    let start = Instant::now();
    let mut repo = g.open()?.load_index()?;
    // Packs a killed earlier run stored but never indexed: index them, so that nothing it
    // uploaded is uploaded again.
    let adopted = if a.dry_run {
        Default::default()
    } else {
        let r = AdoptReport {
            json: g.json,
            quiet: g.quiet,
            verbose: g.verbose,
        };
        let mut opts = cairn_core::adopt::AdoptOptions::for_repo(&repo);
        if let Some(dir) = g.cache_dir() {
            opts.witnessed = archiver::resume::witnessed_packs(&dir, &repo.config().id);
        }
        cairn_core::adopt::adopt_orphan_packs(&mut repo, &opts, &r)
            .context("adopting the packs of an interrupted backup")?
    };
    let live = !g.quiet && !g.json && std::io::stdout().is_terminal();
    let obs = Observer {
        json: g.json,
        quiet: g.quiet,
        files: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        current: Mutex::new(String::new()),
        live,
        verbose: g.verbose,
    };
    // Targets that do not exist are warnings, unless none exists at all.
    let existing: Vec<PathBuf> = paths
        .iter()
        .filter(|p| std::fs::symlink_metadata(p).is_ok())
        .cloned()
        .collect();
    for p in paths.iter().filter(|p| !existing.contains(p)) {
        obs.error(
            p,
            &anyhow::anyhow!("{}: no such file or directory", p.display()),
        );
    }
    if existing.is_empty() && !from_stdin {
        anyhow::bail!("all target directories/files do not exist");
    }
    let hostname = a.host.clone().unwrap_or_else(global::hostname);
    let parent_paths = if from_stdin {
        vec![PathBuf::from("/").join(&a.stdin_filename)]
    } else {
        existing.clone()
    };
    let parent = find_parent(&repo, &a, &parent_paths, &hostname, time)?;
    if !g.quiet && !g.json {
        match &parent {
            Some((id, _)) => println!("using parent snapshot {}", id.short()),
            None => println!("no parent snapshot found, will read all files"),
        }
    }
    let tags: Vec<String> = a
        .tags
        .iter()
        .flat_map(|t| t.split(','))
        .filter(|t| !t.is_empty())
        .map(|t| t.to_string())
        .collect();
    let resume_log = match (from_stdin, g.cache_dir()) {
        (false, Some(dir)) => {
            let mut abs: Vec<String> = existing
                .iter()
                .map(|p| archiver::absolute_path(p).map(|p| p.to_string_lossy().into_owned()))
                .collect::<anyhow::Result<_>>()?;
            abs.sort();
            Some(archiver::resume::log_path(
                &dir,
                &repo.config().id,
                &hostname,
                &abs,
            ))
        }
        _ => None,
    };
    let opts = BackupOptions {
        resume_log,
        paths: existing,
        select,
        dry_run: a.dry_run,
        skip_if_unchanged: a.skip_if_unchanged,
        tags,
        hostname,
        time,
        compression,
        with_atime: a.with_atime,
        read_concurrency: a.read_concurrency,
        parent,
        ignore_ctime: a.ignore_ctime,
        ignore_inode: a.ignore_inode,
        program_version: format!("cairn {}", env!("CARGO_PKG_VERSION")),
    };
    let done = AtomicBool::new(false);
    let totals = Totals {
        files: AtomicU64::new(0),
        bytes: AtomicU64::new(0),
        scanned: AtomicBool::new(false),
    };
    let result = std::thread::scope(|s| {
        if live || g.json && !g.quiet {
            s.spawn(|| progress_loop(&obs, &totals, &done, start));
            if !from_stdin {
                s.spawn(|| {
                    archiver::scan(&opts, &totals.files, &totals.bytes, &done);
                    totals.scanned.store(true, Ordering::Relaxed);
                });
            }
        }
        let r = if from_stdin {
            backup_stream(&repo, &opts, &a)
        } else {
            archiver::backup(&repo, &opts, &obs, &INTERRUPTED)
        };
        done.store(true, Ordering::Relaxed);
        r
    });
    if live {
        print!("\r\x1b[2K");
    }
    let res = result?;
    let sm = &res.summary;
    let elapsed = start.elapsed().as_secs_f64();
    if g.json {
        let m = serde_json::json!({
            "message_type": "summary",
            "files_new": sm.files_new, "files_changed": sm.files_changed, "files_unmodified": sm.files_unmodified,
            "dirs_new": sm.dirs_new, "dirs_changed": sm.dirs_changed, "dirs_unmodified": sm.dirs_unmodified,
            "data_blobs": sm.data_blobs, "tree_blobs": sm.tree_blobs, "data_added": sm.data_added,
            "data_added_packed": sm.data_added_packed,
            "total_files_processed": sm.total_files_processed, "total_bytes_processed": sm.total_bytes_processed,
            "total_duration": elapsed, "dry_run": a.dry_run, "files_resumed": res.files_resumed,
            "packs_adopted": adopted.packs, "data_adopted_packed": adopted.bytes,
        });
        let mut m = m;
        if let Some(id) = res.snapshot_id {
            m["snapshot_id"] = id.short().into();
        }
        println!("{m}");
    } else if !g.quiet {
        println!();
        if res.files_resumed > 0 {
            println!(
                "resumed {} files stored by an interrupted earlier run",
                res.files_resumed
            );
        }
        println!(
            "Files:       {:5} new, {:5} changed, {:5} unmodified",
            sm.files_new, sm.files_changed, sm.files_unmodified
        );
        println!(
            "Dirs:        {:5} new, {:5} changed, {:5} unmodified",
            sm.dirs_new, sm.dirs_changed, sm.dirs_unmodified
        );
        if a.dry_run {
            println!(
                "Would add to the repository: {}",
                output::bytes(sm.data_added)
            );
        } else {
            println!(
                "Added to the repository: {} ({} stored)",
                output::bytes(sm.data_added),
                output::bytes(sm.data_added_packed)
            );
        }
        println!();
        println!(
            "processed {} files, {} in {}",
            sm.total_files_processed,
            output::bytes(sm.total_bytes_processed),
            output::duration(elapsed)
        );
        match (res.snapshot_id, a.dry_run) {
            (Some(id), _) => println!("snapshot {} saved", id.short()),
            (None, false) => println!("skipped creating snapshot: nothing changed"),
            (None, true) => {}
        }
    }
    if obs.errors.load(Ordering::Relaxed) > 0 || res.errors > 0 {
        if !g.json {
            eprintln!("Warning: at least one source file could not be read");
        }
        return Ok(crate::exit::INCOMPLETE);
    }
    Ok(crate::exit::OK)
}

/// restic's rule: `--parent` if given; otherwise the latest snapshot of this host with exactly
/// these paths that is not newer than the new snapshot; none with `--force`.
fn find_parent(
    repo: &cairn_core::repository::Repository,
    a: &Args,
    paths: &[PathBuf],
    hostname: &str,
    time: Option<GoTime>,
) -> anyhow::Result<Option<(cairn_core::Id, cairn_core::format::snapshot::Snapshot)>> {
    if a.force {
        return Ok(None);
    }
    if let Some(spec) = &a.parent {
        let id = repo
            .find_id(cairn_core::FileType::Snapshot, spec)
            .map_err(|e| anyhow::anyhow!("invalid --parent {spec:?}: {e}"))?;
        return Ok(Some((id, repo.load_snapshot(&id)?)));
    }
    let mut want: Vec<String> = paths
        .iter()
        .map(|p| archiver::absolute_path(p).map(|p| p.to_string_lossy().into_owned()))
        .collect::<anyhow::Result<_>>()?;
    want.sort();
    let now = time.unwrap_or_else(|| chrono::Local::now().fixed_offset());
    // A parent only saves reading unchanged files: a snapshot file that cannot be read (damaged
    // or hostile) is reported, and the backup goes on without one.
    let all = match repo.list_snapshots() {
        Ok(all) => all,
        Err(e) => {
            eprintln!(
                "warning: no parent snapshot, every file is read: {}",
                format!("{e:#}").replace('\n', " ")
            );
            return Ok(None);
        }
    };
    Ok(all
        .into_iter()
        .filter(|(_, s)| s.hostname == hostname && s.time <= now)
        .filter(|(_, s)| {
            let mut p = s.paths.clone();
            p.sort();
            p == want
        })
        .max_by(|x, y| x.1.time.cmp(&y.1.time)))
}

/// `--stdin`, or `--stdin-from-command`: the command's output is the file, and a command that
/// fails fails the backup (no snapshot).
fn backup_stream(
    repo: &cairn_core::repository::IndexedRepository,
    opts: &BackupOptions,
    a: &Args,
) -> anyhow::Result<archiver::BackupResult> {
    if !a.stdin_from_command {
        return archiver::backup_stdin(
            repo,
            opts,
            &a.stdin_filename,
            std::io::stdin().lock(),
            &INTERRUPTED,
        );
    }
    let mut child = std::process::Command::new(&a.paths[0])
        .args(&a.paths[1..])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| anyhow::anyhow!("starting {}: {e}", a.paths[0].display()))?;
    let out = child.stdout.take().expect("piped stdout");
    // Check the command's exit status before the snapshot is written.
    struct Checked<R> {
        inner: R,
        child: std::process::Child,
        name: String,
    }
    impl<R: std::io::Read> std::io::Read for Checked<R> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = self.inner.read(buf)?;
            if n == 0 && !buf.is_empty() {
                let st = self.child.wait()?;
                if !st.success() {
                    return Err(std::io::Error::other(format!(
                        "command {} failed: {st}",
                        self.name
                    )));
                }
            }
            Ok(n)
        }
    }
    let reader = Checked {
        inner: out,
        child,
        name: a.paths[0].display().to_string(),
    };
    archiver::backup_stdin(repo, opts, &a.stdin_filename, reader, &INTERRUPTED)
}

/// Totals found by the scanner running beside the backup.
struct Totals {
    files: AtomicU64,
    bytes: AtomicU64,
    scanned: AtomicBool,
}

fn progress_loop(obs: &Observer, totals: &Totals, done: &AtomicBool, start: Instant) {
    let mut last = Instant::now();
    while !done.load(Ordering::Relaxed) {
        std::thread::sleep(Duration::from_millis(100));
        if last.elapsed() < Duration::from_secs(1) || obs.quiet {
            continue;
        }
        last = Instant::now();
        let files = obs.files.load(Ordering::Relaxed);
        let bytes = obs.bytes.load(Ordering::Relaxed);
        let (total_files, total_bytes) = (
            totals.files.load(Ordering::Relaxed),
            totals.bytes.load(Ordering::Relaxed),
        );
        let secs = start.elapsed().as_secs_f64();
        let fraction = if total_bytes > 0 {
            (bytes as f64 / total_bytes as f64).min(1.0)
        } else {
            0.0
        };
        // An ETA only once the scanner knows the whole size and some progress was made.
        let remaining = (totals.scanned.load(Ordering::Relaxed) && fraction > 0.0)
            .then(|| secs / fraction - secs);
        let cur = obs
            .current
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if obs.json {
            let mut m = serde_json::json!({
                "message_type": "status", "seconds_elapsed": secs as u64,
            });
            if let Some(r) = remaining {
                m["seconds_remaining"] = (r as u64).into();
            }
            m["percent_done"] = fraction.into();
            m["total_files"] = total_files.into();
            m["files_done"] = files.into();
            m["total_bytes"] = total_bytes.into();
            m["bytes_done"] = bytes.into();
            m["error_count"] = obs.errors.load(Ordering::Relaxed).into();
            m["current_files"] = serde_json::json!([cur]);
            println!("{m}");
        } else {
            let rate = bytes as f64 / secs.max(0.001);
            let eta = remaining
                .map(|r| format!(" ETA {}", output::duration(r)))
                .unwrap_or_default();
            let mut line = format!(
                "[{}] {:.2}%  {} files {}, total {} files {}, {}/s, {} errors{eta}  {}",
                output::duration(secs),
                fraction * 100.0,
                files,
                output::bytes(bytes),
                total_files,
                output::bytes(total_bytes),
                output::bytes(rate as u64),
                obs.errors.load(Ordering::Relaxed),
                cur
            );
            let width = terminal_width().saturating_sub(1).max(40);
            if let Some((i, _)) = line.char_indices().nth(width) {
                line.truncate(i);
            }
            print!("\r\x1b[2K{line}");
            let _ = std::io::stdout().flush();
        }
    }
}

fn terminal_width() -> usize {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize struct we own.
    if unsafe { libc::ioctl(1, libc::TIOCGWINSZ, &mut ws) } == 0 && ws.ws_col > 0 {
        ws.ws_col as usize
    } else {
        120
    }
}

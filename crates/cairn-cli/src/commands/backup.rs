mod print;

use crate::global::{self, GlobalOptions};
use crate::printer::{printer, During};
use crate::signals::INTERRUPTED;
use anyhow::Context;
use cairn_core::archiver::select::{patterns_with_files, SelectOptions};
use cairn_core::archiver::{self, BackupOptions};
use cairn_core::observe::Observer;
use cairn_core::util::timeparse::{self, LocalTimeError};
use print::{print_summary, progress_loop, Totals};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

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
    /// Use this parent snapshot (default: latest snapshot in the group determined by
    /// --group-by and not newer than the timestamp determined by --time)
    #[arg(long)]
    parent: Option<String>,
    /// Group snapshots by host, paths and/or tags, separated by comma (disable grouping
    /// with ''), to choose the parent
    #[arg(short = 'g', long, value_name = "group", default_value = "host,paths")]
    group_by: String,
    /// Do not run scanner to estimate size of backup
    #[arg(long)]
    no_scan: bool,
    /// Excludes online-only cloud files (Windows only: refused here, as restic does)
    #[arg(long, hide = true)]
    exclude_cloud_files: bool,
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
    if a.exclude_cloud_files && !from_stdin {
        anyhow::bail!("exclude-cloud-files is only supported on Windows");
    }
    if a.stdin && !a.paths.is_empty() {
        anyhow::bail!("--stdin was specified and files/dirs were listed as arguments");
    }
    if a.stdin_from_command && a.paths.is_empty() {
        anyhow::bail!("--stdin-from-command needs a command to run as arguments");
    }
    let excludes = patterns_with_files(&a.excludes, &a.exclude_files)?;
    let iexcludes = patterns_with_files(&a.iexcludes, &a.iexclude_files)?;
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
    let time = a
        .time
        .as_deref()
        .map(|s| {
            timeparse::parse_local_seconds(s).map_err(|e| match e {
                LocalTimeError::NoSuchLocalTime => anyhow::anyhow!("invalid --time {s:?}: {e}"),
                LocalTimeError::Format(_) => {
                    anyhow::anyhow!("invalid --time {s:?} (want 'YYYY-MM-DD hh:mm:ss'): {e}")
                }
            })
        })
        .transpose()?;
    let compression = g.compression()?;
    let start = Instant::now();
    let mut repo = g.open()?.load_index()?;
    // Packs a killed earlier run stored but never indexed: index them, so that nothing it
    // uploaded is uploaded again.
    let adopted = if a.dry_run {
        Default::default()
    } else {
        let r = printer(g, During::Adopt, false);
        let opts = cairn_core::adopt::AdoptOptions::for_backup(&repo, g.cache_dir().as_deref());
        cairn_core::adopt::adopt_orphan_packs(&mut repo, &opts, &r)
            .context("adopting the packs of an interrupted backup")?
    };
    let live = !g.quiet && !g.json && std::io::stdout().is_terminal();
    let obs = printer(g, During::Backup, live);
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
    let tags: Vec<String> = a
        .tags
        .iter()
        .flat_map(|t| t.split(','))
        .filter(|t| !t.is_empty())
        .map(|t| t.to_string())
        .collect();
    let parent = cairn_core::snapshots::find_parent(
        &repo,
        &cairn_core::snapshots::ParentQuery {
            force: a.force,
            parent: a.parent.as_deref(),
            hostname: &hostname,
            targets: &parent_paths,
            time: time.unwrap_or_else(|| chrono::Local::now().fixed_offset()),
            group: cairn_core::snapshots::GroupBy::parse(&a.group_by)
                .map_err(anyhow::Error::msg)?,
            tags: &tags,
        },
        &crate::printer::SELECTION,
    )?;
    if !g.quiet && !g.json {
        match &parent {
            Some((id, _)) => println!("using parent snapshot {}", id.short()),
            None => println!("no parent snapshot found, will read all files"),
        }
    }
    let resume_log = match (from_stdin, g.cache_dir()) {
        (false, Some(dir)) => Some(archiver::resume::log_for_targets(
            &dir,
            &repo.config().id,
            &hostname,
            &existing,
        )?),
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
            if !from_stdin && !a.no_scan {
                s.spawn(|| {
                    archiver::scan(&opts, &totals.files, &totals.bytes, &done);
                    totals.scanned.store(true, Ordering::Relaxed);
                });
            }
        }
        let r = if from_stdin {
            backup_stream(&repo, &opts, &a)
        } else {
            archiver::backup(&repo, &opts, &obs, &INTERRUPTED).map_err(anyhow::Error::from)
        };
        done.store(true, Ordering::Relaxed);
        r
    });
    if live {
        print!("\r\x1b[2K");
    }
    let res = result?;
    let elapsed = start.elapsed().as_secs_f64();
    print_summary(&res, &adopted, elapsed, a.dry_run, g);
    if obs.tally().errors.load(Ordering::Relaxed) > 0 || res.errors > 0 {
        if !g.json {
            eprintln!("Warning: at least one source file could not be read");
        }
        return Ok(crate::exit::INCOMPLETE);
    }
    Ok(crate::exit::OK)
}

/// `--stdin`, or `--stdin-from-command`: the command's output is the file, and a command that
/// fails fails the backup (no snapshot).
fn backup_stream(
    repo: &cairn_core::repository::IndexedRepository,
    opts: &BackupOptions,
    a: &Args,
) -> anyhow::Result<archiver::BackupResult> {
    if !a.stdin_from_command {
        return Ok(archiver::backup_stdin(
            repo,
            opts,
            &a.stdin_filename,
            std::io::stdin().lock(),
            &INTERRUPTED,
        )?);
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
    Ok(archiver::backup_stdin(
        repo,
        opts,
        &a.stdin_filename,
        reader,
        &INTERRUPTED,
    )?)
}

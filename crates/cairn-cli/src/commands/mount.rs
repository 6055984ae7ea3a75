//! `cairn mount`: restic's flags translated for cairn-mount, which does the serving.

use super::snapshot_ref;
use crate::global::GlobalOptions;
use std::path::PathBuf;

#[derive(clap::Args)]
pub struct Args {
    /// Directory to mount the repository at (an existing, empty directory)
    mountpoint: PathBuf,
    /// Use 'root' as the owner of files and dirs
    #[arg(long)]
    owner_root: bool,
    /// Allow other users to access the data in the mounted directory
    #[arg(long)]
    allow_other: bool,
    /// For 'allow-other', ignore Unix permissions and allow users to read all snapshot files
    #[arg(long)]
    no_default_permissions: bool,
    #[command(flatten)]
    filter: snapshot_ref::Filter,
    /// Set template for path names (can be specified multiple times)
    #[arg(long = "path-template", value_name = "template")]
    path_templates: Vec<String>,
    /// Set template to use for times
    #[arg(long, visible_alias = "snapshot-template", value_name = "template",
          default_value = cairn_mount::layout::DEFAULT_TIME_TEMPLATE)]
    time_template: String,
    /// Memory for decrypted file contents (cairn's own; restic has a fixed 64 MiB)
    #[arg(long, value_name = "size", default_value = "64M")]
    blob_cache: String,
}

pub fn run(a: Args, g: &GlobalOptions) -> anyhow::Result<i32> {
    let cache = cairn_core::archiver::select::parse_size(&a.blob_cache)
        .map_err(|e| anyhow::anyhow!("--blob-cache: {e}"))?;
    // Checked before the repository is opened (and the password asked for).
    let location = g.repository()?;
    let local = (!cairn_core::is_remote(&location))
        .then(|| PathBuf::from(location.strip_prefix("local:").unwrap_or(&location)));
    cairn_mount::check_mountpoint(&a.mountpoint, local.as_deref())?;
    let repo = g.open()?.load_index()?;
    limit_heap_growth();
    let id = repo.config().id.clone();
    let opts = cairn_mount::MountOptions {
        filter: a.filter.core(),
        path_templates: if a.path_templates.is_empty() {
            cairn_mount::MountOptions::default().path_templates
        } else {
            a.path_templates
        },
        time_template: a.time_template,
        owner_root: a.owner_root,
        allow_other: a.allow_other,
        no_default_permissions: a.no_default_permissions,
        blob_cache_bytes: usize::try_from(cache).unwrap_or(usize::MAX),
        read_threads: repo.connections().clamp(4, 16),
        fs_name: format!("cairn:{}", id.get(..10).unwrap_or(&id)),
    };
    let quiet = g.quiet;
    if !quiet {
        eprintln!("Now serving the repository at {}", a.mountpoint.display());
        eprintln!("Use another terminal or tool to browse the contents of this folder.");
        eprintln!("When finished, quit with Ctrl-c here or umount the mountpoint.");
    }
    cairn_mount::mount(
        repo,
        &a.mountpoint,
        opts,
        &crate::signals::INTERRUPTED,
        Box::new(|msg| eprintln!("mount: {msg}")),
    )?;
    Ok(crate::exit::OK)
}

/// Blobs of up to 8 MiB pass through the blob cache for as long as the mount lives. With
/// glibc's sliding mmap threshold they end up in the heap once one has been freed, and the
/// holes evicted blobs leave grow the heap well past the cache's size. A fixed threshold
/// keeps large blobs in their own mappings, returned to the system when evicted (peak RSS
/// reading the Linux tree: ~300 MiB before, ~250 MiB after, with a 64 MiB cache).
#[cfg(target_env = "gnu")]
fn limit_heap_growth() {
    // SAFETY: mallopt only changes allocator parameters.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

#[cfg(not(target_env = "gnu"))]
fn limit_heap_growth() {}

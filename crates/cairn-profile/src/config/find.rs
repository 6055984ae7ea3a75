//! Where the configuration file is when `--config` does not say: resticprofile's places on
//! Linux and BSD, plus cairn's own (`~/.config/cairn/`, `/etc/cairn/`).

use std::path::{Path, PathBuf};

/// resticprofile's default file name, tried with each extension in its order.
const DEFAULT_NAME: &str = "profiles";
const EXTENSIONS: &[&str] = &["conf", "yaml", "toml", "json", "yml"];

/// The directories searched, in order.
pub fn search_dirs() -> Vec<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let config_home = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".config")));
    let mut dirs = vec![std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))];
    if let Some(c) = &config_home {
        dirs.push(c.join("cairn"));
        dirs.push(c.join("resticprofile"));
    }
    let xdg_dirs = std::env::var("XDG_CONFIG_DIRS")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "/etc/xdg".to_string());
    dirs.extend(
        xdg_dirs
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| Path::new(d).join("resticprofile")),
    );
    dirs.push(PathBuf::from("/etc/cairn"));
    for base in ["/usr/local/etc", "/etc", "/opt/local/etc"] {
        let base = Path::new(base);
        dirs.push(base.to_path_buf());
        dirs.push(base.join("restic"));
        dirs.push(base.join("resticprofile"));
    }
    if let Some(h) = home {
        dirs.push(h);
    }
    dirs
}

/// The file to read: `explicit` as given (a name without extension is tried with each
/// extension), else `profiles.*` in the first directory of [`search_dirs`] that has one.
pub fn find_config_file(explicit: Option<&Path>) -> anyhow::Result<PathBuf> {
    if let Some(p) = explicit {
        if p.is_file() {
            return Ok(p.to_path_buf());
        }
        if p.extension().is_none() {
            if let Some(found) = with_extensions(p) {
                return Ok(found);
            }
        }
        // A bare name is looked for where resticprofile looks.
        if p.components().count() == 1 {
            for dir in search_dirs() {
                let candidate = dir.join(p);
                if candidate.is_file() {
                    return Ok(candidate);
                }
                if p.extension().is_none() {
                    if let Some(found) = with_extensions(&candidate) {
                        return Ok(found);
                    }
                }
            }
        }
        anyhow::bail!("{}: configuration file not found", p.display());
    }
    for dir in search_dirs() {
        if let Some(found) = with_extensions(&dir.join(DEFAULT_NAME)) {
            return Ok(found);
        }
    }
    anyhow::bail!(
        "no configuration file (profiles.conf, .yaml, .toml or .json) in {}; use --config FILE",
        search_dirs()
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn with_extensions(stem: &Path) -> Option<PathBuf> {
    EXTENSIONS.iter().find_map(|ext| {
        let mut s = stem.as_os_str().to_owned();
        s.push(".");
        s.push(ext);
        let p = PathBuf::from(s);
        p.is_file().then_some(p)
    })
}

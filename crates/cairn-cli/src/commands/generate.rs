//! `generate`: shell completions and man pages, made from the same clap definition that
//! parses the command line, so they never disagree with it.

use crate::global::GlobalOptions;
use anyhow::Context;
use clap_complete::Shell;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args)]
pub struct Args {
    /// Write bash completion file (`-` for stdout)
    #[arg(long, value_name = "file")]
    bash_completion: Option<PathBuf>,
    /// Write fish completion file (`-` for stdout)
    #[arg(long, value_name = "file")]
    fish_completion: Option<PathBuf>,
    /// Write man pages to directory
    #[arg(long, value_name = "directory")]
    man: Option<PathBuf>,
    /// Write powershell completion file (`-` for stdout)
    #[arg(long, value_name = "file")]
    powershell_completion: Option<PathBuf>,
    /// Write zsh completion file (`-` for stdout)
    #[arg(long, value_name = "file")]
    zsh_completion: Option<PathBuf>,
}

pub fn run(a: Args, _g: &GlobalOptions) -> anyhow::Result<i32> {
    let shells = [
        (Shell::Bash, &a.bash_completion),
        (Shell::Fish, &a.fish_completion),
        (Shell::PowerShell, &a.powershell_completion),
        (Shell::Zsh, &a.zsh_completion),
    ];
    let mut did = false;
    for (shell, dest) in shells {
        if let Some(dest) = dest {
            let mut buf = Vec::new();
            clap_complete::generate(shell, &mut crate::cli_command(), "cairn", &mut buf);
            write_out(dest, &buf)?;
            did = true;
        }
    }
    if let Some(dir) = &a.man {
        write_man_pages(dir)?;
        did = true;
    }
    if !did {
        anyhow::bail!("nothing to do, please specify at least one output file/dir");
    }
    Ok(crate::exit::OK)
}

fn write_out(dest: &Path, data: &[u8]) -> anyhow::Result<()> {
    if dest.as_os_str() == "-" {
        std::io::stdout().write_all(data)?;
        return Ok(());
    }
    std::fs::write(dest, data).with_context(|| format!("writing {}", dest.display()))
}

/// One page per command, named as restic names its pages (`cairn-backup.1`, and
/// `cairn-key-add.1` for sub-commands).
fn write_man_pages(dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut todo = vec![(String::from("cairn"), crate::cli_command())];
    while let Some((name, cmd)) = todo.pop() {
        let cmd = cmd.name(name.clone());
        for sub in cmd.get_subcommands() {
            if sub.get_name() != "help" {
                todo.push((format!("{name}-{}", sub.get_name()), sub.clone()));
            }
        }
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        let path = dir.join(format!("{name}.1"));
        std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
        println!("writing man page {}", path.display());
    }
    Ok(())
}

//! Collecting scenario files from the paths given on the command line.

use std::fs;
use std::path::{Path, PathBuf};

use relance_dsl::Source;

/// A problem with the paths given: reported as a usage error (exit 2).
#[derive(Debug)]
pub struct PathError(pub String);

/// Every `*.relance` file under `paths`: files are taken as given (whatever their
/// extension), folders are searched recursively, in name order.
pub fn collect(paths: &[PathBuf]) -> Result<Vec<PathBuf>, PathError> {
    let mut out = Vec::new();
    for p in paths {
        let meta = fs::metadata(p).map_err(|e| PathError(format!("cannot read `{}`: {}", p.display(), lower(&e))))?;
        if meta.is_dir() {
            let before = out.len();
            walk(p, &mut out)?;
            if out.len() == before {
                return Err(PathError(format!("no `.relance` file in folder `{}`", p.display())));
            }
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), PathError> {
    let rd =
        fs::read_dir(dir).map_err(|e| PathError(format!("cannot read folder `{}`: {}", dir.display(), lower(&e))))?;
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            walk(&p, out)?;
        } else if p.extension().is_some_and(|e| e == "relance") {
            out.push(p);
        }
    }
    Ok(())
}

/// Reads the files as sources named by their path as given.
pub fn read(paths: &[PathBuf]) -> Result<Vec<Source>, PathError> {
    paths
        .iter()
        .map(|p| {
            fs::read_to_string(p)
                .map(|t| Source::new(p.display().to_string(), t))
                .map_err(|e| PathError(format!("cannot read `{}`: {}", p.display(), lower(&e))))
        })
        .collect()
}

/// An I/O error message in the house style (lowercase start, no OS error number noise).
pub fn lower(e: &std::io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s).to_string();
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().collect::<String>() + c.as_str(),
        None => s,
    }
}

/// Prints a usage error the way clap does and returns the usage status.
pub fn usage(e: &PathError) -> crate::Status {
    eprintln!("error: {}", e.0);
    crate::Status::Usage
}

//! From `--input` / `--output` to a list of jobs: one input and one output each, with the
//! directory tree mirrored and the suffix added or removed.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use super::Mode;
use super::compat::ENCRYPTED_SUFFIX;
use super::error::{CliError, quote};

/// Where a job reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Input {
    /// Standard input.
    Stdin,
    /// A file.
    File(PathBuf),
}

/// Where a job writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Output {
    /// Standard output.
    Stdout,
    /// A path: a regular file is written to a temporary file beside it and renamed on
    /// success; a device, FIFO or descriptor link is written in place.
    File(PathBuf),
}

impl Input {
    /// As shown in messages and metadata.
    pub fn display(&self) -> String {
        match self {
            Input::Stdin => "<stdin>".to_owned(),
            Input::File(p) => p.display().to_string(),
        }
    }
}

impl Output {
    /// As shown in messages and metadata.
    pub fn display(&self) -> String {
        match self {
            Output::Stdout => "<stdout>".to_owned(),
            Output::File(p) => p.display().to_string(),
        }
    }
}

/// One file to encrypt or decrypt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Job {
    /// The input.
    pub input: Input,
    /// The output.
    pub output: Output,
}

/// The jobs and the notes about what was left out.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    /// What to do, in order.
    pub jobs: Vec<Job>,
    /// Warnings about skipped files.
    pub skipped: Vec<String>,
    /// How many input files were skipped for their name or type (not for
    /// `--no-overwrite`): a run that skips all of them fails.
    pub unusable: usize,
}

/// What the planner needs from the command line.
#[derive(Debug)]
pub(crate) struct PlanArgs<'a> {
    /// Encrypt or decrypt.
    pub mode: Mode,
    /// `--input`.
    pub input: &'a str,
    /// `--output`.
    pub output: &'a str,
    /// `--recursive`.
    pub recursive: bool,
    /// `--suffix`.
    pub suffix: &'a str,
    /// `--no-overwrite`.
    pub no_overwrite: bool,
    /// aws-encryption-cli's naming: the suffix is appended in both modes (decrypt writes
    /// `NAME.decrypted` by default), never removed.
    pub official_naming: bool,
}

/// The output file name for an input file name, or `None` when a decrypt input lacks the
/// suffix. Encrypt appends the suffix. Decrypt removes it, or else aws-encryption-cli's
/// `.encrypted` (so trees it wrote decrypt natively); with `official`, decrypt appends the
/// suffix as aws-encryption-cli does.
fn output_name(
    mode: Mode,
    name: &std::ffi::OsStr,
    suffix: &str,
    official: bool,
) -> Option<OsString> {
    match mode {
        Mode::Encrypt => {
            let mut n = name.to_os_string();
            n.push(suffix);
            Some(n)
        }
        Mode::Decrypt if official => {
            let mut n = name.to_os_string();
            n.push(suffix);
            Some(n)
        }
        Mode::Decrypt => {
            let s = name.to_str()?;
            let stem = s
                .strip_suffix(suffix)
                .filter(|stem| !stem.is_empty())
                .or_else(|| s.strip_suffix(ENCRYPTED_SUFFIX))?;
            (!stem.is_empty()).then(|| OsString::from(stem))
        }
    }
}

/// Whether two paths name the same existing file.
fn same_file(a: &Path, b: &Path) -> bool {
    match (fs::canonicalize(a), fs::canonicalize(b)) {
        (Ok(x), Ok(y)) => x == y,
        _ => false,
    }
}

/// Plans the jobs.
///
/// # Errors
/// Usage errors (a directory without `--recursive`, stdin into a directory, input and
/// output the same file, a name that cannot be derived) and I/O errors (an input that
/// does not exist, a directory that cannot be read or created).
pub(crate) fn plan(a: &PlanArgs<'_>) -> Result<Plan, CliError> {
    let mut plan = Plan::default();
    let out_path = (a.output != "-").then(|| PathBuf::from(a.output));
    let out_is_dir = out_path.as_deref().is_some_and(Path::is_dir);
    if a.input == "-" {
        let output = match out_path {
            None => Output::Stdout,
            Some(p) if out_is_dir => {
                return Err(CliError::usage(format!(
                    "output {} is a directory: name an output file for stdin",
                    quote(&p)
                )));
            }
            Some(p) => Output::File(p),
        };
        plan.push(Input::Stdin, output, a.no_overwrite);
        return Ok(plan);
    }
    let input = PathBuf::from(a.input);
    let meta = fs::metadata(&input).map_err(|e| CliError::io_path("reading", &input, &e))?;
    if meta.is_dir() {
        if !a.recursive {
            return Err(CliError::usage(format!(
                "input {} is a directory: add --recursive",
                quote(&input)
            )));
        }
        let Some(out_root) = out_path else {
            return Err(CliError::usage(
                "a directory input needs an output directory, not -",
            ));
        };
        if out_root.exists() && !out_is_dir {
            return Err(CliError::usage(format!(
                "input {} is a directory but output {} is not",
                quote(&input),
                quote(&out_root)
            )));
        }
        fs::create_dir_all(&out_root)
            .map_err(|e| CliError::io_path("creating directory", &out_root, &e))?;
        let out_canon =
            fs::canonicalize(&out_root).map_err(|e| CliError::io_path("reading", &out_root, &e))?;
        walk(a, &input, &out_root, &out_canon, &mut plan)?;
        return Ok(plan);
    }
    let output = match out_path {
        None => Output::Stdout,
        Some(dir) if out_is_dir => {
            let name = input.file_name().unwrap_or(input.as_os_str());
            match output_name(a.mode, name, a.suffix, a.official_naming) {
                Some(n) => Output::File(dir.join(n)),
                None => {
                    return Err(CliError::usage(format!(
                        "cannot name the output of {} in directory {}: its name does not end \
                         with the suffix '{}' or '{ENCRYPTED_SUFFIX}' (give --output FILE or \
                         --suffix)",
                        quote(&input),
                        quote(&dir),
                        a.suffix
                    )));
                }
            }
        }
        Some(p) => Output::File(p),
    };
    if let Output::File(o) = &output
        && same_file(&input, o)
    {
        return Err(CliError::usage(format!(
            "input and output are the same file: {}",
            quote(o)
        )));
    }
    plan.push(Input::File(input), output, a.no_overwrite);
    Ok(plan)
}

impl Plan {
    fn push(&mut self, input: Input, output: Output, no_overwrite: bool) {
        if no_overwrite
            && let Output::File(o) = &output
            && o.exists()
        {
            self.skipped.push(format!(
                "skipping {}: output {} exists (--no-overwrite)",
                input.display(),
                quote(o)
            ));
            return;
        }
        self.jobs.push(Job { input, output });
    }
}

/// Walks `dir` in name order, mirroring it under `out_dir`. Symbolic links to files are
/// followed, links to directories are not; the output tree is never descended into.
fn walk(
    a: &PlanArgs<'_>,
    dir: &Path,
    out_dir: &Path,
    out_canon: &Path,
    plan: &mut Plan,
) -> Result<(), CliError> {
    let read_err = |e: io::Error| CliError::io_path("reading directory", dir, &e);
    let mut entries = fs::read_dir(dir)
        .map_err(read_err)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(read_err)?;
    entries.sort_by_key(|e| e.file_name());
    for entry in entries {
        let path = entry.path();
        let name = entry.file_name();
        let ft = entry.file_type().map_err(read_err)?;
        let is_dir = ft.is_dir();
        let is_file = ft.is_file() || (ft.is_symlink() && path.is_file());
        if is_dir {
            if fs::canonicalize(&path).is_ok_and(|c| c == out_canon) {
                continue;
            }
            walk(a, &path, &out_dir.join(&name), out_canon, plan)?;
        } else if is_file {
            let Some(out_name) = output_name(a.mode, &name, a.suffix, a.official_naming) else {
                plan.unusable += 1;
                plan.skipped.push(format!(
                    "skipping {}: its name does not end with '{}' or '{ENCRYPTED_SUFFIX}'",
                    quote(&path),
                    a.suffix
                ));
                continue;
            };
            let out = out_dir.join(out_name);
            if same_file(&path, &out) {
                plan.unusable += 1;
                plan.skipped.push(format!(
                    "skipping {}: it would be its own output",
                    quote(&path)
                ));
                continue;
            }
            plan.push(Input::File(path), Output::File(out), a.no_overwrite);
        } else {
            plan.unusable += 1;
            plan.skipped
                .push(format!("skipping {}: not a regular file", quote(&path)));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn names_gain_and_lose_the_suffix() {
        let n = |m, s: &str, suf| output_name(m, OsStr::new(s), suf, false);
        assert_eq!(
            n(Mode::Encrypt, "a.txt", ".esdk"),
            Some("a.txt.esdk".into())
        );
        assert_eq!(
            n(Mode::Decrypt, "a.txt.esdk", ".esdk"),
            Some("a.txt".into())
        );
        assert_eq!(n(Mode::Decrypt, "a.txt", ".esdk"), None);
        assert_eq!(n(Mode::Decrypt, ".esdk", ".esdk"), None);
        assert_eq!(n(Mode::Decrypt, "x.enc", ".enc"), Some("x".into()));
        assert_eq!(n(Mode::Decrypt, "x", ""), Some("x".into()));
        // aws-encryption-cli's suffix is recognised natively.
        assert_eq!(
            n(Mode::Decrypt, "a.txt.encrypted", ".esdk"),
            Some("a.txt".into())
        );
        assert_eq!(n(Mode::Decrypt, ".encrypted", ".esdk"), None);
        // Its own naming in its syntax: appended both ways.
        let o = |m, s: &str, suf| output_name(m, OsStr::new(s), suf, true);
        assert_eq!(
            o(Mode::Encrypt, "a.txt", ".encrypted"),
            Some("a.txt.encrypted".into())
        );
        assert_eq!(
            o(Mode::Decrypt, "a.txt.encrypted", ".decrypted"),
            Some("a.txt.encrypted.decrypted".into())
        );
        assert_eq!(o(Mode::Decrypt, "a", ""), Some("a".into()));
    }
}

//! The `esdk` command-line tool.
//!
//! ```text
//! esdk keygen --output my.key
//! esdk encrypt --raw-aes-key my.key -c purpose=backup -i notes.txt -o notes.txt.esdk
//! esdk decrypt --raw-aes-key my.key -c purpose=backup -i notes.txt.esdk -o notes.txt
//! esdk encrypt --raw-aes-key my.key --raw-rsa-key team.pub.pem -r -i photos/ -o vault/
//! tar c dir | esdk encrypt --raw-aes-key my.key -i - -o - > dir.tar.esdk
//! esdk encrypt --kms-key arn:aws:kms:us-west-2:111122223333:key/... -i db.dump -o db.esdk
//! esdk decrypt --kms-discovery --discovery-account 111122223333 --caching -r -i in/ -o out/
//! ```
//!
//! Layout: [`args`] (the command line), [`keys`] (key files and keyrings), [`kms`] (KMS
//! keyrings and their front end), [`paths`] (jobs
//! from `--input`/`--output`), [`run`] (streaming one job), [`meta`] (`--metadata-output`),
//! [`progress`], [`keygen`], [`error`] (messages and exit codes), [`mapped`] (input files
//! memory-mapped on encrypt: the tool's one `unsafe` call).
//!
//! Every job streams in memory bounded by the frame length (times `--threads`) through the
//! library's [`esdk::EncryptingWriter::encrypt_from`] / [`esdk::DecryptingReader::decrypt_to`]
//! (frames sealed and opened on `--threads` threads) with [`esdk::DEFAULT_PROVIDER`], and
//! writes a regular output file to a temporary file renamed into place only on success
//! (other outputs, such as devices and FIFOs, are written in place: see [`run`]).

mod args;
mod branch_key;
mod compat;
mod error;
mod keygen;
mod keys;
mod kms;
mod mapped;
mod meta;
mod paths;
mod progress;
mod range;
mod run;

use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches};
use esdk::caching::{CachingCmm, LocalCache};
use esdk::{Config, EncryptOptions, Keyring, MultiKeyring};

use args::{Cli, Command, CommonArgs};
use error::{CliError, Code};
use meta::{MetadataSink, Record};
use paths::{Output, PlanArgs};
use progress::Progress;

/// Encrypt or decrypt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `esdk encrypt`.
    Encrypt,
    /// `esdk decrypt`.
    Decrypt,
}

impl Mode {
    /// The metadata's `mode` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Encrypt => "encrypt",
            Mode::Decrypt => "decrypt",
        }
    }
}

/// Runs the command line and returns the process exit code.
pub(crate) fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // aws-encryption-cli's syntax: checked and translated into esdk's (see `compat`).
    let (args, official) = if compat::detect(&args) {
        match compat::parse(&args) {
            Err(e) => return clap_exit(&e),
            Ok(Err(e)) => {
                eprintln!("esdk: {e}");
                return ExitCode::from(e.code as u8);
            }
            Ok(Ok(t)) => (t.args.into_iter().map(Into::into).collect(), t.official),
        }
    } else {
        (args, compat::Official::default())
    };
    let matches = match Cli::command().try_get_matches_from(args) {
        Ok(m) => m,
        Err(e) => return clap_exit(&e),
    };
    let result = Cli::from_arg_matches(&matches)
        .map_err(|e| CliError::usage(e.to_string()))
        .and_then(|cli| dispatch(&cli, &matches, official));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("esdk: {e}");
            ExitCode::from(e.code as u8)
        }
    }
}

/// Prints a clap error (or help) and returns its exit code.
fn clap_exit(e: &clap::Error) -> ExitCode {
    let code = e.exit_code();
    let _ = e.print();
    ExitCode::from(u8::try_from(code).unwrap_or(2))
}

/// `-v`: log lines on stderr through `tracing` (target `esdk`): -v each file, -vv also the
/// settings, -vvv also the AWS SDK's informational log, -vvvv its debug log. Nothing is
/// installed without `-v`, and `-q` conflicts with it.
fn init_logging(verbose: u8) {
    use tracing::level_filters::LevelFilter;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    let (ours, others) = match verbose {
        0 => return,
        1 => (LevelFilter::INFO, LevelFilter::OFF),
        2 => (LevelFilter::DEBUG, LevelFilter::OFF),
        3 => (LevelFilter::DEBUG, LevelFilter::INFO),
        _ => (LevelFilter::DEBUG, LevelFilter::DEBUG),
    };
    let filter = tracing_subscriber::filter::Targets::new()
        .with_default(others)
        .with_target(LOG, ours);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(true);
    // A second initialisation (none happens) would only keep the first.
    let _ = tracing_subscriber::registry()
        .with(layer)
        .with(filter)
        .try_init();
}

/// The `tracing` target of the tool's own log lines.
const LOG: &str = "esdk";

fn dispatch(
    cli: &Cli,
    matches: &ArgMatches,
    official: compat::Official,
) -> Result<ExitCode, CliError> {
    let sub = matches
        .subcommand()
        .map(|(_, m)| m)
        .ok_or_else(|| CliError::usage("no subcommand"))?;
    match &cli.command {
        Command::Encrypt(a) => {
            let cfg = config(&a.common);
            let suite = a.suite.unwrap_or_else(|| default_suite(&a.common, &cfg));
            if !a.common.kms_rsa_key.is_empty() && suite.signature().is_some() {
                return Err(CliError::usage(format!(
                    "suite {suite} signs with ECDSA, which --kms-rsa-key refuses (its wrapping \
                     key is public, so a signature would prove nothing): use 0x0478 (or 0x0178 \
                     under forbid-encrypt-allow-decrypt)"
                )));
            }
            cfg.commitment_policy.check_encrypt(suite).map_err(|_| {
                CliError::usage(format!(
                    "suite {suite} is not allowed by --commitment-policy {}: committing \
                         suites (0x0478, 0x0578) need require-encrypt-*, the others \
                         forbid-encrypt-allow-decrypt",
                    policy_name(&a.common)
                ))
            })?;
            let opts = EncryptOptions::new()
                .with_suite(suite)
                .with_frame_length(a.frame_length);
            crypt(
                Mode::Encrypt,
                &a.common,
                sub,
                cfg,
                opts,
                run::SignedRelease::default(),
                official,
            )
        }
        Command::Decrypt(a) => {
            let mut cfg = config(&a.common);
            cfg.unsigned_only = a.decrypt_unsigned;
            cfg.max_body_len = a.max_length;
            let signed = run::SignedRelease {
                stream_unverified: a.stream_unverified,
                buffer_limit: a.signed_buffer_limit,
                range: a.range.map(|range| range::Request {
                    range,
                    unverified_signed: a.range_unverified_signed,
                    quiet: a.common.quiet,
                }),
            };
            if a.range.is_some() && a.common.recursive {
                return Err(CliError::usage(
                    "--range decrypts part of one message: give one input file, not --recursive",
                ));
            }
            crypt(
                Mode::Decrypt,
                &a.common,
                sub,
                cfg,
                EncryptOptions::new(),
                signed,
                official,
            )
        }
        Command::Keygen(a) => keygen::run(a).map(|()| ExitCode::SUCCESS),
        Command::BranchKey(a) => branch_key::run(a),
    }
}

/// The suite when `--suite` is not given: the policy's default, or its unsigned twin with
/// `--kms-rsa-key` (0x0478, or 0x0178 under forbid-encrypt-allow-decrypt), which refuses
/// signing suites.
fn default_suite(c: &CommonArgs, cfg: &Config) -> esdk::AlgorithmSuite {
    use esdk::AlgorithmSuite as S;
    match cfg.commitment_policy.default_suite() {
        S::Aes256GcmHkdfSha512CommitKeyEcdsaP384 if !c.kms_rsa_key.is_empty() => {
            S::Aes256GcmHkdfSha512CommitKey
        }
        S::Aes256GcmIv12Tag16HkdfSha384EcdsaP384 if !c.kms_rsa_key.is_empty() => {
            S::Aes256GcmIv12Tag16HkdfSha256
        }
        s => s,
    }
}

fn policy_name(c: &CommonArgs) -> String {
    use clap::ValueEnum;
    c.commitment_policy
        .to_possible_value()
        .map(|v| v.get_name().to_owned())
        .unwrap_or_default()
}

fn config(c: &CommonArgs) -> Config {
    let mut cfg = Config::new().with_commitment_policy(c.commitment_policy.into());
    cfg.max_encrypted_data_keys = c.max_encrypted_data_keys;
    cfg.with_threads(c.threads)
}

/// Parses `--encryption-context` pairs; on decrypt a bare `KEY` means "must be present".
fn parse_context(mode: Mode, pairs: &[String]) -> Result<Vec<(String, Option<String>)>, CliError> {
    let mut out: Vec<(String, Option<String>)> = Vec::with_capacity(pairs.len());
    for p in pairs {
        let (k, v) = match p.split_once('=') {
            Some((k, v)) => (k, Some(v.to_owned())),
            None if mode == Mode::Decrypt => (p.as_str(), None),
            None => {
                return Err(CliError::usage(format!(
                    "--encryption-context {p:?}: expected KEY=VALUE"
                )));
            }
        };
        if k.is_empty() {
            return Err(CliError::usage(format!(
                "--encryption-context {p:?}: the key is empty"
            )));
        }
        if mode == Mode::Encrypt && k.starts_with("aws-crypto-") {
            return Err(CliError::usage(format!(
                "--encryption-context {p:?}: keys starting with \"aws-crypto-\" are reserved"
            )));
        }
        if out.iter().any(|(seen, _)| seen == k) {
            return Err(CliError::usage(format!(
                "--encryption-context: key '{k}' given twice"
            )));
        }
        out.push((k.to_owned(), v));
    }
    Ok(out)
}

/// `--caching SETTING=VALUE ...`: a caching CMM over the keyrings.
fn caching_cmm<'a>(
    keyring: &'a MultiKeyring<'a>,
    settings: &[String],
) -> Result<CachingCmm<&'a MultiKeyring<'a>>, CliError> {
    let (mut capacity, mut max_age, mut max_messages, mut max_bytes) =
        (100usize, 300u64, 1000u64, None::<u64>);
    for s in settings {
        let bad = || {
            CliError::usage(format!(
                "--caching {s:?}: expected capacity=N, max_age=SECONDS, max_messages=N or \
                 max_bytes=N, each at least 1"
            ))
        };
        let (k, v) = s.split_once('=').ok_or_else(bad)?;
        let n: u64 = v.parse().ok().filter(|n| *n >= 1).ok_or_else(bad)?;
        match k {
            "capacity" => capacity = usize::try_from(n).map_err(|_| bad())?,
            "max_age" => max_age = n,
            "max_messages" => max_messages = n,
            "max_bytes" => max_bytes = Some(n),
            _ => return Err(bad()),
        }
    }
    let cmm = CachingCmm::new(
        keyring,
        LocalCache::new(capacity),
        std::time::Duration::from_secs(max_age),
    )
    .map_err(|e| CliError::usage(format!("--caching: {}", error::esdk_message(&e))))?
    .with_max_messages(max_messages);
    Ok(match max_bytes {
        Some(b) => cmm.with_max_bytes(b),
        None => cmm,
    })
}

/// `esdk encrypt` / `esdk decrypt`.
fn crypt(
    mode: Mode,
    c: &CommonArgs,
    m: &ArgMatches,
    cfg: Config,
    opts: EncryptOptions,
    signed: run::SignedRelease,
    official: compat::Official,
) -> Result<ExitCode, CliError> {
    init_logging(c.verbose);
    tracing::debug!(target: LOG, mode = mode.as_str(), input = %c.input, output = %c.output,
        recursive = c.recursive, suffix = %c.suffix, aws_encryption_cli_syntax = official.syntax,
        "starting");
    let context = parse_context(mode, &c.encryption_context)?;
    let specs = keys::plan(c, m)?;
    let pkcs11 = keys::Pkcs11Options {
        module: c.pkcs11_module.as_deref(),
        token: c.pkcs11_token.as_deref(),
        slot: c.pkcs11_slot,
        pin_file: c.pkcs11_pin_file.as_deref(),
        quiet: c.quiet,
    };
    let kms_opts = kms::KmsOptions {
        endpoint: c.kms_endpoint.as_deref(),
        profile: c.profile.as_deref(),
        region: c.region.as_deref(),
        discovery_accounts: &c.discovery_account,
        discovery_partition: c.discovery_partition.as_deref(),
    };
    let (keyrings, key_labels, kms_keys) =
        keys::keyrings(&specs, c.key_encoding, mode, &pkcs11, &kms_opts)?;
    let refs: Vec<&dyn Keyring> = keyrings.iter().map(|k| &**k as &dyn Keyring).collect();
    let (generator, children) = refs
        .split_first()
        .ok_or_else(|| CliError::usage("no wrapping key"))?;
    let keyring = MultiKeyring::new(*generator, children);
    // The keyrings that are not KMS keyrings, for a job that runs the KMS ones through
    // their front end.
    let (others, other_labels): (Vec<&dyn Keyring>, Vec<String>) = refs
        .iter()
        .zip(&key_labels)
        .enumerate()
        .filter(|(i, _)| !kms_keys.holds(*i))
        .map(|(_, (k, l))| (*k, l.clone()))
        .unzip();
    let others = others
        .split_first()
        .map(|(generator, children)| MultiKeyring::new(*generator, children));
    let kms_front = kms_keys.front();
    let cache = match c.caching.as_deref() {
        None => None,
        Some(settings) => Some(caching_cmm(&keyring, settings)?),
    };

    let plan = paths::plan(&PlanArgs {
        mode,
        input: &c.input,
        output: &c.output,
        recursive: c.recursive,
        suffix: &c.suffix,
        no_overwrite: c.no_overwrite,
        official_naming: official.syntax,
    })?;
    if c.metadata_output.as_deref() == Some("-")
        && plan.jobs.iter().any(|j| j.output == Output::Stdout)
    {
        return Err(CliError::usage(
            "--metadata-output - and --output - cannot share stdout",
        ));
    }
    let mut metadata =
        MetadataSink::open(c.metadata_output.as_deref(), official.overwrite_metadata)?;
    let ctx = run::Ctx {
        mode,
        cfg,
        opts,
        keyring: &keyring,
        cache: cache.as_ref(),
        kms: kms_front.as_ref(),
        others: others.as_ref(),
        other_labels,
        context,
        key_labels,
        no_overwrite: c.no_overwrite,
        mmap: !c.no_mmap,
        signed,
        decode_input: official.decode,
        encode_output: official.encode,
    };
    tracing::debug!(target: LOG, keys = ?ctx.key_labels, jobs = plan.jobs.len(),
        skipped = plan.skipped.len(), "planned");
    let mut progress = Progress::new(!c.quiet, run::total_input(&plan.jobs));
    if !c.quiet {
        for note in &plan.skipped {
            progress.println(&format!("esdk: warning: {note}"));
        }
    }
    if plan.jobs.is_empty() && plan.unusable > 0 {
        progress.finish();
        return Err(CliError::usage(format!(
            "nothing to {}: all {} input files were skipped ({}){}",
            mode.as_str(),
            plan.unusable,
            plan.skipped.first().map(String::as_str).unwrap_or_default(),
            match mode {
                Mode::Decrypt => format!(
                    "; decrypt takes files ending in '{}' (or '{}'): give --suffix",
                    c.suffix,
                    compat::ENCRYPTED_SUFFIX
                ),
                Mode::Encrypt => String::new(),
            }
        )));
    }
    let mut first_failure: Option<Code> = None;
    let mut failed = 0usize;
    for job in &plan.jobs {
        if official.interactive && !confirm_overwrite(job, &mut progress)? {
            continue;
        }
        progress.set_file(&job.input.display());
        tracing::info!(target: LOG, "{}ing {} to {}", mode.as_str(), job.input.display(),
            job.output.display());
        let outcome = ctx.run(job, &mut progress).and_then(|done| {
            tracing::info!(target: LOG, input_bytes = done.input_bytes,
                output_bytes = done.output_bytes, suite = %done.header.suite, "done");
            metadata.write(&Record {
                mode,
                input: meta::shown(&job.input, official.syntax),
                output: meta::shown_output(&job.output, official.syntax),
                header: &done.header,
                input_bytes: done.input_bytes,
                output_bytes: done.output_bytes,
            })
        });
        if let Err(e) = outcome {
            progress.println(&format!("esdk: {e}"));
            first_failure.get_or_insert(e.code);
            failed += 1;
        }
    }
    progress.finish();
    if failed > 0 && plan.jobs.len() > 1 {
        eprintln!(
            "esdk: {failed} of {} files failed; their outputs were not written",
            plan.jobs.len()
        );
    }
    Ok(first_failure.map_or(ExitCode::SUCCESS, |c| ExitCode::from(c as u8)))
}

/// `--interactive`: asks on the terminal before replacing an existing output file (as
/// aws-encryption-cli does); anything but an answer starting with y or Y skips the file.
fn confirm_overwrite(job: &paths::Job, progress: &mut Progress) -> Result<bool, CliError> {
    use std::io::{BufRead, Write};
    let Output::File(path) = &job.output else {
        return Ok(true);
    };
    if !path.is_file() {
        return Ok(true);
    }
    if job.input == paths::Input::Stdin {
        return Err(CliError::usage(
            "--interactive reads its answers from stdin, which is the input here",
        ));
    }
    progress.suspend(|| {
        eprint!(
            "Overwrite existing output file \"{}\" with new contents? [y/N]:",
            path.display()
        );
        let _ = std::io::stderr().flush();
        let mut answer = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut answer)
            .map_err(|e| CliError::io("reading", "<stdin>", &e))?;
        let yes = answer.trim_start().starts_with(['y', 'Y']);
        if !yes {
            eprintln!(
                "esdk: warning: skipping {}: the output exists and was not to be replaced",
                job.input.display()
            );
        }
        Ok(yes)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn contexts_parse() {
        let s = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let ok = parse_context(Mode::Encrypt, &s(&["a=1", "b=x=y", "c="]));
        assert_eq!(
            ok.ok(),
            Some(vec![
                ("a".into(), Some("1".into())),
                ("b".into(), Some("x=y".into())),
                ("c".into(), Some(String::new())),
            ])
        );
        assert!(parse_context(Mode::Encrypt, &s(&["a"])).is_err());
        assert!(parse_context(Mode::Encrypt, &s(&["aws-crypto-x=1"])).is_err());
        assert!(parse_context(Mode::Encrypt, &s(&["a=1", "a=2"])).is_err());
        assert!(parse_context(Mode::Encrypt, &s(&["=1"])).is_err());
        assert_eq!(
            parse_context(Mode::Decrypt, &s(&["a"])).ok(),
            Some(vec![("a".into(), None)])
        );
    }
}

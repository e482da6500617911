//! The official `aws-encryption-cli`'s syntax (PyPI `aws-encryption-sdk-cli` 4.x), so that
//! its users' scripts run against `esdk` with only the command name changed:
//!
//! ```text
//! esdk -e -r -i plain/ -o vault/ --wrapping-keys key=arn:aws:kms:... --metadata-output meta.jsonl
//! esdk -d -r -i vault/ -o restored/ --wrapping-keys discovery=true -S
//! ```
//!
//! A command line whose first argument is not one of `esdk`'s subcommands but that holds a
//! mode flag (`-e`/`--encrypt`, `-d`/`--decrypt`, `--decrypt-unsigned`, anywhere, as
//! aws-encryption-cli takes its flags in any order) is parsed here, checked as
//! aws-encryption-cli checks it (a mode, exactly one of `-S` / `--metadata-output`,
//! `--wrapping-keys` with its `key=`/`discovery=` rules), and translated into the
//! equivalent `esdk encrypt` / `esdk decrypt` command line, which then runs through the same
//! code as the native syntax. [`Official`] carries what the native flags do not say: the
//! official output naming (`.encrypted`, `.decrypted` appended), `--overwrite-metadata`,
//! `--interactive`, `--encode`/`--decode` (base64 output and input) and the metadata's
//! absolute paths.

use std::ffi::OsString;

use clap::{ArgGroup, Parser, ValueEnum};

use super::args::PolicyArg;
use super::error::CliError;

/// The suffix aws-encryption-cli appends to encrypted files.
pub(crate) const ENCRYPTED_SUFFIX: &str = ".encrypted";
/// The suffix aws-encryption-cli appends to decrypted files.
pub(crate) const DECRYPTED_SUFFIX: &str = ".decrypted";

/// What the aws-encryption-cli syntax asks for beyond the native flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Official {
    /// The command line was aws-encryption-cli's: output names gain the suffix in both
    /// modes (decrypt appends `.decrypted` rather than removing a suffix), and metadata
    /// names files by absolute path, as aws-encryption-cli does.
    pub syntax: bool,
    /// `--overwrite-metadata`: truncate the metadata file instead of appending to it.
    pub overwrite_metadata: bool,
    /// `--interactive`: ask before replacing an existing output file.
    pub interactive: bool,
    /// `--decode`: the input is base64.
    pub decode: bool,
    /// `--encode`: write the output in base64.
    pub encode: bool,
}

/// The subcommands (and top-level flags) of the native syntax: a command line starting
/// with one of them is never aws-encryption-cli's.
const NATIVE: &[&str] = &[
    "encrypt",
    "decrypt",
    "keygen",
    "branch-key",
    "help",
    "--help",
    "-h",
    "--version",
    "-V",
];

/// aws-encryption-cli's mode flags.
const MODE_FLAGS: &[&str] = &["-e", "--encrypt", "-d", "--decrypt", "--decrypt-unsigned"];

/// Whether `args` (with the program name first) are in aws-encryption-cli's syntax: the
/// first argument is not a native subcommand, and a mode flag appears somewhere or the first
/// argument is a flag (which the native syntax refuses anyway; this parser then says that a
/// mode flag is missing).
pub(crate) fn detect(args: &[OsString]) -> bool {
    let Some(first) = args.get(1) else {
        return false;
    };
    if NATIVE.iter().any(|n| first == *n) {
        return false;
    }
    first.to_str().is_some_and(|f| f.starts_with('-'))
        || args[1..].iter().any(|a| MODE_FLAGS.iter().any(|m| a == *m))
}

const ABOUT: &str = "\
aws-encryption-cli's syntax (PyPI aws-encryption-sdk-cli 4.x), accepted by esdk so that its \
scripts run unchanged; `esdk encrypt --help` and `esdk decrypt --help` show esdk's own syntax. \
Wrapping keys are AWS KMS keys: --wrapping-keys key=ARN [key=ARN ...] [region=R] [profile=P], \
or on decrypt --wrapping-keys discovery=true [discovery-account=ID discovery-partition=aws].";

/// aws-encryption-cli's command line.
#[derive(Debug, Parser)]
#[command(
    name = "esdk",
    about = ABOUT,
    after_help = super::args::EXIT_CODES,
    group(ArgGroup::new("mode").required(true).multiple(false)
        .args(["encrypt", "decrypt", "decrypt_unsigned"])),
    group(ArgGroup::new("metadata").required(true).multiple(false)
        .args(["suppress_metadata", "metadata_output"])),
)]
pub(crate) struct AwsCli {
    /// Encrypt data.
    #[arg(short = 'e', long)]
    pub encrypt: bool,
    /// Decrypt data.
    #[arg(short = 'd', long)]
    pub decrypt: bool,
    /// Decrypt data and refuse signed messages.
    #[arg(long)]
    pub decrypt_unsigned: bool,
    /// Suppress metadata output.
    #[arg(short = 'S', long)]
    pub suppress_metadata: bool,
    /// File to which to write metadata records (one JSON line per file; - for stdout).
    #[arg(long, value_name = "PATH|-")]
    pub metadata_output: Option<String>,
    /// Truncate the metadata file instead of appending to it.
    #[arg(long)]
    pub overwrite_metadata: bool,
    /// A wrapping key provider: provider=aws-kms (the default), key=ARN (repeatable),
    /// region=, profile=, discovery=true|false, discovery-account= (repeatable),
    /// discovery-partition=. Repeatable.
    #[arg(short = 'w', long, required = true, num_args = 1.., value_name = "KEY=VALUE",
          action = clap::ArgAction::Append)]
    pub wrapping_keys: Vec<String>,
    /// The `--wrapping-keys` items, one list per occurrence (filled by [`parse`]).
    #[arg(skip)]
    pub wrapping_groups: Vec<Vec<String>>,
    /// Commitment policy.
    #[arg(long, value_enum, value_name = "POLICY")]
    pub commitment_policy: Option<PolicyArg>,
    /// A data key cache: capacity=N max_age=SECONDS (both required)
    /// [max_messages_encrypted=N] [max_bytes_encrypted=N].
    #[arg(long, num_args = 1.., value_name = "KEY=VALUE")]
    pub caching: Option<Vec<String>>,
    /// Hold the whole output in memory until the operation completes (decrypt: until the
    /// signature of a signed message verified).
    #[arg(short = 'b', long)]
    pub buffer: bool,
    /// Input file or directory, or - for stdin.
    #[arg(short = 'i', long, value_name = "PATH|-")]
    pub input: String,
    /// Output file or directory, or - for stdout.
    #[arg(short = 'o', long, value_name = "PATH|-")]
    pub output: String,
    /// Base64-encode the output (standard alphabet, padded, no line breaks).
    #[arg(long)]
    pub encode: bool,
    /// Base64-decode the input (whitespace ignored).
    #[arg(long)]
    pub decode: bool,
    /// Encryption context pairs key=value; on decrypt, pairs (and bare keys) that must be
    /// in the message.
    #[arg(short = 'c', long, num_args = 1.., value_name = "KEY=VALUE")]
    pub encryption_context: Option<Vec<String>>,
    /// Algorithm suite name (encrypt), e.g. AES_256_GCM_HKDF_SHA512_COMMIT_KEY_ECDSA_P384.
    #[arg(long, value_name = "NAME")]
    pub algorithm: Option<String>,
    /// Frame length in bytes (encrypt).
    #[arg(long, value_name = "BYTES")]
    pub frame_length: Option<i64>,
    /// Largest frame (framed messages) or content (non-framed) accepted (decrypt).
    #[arg(long, value_name = "BYTES")]
    pub max_length: Option<i64>,
    /// Most encrypted data keys written or accepted.
    #[arg(long, value_name = "N")]
    pub max_encrypted_data_keys: Option<i64>,
    /// Suffix of derived output names (default .encrypted / .decrypted); --suffix alone
    /// means none.
    #[arg(long, num_args = 0..=1, default_missing_value = "", value_name = "SUFFIX")]
    pub suffix: Option<String>,
    /// Ask before replacing an existing output file.
    #[arg(long)]
    pub interactive: bool,
    /// Never replace an existing output file.
    #[arg(long)]
    pub no_overwrite: bool,
    /// Process directories.
    #[arg(short = 'r', short_alias = 'R', long)]
    pub recursive: bool,
    /// Logging detail (-v info, -vv debug, -vvv also the libraries' logs).
    #[arg(short = 'v', action = clap::ArgAction::Count)]
    pub verbosity: u8,
    /// Only errors.
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

/// The provider names aws-encryption-cli gives its KMS provider.
const KMS_PROVIDERS: &[&str] = &["aws-kms", "aws-encryption-sdk-cli::aws-kms"];

/// One `--wrapping-keys` occurrence, checked.
#[derive(Debug, Default, PartialEq, Eq)]
struct Provider {
    keys: Vec<String>,
    region: Option<String>,
    profile: Option<String>,
    discovery: bool,
    accounts: Vec<String>,
    partition: Option<String>,
}

/// Parses aws-encryption-cli's `true`/`false` spellings.
fn pseudobool(v: &str) -> Result<bool, CliError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "t" | "1" | "yes" | "y" => Ok(true),
        "false" | "f" | "0" | "no" | "n" => Ok(false),
        _ => Err(CliError::usage(format!(
            "--wrapping-keys discovery={v}: expected true or false"
        ))),
    }
}

/// Splits `key=value` items, as aws-encryption-cli does (both sides non-empty).
fn pairs<'a>(flag: &str, items: &'a [String]) -> Result<Vec<(&'a str, &'a str)>, CliError> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.is_empty() && !v.is_empty() => Ok((k, v)),
            _ => Err(CliError::usage(format!(
                "{flag} {item:?}: expected key=value (both non-empty)"
            ))),
        })
        .collect()
}

/// Checks one `--wrapping-keys` occurrence with aws-encryption-cli's rules.
fn provider(items: &[String], encrypt: bool) -> Result<Provider, CliError> {
    let bad = |m: String| CliError::usage(format!("--wrapping-keys: {m}"));
    let mut p = Provider::default();
    let mut providers = Vec::new();
    let mut regions = Vec::new();
    let mut profiles = Vec::new();
    let mut discovery = Vec::new();
    let mut partitions = Vec::new();
    for (k, v) in pairs("--wrapping-keys", items)? {
        match k {
            "provider" => providers.push(v),
            "key" => p.keys.push(v.to_owned()),
            "region" => regions.push(v.to_owned()),
            "profile" => profiles.push(v.to_owned()),
            "discovery" => discovery.push(pseudobool(v)?),
            "discovery-account" => p.accounts.push(v.to_owned()),
            "discovery-partition" => partitions.push(v.to_owned()),
            _ => {
                return Err(bad(format!(
                    "unknown attribute {k:?} (expected provider, key, region, profile, \
                     discovery, discovery-account or discovery-partition)"
                )));
            }
        }
    }
    match providers[..] {
        [] => {}
        [name] if KMS_PROVIDERS.contains(&name) => {}
        [name] => {
            return Err(bad(format!(
                "provider={name}: esdk takes only AWS KMS keys (provider=aws-kms) in \
                 aws-encryption-cli's syntax; for raw and PKCS#11 keys use esdk's own syntax \
                 (esdk encrypt --help)"
            )));
        }
        _ => return Err(bad("give exactly one provider per --wrapping-keys".into())),
    }
    for (name, values, slot) in [
        ("region", regions, &mut p.region),
        ("profile", profiles, &mut p.profile),
        ("discovery-partition", partitions, &mut p.partition),
    ] {
        match <[String; 1]>::try_from(values) {
            Ok([v]) => *slot = Some(v),
            Err(v) if v.is_empty() => {}
            Err(_) => return Err(bad(format!("give {name} at most once per --wrapping-keys"))),
        }
    }
    let has_filter = !p.accounts.is_empty() || p.partition.is_some();
    match discovery[..] {
        [] if has_filter => {
            return Err(bad(
                "discovery-account and discovery-partition need discovery=true".into(),
            ));
        }
        [] => {}
        [d] => p.discovery = d,
        _ => return Err(bad("give discovery at most once per --wrapping-keys".into())),
    }
    if encrypt && (p.discovery || !discovery.is_empty() || has_filter) {
        return Err(bad(
            "discovery attributes apply to decryption only (encrypting needs key=ARN)".into(),
        ));
    }
    if p.discovery {
        if !p.keys.is_empty() {
            return Err(bad(
                "with discovery=true, give no key= (discovery decrypts with any key)".into(),
            ));
        }
        if p.accounts.is_empty() != p.partition.is_none() {
            return Err(bad(
                "discovery-account and discovery-partition go together".into()
            ));
        }
    } else if has_filter {
        return Err(bad(
            "discovery-account and discovery-partition need discovery=true".into(),
        ));
    } else if p.keys.is_empty() {
        return Err(bad(if encrypt {
            "give at least one key=ARN".into()
        } else {
            "give at least one key=ARN, or discovery=true".into()
        }));
    }
    Ok(p)
}

/// The one value several providers must agree on (esdk has one AWS profile and one default
/// region per run).
fn agreed(
    name: &str,
    ps: &[Provider],
    get: fn(&Provider) -> Option<&String>,
) -> Result<Option<String>, CliError> {
    let mut seen: Option<&String> = None;
    for p in ps {
        if let Some(v) = get(p) {
            match seen {
                Some(s) if s != v => {
                    return Err(CliError::usage(format!(
                        "--wrapping-keys: {name}={s} and {name}={v}: esdk takes one {name} for \
                         all wrapping keys"
                    )));
                }
                _ => seen = Some(v),
            }
        }
    }
    Ok(seen.cloned())
}

/// `--caching`: aws-encryption-cli's keys to esdk's `--caching` settings.
fn caching(items: &[String]) -> Result<Vec<String>, CliError> {
    let mut out = Vec::new();
    let (mut capacity, mut age) = (false, false);
    for (k, v) in pairs("--caching", items)? {
        let bad = || CliError::usage(format!("--caching {k}={v}: expected a number, at least 1"));
        let int = || v.parse::<u64>().ok().filter(|n| *n >= 1).ok_or_else(bad);
        match k {
            "capacity" => {
                capacity = true;
                out.push(format!("capacity={}", int()?));
            }
            "max_age" => {
                age = true;
                // Seconds, fractions allowed as in aws-encryption-cli; esdk counts whole
                // seconds, so a fraction is rounded up.
                let secs: f64 = v.parse().ok().filter(|s: &f64| *s > 0.0).ok_or_else(bad)?;
                out.push(format!("max_age={}", secs.ceil() as u64));
            }
            "max_messages_encrypted" | "max_messages" => {
                out.push(format!("max_messages={}", int()?));
            }
            "max_bytes_encrypted" | "max_bytes" => out.push(format!("max_bytes={}", int()?)),
            _ => {
                return Err(CliError::usage(format!(
                    "--caching: unknown setting {k:?} (expected capacity, max_age, \
                     max_messages_encrypted or max_bytes_encrypted)"
                )));
            }
        }
    }
    if !(capacity && age) {
        return Err(CliError::usage(
            "--caching: capacity and max_age are both required",
        ));
    }
    Ok(out)
}

/// A positive integer flag, as esdk's flag takes it.
fn positive(flag: &str, v: i64) -> Result<String, CliError> {
    if v < 1 {
        return Err(CliError::usage(format!("{flag} {v}: expected at least 1")));
    }
    Ok(v.to_string())
}

/// The translation: esdk's native command line (program name first) and what it does not
/// say.
#[derive(Debug)]
pub(crate) struct Translated {
    /// `esdk encrypt ...` or `esdk decrypt ...`.
    pub args: Vec<String>,
    /// The rest.
    pub official: Official,
}

/// Checks an aws-encryption-cli command line and translates it to esdk's.
///
/// # Errors
/// What aws-encryption-cli refuses, and what esdk does not offer in this syntax (other key
/// providers, `--encode`/`--decode`, unframed messages).
pub(crate) fn translate(a: &AwsCli) -> Result<Translated, CliError> {
    let encrypt = a.encrypt;
    let mut out: Vec<String> = vec!["esdk".into()];
    out.push(if encrypt { "encrypt" } else { "decrypt" }.into());
    let mut push = |flag: &str, v: &str| {
        out.push(flag.to_owned());
        out.push(v.to_owned());
    };
    if a.input.contains(['*', '?', '[']) && !std::path::Path::new(&a.input).exists() {
        return Err(CliError::usage(format!(
            "--input {:?}: esdk does not expand glob patterns (aws-encryption-cli does): give a \
             file, a directory with -r, or -",
            a.input
        )));
    }
    push("--input", &a.input);
    push("--output", &a.output);
    let suffix = match (&a.suffix, encrypt) {
        (Some(s), _) => s.as_str(),
        (None, true) => ENCRYPTED_SUFFIX,
        (None, false) => DECRYPTED_SUFFIX,
    };
    // `--suffix=` spelling, so an empty suffix and one starting with '-' stay values.
    out.push(format!("--suffix={suffix}"));
    let providers = a
        .wrapping_groups
        .iter()
        .map(|items| provider(items, encrypt))
        .collect::<Result<Vec<_>, _>>()?;
    let profile = agreed("profile", &providers, |p| p.profile.as_ref())?;
    let region = agreed("region", &providers, |p| p.region.as_ref())?;
    let partition = agreed("discovery-partition", &providers, |p| p.partition.as_ref())?;
    let mut discovery = false;
    let mut accounts: Vec<&String> = Vec::new();
    let mut unfiltered = false;
    for p in &providers {
        for k in &p.keys {
            out.push(format!("--kms-key={k}"));
        }
        if p.discovery {
            discovery = true;
            unfiltered |= p.accounts.is_empty();
            accounts.extend(&p.accounts);
        }
    }
    if discovery {
        if unfiltered && !accounts.is_empty() {
            return Err(CliError::usage(
                "--wrapping-keys: a discovery provider with discovery-account and one without: \
                 esdk takes one discovery filter for the run",
            ));
        }
        out.push("--kms-discovery".into());
        for acct in accounts {
            out.push(format!("--discovery-account={acct}"));
        }
        if let Some(p) = &partition {
            out.push(format!("--discovery-partition={p}"));
        }
    }
    if let Some(p) = &profile {
        out.push(format!("--profile={p}"));
    }
    if let Some(r) = &region {
        out.push(format!("--region={r}"));
    }
    if a.recursive {
        out.push("--recursive".into());
    }
    if a.no_overwrite {
        out.push("--no-overwrite".into());
    }
    // -q wins over -v, as in aws-encryption-cli.
    if a.quiet {
        out.push("--quiet".into());
    } else if a.verbosity > 0 {
        out.push(format!("-{}", "v".repeat(usize::from(a.verbosity))));
    }
    if let Some(m) = &a.metadata_output {
        if m.is_empty() {
            return Err(CliError::usage("--metadata-output: the file name is empty"));
        }
        out.push(format!("--metadata-output={m}"));
    }
    if let Some(p) = a.commitment_policy {
        let name = p.to_possible_value().map(|v| v.get_name().to_owned());
        out.push(format!("--commitment-policy={}", name.unwrap_or_default()));
    }
    if let Some(n) = a.max_encrypted_data_keys {
        if n > i64::from(u16::MAX) {
            return Err(CliError::usage(format!(
                "--max-encrypted-data-keys {n}: at most {} (a message cannot hold more)",
                u16::MAX
            )));
        }
        out.push(format!(
            "--max-encrypted-data-keys={}",
            positive("--max-encrypted-data-keys", n)?
        ));
    }
    if let Some(settings) = &a.caching {
        out.push("--caching".into());
        out.extend(caching(settings)?);
    }
    if let Some(ec) = &a.encryption_context {
        if encrypt {
            // aws-encryption-cli takes each key once (the first value wins there; esdk refuses
            // the repetition) and needs key=value on encrypt.
            pairs("--encryption-context", ec)?;
        }
        for pair in ec {
            out.push(format!("--encryption-context={pair}"));
        }
    }
    let decrypt_only =
        |flag: &str| CliError::usage(format!("{flag} applies to decryption (-d / --decrypt)"));
    let encrypt_only =
        |flag: &str| CliError::usage(format!("{flag} applies to encryption (-e / --encrypt)"));
    if encrypt {
        if let Some(alg) = &a.algorithm {
            out.push(format!("--suite={alg}"));
        }
        if let Some(n) = a.frame_length {
            if n == 0 {
                return Err(CliError::usage(
                    "--frame-length 0 (a non-framed message): esdk writes framed messages only; \
                     give a frame length of at least 1",
                ));
            }
            if n > i64::from(u32::MAX) {
                return Err(CliError::usage(format!(
                    "--frame-length {n}: at most {}",
                    u32::MAX
                )));
            }
            out.push(format!("--frame-length={}", positive("--frame-length", n)?));
        }
        if a.max_length.is_some() {
            return Err(decrypt_only("--max-length"));
        }
    } else {
        if a.algorithm.is_some() {
            return Err(encrypt_only("--algorithm"));
        }
        if a.frame_length.is_some() {
            return Err(encrypt_only("--frame-length"));
        }
        if let Some(n) = a.max_length {
            out.push(format!("--max-length={}", positive("--max-length", n)?));
        }
        if a.decrypt_unsigned {
            out.push("--decrypt-unsigned".into());
        }
        if a.buffer {
            // Hold the whole plaintext of a signed message for stdout and other live
            // outputs, however large, until its signature verifies (aws-encryption-cli
            // reads it all into memory); without --buffer esdk holds it up to its default
            // bound (aws-encryption-cli would stream it unverified).
            out.push(format!("--signed-buffer-limit={}", usize::MAX));
        }
    }
    Ok(Translated {
        args: out,
        official: Official {
            syntax: true,
            overwrite_metadata: a.overwrite_metadata,
            interactive: a.interactive,
            decode: a.decode,
            encode: a.encode,
        },
    })
}

/// Parses an aws-encryption-cli command line and translates it.
///
/// # Errors
/// A clap error (printed as clap prints it) or a translation error.
pub(crate) fn parse(args: &[OsString]) -> Result<Result<Translated, CliError>, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let m = AwsCli::command().try_get_matches_from(args)?;
    let mut a = AwsCli::from_arg_matches(&m)?;
    a.wrapping_groups = m
        .get_occurrences::<String>("wrapping_keys")
        .map(|o| o.map(|g| g.cloned().collect()).collect())
        .unwrap_or_default();
    Ok(translate(&a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    fn tr(v: &[&str]) -> Result<Translated, String> {
        let mut all = vec!["esdk"];
        all.extend_from_slice(v);
        match parse(&os(&all)) {
            Ok(Ok(t)) => Ok(t),
            Ok(Err(e)) => Err(e.message),
            Err(e) => Err(e.to_string()),
        }
    }

    const ARN: &str = "arn:aws:kms:us-west-2:111122223333:key/k1";

    #[test]
    fn the_command_line_is_consistent() {
        AwsCli::command().debug_assert();
    }

    #[test]
    fn detection_needs_a_mode_flag_and_no_subcommand() {
        assert!(detect(&os(&["esdk", "-e", "-i", "x"])));
        assert!(detect(&os(&["esdk", "-i", "x", "--decrypt"])));
        assert!(detect(&os(&["esdk", "-S", "--decrypt-unsigned"])));
        assert!(!detect(&os(&["esdk", "encrypt", "-e"])));
        assert!(!detect(&os(&["esdk", "decrypt", "-d"])));
        assert!(!detect(&os(&["esdk", "--help"])));
        assert!(detect(&os(&["esdk", "-i", "x"])));
        assert!(!detect(&os(&["esdk", "x", "-i"])));
        assert!(!detect(&os(&["esdk"])));
    }

    #[test]
    fn an_encrypt_script_translates() {
        let t = tr(&[
            "-e",
            "-i",
            "in/",
            "-o",
            "out/",
            "-r",
            "--wrapping-keys",
            &format!("key={ARN}"),
            "key=alias/two",
            "region=us-west-2",
            "profile=p",
            "--metadata-output",
            "m.json",
            "-c",
            "a=1",
            "b=2",
            "--algorithm",
            "AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
            "--frame-length",
            "1024",
            "--caching",
            "capacity=10",
            "max_age=2.5",
            "max_messages_encrypted=7",
            "--overwrite-metadata",
        ])
        .unwrap();
        assert_eq!(
            t.args,
            [
                "esdk",
                "encrypt",
                "--input",
                "in/",
                "--output",
                "out/",
                "--suffix=.encrypted",
                &format!("--kms-key={ARN}"),
                "--kms-key=alias/two",
                "--profile=p",
                "--region=us-west-2",
                "--recursive",
                "--metadata-output=m.json",
                "--caching",
                "capacity=10",
                "max_age=3",
                "max_messages=7",
                "--encryption-context=a=1",
                "--encryption-context=b=2",
                "--suite=AES_256_GCM_HKDF_SHA512_COMMIT_KEY",
                "--frame-length=1024",
            ]
        );
        assert!(t.official.syntax && t.official.overwrite_metadata);
    }

    #[test]
    fn a_discovery_decrypt_translates() {
        let t = tr(&[
            "--wrapping-keys",
            "discovery=true",
            "discovery-account=111122223333",
            "discovery-partition=aws",
            "-S",
            "-i",
            "-",
            "-o",
            "-",
            "-d",
            "-b",
            "-vv",
            "--max-length",
            "4096",
            "--suffix",
        ])
        .unwrap();
        assert_eq!(
            t.args,
            [
                "esdk",
                "decrypt",
                "--input",
                "-",
                "--output",
                "-",
                "--suffix=",
                "--kms-discovery",
                "--discovery-account=111122223333",
                "--discovery-partition=aws",
                "-vv",
                "--max-length=4096",
                &format!("--signed-buffer-limit={}", usize::MAX),
            ]
        );
        let t = tr(&[
            "-d",
            "-w",
            "discovery=yes",
            "-S",
            "-i",
            "a",
            "-o",
            "b",
            "-q",
            "-R",
        ])
        .unwrap();
        assert!(t.args.contains(&"--kms-discovery".to_owned()));
        assert!(t.args.contains(&"--suffix=.decrypted".to_owned()));
        assert!(t.args.contains(&"--recursive".to_owned()));
        assert!(t.args.contains(&"--quiet".to_owned()));
    }

    #[test]
    fn the_official_checks_are_made() {
        let base = ["-i", "a", "-o", "b"];
        let run = |extra: &[&str]| {
            let mut v = base.to_vec();
            v.extend_from_slice(extra);
            tr(&v)
        };
        let key = format!("key={ARN}");
        // No mode, two modes, no metadata choice, both metadata choices.
        assert!(run(&["-S", "-w", &key]).is_err());
        assert!(run(&["-e", "-d", "-S", "-w", &key]).is_err());
        assert!(run(&["-e", "-w", &key]).is_err());
        assert!(run(&["-e", "-S", "--metadata-output", "m", "-w", &key]).is_err());
        // --wrapping-keys is required, and its items are key=value.
        assert!(run(&["-e", "-S"]).is_err());
        let bad = |extra: &[&str], want: &str| {
            let e = run(extra).unwrap_err();
            assert!(e.contains(want), "{extra:?}: {e}");
        };
        bad(&["-e", "-S", "-w", "nokey"], "expected key=value");
        bad(&["-e", "-S", "-w", "key="], "expected key=value");
        bad(&["-e", "-S", "-w", "colour=blue"], "unknown attribute");
        bad(
            &["-e", "-S", "-w", "provider=raw", "key=k"],
            "only AWS KMS keys",
        );
        bad(&["-e", "-S", "-w", "discovery=true"], "decryption only");
        bad(
            &["-e", "-S", "-w", "region=us-east-1"],
            "at least one key=ARN",
        );
        bad(&["-d", "-S", "-w", "discovery=false"], "or discovery=true");
        bad(&["-d", "-S", "-w", "discovery=maybe"], "true or false");
        bad(&["-d", "-S", "-w", "discovery=true", &key], "give no key=");
        bad(
            &["-d", "-S", "-w", "discovery=true", "discovery-account=1"],
            "go together",
        );
        bad(
            &["-d", "-S", "-w", &key, "discovery-account=1"],
            "need discovery=true",
        );
        bad(
            &["-d", "-S", "-w", &key, "region=a", "region=b"],
            "at most once",
        );
        bad(
            &[
                "-e",
                "-S",
                "-w",
                &key,
                "profile=a",
                "-w",
                "key=k2",
                "profile=b",
            ],
            "one profile",
        );
        bad(
            &["-e", "-S", "-w", &key, "--caching", "capacity=1"],
            "both required",
        );
        bad(
            &[
                "-e",
                "-S",
                "-w",
                &key,
                "--caching",
                "capacity=1",
                "max_age=1",
                "x=1",
            ],
            "unknown setting",
        );
        bad(
            &["-e", "-S", "-w", &key, "--frame-length", "0"],
            "framed messages only",
        );
        bad(
            &["-e", "-S", "-w", &key, "--max-length", "10"],
            "applies to decryption",
        );
        bad(
            &["-d", "-S", "-w", &key, "--algorithm", "X"],
            "applies to encryption",
        );
        bad(&["-e", "-S", "-w", &key, "-c", "a"], "expected key=value");
        let e = tr(&["-e", "-S", "-w", &key, "-i", "no/*.txt", "-o", "x"]).unwrap_err();
        assert!(e.contains("glob"), "{e}");
    }

    #[test]
    fn the_translation_parses_as_esdk() {
        use super::super::args::Cli;
        let t = tr(&[
            "-d",
            "-S",
            "-w",
            "discovery=true",
            "-i",
            "a",
            "-o",
            "b",
            "-c",
            "k",
            "k2=v",
            "--commitment-policy",
            "require-encrypt-allow-decrypt",
            "-b",
            "--max-encrypted-data-keys",
            "3",
            "--no-overwrite",
            "-vvv",
            "--suffix",
            ".enc",
        ])
        .unwrap();
        let m = Cli::command().try_get_matches_from(&t.args);
        assert!(m.is_ok(), "{:?}: {:?}", t.args, m.err());
    }
}

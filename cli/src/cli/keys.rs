//! Wrapping keys: which key flags were given (in command-line order, with their per-key
//! options), how key files are decoded, and the keyrings built from them.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use clap::ArgMatches;
use esdk::Keyring;
use esdk::raw::RawAesKeyring;
use esdk::raw::rsa::{RawRsaKeyring, RsaPadding, RsaPrivateKey, RsaPublicKey};
use zeroize::Zeroizing;

use super::Mode;
use super::args::{CommonArgs, KeyEncoding, RsaPaddingArg};
use super::error::{CliError, esdk_message, quote};
use super::kms::{self, KmsOptions};

/// The default key namespace (EDK provider id).
pub(crate) const DEFAULT_NAMESPACE: &str = "esdk";
/// The default key name.
pub(crate) const DEFAULT_NAME: &str = "default";
/// The default RSA padding.
const DEFAULT_PADDING: RsaPaddingArg = RsaPaddingArg::OaepSha256;
/// Key files larger than this are not key files (the largest RSA-8192 PEM is about 6 KiB).
const MAX_KEY_FILE: u64 = 64 * 1024;
/// The environment variable holding the PKCS#11 user PIN.
#[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
pub(crate) const PIN_ENV: &str = "ESDK_PKCS11_PIN";

/// Where a wrapping key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeySource {
    /// `--raw-aes-key FILE`.
    RawAes(PathBuf),
    /// `--raw-rsa-key PEM`.
    RawRsa(PathBuf),
    /// `--pkcs11-key LABEL`.
    Pkcs11(String),
    /// `--kms-key ARN`.
    Kms(String),
    /// `--kms-rsa-key ARN`.
    KmsRsa(String),
    /// `--kms-ecdh-key ARN`.
    KmsEcdh(String),
    /// `--branch-key-id ID` (the hierarchical keyring) with its key store.
    Hierarchy(super::branch_key::HierarchySpec),
    /// `--kms-discovery` (decrypt only; always last).
    KmsDiscovery,
}

/// One wrapping key with its per-key options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KeySpec {
    /// The key.
    pub source: KeySource,
    /// Key namespace (EDK provider id).
    pub namespace: String,
    /// Key name.
    pub name: String,
    /// RSA padding (RSA keys only).
    pub padding: RsaPaddingArg,
    /// `--kms-rsa-public-key` (AWS KMS RSA keys only).
    pub public_key: Option<PathBuf>,
    /// What follows a `--kms-ecdh-key` (AWS KMS ECDH keys only).
    pub ecdh: Option<EcdhPeer>,
}

/// What follows a `--kms-ecdh-key ARN`: the key agreement schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EcdhPeer {
    /// `--recipient-public-key FILE|ARN`: KmsPrivateKeyToStaticPublicKey.
    Recipient(String),
    /// `--kms-ecdh-discovery`: KmsPublicKeyDiscovery.
    Discovery,
}

impl KeySpec {
    /// How the key is named in messages.
    pub fn describe(&self) -> String {
        let what = match &self.source {
            KeySource::RawAes(p) => format!("raw AES key {}", quote(p)),
            KeySource::RawRsa(p) => format!("raw RSA key {}", quote(p)),
            KeySource::Pkcs11(l) => format!("PKCS#11 key '{l}'"),
            KeySource::Kms(arn) => return format!("AWS KMS key {arn}"),
            KeySource::KmsRsa(arn) => return format!("AWS KMS RSA key {arn}"),
            KeySource::KmsEcdh(arn) => return format!("AWS KMS ECDH key {arn}"),
            KeySource::KmsDiscovery => return "AWS KMS discovery".to_owned(),
            KeySource::Hierarchy(h) => {
                return format!("branch key {} (table {})", h.branch_key_id, h.store.table);
            }
        };
        format!(
            "{what} (namespace '{}', name '{}')",
            self.namespace, self.name
        )
    }
}

/// Values of a repeatable flag with their command-line indices.
fn indexed<T: Clone + Send + Sync + 'static>(m: &ArgMatches, id: &str) -> Vec<(usize, T)> {
    match (m.get_many::<T>(id), m.indices_of(id)) {
        (Some(values), Some(indices)) => indices.zip(values.cloned()).collect(),
        _ => Vec::new(),
    }
}

/// The keys of the command line, in order (the first is the generator), each with the
/// per-key options that follow it or the defaults given before the first key.
///
/// # Errors
/// No key at all; a per-key option given twice for the same key; PKCS#11 flags that do
/// not fit together.
pub(crate) fn plan(common: &CommonArgs, m: &ArgMatches) -> Result<Vec<KeySpec>, CliError> {
    let mut keys: Vec<(usize, KeySource)> = Vec::new();
    keys.extend(
        indexed::<PathBuf>(m, "raw_aes_key")
            .into_iter()
            .map(|(i, p)| (i, KeySource::RawAes(p))),
    );
    keys.extend(
        indexed::<PathBuf>(m, "raw_rsa_key")
            .into_iter()
            .map(|(i, p)| (i, KeySource::RawRsa(p))),
    );
    keys.extend(
        indexed::<String>(m, "pkcs11_key")
            .into_iter()
            .map(|(i, l)| (i, KeySource::Pkcs11(l))),
    );
    keys.extend(
        indexed::<String>(m, "kms_key")
            .into_iter()
            .map(|(i, a)| (i, KeySource::Kms(a))),
    );
    keys.extend(
        indexed::<String>(m, "kms_rsa_key")
            .into_iter()
            .map(|(i, a)| (i, KeySource::KmsRsa(a))),
    );
    keys.extend(
        indexed::<String>(m, "kms_ecdh_key")
            .into_iter()
            .map(|(i, a)| (i, KeySource::KmsEcdh(a))),
    );
    if let Some(spec) = common.branch_key.spec() {
        let at = m.index_of("branch_key_id").unwrap_or(usize::MAX - 1);
        keys.push((at, KeySource::Hierarchy(spec)));
    }
    keys.sort_by_key(|(i, _)| *i);
    if common.kms_discovery {
        keys.push((usize::MAX, KeySource::KmsDiscovery));
    }
    if keys.is_empty() {
        return Err(CliError::usage(
            "no wrapping key: give --raw-aes-key FILE, --raw-rsa-key PEM, --kms-key ARN, \
             --kms-rsa-key ARN, --kms-ecdh-key ARN, --branch-key-id ID, --kms-discovery (decrypt) or \
             --pkcs11-key LABEL",
        ));
    }
    let has_pkcs11_key = keys.iter().any(|(_, s)| matches!(s, KeySource::Pkcs11(_)));
    if !has_pkcs11_key && (common.pkcs11_module.is_some() || common.pkcs11_token.is_some()) {
        return Err(CliError::usage(
            "--pkcs11-module / --pkcs11-token given without --pkcs11-key LABEL",
        ));
    }
    let starts: Vec<usize> = keys.iter().map(|(i, _)| *i).collect();
    // The per-key options name raw and PKCS#11 keys; a KMS key is its ARN (an AWS KMS
    // RSA key takes --rsa-padding).
    for (flag, id) in [
        ("--key-namespace", "key_namespace"),
        ("--key-name", "key_name"),
        ("--rsa-padding", "rsa_padding"),
    ] {
        for at in m.indices_of(id).into_iter().flatten() {
            if let Some(k) = starts.iter().rposition(|&s| s < at) {
                let (kind, arn) = match &keys[k].1 {
                    KeySource::Kms(arn) => ("--kms-key", arn),
                    KeySource::KmsRsa(arn) if id != "rsa_padding" => ("--kms-rsa-key", arn),
                    KeySource::KmsEcdh(arn) => ("--kms-ecdh-key", arn),
                    KeySource::Hierarchy(h) => ("--branch-key-id", &h.branch_key_id),
                    _ => continue,
                };
                return Err(CliError::usage(format!(
                    "{flag} follows {kind} {arn}: it applies to raw and PKCS#11 keys only"
                )));
            }
        }
    }
    // --kms-rsa-public-key belongs to the --kms-rsa-key it follows.
    for at in m.indices_of("kms_rsa_public_key").into_iter().flatten() {
        match starts.iter().rposition(|&s| s < at).map(|k| &keys[k].1) {
            Some(KeySource::KmsRsa(_)) => {}
            _ => {
                return Err(CliError::usage(
                    "--kms-rsa-public-key must follow the --kms-rsa-key ARN it is the public \
                     key of",
                ));
            }
        }
    }
    let public_keys = attach(
        &starts,
        indexed::<PathBuf>(m, "kms_rsa_public_key"),
        "--kms-rsa-public-key",
    )?;
    let ecdh = ecdh_peers(&keys, m)?;
    let namespaces = attach(
        &starts,
        indexed::<String>(m, "key_namespace"),
        "--key-namespace",
    )?;
    let names = attach(&starts, indexed::<String>(m, "key_name"), "--key-name")?;
    let paddings = attach(
        &starts,
        indexed::<RsaPaddingArg>(m, "rsa_padding"),
        "--rsa-padding",
    )?;
    Ok(keys
        .into_iter()
        .enumerate()
        .map(|(k, (_, source))| KeySpec {
            source,
            namespace: namespaces[k]
                .clone()
                .unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned()),
            name: names[k].clone().unwrap_or_else(|| DEFAULT_NAME.to_owned()),
            padding: paddings[k].unwrap_or(DEFAULT_PADDING),
            public_key: public_keys[k].clone(),
            ecdh: ecdh[k].clone(),
        })
        .collect())
}

/// The `--recipient-public-key` or `--kms-ecdh-discovery` that follows each
/// `--kms-ecdh-key` (exactly one each; none for other keys).
///
/// # Errors
/// One of them not after a `--kms-ecdh-key`, both or neither for one key.
fn ecdh_peers(
    keys: &[(usize, KeySource)],
    m: &ArgMatches,
) -> Result<Vec<Option<EcdhPeer>>, CliError> {
    const NEEDS: &str = "needs --recipient-public-key FILE|ARN (the key is the sender's) or \
                         --kms-ecdh-discovery (the key is the recipient's; decrypt only) after it";
    let mut peers: Vec<Option<EcdhPeer>> = vec![None; keys.len()];
    let given = indexed::<String>(m, "recipient_public_key")
        .into_iter()
        .map(|(at, v)| (at, "--recipient-public-key", EcdhPeer::Recipient(v)))
        .chain(
            indexed::<bool>(m, "kms_ecdh_discovery")
                .into_iter()
                .map(|(at, _)| (at, "--kms-ecdh-discovery", EcdhPeer::Discovery)),
        );
    for (at, flag, peer) in given {
        let k = keys.iter().rposition(|(s, _)| *s < at);
        let Some((k, KeySource::KmsEcdh(arn))) = k.map(|k| (k, &keys[k].1)) else {
            return Err(CliError::usage(format!(
                "{flag} must follow the --kms-ecdh-key ARN it belongs to"
            )));
        };
        if peers[k].is_some() {
            return Err(CliError::usage(format!(
                "--kms-ecdh-key {arn}: give one --recipient-public-key or --kms-ecdh-discovery \
                 after it, not two"
            )));
        }
        peers[k] = Some(peer);
    }
    for ((_, source), peer) in keys.iter().zip(&peers) {
        if let (KeySource::KmsEcdh(arn), None) = (source, peer) {
            return Err(CliError::usage(format!("--kms-ecdh-key {arn} {NEEDS}")));
        }
    }
    Ok(peers)
}

/// Attaches each occurrence of a per-key option to the key flag before it; occurrences
/// before the first key set the default. Returns one value per key.
fn attach<T: Clone>(
    key_starts: &[usize],
    values: Vec<(usize, T)>,
    flag: &str,
) -> Result<Vec<Option<T>>, CliError> {
    let mut default: Option<T> = None;
    let mut per_key: Vec<Option<T>> = vec![None; key_starts.len()];
    for (at, v) in values {
        let slot = match key_starts.iter().rposition(|&s| s < at) {
            Some(k) => &mut per_key[k],
            None => &mut default,
        };
        if slot.is_some() {
            return Err(CliError::usage(format!(
                "{flag} given twice for the same key (it applies to the key flag it follows)"
            )));
        }
        *slot = Some(v);
    }
    Ok(per_key
        .into_iter()
        .map(|v| v.or_else(|| default.clone()))
        .collect())
}

/// Reads a key file, refusing anything larger than a key file can be.
pub(crate) fn read_key_file(path: &Path) -> Result<Zeroizing<Vec<u8>>, CliError> {
    let meta = fs::metadata(path).map_err(|e| CliError::io_path("reading key file", path, &e))?;
    if meta.is_dir() {
        return Err(CliError::usage(format!(
            "key file {} is a directory",
            quote(path)
        )));
    }
    if meta.len() > MAX_KEY_FILE {
        return Err(CliError::usage(format!(
            "key file {}: {} bytes is too large for a key file",
            quote(path),
            meta.len()
        )));
    }
    fs::read(path)
        .map(Zeroizing::new)
        .map_err(|e| CliError::io_path("reading key file", path, &e))
}

const AES_KEY_LENS: [usize; 3] = [16, 24, 32];

fn decode_hex(text: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    // Decoded straight into a zeroizing buffer of the exact size: no copy of the key is
    // left in freed memory, on success or failure.
    let mut out = Zeroizing::new(vec![0u8; text.len() / 2]);
    hex::decode_to_slice(text, &mut out[..]).ok()?;
    Some(out)
}

fn decode_base64(text: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
    // As for hex: into a zeroizing buffer that is never reallocated.
    let mut out = Zeroizing::new(vec![0u8; base64::decoded_len_estimate(text.len())]);
    let n = STANDARD
        .decode_slice(text, &mut out[..])
        .or_else(|_| STANDARD_NO_PAD.decode_slice(text, &mut out[..]))
        .ok()?;
    out.truncate(n);
    Some(out)
}

fn is_key_len(k: &[u8]) -> bool {
    AES_KEY_LENS.contains(&k.len())
}

/// Decodes an AES key file's content (see the `--raw-aes-key` help).
///
/// # Errors
/// A description of what the content is not, or of the ambiguity.
pub(crate) fn decode_aes_key(
    bytes: &[u8],
    encoding: KeyEncoding,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let text = bytes.trim_ascii();
    let want = "16, 24 or 32 bytes";
    match encoding {
        KeyEncoding::Raw => {
            if is_key_len(bytes) {
                Ok(Zeroizing::new(bytes.to_vec()))
            } else {
                Err(format!(
                    "a raw AES key is {want} long; the file has {}",
                    bytes.len()
                ))
            }
        }
        KeyEncoding::Hex => decode_hex(text)
            .filter(|k| is_key_len(k))
            .ok_or_else(|| "not 32, 48 or 64 hex digits".to_owned()),
        KeyEncoding::Base64 => decode_base64(text)
            .filter(|k| is_key_len(k))
            .ok_or_else(|| format!("not the base64 of {want}")),
        KeyEncoding::Auto => {
            let raw = is_key_len(bytes);
            let all_hex = !text.is_empty() && text.iter().all(u8::is_ascii_hexdigit);
            let textual = if all_hex {
                decode_hex(text)
                    .filter(|k| is_key_len(k))
                    .map(|k| ("hex", k))
            } else {
                decode_base64(text)
                    .filter(|k| is_key_len(k))
                    .map(|k| ("base64", k))
            };
            match (raw, textual) {
                (true, Some((enc, k))) => Err(format!(
                    "ambiguous key file: its {} bytes are a raw AES-{} key and also {enc} of an \
                     AES-{} key; choose with --key-encoding raw or --key-encoding {enc}",
                    bytes.len(),
                    bytes.len() * 8,
                    k.len() * 8
                )),
                (true, None) => Ok(Zeroizing::new(bytes.to_vec())),
                (false, Some((_, k))) => Ok(k),
                (false, None) => Err(format!(
                    "not an AES key: expected {want} as raw bytes, hex or base64; the file has {} \
                     bytes",
                    bytes.len()
                )),
            }
        }
    }
}

fn rsa_padding(p: RsaPaddingArg) -> RsaPadding {
    match p {
        RsaPaddingArg::OaepSha1 => RsaPadding::OaepSha1,
        RsaPaddingArg::OaepSha256 => RsaPadding::OaepSha256,
        RsaPaddingArg::OaepSha384 => RsaPadding::OaepSha384,
        RsaPaddingArg::OaepSha512 => RsaPadding::OaepSha512,
        RsaPaddingArg::Pkcs1 => RsaPadding::Pkcs1V15,
    }
}

/// The PEM label of `bytes`, skipping text before the first `-----BEGIN` line as OpenSSL
/// does; `None` when the file is not PEM (then it is tried as DER).
fn pem_label(bytes: &[u8]) -> Option<Result<String, ()>> {
    let start = bytes.windows(10).position(|w| w == b"-----BEGIN")?;
    let pem = bytes.get(start..)?;
    Some(
        pem_rfc7468::decode_label(pem)
            .map(str::to_owned)
            .map_err(|_| ()),
    )
}

/// The DER of a PEM document, zeroized on drop.
fn pem_der(bytes: &[u8]) -> Option<Zeroizing<Vec<u8>>> {
    let start = bytes.windows(10).position(|w| w == b"-----BEGIN")?;
    let pem = bytes.get(start..)?.trim_ascii_end();
    let mut buf = Zeroizing::new(vec![0u8; pem.len()]);
    let len = pem_rfc7468::decode(pem, &mut buf).ok()?.1.len();
    buf.truncate(len);
    Some(buf)
}

/// The public half of an RSA private key (PKCS#8 or PKCS#1 DER), derived with aws-lc-rs.
fn derive_public(der: &[u8]) -> Option<RsaPublicKey> {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::KeyPair as RsaKeyPair;
    use aws_lc_rs::signature::KeyPair as _;
    let pair = RsaKeyPair::from_pkcs8(der)
        .or_else(|_| RsaKeyPair::from_der(der))
        .ok()?;
    let spki = pair.public_key().as_der().ok()?;
    RsaPublicKey::from_der(spki.as_ref()).ok()
}

/// What an RSA key file holds.
enum RsaFile {
    Public(RsaPublicKey),
    Private(RsaPrivateKey, Zeroizing<Vec<u8>>),
}

fn read_rsa(path: &Path) -> Result<RsaFile, CliError> {
    let bytes = read_key_file(path)?;
    let bad = |e: esdk::core::Error| {
        CliError::usage(format!("key file {}: {}", quote(path), esdk_message(&e)))
    };
    match pem_label(&bytes) {
        Some(Ok(label)) if label == "PUBLIC KEY" || label == "RSA PUBLIC KEY" => {
            RsaPublicKey::from_pem(&*bytes)
                .map(RsaFile::Public)
                .map_err(bad)
        }
        Some(Ok(_)) => {
            let private = RsaPrivateKey::from_pem(&*bytes).map_err(bad)?;
            let der = pem_der(&bytes).ok_or_else(|| {
                CliError::usage(format!("key file {}: not valid PEM", quote(path)))
            })?;
            Ok(RsaFile::Private(private, der))
        }
        Some(Err(())) => Err(CliError::usage(format!(
            "key file {}: not valid PEM (RFC 7468)",
            quote(path)
        ))),
        None => match RsaPrivateKey::from_der(&bytes) {
            Ok(private) => Ok(RsaFile::Private(private, Zeroizing::new(bytes.to_vec()))),
            Err(_) => RsaPublicKey::from_der(&bytes)
                .map(RsaFile::Public)
                .map_err(|_| {
                    CliError::usage(format!(
                        "key file {}: not an RSA key (PEM, or DER SubjectPublicKeyInfo, PKCS#1 or \
                     PKCS#8)",
                        quote(path)
                    ))
                }),
        },
    }
}

fn rsa_keyring(spec: &KeySpec, path: &Path, mode: Mode) -> Result<RawRsaKeyring, CliError> {
    let padding = rsa_padding(spec.padding);
    let bad = |e: esdk::core::Error| {
        CliError::usage(format!("key file {}: {}", quote(path), esdk_message(&e)))
    };
    match (read_rsa(path)?, mode) {
        (RsaFile::Public(public), Mode::Encrypt) => {
            RawRsaKeyring::encrypt_only(&spec.namespace, &spec.name, padding, public).map_err(bad)
        }
        (RsaFile::Public(_), Mode::Decrypt) => Err(CliError::usage(format!(
            "key file {} is an RSA public key: it can encrypt but not decrypt; give the private \
             key",
            quote(path)
        ))),
        (RsaFile::Private(private, _), Mode::Decrypt) => {
            RawRsaKeyring::decrypt_only(&spec.namespace, &spec.name, padding, private).map_err(bad)
        }
        (RsaFile::Private(_, der), Mode::Encrypt) => {
            let public = derive_public(&der).ok_or_else(|| {
                CliError::usage(format!(
                    "key file {}: could not derive the public key from the private key",
                    quote(path)
                ))
            })?;
            RawRsaKeyring::encrypt_only(&spec.namespace, &spec.name, padding, public).map_err(bad)
        }
    }
}

/// The public key of an AWS KMS RSA key (`--kms-rsa-public-key`): PEM or DER.
fn kms_rsa_public_key(arn: &str, path: &Path) -> Result<RsaPublicKey, CliError> {
    match read_rsa(path)? {
        RsaFile::Public(public) => Ok(public),
        RsaFile::Private(..) => Err(CliError::usage(format!(
            "--kms-rsa-public-key {} for {arn} is a private key: give the KMS key's public key",
            quote(path)
        ))),
    }
}

/// The PKCS#11 token options, checked together.
#[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
pub(crate) struct Pkcs11Options<'a> {
    /// `--pkcs11-module`.
    pub module: Option<&'a Path>,
    /// `--pkcs11-token`.
    pub token: Option<&'a str>,
}

/// The keyrings of the command line, generator first.
pub(crate) type Keyrings<'a> = Vec<Box<dyn Keyring + 'a>>;

/// Builds the keyrings, in command-line order, with one description each: one per raw,
/// PKCS#11 or discovery key, and one for all `--kms-key` keys together (at the place of the
/// first; their KMS calls run concurrently), and the KMS keyrings among them.
///
/// # Errors
/// Unreadable or invalid key files (usage, or I/O when a file cannot be read), a public
/// RSA key on decrypt, PKCS#11 problems, invalid KMS key identifiers.
pub(crate) fn keyrings<'a>(
    specs: &'a [KeySpec],
    encoding: KeyEncoding,
    mode: Mode,
    pkcs11: &Pkcs11Options<'_>,
    kms_opts: &KmsOptions<'_>,
) -> Result<(Keyrings<'a>, Vec<String>, kms::KmsKeys), CliError> {
    let mut token = Pkcs11Token::default();
    // A unit struct without the `kms` feature.
    #[allow(clippy::default_constructed_unit_structs)]
    let mut kms_keys = kms::KmsKeys::default();
    let mut out: Vec<Box<dyn Keyring + 'a>> = Vec::with_capacity(specs.len());
    let mut labels: Vec<String> = Vec::with_capacity(specs.len());
    let kms_ids: Vec<&str> = specs
        .iter()
        .filter_map(|s| match &s.source {
            KeySource::Kms(arn) => Some(arn.as_str()),
            _ => None,
        })
        .collect();
    let mut kms_done = false;
    for spec in specs {
        match &spec.source {
            KeySource::Kms(_) if kms_done => continue,
            KeySource::Kms(_) => {
                kms_done = true;
                out.push(kms_keys.keys_keyring(&kms_ids, out.len(), kms_opts)?);
                labels.push(format!(
                    "AWS KMS key{} {}",
                    if kms_ids.len() > 1 { "s" } else { "" },
                    kms_ids.join(", ")
                ));
                continue;
            }
            KeySource::KmsDiscovery => {
                out.push(kms_keys.discovery_keyring(mode, out.len(), kms_opts)?);
            }
            KeySource::RawAes(path) => {
                let bytes = read_key_file(path)?;
                let key = decode_aes_key(&bytes, encoding)
                    .map_err(|m| CliError::usage(format!("key file {}: {m}", quote(path))))?;
                let k = RawAesKeyring::new(&spec.namespace, &spec.name, &key).map_err(|e| {
                    CliError::usage(format!("{}: {}", spec.describe(), esdk_message(&e)))
                })?;
                out.push(Box::new(k));
            }
            KeySource::RawRsa(path) => out.push(Box::new(rsa_keyring(spec, path, mode)?)),
            KeySource::KmsRsa(arn) => {
                let padding = rsa_padding(spec.padding);
                let public = match (&spec.public_key, mode) {
                    (Some(path), _) => Some(kms_rsa_public_key(arn, path)?),
                    (None, Mode::Encrypt) => {
                        return Err(CliError::usage(format!(
                            "--kms-rsa-key {arn}: encrypting needs its public key: add \
                             --kms-rsa-public-key PEM after it (aws kms get-public-key)"
                        )));
                    }
                    (None, Mode::Decrypt) => None,
                };
                out.push(kms_keys.rsa_keyring(arn, padding, public, mode, out.len(), kms_opts)?);
            }
            KeySource::KmsEcdh(arn) => {
                let peer = spec.ecdh.as_ref();
                out.push(kms_keys.ecdh_keyring(arn, peer, mode, out.len(), kms_opts)?);
            }
            KeySource::Pkcs11(label) => {
                out.push(token.keyring(pkcs11, spec, label, mode)?);
            }
            KeySource::Hierarchy(h) => {
                out.push(kms_keys.hierarchy_keyring(h, out.len(), kms_opts)?);
            }
        }
        labels.push(spec.describe());
    }
    Ok((out, labels, kms_keys))
}

/// The token, opened on first use (builds without the `pkcs11` feature refuse PKCS#11
/// keys).
#[derive(Default)]
struct Pkcs11Token {
    #[cfg(feature = "pkcs11")]
    token: Option<esdk_pkcs11::Token>,
}

#[cfg(not(feature = "pkcs11"))]
impl Pkcs11Token {
    fn keyring<'a>(
        &mut self,
        _opts: &Pkcs11Options<'_>,
        _spec: &KeySpec,
        _label: &str,
        _mode: Mode,
    ) -> Result<Box<dyn Keyring + 'a>, CliError> {
        Err(CliError::usage(
            "not built with PKCS#11 support yet: this esdk was built without the `pkcs11` \
             feature (cargo install --path cli, default features)",
        ))
    }
}

#[cfg(feature = "pkcs11")]
impl Pkcs11Token {
    fn open(&mut self, opts: &Pkcs11Options<'_>) -> Result<&esdk_pkcs11::Token, CliError> {
        if self.token.is_none() {
            let (Some(module), Some(label)) = (opts.module, opts.token) else {
                return Err(CliError::usage(
                    "--pkcs11-key needs --pkcs11-module PATH and --pkcs11-token LABEL",
                ));
            };
            let mut cfg = esdk_pkcs11::TokenConfig::new(module, label);
            if let Ok(pin) = std::env::var(PIN_ENV) {
                cfg = cfg.with_pin(pin);
            }
            let token = esdk_pkcs11::Token::open(cfg)
                .map_err(|e| CliError::usage(format!("PKCS#11 token '{label}': {e}")))?;
            self.token = Some(token);
        }
        self.token
            .as_ref()
            .ok_or_else(|| CliError::usage("PKCS#11 token not open"))
    }

    fn keyring<'a>(
        &mut self,
        opts: &Pkcs11Options<'_>,
        spec: &KeySpec,
        label: &str,
        mode: Mode,
    ) -> Result<Box<dyn Keyring + 'a>, CliError> {
        use esdk_pkcs11::{OaepHash, Pkcs11AesKeyring, Pkcs11Error, Pkcs11RsaKeyring};
        let selector = pkcs11_selector(label)
            .map_err(|e| CliError::usage(format!("{}: {e}", spec.describe())))?;
        let token = self.open(opts)?;
        let fail = |e: Pkcs11Error| CliError::usage(format!("{}: {e}", spec.describe()));
        match Pkcs11AesKeyring::new(
            token,
            selector.clone(),
            spec.namespace.clone(),
            spec.name.clone(),
        ) {
            Ok(k) => return Ok(Box::new(k)),
            Err(Pkcs11Error::KeyNotFound { .. }) => {}
            Err(e) => return Err(fail(e)),
        }
        let hash = match spec.padding {
            RsaPaddingArg::OaepSha1 => OaepHash::Sha1,
            RsaPaddingArg::OaepSha256 => OaepHash::Sha256,
            RsaPaddingArg::OaepSha384 => OaepHash::Sha384,
            RsaPaddingArg::OaepSha512 => OaepHash::Sha512,
            RsaPaddingArg::Pkcs1 => {
                return Err(CliError::usage(format!(
                    "{}: PKCS#1 v1.5 padding is not offered for PKCS#11 keys; use OAEP",
                    spec.describe()
                )));
            }
        };
        let k = Pkcs11RsaKeyring::new(
            token,
            selector.clone(),
            spec.namespace.clone(),
            spec.name.clone(),
            hash,
        )
        .map_err(|e| match e {
            Pkcs11Error::KeyNotFound { .. } => CliError::usage(format!(
                "{}: no AES key and no RSA key with {selector} on the token",
                spec.describe()
            )),
            e => fail(e),
        })?;
        match mode {
            Mode::Encrypt if !k.can_encrypt() => Err(CliError::usage(format!(
                "{}: the token has no RSA public key with this label to encrypt with",
                spec.describe()
            ))),
            Mode::Decrypt if !k.can_decrypt() => Err(CliError::usage(format!(
                "{}: the token has no RSA private key with this label to decrypt with",
                spec.describe()
            ))),
            _ => Ok(Box::new(k)),
        }
    }
}

/// The key a `--pkcs11-key` value names: `label:NAME`, `id:HEX` (the `CKA_ID` bytes), or a
/// plain NAME, which is a label.
#[cfg(feature = "pkcs11")]
fn pkcs11_selector(value: &str) -> Result<esdk_pkcs11::KeySelector, String> {
    use esdk_pkcs11::KeySelector;
    if let Some(label) = value.strip_prefix("label:") {
        return Ok(KeySelector::label(label));
    }
    let Some(hex) = value.strip_prefix("id:") else {
        return Ok(KeySelector::label(value));
    };
    let bad = || format!("id:{hex} is not a hex CKA_ID (an even number of hex digits, e.g. id:01)");
    if hex.is_empty() || hex.len() % 2 != 0 {
        return Err(bad());
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| {
            hex.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or_else(bad)
        })
        .collect::<Result<Vec<u8>, _>>()
        .map(KeySelector::id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "pkcs11")]
    #[test]
    fn pkcs11_keys_are_named_by_label_or_hex_id() {
        use esdk_pkcs11::KeySelector;
        assert_eq!(
            pkcs11_selector("wrap").ok(),
            Some(KeySelector::label("wrap"))
        );
        assert_eq!(
            pkcs11_selector("label:id:x").ok(),
            Some(KeySelector::label("id:x"))
        );
        assert_eq!(
            pkcs11_selector("id:01aB").ok(),
            Some(KeySelector::id(vec![1, 0xab]))
        );
        for bad in ["id:", "id:1", "id:zz", "id:0g", "id:é1"] {
            let e = pkcs11_selector(bad).expect_err(bad);
            assert!(e.contains("not a hex CKA_ID"), "{e}");
        }
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn aes_keys_decode_in_each_encoding() {
        let key: Vec<u8> = (0u8..32).map(|i| i.wrapping_mul(37) ^ 0x9c).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&key);
        for input in [
            key.clone(),
            format!("{}\n", hex(&key)).into_bytes(),
            hex(&key).to_uppercase().into_bytes(),
            format!("  {b64}\r\n").into_bytes(),
            b64.trim_end_matches('=').as_bytes().to_vec(),
        ] {
            let k = decode_aes_key(&input, KeyEncoding::Auto);
            assert_eq!(k.as_deref().map(|k| &k[..]), Ok(&key[..]), "{input:?}");
        }
        for n in [16, 24] {
            let k = &key[..n];
            assert_eq!(
                // A newline: 32 hex digits alone are also 32 raw bytes (ambiguous).
                decode_aes_key(format!("{}\n", hex(k)).as_bytes(), KeyEncoding::Auto)
                    .as_deref()
                    .map(|k| &k[..]),
                Ok(k)
            );
        }
    }

    #[test]
    fn ambiguous_and_invalid_aes_keys_are_refused() {
        // 32 bytes that are also 32 hex digits (an AES-128 key in hex).
        let e = decode_aes_key(b"00112233445566778899aabbccddeeff", KeyEncoding::Auto);
        assert!(e.as_ref().is_err_and(|m| m.contains("ambiguous")), "{e:?}");
        assert_eq!(
            decode_aes_key(b"00112233445566778899aabbccddeeff", KeyEncoding::Hex).map(|k| k.len()),
            Ok(16)
        );
        assert_eq!(
            decode_aes_key(b"00112233445566778899aabbccddeeff", KeyEncoding::Raw).map(|k| k.len()),
            Ok(32)
        );
        // 24 bytes that are also base64 of 16.
        let e = decode_aes_key(b"AAAAAAAAAAAAAAAAAAAAAA==", KeyEncoding::Auto);
        assert!(e.as_ref().is_err_and(|m| m.contains("ambiguous")), "{e:?}");
        for bad in [
            &b""[..],
            b"abc",
            &[0u8; 33],
            b"0011223344556677889",
            &[0u8; 20],
        ] {
            assert!(decode_aes_key(bad, KeyEncoding::Auto).is_err(), "{bad:?}");
        }
        assert!(decode_aes_key(&[1u8; 20], KeyEncoding::Raw).is_err());
        assert!(decode_aes_key(b"zz", KeyEncoding::Hex).is_err());
        assert!(decode_aes_key(b"!!", KeyEncoding::Base64).is_err());
    }

    #[test]
    fn per_key_options_attach_to_the_key_before_them() {
        // keys at 3 and 7; a default at 1, an override at 5 (key 0), one at 9 (key 1).
        let v = attach(&[3, 7], vec![(1, "d"), (5, "a"), (9, "b")], "--x");
        assert_eq!(v.ok(), Some(vec![Some("a"), Some("b")]));
        let v = attach(&[3, 7], vec![(1, "d"), (9, "b")], "--x");
        assert_eq!(v.ok(), Some(vec![Some("d"), Some("b")]));
        assert!(attach(&[3], vec![(4, "a"), (5, "b")], "--x").is_err());
        assert!(attach(&[3], vec![(1, "a"), (2, "b")], "--x").is_err());
    }
}

//! Wrapping keys: which key flags were given (in command-line order, with their per-key
//! options), how key files are decoded, and the keyrings built from them.

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use clap::ArgMatches;
use esdk::Keyring;
use esdk::raw::RawAesKeyring;
use esdk::raw::ecdh::{EcdhPrivateKey, EcdhPublicKey, RawEcdhKeyring};
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
    /// `--raw-ecdh-key PEM`: a raw ECDH private key (followed by its peer).
    RawEcdh(PathBuf),
    /// `--recipient-public-key FILE` standing alone: an ephemeral sender to that recipient
    /// (EphemeralPrivateKeyToStaticPublicKey, encrypt only).
    EcdhRecipient(PathBuf),
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
    /// What follows a `--kms-ecdh-key`, `--raw-ecdh-key` or `--pkcs11-key` (ECDH keys only).
    pub ecdh: Option<EcdhPeer>,
}

/// What follows an ECDH private key flag (`--kms-ecdh-key ARN`, `--raw-ecdh-key PEM`, an EC
/// `--pkcs11-key`): the key agreement schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EcdhPeer {
    /// `--recipient-public-key FILE|ARN`: the key is the sender's
    /// (RawPrivateKeyToStaticPublicKey, KmsPrivateKeyToStaticPublicKey).
    Recipient(String),
    /// `--ecdh-discovery`: the key is the recipient's (PublicKeyDiscovery,
    /// KmsPublicKeyDiscovery).
    Discovery,
}

impl KeySpec {
    /// How the key is named in messages.
    pub fn describe(&self) -> String {
        let what = match &self.source {
            KeySource::RawAes(p) => format!("raw AES key {}", quote(p)),
            KeySource::RawRsa(p) => format!("raw RSA key {}", quote(p)),
            KeySource::Pkcs11(l) => format!("PKCS#11 key '{l}'"),
            KeySource::RawEcdh(p) => return format!("raw ECDH key {}", quote(p)),
            KeySource::EcdhRecipient(p) => {
                return format!("ECDH recipient {} (ephemeral sender)", quote(p));
            }
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
        indexed::<PathBuf>(m, "raw_ecdh_key")
            .into_iter()
            .map(|(i, p)| (i, KeySource::RawEcdh(p))),
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
    // The ECDH peers attach to the key before them; a --recipient-public-key after any other
    // key (or before the first) is a key of its own, the ephemeral sender.
    let (mut keys, mut ecdh) = ecdh_peers(keys, m)?;
    if common.kms_discovery {
        keys.push((usize::MAX, KeySource::KmsDiscovery));
        ecdh.push(None);
    }
    if keys.is_empty() {
        return Err(CliError::usage(
            "no wrapping key: give --raw-aes-key FILE, --raw-rsa-key PEM, --raw-ecdh-key PEM, \
             --recipient-public-key PEM, --kms-key ARN, --kms-rsa-key ARN, --kms-ecdh-key ARN, \
             --branch-key-id ID, --kms-discovery (decrypt) or --pkcs11-key LABEL",
        ));
    }
    let has_pkcs11_key = keys.iter().any(|(_, s)| matches!(s, KeySource::Pkcs11(_)));
    if !has_pkcs11_key
        && (common.pkcs11_module.is_some()
            || common.pkcs11_token.is_some()
            || common.pkcs11_slot.is_some()
            || common.pkcs11_pin_file.is_some())
    {
        return Err(CliError::usage(
            "--pkcs11-module / --pkcs11-token / --pkcs11-slot / --pkcs11-pin-file given without \
             --pkcs11-key LABEL",
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
                    KeySource::Kms(arn) => ("--kms-key", arn.clone()),
                    KeySource::KmsRsa(arn) if id != "rsa_padding" => ("--kms-rsa-key", arn.clone()),
                    KeySource::KmsEcdh(arn) => ("--kms-ecdh-key", arn.clone()),
                    KeySource::Hierarchy(h) => ("--branch-key-id", h.branch_key_id.clone()),
                    KeySource::RawEcdh(p) => ("--raw-ecdh-key", quote(p)),
                    KeySource::EcdhRecipient(p) => ("--recipient-public-key", quote(p)),
                    _ => continue,
                };
                return Err(CliError::usage(format!(
                    "{flag} follows {kind} {arn}: it applies to raw AES and RSA keys and \
                     PKCS#11 keys only (ECDH keys are named by their public keys)"
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

/// The flag of a key that takes an ECDH peer (`--recipient-public-key` or `--ecdh-discovery`
/// right after it), and whether it must have one.
fn ecdh_sender(source: &KeySource) -> Option<(String, bool)> {
    match source {
        KeySource::KmsEcdh(arn) => Some((format!("--kms-ecdh-key {arn}"), true)),
        KeySource::RawEcdh(p) => Some((format!("--raw-ecdh-key {}", quote(p)), true)),
        // Only an EC key pair on the token takes one; that is known once the token is open.
        KeySource::Pkcs11(l) => Some((format!("--pkcs11-key {l}"), false)),
        _ => None,
    }
}

/// Walks the key flags and the ECDH peer flags in command-line order: each
/// `--recipient-public-key` or `--ecdh-discovery` belongs to the ECDH key flag right before
/// it (`--kms-ecdh-key`, `--raw-ecdh-key`, `--pkcs11-key`); a `--recipient-public-key`
/// anywhere else is a key of its own (an ephemeral sender). Returns the keys, with the
/// standalone recipients among them, and the peer of each.
///
/// # Errors
/// A discovery flag not after an ECDH key, two peers for one key, an ECDH key without one.
#[allow(clippy::type_complexity)]
fn ecdh_peers(
    keys: Vec<(usize, KeySource)>,
    m: &ArgMatches,
) -> Result<(Vec<(usize, KeySource)>, Vec<Option<EcdhPeer>>), CliError> {
    const NEEDS: &str = "needs --recipient-public-key FILE (the key is the sender's) or \
                         --ecdh-discovery (the key is the recipient's; decrypt only) after it";
    enum Event {
        Key(KeySource),
        Peer(&'static str, EcdhPeer),
    }
    let mut events: Vec<(usize, Event)> =
        keys.into_iter().map(|(i, k)| (i, Event::Key(k))).collect();
    events.extend(
        indexed::<String>(m, "recipient_public_key")
            .into_iter()
            .map(|(at, v)| {
                (
                    at,
                    Event::Peer("--recipient-public-key", EcdhPeer::Recipient(v)),
                )
            }),
    );
    events.extend(
        indexed::<bool>(m, "ecdh_discovery")
            .into_iter()
            .map(|(at, _)| (at, Event::Peer("--ecdh-discovery", EcdhPeer::Discovery))),
    );
    events.sort_by_key(|(i, _)| *i);
    let mut keys: Vec<(usize, KeySource)> = Vec::with_capacity(events.len());
    let mut peers: Vec<Option<EcdhPeer>> = Vec::with_capacity(events.len());
    for (at, event) in events {
        let peer = match event {
            Event::Key(k) => {
                keys.push((at, k));
                peers.push(None);
                continue;
            }
            Event::Peer(flag, peer) => (flag, peer),
        };
        let before = keys.last().and_then(|(_, k)| ecdh_sender(k));
        match (before, peer) {
            (Some((sender, _)), (_, peer)) => {
                let slot = peers.last_mut().ok_or_else(|| CliError::usage("no key"))?;
                if slot.is_some() {
                    return Err(CliError::usage(format!(
                        "{sender}: give one --recipient-public-key or --ecdh-discovery after \
                         it, not two"
                    )));
                }
                *slot = Some(peer);
            }
            (None, (_, EcdhPeer::Recipient(v))) => {
                keys.push((at, KeySource::EcdhRecipient(PathBuf::from(v))));
                peers.push(None);
            }
            (None, (flag, EcdhPeer::Discovery)) => {
                return Err(CliError::usage(format!(
                    "{flag} must follow the --raw-ecdh-key, --pkcs11-key or --kms-ecdh-key it \
                     belongs to (the recipient's private key)"
                )));
            }
        }
    }
    for (k, ((_, source), peer)) in keys.iter().zip(&peers).enumerate() {
        let Some((sender, true)) = ecdh_sender(source) else {
            continue;
        };
        if peer.is_some() {
            continue;
        }
        // A recipient written before its key stands alone: say where it belongs.
        let misplaced = k
            .checked_sub(1)
            .is_some_and(|j| matches!(keys[j].1, KeySource::EcdhRecipient(_)));
        let kind = sender.split(' ').next().unwrap_or_default();
        let needs = if kind == "--kms-ecdh-key" {
            NEEDS.replacen("FILE", "FILE|ARN", 1)
        } else {
            NEEDS.to_owned()
        };
        let hint = if misplaced {
            format!(
                "; the --recipient-public-key before it is a key of its own (an ephemeral \
                 sender): a recipient must follow the {kind} it belongs to"
            )
        } else {
            String::new()
        };
        return Err(CliError::usage(format!("{sender} {needs}{hint}")));
    }
    Ok((keys, peers))
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

/// What an ECDH key file holds.
enum EcdhFile {
    Public(EcdhPublicKey),
    Private(EcdhPrivateKey),
}

/// Reads an EC key file: a PKCS#8 private key or a SubjectPublicKeyInfo public key, PEM or
/// DER, on P-256, P-384 or P-521.
fn read_ecdh(path: &Path) -> Result<EcdhFile, CliError> {
    let bytes = read_key_file(path)?;
    let bad = |what: &str| CliError::usage(format!("key file {}: {what}", quote(path)));
    const WANT: &str = "a P-256, P-384 or P-521 key: a PKCS#8 private key or a \
                        SubjectPublicKeyInfo public key, PEM or DER";
    match pem_label(&bytes) {
        Some(Ok(label)) => match label.as_str() {
            "PUBLIC KEY" => EcdhPublicKey::from_spki_pem(&bytes[..])
                .map(EcdhFile::Public)
                .map_err(|e| bad(&format!("{} ({WANT})", esdk_message(&e)))),
            "PRIVATE KEY" => EcdhPrivateKey::from_pkcs8_pem(&bytes[..])
                .map(EcdhFile::Private)
                .map_err(|e| bad(&format!("{} ({WANT})", esdk_message(&e)))),
            "EC PRIVATE KEY" => Err(bad(
                "a SEC1 EC PRIVATE KEY; the ECDH keyrings take PKCS#8 (as the spec and the \
                 MPL do): convert it with `openssl pkcs8 -topk8 -nocrypt -in KEY -out KEY.p8`",
            )),
            "ENCRYPTED PRIVATE KEY" => Err(bad(
                "a password-protected private key; give it unencrypted (openssl pkcs8 -nocrypt)",
            )),
            other => Err(bad(&format!("a PEM {other:?}, not {WANT}"))),
        },
        Some(Err(())) => Err(bad("not valid PEM (RFC 7468)")),
        None => EcdhPrivateKey::from_pkcs8_der(&bytes)
            .map(EcdhFile::Private)
            .or_else(|_| EcdhPublicKey::from_spki_der(&bytes).map(EcdhFile::Public))
            .map_err(|_| bad(&format!("not {WANT}"))),
    }
}

/// The recipient's public key of an ECDH key (a `--recipient-public-key` file).
fn ecdh_recipient(value: &str) -> Result<EcdhPublicKey, CliError> {
    if value.starts_with("arn:") {
        return Err(CliError::usage(format!(
            "--recipient-public-key {value}: a KMS key ARN names a recipient only after \
             --kms-ecdh-key; here give the public key as a PEM or DER SubjectPublicKeyInfo file"
        )));
    }
    let path = Path::new(value);
    match read_ecdh(path)? {
        EcdhFile::Public(public) => Ok(public),
        EcdhFile::Private(_) => Err(CliError::usage(format!(
            "--recipient-public-key {} is a private key: give the recipient's public key \
             (openssl pkey -pubout); a private key is --raw-ecdh-key",
            quote(path)
        ))),
    }
}

/// `--raw-ecdh-key PEM` with the peer after it: RawPrivateKeyToStaticPublicKey or
/// PublicKeyDiscovery.
fn raw_ecdh_keyring(
    path: &Path,
    peer: Option<&EcdhPeer>,
    mode: Mode,
) -> Result<RawEcdhKeyring, CliError> {
    let flag = format!("--raw-ecdh-key {}", quote(path));
    let private = match read_ecdh(path)? {
        EcdhFile::Private(private) => private,
        EcdhFile::Public(_) => {
            return Err(CliError::usage(format!(
                "{flag} is a public key: --raw-ecdh-key takes a private key (PKCS#8); to send \
                 to a recipient's public key alone (an ephemeral sender, encrypt only), give it \
                 as --recipient-public-key FILE"
            )));
        }
    };
    let curve = private.curve();
    let bad = |e: esdk::core::Error| CliError::usage(format!("{flag}: {}", esdk_message(&e)));
    match (peer, mode) {
        (Some(EcdhPeer::Recipient(r)), _) => {
            let recipient = ecdh_recipient(r)?;
            if recipient.curve() != curve {
                return Err(CliError::usage(format!(
                    "{flag} is a {curve} key but --recipient-public-key {} is on {}: both \
                     keys must be on one curve",
                    quote(Path::new(r)),
                    recipient.curve()
                )));
            }
            RawEcdhKeyring::raw_private_key_to_static_public_key(curve, private, recipient)
                .map_err(bad)
        }
        (Some(EcdhPeer::Discovery), Mode::Decrypt) => {
            RawEcdhKeyring::public_key_discovery(curve, private).map_err(bad)
        }
        (Some(EcdhPeer::Discovery), Mode::Encrypt) => Err(CliError::usage(format!(
            "{flag} --ecdh-discovery decrypts only: to encrypt, follow the sender's private key \
             with --recipient-public-key FILE, or give --recipient-public-key FILE alone"
        ))),
        (None, _) => Err(CliError::usage(format!(
            "{flag} needs --recipient-public-key FILE or --ecdh-discovery after it"
        ))),
    }
}

/// A `--recipient-public-key FILE` of its own: EphemeralPrivateKeyToStaticPublicKey.
fn ephemeral_ecdh_keyring(path: &Path, mode: Mode) -> Result<RawEcdhKeyring, CliError> {
    if mode == Mode::Decrypt {
        return Err(CliError::usage(format!(
            "--recipient-public-key {} on its own is an ephemeral sender: it encrypts only; to \
             decrypt, give the recipient's private key: --raw-ecdh-key PEM --ecdh-discovery",
            quote(path)
        )));
    }
    let value = path.to_string_lossy();
    let recipient = ecdh_recipient(&value)?;
    RawEcdhKeyring::ephemeral_private_key_to_static_public_key(recipient.curve(), recipient)
        .map_err(|e| {
            CliError::usage(format!(
                "--recipient-public-key {}: {}",
                quote(path),
                esdk_message(&e)
            ))
        })
}

/// The PKCS#11 token options, checked together.
#[cfg_attr(not(feature = "pkcs11"), allow(dead_code))]
pub(crate) struct Pkcs11Options<'a> {
    /// `--pkcs11-module`.
    pub module: Option<&'a Path>,
    /// `--pkcs11-token`.
    pub token: Option<&'a str>,
    /// `--pkcs11-slot`.
    pub slot: Option<u64>,
    /// `--pkcs11-pin-file`.
    pub pin_file: Option<&'a Path>,
    /// `--quiet`: no warnings.
    pub quiet: bool,
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
            KeySource::RawEcdh(path) => {
                out.push(Box::new(raw_ecdh_keyring(path, spec.ecdh.as_ref(), mode)?));
            }
            KeySource::EcdhRecipient(path) => {
                out.push(Box::new(ephemeral_ecdh_keyring(path, mode)?));
            }
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
            let module = match (opts.module, opts.token.is_some() || opts.slot.is_some()) {
                (Some(module), true) => module,
                _ => {
                    return Err(CliError::usage(
                        "--pkcs11-key needs --pkcs11-module PATH and --pkcs11-token LABEL (or \
                         --pkcs11-slot ID)",
                    ));
                }
            };
            let ctx = esdk_pkcs11::load_module(module)
                .map_err(|e| CliError::usage(format!("PKCS#11 module: {e}")))?;
            // The token's label (esdk-pkcs11 opens tokens by label) and whether it needs a
            // PIN (None: no such token; Token::open says so, with the labels there are).
            let (label, needs_pin) = match (opts.slot, opts.token) {
                (Some(slot), _) => {
                    let (label, needs) = token_in_slot(&ctx, slot)?;
                    (label, Some(needs))
                }
                (None, Some(label)) => (label.to_owned(), token_needs_pin(&ctx, label)),
                (None, None) => return Err(CliError::usage("no PKCS#11 token given")),
            };
            let mut cfg = esdk_pkcs11::TokenConfig::new(module, label.as_str());
            if let Some(pin) = user_pin(opts, &label, needs_pin == Some(true))? {
                cfg = cfg.with_pin(pin);
            }
            let token = esdk_pkcs11::Token::open(cfg)
                .map_err(|e| CliError::usage(format!("PKCS#11 token '{label}': {e}")))?;
            if let Some(slot) = opts.slot
                && token.slot_id() != slot
            {
                return Err(CliError::usage(format!(
                    "--pkcs11-slot {slot}: its token '{label}' has the label of another token \
                     (slot {}) that comes first; tokens are opened by label, so give them \
                     distinct labels",
                    token.slot_id()
                )));
            }
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
        use esdk_pkcs11::{
            OaepHash, Pkcs11AesKeyring, Pkcs11EcdhKeyring, Pkcs11Error, Pkcs11RsaKeyring,
        };
        let selector = pkcs11_selector(label)
            .map_err(|e| CliError::usage(format!("{}: {e}", spec.describe())))?;
        let token = self.open(opts)?;
        let fail = |e: Pkcs11Error| CliError::usage(format!("{}: {e}", spec.describe()));
        // An ECDH peer after it: the key is an EC key pair.
        if let Some(peer) = &spec.ecdh {
            let no_ec = |e: Pkcs11Error| match e {
                Pkcs11Error::KeyNotFound { .. } => CliError::usage(format!(
                    "--pkcs11-key {label}: no EC key pair with {selector} on the token \
                     (--recipient-public-key and --ecdh-discovery after a --pkcs11-key need \
                     one; to send to a recipient with an ephemeral key of its own, put the \
                     --recipient-public-key before the --pkcs11-key)"
                )),
                e => CliError::usage(format!("--pkcs11-key {label}: {e}")),
            };
            let k = match (peer, mode) {
                (EcdhPeer::Recipient(r), _) => {
                    let recipient = ecdh_recipient(r)?;
                    Pkcs11EcdhKeyring::private_key_to_static_public_key(
                        token,
                        selector.clone(),
                        recipient,
                    )
                    .map_err(no_ec)?
                }
                (EcdhPeer::Discovery, Mode::Decrypt) => {
                    Pkcs11EcdhKeyring::public_key_discovery(token, selector.clone())
                        .map_err(no_ec)?
                }
                (EcdhPeer::Discovery, Mode::Encrypt) => {
                    return Err(CliError::usage(format!(
                        "--pkcs11-key {label} --ecdh-discovery decrypts only: to encrypt, \
                         follow the token key with --recipient-public-key FILE"
                    )));
                }
            };
            return Ok(Box::new(k));
        }
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
            // Not an RSA key (none at all, or a key of another type): an EC key pair needs
            // its peer after it.
            Pkcs11Error::KeyNotFound { .. } | Pkcs11Error::KeyType { .. }
                if Pkcs11EcdhKeyring::public_key_discovery(token, selector.clone()).is_ok() =>
            {
                CliError::usage(format!(
                    "--pkcs11-key {label} is an EC key pair: follow it with \
                     --recipient-public-key FILE (the token key is the sender's) or \
                     --ecdh-discovery (the recipient's; decrypt only)"
                ))
            }
            Pkcs11Error::KeyNotFound { .. } => CliError::usage(format!(
                "{}: no AES key, no RSA key and no EC key pair with {selector} on the token",
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

/// Whether the token needs the user PIN to log in (and has no PIN pad of its own).
#[cfg(feature = "pkcs11")]
fn needs_pin(info: &esdk_pkcs11::cryptoki::slot::TokenInfo) -> bool {
    info.login_required() && !info.protected_authentication_path()
}

/// The label of the token in slot `slot` (`--pkcs11-slot`) and whether it needs a PIN.
#[cfg(feature = "pkcs11")]
fn token_in_slot(
    ctx: &esdk_pkcs11::cryptoki::context::Pkcs11,
    slot: u64,
) -> Result<(String, bool), CliError> {
    let slots = ctx
        .get_slots_with_token()
        .map_err(|e| CliError::usage(format!("PKCS#11 module: listing slots: {e}")))?;
    let found = slots.iter().find(|s| s.id() == slot).copied();
    let Some(found) = found else {
        let ids: Vec<String> = slots.iter().map(|s| s.id().to_string()).collect();
        return Err(CliError::usage(format!(
            "--pkcs11-slot {slot}: no slot with a token has this id (slots with a token: {})",
            if ids.is_empty() {
                "none".to_owned()
            } else {
                ids.join(", ")
            }
        )));
    };
    let info = ctx
        .get_token_info(found)
        .map_err(|e| CliError::usage(format!("--pkcs11-slot {slot}: reading its token: {e}")))?;
    if !info.token_initialized() {
        return Err(CliError::usage(format!(
            "--pkcs11-slot {slot}: its token is not initialized"
        )));
    }
    Ok((info.label().trim_end().to_owned(), needs_pin(&info)))
}

/// Whether the token labelled `label` needs a PIN; `None` when no such token is found.
#[cfg(feature = "pkcs11")]
fn token_needs_pin(ctx: &esdk_pkcs11::cryptoki::context::Pkcs11, label: &str) -> Option<bool> {
    ctx.get_slots_with_token()
        .ok()?
        .into_iter()
        .filter_map(|s| ctx.get_token_info(s).ok())
        .find(|i| i.token_initialized() && i.label().trim_end() == label.trim_end())
        .map(|i| needs_pin(&i))
}

/// The user PIN: `--pkcs11-pin-file`, else `ESDK_PKCS11_PIN`, else (when the token needs
/// one and stdin is a terminal) a prompt on the terminal, without echo.
///
/// # Errors
/// An unreadable or empty PIN file; a token that needs a PIN when none is given and stdin
/// is not a terminal.
#[cfg(feature = "pkcs11")]
fn user_pin(
    opts: &Pkcs11Options<'_>,
    label: &str,
    needed: bool,
) -> Result<Option<String>, CliError> {
    use std::io::IsTerminal as _;
    if let Some(path) = opts.pin_file {
        return read_pin_file(path, opts.quiet).map(Some);
    }
    if let Ok(pin) = std::env::var(PIN_ENV) {
        return Ok(Some(pin));
    }
    if !needed {
        return Ok(None);
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(format!(
            "PKCS#11 token '{label}' needs the user PIN: set {PIN_ENV}, give \
             --pkcs11-pin-file FILE, or run on a terminal to be asked for it"
        )));
    }
    let pin = rpassword::prompt_password(format!("PKCS#11 user PIN for token '{label}': "))
        .map_err(|e| CliError::usage(format!("reading the PKCS#11 PIN from the terminal: {e}")))?;
    if pin.is_empty() {
        return Err(CliError::usage("no PKCS#11 PIN entered"));
    }
    Ok(Some(pin))
}

/// Reads `--pkcs11-pin-file`: the PIN, without one trailing newline (`\n` or `\r\n`).
#[cfg(feature = "pkcs11")]
fn read_pin_file(path: &Path, quiet: bool) -> Result<String, CliError> {
    let bad = |what: &str| CliError::usage(format!("--pkcs11-pin-file {}: {what}", quote(path)));
    let meta =
        fs::metadata(path).map_err(|e| CliError::io_path("reading the PIN file", path, &e))?;
    if !meta.is_file() {
        return Err(bad("not a regular file"));
    }
    if meta.len() > 1024 {
        return Err(bad("too large for a PIN file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = meta.permissions().mode();
        if mode & 0o044 != 0 && !quiet {
            eprintln!(
                "esdk: warning: PIN file {} can be read by {} (mode {:o}); chmod 600 it",
                quote(path),
                if mode & 0o004 != 0 {
                    "every user"
                } else {
                    "its group"
                },
                mode & 0o777
            );
        }
    }
    #[cfg(not(unix))]
    let _ = quiet;
    let mut bytes = Zeroizing::new(
        fs::read(path).map_err(|e| CliError::io_path("reading the PIN file", path, &e))?,
    );
    if bytes.ends_with(b"\n") {
        bytes.pop();
        if bytes.ends_with(b"\r") {
            bytes.pop();
        }
    }
    if bytes.is_empty() {
        return Err(bad("empty (no PIN)"));
    }
    // Moved out, not copied: the String owns the zeroizing buffer's allocation. Its drop
    // in the token's AuthPin zeroizes it.
    String::from_utf8(std::mem::take(&mut *bytes)).map_err(|e| {
        let mut v = e.into_bytes();
        zeroize::Zeroize::zeroize(&mut v);
        bad("not UTF-8 text")
    })
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

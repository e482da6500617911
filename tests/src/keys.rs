//! The keys manifest (`keys.json`, versions 1 to 4) of the test-vector framework, loaded once
//! for the decrypt manifests ([`crate::manifest`]) and the encrypt manifests
//! ([`crate::encrypt_manifest`]): the entries, their decoded materials, and the pairing of an
//! RSA public key with its private half.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

use crate::manifest::{Fields, as_object};

/// Reads and parses a JSON file.
pub(crate) fn read_json(path: &Path) -> Result<Value, String> {
    let text =
        fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: invalid JSON: {e}", path.display()))
}

/// Resolve a `file://` URI relative to `dir`.
pub(crate) fn resolve_uri(dir: &Path, uri: &str) -> Result<PathBuf, String> {
    let rel = uri
        .strip_prefix("file://")
        .ok_or_else(|| format!("URI {uri:?} does not start with \"file://\""))?;
    if rel.is_empty() {
        return Err(format!("URI {uri:?} has an empty path"));
    }
    Ok(dir.join(rel))
}

// ---------------------------------------------------------------------------
// Keys manifest
// ---------------------------------------------------------------------------

/// One entry of a keys manifest.
#[derive(Debug, Clone)]
pub(crate) struct KeyEntry {
    pub(crate) name: String,
    /// The entry's `type`.
    pub(crate) kind: String,
    pub(crate) key_id: Option<String>,
    pub(crate) algorithm: Option<String>,
    pub(crate) bits: Option<u64>,
    pub(crate) encoding: Option<String>,
    /// `material`, joined with `line-separator` when it is a list (keys v1).
    pub(crate) material: Option<String>,
    /// ECDH members (`sender-material`, `recipient-material`, the public keys...).
    pub(crate) ecdh: BTreeMap<String, String>,
    /// `public-key-encoding` (ECDH private entries) or `encoding` (KMS ECDH entries).
    pub(crate) public_key_encoding: Option<String>,
    /// `static-branch-key` entries: (`branchKeyVersion`, `branchKey` in base64).
    pub(crate) branch_key: Option<(String, String)>,
}

impl KeyEntry {
    /// The key name written on the wire: `key-id`, else (keys v1) the entry name.
    pub(crate) fn wire_name(&self) -> &str {
        self.key_id.as_deref().unwrap_or(&self.name)
    }
}

/// A parsed keys manifest.
#[derive(Debug, Clone)]
pub(crate) struct KeysManifest {
    path: PathBuf,
    pub(crate) keys: BTreeMap<String, KeyEntry>,
}

const KEY_COMMON_FIELDS: &[&str] = &[
    "type",
    "encrypt",
    "decrypt",
    "key-id",
    "algorithm",
    "bits",
    "encoding",
    "material",
    "line-separator",
];
const KEY_ECDH_FIELDS: &[&str] = &[
    "sender-material",
    "recipient-material",
    "public-key-encoding",
    "sender-material-public-key",
    "recipient-material-public-key",
];
const KEY_STATIC_MATERIAL_FIELDS: &[&str] = &[
    "algorithmSuiteId",
    "encryptionContext",
    "encryptedDataKeys",
    "requiredEncryptionContextKeys",
    "plaintextDataKey",
    "signingKey",
    "verificationKey",
    "symmetricSigningKeys",
];
const KEY_BRANCH_KEY_FIELDS: &[&str] = &["branchKeyVersion", "branchKey", "beaconKey"];

impl KeysManifest {
    pub(crate) fn load(path: &Path) -> Result<Self, String> {
        let root = read_json(path)?;
        let ctx = format!("keys manifest {}", path.display());
        let root = as_object(&root, &ctx)?;
        let top = Fields::new(root, ctx.clone());
        top.allow(&["manifest", "keys"])?;
        let meta = Fields::new(top.obj_req("manifest")?, format!("{ctx}: manifest"));
        meta.allow(&["type", "version"])?;
        let kind = meta.str_req("type")?;
        if kind != "keys" {
            return Err(format!(
                "{ctx}: manifest.type is {kind:?}, expected \"keys\""
            ));
        }
        let version = meta.u32_req("version")?;
        if !(1..=4).contains(&version) {
            return Err(format!(
                "{ctx}: unsupported keys manifest version {version}"
            ));
        }
        let mut keys = BTreeMap::new();
        for (name, value) in top.obj_req("keys")? {
            let entry_ctx = format!("{ctx}: key {name:?}");
            let obj = as_object(value, &entry_ctx)?;
            let entry = Self::parse_entry(name, Fields::new(obj, entry_ctx))?;
            keys.insert(name.clone(), entry);
        }
        Ok(KeysManifest {
            path: path.to_path_buf(),
            keys,
        })
    }

    fn parse_entry(name: &str, f: Fields<'_>) -> Result<KeyEntry, String> {
        let kind = f.str_req("type")?.to_owned();
        let extra: &[&str] = match kind.as_str() {
            "symmetric" | "private" | "public" | "aws-kms" | "aws-kms-rsa" => &[],
            "ecc-private" | "aws-kms-ecdh" => KEY_ECDH_FIELDS,
            "static-material" => KEY_STATIC_MATERIAL_FIELDS,
            "static-branch-key" => KEY_BRANCH_KEY_FIELDS,
            other => return Err(f.err(format_args!("unknown key type {other:?}"))),
        };
        for key in f.obj.keys() {
            if !KEY_COMMON_FIELDS.contains(&key.as_str()) && !extra.contains(&key.as_str()) {
                return Err(f.err(format_args!("unknown field {key:?} for key type {kind:?}")));
            }
        }
        let separator = f.str_opt("line-separator")?.unwrap_or("");
        let material = match f.get("material") {
            None => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(Value::Array(lines)) => {
                let mut parts = Vec::with_capacity(lines.len());
                for (i, line) in lines.iter().enumerate() {
                    parts.push(line.as_str().ok_or_else(|| {
                        f.err(format_args!("material[{i}] must be a string, found {line}"))
                    })?);
                }
                Some(parts.join(separator))
            }
            Some(other) => {
                return Err(f.err(format_args!(
                    "material must be a string or a list of strings, found {other}"
                )));
            }
        };
        let mut ecdh = BTreeMap::new();
        for field in [
            "sender-material",
            "recipient-material",
            "sender-material-public-key",
            "recipient-material-public-key",
        ] {
            if let Some(s) = f.str_opt(field)? {
                ecdh.insert(field.to_owned(), s.to_owned());
            }
        }
        let public_key_encoding = match kind.as_str() {
            "ecc-private" => f.str_opt("public-key-encoding")?.map(str::to_owned),
            "aws-kms-ecdh" => f.str_opt("encoding")?.map(str::to_owned),
            _ => None,
        };
        let branch_key = match kind.as_str() {
            "static-branch-key" => Some((
                f.str_req("branchKeyVersion")?.to_owned(),
                f.str_req("branchKey")?.to_owned(),
            )),
            _ => None,
        };
        // Type-check the members that are not carried.
        f.bool_opt("encrypt")?;
        f.bool_opt("decrypt")?;
        Ok(KeyEntry {
            name: name.to_owned(),
            kind,
            key_id: f.str_opt("key-id")?.map(str::to_owned),
            algorithm: f.str_opt("algorithm")?.map(str::to_owned),
            bits: f.u64_opt("bits")?,
            encoding: f.str_opt("encoding")?.map(str::to_owned),
            material,
            ecdh,
            public_key_encoding,
            branch_key,
        })
    }

    pub(crate) fn get(&self, name: &str) -> Result<&KeyEntry, String> {
        self.keys.get(name).ok_or_else(|| {
            format!(
                "key {name:?} is not in the keys manifest {}",
                self.path.display()
            )
        })
    }

    /// The PEM to decrypt with for an RSA entry, and whether it is private.
    /// See [`crate::manifest::KeyDescription::RawRsa`] for the pairing rule.
    pub(crate) fn rsa_decrypt_pem(&self, entry: &KeyEntry) -> Result<(String, bool), String> {
        let pem = rsa_pem(entry)?;
        match entry.kind.as_str() {
            "private" => Ok((pem.to_owned(), true)),
            "public" => {
                let wanted =
                    rsa_public_numbers(pem).map_err(|e| format!("key {:?}: {e}", entry.name))?;
                for candidate in self.keys.values() {
                    if candidate.kind != "private" || candidate.algorithm.as_deref() != Some("rsa")
                    {
                        continue;
                    }
                    let candidate_pem = rsa_pem(candidate)?;
                    let numbers = rsa_public_numbers(candidate_pem)
                        .map_err(|e| format!("key {:?}: {e}", candidate.name))?;
                    if numbers == wanted {
                        return Ok((candidate_pem.to_owned(), true));
                    }
                }
                Ok((pem.to_owned(), false))
            }
            other => Err(format!(
                "key {:?} has type {other:?}, expected \"private\" or \"public\" for raw RSA",
                entry.name
            )),
        }
    }
}

pub(crate) fn rsa_pem(entry: &KeyEntry) -> Result<&str, String> {
    if entry.algorithm.as_deref() != Some("rsa") {
        return Err(format!(
            "key {:?} has algorithm {:?}, expected \"rsa\"",
            entry.name, entry.algorithm
        ));
    }
    if entry.encoding.as_deref() != Some("pem") {
        return Err(format!(
            "key {:?} has encoding {:?}, expected \"pem\" for RSA",
            entry.name, entry.encoding
        ));
    }
    entry
        .material
        .as_deref()
        .ok_or_else(|| format!("key {:?} has no material", entry.name))
}

// ---------------------------------------------------------------------------
// Minimal PEM / DER decoding, only to pair RSA public and private keys
// ---------------------------------------------------------------------------

/// Decode a PEM block: its label and DER body.
fn pem_decode(pem: &str) -> Result<(String, Vec<u8>), String> {
    let mut label = None;
    let mut body = String::new();
    let mut in_body = false;
    for line in pem.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("-----BEGIN ") {
            label = Some(rest.trim_end_matches('-').to_owned());
            in_body = true;
        } else if line.starts_with("-----END ") {
            break;
        } else if in_body {
            body.push_str(line);
        }
    }
    let label = label.ok_or("no PEM BEGIN line")?;
    let der = base64::engine::general_purpose::STANDARD
        .decode(body.as_bytes())
        .map_err(|e| format!("bad base64 in PEM {label:?}: {e}"))?;
    Ok((label, der))
}

/// Read one DER TLV: `(tag, contents, rest)`.
fn der_tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), String> {
    let (&tag, rest) = input.split_first().ok_or("DER: unexpected end")?;
    let (&first, rest) = rest.split_first().ok_or("DER: missing length")?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return Err("DER: unsupported length encoding".to_owned());
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return Err("DER: length exceeds input".to_owned());
    }
    Ok((tag, &rest[..len], &rest[len..]))
}

fn der_expect(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), String> {
    let (t, contents, rest) = der_tlv(input)?;
    if t != tag {
        return Err(format!("DER: expected tag 0x{tag:02x}, found 0x{t:02x}"));
    }
    Ok((contents, rest))
}

/// A DER INTEGER without leading zero bytes.
fn der_uint(input: &[u8]) -> Result<(Vec<u8>, &[u8]), String> {
    let (contents, rest) = der_expect(input, 0x02)?;
    let start = contents
        .iter()
        .position(|&b| b != 0)
        .unwrap_or(contents.len());
    Ok((contents[start..].to_vec(), rest))
}

/// DER of the rsaEncryption OID, 1.2.840.113549.1.1.1.
const RSA_ENCRYPTION_OID: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];

fn check_rsa_algorithm(alg_id: &[u8]) -> Result<(), String> {
    let (oid, _) = der_expect(alg_id, 0x06)?;
    if oid != RSA_ENCRYPTION_OID {
        return Err("key algorithm is not rsaEncryption".to_owned());
    }
    Ok(())
}

/// `(modulus, public exponent)` of an RSA key in PEM form: `PUBLIC KEY`
/// (SubjectPublicKeyInfo), `RSA PUBLIC KEY` (PKCS#1), `PRIVATE KEY` (PKCS#8) or
/// `RSA PRIVATE KEY` (PKCS#1).
pub(crate) fn rsa_public_numbers(pem: &str) -> Result<(Vec<u8>, Vec<u8>), String> {
    let (label, der) = pem_decode(pem)?;
    let rsa_public_key = |der: &[u8]| -> Result<(Vec<u8>, Vec<u8>), String> {
        let (seq, _) = der_expect(der, 0x30)?;
        let (n, rest) = der_uint(seq)?;
        let (e, _) = der_uint(rest)?;
        Ok((n, e))
    };
    let rsa_private_key = |der: &[u8]| -> Result<(Vec<u8>, Vec<u8>), String> {
        let (seq, _) = der_expect(der, 0x30)?;
        let (_version, rest) = der_uint(seq)?;
        let (n, rest) = der_uint(rest)?;
        let (e, _) = der_uint(rest)?;
        Ok((n, e))
    };
    match label.as_str() {
        "PUBLIC KEY" => {
            let (spki, _) = der_expect(&der, 0x30)?;
            let (alg_id, rest) = der_expect(spki, 0x30)?;
            check_rsa_algorithm(alg_id)?;
            let (bits, _) = der_expect(rest, 0x03)?;
            let (&unused, key) = bits.split_first().ok_or("DER: empty BIT STRING")?;
            if unused != 0 {
                return Err("DER: BIT STRING with unused bits".to_owned());
            }
            rsa_public_key(key)
        }
        "RSA PUBLIC KEY" => rsa_public_key(&der),
        "PRIVATE KEY" => {
            let (info, _) = der_expect(&der, 0x30)?;
            let (_version, rest) = der_uint(info)?;
            let (alg_id, rest) = der_expect(rest, 0x30)?;
            check_rsa_algorithm(alg_id)?;
            let (key, _) = der_expect(rest, 0x04)?;
            rsa_private_key(key)
        }
        "RSA PRIVATE KEY" => rsa_private_key(&der),
        other => Err(format!("unsupported PEM label {other:?} for an RSA key")),
    }
}

/// Decode a symmetric key entry's material.
pub(crate) fn aes_key(entry: &KeyEntry) -> Result<Vec<u8>, String> {
    if entry.kind != "symmetric" || entry.algorithm.as_deref() != Some("aes") {
        return Err(format!(
            "key {:?} is not a symmetric AES key (type {:?}, algorithm {:?})",
            entry.name, entry.kind, entry.algorithm
        ));
    }
    let material = entry
        .material
        .as_deref()
        .ok_or_else(|| format!("key {:?} has no material", entry.name))?;
    let key = match entry.encoding.as_deref() {
        Some("base64") => base64::engine::general_purpose::STANDARD
            .decode(material.trim())
            .map_err(|e| format!("key {:?}: bad base64 material: {e}", entry.name))?,
        Some("hex") => hex::decode(material.trim())
            .map_err(|e| format!("key {:?}: bad hex material: {e}", entry.name))?,
        other => {
            return Err(format!(
                "key {:?}: unsupported symmetric key encoding {other:?}",
                entry.name
            ));
        }
    };
    let bits = entry
        .bits
        .ok_or_else(|| format!("key {:?} has no \"bits\"", entry.name))?;
    if !matches!(key.len(), 16 | 24 | 32) || u64::try_from(key.len() * 8).ok() != Some(bits) {
        return Err(format!(
            "key {:?}: material is {} bytes, but bits is {bits}",
            entry.name,
            key.len()
        ));
    }
    Ok(key)
}

/// Decode an ECDH public key member (`base64-der` SubjectPublicKeyInfo).
pub(crate) fn ecdh_public_der(entry: &KeyEntry, material: &str) -> Result<Vec<u8>, String> {
    match entry.public_key_encoding.as_deref() {
        Some("base64-der") => base64::engine::general_purpose::STANDARD
            .decode(material.trim())
            .map_err(|e| format!("key {:?}: bad base64 public key: {e}", entry.name)),
        other => Err(format!(
            "key {:?}: unsupported public key encoding {other:?}",
            entry.name
        )),
    }
}

//! AWS KMS key ARNs and identifiers (spec `framework/aws-kms/aws-kms-key-arn.md`) and the
//! multi-Region key rules (`aws-kms-mrk-match-for-decrypt.md`, `aws-kms-mrk-are-unique.md`).

use std::fmt;

/// The resource type of a KMS ARN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    /// `key/<key-id>`.
    Key,
    /// `alias/<alias-name>`.
    Alias,
}

impl ResourceType {
    /// `"key"` or `"alias"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Key => "key",
            ResourceType::Alias => "alias",
        }
    }
}

/// Why a string is not a valid AWS KMS ARN or identifier.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArnError {
    /// The identifier is empty.
    Empty,
    /// The string does not have exactly 6 `:`-separated parts.
    PartCount {
        /// The number of parts found.
        found: usize,
    },
    /// The first part is not `arn`.
    NotArn,
    /// The partition is empty.
    EmptyPartition,
    /// The service is not `kms`.
    Service(String),
    /// The region is empty.
    EmptyRegion,
    /// The region is not a plain hostname label (see [`is_valid_region`]): it would end up
    /// in the KMS endpoint's host name.
    Region(String),
    /// The account is empty.
    EmptyAccount,
    /// The resource section has no `/` or an empty type.
    Resource,
    /// The resource type is neither `key` nor `alias`.
    ResourceType(String),
    /// The resource id is empty.
    EmptyResourceId,
    /// A key ARN was required, but this is an alias ARN.
    AliasNotAllowed,
    /// A bare identifier (key id or `alias/name`) contains a `:` or whitespace.
    Identifier,
}

impl fmt::Display for ArnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArnError::Empty => f.write_str("the key identifier is empty"),
            ArnError::PartCount { found } => write!(
                f,
                "an ARN has 6 ':'-separated parts (arn:partition:kms:region:account:key/id), \
                 found {found}"
            ),
            ArnError::NotArn => f.write_str("an ARN starts with \"arn:\""),
            ArnError::EmptyPartition => f.write_str("the ARN partition is empty"),
            ArnError::Service(s) => write!(f, "the ARN service is {s:?}, not \"kms\""),
            ArnError::EmptyRegion => f.write_str("the ARN region is empty"),
            ArnError::Region(r) => write!(
                f,
                "the ARN region {r:?} is not a region name (1 to 63 lowercase letters, \
                 digits and '-', not starting or ending with '-')"
            ),
            ArnError::EmptyAccount => f.write_str("the ARN account is empty"),
            ArnError::Resource => f.write_str(
                "the ARN resource is not of the form key/<key-id> or alias/<alias-name>",
            ),
            ArnError::ResourceType(t) => {
                write!(
                    f,
                    "the ARN resource type is {t:?}, not \"key\" or \"alias\""
                )
            }
            ArnError::EmptyResourceId => f.write_str("the ARN resource id is empty"),
            ArnError::AliasNotAllowed => f.write_str(
                "an alias ARN names no key: KMS records the key ARN in each message, so \
                 decryption needs the key ARN (arn:<partition>:kms:<region>:<account>:key/<id>)",
            ),
            ArnError::Identifier => {
                f.write_str("a key id or alias must not contain ':' or whitespace")
            }
        }
    }
}

impl std::error::Error for ArnError {}

/// Whether `region` is a plain hostname label, as every AWS region name is (`us-west-2`,
/// `cn-north-1`, `us-gov-west-1`): 1 to 63 ASCII lowercase letters, digits and `-`, not
/// starting or ending with `-`. The SDK puts the region into the endpoint's host name
/// (`kms.<region>.amazonaws.com`), so anything else (`.`, `/`, `@`, `:`, uppercase) could
/// point a client at another host.
pub fn is_valid_region(region: &str) -> bool {
    let b = region.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        && b.first() != Some(&b'-')
        && b.last() != Some(&b'-')
}

/// A parsed, valid AWS KMS ARN: `arn:partition:kms:region:account:resource-type/resource-id`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KmsArn {
    partition: String,
    region: String,
    account: String,
    resource_type: ResourceType,
    resource_id: String,
}

impl KmsArn {
    /// Parses and validates an ARN.
    ///
    /// # Errors
    /// The first rule of `aws-kms-key-arn.md` §"A valid AWS KMS ARN" that fails.
    pub fn parse(s: &str) -> Result<Self, ArnError> {
        if s.is_empty() {
            return Err(ArnError::Empty);
        }
        let parts: Vec<&str> = s.split(':').collect();
        if parts.len() != 6 {
            return Err(ArnError::PartCount { found: parts.len() });
        }
        if parts[0] != "arn" {
            return Err(ArnError::NotArn);
        }
        if parts[1].is_empty() {
            return Err(ArnError::EmptyPartition);
        }
        if parts[2] != "kms" {
            return Err(ArnError::Service(parts[2].to_owned()));
        }
        if parts[3].is_empty() {
            return Err(ArnError::EmptyRegion);
        }
        if !is_valid_region(parts[3]) {
            return Err(ArnError::Region(parts[3].to_owned()));
        }
        if parts[4].is_empty() {
            return Err(ArnError::EmptyAccount);
        }
        let (rtype, rid) = parts[5].split_once('/').ok_or(ArnError::Resource)?;
        let resource_type = match rtype {
            "key" => ResourceType::Key,
            "alias" => ResourceType::Alias,
            "" => return Err(ArnError::Resource),
            other => return Err(ArnError::ResourceType(other.to_owned())),
        };
        if rid.is_empty() {
            return Err(ArnError::EmptyResourceId);
        }
        Ok(Self {
            partition: parts[1].to_owned(),
            region: parts[3].to_owned(),
            account: parts[4].to_owned(),
            resource_type,
            resource_id: rid.to_owned(),
        })
    }

    /// Parses an ARN that must name a key (resource type `key`), as EDK provider info must.
    ///
    /// # Errors
    /// As [`parse`](Self::parse); [`ArnError::AliasNotAllowed`] for an alias ARN.
    pub fn parse_key_arn(s: &str) -> Result<Self, ArnError> {
        let arn = Self::parse(s)?;
        if arn.resource_type != ResourceType::Key {
            return Err(ArnError::AliasNotAllowed);
        }
        Ok(arn)
    }

    /// The partition (`aws`, `aws-cn`, `aws-us-gov`, ...).
    pub fn partition(&self) -> &str {
        &self.partition
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The account id.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// `key` or `alias`.
    pub fn resource_type(&self) -> ResourceType {
        self.resource_type
    }

    /// The key id or alias name.
    pub fn resource_id(&self) -> &str {
        &self.resource_id
    }

    /// Whether this is a multi-Region key ARN: resource type `key` and an id starting with
    /// `mrk-` (an alias is never one, whatever its name).
    pub fn is_multi_region_key(&self) -> bool {
        self.resource_type == ResourceType::Key && self.resource_id.starts_with("mrk-")
    }

    /// The same ARN in another region (multi-Region key replicas share everything else).
    pub fn with_region(&self, region: &str) -> Self {
        Self {
            region: region.to_owned(),
            ..self.clone()
        }
    }

    /// Whether two ARNs are equal in every part but the region.
    fn same_but_region(&self, other: &Self) -> bool {
        self.partition == other.partition
            && self.account == other.account
            && self.resource_type == other.resource_type
            && self.resource_id == other.resource_id
    }
}

impl fmt::Display for KmsArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:kms:{}:{}:{}/{}",
            self.partition,
            self.region,
            self.account,
            self.resource_type.as_str(),
            self.resource_id
        )
    }
}

/// A valid AWS KMS key identifier: a key or alias ARN, a bare key id, or `alias/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyIdentifier {
    /// A full ARN (key or alias).
    Arn(KmsArn),
    /// A bare key id (`1234abcd-...` or `mrk-...`): KMS resolves it in the client's region.
    KeyId(String),
    /// An alias name (`alias/my-key`): KMS resolves it in the client's region.
    Alias(String),
}

impl KeyIdentifier {
    /// Parses and validates an identifier (spec §"A valid AWS KMS identifier").
    ///
    /// # Errors
    /// [`ArnError`] for an empty identifier, a malformed ARN, or a bare id or alias with `:`
    /// or whitespace.
    pub fn parse(s: &str) -> Result<Self, ArnError> {
        if s.is_empty() {
            return Err(ArnError::Empty);
        }
        if s.starts_with("arn:") || s == "arn" {
            return KmsArn::parse(s).map(KeyIdentifier::Arn);
        }
        if s.contains(':') || s.chars().any(char::is_whitespace) {
            return Err(ArnError::Identifier);
        }
        match s.strip_prefix("alias/") {
            Some("") => Err(ArnError::EmptyResourceId),
            Some(_) => Ok(KeyIdentifier::Alias(s.to_owned())),
            None => Ok(KeyIdentifier::KeyId(s.to_owned())),
        }
    }

    /// The region named by an ARN identifier; `None` for bare ids and aliases.
    pub fn region(&self) -> Option<&str> {
        match self {
            KeyIdentifier::Arn(a) => Some(a.region()),
            _ => None,
        }
    }

    /// Whether this is a key ARN (the only kind of identifier that can match an EDK).
    pub fn is_key_arn(&self) -> bool {
        matches!(self, KeyIdentifier::Arn(a) if a.resource_type() == ResourceType::Key)
    }

    /// Whether this identifies a multi-Region key (spec §"Identifying an AWS KMS
    /// multi-Region identifier").
    pub fn is_multi_region_key(&self) -> bool {
        match self {
            KeyIdentifier::Arn(a) => a.is_multi_region_key(),
            KeyIdentifier::KeyId(id) => id.starts_with("mrk-"),
            KeyIdentifier::Alias(_) => false,
        }
    }

    /// The multi-Region resource id (`mrk-...`), if this is a multi-Region key.
    fn mrk_resource_id(&self) -> Option<&str> {
        match self {
            KeyIdentifier::Arn(a) if a.is_multi_region_key() => Some(a.resource_id()),
            KeyIdentifier::KeyId(id) if id.starts_with("mrk-") => Some(id),
            _ => None,
        }
    }
}

impl fmt::Display for KeyIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyIdentifier::Arn(a) => a.fmt(f),
            KeyIdentifier::KeyId(s) | KeyIdentifier::Alias(s) => f.write_str(s),
        }
    }
}

/// Whether a string identifies a multi-Region key (spec §"Identifying an AWS KMS
/// multi-Region identifier"). Invalid identifiers are not.
pub fn is_multi_region_identifier(s: &str) -> bool {
    KeyIdentifier::parse(s).is_ok_and(|id| id.is_multi_region_key())
}

/// "AWS KMS MRK Match for Decrypt": identical identifiers match; otherwise both must be
/// multi-Region key ARNs equal in every part but the region.
pub fn mrk_match_for_decrypt(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    match (KmsArn::parse(a), KmsArn::parse(b)) {
        (Ok(x), Ok(y)) => {
            x.is_multi_region_key() && y.is_multi_region_key() && x.same_but_region(&y)
        }
        _ => false,
    }
}

/// "Assert AWS KMS MRK are unique": no two identifiers may name the same multi-Region key
/// (same resource id in different regions), since which region to call would be ambiguous.
///
/// # Errors
/// Every identifier that shares its multi-Region resource id with another one.
pub fn assert_mrks_unique(ids: &[&str]) -> Result<(), Vec<String>> {
    let parsed: Vec<(&str, Option<String>)> = ids
        .iter()
        .map(|s| {
            let rid = KeyIdentifier::parse(s)
                .ok()
                .and_then(|id| id.mrk_resource_id().map(str::to_owned));
            (*s, rid)
        })
        .collect();
    let dups: Vec<String> = parsed
        .iter()
        .filter(|(_, rid)| {
            rid.as_ref().is_some_and(|r| {
                parsed
                    .iter()
                    .filter(|(_, o)| o.as_deref() == Some(r.as_str()))
                    .count()
                    > 1
            })
        })
        .map(|(s, _)| (*s).to_owned())
        .collect();
    if dups.is_empty() { Ok(()) } else { Err(dups) }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "arn:aws:kms:us-west-2:658956600833:key/b3537ef1-d8dc-4780-9f5a-55776cbb2f7f";
    const MRK_W: &str =
        "arn:aws:kms:us-west-2:658956600833:key/mrk-80bd8ecdcd4342aebd84b7dc9da498a7";
    const MRK_E: &str =
        "arn:aws:kms:us-east-1:658956600833:key/mrk-80bd8ecdcd4342aebd84b7dc9da498a7";

    #[test]
    fn valid_arns() {
        let a = KmsArn::parse(KEY).unwrap();
        assert_eq!(a.partition(), "aws");
        assert_eq!(a.region(), "us-west-2");
        assert_eq!(a.account(), "658956600833");
        assert_eq!(a.resource_type(), ResourceType::Key);
        assert_eq!(a.to_string(), KEY);
        assert!(!a.is_multi_region_key());
        let alias =
            KmsArn::parse("arn:aws:kms:us-west-2:111122223333:alias/mrk-looks-like-one").unwrap();
        assert!(!alias.is_multi_region_key());
        // Extra '/' belong to the resource id.
        let deep = KmsArn::parse("arn:aws:kms:r:1:alias/a/b/c").unwrap();
        for r in [
            "us-gov-west-1",
            "cn-north-1",
            "eu-isoe-west-1",
            "r",
            "local",
        ] {
            let arn = format!("arn:aws:kms:{r}:1:key/k");
            assert_eq!(KmsArn::parse(&arn).unwrap().region(), r);
        }
        assert_eq!(deep.resource_id(), "a/b/c");
        assert!(KmsArn::parse(MRK_W).unwrap().is_multi_region_key());
    }

    #[test]
    fn invalid_arns() {
        use ArnError::*;
        let cases: &[(&str, ArnError)] = &[
            ("", Empty),
            ("arn:aws:kms:us-west-2:1:key", Resource),
            ("arn:aws:kms:us-west-2:1:key/", EmptyResourceId),
            ("arn:aws:kms:us-west-2:1:/id", Resource),
            (
                "arn:aws:kms:us-west-2:1:grant/x",
                ResourceType("grant".into()),
            ),
            ("arn::kms:us-west-2:1:key/x", EmptyPartition),
            ("arn:aws:s3:us-west-2:1:key/x", Service("s3".into())),
            ("arn:aws:kms::1:key/x", EmptyRegion),
            (
                "arn:aws:kms:attacker.example/:1:key/k",
                Region("attacker.example/".into()),
            ),
            (
                "arn:aws:kms:us-west-2.evil.com:1:key/k",
                Region("us-west-2.evil.com".into()),
            ),
            ("arn:aws:kms:US-WEST-2:1:key/k", Region("US-WEST-2".into())),
            ("arn:aws:kms:-us:1:key/k", Region("-us".into())),
            ("arn:aws:kms:us-:1:key/k", Region("us-".into())),
            ("arn:aws:kms:us west:1:key/k", Region("us west".into())),
            ("arn:aws:kms:a@b:1:key/k", Region("a@b".into())),
            (
                "arn:aws:kms:us\u{2d}west\u{ff0d}2:1:key/k",
                Region("us-west\u{ff0d}2".into()),
            ),
            ("arn:aws:kms:us-west-2::key/x", EmptyAccount),
            ("arx:aws:kms:us-west-2:1:key/x", NotArn),
            ("arn:aws:kms:us-west-2:1:key/x:y", PartCount { found: 7 }),
            ("arn:aws:kms:us-west-2", PartCount { found: 4 }),
        ];
        for (s, e) in cases {
            assert_eq!(KmsArn::parse(s).as_ref(), Err(e), "{s}");
            // Identifiers that are ARNs are refused the same way.
            if s.starts_with("arn:") {
                assert_eq!(KeyIdentifier::parse(s).err().as_ref(), Some(e), "{s}");
            }
        }
        assert!(!is_valid_region(&"a".repeat(64)));
        assert!(is_valid_region(&"a".repeat(63)));
        println!("{} invalid ARNs refused", cases.len());
        assert_eq!(
            KmsArn::parse_key_arn("arn:aws:kms:r:1:alias/x"),
            Err(AliasNotAllowed)
        );
    }

    #[test]
    fn identifiers() {
        assert!(matches!(
            KeyIdentifier::parse(KEY),
            Ok(KeyIdentifier::Arn(_))
        ));
        assert!(matches!(
            KeyIdentifier::parse("alias/x"),
            Ok(KeyIdentifier::Alias(_))
        ));
        assert!(matches!(
            KeyIdentifier::parse("mrk-123"),
            Ok(KeyIdentifier::KeyId(_))
        ));
        assert_eq!(
            KeyIdentifier::parse("alias/"),
            Err(ArnError::EmptyResourceId)
        );
        assert_eq!(KeyIdentifier::parse("a b"), Err(ArnError::Identifier));
        assert_eq!(
            KeyIdentifier::parse("arn:x"),
            Err(ArnError::PartCount { found: 2 })
        );
        assert!(is_multi_region_identifier("mrk-123"));
        assert!(is_multi_region_identifier(MRK_E));
        assert!(!is_multi_region_identifier("alias/mrk-123"));
        assert!(!is_multi_region_identifier(KEY));
    }

    #[test]
    fn mrk_match() {
        assert!(mrk_match_for_decrypt(MRK_W, MRK_E));
        assert!(mrk_match_for_decrypt(KEY, KEY));
        let key_e = KEY.replace("us-west-2", "us-east-1");
        assert!(!mrk_match_for_decrypt(KEY, &key_e));
        let other_acct = MRK_E.replace("658956600833", "111122223333");
        assert!(!mrk_match_for_decrypt(MRK_W, &other_acct));
        assert!(!mrk_match_for_decrypt(
            MRK_W,
            "mrk-80bd8ecdcd4342aebd84b7dc9da498a7"
        ));
    }

    #[test]
    fn mrks_unique() {
        assert!(assert_mrks_unique(&[KEY, MRK_W]).is_ok());
        let err = assert_mrks_unique(&[KEY, MRK_W, MRK_E]).unwrap_err();
        assert_eq!(err, vec![MRK_W.to_owned(), MRK_E.to_owned()]);
        let err = assert_mrks_unique(&[MRK_W, "mrk-80bd8ecdcd4342aebd84b7dc9da498a7"]).unwrap_err();
        assert_eq!(err.len(), 2);
    }
}

//! Encryption context: canonical serialization and a zero-copy view of a received one
//! (spec `framework/structures.md` §Serialization, `data-format/message-header.md`).
//!
//! Serialized form: empty context → 0 bytes; otherwise u16 pair count, then each pair as
//! u16 key length, key, u16 value length, value, sorted by key bytes, keys unique.
//! The reader also accepts the legacy empty form `00 00` (count 0) that some older ESDKs
//! wrote inside a 2-byte section, and contexts not in sorted order.

use crate::error::{EcError, Error, PolicyViolation};

/// The prefix reserved for keys the ESDK itself writes.
pub const RESERVED_PREFIX: &str = "aws-crypto-";
/// The key under which signing suites store the public verification key.
pub const PUBLIC_KEY_EC_KEY: &str = "aws-crypto-public-key";

/// A pair of the encryption context as raw bytes.
pub type RawPair<'a> = (&'a [u8], &'a [u8]);

fn be16(b: &[u8], at: usize) -> Option<usize> {
    let hi = *b.get(at)?;
    let lo = *b.get(at + 1)?;
    Some(usize::from(u16::from_be_bytes([hi, lo])))
}

/// A zero-copy, validated view of a serialized encryption context (the bytes of the header's
/// key-value section, without its u16 length prefix).
#[derive(Clone, Copy)]
pub struct EcView<'a> {
    bytes: &'a [u8],
    count: u16,
    sorted: bool,
}

impl<'a> EcView<'a> {
    /// The empty context.
    pub const EMPTY: EcView<'static> = EcView {
        bytes: &[],
        count: 0,
        sorted: true,
    };

    /// Parses and validates a serialized context: lengths, UTF-8, unique keys.
    ///
    /// # Errors
    /// An [`EcError`] naming the first pair that failed.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, EcError> {
        if bytes.is_empty() {
            return Ok(EcView {
                bytes,
                count: 0,
                sorted: true,
            });
        }
        let count = be16(bytes, 0).ok_or(EcError::Length)?;
        if count == 0 {
            // Legacy empty form: exactly the count field and nothing else.
            return if bytes.len() == 2 {
                Ok(EcView {
                    bytes,
                    count: 0,
                    sorted: true,
                })
            } else {
                Err(EcError::ZeroCount)
            };
        }
        let mut at = 2;
        let mut sorted = true;
        let mut prev: Option<&[u8]> = None;
        for i in 0..count {
            let pair = i as u16;
            let klen = be16(bytes, at).ok_or(EcError::Length)?;
            let key = bytes.get(at + 2..at + 2 + klen).ok_or(EcError::Length)?;
            at += 2 + klen;
            let vlen = be16(bytes, at).ok_or(EcError::Length)?;
            let val = bytes.get(at + 2..at + 2 + vlen).ok_or(EcError::Length)?;
            at += 2 + vlen;
            if core::str::from_utf8(key).is_err() || core::str::from_utf8(val).is_err() {
                return Err(EcError::Utf8 { pair });
            }
            if let Some(p) = prev {
                if key == p {
                    return Err(EcError::DuplicateKey { pair });
                }
                if key < p {
                    sorted = false;
                }
            }
            prev = Some(key);
        }
        if at != bytes.len() {
            return Err(EcError::Length);
        }
        let view = EcView {
            bytes,
            count: count as u16,
            sorted,
        };
        if !sorted {
            // Rare (not written by any current ESDK): check uniqueness the slow way,
            // bounded by the 64 KiB section.
            for (i, (k, _)) in view.iter_raw().enumerate() {
                if view.iter_raw().take(i).any(|(k2, _)| k2 == k) {
                    return Err(EcError::DuplicateKey { pair: i as u16 });
                }
            }
        }
        Ok(view)
    }

    /// What [`from_checked`](Self::from_checked) needs to rebuild this view without
    /// checking the bytes again: the pair count and whether the keys are sorted.
    pub(crate) fn checked_parts(&self) -> (u16, bool) {
        (self.count, self.sorted)
    }

    /// A view of bytes that [`parse`](Self::parse) accepted earlier, with the parts it
    /// found ([`checked_parts`](Self::checked_parts)).
    pub(crate) fn from_checked(bytes: &'a [u8], (count, sorted): (u16, bool)) -> Self {
        EcView {
            bytes,
            count,
            sorted,
        }
    }

    /// Number of pairs.
    pub fn len(&self) -> usize {
        usize::from(self.count)
    }

    /// Whether the context has no pairs.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The bytes as received.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// Whether the received bytes are already the canonical serialization (sorted, and not
    /// the legacy empty form).
    pub fn is_canonical(&self) -> bool {
        self.sorted && (self.count != 0 || self.bytes.is_empty())
    }

    /// The pairs in the order received, as raw bytes.
    pub fn iter_raw(&self) -> RawIter<'a> {
        RawIter {
            bytes: self.bytes,
            at: 2,
            left: self.count,
        }
    }

    /// The pairs in the order received, as strings (validated UTF-8).
    pub fn iter(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.iter_raw().map(|(k, v)| {
            (
                core::str::from_utf8(k).unwrap_or_default(),
                core::str::from_utf8(v).unwrap_or_default(),
            )
        })
    }

    /// The pairs sorted by key bytes.
    pub fn iter_sorted(&self) -> SortedIter<'a> {
        SortedIter {
            view: *self,
            last: None,
            direct: self.sorted.then(|| self.iter_raw()),
        }
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }
}

impl core::fmt::Debug for EcView<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Iterator over the raw pairs of an [`EcView`] in received order.
#[derive(Clone)]
pub struct RawIter<'a> {
    bytes: &'a [u8],
    at: usize,
    left: u16,
}

impl<'a> Iterator for RawIter<'a> {
    type Item = RawPair<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let klen = be16(self.bytes, self.at)?;
        let key = self.bytes.get(self.at + 2..self.at + 2 + klen)?;
        self.at += 2 + klen;
        let vlen = be16(self.bytes, self.at)?;
        let val = self.bytes.get(self.at + 2..self.at + 2 + vlen)?;
        self.at += 2 + vlen;
        Some((key, val))
    }
}

/// Iterator over the pairs of an [`EcView`] in key order.
#[derive(Clone)]
pub struct SortedIter<'a> {
    view: EcView<'a>,
    last: Option<&'a [u8]>,
    direct: Option<RawIter<'a>>,
}

impl<'a> Iterator for SortedIter<'a> {
    type Item = RawPair<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        if let Some(it) = self.direct.as_mut() {
            return it.next();
        }
        // Selection of the next key above the last one: quadratic, but only for
        // unsorted contexts, which are bounded by the 64 KiB section.
        let last = self.last;
        let next = self
            .view
            .iter_raw()
            .filter(|(k, _)| last.is_none_or(|l| *k > l))
            .min_by(|a, b| a.0.cmp(b.0))?;
        self.last = Some(next.0);
        Some(next)
    }
}

/// Serialized length of a context given as pairs (assumed unique).
///
/// # Errors
/// [`EcError::TooLarge`] when the result would exceed 65 535 bytes or a key or value
/// exceeds 65 535 bytes.
pub fn serialized_len<'a, I>(pairs: I) -> Result<usize, EcError>
where
    I: IntoIterator<Item = RawPair<'a>>,
{
    let mut n = 0usize;
    let mut any = false;
    for (k, v) in pairs {
        if k.len() > 0xFFFF || v.len() > 0xFFFF {
            return Err(EcError::TooLarge);
        }
        any = true;
        n = n.saturating_add(4 + k.len() + v.len());
    }
    let total = if any { n.saturating_add(2) } else { 0 };
    if total > 0xFFFF {
        return Err(EcError::TooLarge);
    }
    Ok(total)
}

/// Writes the canonical serialization of `pairs` (which must already be sorted and unique)
/// into `out` and returns the bytes written.
///
/// # Errors
/// [`Error::BufferTooSmall`] when `out` is too short; [`EcError::TooLarge`] as for
/// [`serialized_len`].
pub fn write<'a, I>(pairs: I, out: &mut [u8]) -> Result<usize, Error>
where
    I: IntoIterator<Item = RawPair<'a>>,
    I::IntoIter: Clone,
{
    let it = pairs.into_iter();
    let len = serialized_len(it.clone()).map_err(ec_err)?;
    if len == 0 {
        return Ok(0);
    }
    let out = out
        .get_mut(..len)
        .ok_or(Error::BufferTooSmall { required: len })?;
    let count = it.clone().count();
    out[..2].copy_from_slice(&(count as u16).to_be_bytes());
    let mut at = 2;
    for (k, v) in it {
        for field in [k, v] {
            out[at..at + 2].copy_from_slice(&(field.len() as u16).to_be_bytes());
            out[at + 2..at + 2 + field.len()].copy_from_slice(field);
            at += 2 + field.len();
        }
    }
    Ok(len)
}

/// Feeds the canonical serialization of `pairs` (sorted, unique, small enough) to `sink`
/// piece by piece, without a buffer.
pub fn feed<'a, I>(pairs: I, sink: &mut dyn FnMut(&[u8]))
where
    I: IntoIterator<Item = RawPair<'a>>,
    I::IntoIter: Clone,
{
    let it = pairs.into_iter();
    let count = it.clone().count();
    if count == 0 {
        return;
    }
    sink(&(count as u16).to_be_bytes());
    for (k, v) in it {
        sink(&(k.len() as u16).to_be_bytes());
        sink(k);
        sink(&(v.len() as u16).to_be_bytes());
        sink(v);
    }
}

pub(crate) fn ec_err(e: EcError) -> Error {
    Error::Malformed {
        offset: 0,
        kind: crate::error::Malformed::EncryptionContext(e),
    }
}

/// Sorts a caller's encryption context in place by key bytes and checks it: keys unique,
/// none with the reserved `aws-crypto-` prefix.
///
/// # Errors
/// [`PolicyViolation::ReservedEncryptionContextKey`] or
/// [`ApiMisuse::DuplicateEncryptionContextKey`](crate::error::ApiMisuse).
pub fn sort_and_check(pairs: &mut [(&str, &str)]) -> Result<(), Error> {
    pairs.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    for w in pairs.windows(2) {
        if w[0].0 == w[1].0 {
            return Err(crate::error::ApiMisuse::DuplicateEncryptionContextKey.into());
        }
    }
    if pairs.iter().any(|(k, _)| k.starts_with(RESERVED_PREFIX)) {
        return Err(PolicyViolation::ReservedEncryptionContextKey.into());
    }
    Ok(())
}

/// Merges two sorted pair sequences into one sorted sequence. On equal keys the pair from
/// `a` is taken and the one from `b` dropped.
#[derive(Clone)]
pub struct Merge<'a, A: Iterator<Item = RawPair<'a>>, B: Iterator<Item = RawPair<'a>>> {
    a: core::iter::Peekable<A>,
    b: core::iter::Peekable<B>,
}

impl<'a, A, B> Merge<'a, A, B>
where
    A: Iterator<Item = RawPair<'a>>,
    B: Iterator<Item = RawPair<'a>>,
{
    /// Merges `a` and `b`.
    pub fn new(a: A, b: B) -> Self {
        Self {
            a: a.peekable(),
            b: b.peekable(),
        }
    }
}

impl<'a, A, B> Iterator for Merge<'a, A, B>
where
    A: Iterator<Item = RawPair<'a>>,
    B: Iterator<Item = RawPair<'a>>,
{
    type Item = RawPair<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        match (self.a.peek(), self.b.peek()) {
            (Some(x), Some(y)) => {
                if x.0 < y.0 {
                    self.a.next()
                } else if x.0 > y.0 {
                    self.b.next()
                } else {
                    self.b.next();
                    self.a.next()
                }
            }
            (Some(_), None) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}

/// Raw-byte view of a sorted slice of string pairs.
pub fn raw_pairs<'a>(
    pairs: &'a [(&'a str, &'a str)],
) -> impl Iterator<Item = RawPair<'a>> + Clone + 'a {
    pairs.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_round_trip() {
        let mut pairs = [("b", "2"), ("a", "1"), ("ключ", "значение")];
        sort_and_check(&mut pairs).unwrap();
        let mut buf = [0u8; 64];
        let n = write(raw_pairs(&pairs), &mut buf).unwrap();
        let v = EcView::parse(&buf[..n]).unwrap();
        assert!(v.is_canonical());
        assert_eq!(v.len(), 3);
        assert_eq!(v.get("a"), Some("1"));
        assert_eq!(v.get("ключ"), Some("значение"));
        assert_eq!(&buf[..4], &[0, 3, 0, 1]);
    }

    #[test]
    fn empty_and_legacy_empty() {
        let mut buf = [0u8; 4];
        assert_eq!(write(core::iter::empty(), &mut buf).unwrap(), 0);
        let v = EcView::parse(&[0, 0]).unwrap();
        assert!(v.is_empty() && !v.is_canonical());
        assert_eq!(EcView::parse(&[0, 0, 0]).unwrap_err(), EcError::ZeroCount);
    }

    #[test]
    fn rejects_duplicates_bad_utf8_and_lengths() {
        let dup = [0, 2, 0, 1, b'a', 0, 0, 0, 1, b'a', 0, 0];
        assert_eq!(
            EcView::parse(&dup).unwrap_err(),
            EcError::DuplicateKey { pair: 1 }
        );
        let bad = [0, 1, 0, 1, 0xFF, 0, 0];
        assert_eq!(EcView::parse(&bad).unwrap_err(), EcError::Utf8 { pair: 0 });
        let short = [0, 1, 0, 5, b'a'];
        assert_eq!(EcView::parse(&short).unwrap_err(), EcError::Length);
        let extra = [0, 1, 0, 1, b'a', 0, 0, 9];
        assert_eq!(EcView::parse(&extra).unwrap_err(), EcError::Length);
        let mut r = [("aws-crypto-x", "1")];
        assert!(sort_and_check(&mut r).is_err());
        let mut d = [("k", "1"), ("k", "2")];
        assert!(sort_and_check(&mut d).is_err());
    }

    #[test]
    fn unsorted_input_is_accepted_and_iterated_in_order() {
        let unsorted = [0, 3, 0, 1, b'c', 0, 0, 0, 1, b'a', 0, 0, 0, 1, b'b', 0, 0];
        let v = EcView::parse(&unsorted).unwrap();
        assert!(!v.is_canonical());
        let keys: [&[u8]; 3] = [b"a", b"b", b"c"];
        assert!(v.iter_sorted().map(|(k, _)| k).eq(keys.iter().copied()));
        let dup = [0, 3, 0, 1, b'c', 0, 0, 0, 1, b'a', 0, 0, 0, 1, b'c', 0, 0];
        assert_eq!(
            EcView::parse(&dup).unwrap_err(),
            EcError::DuplicateKey { pair: 2 }
        );
    }

    #[test]
    fn merge_keeps_order_and_prefers_first() {
        let a = [("a", "1"), ("c", "3")];
        let b = [("b", "2"), ("c", "x")];
        let m: [RawPair<'_>; 3] = {
            let mut it = Merge::new(raw_pairs(&a), raw_pairs(&b));
            [it.next().unwrap(), it.next().unwrap(), it.next().unwrap()]
        };
        assert_eq!(m[0].0, b"a");
        assert_eq!(m[1].0, b"b");
        assert_eq!(m[2], (&b"c"[..], &b"3"[..]));
    }

    #[test]
    fn too_large_is_refused() {
        let big = [0u8; 0x10000];
        let k = core::str::from_utf8(&big[..40000]).unwrap();
        let v = core::str::from_utf8(&big[..30000]).unwrap();
        let pairs = [(k, v)];
        assert_eq!(serialized_len(raw_pairs(&pairs)), Err(EcError::TooLarge));
    }
}

//! Encryption context: canonical serialization and a zero-copy view of a received one
//! (spec `framework/structures.md` §Serialization, `data-format/message-header.md`).
//!
//! Serialized form: empty context → 0 bytes; otherwise u16 pair count, then each pair as
//! u16 key length, key, u16 value length, value, sorted by key bytes, keys unique.
//! The reader also accepts the legacy empty form `00 00` (count 0) that some older ESDKs
//! wrote inside a 2-byte section, and contexts not in sorted order.

use core::cmp::Ordering;

use crate::error::{ContextError, Error, PolicyViolation};

/// The prefix reserved for keys the ESDK itself writes.
pub const RESERVED_PREFIX: &str = "aws-crypto-";
/// The key under which signing suites store the public verification key.
pub const PUBLIC_KEY_CONTEXT_KEY: &str = "aws-crypto-public-key";

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
pub struct ContextView<'a> {
    bytes: &'a [u8],
    count: u16,
    sorted: bool,
}

impl<'a> ContextView<'a> {
    /// The empty context.
    pub const EMPTY: ContextView<'static> = ContextView {
        bytes: &[],
        count: 0,
        sorted: true,
    };

    /// Parses and validates a serialized context: lengths, UTF-8, unique keys.
    ///
    /// A context received unsorted (no current ESDK writes one) is checked for duplicate
    /// keys without scratch, by the bounded fallback of [`parse_with`](Self::parse_with)
    /// (at most about 4.2 million key comparisons, for the largest, 64 KiB section); lend
    /// scratch to `parse_with` for O(n log n).
    ///
    /// # Errors
    /// An [`ContextError`] naming the first pair that failed.
    pub fn parse(bytes: &'a [u8]) -> Result<Self, ContextError> {
        Self::parse_with(bytes, &mut [], &mut 0)
    }

    /// Checks lengths, UTF-8, and duplicates among neighbours (which is all of them when the
    /// keys are sorted); a view of unsorted keys still needs [`check_unique`].
    pub(crate) fn parse_unchecked_order(bytes: &'a [u8]) -> Result<Self, ContextError> {
        if bytes.is_empty() {
            return Ok(ContextView {
                bytes,
                count: 0,
                sorted: true,
            });
        }
        let count = be16(bytes, 0).ok_or(ContextError::Length)?;
        if count == 0 {
            // Legacy empty form: exactly the count field and nothing else.
            return if bytes.len() == 2 {
                Ok(ContextView {
                    bytes,
                    count: 0,
                    sorted: true,
                })
            } else {
                Err(ContextError::ZeroCount)
            };
        }
        let mut at = 2;
        let mut sorted = true;
        let mut prev: Option<&[u8]> = None;
        for i in 0..count {
            let pair = i as u16;
            let klen = be16(bytes, at).ok_or(ContextError::Length)?;
            let key = bytes
                .get(at + 2..at + 2 + klen)
                .ok_or(ContextError::Length)?;
            at += 2 + klen;
            let vlen = be16(bytes, at).ok_or(ContextError::Length)?;
            let val = bytes
                .get(at + 2..at + 2 + vlen)
                .ok_or(ContextError::Length)?;
            at += 2 + vlen;
            if core::str::from_utf8(key).is_err() || core::str::from_utf8(val).is_err() {
                return Err(ContextError::Utf8 { pair });
            }
            if let Some(p) = prev {
                if key == p {
                    return Err(ContextError::DuplicateKey { pair });
                }
                if key < p {
                    sorted = false;
                }
            }
            prev = Some(key);
        }
        if at != bytes.len() {
            return Err(ContextError::Length);
        }
        let view = ContextView {
            bytes,
            count: count as u16,
            sorted,
        };
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
        ContextView {
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

    /// The pairs sorted by key bytes. For a context received unsorted this is a selection
    /// without scratch: n(n+1)/2 key comparisons over the whole iteration (at most about
    /// 134 million for 16 383 pairs, the most a 64 KiB section holds); lend scratch to
    /// [`iter_sorted_with`](Self::iter_sorted_with) for O(n log n).
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

impl core::fmt::Debug for ContextView<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// Iterator over the raw pairs of an [`ContextView`] in received order.
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

/// Iterator over the pairs of an [`ContextView`] in key order.
#[derive(Clone)]
pub struct SortedIter<'a> {
    view: ContextView<'a>,
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

// ---------------------------------------------------------------------------------------------
// Uniqueness checks and sorted order without a heap
// ---------------------------------------------------------------------------------------------
//
// A context received unsorted (no current ESDK writes one) needs a duplicate-key check and,
// for the header authentication, its pairs in key order. With a caller-lent scratch of two
// bytes per pair, both are an index of u16 pair offsets sorted with `sort_unstable_by`
// (O(n log n) key comparisons; duplicates are neighbours). Without scratch, a bounded
// fallback sorts blocks of [`BLOCK`] offsets on the stack and binary-searches every earlier
// key in each block: about n²/(2·BLOCK)·log2(BLOCK) comparisons, at most ~4.2 million for the
// largest section (16 383 pairs in 64 KiB).

/// Pairs per stack block of the no-scratch fallback (2 bytes each on the stack).
pub const BLOCK: usize = 256;

/// Scratch bytes per pair that the indexed (O(n log n)) checks need.
pub const INDEX_ENTRY_LEN: usize = 2;

/// The key of the pair whose key-length field starts at `off` in a checked section.
fn key_at(bytes: &[u8], off: u16) -> &[u8] {
    let at = usize::from(off);
    let klen = be16(bytes, at).unwrap_or(0);
    bytes.get(at + 2..at + 2 + klen).unwrap_or_default()
}

/// The pair whose key-length field starts at `off` in a checked section.
fn pair_at(bytes: &[u8], off: u16) -> RawPair<'_> {
    let at = usize::from(off);
    let klen = be16(bytes, at).unwrap_or(0);
    let key = bytes.get(at + 2..at + 2 + klen).unwrap_or_default();
    let vat = at + 2 + klen;
    let vlen = be16(bytes, vat).unwrap_or(0);
    let val = bytes.get(vat + 2..vat + 2 + vlen).unwrap_or_default();
    (key, val)
}

/// Offsets of the pairs of a checked section, in received order.
#[derive(Clone)]
struct Offsets<'a> {
    bytes: &'a [u8],
    at: usize,
    left: u16,
}

impl Iterator for Offsets<'_> {
    type Item = u16;
    fn next(&mut self) -> Option<u16> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let off = self.at;
        let klen = be16(self.bytes, off)?;
        let vlen = be16(self.bytes, off + 2 + klen)?;
        self.at = off + 4 + klen + vlen;
        u16::try_from(off).ok()
    }
}

/// The `i`-th id of a flat index of u16 ids (big-endian).
fn id_at(ids: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([ids[2 * i], ids[2 * i + 1]])
}

/// Heapsort of the `w`-byte records of `recs` in place: O(n log n) comparisons in the worst
/// case, no heap, no `unsafe`. (`sort_unstable_by` needs a slice of arrays, and viewing
/// `&mut [u8]` scratch as one needs `as_chunks_mut`, which is newer than the MSRV.)
fn heapsort(recs: &mut [u8], w: usize, cmp: &mut impl FnMut(&[u8], &[u8]) -> Ordering) {
    fn swap(recs: &mut [u8], w: usize, a: usize, b: usize) {
        for k in 0..w {
            recs.swap(a * w + k, b * w + k);
        }
    }
    fn sift(
        recs: &mut [u8],
        w: usize,
        mut root: usize,
        end: usize,
        cmp: &mut impl FnMut(&[u8], &[u8]) -> Ordering,
    ) {
        loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            let rec = |i: usize| i * w..(i + 1) * w;
            if child + 1 < end && cmp(&recs[rec(child)], &recs[rec(child + 1)]) == Ordering::Less {
                child += 1;
            }
            if cmp(&recs[rec(root)], &recs[rec(child)]) != Ordering::Less {
                return;
            }
            swap(recs, w, root, child);
            root = child;
        }
    }
    let n = recs.len() / w;
    for start in (0..n / 2).rev() {
        sift(recs, w, start, n, cmp);
    }
    for end in (1..n).rev() {
        swap(recs, w, 0, end);
        sift(recs, w, 0, end, cmp);
    }
}

/// Sorts a flat index of u16 ids by key, ties by id; counts the comparisons.
fn sort_ids<'k>(ids: &mut [u8], key: &impl Fn(u16) -> &'k [u8], work: &mut u64) {
    heapsort(ids, 2, &mut |a, b| {
        *work += 1;
        let (a, b) = (id_at(a, 0), id_at(b, 0));
        key(a).cmp(key(b)).then(a.cmp(&b))
    });
}

/// In ids sorted by [`sort_ids`], the smallest id whose key equals that of a smaller id.
fn first_repeat_sorted<'k>(
    ids: &[u8],
    key: &impl Fn(u16) -> &'k [u8],
    work: &mut u64,
) -> Option<u16> {
    let mut best: Option<u16> = None;
    for i in 1..ids.len() / 2 {
        let (a, b) = (id_at(ids, i - 1), id_at(ids, i));
        *work += 1;
        if key(a) == key(b) {
            best = Some(best.map_or(b, |x| x.min(b)));
        }
    }
    best
}

/// In ids sorted by [`sort_ids`], the position of the first whose key is not below `k`.
fn lower_bound<'k>(ids: &[u8], k: &[u8], key: &impl Fn(u16) -> &'k [u8], work: &mut u64) -> usize {
    let (mut lo, mut hi) = (0, ids.len() / 2);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        *work += 1;
        if key(id_at(ids, mid)) < k {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// The first id (in `items` order, which must be increasing) whose key equals an earlier
/// one's, with no scratch: blocks of [`BLOCK`] ids are sorted on the stack and every earlier
/// key is binary-searched in them. About n²/(2·BLOCK)·log2(BLOCK) comparisons.
fn first_repeat_bounded<'k, I>(
    items: I,
    key: &impl Fn(u16) -> &'k [u8],
    work: &mut u64,
) -> Option<u16>
where
    I: Iterator<Item = u16> + Clone,
{
    let mut block_start = items.clone();
    let mut before = 0usize;
    loop {
        let mut buf = [0u8; 2 * BLOCK];
        let mut len = 0;
        let mut it = block_start.clone();
        while len < BLOCK {
            match it.next() {
                Some(id) => {
                    buf[2 * len..2 * len + 2].copy_from_slice(&id.to_be_bytes());
                    len += 1;
                }
                None => break,
            }
        }
        if len == 0 {
            return None;
        }
        let block = &mut buf[..2 * len];
        sort_ids(block, key, work);
        let mut best = first_repeat_sorted(block, key, work);
        for earlier in items.clone().take(before) {
            let k = key(earlier);
            let i = lower_bound(block, k, key, work);
            if i < len {
                let id = id_at(block, i);
                *work += 1;
                if key(id) == k {
                    best = Some(best.map_or(id, |b| b.min(id)));
                }
            }
        }
        if best.is_some() {
            return best;
        }
        before += len;
        block_start = it;
    }
}

impl<'a> ContextView<'a> {
    fn offsets(&self) -> Offsets<'a> {
        Offsets {
            bytes: self.bytes,
            at: 2,
            left: self.count,
        }
    }

    /// Index of the pair starting at `off`.
    fn ordinal(&self, off: u16) -> u16 {
        self.offsets().take_while(|o| *o < off).count() as u16
    }

    /// Checks that the keys are unique, with `scratch` when it holds
    /// [`INDEX_ENTRY_LEN`] bytes per pair (O(n log n) comparisons), else with the bounded
    /// fallback. Sorted contexts were fully checked by the parse and cost nothing here.
    pub(crate) fn check_unique(
        &self,
        scratch: &mut [u8],
        work: &mut u64,
    ) -> Result<(), ContextError> {
        if self.sorted {
            return Ok(());
        }
        let bytes = self.bytes;
        let key = |off: u16| key_at(bytes, off);
        let repeat = match self.index_into(scratch) {
            Some(ids) => {
                sort_ids(ids, &key, work);
                first_repeat_sorted(ids, &key, work)
            }
            None => first_repeat_bounded(self.offsets(), &key, work),
        };
        match repeat {
            Some(off) => Err(ContextError::DuplicateKey {
                pair: self.ordinal(off),
            }),
            None => Ok(()),
        }
    }

    /// Fills the start of `scratch` with the pair offsets in received order, if it is
    /// large enough.
    fn index_into<'s>(&self, scratch: &'s mut [u8]) -> Option<&'s mut [u8]> {
        let n = self.len();
        let ids = scratch.get_mut(..n * INDEX_ENTRY_LEN)?;
        for (slot, off) in ids.chunks_exact_mut(2).zip(self.offsets()) {
            slot.copy_from_slice(&off.to_be_bytes());
        }
        Some(ids)
    }

    /// [`parse`](Self::parse) with a caller-lent `scratch` for the duplicate-key check of a
    /// context received unsorted: with [`INDEX_ENTRY_LEN`] bytes per pair it costs
    /// O(n log n) key comparisons, with less the bounded fallback (at most about 4.2 million
    /// comparisons for the largest, 64 KiB section). `work` is increased by the key
    /// comparisons made (to show the growth in tests and benchmarks).
    ///
    /// # Errors
    /// As [`parse`](Self::parse).
    pub fn parse_with(
        bytes: &'a [u8],
        scratch: &mut [u8],
        work: &mut u64,
    ) -> Result<Self, ContextError> {
        let view = Self::parse_unchecked_order(bytes)?;
        view.check_unique(scratch, work)?;
        Ok(view)
    }

    /// The pairs sorted by key bytes, by an index of pair offsets built in `scratch`
    /// ([`INDEX_ENTRY_LEN`] bytes per pair): O(n log n) for a context received unsorted,
    /// where [`iter_sorted`](Self::iter_sorted) needs O(n²) comparisons.
    ///
    /// # Errors
    /// [`Error::BufferTooSmall`] when `scratch` is shorter than
    /// `INDEX_ENTRY_LEN * self.len()` (not needed, and not checked, for a sorted context).
    pub fn iter_sorted_with<'s>(
        &self,
        scratch: &'s mut [u8],
        work: &mut u64,
    ) -> Result<SortedPairs<'a, 's>, Error> {
        if self.sorted {
            return Ok(SortedPairs {
                bytes: self.bytes,
                inner: SortedPairsInner::Direct(self.iter_raw()),
            });
        }
        let need = self.len() * INDEX_ENTRY_LEN;
        let bytes = self.bytes;
        let ids = self
            .index_into(scratch)
            .ok_or(Error::BufferTooSmall { required: need })?;
        sort_ids(ids, &|off| key_at(bytes, off), work);
        Ok(SortedPairs {
            bytes,
            inner: SortedPairsInner::Index(ids.chunks_exact(2)),
        })
    }
}

/// The pairs of an [`ContextView`] in key order, from [`ContextView::iter_sorted_with`].
#[derive(Clone)]
pub struct SortedPairs<'a, 's> {
    bytes: &'a [u8],
    inner: SortedPairsInner<'a, 's>,
}

#[derive(Clone)]
enum SortedPairsInner<'a, 's> {
    Direct(RawIter<'a>),
    Index(core::slice::ChunksExact<'s, u8>),
}

impl<'a> Iterator for SortedPairs<'a, '_> {
    type Item = RawPair<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            SortedPairsInner::Direct(it) => it.next(),
            SortedPairsInner::Index(it) => it.next().map(|id| pair_at(self.bytes, id_at(id, 0))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The reproduced context against the stored one (decrypt)
// ---------------------------------------------------------------------------------------------

/// What a reproduced context adds to a stored one: the pairs it has that the message does
/// not store (the required encryption context, authenticated but not stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Extras {
    /// How many pairs.
    pub count: usize,
    /// Their serialized length (without a count field).
    pub len: usize,
}

fn rkey<'r>(reproduced: &'r [(&'r str, &'r str)], id: u16) -> &'r [u8] {
    reproduced
        .get(usize::from(id))
        .map_or(&[], |p| p.0.as_bytes())
}

/// The error for a duplicate key in the stored context of a header whose context section
/// starts at `ec_offset`.
fn stored_dup(ec_offset: usize, e: ContextError) -> Error {
    Error::Malformed {
        offset: ec_offset,
        kind: crate::error::Malformed::EncryptionContext(e),
    }
}

/// Scratch bytes [`reconcile_indexed`] needs.
pub(crate) fn reconcile_scratch(stored: &ContextView<'_>, reproduced: usize) -> usize {
    let stored_index = if stored.sorted { 0 } else { stored.len() };
    reproduced.saturating_add(stored_index) * INDEX_ENTRY_LEN
}

/// Checks shared by both reconcile paths before any per-pair work: the reproduced context
/// fits in one serialized context (which also bounds its pair count by 16 383, so that u16
/// ids index it).
fn reproduced_fits(reproduced: &[(&str, &str)]) -> Result<(), Error> {
    if reproduced.is_empty() {
        return Ok(());
    }
    let total = reproduced
        .iter()
        .fold(2usize, |n, (k, v)| n.saturating_add(4 + k.len() + v.len()));
    if total > 0xFFFF {
        return Err(context_err(ContextError::TooLarge));
    }
    Ok(())
}

fn extras_fit(stored: &ContextView<'_>, extras: Extras) -> Result<Extras, Error> {
    let stored_pairs = stored.as_bytes().len().saturating_sub(2);
    if extras.count > 0 && stored_pairs.saturating_add(2 + extras.len) > 0xFFFF {
        return Err(context_err(ContextError::TooLarge));
    }
    Ok(extras)
}

/// Checks a reproduced context against the stored one with scratch
/// ([`reconcile_scratch`] bytes), in O((n + r) log(n + r)) key comparisons:
/// - the stored keys are unique (when `check_stored` and they arrived unsorted),
/// - the reproduced context fits in 64 KiB and has no duplicate key,
/// - every reproduced pair whose key is stored has the stored value,
/// - the stored pairs and the others fit together in one serialized context.
///
/// On success the first `2 * extras.count` bytes of `scratch` hold the ids (u16,
/// big-endian) of the reproduced pairs that the message does not store, in key order.
pub(crate) fn reconcile_indexed(
    stored: &ContextView<'_>,
    check_stored: bool,
    ec_offset: usize,
    reproduced: &[(&str, &str)],
    scratch: &mut [u8],
    work: &mut u64,
) -> Result<Extras, Error> {
    let r = reproduced.len();
    let need = reconcile_scratch(stored, r);
    let (r_ids, s_part) = scratch
        .get_mut(..need)
        .ok_or(Error::BufferTooSmall { required: need })?
        .split_at_mut(r * INDEX_ENTRY_LEN);
    let bytes = stored.bytes;
    let skey = |off: u16| key_at(bytes, off);
    let s_ids: &[u8] = if stored.sorted {
        &[]
    } else {
        let ids = stored
            .index_into(s_part)
            .ok_or(Error::BufferTooSmall { required: need })?;
        sort_ids(ids, &skey, work);
        if check_stored && let Some(off) = first_repeat_sorted(ids, &skey, work) {
            let pair = stored.ordinal(off);
            return Err(stored_dup(ec_offset, ContextError::DuplicateKey { pair }));
        }
        ids
    };
    reproduced_fits(reproduced)?;
    for (i, slot) in r_ids.chunks_exact_mut(2).enumerate() {
        // At most 16 383 pairs fit in 64 KiB (checked above).
        slot.copy_from_slice(&(i as u16).to_be_bytes());
    }
    let key = |id: u16| rkey(reproduced, id);
    sort_ids(r_ids, &key, work);
    if first_repeat_sorted(r_ids, &key, work).is_some() {
        return Err(crate::error::ApiMisuse::DuplicateEncryptionContextKey.into());
    }
    // Merge walk: the stored pairs in key order against the sorted reproduced ids; the
    // reproduced pairs not stored are kept at the front of `r_ids`.
    let mut direct = stored.iter_raw();
    let mut by_index = s_ids.chunks_exact(2);
    let mut next_stored = || -> Option<RawPair<'_>> {
        if stored.sorted {
            direct.next()
        } else {
            by_index.next().map(|id| pair_at(bytes, id_at(id, 0)))
        }
    };
    let mut cur = next_stored();
    let mut extras = Extras { count: 0, len: 0 };
    for i in 0..r {
        let id = id_at(r_ids, i);
        let (k, v) = reproduced[usize::from(id)];
        let k = k.as_bytes();
        loop {
            match cur {
                Some((sk, _))
                    if {
                        *work += 1;
                        sk < k
                    } =>
                {
                    cur = next_stored();
                }
                _ => break,
            }
        }
        match cur {
            Some((sk, sv)) if sk == k => {
                if sv != v.as_bytes() {
                    return Err(PolicyViolation::EncryptionContextMismatch.into());
                }
            }
            _ => {
                let at = extras.count * INDEX_ENTRY_LEN;
                r_ids[at..at + 2].copy_from_slice(&id.to_be_bytes());
                extras.count += 1;
                extras.len += 4 + k.len() + v.len();
            }
        }
    }
    extras_fit(stored, extras)
}

/// [`reconcile_indexed`] without scratch (the same checks in the same order, the same
/// errors), for a caller whose buffer is too small to lend: duplicates are found by the
/// bounded block fallback, and stored keys are looked up one stack block of reproduced keys
/// at a time (about (r/BLOCK)·(n + BLOCK)·log2(BLOCK) comparisons). Returns no ids.
pub(crate) fn reconcile_bounded(
    stored: &ContextView<'_>,
    check_stored: bool,
    ec_offset: usize,
    reproduced: &[(&str, &str)],
    work: &mut u64,
) -> Result<Extras, Error> {
    if check_stored {
        stored
            .check_unique(&mut [], work)
            .map_err(|e| stored_dup(ec_offset, e))?;
    }
    reproduced_fits(reproduced)?;
    let r = reproduced.len();
    let key = |id: u16| rkey(reproduced, id);
    // At most 16 383 pairs fit in 64 KiB (checked above).
    if first_repeat_bounded((0..r).map(|i| i as u16), &key, work).is_some() {
        return Err(crate::error::ApiMisuse::DuplicateEncryptionContextKey.into());
    }
    let mut extras = Extras { count: 0, len: 0 };
    let mut start = 0usize;
    while start < r {
        let len = (r - start).min(BLOCK);
        let mut buf = [0u8; 2 * BLOCK];
        for (i, slot) in buf[..2 * len].chunks_exact_mut(2).enumerate() {
            slot.copy_from_slice(&((start + i) as u16).to_be_bytes());
        }
        let block = &mut buf[..2 * len];
        sort_ids(block, &key, work);
        let mut found = [false; BLOCK];
        for (sk, sv) in stored.iter_raw() {
            let i = lower_bound(block, sk, &key, work);
            if i < len {
                let (k, v) = reproduced[usize::from(id_at(block, i))];
                if k.as_bytes() == sk {
                    if v.as_bytes() != sv {
                        return Err(PolicyViolation::EncryptionContextMismatch.into());
                    }
                    found[i] = true;
                }
            }
        }
        for (i, f) in found[..len].iter().enumerate() {
            if !f {
                let (k, v) = reproduced[usize::from(id_at(block, i))];
                extras.count += 1;
                extras.len += 4 + k.len() + v.len();
            }
        }
        start += len;
    }
    extras_fit(stored, extras)
}

/// Serialized length of the full context (stored pairs and `extras`); 0 when it is empty.
pub(crate) fn full_len(stored: &ContextView<'_>, extras: Extras) -> usize {
    let stored_pairs = stored.as_bytes().len().saturating_sub(2);
    if stored.is_empty() && extras.count == 0 {
        0
    } else {
        2 + stored_pairs + extras.len
    }
}

/// Bytes per entry of the merged index [`write_full`] sorts in place: a tag byte (0 = a
/// stored pair offset, 1 = a reproduced pair id) and a u16.
const MERGED_ENTRY_LEN: usize = 3;

/// Writes the canonical full context (stored pairs and the `extras` whose sorted ids
/// [`reconcile_indexed`] left at the start of `scratch`) into `scratch[..full_len]` and
/// returns that length, in place: a merged index of 3-byte entries sits at the end of the
/// region and is consumed from its front while the output grows from the start; every
/// unwritten pair is at least 4 bytes, so the output never reaches an unread entry.
pub(crate) fn write_full(
    stored: &ContextView<'_>,
    reproduced: &[(&str, &str)],
    extras: Extras,
    scratch: &mut [u8],
    work: &mut u64,
) -> Result<usize, Error> {
    let total = full_len(stored, extras);
    let region = scratch
        .get_mut(..total)
        .ok_or(Error::BufferTooSmall { required: total })?;
    if total == 0 {
        return Ok(0);
    }
    let e = extras.count;
    let in_index = if stored.sorted { 0 } else { stored.len() };
    let m = in_index + e;
    let base = total - MERGED_ENTRY_LEN * m;
    // Extras' ids from the front to the tail of the merged index, last first: entry i
    // moves from 2i to a position >= 3i, so no unread id is overwritten.
    for i in (0..e).rev() {
        let id = [region[2 * i], region[2 * i + 1]];
        let at = base + MERGED_ENTRY_LEN * (in_index + i);
        region[at..at + 3].copy_from_slice(&[1, id[0], id[1]]);
    }
    let bytes = stored.bytes;
    if in_index > 0 {
        for (i, off) in stored.offsets().enumerate() {
            let at = base + MERGED_ENTRY_LEN * i;
            let o = off.to_be_bytes();
            region[at..at + 3].copy_from_slice(&[0, o[0], o[1]]);
        }
        let entry_key = |x: &[u8]| -> &[u8] {
            let id = u16::from_be_bytes([x[1], x[2]]);
            if x[0] == 0 {
                key_at(bytes, id)
            } else {
                rkey(reproduced, id)
            }
        };
        heapsort(&mut region[base..], MERGED_ENTRY_LEN, &mut |a, b| {
            *work += 1;
            entry_key(a).cmp(entry_key(b)).then(a.cmp(b))
        });
    }
    let count = (stored.len() + e) as u16;
    region[..2].copy_from_slice(&count.to_be_bytes());
    let mut head = 2usize;
    let mut direct = if stored.sorted {
        stored.iter_raw()
    } else {
        ContextView::EMPTY.iter_raw()
    };
    let mut a = direct.next();
    let mut next = 0usize;
    let entry = |region: &[u8], i: usize| -> RawPair<'_> {
        let at = base + MERGED_ENTRY_LEN * i;
        let id = u16::from_be_bytes([region[at + 1], region[at + 2]]);
        if region[at] == 0 {
            pair_at(bytes, id)
        } else {
            reproduced
                .get(usize::from(id))
                .map_or((&[][..], &[][..]), |(k, v)| (k.as_bytes(), v.as_bytes()))
        }
    };
    while a.is_some() || next < m {
        let b = (next < m).then(|| entry(region, next));
        let (k, v) = match (a, b) {
            (Some(x), Some(y)) => {
                *work += 1;
                if x.0 < y.0 {
                    a = direct.next();
                    x
                } else {
                    next += 1;
                    y
                }
            }
            (Some(x), None) => {
                a = direct.next();
                x
            }
            (None, Some(y)) => {
                next += 1;
                y
            }
            (None, None) => break,
        };
        let size = 4 + k.len() + v.len();
        debug_assert!(head + size <= base + MERGED_ENTRY_LEN * next || next == m);
        for field in [k, v] {
            region[head..head + 2].copy_from_slice(&(field.len() as u16).to_be_bytes());
            region[head + 2..head + 2 + field.len()].copy_from_slice(field);
            head += 2 + field.len();
        }
    }
    debug_assert_eq!(head, total);
    Ok(total)
}

/// Serialized length of a context given as pairs (assumed unique).
///
/// # Errors
/// [`ContextError::TooLarge`] when the result would exceed 65 535 bytes or a key or value
/// exceeds 65 535 bytes.
pub fn serialized_len<'a, I>(pairs: I) -> Result<usize, ContextError>
where
    I: IntoIterator<Item = RawPair<'a>>,
{
    let mut n = 0usize;
    let mut any = false;
    for (k, v) in pairs {
        if k.len() > 0xFFFF || v.len() > 0xFFFF {
            return Err(ContextError::TooLarge);
        }
        any = true;
        n = n.saturating_add(4 + k.len() + v.len());
    }
    let total = if any { n.saturating_add(2) } else { 0 };
    if total > 0xFFFF {
        return Err(ContextError::TooLarge);
    }
    Ok(total)
}

/// Writes the canonical serialization of `pairs` (which must already be sorted and unique)
/// into `out` and returns the bytes written.
///
/// # Errors
/// [`Error::BufferTooSmall`] when `out` is too short; [`ContextError::TooLarge`] as for
/// [`serialized_len`].
pub fn write<'a, I>(pairs: I, out: &mut [u8]) -> Result<usize, Error>
where
    I: IntoIterator<Item = RawPair<'a>>,
    I::IntoIter: Clone,
{
    let it = pairs.into_iter();
    let len = serialized_len(it.clone()).map_err(context_err)?;
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

pub(crate) fn context_err(e: ContextError) -> Error {
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
        let v = ContextView::parse(&buf[..n]).unwrap();
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
        let v = ContextView::parse(&[0, 0]).unwrap();
        assert!(v.is_empty() && !v.is_canonical());
        assert_eq!(
            ContextView::parse(&[0, 0, 0]).unwrap_err(),
            ContextError::ZeroCount
        );
    }

    #[test]
    fn rejects_duplicates_bad_utf8_and_lengths() {
        let dup = [0, 2, 0, 1, b'a', 0, 0, 0, 1, b'a', 0, 0];
        assert_eq!(
            ContextView::parse(&dup).unwrap_err(),
            ContextError::DuplicateKey { pair: 1 }
        );
        let bad = [0, 1, 0, 1, 0xFF, 0, 0];
        assert_eq!(
            ContextView::parse(&bad).unwrap_err(),
            ContextError::Utf8 { pair: 0 }
        );
        let short = [0, 1, 0, 5, b'a'];
        assert_eq!(
            ContextView::parse(&short).unwrap_err(),
            ContextError::Length
        );
        let extra = [0, 1, 0, 1, b'a', 0, 0, 9];
        assert_eq!(
            ContextView::parse(&extra).unwrap_err(),
            ContextError::Length
        );
        let mut r = [("aws-crypto-x", "1")];
        assert!(sort_and_check(&mut r).is_err());
        let mut d = [("k", "1"), ("k", "2")];
        assert!(sort_and_check(&mut d).is_err());
    }

    #[test]
    fn unsorted_input_is_accepted_and_iterated_in_order() {
        let unsorted = [0, 3, 0, 1, b'c', 0, 0, 0, 1, b'a', 0, 0, 0, 1, b'b', 0, 0];
        let v = ContextView::parse(&unsorted).unwrap();
        assert!(!v.is_canonical());
        let keys: [&[u8]; 3] = [b"a", b"b", b"c"];
        assert!(v.iter_sorted().map(|(k, _)| k).eq(keys.iter().copied()));
        let dup = [0, 3, 0, 1, b'c', 0, 0, 0, 1, b'a', 0, 0, 0, 1, b'c', 0, 0];
        assert_eq!(
            ContextView::parse(&dup).unwrap_err(),
            ContextError::DuplicateKey { pair: 2 }
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
        assert_eq!(
            serialized_len(raw_pairs(&pairs)),
            Err(ContextError::TooLarge)
        );
    }

    /// A small deterministic generator for the cross-checks below.
    struct Lcg(u64);
    impl Lcg {
        fn next(&mut self, n: u32) -> u32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) as u32) % n
        }
    }

    /// Serializes `keys` (one-byte-alphabet keys of 1..=3 bytes from `seed`) in the given
    /// order with value "v<i>", into `buf`; returns its length.
    fn section(keys: &[[u8; 3]], lens: &[usize], buf: &mut [u8]) -> usize {
        buf[..2].copy_from_slice(&(keys.len() as u16).to_be_bytes());
        let mut at = 2;
        for (i, (k, l)) in keys.iter().zip(lens).enumerate() {
            buf[at..at + 2].copy_from_slice(&(*l as u16).to_be_bytes());
            buf[at + 2..at + 2 + l].copy_from_slice(&k[..*l]);
            at += 2 + l;
            buf[at..at + 2].copy_from_slice(&[0, 1]);
            buf[at + 2] = b'a' + (i % 26) as u8;
            at += 3;
        }
        at
    }

    /// The first pair (received order) whose key appeared before, the slow and obvious way.
    fn naive_first_dup(v: &ContextView<'_>) -> Option<u16> {
        for (i, (k, _)) in v.iter_raw().enumerate() {
            if v.iter_raw().take(i).any(|(k2, _)| k2 == k) {
                return Some(i as u16);
            }
        }
        None
    }

    #[test]
    fn indexed_and_bounded_checks_agree_with_the_naive_one() {
        let mut rng = Lcg(7);
        let mut buf = [0u8; 8192];
        let mut scratch = [0u8; 2048];
        let mut cases = 0;
        let mut dups = 0;
        for round in 0..400 {
            let n = 1 + rng.next(if round % 4 == 0 { 700 } else { 40 }) as usize;
            let alphabet = 2 + rng.next(20);
            let mut keys = [[0u8; 3]; 700];
            let mut lens = [0usize; 700];
            for i in 0..n {
                lens[i] = 1 + rng.next(3) as usize;
                for b in keys[i].iter_mut() {
                    *b = b'A' + rng.next(alphabet) as u8;
                }
            }
            let len = section(&keys[..n], &lens[..n], &mut buf);
            let bytes = &buf[..len];
            let Ok(v) = ContextView::parse_unchecked_order(bytes) else {
                continue; // neighbours equal: the linear parse already refuses it
            };
            let want = naive_first_dup(&v).map(|pair| ContextError::DuplicateKey { pair });
            let (mut w1, mut w2) = (0, 0);
            let fast = ContextView::parse_with(bytes, &mut scratch, &mut w1).err();
            let slow = ContextView::parse_with(bytes, &mut [], &mut w2).err();
            assert_eq!(fast, want, "indexed, round {round}");
            assert_eq!(slow, want, "bounded, round {round}");
            if want.is_none() {
                let mut w = 0;
                let mut s2 = [0u8; 2048];
                let sorted = v.iter_sorted_with(&mut s2, &mut w).unwrap();
                assert!(sorted.eq(v.iter_sorted()), "round {round}");
            } else {
                dups += 1;
            }
            cases += 1;
        }
        assert!(
            cases > 150 && dups > 50,
            "{cases} cases, {dups} with duplicates"
        );
    }

    #[test]
    fn reconcile_paths_agree_and_write_full_is_the_canonical_merge() {
        let mut rng = Lcg(11);
        let mut buf = [0u8; 4096];
        let mut scratch = [0u8; 8192];
        let names: [&str; 12] = ["a", "b", "c", "d", "e", "f", "g", "h", "ab", "ba", "", "zz"];
        let vals: [&str; 2] = ["1", "2"];
        let mut outcomes = [0usize; 4];
        for round in 0..3000 {
            // Stored: distinct keys in a random order.
            let ns = rng.next(8) as usize;
            let mut idx = [0usize; 12];
            for (i, x) in idx.iter_mut().enumerate() {
                *x = i;
            }
            for i in (1..12).rev() {
                let j = rng.next(i as u32 + 1) as usize;
                idx.swap(i, j);
            }
            let stored_pairs: [(&str, &str); 8] =
                core::array::from_fn(|i| (names[idx[i]], vals[i % 2]));
            let n = write_unsorted(&stored_pairs[..ns], &mut buf);
            let stored = ContextView::parse(&buf[..n]).unwrap();
            // Reproduced: some stored pairs (maybe with another value), some new ones,
            // maybe a duplicate.
            let nr = rng.next(7) as usize;
            let repro: [(&str, &str); 7] = core::array::from_fn(|_| {
                let k = names[rng.next(12) as usize];
                let v = vals[rng.next(2) as usize];
                (k, v)
            });
            let repro = &repro[..nr];
            let (mut w1, mut w2) = (0, 0);
            let a = reconcile_indexed(&stored, true, 5, repro, &mut scratch, &mut w1);
            let b = reconcile_bounded(&stored, true, 5, repro, &mut w2);
            assert_eq!(a, b, "round {round}: {repro:?}");
            let Ok(extras) = a else {
                outcomes[match a {
                    Err(Error::ApiMisuse(_)) => 1,
                    Err(Error::Policy(_)) => 2,
                    _ => 3,
                }] += 1;
                continue;
            };
            outcomes[0] += 1;
            // Expected: stored sorted, merged with the reproduced pairs not stored.
            let mut all: [(&[u8], &[u8]); 16] = [(&[], &[]); 16];
            let mut m = 0;
            for (k, v) in stored.iter_raw() {
                all[m] = (k, v);
                m += 1;
            }
            for (k, v) in repro {
                if stored.get(k).is_none() {
                    all[m] = (k.as_bytes(), v.as_bytes());
                    m += 1;
                }
            }
            assert_eq!(m - stored.len(), extras.count);
            all[..m].sort_unstable_by(|x, y| x.0.cmp(y.0));
            let mut want = [0u8; 512];
            let wl = write(all[..m].iter().copied(), &mut want).unwrap();
            let got = write_full(&stored, repro, extras, &mut scratch, &mut w1).unwrap();
            assert_eq!(&scratch[..got], &want[..wl], "round {round}");
        }
        assert!(outcomes[..3].iter().all(|c| *c > 50), "{outcomes:?}");
    }

    fn write_unsorted(pairs: &[(&str, &str)], out: &mut [u8]) -> usize {
        if pairs.is_empty() {
            return 0;
        }
        out[..2].copy_from_slice(&(pairs.len() as u16).to_be_bytes());
        let mut at = 2;
        for (k, v) in pairs {
            for f in [k.as_bytes(), v.as_bytes()] {
                out[at..at + 2].copy_from_slice(&(f.len() as u16).to_be_bytes());
                out[at + 2..at + 2 + f.len()].copy_from_slice(f);
                at += 2 + f.len();
            }
        }
        at
    }

    #[test]
    fn work_grows_as_n_log_n_with_scratch_and_is_bounded_without() {
        // Reverse-sorted two-byte keys: the worst order for the old selection.
        let mut buf = [0u8; 65535];
        let mut scratch = [0u8; 2 * 10922];
        let mut prev = 0u64;
        // 10 922 six-byte pairs fill the largest section.
        for n in [682usize, 1365, 2730, 5461, 10922] {
            buf[..2].copy_from_slice(&(n as u16).to_be_bytes());
            let mut at = 2;
            for i in (0..n).rev() {
                let k = [1 + (i / 127) as u8, 1 + (i % 127) as u8];
                buf[at..at + 4].copy_from_slice(&[0, 2, k[0], k[1]]);
                buf[at + 4..at + 6].copy_from_slice(&[0, 0]);
                at += 6;
            }
            let (mut fast, mut slow) = (0u64, 0u64);
            ContextView::parse_with(&buf[..at], &mut scratch, &mut fast).unwrap();
            ContextView::parse_with(&buf[..at], &mut [], &mut slow).unwrap();
            let log = 64 - (n as u64).leading_zeros() as u64;
            assert!(fast <= 3 * n as u64 * log, "n={n}: {fast} comparisons");
            let bound = (n as u64 * n as u64 / (2 * BLOCK as u64) + n as u64) * 10;
            assert!(slow <= bound, "n={n}: {slow} > {bound}");
            if prev > 0 {
                assert!(fast < 3 * prev, "n={n}: {fast} vs {prev} at half the size");
            }
            prev = fast;
        }
    }
}

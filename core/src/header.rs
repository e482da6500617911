//! Message header: zero-copy parse and the size arithmetic of the writer
//! (spec `data-format/message-header.md`).

use crate::encryption_context::ContextView;
use crate::error::{Error, Malformed, PolicyViolation};
use crate::materials::{EdkProgress, Edks};
use crate::suite::AlgorithmSuite;

/// How the body is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ContentType {
    /// Legacy single-block body (decrypt only).
    NonFramed,
    /// Sequence of frames.
    Framed,
}

/// A parsed header, borrowing the input.
#[derive(Debug, Clone, Copy)]
pub struct Header<'a> {
    /// The whole header as received (body and authentication).
    pub bytes: &'a [u8],
    /// Length of the header body (what the header tag authenticates).
    pub body_len: usize,
    /// Message format version (1 or 2).
    pub version: u8,
    /// Algorithm suite.
    pub suite: AlgorithmSuite,
    /// Message id (16 or 32 bytes).
    pub message_id: &'a [u8],
    /// Stored encryption context.
    pub encryption_context: ContextView<'a>,
    /// Offset of the encryption-context section in the header.
    pub encryption_context_offset: usize,
    /// Encrypted data keys.
    pub edks: Edks<'a>,
    /// Content type.
    pub content_type: ContentType,
    /// Frame length (0 for non-framed).
    pub frame_length: u32,
    /// Algorithm-suite data (the commitment key for v2 committing suites).
    pub suite_data: &'a [u8],
    /// The header IV (v1: as stored; v2: zeros).
    pub iv: [u8; 12],
    /// The header authentication tag.
    pub tag: [u8; 16],
}

/// The result of trying to parse a header from a prefix of a message.
#[derive(Debug)]
pub enum Parsed<'a> {
    /// The header is complete.
    Complete(Header<'a>),
    /// At least this many bytes of input are needed to go on.
    Need(usize),
}

/// Limits applied while parsing.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseLimits {
    /// Maximum EDK count (checked as soon as the count is read).
    pub max_edks: Option<u16>,
    /// Maximum header length.
    pub max_header_len: Option<usize>,
}

/// What an earlier [`parse_from`] of the same (growing) input already checked, so that a
/// header arriving in small pieces is parsed in linear time, not re-parsed from the start
/// at every piece: the input length below which the header cannot be complete, the checked
/// encryption context, and the checked EDKs.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseProgress {
    need: usize,
    /// (section length, (pair count, sorted), keys known unique) of the checked encryption
    /// context.
    ec: Option<(usize, (u16, bool), bool)>,
    edks: EdkProgress,
    /// Leave the duplicate-key check of a context received unsorted to the caller (the
    /// decryptor, which has scratch for it).
    defer_unique: bool,
    /// Key comparisons made by the context's duplicate-key check.
    work: u64,
}

impl ParseProgress {
    /// Key comparisons the duplicate-key check of an encryption context received unsorted
    /// has made so far (0 for a sorted one, whose check is part of the linear parse). Shows
    /// how the work grows: O(n log n) with scratch ([`parse_from_with`]), the bounded
    /// fallback without.
    pub fn context_comparisons(&self) -> u64 {
        self.work
    }

    /// A progress whose parse leaves the duplicate-key check of an unsorted context to
    /// the caller (which then calls [`mark_unique`](Self::mark_unique)).
    pub(crate) fn deferring() -> Self {
        Self {
            defer_unique: true,
            ..Self::default()
        }
    }

    /// Records that the caller checked the context's keys for duplicates.
    pub(crate) fn mark_unique(&mut self) {
        if let Some((_, _, unique)) = &mut self.ec {
            *unique = true;
        }
    }

    /// Whether the parsed context's keys still need the caller's duplicate check.
    pub(crate) fn unique_pending(&self) -> bool {
        matches!(self.ec, Some((_, _, false)))
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

enum Step<T> {
    Ok(T),
    Need(usize),
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Step<&'a [u8]> {
        let end = self.at.saturating_add(n);
        match self.b.get(self.at..end) {
            Some(s) => {
                self.at = end;
                Step::Ok(s)
            }
            None => Step::Need(end),
        }
    }
}

/// A parse step's result: the value, or `Need(n)` when the input must hold `n` bytes.
type Parse<T> = Result<Step<T>, Error>;

/// Takes `n` bytes at the cursor, or returns `Need` from the enclosing parse step.
macro_rules! take {
    ($c:expr, $n:expr) => {
        match $c.take($n) {
            Step::Ok(s) => s,
            Step::Need(n) => return Ok(Step::Need(n)),
        }
    };
}

/// Runs a parse step, or returns `Parsed::Need` from the whole parse.
macro_rules! step {
    ($e:expr) => {
        match $e? {
            Step::Ok(v) => v,
            Step::Need(n) => return Ok(Parsed::Need(n)),
        }
    };
}

fn be16(s: &[u8]) -> u16 {
    u16::from_be_bytes([s[0], s[1]])
}
fn be32(s: &[u8]) -> u32 {
    u32::from_be_bytes([s[0], s[1], s[2], s[3]])
}

fn malformed(offset: usize, kind: Malformed) -> Error {
    Error::Malformed { offset, kind }
}

/// Parses a header from the start of `input`.
///
/// Returns [`Parsed::Need`] when `input` ends inside the header.
///
/// # Errors
/// The first structural check that fails, with its offset; [`Error::UnsupportedSuite`];
/// [`Error::Base64Encoded`]; the EDK-count and header-size limits.
pub fn parse<'a>(input: &'a [u8], limits: ParseLimits) -> Result<Parsed<'a>, Error> {
    parse_from(input, limits, &mut ParseProgress::default())
}

/// [`parse`], resuming from what earlier calls on shorter prefixes of the same message
/// recorded in `progress` (start with `ParseProgress::default()`). Each call costs the new
/// bytes (plus a constant), not the whole input: `Need(n)` is answered without parsing while
/// the input is shorter than the last `n`. The caller must pass the same message bytes
/// each time (only longer); `progress` is meaningless for another message.
///
/// # Errors
/// As [`parse`].
pub fn parse_from<'a>(
    input: &'a [u8],
    limits: ParseLimits,
    progress: &mut ParseProgress,
) -> Result<Parsed<'a>, Error> {
    parse_from_with(input, limits, progress, &mut [])
}

/// [`parse_from`] with a caller-lent `scratch` for the duplicate-key check of an encryption
/// context received unsorted: with 2 bytes per pair
/// ([`encryption_context::INDEX_ENTRY_LEN`](crate::encryption_context::INDEX_ENTRY_LEN)) it costs O(n log n) key comparisons,
/// with less the bounded fallback of [`ContextView::parse_with`]. The check runs once per
/// `progress`, however the input is split. `scratch` holds nothing of value afterwards.
///
/// # Errors
/// As [`parse`].
pub fn parse_from_with<'a>(
    input: &'a [u8],
    limits: ParseLimits,
    progress: &mut ParseProgress,
    scratch: &mut [u8],
) -> Result<Parsed<'a>, Error> {
    if input.len() < progress.need {
        return Ok(Parsed::Need(progress.need));
    }
    let r = parse_inner(input, limits, progress, scratch);
    if let Ok(Parsed::Need(n)) = r {
        progress.need = n;
    }
    r
}

/// `HeaderTooLarge` when the header would need `need` bytes under a header limit.
fn check_len(limits: ParseLimits, need: usize) -> Result<(), Error> {
    match limits.max_header_len {
        Some(max) if need > max => Err(PolicyViolation::HeaderTooLarge { max }.into()),
        _ => Ok(()),
    }
}

fn parse_inner<'a>(
    input: &'a [u8],
    limits: ParseLimits,
    progress: &mut ParseProgress,
    scratch: &mut [u8],
) -> Result<Parsed<'a>, Error> {
    let mut c = Cursor { b: input, at: 0 };
    let (version, suite, message_id) = step!(parse_prefix(&mut c));
    let encryption_context_offset = c.at + 2;
    let encryption_context = step!(parse_context(&mut c, limits, progress, scratch));
    let edks = step!(parse_edks(&mut c, limits, progress));
    let t = step!(parse_tail(&mut c, limits, version, suite));
    Ok(Parsed::Complete(Header {
        bytes: &input[..c.at],
        body_len: t.body_len,
        version,
        suite,
        message_id,
        encryption_context,
        encryption_context_offset,
        edks,
        content_type: t.content_type,
        frame_length: t.frame_length,
        suite_data: t.suite_data,
        iv: t.iv,
        tag: t.tag,
    }))
}

/// Version, (v1) message type, suite id, message id.
fn parse_prefix<'a>(c: &mut Cursor<'a>) -> Parse<(u8, AlgorithmSuite, &'a [u8])> {
    let version = take!(c, 1)[0];
    match version {
        1 | 2 => {}
        b'A' => return Err(Error::Base64Encoded),
        v => return Err(malformed(0, Malformed::Version(v))),
    }
    if version == 1 {
        let t = take!(c, 1)[0];
        if t != 0x80 {
            return Err(malformed(1, Malformed::MessageType(t)));
        }
    }
    let suite_at = c.at;
    let suite_id = be16(take!(c, 2));
    let suite = AlgorithmSuite::from_id(suite_id)?;
    if suite.message_format_version() != version {
        let kind = Malformed::SuiteVersionMismatch {
            suite: suite_id,
            version,
        };
        return Err(malformed(suite_at, kind));
    }
    let message_id = take!(c, suite.message_id_len());
    Ok(Step::Ok((version, suite, message_id)))
}

/// The stored encryption context (u16 length, pairs), checked once per `progress`: the
/// duplicate-key check of a context received unsorted runs here unless deferred to the
/// decryptor, which has scratch for it.
fn parse_context<'a>(
    c: &mut Cursor<'a>,
    limits: ParseLimits,
    progress: &mut ParseProgress,
    scratch: &mut [u8],
) -> Parse<ContextView<'a>> {
    let ec_len = usize::from(be16(take!(c, 2)));
    let offset = c.at;
    check_len(limits, c.at + ec_len)?;
    let ec_bytes = take!(c, ec_len);
    let ec_malformed = |e| malformed(offset, Malformed::EncryptionContext(e));
    let view = match progress.ec {
        Some((len, parts, unique)) if len == ec_len => {
            let v = ContextView::from_checked(ec_bytes, parts);
            if !unique && !progress.defer_unique {
                v.check_unique(scratch, &mut progress.work)
                    .map_err(ec_malformed)?;
                progress.mark_unique();
            }
            v
        }
        _ => {
            let v = ContextView::parse_unchecked_order(ec_bytes).map_err(ec_malformed)?;
            let (_, sorted) = v.checked_parts();
            let unique = if sorted || progress.defer_unique {
                sorted
            } else {
                v.check_unique(scratch, &mut progress.work)
                    .map_err(ec_malformed)?;
                true
            };
            progress.ec = Some((ec_len, v.checked_parts(), unique));
            v
        }
    };
    Ok(Step::Ok(view))
}

/// The EDK count and the EDKs, resuming after those `progress` already checked.
fn parse_edks<'a>(
    c: &mut Cursor<'a>,
    limits: ParseLimits,
    progress: &mut ParseProgress,
) -> Parse<Edks<'a>> {
    let count_at = c.at;
    let count = be16(take!(c, 2));
    if count == 0 {
        return Err(malformed(count_at, Malformed::NoEncryptedDataKeys));
    }
    if let Some(max) = limits.max_edks
        && count > max
    {
        return Err(PolicyViolation::TooManyEncryptedDataKeys { max }.into());
    }
    let start = c.at;
    // Under a header limit the EDKs are parsed from the first `max` bytes only, so that a
    // field crossing the limit is `HeaderTooLarge` whether or not its bytes (and whatever
    // check they would fail) have arrived: the verdict never depends on the input split.
    let end = match limits.max_header_len {
        Some(max) => c.b.len().min(max).max(start),
        None => c.b.len(),
    };
    match Edks::parse_from(&c.b[start..end], count, &mut progress.edks) {
        Ok((edks, used)) => {
            c.at += used;
            Ok(Step::Ok(edks))
        }
        Err(Error::Truncated { offset }) => {
            check_len(limits, start + offset)?;
            Ok(Step::Need(start + offset))
        }
        Err(Error::Malformed { offset, kind }) => Err(malformed(start + offset, kind)),
        Err(e) => Err(e),
    }
}

/// What follows the EDKs.
struct Tail<'a> {
    content_type: ContentType,
    frame_length: u32,
    suite_data: &'a [u8],
    body_len: usize,
    iv: [u8; 12],
    tag: [u8; 16],
}

/// Content type, (v1) reserved bytes and IV length, frame length, (v2) suite data, (v1)
/// header IV, tag.
fn parse_tail<'a>(
    c: &mut Cursor<'a>,
    limits: ParseLimits,
    version: u8,
    suite: AlgorithmSuite,
) -> Parse<Tail<'a>> {
    let tail = if version == 1 {
        1 + 4 + 1 + 4 + 12 + 16
    } else {
        1 + 4 + 32 + 16
    };
    check_len(limits, c.at + tail)?;
    let ct_at = c.at;
    let content_type = match take!(c, 1)[0] {
        1 => ContentType::NonFramed,
        2 => ContentType::Framed,
        t => return Err(malformed(ct_at, Malformed::ContentType(t))),
    };
    if version == 1 {
        let r_at = c.at;
        if take!(c, 4) != [0, 0, 0, 0] {
            return Err(malformed(r_at, Malformed::Reserved));
        }
        let iv_at = c.at;
        let ivl = take!(c, 1)[0];
        if ivl != 12 {
            return Err(malformed(iv_at, Malformed::IvLength(ivl)));
        }
    }
    let fl_at = c.at;
    let frame_length = be32(take!(c, 4));
    match (content_type, frame_length) {
        (ContentType::Framed, 0) => return Err(malformed(fl_at, Malformed::FrameLength(0))),
        (ContentType::NonFramed, n) if n != 0 => {
            return Err(malformed(fl_at, Malformed::FrameLength(n)));
        }
        _ => {}
    }
    let suite_data = if version == 2 {
        // v2 writes the suite data for every suite; only committing suites exist in v2.
        take!(c, suite.suite_data_len())
    } else {
        &[]
    };
    let body_len = c.at;
    let mut iv = [0u8; 12];
    if version == 1 {
        iv.copy_from_slice(take!(c, 12));
    }
    let mut tag = [0u8; 16];
    tag.copy_from_slice(take!(c, 16));
    Ok(Step::Ok(Tail {
        content_type,
        frame_length,
        suite_data,
        body_len,
        iv,
        tag,
    }))
}

/// Length of a header with a stored encryption context of `ec_len` serialized bytes and an
/// EDK section (without its count) of `edks_len` bytes, authentication included.
pub const fn header_len(suite: AlgorithmSuite, ec_len: usize, edks_len: usize) -> usize {
    let fixed = if suite.message_format_version() == 1 {
        1 + 1 + 2 + 16 + 2 + 2 + 1 + 4 + 1 + 4 + 12 + 16
    } else {
        1 + 2 + 32 + 2 + 2 + 1 + 4 + 32 + 16
    };
    fixed + ec_len + edks_len
}

/// Length of the prefix a header starts with: version, (v1) type, suite id, message id.
pub(crate) const fn prefix_len(suite: AlgorithmSuite) -> usize {
    if suite.message_format_version() == 1 {
        4 + suite.message_id_len()
    } else {
        3 + suite.message_id_len()
    }
}

/// Length of what follows the EDKs: content type, (v1) reserved and IV length, frame
/// length, (v2 committing) suite data, (v1) IV, tag.
pub(crate) const fn tail_len(suite: AlgorithmSuite) -> usize {
    header_len(suite, 0, 0) - prefix_len(suite) - 4
}

/// Writes the prefix (version, type, suite id, message id); `out` holds
/// [`prefix_len`] bytes at least (the caller checked).
pub(crate) fn write_prefix(suite: AlgorithmSuite, message_id: &[u8], out: &mut [u8]) -> usize {
    let mut at = 0;
    let version = suite.message_format_version();
    out[at] = version;
    at += 1;
    if version == 1 {
        out[at] = 0x80; // type: customer authenticated encrypted data
        at += 1;
    }
    out[at..at + 2].copy_from_slice(&suite.id().to_be_bytes());
    at += 2;
    out[at..at + message_id.len()].copy_from_slice(message_id);
    at + message_id.len()
}

/// Writes the header body's tail after the EDKs (framed content type, v1 reserved bytes and
/// IV length, frame length, v2 commitment) and, for v1, the zero header IV; returns where
/// the header body ends and where the tag goes. `out` holds [`tail_len`] bytes at least.
pub(crate) fn write_tail(
    suite: AlgorithmSuite,
    frame_len: u32,
    commitment: &[u8; 32],
    out: &mut [u8],
) -> (usize, usize) {
    let v1 = suite.message_format_version() == 1;
    let mut at = 0;
    out[at] = 2; // framed
    at += 1;
    if v1 {
        out[at..at + 4].fill(0);
        out[at + 4] = 12;
        at += 5;
    }
    out[at..at + 4].copy_from_slice(&frame_len.to_be_bytes());
    at += 4;
    if suite.is_committing() {
        out[at..at + 32].copy_from_slice(commitment);
        at += 32;
    }
    let body_end = at;
    if v1 {
        out[at..at + 12].fill(0);
        at += 12;
    }
    (body_end, at)
}

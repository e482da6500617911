//! An owned, fixed-capacity copy of a parsed header's facts (feature `heapless`).
//!
//! A [`Header`] borrows the input it was parsed from: its
//! encryption context and EDKs are views over those bytes. Firmware that receives a message
//! into a buffer and then reuses the buffer (for the body, the next message, a radio packet)
//! loses them. [`HeaderFacts`] keeps what a device usually needs after that (the suite, the
//! message id, the content type and frame length, the encryption context, and who wrapped
//! the data key: each EDK's provider id) in storage of its own, sized at compile time with
//! [`heapless`] collections, so it needs no allocator.
//!
//! Capacities are const parameters: `EC` bytes of serialized encryption context (the
//! header's key-value section, as stored), `EDKS` encrypted data keys, and `ID` bytes per
//! provider id. A header that does not fit is refused with a [`FactsCapacity`] error naming
//! the field, what it needed and the capacity: never truncated.
//!
//! ```
//! use esdk_core::header::{self, ParseLimits, Parsed};
//! use esdk_core::header_facts::HeaderFacts;
//!
//! fn on_message(rx: &mut [u8]) -> Result<(), esdk_core::Error> {
//!     let Parsed::Complete(h) = header::parse(rx, ParseLimits::default())? else {
//!         return Ok(()); // wait for more of the message
//!     };
//!     // Up to 256 bytes of encryption context, 4 EDKs, provider ids of up to 32 bytes.
//!     let facts = match HeaderFacts::<256, 4, 32>::from_header(&h) {
//!         Ok(facts) => facts,
//!         Err(_too_big) => return Ok(()), // log it: it names the field that did not fit
//!     };
//!     rx.fill(0); // the buffer is reused; the facts stay
//!     let _device = facts.encryption_context().get("device");
//!     let _wrapped_by = facts.provider_ids().next();
//!     Ok(())
//! }
//! ```

use core::fmt;

use heapless::{String, Vec};

use crate::encryption_context::ContextView;
use crate::header::{ContentType, Header};
use crate::suite::AlgorithmSuite;

/// The longest message id (message format v2).
const MAX_MESSAGE_ID: usize = 32;

/// The field of a header that did not fit a [`HeaderFacts`]' capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FactsField {
    /// The serialized encryption context (`EC` bytes).
    EncryptionContext,
    /// The number of encrypted data keys (`EDKS`).
    EncryptedDataKeys,
    /// One EDK's provider id (`ID` bytes).
    ProviderId {
        /// The EDK's position in the header (0-based).
        index: u16,
    },
}

/// A header did not fit a [`HeaderFacts`]: which field, how much it needed, the capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct FactsCapacity {
    /// The field that did not fit.
    pub field: FactsField,
    /// What the header needs (bytes, or EDKs for [`FactsField::EncryptedDataKeys`]).
    pub needed: usize,
    /// The capacity the type was given.
    pub capacity: usize,
}

impl fmt::Display for FactsCapacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, unit) = match self.field {
            FactsField::EncryptionContext => ("the encryption context", "bytes"),
            FactsField::EncryptedDataKeys => ("the encrypted data keys", "EDKs"),
            FactsField::ProviderId { index } => {
                return write!(
                    f,
                    "the provider id of EDK {index} has {} bytes; HeaderFacts holds {} (its ID parameter)",
                    self.needed, self.capacity
                );
            }
        };
        let param = match self.field {
            FactsField::EncryptionContext => "EC",
            _ => "EDKS",
        };
        write!(
            f,
            "{what} of the header: {} {unit}; HeaderFacts holds {} (its {param} parameter)",
            self.needed, self.capacity
        )
    }
}

impl core::error::Error for FactsCapacity {}

/// An owned copy of a parsed header's facts, in fixed capacity (see the
/// [module docs](self)): `EC` bytes of serialized encryption context, `EDKS` encrypted data
/// keys, `ID` bytes per EDK provider id.
#[derive(Clone, PartialEq, Eq)]
pub struct HeaderFacts<const EC: usize, const EDKS: usize, const ID: usize> {
    version: u8,
    suite: AlgorithmSuite,
    message_id: [u8; MAX_MESSAGE_ID],
    message_id_len: u8,
    content_type: ContentType,
    frame_length: u32,
    context: Vec<u8, EC>,
    /// What the header's parse established of the context: (pair count, sorted).
    context_parts: (u16, bool),
    provider_ids: Vec<String<ID>, EDKS>,
}

impl<const EC: usize, const EDKS: usize, const ID: usize> HeaderFacts<EC, EDKS, ID> {
    /// Copies the facts out of a parsed header.
    ///
    /// # Errors
    /// [`FactsCapacity`] when the encryption context, the number of EDKs or a provider id
    /// is larger than the type's capacity (nothing is truncated).
    pub fn from_header(header: &Header<'_>) -> Result<Self, FactsCapacity> {
        let over = |field, needed, capacity| FactsCapacity {
            field,
            needed,
            capacity,
        };
        let ec = header.encryption_context.as_bytes();
        let context =
            Vec::from_slice(ec).map_err(|_| over(FactsField::EncryptionContext, ec.len(), EC))?;
        if header.edks.len() > EDKS {
            return Err(over(FactsField::EncryptedDataKeys, header.edks.len(), EDKS));
        }
        let mut provider_ids = Vec::new();
        for (index, edk) in header.edks.iter() {
            let id = String::try_from(edk.provider_id)
                .map_err(|_| over(FactsField::ProviderId { index }, edk.provider_id.len(), ID))?;
            // Cannot fail: the count was checked against EDKS above.
            provider_ids
                .push(id)
                .map_err(|_| over(FactsField::EncryptedDataKeys, header.edks.len(), EDKS))?;
        }
        // A parsed header's message id is 16 (v1) or 32 (v2) bytes.
        let mut message_id = [0u8; MAX_MESSAGE_ID];
        let id_len = header.message_id.len().min(MAX_MESSAGE_ID);
        message_id[..id_len].copy_from_slice(&header.message_id[..id_len]);
        Ok(Self {
            version: header.version,
            suite: header.suite,
            message_id,
            message_id_len: id_len as u8,
            content_type: header.content_type,
            frame_length: header.frame_length,
            context,
            context_parts: header.encryption_context.checked_parts(),
            provider_ids,
        })
    }

    /// The message format version (1 or 2).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// The algorithm suite.
    pub fn suite(&self) -> AlgorithmSuite {
        self.suite
    }

    /// The message id (16 bytes in format v1, 32 in v2).
    pub fn message_id(&self) -> &[u8] {
        &self.message_id[..usize::from(self.message_id_len)]
    }

    /// Framed or non-framed body.
    pub fn content_type(&self) -> ContentType {
        self.content_type
    }

    /// The frame length (0 for a non-framed body).
    pub fn frame_length(&self) -> u32 {
        self.frame_length
    }

    /// The stored encryption context, as the header had it (already validated by the
    /// header's parse: lengths, UTF-8, unique keys), over the facts' own copy.
    pub fn encryption_context(&self) -> ContextView<'_> {
        ContextView::from_checked(&self.context, self.context_parts)
    }

    /// The provider id of each EDK, in header order.
    pub fn provider_ids(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.provider_ids.iter().map(String::as_str)
    }

    /// The number of EDKs.
    pub fn edk_count(&self) -> usize {
        self.provider_ids.len()
    }
}

impl<const EC: usize, const EDKS: usize, const ID: usize> fmt::Debug for HeaderFacts<EC, EDKS, ID> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeaderFacts")
            .field("version", &self.version)
            .field("suite", &self.suite)
            .field("message_id", &self.message_id())
            .field("content_type", &self.content_type)
            .field("frame_length", &self.frame_length)
            .field("encryption_context", &self.encryption_context())
            .field("provider_ids", &self.provider_ids.as_slice())
            .finish()
    }
}

//! The header with a synchronous CMM in std: the three steps of the core's
//! [`Encryptor`] (request, materials, header) with the materials in a heap work buffer, so
//! the CMM runs exactly once and the header buffer grows without running it again.

use esdk_core::provider::CryptoProvider;
use esdk_core::{CryptoMaterialsManager, Encryptor, Error};

/// EDK room when the CMM cannot tell its EDK sizes in advance (KMS, caching): enough for
/// about two hundred KMS EDKs.
const UNKNOWN_EDKS_ROOM: usize = 64 * 1024;

/// Writes `enc`'s header into `out` (resized to fit, then truncated to the header) with
/// materials from `cmm`; returns the header length.
///
/// The CMM runs once, unless its EDKs outgrow the work buffer (more than
/// [`UNKNOWN_EDKS_ROOM`] bytes when it cannot tell their size): then it runs again with
/// the room it asked for.
///
/// # Errors
/// As [`Encryptor::request`], [`Encryptor::materials`], the CMM, and
/// [`Encryptor::write_header_with`].
pub(crate) fn write_header<P: CryptoProvider, M: CryptoMaterialsManager + ?Sized>(
    enc: &mut Encryptor<'_, P>,
    cmm: &M,
    encryption_context: &[(&str, &str)],
    out: &mut Vec<u8>,
) -> Result<usize, Error> {
    let suite = enc.suite();
    let mut ec: Vec<(&str, &str)> = encryption_context.to_vec();
    let request = enc.request(&mut ec, cmm.required_encryption_context_keys())?;
    let signing_key = match suite.signature() {
        Some(_) => cmm.encryption_signing_key(&request)?,
        None => None,
    };
    let edks = cmm
        .encrypted_data_keys_len(suite)
        .map_or(UNKNOWN_EDKS_ROOM, |(_, n)| n);
    let mut work = vec![0u8; request.work_len(edks)];
    loop {
        let header = esdk_core::header::header_len(suite, 0, 0) + work.len();
        let mut materials = enc.materials(&request, signing_key.clone(), &mut work)?;
        match cmm.get_encryption_materials(&mut materials) {
            Ok(()) => {}
            Err(Error::BufferTooSmall { required }) => {
                drop(materials);
                let grow = required.max(work.len().saturating_mul(2));
                work.resize(grow, 0);
                continue;
            }
            Err(e) => return Err(e),
        }
        if out.len() < header {
            out.resize(header, 0);
        }
        let n = enc.write_header_with(&materials, out)?;
        out.truncate(n);
        return Ok(n);
    }
}

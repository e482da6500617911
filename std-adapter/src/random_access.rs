//! Ranged decryption of a framed message in a seekable source ([`decrypt_range`]): the
//! header, the final frame and the frames that hold the range are read, nothing else
//! (the core's [`esdk_core::random_access`] does the layout and the checks).

use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;

use esdk_core::random_access::{RandomAccessOptions, SIGNED_TAIL_LEN};
use esdk_core::{Config, CryptoMaterialsManager, Decryptor, Status};
use zeroize::Zeroize;

use crate::{DEFAULT_PROVIDER, Error};

/// How [`decrypt_range`] treats signed messages.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeOptions {
    /// Decrypt ranges of **signed** messages too, as **unverified output**: the signature
    /// covers the whole message and is not checked, and anyone who can decrypt the message
    /// (every reader holds its data key) could have written its frames. Off by default:
    /// signed messages are refused
    /// ([`PolicyViolation::RandomAccessSigned`](esdk_core::error::PolicyViolation::RandomAccessSigned)).
    pub unverified_signed: bool,
}

/// Decrypts the plaintext bytes `range` of the framed message in `src` (the whole source,
/// from its start to its end, is the message): reads the header (the keyring decrypts the
/// data key as usual), the final frame, which proves the message is neither truncated nor
/// extended, and the frames that hold the range; memory is one frame plus the range.
///
/// The range is as trustworthy as the header, the final frame and its own frames, all
/// verified; frames outside it are not read (see [`esdk_core::random_access`]). Non-framed
/// messages are refused, and signed ones unless `opts` opts into unverified output.
///
/// # Errors
/// As the core's random access ([`Decryptor::random_access`], the frame errors name the
/// frame), [`esdk_core::Error::RangeOutOfBounds`], I/O errors of `src`,
/// [`esdk_core::Error::Truncated`] when the header is incomplete.
pub fn decrypt_range<R: Read + Seek, M: CryptoMaterialsManager + ?Sized>(
    cfg: &Config,
    cmm: &M,
    reproduced_context: &[(&str, &str)],
    src: &mut R,
    range: Range<u64>,
    opts: RangeOptions,
) -> Result<Vec<u8>, Error> {
    let message_len = src.seek(SeekFrom::End(0))?;
    src.seek(SeekFrom::Start(0))?;
    let mut d = Decryptor::new(cfg, &DEFAULT_PROVIDER, reproduced_context);
    // The header: read as the decryptor asks (bounded by its header-size limit).
    let mut input = Vec::new();
    let mut scratch = vec![0u8; 4096];
    loop {
        let p = match d.process_with(cmm, &input, &mut scratch) {
            Err(esdk_core::Error::BufferTooSmall { required }) => {
                scratch.resize(required, 0);
                continue;
            }
            r => r?,
        };
        match p.status {
            Status::Header => break,
            Status::NeedInput { min } => {
                let have = input.len();
                let more = (min - have) as u64;
                src.by_ref().take(more).read_to_end(&mut input)?;
                if input.len() < min {
                    return Err(esdk_core::Error::Truncated {
                        offset: input.len(),
                    }
                    .into());
                }
            }
            _ => {
                return Err(esdk_core::Error::from(esdk_core::error::ApiMisuse::WrongState).into());
            }
        }
    }
    let mut tail = Vec::new();
    let ra_opts = if opts.unverified_signed && d.suite().and_then(|s| s.signature()).is_some() {
        let n = (SIGNED_TAIL_LEN as u64).min(message_len);
        src.seek(SeekFrom::Start(message_len - n))?;
        src.by_ref().take(n).read_to_end(&mut tail)?;
        RandomAccessOptions::new().unverified_signed(&tail)
    } else {
        RandomAccessOptions::new()
    };
    let layout = d.random_access(message_len, ra_opts)?;
    let mut frame = Vec::new();
    read_at(src, layout.final_frame(), &mut frame)?;
    let ra = layout.verify_final(&mut frame)?;
    frame.zeroize();

    let spans = ra.map().frames_for(range.clone())?;
    let mut out = Vec::with_capacity(usize::try_from(range.end - range.start).unwrap_or(0));
    let mut pt = vec![0u8; ra.map().frame_len() as usize];
    for span in spans {
        let r = span.offset..span.offset + span.slot.frame_len() as u64;
        let opened = read_at(src, r, &mut frame)
            .and_then(|()| Ok(ra.open_frame(span.slot.sequence(), &frame, &mut pt)?));
        if let Err(e) = opened {
            out.zeroize();
            pt.zeroize();
            return Err(e);
        }
        out.extend_from_slice(&pt[span.within]);
    }
    pt.zeroize();
    Ok(out)
}

/// Reads the message bytes `r` of `src` into `buf` (resized to them).
fn read_at<R: Read + Seek>(src: &mut R, r: Range<u64>, buf: &mut Vec<u8>) -> Result<(), Error> {
    src.seek(SeekFrom::Start(r.start))?;
    buf.resize(usize::try_from(r.end - r.start).unwrap_or(usize::MAX), 0);
    src.read_exact(buf)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use esdk_core::error::PolicyViolation;
    use esdk_core::{AlgorithmSuite, EncryptOptions};

    use super::*;
    use crate::raw::RawAesKeyring;

    #[test]
    fn ranges_match_the_whole_decrypt() {
        let k = RawAesKeyring::new("ra", "k", &[5u8; 32]).unwrap();
        let pt: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        for suite in [
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKey,
            AlgorithmSuite::Aes256GcmHkdfSha512CommitKeyEcdsaP384,
        ] {
            let cfg = esdk_test_support::config_for(suite);
            let opts = EncryptOptions::new()
                .with_suite(suite)
                .with_frame_length(512);
            let msg = crate::encrypt(&cfg, &k, &opts, &[("a", "b")], &pt).unwrap();
            assert_eq!(crate::decrypt(&cfg, &k, &[], &msg).unwrap().plaintext, pt);
            let signed = suite.signature().is_some();
            let ropts = RangeOptions {
                unverified_signed: signed,
            };
            for r in [0..0, 0..1, 511..513, 0..5000, 4999..5000, 1000..4000] {
                let got =
                    decrypt_range(&cfg, &k, &[], &mut Cursor::new(&msg), r.clone(), ropts).unwrap();
                assert_eq!(got, &pt[r.start as usize..r.end as usize], "{suite} {r:?}");
            }
            if signed {
                let e = decrypt_range(
                    &cfg,
                    &k,
                    &[],
                    &mut Cursor::new(&msg),
                    0..1,
                    RangeOptions::default(),
                );
                assert!(matches!(
                    e,
                    Err(Error::Core(esdk_core::Error::Policy(
                        PolicyViolation::RandomAccessSigned
                    )))
                ));
            } else {
                // Truncated: refused even for a range at the start.
                let cut = &msg[..msg.len() - 1];
                assert!(decrypt_range(&cfg, &k, &[], &mut Cursor::new(cut), 0..1, ropts).is_err());
                let e = decrypt_range(&cfg, &k, &[], &mut Cursor::new(&msg), 10..5001, ropts);
                assert!(matches!(
                    e,
                    Err(Error::Core(esdk_core::Error::RangeOutOfBounds { .. }))
                ));
            }
        }
    }
}

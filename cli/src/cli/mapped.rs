//! Regular input files of an encryption memory-mapped: the plaintext is sealed straight from
//! the page cache, with no copy before the cipher reads it (256 MiB in /dev/shm: 81 ms of
//! CPU against 108 with positional reads). Messages being decrypted are read, not mapped:
//! their bytes must be copied into private memory before they are parsed anyway (see
//! below), and the kernel's copy is cheaper than faulting pages in and copying them.
//!
//! The one `unsafe` block of the tool is here. Mapping a file is only sound while no one
//! changes it, which a command-line tool cannot enforce; what can happen if someone does:
//! - the file is **truncated** while it is mapped: the process gets `SIGBUS` and dies (exit
//!   status 135 from a shell). The output is then left as after any crash: a regular output
//!   file is never replaced (the temporary file is not renamed), and on decrypt nothing
//!   unauthenticated was written before;
//! - the file is **rewritten** in place: encryption seals whatever bytes it reads (the
//!   message stays well-formed and self-consistent, as with `read`: each frame's tag and the
//!   signature cover the ciphertext written, which is in private memory). A reader through
//!   [`Read`] copies every byte into the caller's buffer before anything parses it, which is
//!   why a message being decrypted must never be parsed, hashed or opened in the mapping:
//!   a concurrent writer could make the bytes hashed differ from the bytes decrypted.
//!
//! `--no-mmap` reads with `read` instead (for files that other programs may truncate).

#![allow(unsafe_code)]

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Read};

#[cfg(unix)]
use memmap2::{Advice, UncheckedAdvice};
use memmap2::{Mmap, MmapOptions};

/// Files smaller than this are read: mapping costs more than it saves.
pub(crate) const MIN_LEN: u64 = 256 * 1024;

/// Consumed pages are dropped from the mapping in steps of this many bytes.
const RELEASE_STEP: usize = 8 << 20;

/// A regular file mapped read-only, read front to back.
pub(crate) struct Mapped {
    map: Mmap,
    pos: usize,
    /// Bytes from the start whose pages were dropped from the mapping.
    released: Cell<usize>,
}

impl Mapped {
    /// Maps `file` (a regular file of `len` ≥ [`MIN_LEN`] bytes, as its metadata said) for
    /// reading front to back; `None` where it cannot be mapped (the caller reads it).
    pub(crate) fn new(file: &File, len: u64) -> Option<Self> {
        let len = usize::try_from(len).ok()?;
        // SAFETY: the mapping is read-only and private to this process; it stays valid
        // while `Mapped` lives (memmap2 unmaps on drop). Concurrent truncation of the file
        // would make reading the mapping raise SIGBUS, and concurrent writes would be
        // visible through it: the module docs say what each means for the tool's output
        // (no memory unsafety is reachable from either through this module's API, which
        // only copies out of the mapping or hands it to code that reads it as bytes).
        let map = unsafe { MmapOptions::new().len(len).map(file) }.ok()?;
        // Read-ahead for files not yet in the page cache; a failure only costs speed.
        #[cfg(unix)]
        let _ = map.advise(Advice::Sequential);
        Some(Self {
            map,
            pos: 0,
            released: Cell::new(0),
        })
    }

    /// The first `upto` bytes are consumed: drops their pages from this process's page
    /// tables in steps of [`RELEASE_STEP`], as the job goes, rather than all at once when
    /// the mapping ends (tearing down a large mapping is the process's longest serial step
    /// otherwise). The page cache keeps the file; reading a dropped range again would fault
    /// the same bytes back in.
    pub(crate) fn consumed(&self, upto: usize) {
        #[cfg(unix)]
        {
            let from = self.released.get();
            let to = upto.min(self.map.len()) / RELEASE_STEP * RELEASE_STEP;
            if to > from {
                // SAFETY: MADV_DONTNEED on a read-only shared file mapping only drops page
                // table entries: a later access faults the file's bytes back in; no
                // reference sees different bytes than the file holds (the module docs cover
                // concurrent writers). A failure only costs speed.
                let _ = unsafe {
                    self.map
                        .unchecked_advise_range(UncheckedAdvice::DontNeed, from, to - from)
                };
                self.released.set(to);
            }
        }
        #[cfg(not(unix))]
        let _ = upto;
    }

    /// The bytes not yet read.
    pub(crate) fn rest(&self) -> &[u8] {
        &self.map[self.pos..]
    }
}

impl Read for Mapped {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.map.len() - self.pos);
        buf[..n].copy_from_slice(&self.map[self.pos..self.pos + n]);
        self.pos += n;
        self.consumed(self.pos);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn reads_the_file_in_any_chunks_while_dropping_consumed_pages() {
        let len = 3 * RELEASE_STEP + 12345;
        let data: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let mut f = tempfile::tempfile().expect("temp file");
        f.write_all(&data).expect("write");
        let mut m = Mapped::new(&f, len as u64).expect("mapped");
        assert!(m.rest() == &data[..]);
        let mut back = Vec::new();
        let mut buf = vec![0u8; 1_000_003];
        loop {
            let n = m.read(&mut buf).expect("read");
            if n == 0 {
                break;
            }
            back.extend_from_slice(&buf[..n]);
        }
        assert!(back == data, "read back differs");
        assert_eq!(m.released.get(), 3 * RELEASE_STEP, "consumed pages dropped");
        // A dropped range reads the file's bytes again.
        let mut again = Mapped::new(&f, len as u64).expect("mapped");
        again.consumed(len);
        assert!(again.rest() == &data[..]);
        assert_eq!(again.read(&mut buf[..10]).expect("read"), 10);
        assert!(buf[..10] == data[..10]);
    }
}

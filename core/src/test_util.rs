//! Helpers for the unit tests (no_std: no `format!`).

/// A `fmt::Write` into a fixed buffer.
pub(crate) struct Buf<'a>(pub &'a mut [u8], pub usize);

impl core::fmt::Write for Buf<'_> {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let b = s.as_bytes();
        let end = self.1 + b.len();
        self.0
            .get_mut(self.1..end)
            .ok_or(core::fmt::Error)?
            .copy_from_slice(b);
        self.1 = end;
        Ok(())
    }
}

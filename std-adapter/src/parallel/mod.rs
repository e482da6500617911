//! One message's frames on several threads, over the core's frame API
//! ([`FrameSlot`](esdk_core::FrameSlot), [`FrameCipher`](esdk_core::FrameCipher)): the
//! engine issues and locates the frames and absorbs them in order (the core stays the one
//! place the format is read or written); the AES-GCM work runs on worker threads.
//! [`oneshot`]: whole messages in memory; [`pipeline`]: streams (Read to Write, files).

use std::num::NonZeroUsize;
use std::sync::OnceLock;

use esdk_core::Config;

pub(crate) mod oneshot;
pub(crate) mod pipeline;

/// The threads a message's frames run on for `cfg`: [`Config::threads`], where 0 means
/// [`std::thread::available_parallelism`] (looked up once per process: on Linux it reads
/// the cgroup files) and 1 the sequential path.
pub(crate) fn threads(cfg: &Config) -> usize {
    static AVAILABLE: OnceLock<usize> = OnceLock::new();
    match cfg.threads {
        0 => *AVAILABLE
            .get_or_init(|| std::thread::available_parallelism().map_or(1, NonZeroUsize::get)),
        n => n,
    }
}

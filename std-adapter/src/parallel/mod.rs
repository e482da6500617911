//! Parallel frames: one message's frames sealed and opened on several threads.

pub(crate) mod pipeline;

use esdk_core::Config;

/// The worker threads `cfg` asks for: [`Config::threads`], 0 meaning the available
/// parallelism (1 when it cannot be told).
pub(crate) fn threads(cfg: &Config) -> usize {
    match cfg.threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    }
}

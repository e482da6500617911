//! Runnable examples of the Rust ESDK; see `examples/`.

//! Test-only package: see tests/no_alloc.rs.
#![no_std]

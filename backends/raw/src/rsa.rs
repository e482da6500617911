//! Raw RSA keyring (to be written).

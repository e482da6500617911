//! Raw ECDH keyring (to be written).

//! esdk-pkcs11 (to be written).

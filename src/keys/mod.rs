//! Signing keys.

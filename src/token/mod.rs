//! Job tokens.

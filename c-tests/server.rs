//! The token-using key-value server under load (work in progress).

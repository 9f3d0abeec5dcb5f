//! Placeholder: filled in by the mpesa adapter.

//! Placeholder: filled in by the momo adapter.

//! Placeholder: filled in by the iso20022 adapter.

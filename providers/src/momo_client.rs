//! Placeholder: the momo client.

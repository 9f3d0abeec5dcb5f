//! Placeholder: the mpesa client.

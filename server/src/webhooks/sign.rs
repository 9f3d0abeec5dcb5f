//! Standard Webhooks signing: secrets are `whsec_` and the base64 of 32 random bytes, and a
//! message's signature is `v1,` and the base64 of HMAC-SHA256 over `{id}.{timestamp}.{body}`
//! keyed with the secret's decoded bytes; one per live secret, separated by spaces.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;
use ring::rand::{SecureRandom as _, SystemRandom};

/// What every secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";
/// Random bytes in a secret (Standard Webhooks: 24 to 64).
const SECRET_BYTES: usize = 32;

/// A new secret, or `None` when the system's generator fails (it does not on a working
/// machine).
pub fn new_secret() -> Option<String> {
    let mut bytes = [0u8; SECRET_BYTES];
    SystemRandom::new().fill(&mut bytes).ok()?;
    Some(format!("{SECRET_PREFIX}{}", STANDARD.encode(bytes)))
}

/// A secret's signing key (the bytes after the prefix), or `None` for a malformed secret.
pub fn key(secret: &str) -> Option<hmac::Key> {
    let encoded = secret.strip_prefix(SECRET_PREFIX)?;
    let bytes = STANDARD.decode(encoded).ok()?;
    Some(hmac::Key::new(hmac::HMAC_SHA256, &bytes))
}

/// The `webhook-signature` header's value: one `v1,<signature>` per key.
pub fn signature(keys: &[hmac::Key], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut header = String::new();
    for key in keys {
        let mut context = hmac::Context::with_key(key);
        context.update(id.as_bytes());
        context.update(b".");
        context.update(timestamp.to_string().as_bytes());
        context.update(b".");
        context.update(body);
        if !header.is_empty() {
            header.push(' ');
        }
        header.push_str("v1,");
        header.push_str(&STANDARD.encode(context.sign().as_ref()));
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification's reference libraries.
    #[test]
    fn signs_as_the_specification_does() {
        let key = key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let signed = signature(&[key], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body);
        assert_eq!(signed, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn new_secrets_are_prefixed_and_usable() {
        let secret = new_secret().unwrap();
        assert!(secret.starts_with(SECRET_PREFIX));
        assert!(key(&secret).is_some());
        assert_ne!(secret, new_secret().unwrap());
    }
}

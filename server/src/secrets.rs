//! Sealing secrets at rest: channel credentials (payment and messaging channels) and webhook
//! secrets are stored encrypted (AES-256-GCM), bound to their row, under a key kept in a file
//! outside the database; and comparing secrets in constant time.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Read as _, Write as _};
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};

/// The prefix of every sealed value; a new format gets a new prefix, so old rows still open.
const PREFIX: &str = "v1:";

/// The length of an AES-256 key, in bytes.
const KEY_LEN: usize = 32;

/// How many bytes of a key file are read at most: enough to tell a key from something else
/// without reading a large file into memory.
const KEY_FILE_READ_MAX: u64 = 256;

/// A failure to load a key, or to seal or open a value. Messages never hold key bytes,
/// plaintext or sealed values.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// A file system operation on the key file or its directory failed.
    #[error("could not {action} {}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The key file does not hold a key.
    #[error("{0}")]
    BadKeyFile(String),
    /// The key file can be read or written by users other than its owner.
    #[error("{0}")]
    Permissions(String),
    /// The system random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// Sealing failed, or opening did: the key or the associated data is not the one the value
    /// was sealed with, or the value was altered. ring says no more, on purpose.
    #[error("could not seal or open the value: wrong key, wrong row, or altered value")]
    Crypto,
    /// The text is not a sealed value.
    #[error("not a sealed value: {0}")]
    Malformed(String),
    /// A sealed value opened, but it is not a credentials object (the parser's error is left
    /// out: it could quote the plaintext).
    #[error("the opened value is not a credentials object")]
    NotCredentials,
}

/// Seals and opens secrets with one AES-256-GCM key. Cheap to clone: clones share the key.
#[derive(Clone)]
pub struct Sealer {
    key: Arc<LessSafeKey>,
    random: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The key stays out of logs, whatever ring's own `Debug` does.
        f.debug_struct("Sealer").field("algorithm", &"AES-256-GCM").finish_non_exhaustive()
    }
}

impl Sealer {
    /// A sealer with this key.
    pub fn from_key(key: &[u8; KEY_LEN]) -> Sealer {
        // ring refuses a key only when its length is not the algorithm's key length, and the
        // type makes it 32 bytes, AES-256's: this never panics.
        let Ok(key) = UnboundKey::new(&AES_256_GCM, key) else {
            unreachable!("AES-256-GCM takes any 32-byte key")
        };
        Sealer { key: Arc::new(LessSafeKey::new(key)), random: SystemRandom::new() }
    }

    /// A sealer with a fresh random key, known only to this process.
    pub fn generate() -> Result<Sealer, SecretsError> {
        let key = random_key(&SystemRandom::new())?;
        Ok(Sealer::from_key(&key))
    }

    /// The sealer of the key in the file at `path`: 64 hex characters and an optional newline.
    /// A missing file is created with a fresh random key, readable by its owner only (and its
    /// missing directories with it, likewise). Two processes creating it at once end up with
    /// the same key: the file appears whole, and only once.
    ///
    /// # Errors
    ///
    /// The file does not hold a key ([`SecretsError::BadKeyFile`]), group or others may read or
    /// write it ([`SecretsError::Permissions`]), or it cannot be read or created.
    pub fn load_or_create(path: &Path) -> Result<Sealer, SecretsError> {
        match load(path) {
            Err(SecretsError::Io { source, .. }) if source.kind() == io::ErrorKind::NotFound => {}
            loaded => return loaded,
        }
        match create(path) {
            Ok(sealer) => Ok(sealer),
            // Another process created it first: its key wins.
            Err(SecretsError::Io { source, .. })
                if source.kind() == io::ErrorKind::AlreadyExists =>
            {
                load(path)
            }
            Err(error) => Err(error),
        }
    }

    /// The sealer of the key in the existing file at `path`.
    ///
    /// # Errors
    ///
    /// As [`Sealer::load_or_create`], and when the file does not exist.
    pub fn load(path: &Path) -> Result<Sealer, SecretsError> {
        load(path)
    }

    /// Creates the key file at `path` with a fresh random key, as
    /// [`Sealer::load_or_create`] does, but never when it exists.
    ///
    /// # Errors
    ///
    /// When the file exists (`AlreadyExists`), or cannot be created.
    pub fn create_new(path: &Path) -> Result<Sealer, SecretsError> {
        create(path)
    }

    /// Seals `plaintext`, bound to `aad` (the row's id): `v1:` and the base64 of the random
    /// nonce, the ciphertext and the tag. Sealing the same plaintext twice gives different text.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<String, SecretsError> {
        let mut nonce = [0; NONCE_LEN];
        self.random.fill(&mut nonce).map_err(|_| SecretsError::Random)?;
        let mut sealed = Vec::with_capacity(NONCE_LEN + plaintext.len() + AES_256_GCM.tag_len());
        sealed.extend_from_slice(&nonce);
        sealed.extend_from_slice(plaintext);
        let tag = self
            .key
            .seal_in_place_separate_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut sealed[NONCE_LEN..],
            )
            .map_err(|_| SecretsError::Crypto)?;
        sealed.extend_from_slice(tag.as_ref());
        Ok(format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD.encode(sealed)))
    }

    /// Opens a value [`seal`](Sealer::seal)ed with this key and the same `aad`.
    ///
    /// # Errors
    ///
    /// [`SecretsError::Malformed`] for text that is not a sealed value, [`SecretsError::Crypto`]
    /// for a wrong key, a wrong `aad` or an altered value.
    pub fn open(&self, sealed: &str, aad: &[u8]) -> Result<Vec<u8>, SecretsError> {
        let encoded = sealed
            .strip_prefix(PREFIX)
            .ok_or_else(|| SecretsError::Malformed(format!("it does not start with {PREFIX}")))?;
        // The decoder's error (a byte and its offset) is left out: it would quote the value.
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| SecretsError::Malformed("it is not base64".to_owned()))?;
        let nonce = match bytes.split_first_chunk::<NONCE_LEN>() {
            Some((nonce, rest)) if rest.len() >= AES_256_GCM.tag_len() => *nonce,
            _ => return Err(SecretsError::Malformed("it is too short".to_owned())),
        };
        let plaintext_len = self
            .key
            .open_within(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut bytes,
                NONCE_LEN..,
            )
            .map_err(|_| SecretsError::Crypto)?
            .len();
        bytes.truncate(plaintext_len);
        Ok(bytes)
    }
}

/// A new secret for a URL (a callback token): 32 random bytes, base64url without padding.
pub fn random_token() -> String {
    use base64::Engine as _;
    use rand::RngCore as _;
    let mut secret = [0_u8; 32];
    rand::rng().fill_bytes(&mut secret);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
}

/// Whether `text` is a sealed value (as opposed to a secret stored before sealing existed).
pub fn is_sealed(text: &str) -> bool {
    text.starts_with(PREFIX)
}

/// A channel's credentials as its row keeps them: `{"sealed": …, "names": […]}`, the map
/// sealed with the row's id as associated data (so that a sealed value moved to another row
/// does not open), and their names in the open, so that a channel can show which are set.
/// Payment and messaging channels store them alike.
///
/// # Errors
///
/// When they cannot be sealed (the system's random number generator failed).
pub fn seal_credentials(
    sealer: &Sealer,
    row: uuid::Uuid,
    credentials: &serde_json::Map<String, serde_json::Value>,
) -> Result<serde_json::Value, SecretsError> {
    // A map of JSON values always serialises: the empty fallback is never taken.
    let plain = serde_json::to_vec(credentials).unwrap_or_default();
    let sealed = sealer.seal(&plain, row.as_bytes())?;
    let names: Vec<&String> = credentials.keys().collect();
    Ok(serde_json::json!({ "sealed": sealed, "names": names }))
}

/// The credentials [`seal_credentials`] stored for `row`; `None` when `stored` holds no sealed
/// value (payment channels from before sealing existed keep a plain object: each table says
/// what such a row means).
///
/// # Errors
///
/// As [`Sealer::open`] (a wrong key, a wrong row, an altered value), and
/// [`SecretsError::NotCredentials`] when what opens is not a JSON object.
pub fn open_credentials(
    sealer: &Sealer,
    row: uuid::Uuid,
    stored: &serde_json::Value,
) -> Result<Option<serde_json::Map<String, serde_json::Value>>, SecretsError> {
    let Some(sealed) = stored.get("sealed").and_then(|s| s.as_str()).filter(|s| is_sealed(s))
    else {
        return Ok(None);
    };
    let plain = sealer.open(sealed, row.as_bytes())?;
    serde_json::from_slice(&plain).map(Some).map_err(|_| SecretsError::NotCredentials)
}

/// The names of the credentials `stored` holds: those kept beside sealed ones, or the keys of
/// a plain object from before sealing existed.
pub fn credential_names(stored: &serde_json::Value) -> Vec<String> {
    match stored.get("names").and_then(|names| names.as_array()) {
        Some(names) => names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect(),
        None => stored.as_object().map(|o| o.keys().cloned().collect()).unwrap_or_default(),
    }
}

/// Whether `a` and `b` are equal, in a time that depends on their lengths but not on where
/// they differ, so that timing a comparison with a secret (a callback token, a key's digest)
/// does not tell an attacker how much of a guess was right. A length is no secret here: tokens
/// and digests have fixed lengths.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    // Every byte is looked at whatever the earlier ones were: the differences are folded
    // together with `|`, never tested one by one. (ring's `verify_slices_are_equal` would do,
    // but ring 0.17 deprecates it as internal, with no promise about side channels.)
    a.len() == b.len() && a.iter().zip(b).fold(0_u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn random_key(random: &SystemRandom) -> Result<[u8; KEY_LEN], SecretsError> {
    let mut key = [0; KEY_LEN];
    random.fill(&mut key).map_err(|_| SecretsError::Random)?;
    Ok(key)
}

/// The sealer of an existing key file, checked through the open file (not the path again).
fn load(path: &Path) -> Result<Sealer, SecretsError> {
    let file = File::open(path).map_err(io_error("open the key file", path))?;
    let metadata = file.metadata().map_err(io_error("read the metadata of the key file", path))?;
    if !metadata.is_file() {
        return Err(SecretsError::BadKeyFile(format!(
            "the key file {} is not a regular file",
            path.display()
        )));
    }
    let mode = metadata.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(SecretsError::Permissions(format!(
            "the key file {path} can be read or written by group or others (mode {mode:04o}); \
             run `chmod 600 {path}`",
            path = path.display()
        )));
    }
    let mut text = Vec::new();
    file.take(KEY_FILE_READ_MAX)
        .read_to_end(&mut text)
        .map_err(io_error("read the key file", path))?;
    let key = key_from_hex(&text).map_err(|problem| {
        SecretsError::BadKeyFile(format!(
            "the key file {} must hold a 32-byte key as 64 hex characters and an optional \
             newline, but {problem}",
            path.display()
        ))
    })?;
    Ok(Sealer::from_key(&key))
}

/// Creates the key file with a fresh key, or fails with `AlreadyExists` if it exists.
///
/// The key is written and synced to a temporary file first, then hard-linked into place: the
/// link fails if the file exists, so a racing process never overwrites a key, and never reads
/// a file that is created but not yet written.
fn create(path: &Path) -> Result<Sealer, SecretsError> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(directory)
        .map_err(io_error("create the key directory", directory))?;
    let key = random_key(&SystemRandom::new())?;
    let file_name = path.file_name().unwrap_or(path.as_os_str()).to_string_lossy();
    let temporary = directory.join(format!(".{file_name}.{}.tmp", uuid::Uuid::new_v4()));
    let written = write_new(&temporary, &key_to_hex(&key))
        .map_err(io_error("write the temporary key file", &temporary))
        .and_then(|()| {
            fs::hard_link(&temporary, path).map_err(io_error("create the key file", path))
        });
    // The temporary name has done its job, whether the link was made or not.
    let removed = fs::remove_file(&temporary);
    written?;
    removed.map_err(io_error("remove the temporary key file", &temporary))?;
    // The new name must survive a crash, or rows sealed with this key would outlive it.
    File::open(directory)
        .and_then(|directory| directory.sync_all())
        .map_err(io_error("sync the key directory", directory))?;
    Ok(Sealer::from_key(&key))
}

/// A `map_err` for an I/O failure to `action` on `path`.
fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> SecretsError {
    let path = path.to_owned();
    move |source| SecretsError::Io { action, path, source }
}

fn write_new(path: &Path, text: &str) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

fn key_to_hex(key: &[u8; KEY_LEN]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(2 * KEY_LEN + 1);
    for byte in key {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text.push('\n');
    text
}

/// The key in a key file's contents, or what is wrong with them (never quoting them).
fn key_from_hex(text: &[u8]) -> Result<[u8; KEY_LEN], &'static str> {
    let text = text.strip_suffix(b"\n").unwrap_or(text);
    if text.len() != 2 * KEY_LEN {
        // A long file was only read in part: its length is not known, only that it is too long.
        let problem = if text.len() < 2 * KEY_LEN { "it is too short" } else { "it is too long" };
        return Err(problem);
    }
    let mut key = [0; KEY_LEN];
    let (pairs, _) = text.as_chunks::<2>();
    for (byte, [high, low]) in key.iter_mut().zip(pairs) {
        match (hex_value(*high), hex_value(*low)) {
            (Some(high), Some(low)) => *byte = high << 4 | low,
            _ => return Err("it holds a character that is not a hex digit"),
        }
    }
    Ok(key)
}

fn hex_value(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        b'A'..=b'F' => Some(digit - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// A fresh directory under the system's temporary directory, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> TempDir {
            let path =
                std::env::temp_dir().join(format!("hazina-secrets-{}", uuid::Uuid::new_v4()));
            fs::create_dir(&path).unwrap();
            TempDir(path)
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn write_key_file(path: &Path, text: &str, mode: u32) {
        fs::write(path, text).unwrap();
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    const CHANNEL: &[u8] = b"0198c1d2-5a6b-7c8d-9e0f-112233445566";

    #[test]
    fn round_trip() {
        let sealer = Sealer::generate().unwrap();
        let sealed = sealer.seal(b"{\"consumerSecret\":\"s3cr3t\"}", CHANNEL).unwrap();
        assert!(is_sealed(&sealed), "{sealed}");
        assert!(!sealed.contains("s3cr3t"), "{sealed}");
        assert_eq!(sealer.open(&sealed, CHANNEL).unwrap(), b"{\"consumerSecret\":\"s3cr3t\"}");
        let empty = sealer.seal(b"", CHANNEL).unwrap();
        assert_eq!(sealer.open(&empty, CHANNEL).unwrap(), b"");
    }

    #[test]
    fn a_different_aad_fails() {
        let sealer = Sealer::generate().unwrap();
        let sealed = sealer.seal(b"secret", CHANNEL).unwrap();
        let other_row = b"0198c1d2-5a6b-7c8d-9e0f-112233445567";
        assert!(matches!(sealer.open(&sealed, other_row), Err(SecretsError::Crypto)));
    }

    #[test]
    fn a_different_key_fails() {
        let sealed = Sealer::from_key(&[1; 32]).seal(b"secret", CHANNEL).unwrap();
        let other = Sealer::from_key(&[2; 32]);
        assert!(matches!(other.open(&sealed, CHANNEL), Err(SecretsError::Crypto)));
    }

    #[test]
    fn a_flipped_byte_fails() {
        let sealer = Sealer::generate().unwrap();
        let sealed = sealer.seal(b"secret", CHANNEL).unwrap();
        let engine = base64::engine::general_purpose::STANDARD;
        let bytes = engine.decode(sealed.strip_prefix(PREFIX).unwrap()).unwrap();
        // Every byte counts: the nonce, the ciphertext and the tag.
        for index in 0..bytes.len() {
            let mut altered = bytes.clone();
            altered[index] ^= 0x01;
            let altered = format!("{PREFIX}{}", engine.encode(&altered));
            assert!(
                matches!(sealer.open(&altered, CHANNEL), Err(SecretsError::Crypto)),
                "byte {index}"
            );
        }
    }

    #[test]
    fn two_seals_of_the_same_plaintext_differ() {
        let sealer = Sealer::generate().unwrap();
        let first = sealer.seal(b"secret", CHANNEL).unwrap();
        let second = sealer.seal(b"secret", CHANNEL).unwrap();
        assert_ne!(first, second);
        assert_eq!(sealer.open(&second, CHANNEL).unwrap(), b"secret");
    }

    #[test]
    fn malformed_text_is_an_error_not_a_panic() {
        let sealer = Sealer::generate().unwrap();
        let short =
            format!("{PREFIX}{}", base64::engine::general_purpose::STANDARD.encode([0; 27]));
        for text in ["", "v2:AAAA", "plain text", "v1:not base64!", "v1:", short.as_str()] {
            assert!(
                matches!(sealer.open(text, CHANNEL), Err(SecretsError::Malformed(_))),
                "{text}"
            );
        }
        assert!(!is_sealed("plain text"));
    }

    const ROW: uuid::Uuid = uuid::Uuid::from_u128(0x0198_c1d2_5a6b_7c8d_9e0f_1122_3344_5566);

    fn credentials() -> serde_json::Map<String, serde_json::Value> {
        let value = serde_json::json!({"consumerKey": "k3y", "consumerSecret": "s3cr3t"});
        value.as_object().unwrap().clone()
    }

    #[test]
    fn credentials_are_stored_sealed_with_their_names_in_the_open() {
        let sealer = Sealer::generate().unwrap();
        let stored = seal_credentials(&sealer, ROW, &credentials()).unwrap();
        let mut keys: Vec<&String> = stored.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["names", "sealed"], "{stored}");
        assert_eq!(stored["names"], serde_json::json!(["consumerKey", "consumerSecret"]));
        assert!(is_sealed(stored["sealed"].as_str().unwrap()), "{stored}");
        assert!(!stored.to_string().contains("s3cr3t"), "{stored}");
        assert_eq!(credential_names(&stored), ["consumerKey", "consumerSecret"]);
        assert_eq!(open_credentials(&sealer, ROW, &stored).unwrap(), Some(credentials()));
        // Bound to the row: moved to another, they do not open.
        let other = uuid::Uuid::from_u128(ROW.as_u128() + 1);
        let moved = open_credentials(&sealer, other, &stored);
        assert!(matches!(moved, Err(SecretsError::Crypto)), "{moved:?}");
    }

    #[test]
    fn credentials_stored_before_this_function_still_open() {
        // The shape both channel tables have stored since sealing began, written by hand.
        let sealer = Sealer::generate().unwrap();
        let sealed = sealer.seal(br#"{"apiKey":"at-key","username":"shop"}"#, ROW.as_bytes());
        let stored =
            serde_json::json!({"sealed": sealed.unwrap(), "names": ["apiKey", "username"]});
        let opened = open_credentials(&sealer, ROW, &stored).unwrap().unwrap();
        assert_eq!(opened["apiKey"], "at-key");
        assert_eq!(opened["username"], "shop");
    }

    #[test]
    fn plain_credentials_are_not_sealed_ones() {
        let sealer = Sealer::generate().unwrap();
        let plain = serde_json::Value::Object(credentials());
        assert_eq!(open_credentials(&sealer, ROW, &plain).unwrap(), None);
        assert_eq!(credential_names(&plain), ["consumerKey", "consumerSecret"]);
        let not_sealed = serde_json::json!({"sealed": "plain text", "names": []});
        assert_eq!(open_credentials(&sealer, ROW, &not_sealed).unwrap(), None);
    }

    #[test]
    fn a_sealed_value_that_is_not_an_object_is_an_error_that_quotes_nothing() {
        let sealer = Sealer::generate().unwrap();
        let sealed = sealer.seal(b"\"s3cr3t\"", ROW.as_bytes()).unwrap();
        let error =
            open_credentials(&sealer, ROW, &serde_json::json!({ "sealed": sealed })).unwrap_err();
        assert!(matches!(error, SecretsError::NotCredentials), "{error:?}");
        assert!(!error.to_string().contains("s3cr3t"), "{error}");
    }

    #[test]
    fn constant_time_eq_is_equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"token", b"token"));
        assert!(!constant_time_eq(b"token", b"tokem"));
        assert!(!constant_time_eq(b"token", b"Token"));
        assert!(!constant_time_eq(b"token", b"token "));
        assert!(!constant_time_eq(b"token", b""));
        // Every position counts.
        let secret = [0x5a_u8; 32];
        for index in 0..secret.len() {
            let mut guess = secret;
            guess[index] ^= 0x80;
            assert!(!constant_time_eq(&secret, &guess), "byte {index}");
        }
    }

    #[test]
    fn load_or_create_creates_a_private_key_file_and_loads_it_again() {
        let dir = TempDir::new();
        // The missing directory is created too.
        let path = dir.0.join("keys").join("secrets.key");
        let created = Sealer::load_or_create(&path).unwrap();
        let metadata = fs::metadata(&path).unwrap();
        assert_eq!(metadata.permissions().mode() & 0o777, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 65, "64 hex characters and a newline");
        assert_eq!(fs::read_dir(path.parent().unwrap()).unwrap().count(), 1, "no leftovers");
        let loaded = Sealer::load_or_create(&path).unwrap();
        let sealed = created.seal(b"secret", CHANNEL).unwrap();
        assert_eq!(loaded.open(&sealed, CHANNEL).unwrap(), b"secret");
        assert_eq!(fs::read_to_string(&path).unwrap(), text, "the key is kept");
    }

    #[test]
    fn racing_creators_agree_on_one_key() {
        let dir = TempDir::new();
        let path = dir.0.join("secrets.key");
        let barrier = std::sync::Barrier::new(16);
        let sealers: Vec<Sealer> = std::thread::scope(|scope| {
            let racers: Vec<_> = (0..16)
                .map(|_| {
                    scope.spawn(|| {
                        barrier.wait();
                        Sealer::load_or_create(&path).unwrap()
                    })
                })
                .collect();
            racers.into_iter().map(|racer| racer.join().unwrap()).collect()
        });
        let sealed = sealers[0].seal(b"secret", CHANNEL).unwrap();
        for sealer in &sealers {
            assert_eq!(sealer.open(&sealed, CHANNEL).unwrap(), b"secret");
        }
        assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 1, "no leftovers");
    }

    #[test]
    fn a_key_file_readable_by_others_is_refused() {
        let dir = TempDir::new();
        let path = dir.0.join("secrets.key");
        write_key_file(&path, &format!("{}\n", "ab".repeat(32)), 0o644);
        let error = Sealer::load_or_create(&path).unwrap_err();
        assert!(matches!(error, SecretsError::Permissions(_)), "{error:?}");
        assert!(error.to_string().contains("chmod 600"), "{error}");
        assert!(!error.to_string().contains("abab"), "{error}");
    }

    #[test]
    fn a_key_file_without_a_hex_key_is_refused() {
        let dir = TempDir::new();
        let path = dir.0.join("secrets.key");
        let no_hex = format!("{}zz\n", "ab".repeat(31));
        for text in [no_hex.as_str(), "abcd\n", "", &"ab".repeat(33)] {
            write_key_file(&path, text, 0o600);
            let error = Sealer::load_or_create(&path).unwrap_err();
            assert!(matches!(error, SecretsError::BadKeyFile(_)), "{text:?}: {error:?}");
            assert!(!error.to_string().contains("abab"), "{error}");
        }
        // Upper case, and no newline, is a key.
        write_key_file(&path, &"AB".repeat(32), 0o600);
        Sealer::load_or_create(&path).unwrap();
    }

    #[test]
    fn debug_shows_no_key() {
        let text = format!("{:?}", Sealer::from_key(&[0xab; 32]));
        assert_eq!(text, "Sealer { algorithm: \"AES-256-GCM\", .. }");
    }
}

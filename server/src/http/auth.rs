//! API keys: `Authorization: Bearer hz_<prefix>_<secret>`.
//!
//! A key is random (256 bits of secret), shown once when created, and stored only as the
//! prefix that finds it and a SHA-256 of the secret. An **org key** (no app) manages the org;
//! an **app key** acts for one app. Lookups are cached for a few seconds; a key revoked in this
//! process stops working at once, one revoked by another process within [`CACHE_TTL`].
//!
//! Unknown keys cost no database lookup each: the cache knows every live key's prefix (the set
//! is read again when a key is made in this process, or, for a prefix it does not know, at
//! most every [`KNOWN_RELOAD_INTERVAL`], by one query shared by every request waiting), and
//! remembers unknown prefixes in a bounded map of their own that never evicts a real key.
//!
//! A **client token** (`hzc_<org>_<id>_<secret>`, minted by an app key for a browser or a
//! device, `tenancy::mint_client_token`) acts for its app only where a route takes
//! [`ClientCaller`] (recording activities), and only for its customer when it names one:
//! [`Caller`], which every other route takes, refuses it with 403 `client_token_forbidden`.
//! It names its org, so it is found by a statement of that org, without a cache (each use is
//! one lookup by primary key); an expired one, or one whose key was revoked, is 401.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use deadpool_postgres::Pool;
use hazina_ledger::OrgId;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::problem::ApiError;
use crate::code::Code;
use crate::http::AppState;
use crate::secrets::constant_time_eq;
use crate::tenancy::{CLIENT_TOKEN_PREFIX, KEYS_CHANGED, note_keys_changed};

/// How long a key lookup is trusted before it is read again.
pub const CACHE_TTL: Duration = Duration::from_secs(5);

/// Most keys remembered; past it the cache starts again empty.
const CACHE_ENTRIES_MAX: usize = 10_000;

/// The shortest time between two readings of the live prefixes for prefixes not known, unless
/// this process made or revoked a key since: a key made by another process works within it.
pub const KNOWN_RELOAD_INTERVAL: Duration = Duration::from_millis(250);

/// Most unknown prefixes remembered; past it they are forgotten (never a real key).
const UNKNOWN_ENTRIES_MAX: usize = 100_000;

/// How long an unknown prefix is answered from memory.
const UNKNOWN_TTL: Duration = Duration::from_secs(5);

/// Who is calling: the org, and the app for an app key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caller {
    pub org: OrgId,
    pub app: Option<Uuid>,
    pub key_id: Uuid,
}

impl Caller {
    /// Refuses an app key where only an org key may act.
    pub fn org_key(&self) -> Result<(), ApiError> {
        match self.app {
            None => Ok(()),
            Some(_) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                Code::OrgKeyRequired,
                "this operation needs an org key",
            )),
        }
    }

    /// The app of an app key; refuses an org key where an app must act.
    pub fn app_key(&self) -> Result<Uuid, ApiError> {
        self.app.ok_or_else(|| {
            ApiError::new(
                StatusCode::FORBIDDEN,
                Code::AppKeyRequired,
                "this operation needs an app key",
            )
        })
    }

    /// Who the caller is for idempotency records: the API key, so that two keys (two
    /// services of one app, say) never answer each other's Idempotency-Keys.
    pub fn scope(&self) -> String {
        self.key_id.to_string()
    }
}

/// Splits `hz_<prefix>_<secret>`.
fn parse_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("hz_")?;
    let (prefix, secret) = rest.split_once('_')?;
    (prefix.len() == 16 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) && !secret.is_empty())
        .then_some((prefix, secret))
}

/// A stored key, as needed to authenticate.
#[derive(Clone, Debug)]
struct StoredKey {
    caller: Caller,
    secret_sha256: Vec<u8>,
}

/// Recent key lookups by prefix, the live prefixes, and recent unknown ones.
#[derive(Debug, Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (StoredKey, Instant)>>,
    known: Mutex<Known>,
    unknown: Mutex<HashMap<String, (Instant, u64)>>,
    /// Held while the live prefixes are read, so that one reading serves every waiter.
    reading: tokio::sync::Mutex<()>,
    reloads: AtomicU64,
}

/// The live keys' prefixes as last read.
#[derive(Debug, Default)]
struct Known {
    prefixes: HashSet<String>,
    /// When that reading started, and [`KEYS_CHANGED`] then.
    started: Option<(Instant, u64)>,
}

impl KeyCache {
    /// The caller a token authenticates, if any.
    pub async fn authenticate(&self, pool: &Pool, token: &str) -> Result<Option<Caller>, ApiError> {
        let Some((prefix, secret)) = parse_token(token) else { return Ok(None) };
        let cached = {
            let entries = self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            entries
                .get(prefix)
                .filter(|(_, at)| at.elapsed() < CACHE_TTL)
                .map(|(key, _)| key.clone())
        };
        let key = if let Some(key) = cached {
            Some(key)
        } else if !self.is_live(pool, prefix).await? {
            None
        } else {
            let key = lookup(pool, prefix).await?;
            match &key {
                Some(key) => {
                    let mut entries =
                        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    if entries.len() >= CACHE_ENTRIES_MAX {
                        entries.clear();
                    }
                    entries.insert(prefix.to_owned(), (key.clone(), Instant::now()));
                }
                // Revoked since the prefixes were read: unknown from now on.
                None => self.learn_unknown(prefix),
            }
            key
        };
        let digest = Sha256::digest(secret.as_bytes());
        Ok(key
            .filter(|key| constant_time_eq(&key.secret_sha256, digest.as_slice()))
            .map(|key| key.caller))
    }

    /// Whether a live key may have this prefix, reading the live prefixes again when they may
    /// be out of date; no database work for a prefix known to be unknown.
    async fn is_live(&self, pool: &Pool, prefix: &str) -> Result<bool, ApiError> {
        let arrived = Instant::now();
        let changed = KEYS_CHANGED.load(Ordering::SeqCst);
        if self.knows(prefix) {
            return Ok(true);
        }
        let remembered = self
            .unknown
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(prefix)
            .is_some_and(|(at, seen)| at.elapsed() < UNKNOWN_TTL && *seen == changed);
        if remembered {
            return Ok(false);
        }
        let _reading = self.reading.lock().await;
        let started = self.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner).started;
        let stale = match started {
            None => true,
            Some((at, seen)) => {
                seen != changed || (at < arrived && at.elapsed() >= KNOWN_RELOAD_INTERVAL)
            }
        };
        if stale {
            let started = (Instant::now(), KEYS_CHANGED.load(Ordering::SeqCst));
            self.reloads.fetch_add(1, Ordering::Relaxed);
            let prefixes = live_prefixes(pool).await?;
            *self.known.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
                Known { prefixes, started: Some(started) };
        }
        if self.knows(prefix) {
            return Ok(true);
        }
        self.learn_unknown(prefix);
        Ok(false)
    }

    fn knows(&self, prefix: &str) -> bool {
        self.known
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .prefixes
            .contains(prefix)
    }

    fn learn_unknown(&self, prefix: &str) {
        let mut unknown = self.unknown.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if unknown.len() >= UNKNOWN_ENTRIES_MAX {
            unknown.clear();
        }
        let changed = KEYS_CHANGED.load(Ordering::SeqCst);
        unknown.insert(prefix.to_owned(), (Instant::now(), changed));
    }

    /// How many times the live prefixes were read (for metrics).
    pub fn reloads(&self) -> u64 {
        self.reloads.load(Ordering::Relaxed)
    }

    /// Forgets every lookup (after a key is revoked).
    pub fn forget(&self) {
        note_keys_changed();
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clear();
    }
}

/// The prefixes of every org's live keys.
///
/// Across orgs by nature: a request's key names no org until it is found (finding it is
/// what tells the org). `api_keys` is a reference table where the schema is distributed by
/// org (migration 0011), so this reads one copy.
async fn live_prefixes(pool: &Pool) -> Result<HashSet<String>, ApiError> {
    let client = pool.get().await?;
    let rows = client.query("SELECT prefix FROM api_keys WHERE revoked_at IS NULL", &[]).await?;
    Ok(rows.iter().map(|row| row.get(0)).collect())
}

/// The live key with this prefix, of whichever org: the key's org is the caller's, and
/// every statement of the request names it.
///
/// Across orgs by nature, like [`live_prefixes`]: the prefix is unique across orgs
/// (`api_keys` keeps that key as a reference table).
async fn lookup(pool: &Pool, prefix: &str) -> Result<Option<StoredKey>, ApiError> {
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT id, org_id, app_id, secret_sha256 FROM api_keys
             WHERE prefix = $1 AND revoked_at IS NULL",
            &[&prefix],
        )
        .await?;
    Ok(row.map(|row| StoredKey {
        caller: Caller { key_id: row.get(0), org: OrgId(row.get(1)), app: row.get(2) },
        secret_sha256: row.get(3),
    }))
}

fn unauthorized(detail: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, Code::Unauthorized, detail.to_owned())
}

/// The bearer token of a request.
fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| unauthorized("send an API key as `Authorization: Bearer <key>`"))
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        // Already authenticated by the idempotency layer.
        if let Some(caller) = parts.extensions.get::<Self>() {
            return Ok(*caller);
        }
        let token = bearer(parts)?;
        if token.starts_with(CLIENT_TOKEN_PREFIX) {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                Code::ClientTokenForbidden,
                "a client token may only record activities; this operation needs an API key",
            ));
        }
        state
            .keys
            .authenticate(&state.pool, token)
            .await?
            .ok_or_else(|| unauthorized("the API key is unknown or revoked"))
    }
}

/// Who is calling a route that client tokens may call too: an API key's [`Caller`], or a
/// client token's (its app, its id as `key_id`) with the customer it is limited to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientCaller {
    pub caller: Caller,
    /// `Some` for a client token: the customer it is limited to, if one.
    pub client_token: Option<Option<Uuid>>,
}

impl FromRequestParts<AppState> for ClientCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer(parts)?;
        if !token.starts_with(CLIENT_TOKEN_PREFIX) {
            let caller = Caller::from_request_parts(parts, state).await?;
            return Ok(Self { caller, client_token: None });
        }
        let (caller, customer) = client_token(&state.pool, token).await?;
        Ok(Self { caller, client_token: Some(customer) })
    }
}

/// Splits `hzc_<org>_<id>_<secret>` (the secret may hold `_`).
fn parse_client_token(token: &str) -> Option<(Uuid, Uuid, &str)> {
    let mut parts = token.strip_prefix(CLIENT_TOKEN_PREFIX)?.splitn(3, '_');
    let org = Uuid::try_parse(parts.next()?).ok()?;
    let id = Uuid::try_parse(parts.next()?).ok()?;
    let secret = parts.next().filter(|secret| !secret.is_empty())?;
    Some((org, id, secret))
}

/// The caller a client token authenticates and the customer it is limited to; 401 for one
/// unknown, expired, or whose key was revoked.
async fn client_token(pool: &Pool, token: &str) -> Result<(Caller, Option<Uuid>), ApiError> {
    let unknown = || unauthorized("the client token is unknown, or its key was revoked");
    let (org, id, secret) = parse_client_token(token).ok_or_else(unknown)?;
    let client = pool.get().await?;
    let row = client
        .query_opt(
            "SELECT t.app_id, t.customer_id, t.secret_sha256, t.expires_at > now()
             FROM client_tokens AS t
             JOIN api_keys AS k ON k.org_id = t.org_id AND k.id = t.key_id
             WHERE t.org_id = $1 AND t.id = $2 AND k.revoked_at IS NULL",
            &[&org, &id],
        )
        .await?
        .ok_or_else(unknown)?;
    let stored: Vec<u8> = row.get(2);
    if !constant_time_eq(&stored, Sha256::digest(secret.as_bytes()).as_slice()) {
        return Err(unknown());
    }
    if !row.get::<_, bool>(3) {
        return Err(unauthorized("the client token has expired"));
    }
    Ok((Caller { org: OrgId(org), app: Some(row.get(0)), key_id: id }, row.get(1)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tenancy::NewKey;

    #[test]
    fn generated_tokens_parse_and_hash_to_what_is_stored() {
        let key = NewKey::generate();
        let (prefix, secret) = parse_token(&key.token).unwrap();
        assert_eq!(prefix, key.prefix);
        assert_eq!(Sha256::digest(secret.as_bytes()).as_slice(), key.secret_sha256);
        assert_ne!(NewKey::generate().token, key.token);
    }

    #[test]
    fn client_tokens_parse_with_any_secret() {
        let (org, id) = (Uuid::now_v7(), Uuid::now_v7());
        let token = format!("hzc_{}_{}_a_b-c", org.simple(), id.simple());
        assert_eq!(parse_client_token(&token), Some((org, id, "a_b-c")));
        for token in ["hzc_", "hzc_x_y_z", &format!("hzc_{}_{}_", org.simple(), id.simple())] {
            assert!(parse_client_token(token).is_none(), "{token}");
        }
        assert!(parse_token(&token).is_none());
    }

    #[test]
    fn malformed_tokens_are_refused_without_a_lookup() {
        for token in ["", "hz_", "hz_abc_def", "xx_0123456789abcdef_s", "hz_0123456789abcdef_"] {
            assert!(parse_token(token).is_none(), "{token}");
        }
    }
}

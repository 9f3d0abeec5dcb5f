//! Tenancy, the service: an org's apps and API keys, and the first start's default org, app and
//! keys. The HTTP layer (`http::v1::tenancy`) and the CLI (`hazina keys`) call it; it knows
//! nothing of HTTP. Authenticating a request with a key stays with the HTTP layer (`http::auth`).

use std::sync::atomic::{AtomicU64, Ordering};

use base64::Engine as _;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use hazina_ledger::OrgId;
use hazina_ledger::store::{Store, StoreError};
use rand::RngCore as _;
use serde::Serialize;
use sha2::{Digest as _, Sha256};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::code::Code;

/// Longest app or key name.
pub const NAME_LEN_MAX: usize = 100;

/// What can go wrong with apps and keys, in the tenancy service's words.
#[derive(Debug, thiserror::Error)]
pub enum TenancyError {
    /// No such thing in the org (another org's is indistinguishable from a missing one).
    #[error("no such {0}")]
    NotFound(&'static str),
    /// Well-formed but unacceptable: `code` says why.
    #[error("{detail}")]
    Invalid { code: Code, detail: String },
    /// The org already has an app with this name.
    #[error("the org already has an app with this name")]
    AppExists,
    /// A key was asked for an app the org does not have.
    #[error("no such app in this org")]
    AppNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Database(#[from] tokio_postgres::Error),
    #[error(transparent)]
    Pool(#[from] deadpool_postgres::PoolError),
}

impl TenancyError {
    fn invalid(code: Code, detail: impl Into<String>) -> Self {
        Self::Invalid { code, detail: detail.into() }
    }

    /// The stable code a front door answers with.
    pub fn code(&self) -> Code {
        match self {
            Self::NotFound(_) => Code::NotFound,
            Self::Invalid { code, .. } => *code,
            Self::AppExists => Code::AlreadyExists,
            Self::AppNotFound => Code::AppNotFound,
            Self::Store(_) | Self::Database(_) | Self::Pool(_) => Code::Unavailable,
        }
    }
}

/// Counts the keys this process made or revoked: a key cache whose prefixes were read before
/// the latest change reads them again at once (`http::auth::KeyCache`).
pub static KEYS_CHANGED: AtomicU64 = AtomicU64::new(0);

/// Notes that a key was made or revoked in this process.
pub fn note_keys_changed() {
    KEYS_CHANGED.fetch_add(1, Ordering::SeqCst);
}

/// A key as generated: the token to hand over once, and what is stored.
#[derive(Debug)]
pub struct NewKey {
    pub token: String,
    pub prefix: String,
    pub secret_sha256: Vec<u8>,
}

impl NewKey {
    pub fn generate() -> Self {
        let mut rng = rand::rng();
        let mut prefix = [0_u8; 8];
        let mut secret = [0_u8; 32];
        rng.fill_bytes(&mut prefix);
        rng.fill_bytes(&mut secret);
        let prefix = prefix.iter().fold(String::with_capacity(16), |mut hex, byte| {
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
            hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 0xf)]));
            hex
        });
        let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
        Self {
            token: format!("hz_{prefix}_{secret}"),
            secret_sha256: Sha256::digest(secret.as_bytes()).to_vec(),
            prefix,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct App {
    pub app_id: Uuid,
    pub name: String,
    pub created_at: DateTime<Utc>,
}

/// A key as listed: never its secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Key {
    pub key_id: Uuid,
    pub prefix: String,
    pub app_id: Option<Uuid>,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A key just created: the only time its token is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: Key,
    pub token: String,
}

/// An app's or key's name, trimmed; refused when blank, too long or with a control character
/// anywhere (a newline too: `crate::schema::PRINTABLE`).
///
/// # Errors
///
/// `Invalid` (`invalid_name`).
pub fn valid_name(name: &str) -> Result<&str, TenancyError> {
    // Counted as sent, as the document's `maxLength` counts.
    let (control, length) = (name.chars().any(char::is_control), name.chars().count());
    let name = name.trim();
    if control || name.is_empty() || length > NAME_LEN_MAX {
        return Err(TenancyError::invalid(
            Code::InvalidName,
            format!("a name has 1 to {NAME_LEN_MAX} printable characters"),
        ));
    }
    Ok(name)
}

/// Creates an app; a name already used in the org is a conflict.
pub async fn insert_app(pool: &Pool, org: OrgId, name: &str) -> Result<App, TenancyError> {
    let client = pool.get().await?;
    let id = Uuid::now_v7();
    let row = client
        .query_one(
            "INSERT INTO apps (id, org_id, name) VALUES ($1, $2, $3) RETURNING created_at",
            &[&id, &org.0, &name],
        )
        .await
        .map_err(|error| match error.code() {
            Some(&SqlState::UNIQUE_VIOLATION) => TenancyError::AppExists,
            _ => error.into(),
        })?;
    Ok(App { app_id: id, name: name.to_owned(), created_at: row.get(0) })
}

/// The org's apps, oldest first.
pub async fn apps(pool: &Pool, org: OrgId) -> Result<Vec<App>, TenancyError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT id, name, created_at FROM apps WHERE org_id = $1 ORDER BY created_at, id",
            &[&org.0],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| App { app_id: row.get(0), name: row.get(1), created_at: row.get(2) })
        .collect())
}

/// Creates a key for the org, or for one of its apps.
pub async fn insert_key(
    pool: &Pool,
    org: OrgId,
    app: Option<Uuid>,
    name: &str,
) -> Result<CreatedKey, TenancyError> {
    let client = pool.get().await?;
    if let Some(app) = app {
        let found = client
            .query_opt("SELECT 1 FROM apps WHERE id = $1 AND org_id = $2", &[&app, &org.0])
            .await?;
        if found.is_none() {
            return Err(TenancyError::AppNotFound);
        }
    }
    let new = NewKey::generate();
    let id = Uuid::now_v7();
    let row = client
        .query_one(
            "INSERT INTO api_keys (id, org_id, app_id, prefix, secret_sha256, name)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING created_at",
            &[&id, &org.0, &app, &new.prefix, &new.secret_sha256, &name],
        )
        .await?;
    note_keys_changed();
    Ok(CreatedKey {
        key: Key {
            key_id: id,
            prefix: new.prefix,
            app_id: app,
            name: name.to_owned(),
            created_at: row.get(0),
            revoked_at: None,
        },
        token: new.token,
    })
}

/// A client token's lifetime when none is asked for, and the longest.
pub const CLIENT_TOKEN_TTL_SECONDS_DEFAULT: u32 = 600;
pub const CLIENT_TOKEN_TTL_SECONDS_MAX: u32 = 3600;

/// What a client token starts with (an API key starts with `hz_`).
pub const CLIENT_TOKEN_PREFIX: &str = "hzc_";

/// A client token just minted: the only time it is shown.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientToken {
    /// `Authorization: Bearer <token>`, to record activities until `expiresAt`.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub app_id: Uuid,
    /// The only customer it records activities of; any of the org's when null.
    pub customer_id: Option<Uuid>,
}

/// Mints a client token for the app of the key `key_id`: `hzc_<org>_<id>_<secret>`, with
/// 256 bits of secret, stored as a SHA-256. It names its org, so that it is found by a
/// statement of that org. It lasts `ttl_seconds` (1 to [`CLIENT_TOKEN_TTL_SECONDS_MAX`],
/// [`CLIENT_TOKEN_TTL_SECONDS_DEFAULT`] when none), and no longer than its key.
///
/// # Errors
///
/// `Invalid` (`invalid_ttl`).
pub async fn mint_client_token(
    pool: &Pool,
    org: OrgId,
    key_id: Uuid,
    app: Uuid,
    customer: Option<Uuid>,
    ttl_seconds: Option<u32>,
) -> Result<ClientToken, TenancyError> {
    let ttl = ttl_seconds.unwrap_or(CLIENT_TOKEN_TTL_SECONDS_DEFAULT);
    if ttl == 0 || ttl > CLIENT_TOKEN_TTL_SECONDS_MAX {
        return Err(TenancyError::invalid(
            Code::InvalidTtl,
            format!("ttlSeconds is 1 to {CLIENT_TOKEN_TTL_SECONDS_MAX}"),
        ));
    }
    let mut secret = [0_u8; 32];
    rand::rng().fill_bytes(&mut secret);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let id = Uuid::now_v7();
    let client = pool.get().await?;
    let row = client
        .query_one(
            "INSERT INTO client_tokens
                 (org_id, id, key_id, app_id, customer_id, secret_sha256, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, now() + $7::bigint * interval '1 second')
             RETURNING expires_at",
            &[
                &org.0,
                &id,
                &key_id,
                &app,
                &customer,
                &Sha256::digest(secret.as_bytes()).to_vec(),
                &i64::from(ttl),
            ],
        )
        .await?;
    Ok(ClientToken {
        token: format!("{CLIENT_TOKEN_PREFIX}{}_{}_{secret}", org.0.simple(), id.simple()),
        expires_at: row.get(0),
        app_id: app,
        customer_id: customer,
    })
}

/// The org's keys, oldest first.
pub async fn keys(pool: &Pool, org: OrgId) -> Result<Vec<Key>, TenancyError> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT id, prefix, app_id, name, created_at, revoked_at FROM api_keys
             WHERE org_id = $1 ORDER BY created_at, id",
            &[&org.0],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Key {
            key_id: row.get(0),
            prefix: row.get(1),
            app_id: row.get(2),
            name: row.get(3),
            created_at: row.get(4),
            revoked_at: row.get(5),
        })
        .collect())
}

/// Revokes a live key of the org; whether there was one.
pub async fn revoke(pool: &Pool, org: OrgId, key: Uuid) -> Result<bool, TenancyError> {
    let client = pool.get().await?;
    let changed = client
        .execute(
            "UPDATE api_keys SET revoked_at = now()
             WHERE id = $1 AND org_id = $2 AND revoked_at IS NULL",
            &[&key, &org.0],
        )
        .await?;
    Ok(changed == 1)
}

/// The keys made on first start.
#[derive(Debug)]
pub struct Bootstrapped {
    pub org: OrgId,
    pub app: App,
    pub org_key: CreatedKey,
    pub app_key: CreatedKey,
}

/// On a database with no app yet, creates the `default` org and app, an org key and an app
/// key. Two processes starting at once make them only once (an advisory lock).
///
/// Reads `apps` across orgs, since the question is whether there is any org yet: one of the
/// statements without an org (ARCHITECTURE.md), on a reference table.
pub async fn bootstrap(pool: &Pool) -> Result<Option<Bootstrapped>, TenancyError> {
    /// The advisory lock's key: any constant unique to this purpose.
    const LOCK: i64 = 0x4841_5a49_4e41_0001;
    let client = pool.get().await?;
    client.execute("SELECT pg_advisory_lock($1)", &[&LOCK]).await?;
    let result = async {
        let any = client.query_one("SELECT EXISTS (SELECT 1 FROM apps)", &[]).await?;
        if any.get::<_, bool>(0) {
            return Ok(None);
        }
        let org = OrgId::generate();
        Store::new(pool.clone()).create_org(org, "default").await?;
        let app = insert_app(pool, org, "default").await?;
        let org_key = insert_key(pool, org, None, "default org key").await?;
        let app_key = insert_key(pool, org, Some(app.app_id), "default app key").await?;
        Ok(Some(Bootstrapped { org, app, org_key, app_key }))
    }
    .await;
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK]).await;
    result
}

/// The org a CLI command acts on: the given one, or the only one there is.
///
/// Reads `apps` across orgs to find that one: one of the statements without an org
/// (ARCHITECTURE.md), on a reference table.
pub async fn only_org(pool: &Pool, org: Option<Uuid>) -> Result<OrgId, TenancyError> {
    if let Some(org) = org {
        return Ok(OrgId(org));
    }
    let client = pool.get().await?;
    let rows = client.query("SELECT DISTINCT org_id FROM apps LIMIT 2", &[]).await?;
    match rows.as_slice() {
        [row] => Ok(OrgId(row.get(0))),
        [] => Err(TenancyError::invalid(Code::NoOrg, "there is no org yet: start the server once")),
        _ => Err(TenancyError::invalid(Code::SeveralOrgs, "there are several orgs: pass --org")),
    }
}

/// An app of the org by name.
pub async fn app_by_name(pool: &Pool, org: OrgId, name: &str) -> Result<Uuid, TenancyError> {
    let client = pool.get().await?;
    client
        .query_opt("SELECT id FROM apps WHERE org_id = $1 AND name = $2", &[&org.0, &name])
        .await?
        .map(|row| row.get(0))
        .ok_or(TenancyError::NotFound("app"))
}

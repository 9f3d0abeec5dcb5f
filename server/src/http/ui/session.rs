//! Sessions of the web UI: signing in with an org API key and out again, the session cookie,
//! the [`UiSession`] extractor every page takes, and [`CsrfForm`], the extractor of every form
//! that changes something.
//!
//! Signing in checks the key exactly as the API does ([`crate::http::auth::KeyCache`]); an app
//! key or a client token is refused. A session is a row of `ui_sessions` (migration 0026): a
//! random 256-bit secret kept only as its SHA-256, the key it was opened with, a CSRF token and
//! an expiry 12 hours on. The cookie `hazina_session=<org>.<id>.<secret>` is `HttpOnly`,
//! `SameSite=Strict`, `Path=/ui`, and `Secure` when the server's public URL
//! (`HAZINA_PUBLIC_URL`) is https: hazina itself serves plain http, so https is a proxy in front
//! of it, which the operator names there; no `X-Forwarded-Proto` is trusted.
//!
//! Every request of a session looks its row up joined to its key: a key revoked by any process
//! ends its sessions at the next request (stronger than the API's key cache, which may trust a
//! key revoked by another process for a few seconds; the row must be read anyway).
//!
//! Forms that change something carry the session's CSRF token in a hidden field, compared in
//! constant time; a form without it is 403 `csrf_token_invalid` and changes nothing. Signing
//! in has no session yet: `SameSite=Strict` and an `Origin` check (it must be this server)
//! protect it. Neither the key nor the cookie is ever logged.

use axum::extract::rejection::FormRejection;
use axum::extract::{Form, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine as _;
use cookie::{Cookie, SameSite};
use deadpool_postgres::Pool;
use hazina_ledger::OrgId;
use rand::RngCore as _;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

use super::{Frame, UiError, render};
use crate::code::Code;
use crate::http::AppState;
use crate::http::problem::ApiError;
use crate::secrets::constant_time_eq;
use crate::tenancy::CLIENT_TOKEN_PREFIX;

/// The session cookie's name.
pub const COOKIE: &str = "hazina_session";

/// The hidden form field that carries the session's CSRF token.
pub const CSRF_FIELD: &str = "csrf";

/// How long a session lasts from signing in.
pub const SESSION_HOURS: i32 = 12;

/// Largest form body the UI reads.
pub const FORM_BYTES_MAX: usize = 16 * 1024;

/// A signed-in person: the org, the org key the session was opened with, the session's id and
/// its CSRF token. Every page takes it; without a live session the request is sent to the
/// sign-in page.
#[derive(Clone, Debug)]
pub struct UiSession {
    pub org: OrgId,
    /// The org's name, for the page's header.
    pub org_name: String,
    /// The org key the session was opened with.
    pub key_id: Uuid,
    pub id: Uuid,
    /// The token every form that changes something must carry back ([`CSRF_FIELD`]).
    pub csrf: String,
}

impl UiSession {
    /// The frame of a page of this session: its title, the nav item it is, the org's name and
    /// the CSRF token of the sign-out form.
    pub fn frame(&self, active: &'static str, title: impl Into<String>) -> Frame {
        Frame {
            title: title.into(),
            active,
            org_name: Some(self.org_name.clone()),
            csrf: self.csrf.clone(),
        }
    }
}

impl FromRequestParts<AppState> for UiSession {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, UiError> {
        if let Some(session) = parts.extensions.get::<Self>() {
            return Ok(session.clone());
        }
        let session = lookup(&state.pool, &parts.headers).await?.ok_or(UiError::SignIn)?;
        parts.extensions.insert(session.clone());
        Ok(session)
    }
}

/// The live session the request's cookie names, if any.
async fn lookup(pool: &Pool, headers: &HeaderMap) -> Result<Option<UiSession>, UiError> {
    let Some((org, id, secret)) = session_cookie(headers) else { return Ok(None) };
    let client = pool.get().await.map_err(ApiError::from)?;
    // The key must be live and an org key still: a revoked key ends its sessions here.
    let row = client
        .query_opt(
            "SELECT s.key_id, s.secret_hash, s.csrf_token, o.name
             FROM ui_sessions AS s
             JOIN api_keys AS k ON k.org_id = s.org_id AND k.id = s.key_id
             JOIN orgs AS o ON o.id = s.org_id
             WHERE s.org_id = $1 AND s.id = $2 AND s.expires_at > now()
                 AND k.revoked_at IS NULL AND k.app_id IS NULL",
            &[&org.0, &id],
        )
        .await
        .map_err(ApiError::from)?;
    let Some(row) = row else { return Ok(None) };
    let stored: Vec<u8> = row.get(1);
    if !constant_time_eq(&stored, Sha256::digest(secret.as_bytes()).as_slice()) {
        return Ok(None);
    }
    Ok(Some(UiSession { org, org_name: row.get(3), key_id: row.get(0), id, csrf: row.get(2) }))
}

/// The org, id and secret of the request's session cookie, if it has a well-formed one.
fn session_cookie(headers: &HeaderMap) -> Option<(OrgId, Uuid, String)> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .filter(|cookie| cookie.name() == COOKIE)
        .find_map(|cookie| parse_session_value(cookie.value()))
}

/// Splits `<org>.<id>.<secret>`.
fn parse_session_value(value: &str) -> Option<(OrgId, Uuid, String)> {
    let mut parts = value.splitn(3, '.');
    let org = Uuid::try_parse(parts.next()?).ok()?;
    let id = Uuid::try_parse(parts.next()?).ok()?;
    let secret = parts.next().filter(|secret| (16..=128).contains(&secret.len()))?;
    Some((OrgId(org), id, secret.to_owned()))
}

/// 32 random bytes, base64url without padding.
fn random_token() -> String {
    let mut bytes = [0_u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Opens a session for an org key: the cookie's value. The org's expired sessions are deleted
/// on the way (they are refused anyway; this keeps the table small).
async fn open(pool: &Pool, org: OrgId, key_id: Uuid) -> Result<String, ApiError> {
    let id = Uuid::now_v7();
    let secret = random_token();
    let digest = Sha256::digest(secret.as_bytes()).to_vec();
    let client = pool.get().await?;
    client
        .execute("DELETE FROM ui_sessions WHERE org_id = $1 AND expires_at <= now()", &[&org.0])
        .await?;
    client
        .execute(
            "INSERT INTO ui_sessions (org_id, id, key_id, secret_hash, csrf_token, expires_at)
             VALUES ($1, $2, $3, $4, $5, now() + make_interval(hours => $6))",
            &[&org.0, &id, &key_id, &digest, &random_token(), &SESSION_HOURS],
        )
        .await?;
    Ok(format!("{}.{}.{secret}", org.0.simple(), id.simple()))
}

/// Ends a session.
async fn close(pool: &Pool, session: &UiSession) -> Result<(), ApiError> {
    let client = pool.get().await?;
    client
        .execute(
            "DELETE FROM ui_sessions WHERE org_id = $1 AND id = $2",
            &[&session.org.0, &session.id],
        )
        .await?;
    Ok(())
}

/// Whether the session cookie gets `Secure`: when people reach the server over https, which
/// is when its public URL is https (see the module documentation).
fn secure_cookie(state: &AppState) -> bool {
    state.payments.settings().public_url.starts_with("https://")
}

/// The `Set-Cookie` value of a session cookie: `value`, or a removal when `None`.
fn set_cookie(value: Option<String>, secure: bool) -> Option<HeaderValue> {
    let removal = value.is_none();
    let mut builder = Cookie::build((COOKIE, value.unwrap_or_default()))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/ui")
        .secure(secure);
    builder = if removal {
        builder.removal()
    } else {
        builder.max_age(cookie::time::Duration::hours(i64::from(SESSION_HOURS)))
    };
    HeaderValue::from_str(&builder.build().to_string()).ok()
}

/// A redirect to `to` that sets (or removes) the session cookie.
fn redirect_with_cookie(to: &str, cookie: Option<HeaderValue>) -> Response {
    let mut response = Redirect::to(to).into_response();
    if let Some(cookie) = cookie {
        response.headers_mut().insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Where a request says it was sent: the `Host` header, else the URI's authority (HTTP/2).
fn host<'a>(headers: &'a HeaderMap, uri: &'a Uri) -> Option<&'a str> {
    headers
        .get(header::HOST)
        .and_then(|value| value.to_str().ok())
        .or_else(|| uri.authority().map(axum::http::uri::Authority::as_str))
}

/// Refuses a form sent from another site: its `Origin` must be the server the request was sent
/// to (`Host`), or the server's public URL. Without an `Origin` a form is refused only when
/// `required` (signing in, which has no CSRF token yet): browsers send one with every POST.
fn same_origin(
    headers: &HeaderMap,
    uri: &Uri,
    state: &AppState,
    required: bool,
) -> Result<(), UiError> {
    let refused = |detail: &str| {
        UiError::new(StatusCode::FORBIDDEN, Code::CrossOriginForbidden, detail.to_owned())
    };
    let Some(origin) = headers.get(header::ORIGIN) else {
        return if required {
            Err(refused("the form was sent without an Origin header"))
        } else {
            Ok(())
        };
    };
    let origin = origin.to_str().ok().and_then(|origin| origin.parse::<Uri>().ok());
    let Some(origin) = origin.filter(|origin| {
        matches!(origin.scheme_str(), Some("http" | "https"))
            && origin.path_and_query().is_none_or(|path| path.as_str() == "/")
    }) else {
        return Err(refused("the form was sent from a page of another site"));
    };
    let authority = origin.authority().map(axum::http::uri::Authority::as_str);
    let to_host = authority.is_some_and(|authority| Some(authority) == host(headers, uri));
    let public = state.payments.settings().public_url;
    let to_public = public.parse::<Uri>().is_ok_and(|public| {
        public.scheme_str() == origin.scheme_str()
            && public.authority().map(axum::http::uri::Authority::as_str) == authority
    });
    if to_host || to_public {
        Ok(())
    } else {
        Err(refused("the form was sent from a page of another site"))
    }
}

/// A form that changes something, sent by a signed-in person: the session, and the form's
/// fields other than its CSRF token. The token must be the session's (compared in constant
/// time), and the `Origin`, when sent, this server; otherwise 403 and nothing happens.
#[derive(Debug)]
pub struct CsrfForm<T> {
    pub session: UiSession,
    pub form: T,
}

impl<T: DeserializeOwned> FromRequest<AppState> for CsrfForm<T> {
    type Rejection = UiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, UiError> {
        let (mut parts, body) = request.into_parts();
        let session = UiSession::from_request_parts(&mut parts, state).await?;
        let checked = async {
            same_origin(&parts.headers, &parts.uri, state, false)?;
            let is_form = parts.headers.get(header::CONTENT_TYPE).is_some_and(|value| {
                value.as_bytes().starts_with(b"application/x-www-form-urlencoded")
            });
            if !is_form {
                return Err(UiError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    Code::UnsupportedMediaType,
                    "send the form as application/x-www-form-urlencoded",
                ));
            }
            let bytes = axum::body::to_bytes(body, FORM_BYTES_MAX).await.map_err(|_| {
                UiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Code::BodyTooLarge,
                    "the form is too large",
                )
            })?;
            let unreadable = || {
                UiError::new(StatusCode::BAD_REQUEST, Code::InvalidBody, "the form is unreadable")
            };
            let pairs: Vec<(String, String)> =
                serde_urlencoded::from_bytes(&bytes).map_err(|_| unreadable())?;
            let (tokens, rest): (Vec<_>, Vec<_>) =
                pairs.into_iter().partition(|(name, _)| name == CSRF_FIELD);
            let tokens: Vec<&str> = tokens.iter().map(|(_, token)| token.as_str()).collect();
            check_token(&session, &tokens)?;
            let rest = serde_urlencoded::to_string(&rest).map_err(|_| unreadable())?;
            serde_urlencoded::from_str(&rest).map_err(|_| unreadable())
        };
        match checked.await {
            Ok(form) => Ok(Self { session, form }),
            Err(error) => Err(error.shown_to(&session)),
        }
    }
}

/// Checks the CSRF tokens a form carried (`tokens`: every value of its [`CSRF_FIELD`]): exactly
/// one, the session's, compared in constant time; otherwise 403 `csrf_token_invalid`. A form
/// its handler reads itself (a file upload, `multipart/form-data`) is checked with
/// [`check_origin`] before it is read and with this once it is, before anything is done.
pub(super) fn check_token(session: &UiSession, tokens: &[&str]) -> Result<(), UiError> {
    let valid = matches!(tokens, [token]
        if constant_time_eq(token.as_bytes(), session.csrf.as_bytes()));
    if valid {
        Ok(())
    } else {
        Err(UiError::new(
            StatusCode::FORBIDDEN,
            Code::CsrfTokenInvalid,
            "the form's security token is missing or out of date: reload the page and try again",
        ))
    }
}

/// Refuses a form sent from a page of another site, as [`CsrfForm`] does (403
/// `cross_origin_forbidden`): its `Origin`, when sent, must be this server.
pub(super) fn check_origin(
    headers: &HeaderMap,
    uri: &Uri,
    state: &AppState,
) -> Result<(), UiError> {
    same_origin(headers, uri, state, false)
}

/// The sign-in page.
#[derive(askama::Template)]
#[template(path = "ui/login.html")]
struct LoginPage {
    frame: Frame,
    /// Why the last attempt failed, and its code.
    error: Option<(String, &'static str)>,
}

fn login_page(status: StatusCode, error: Option<(String, &'static str)>) -> Response {
    let frame =
        Frame { title: "Sign in".to_owned(), active: "login", org_name: None, csrf: String::new() };
    (status, render(&LoginPage { frame, error })).into_response()
}

/// `GET /ui/login`: the sign-in form, or the trial balance for someone signed in.
pub async fn sign_in_page(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    if lookup(&state.pool, &headers).await?.is_some() {
        return Ok(Redirect::to("/ui/").into_response());
    }
    Ok(login_page(StatusCode::OK, None))
}

/// The sign-in form's fields.
#[derive(Debug, Deserialize)]
pub struct SignIn {
    /// An org API key, `hz_…`.
    key: String,
}

/// `POST /ui/login`: checks the key as the API does and opens a session; the form again with
/// the reason when the key is unknown, revoked, an app key or a client token.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    form: Result<Form<SignIn>, FormRejection>,
) -> Result<Response, UiError> {
    same_origin(&headers, &uri, &state, true)?;
    let Ok(Form(form)) = form else {
        return Ok(login_page(
            StatusCode::BAD_REQUEST,
            Some(("Enter an org API key.".to_owned(), Code::InvalidBody.as_str())),
        ));
    };
    let key = form.key.trim();
    if key.starts_with(CLIENT_TOKEN_PREFIX) {
        return Ok(login_page(
            StatusCode::FORBIDDEN,
            Some((
                "A client token cannot sign in: use an org API key (hz_…).".to_owned(),
                Code::ClientTokenForbidden.as_str(),
            )),
        ));
    }
    let caller = state.keys.authenticate(&state.pool, key).await?;
    let Some(caller) = caller else {
        return Ok(login_page(
            StatusCode::UNAUTHORIZED,
            Some(("The API key is unknown or revoked.".to_owned(), Code::Unauthorized.as_str())),
        ));
    };
    if caller.org_key().is_err() {
        return Ok(login_page(
            StatusCode::FORBIDDEN,
            Some((
                "This is an app key: the finance pages need an org key.".to_owned(),
                Code::OrgKeyRequired.as_str(),
            )),
        ));
    }
    let value = open(&state.pool, caller.org, caller.key_id).await?;
    Ok(redirect_with_cookie("/ui/", set_cookie(Some(value), secure_cookie(&state))))
}

/// A form with no fields of its own (its CSRF token only).
#[derive(Debug, Deserialize)]
pub struct NoFields {}

/// `POST /ui/logout`: ends the session and removes the cookie.
pub async fn sign_out(
    State(state): State<AppState>,
    CsrfForm { session, form: NoFields {} }: CsrfForm<NoFields>,
) -> Result<Response, UiError> {
    close(&state.pool, &session).await.map_err(|error| UiError::from(error).shown_to(&session))?;
    Ok(redirect_with_cookie("/ui/login", set_cookie(None, secure_cookie(&state))))
}

/// The answer to a request without a live session: to the sign-in page, forgetting the
/// cookie (it names no live session).
pub(super) fn to_sign_in() -> Response {
    redirect_with_cookie("/ui/login", set_cookie(None, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_values_parse_and_odd_ones_do_not() {
        let (org, id) = (Uuid::now_v7(), Uuid::now_v7());
        let secret = random_token();
        let value = format!("{}.{}.{secret}", org.simple(), id.simple());
        assert_eq!(parse_session_value(&value), Some((OrgId(org), id, secret.clone())));
        for odd in [
            String::new(),
            format!("{}.{}", org.simple(), id.simple()),
            format!("{}.{}.", org.simple(), id.simple()),
            format!("x.{}.{secret}", id.simple()),
            format!("{}.{}.{}", org.simple(), id.simple(), "a".repeat(129)),
        ] {
            assert!(parse_session_value(&odd).is_none(), "{odd}");
        }
    }

    #[test]
    fn the_cookie_is_read_among_others() {
        let (org, id) = (Uuid::now_v7(), Uuid::now_v7());
        let value = format!("{}.{}.{}", org.simple(), id.simple(), random_token());
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, HeaderValue::from_static("a=b; theme=dark"));
        assert!(session_cookie(&headers).is_none());
        headers.append(
            header::COOKIE,
            HeaderValue::from_str(&format!("x=1; {COOKIE}={value}")).unwrap(),
        );
        assert_eq!(session_cookie(&headers).map(|(o, i, _)| (o, i)), Some((OrgId(org), id)));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_scoped_to_the_ui() {
        let set = set_cookie(Some("v".to_owned()), false).unwrap();
        let set = set.to_str().unwrap();
        for part in ["hazina_session=v", "HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=43200"]
        {
            assert!(set.contains(part), "{set} lacks {part}");
        }
        assert!(!set.contains("Secure"), "{set}");
        assert!(
            set_cookie(Some("v".to_owned()), true).unwrap().to_str().unwrap().contains("Secure")
        );
        let removal = set_cookie(None, false).unwrap();
        assert!(removal.to_str().unwrap().contains("Max-Age=0"), "{removal:?}");
    }

    #[test]
    fn tokens_are_random_and_256_bits() {
        let token = random_token();
        assert_eq!(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(&token).unwrap().len(),
            32
        );
        assert_ne!(token, random_token());
    }
}

//! The finance web UI at `/ui`: server-rendered HTML from askama templates
//! (`server/templates/ui/`, checked and embedded at compile time), one stylesheet embedded
//! with `include_str!`, charts as inline SVG, no JavaScript and nothing fetched from elsewhere.
//!
//! A page is a template and a handler. The template extends `ui/layout.html` and has a
//! [`Frame`] field named `frame` (title, nav item, org name, the sign-out form's CSRF token);
//! the handler takes a [`UiSession`] (org, key, CSRF token), calls the services the API calls
//! (never the API over loopback), and returns [`render`] of the template, or a [`UiError`],
//! which is a friendly page with the stable code. A form that changes something is a POST
//! taking [`CsrfForm`], whose template puts the hidden field `csrf` = `frame.csrf` in it.
//! Add the route in [`routes`] and, for a nav item, a line in the layout. A POST that did
//! what it asked answers 303 to the page that shows the result (so reloading does not send
//! it again); one refused is the error page, and nothing changed. A page that must reload
//! itself (the imports while one runs) fills the layout's `head` block with a
//! `<meta http-equiv="refresh">`.
//!
//! The pages: the trial balance and statements (`finance.rs`); reconciliation runs, the
//! exceptions queue and an exception's resolution forms (`reconciliation.rs`); statement
//! uploads imported in the background with their progress (`imports.rs`, the table is
//! [`Uploads`] in the app state); stuck payments settled by hand (`stuck.rs`); period close
//! (`periods.rs`).
//!
//! Not part of the OpenAPI document: these are pages for people, not an API.

mod chart;
mod finance;
mod imports;
mod periods;
mod reconciliation;
mod session;
mod stuck;

use askama::Template;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{any, get, post};

pub use chart::CHART_POINTS;
pub use imports::{UPLOAD_BODY_BYTES_MAX, Uploads};
pub use session::{COOKIE, CSRF_FIELD, CsrfForm, UiSession};

use crate::code::Code;
use crate::http::AppState;
use crate::http::problem::ApiError;

/// The UI's stylesheet, served at `/ui/assets/ui.css`.
const STYLESHEET: &str = include_str!("ui.css");

/// Where pages may load from and send to: this server only, no scripts, no frames.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The `/ui` routes, to merge into the main router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ui", get(finance::trial_balance))
        .route("/ui/", get(finance::trial_balance))
        .route("/ui/trial-balance", get(finance::trial_balance))
        .route("/ui/accounts/{account_id}", get(finance::statement))
        .route("/ui/reconciliation", get(reconciliation::runs))
        .route("/ui/reconciliation/runs", post(reconciliation::start_run))
        .route("/ui/reconciliation/runs/{run_id}", get(reconciliation::run))
        .route("/ui/reconciliation/exceptions", get(reconciliation::queue))
        .route("/ui/reconciliation/exceptions/{exception_id}", get(reconciliation::exception))
        .route(
            "/ui/reconciliation/exceptions/{exception_id}/assignment",
            post(reconciliation::assign),
        )
        .route(
            "/ui/reconciliation/exceptions/{exception_id}/resolution",
            post(reconciliation::resolve),
        )
        // A statement file is far larger than a form: this route alone takes one.
        .route(
            "/ui/imports",
            get(imports::imports)
                .post(imports::upload)
                .layer(DefaultBodyLimit::max(UPLOAD_BODY_BYTES_MAX)),
        )
        .route("/ui/stuck-payments", get(stuck::stuck))
        .route("/ui/stuck-payments/{transaction_id}/settlement", post(stuck::settle))
        .route("/ui/periods", get(periods::periods))
        .route("/ui/periods/close", post(periods::close))
        .route("/ui/login", get(session::sign_in_page).post(session::sign_in))
        .route("/ui/logout", post(session::sign_out))
        .route("/ui/assets/ui.css", get(stylesheet))
        .route("/ui/{*rest}", any(not_found))
        .layer(DefaultBodyLimit::max(session::FORM_BYTES_MAX))
        .layer(axum::middleware::map_response(headers))
}

/// What the layout needs of every page.
#[derive(Clone, Debug)]
pub struct Frame {
    /// The page's title (before " · Hazina").
    pub title: String,
    /// The nav item of the page (`trial-balance`, …), to mark it current.
    pub active: &'static str,
    /// The signed-in org's name; `None` on the sign-in page (no nav bar).
    pub org_name: Option<String>,
    /// The session's CSRF token, for the sign-out form (and any other form of the page).
    pub csrf: String,
}

/// Renders a page; a template that fails to render (it cannot, with the values it takes) is a
/// 500 page.
pub fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(error) => {
            tracing::error!(error = %error, "a UI template failed to render");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                Html("<!doctype html><title>Error</title><p>internal_error</p>"),
            )
                .into_response()
        }
    }
}

/// Why a page cannot be shown: no session (to the sign-in page), or an error page with a
/// status and a stable code, inside the nav bar when the person is signed in.
#[derive(Debug)]
pub enum UiError {
    /// No live session: to the sign-in page.
    SignIn,
    /// An error page.
    Page { status: StatusCode, code: Code, detail: String, frame: Option<Frame> },
}

impl UiError {
    /// An error page.
    pub fn new(status: StatusCode, code: Code, detail: impl Into<String>) -> Self {
        Self::Page { status, code, detail: detail.into(), frame: None }
    }

    /// 400: the page's query or path is malformed.
    pub fn bad_request(code: Code, detail: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// The same error shown inside the session's nav bar.
    #[must_use]
    pub fn shown_to(self, session: &UiSession) -> Self {
        match self {
            Self::Page { status, code, detail, frame: None } => {
                Self::Page { status, code, detail, frame: Some(session.frame("error", "Error")) }
            }
            other => other,
        }
    }
}

/// The API's errors (the database failing, an account not found) as pages, with the same
/// status, code and detail (which never carries internals).
impl From<ApiError> for UiError {
    fn from(error: ApiError) -> Self {
        Self::new(error.status, error.code, error.detail)
    }
}

/// The error page.
#[derive(Template)]
#[template(path = "ui/error.html")]
struct ErrorPage {
    frame: Frame,
    status: u16,
    reason: &'static str,
    code: &'static str,
    detail: String,
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn => session::to_sign_in(),
            Self::Page { status, code, detail, frame } => {
                let reason = status.canonical_reason().unwrap_or("Error");
                let frame = frame.unwrap_or_else(|| Frame {
                    title: reason.to_owned(),
                    active: "error",
                    org_name: None,
                    csrf: String::new(),
                });
                let page = ErrorPage {
                    frame: Frame { title: reason.to_owned(), ..frame },
                    status: status.as_u16(),
                    reason,
                    code: code.as_str(),
                    detail,
                };
                (status, render(&page)).into_response()
            }
        }
    }
}

async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8")),
            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600")),
        ],
        STYLESHEET,
    )
        .into_response()
}

async fn not_found() -> UiError {
    UiError::new(StatusCode::NOT_FOUND, Code::NotFound, "there is no such page")
}

/// Headers of every UI answer: the content security policy, no framing, no sniffing, no
/// referrer to other sites, and no caching of pages (they show the books).
async fn headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

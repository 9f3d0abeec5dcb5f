//! The imports page: statement files uploaded through a form (`multipart/form-data`), each
//! imported in the background by a tokio task with a [`Progress`] feeding [`Uploads`], an
//! in-memory table in the app state; the page lists this server's uploads with their lines
//! read and stored and their outcome, and the imports recorded, and reloads itself every two
//! seconds while an upload of the org is running (a `<meta http-equiv="refresh">`: no script).
//!
//! An upload is checked before it is started — the session's CSRF token, the channel, the
//! format, the file's size — so that a refusal is an error page and nothing starts. What the
//! import itself refuses (a file that is no statement, another currency's) is its outcome in
//! the table, with the code the API answers with. The table is this process's memory: the
//! imports recorded in the database are listed beside it and outlive it.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use askama::Template;
use axum::extract::State;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use chrono::{DateTime, Utc};
use hazina_ledger::OrgId;
use hazina_providers::statements::Format;
use uuid::Uuid;

use super::finance::time;
use super::reconciliation::{ChannelOption, channel_label, channels, field_id, see_other, who};
use super::session::{check_origin, check_token};
use super::{CSRF_FIELD, Frame, UiError, UiSession, render};
use crate::code::Code;
use crate::http::AppState;
use crate::http::problem::ApiError;
use crate::http::v1::reconciliation::{STATEMENT_BYTES_MAX, text};
use crate::reconciliation::{ImportSummary, NewImport, Progress};

/// The body limit of the upload route: the largest statement file the API takes, and room
/// for the form's other fields and the multipart framing.
pub const UPLOAD_BODY_BYTES_MAX: usize = STATEMENT_BYTES_MAX + 64 * 1024;

/// Finished uploads kept per org (running ones are always kept).
const FINISHED_KEPT: usize = 20;

/// Uploads of one org importing at once: each holds its file in memory.
const RUNNING_MAX: usize = 2;

/// How many recorded imports the page lists.
const IMPORTS_LISTED: i64 = 50;

/// Seconds between the page's reloads while an upload runs.
const REFRESH_SECONDS: u32 = 2;

/// How an upload ended.
#[derive(Clone, Debug)]
enum Outcome {
    Imported(ImportSummary),
    Failed { code: Code, detail: String },
}

/// One upload: what was sent, how far its import is, and how it ended.
#[derive(Debug)]
pub struct Upload {
    id: Uuid,
    channel: Uuid,
    file_name: Option<String>,
    file_bytes: usize,
    format: Option<Format>,
    started_at: DateTime<Utc>,
    lines_read: AtomicU64,
    lines_stored: AtomicU64,
    /// `None` while it runs.
    outcome: Mutex<Option<Outcome>>,
}

impl Upload {
    fn outcome(&self) -> Option<Outcome> {
        self.outcome.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn finish(&self, outcome: Outcome) {
        let mut slot = self.outcome.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(outcome);
        }
    }

    fn running(&self) -> bool {
        self.outcome.lock().unwrap_or_else(PoisonError::into_inner).is_none()
    }
}

impl Progress for Upload {
    fn parsed(&self, lines: u64) {
        self.lines_read.store(lines, Ordering::Relaxed);
    }

    fn stored(&self, stored: u64) {
        self.lines_stored.store(stored, Ordering::Relaxed);
    }
}

/// Marks an upload failed if its task ends without an outcome (it panicked), so that the page
/// does not show it running for ever.
struct Unfinished(Arc<Upload>);

impl Drop for Unfinished {
    fn drop(&mut self) {
        self.0.finish(Outcome::Failed {
            code: Code::InternalError,
            detail: "the import stopped unexpectedly".to_owned(),
        });
    }
}

/// The uploads of the UI, per org, newest first: the in-memory progress table of the app
/// state.
#[derive(Debug, Default)]
pub struct Uploads {
    by_org: Mutex<HashMap<OrgId, VecDeque<Arc<Upload>>>>,
}

impl Uploads {
    /// The org's uploads, newest first.
    fn of(&self, org: OrgId) -> Vec<Arc<Upload>> {
        let by_org = self.by_org.lock().unwrap_or_else(PoisonError::into_inner);
        by_org.get(&org).map(|uploads| uploads.iter().cloned().collect()).unwrap_or_default()
    }

    /// Adds an upload, unless [`RUNNING_MAX`] of the org's run already; forgets the org's
    /// oldest finished ones beyond [`FINISHED_KEPT`].
    fn add(&self, org: OrgId, upload: &Arc<Upload>) -> Result<(), UiError> {
        let mut by_org = self.by_org.lock().unwrap_or_else(PoisonError::into_inner);
        let uploads = by_org.entry(org).or_default();
        if uploads.iter().filter(|upload| upload.running()).count() >= RUNNING_MAX {
            return Err(UiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                Code::RateLimited,
                format!("{RUNNING_MAX} imports are running already: wait for one to finish"),
            ));
        }
        uploads.push_front(Arc::clone(upload));
        let mut finished = 0;
        uploads.retain(|upload| {
            if upload.running() {
                return true;
            }
            finished += 1;
            finished <= FINISHED_KEPT
        });
        Ok(())
    }
}

/// An upload as a row of the page.
#[derive(Debug)]
struct UploadRow {
    id: String,
    channel: String,
    file_name: String,
    file_bytes: usize,
    format: &'static str,
    started: String,
    /// `running`, `imported`, `replayed` or `failed`.
    status: &'static str,
    lines_read: u64,
    lines_stored: u64,
    import_id: String,
    lines_new: String,
    lines_known: String,
    error_code: &'static str,
    error_detail: String,
}

fn upload_row(upload: &Upload, channels: &[ChannelOption]) -> UploadRow {
    let mut row = UploadRow {
        id: upload.id.to_string(),
        channel: channel_label(channels, upload.channel),
        file_name: upload.file_name.clone().unwrap_or_default(),
        file_bytes: upload.file_bytes,
        format: upload.format.map_or("recognised from the file", Format::as_str),
        started: time(upload.started_at),
        status: "running",
        lines_read: upload.lines_read.load(Ordering::Relaxed),
        lines_stored: upload.lines_stored.load(Ordering::Relaxed),
        import_id: String::new(),
        lines_new: String::new(),
        lines_known: String::new(),
        error_code: "",
        error_detail: String::new(),
    };
    match upload.outcome() {
        None => {}
        Some(Outcome::Imported(summary)) => {
            row.status = if summary.replayed { "replayed" } else { "imported" };
            row.format = Format::from_name(&summary.format).map_or(row.format, Format::as_str);
            row.lines_read = u64::try_from(summary.lines_read).unwrap_or_default();
            // Every line the file held is in the database now: new, or brought before.
            row.lines_stored = row.lines_read;
            row.import_id = summary.id.to_string();
            row.lines_new = summary.lines_new.to_string();
            row.lines_known = summary.lines_known.to_string();
        }
        Some(Outcome::Failed { code, detail }) => {
            row.status = "failed";
            row.error_code = code.as_str();
            row.error_detail = detail;
        }
    }
    row
}

/// A recorded import as a row.
#[derive(Debug)]
struct ImportRow {
    id: String,
    channel: String,
    format: String,
    file_name: String,
    file_bytes: i64,
    file_sha256: String,
    lines_read: i32,
    lines_new: i32,
    lines_known: i32,
    lines_skipped: i32,
    imported_by: String,
    created: String,
}

#[derive(Template)]
#[template(path = "ui/imports.html")]
struct ImportsPage {
    frame: Frame,
    channels: Vec<ChannelOption>,
    formats: Vec<&'static str>,
    uploads: Vec<UploadRow>,
    imports: Vec<ImportRow>,
    /// Reload every so many seconds: while an upload runs.
    refresh: Option<u32>,
    /// The largest file, in MiB.
    file_mib_max: usize,
}

/// `GET /ui/imports`: the upload form, this server's uploads and the recorded imports.
pub async fn imports(
    session: UiSession,
    State(state): State<AppState>,
) -> Result<Response, UiError> {
    let page = async {
        let channels = channels(&state, session.org).await?;
        // Rows first, and whether one runs from them: an upload may end meanwhile, and the
        // page must not show it done yet reload itself (or the reverse).
        let uploads: Vec<UploadRow> = state
            .uploads
            .of(session.org)
            .iter()
            .map(|upload| upload_row(upload, &channels))
            .collect();
        let running = uploads.iter().any(|upload| upload.status == "running");
        let recorded = state
            .reconciliation
            .imports(session.org, None, IMPORTS_LISTED)
            .await
            .map_err(ApiError::from)?;
        let imports = recorded
            .into_iter()
            .map(|import| ImportRow {
                id: import.id.to_string(),
                channel: channel_label(&channels, import.channel),
                format: import.format,
                file_name: import.file_name.unwrap_or_default(),
                file_bytes: import.file_bytes,
                file_sha256: import.file_sha256,
                lines_read: import.lines_read,
                lines_new: import.lines_new,
                lines_known: import.lines_known,
                lines_skipped: import.lines_skipped,
                imported_by: import.imported_by,
                created: time(import.created_at),
            })
            .collect();
        Ok(render(&ImportsPage {
            frame: session.frame("imports", "Statement imports"),
            uploads,
            channels,
            formats: Format::ALL.iter().map(|format| format.as_str()).collect(),
            imports,
            refresh: running.then_some(REFRESH_SECONDS),
            file_mib_max: STATEMENT_BYTES_MAX / (1024 * 1024),
        }))
    };
    page.await.map_err(|error: UiError| error.shown_to(&session))
}

/// The upload form, read.
#[derive(Debug, Default)]
struct UploadForm {
    tokens: Vec<String>,
    channel: Option<String>,
    format: Option<String>,
    file_name: Option<String>,
    file: Option<Vec<u8>>,
}

/// Reads the upload form's fields; an unknown field or a second file is refused.
async fn read_form(mut multipart: Multipart) -> Result<UploadForm, UiError> {
    let unreadable = |detail: String| UiError::bad_request(Code::InvalidBody, detail);
    let too_large = || {
        UiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::BodyTooLarge,
            format!("the file must hold at most {STATEMENT_BYTES_MAX} bytes"),
        )
    };
    let mut form = UploadForm::default();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(error) if error.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(too_large());
            }
            Err(error) => return Err(unreadable(format!("the form is unreadable: {error}"))),
        };
        let name = field.name().unwrap_or_default().to_owned();
        if name == "file" {
            if form.file.is_some() {
                return Err(unreadable("send one file".to_owned()));
            }
            form.file_name = field.file_name().map(str::to_owned).filter(|name| !name.is_empty());
            let bytes = field.bytes().await.map_err(|error| {
                if error.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    too_large()
                } else {
                    unreadable(format!("the file is unreadable: {error}"))
                }
            })?;
            form.file = Some(bytes.to_vec());
            continue;
        }
        let value = field
            .text()
            .await
            .map_err(|error| unreadable(format!("the form's {name} is unreadable: {error}")))?;
        match name.as_str() {
            CSRF_FIELD => form.tokens.push(value),
            "channel" => form.channel = Some(value),
            "format" => form.format = Some(value),
            other => return Err(unreadable(format!("the form has an unknown field {other}"))),
        }
    }
    Ok(form)
}

/// `POST /ui/imports` (`multipart/form-data`: `csrf`, `channel`, `format`, `file`): checks the
/// upload and starts its import in the background, then shows the imports page.
pub async fn upload(
    session: UiSession,
    State(state): State<AppState>,
    headers: HeaderMap,
    uri: Uri,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, UiError> {
    let done = async {
        let multipart = multipart.map_err(|_| {
            UiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                Code::UnsupportedMediaType,
                "send the upload as multipart/form-data",
            )
        })?;
        check_origin(&headers, &uri, &state)?;
        let form = read_form(multipart).await?;
        let tokens: Vec<&str> = form.tokens.iter().map(String::as_str).collect();
        check_token(&session, &tokens)?;
        let channel_id = field_id("channel", form.channel.as_deref().unwrap_or_default())?;
        let format = match form.format.as_deref().map(str::trim).unwrap_or_default() {
            "" | "auto" => None,
            name => Some(Format::from_name(name).ok_or_else(|| {
                UiError::bad_request(Code::InvalidBody, format!("{name} is no statement format"))
            })?),
        };
        let bytes = form.file.unwrap_or_default();
        // The API's bounds on the file (`file_bytes`) and on its name.
        if bytes.is_empty() || bytes.len() > STATEMENT_BYTES_MAX {
            return Err(ApiError::invalid(
                Code::StatementUnreadable,
                format!("the file must hold 1 to {STATEMENT_BYTES_MAX} bytes"),
            )
            .into());
        }
        let file_name = text(form.file_name, "fileName", 255)?;
        state
            .payments
            .channel(session.org, channel_id)
            .await
            .map_err(ApiError::from)?
            .ok_or_else(|| ApiError::not_found("channel"))?;
        let upload = Arc::new(Upload {
            id: Uuid::now_v7(),
            channel: channel_id,
            file_name: file_name.clone(),
            file_bytes: bytes.len(),
            format,
            started_at: Utc::now(),
            lines_read: AtomicU64::new(0),
            lines_stored: AtomicU64::new(0),
            outcome: Mutex::new(None),
        });
        state.uploads.add(session.org, &upload)?;
        let (org, imported_by) = (session.org, who(&session));
        let service = Arc::clone(&state.reconciliation);
        tokio::spawn(async move {
            let _unfinished = Unfinished(Arc::clone(&upload));
            let new = NewImport {
                org,
                channel: channel_id,
                format,
                file_name,
                bytes: &bytes,
                imported_by,
            };
            let outcome = match service.import(new, upload.as_ref()).await {
                Ok(summary) => Outcome::Imported(summary),
                Err(error) => {
                    let error = ApiError::from(error);
                    Outcome::Failed { code: error.code, detail: error.detail }
                }
            };
            upload.finish(outcome);
        });
        Ok(see_other("/ui/imports"))
    };
    done.await.map_err(|error: UiError| error.shown_to(&session))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(running: bool) -> Arc<Upload> {
        let outcome = (!running)
            .then(|| Outcome::Failed { code: Code::StatementUnreadable, detail: "no".to_owned() });
        Arc::new(Upload {
            id: Uuid::now_v7(),
            channel: Uuid::now_v7(),
            file_name: None,
            file_bytes: 1,
            format: None,
            started_at: Utc::now(),
            lines_read: AtomicU64::new(0),
            lines_stored: AtomicU64::new(0),
            outcome: Mutex::new(outcome),
        })
    }

    #[test]
    fn the_page_reloads_itself_only_while_an_upload_runs() {
        let page = |refresh: Option<u32>| {
            let frame = Frame {
                title: "Statement imports".to_owned(),
                active: "imports",
                org_name: Some("org".to_owned()),
                csrf: "token".to_owned(),
            };
            let uploads = vec![upload_row(&upload(refresh.is_some()), &[])];
            ImportsPage {
                frame,
                channels: Vec::new(),
                formats: Vec::new(),
                uploads,
                imports: Vec::new(),
                refresh,
                file_mib_max: 12,
            }
            .render()
            .unwrap()
        };
        let running = page(Some(REFRESH_SECONDS));
        assert!(running.contains("<meta http-equiv=\"refresh\" content=\"2\">"), "{running}");
        assert!(running.contains("data-status=\"running\""), "{running}");
        let done = page(None);
        assert!(!done.contains("http-equiv"), "{done}");
        assert!(done.contains("data-upload-error=\"statement_unreadable\""), "{done}");
    }

    #[test]
    fn the_table_keeps_running_uploads_and_the_latest_finished_ones() {
        let uploads = Uploads::default();
        let org = OrgId(Uuid::now_v7());
        for _ in 0..FINISHED_KEPT + 5 {
            uploads.add(org, &upload(false)).unwrap();
        }
        assert_eq!(uploads.of(org).len(), FINISHED_KEPT);
        let running = upload(true);
        uploads.add(org, &running).unwrap();
        uploads.add(org, &upload(true)).unwrap();
        assert!(uploads.add(org, &upload(true)).is_err(), "a third running upload");
        assert!(uploads.of(OrgId(Uuid::now_v7())).is_empty());
        running.finish(Outcome::Failed { code: Code::InternalError, detail: String::new() });
        uploads.add(org, &upload(true)).unwrap();
        assert_eq!(uploads.of(org).iter().filter(|upload| upload.running()).count(), 2);
        // A task that ends without an outcome leaves a failure, not a running upload.
        let lost = upload(true);
        drop(Unfinished(Arc::clone(&lost)));
        assert!(matches!(lost.outcome(), Some(Outcome::Failed { code: Code::InternalError, .. })));
        lost.parsed(7);
        assert_eq!(upload_row(&lost, &[]).lines_read, 7);
    }
}

//! Reconciliation (org key): statement imports, runs, their exceptions and drift, and payments
//! stuck with their provider — thin handlers over `crate::reconciliation` and the payments
//! service.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use chrono::{DateTime, NaiveDate, Utc};
use hazina_ledger::{AccountId, Money};
use hazina_providers::statements::Format;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::money::MoneyValue;
use super::payments::PaymentView;
use crate::code::Code;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::problem::{ApiError, Body, PathParams, QueryParams};
use crate::payments::{ManualSettlement, Settlement};
use crate::reconciliation::{
    self, Exception, ExceptionFilter, ExceptionStatus, ImportSummary, NewImport, NewRun,
    Resolution, Resolve, RunSummary,
};

/// The largest statement file the API takes (base64 in JSON); larger ones are imported with
/// `hazina reconcile import`.
pub const STATEMENT_BYTES_MAX: usize = 12 * 1024 * 1024;
/// The body limit that admits such a file as base64.
const IMPORT_BODY_BYTES_MAX: usize = STATEMENT_BYTES_MAX / 3 * 4 + 64 * 1024;

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .merge(
            utoipa_axum::router::OpenApiRouter::new()
                .routes(routes!(create_import, list_imports))
                .layer(axum::extract::DefaultBodyLimit::max(IMPORT_BODY_BYTES_MAX)),
        )
        .routes(routes!(get_import))
        .routes(routes!(create_run, list_runs))
        .routes(routes!(get_run))
        .routes(routes!(list_exceptions))
        .routes(routes!(get_exception))
        .routes(routes!(assign_exception))
        .routes(routes!(resolve_exception))
        .routes(routes!(drift))
        .routes(routes!(list_stuck_payments))
        .routes(routes!(settle_stuck_payment))
}

/// Who did it, as recorded: the key's id.
fn who(caller: &Caller) -> String {
    format!("key {}", caller.key_id)
}

// --- Imports ------------------------------------------------------------------------------

/// A statement format.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatementFormat {
    /// The M-Pesa org portal's statement export (CSV).
    MpesaCsv,
    /// M-Pesa's Pull Transactions API result (JSON).
    MpesaPull,
    /// MTN MoMo's partner portal transaction report (CSV).
    MomoReport,
    /// ISO 20022 bank to customer statement.
    Camt053,
    /// ISO 20022 debit/credit notification.
    Camt054,
    /// SWIFT MT940 customer statement.
    Mt940,
}

impl StatementFormat {
    fn format(self) -> Format {
        match self {
            Self::MpesaCsv => Format::MpesaCsv,
            Self::MpesaPull => Format::MpesaPull,
            Self::MomoReport => Format::MomoReport,
            Self::Camt053 => Format::Camt053,
            Self::Camt054 => Format::Camt054,
            Self::Mt940 => Format::Mt940,
        }
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "channelId": "0190f2c4-6f6e-7a61-8b2c-5f9e3a1d4c21",
    "format": "mpesa_pull",
    "fileName": "pull-2026-12-01.json",
    "content": "eyJSZXNwb25zZVJlZklEIjoiMSIsIlJlc3BvbnNlQ29kZSI6IjEwMDEiLCJSZXNwb25zZU1lc3NhZ2UiOiJObyB0cmFuc2FjdGlvbnMiLCJSZXNwb25zZSI6W1tdXX0="
}))]
pub struct NewStatementImport {
    /// The payment channel whose statement it is.
    pub channel_id: Uuid,
    /// The file's format; recognised from its content when absent.
    pub format: Option<StatementFormat>,
    /// The file's name, kept for the record.
    #[schema(
        min_length = 1,
        max_length = 255,
        pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub file_name: Option<String>,
    /// The file, base64 (standard alphabet), at most 12 MiB decoded.
    #[schema(
        min_length = 4,
        pattern = r"^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/][AQgw]==|[A-Za-z0-9+/]{2}[AEIMQUYcgkosw048]=)?$"
    )]
    pub content: String,
}

/// A statement import.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ImportView {
    pub import_id: Uuid,
    pub channel_id: Uuid,
    pub format: String,
    pub file_name: Option<String>,
    /// SHA-256 of the file, hex: the same file imported again is this import.
    pub file_sha256: String,
    pub file_bytes: i64,
    /// Lines the file held; new to the channel; brought already by an earlier file; moving
    /// no money (pending or failed on the statement).
    pub lines_read: i32,
    pub lines_new: i32,
    pub lines_known: i32,
    pub lines_skipped: i32,
    pub imported_by: String,
    pub created_at: DateTime<Utc>,
    /// This file was imported before: nothing was added.
    pub replayed: bool,
}

impl From<ImportSummary> for ImportView {
    fn from(summary: ImportSummary) -> Self {
        Self {
            import_id: summary.id,
            channel_id: summary.channel,
            format: summary.format,
            file_name: summary.file_name,
            file_sha256: summary.file_sha256,
            file_bytes: summary.file_bytes,
            lines_read: summary.lines_read,
            lines_new: summary.lines_new,
            lines_known: summary.lines_known,
            lines_skipped: summary.lines_skipped,
            imported_by: summary.imported_by,
            created_at: summary.created_at,
            replayed: summary.replayed,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ImportList {
    pub imports: Vec<ImportView>,
}

/// Imports a provider's or bank's statement file into a channel's lines (org key). Lines an
/// earlier file brought are known, not added again; the same file again answers 200 with the
/// first import. A file too large for the API is imported with `hazina reconcile import`.
#[utoipa::path(post, operation_id = "create_statement_import", path = "/v1/statements/imports", tag = "reconciliation", request_body = NewStatementImport,
    responses((status = 201, body = ImportView), (status = 200, description = "The same file was imported before", body = ImportView)))]
async fn create_import(
    caller: Caller,
    State(state): State<AppState>,
    Body(new): Body<NewStatementImport>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let bytes = file_bytes(&new)?;
    let summary = state
        .reconciliation
        .import(
            NewImport {
                org: caller.org,
                channel: new.channel_id,
                format: new.format.map(StatementFormat::format),
                file_name: new.file_name,
                bytes: &bytes,
                imported_by: who(&caller),
            },
            &(),
        )
        .await?;
    let status = if summary.replayed { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(ImportView::from(summary))).into_response())
}

/// The file of an import, decoded.
pub(super) fn file_bytes(new: &NewStatementImport) -> Result<Vec<u8>, ApiError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(new.content.as_bytes())
        .map_err(|_| ApiError::invalid(Code::InvalidBase64, "content is not base64"))?;
    if bytes.is_empty() || bytes.len() > STATEMENT_BYTES_MAX {
        return Err(ApiError::invalid(
            Code::StatementUnreadable,
            format!("the file must hold 1 to {STATEMENT_BYTES_MAX} bytes"),
        ));
    }
    Ok(bytes)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ChannelPage {
    /// Only this channel's.
    pub channel_id: Option<Uuid>,
    /// At most this many (1 to 500; 50 by default).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// The org's statement imports, newest first (org key).
#[utoipa::path(get, operation_id = "list_statement_imports", path = "/v1/statements/imports", tag = "reconciliation", params(ChannelPage),
    responses((status = 200, body = ImportList)))]
async fn list_imports(
    caller: Caller,
    State(state): State<AppState>,
    QueryParams(page): QueryParams<ChannelPage>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let limit = super::page_size(page.limit)?;
    let imports = state.reconciliation.imports(caller.org, page.channel_id, limit).await?;
    Ok(Json(ImportList { imports: imports.into_iter().map(ImportView::from).collect() })
        .into_response())
}

/// One statement import (org key).
#[utoipa::path(get, operation_id = "get_statement_import", path = "/v1/statements/imports/{import_id}", tag = "reconciliation",
    params(("import_id" = Uuid, Path)), responses((status = 200, body = ImportView)))]
async fn get_import(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(id): PathParams<Uuid>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let summary = state.reconciliation.import_summary(caller.org, id).await?;
    Ok(Json(ImportView::from(summary)).into_response())
}

// --- Runs ---------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "channelId": "0190f2c4-6f6e-7a61-8b2c-5f9e3a1d4c21",
    "from": "2026-11-01",
    "to": "2026-11-30",
    "dateToleranceDays": 1,
    "amountTolerance": "0.00",
    "netFees": true
}))]
pub struct NewRunBody {
    pub channel_id: Uuid,
    /// The first day (value date of lines, UTC effective date of transfers).
    pub from: NaiveDate,
    /// The last day, included.
    pub to: NaiveDate,
    /// How many days a line's value date may be from its transfer's (0 to 31; 1 by default).
    #[schema(minimum = 0, maximum = 31)]
    pub date_tolerance_days: Option<u32>,
    /// The largest amount difference still matched (as a difference, an exception), in the
    /// channel's currency; none by default.
    #[schema(max_length = 40, pattern = r"^[0-9]+(\.[0-9]+)?$", example = "0.00")]
    pub amount_tolerance: Option<String>,
    /// Compare amounts with fees netted (a provider booking a charge separately, or the
    /// amount net of it); true by default.
    pub net_fees: Option<bool>,
    /// Match and count, but record nothing.
    pub dry_run: Option<bool>,
}

/// The matching rules a run asks for, checked.
pub(crate) fn run_rules(
    body: &NewRunBody,
    currency: hazina_ledger::Currency,
) -> Result<reconciliation::Rules, ApiError> {
    if body.to < body.from {
        return Err(ApiError::invalid(Code::InvalidPeriod, "from must not be after to"));
    }
    let tolerance_days = body.date_tolerance_days.unwrap_or(1);
    if tolerance_days > 31 {
        return Err(ApiError::invalid(Code::InvalidValue, "dateToleranceDays is 0 to 31"));
    }
    let amount_tolerance = match &body.amount_tolerance {
        None => 0,
        Some(text) => Money::parse(currency, text)
            .ok()
            .filter(|money| !money.amount().is_sign_negative())
            .and_then(|money| money.to_minor().ok())
            .ok_or_else(|| {
                ApiError::invalid(
                    Code::InvalidAmount,
                    "amountTolerance is a plain decimal in the channel's currency",
                )
            })?,
    };
    Ok(reconciliation::Rules {
        date_tolerance_days: tolerance_days,
        amount_tolerance,
        net_fees: body.net_fees.unwrap_or(true),
        ..reconciliation::Rules::default()
    })
}

/// A run.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RunView {
    /// Absent for a dry run.
    pub run_id: Option<Uuid>,
    pub channel_id: Uuid,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub date_tolerance_days: u32,
    pub amount_tolerance: MoneyValue,
    pub net_fees: bool,
    /// Unmatched lines and transfers the run looked at.
    pub lines: i32,
    pub transfers: i32,
    pub matched: i32,
    /// Matches with an amount difference (each an exception).
    pub differences: i32,
    pub unmatched_lines: i32,
    pub unmatched_transfers: i32,
    pub exceptions_opened: i32,
    pub exceptions_resolved: i32,
    pub started_by: String,
    pub created_at: Option<DateTime<Utc>>,
    pub dry_run: bool,
}

fn run_view(summary: RunSummary, currency: hazina_ledger::Currency) -> RunView {
    RunView {
        run_id: summary.id,
        channel_id: summary.channel_id,
        from: summary.from,
        to: summary.to,
        date_tolerance_days: summary.date_tolerance_days,
        amount_tolerance: MoneyValue::of(&Money::from_minor(
            currency,
            summary.amount_tolerance_minor,
        )),
        net_fees: summary.net_fees,
        lines: summary.lines,
        transfers: summary.items,
        matched: summary.matched,
        differences: summary.differences,
        unmatched_lines: summary.unmatched_lines,
        unmatched_transfers: summary.unmatched_items,
        exceptions_opened: summary.exceptions_opened,
        exceptions_resolved: summary.exceptions_resolved,
        started_by: summary.started_by,
        created_at: summary.created_at,
        dry_run: summary.dry_run,
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RunList {
    pub runs: Vec<RunView>,
}

/// Matches a channel's statement lines with its clearing account's transfers over a period
/// (org key): matches are recorded, and what did not match (or matched with a difference)
/// becomes an exception, once however many runs see it.
#[utoipa::path(post, operation_id = "create_reconciliation_run", path = "/v1/reconciliation/runs", tag = "reconciliation", request_body = NewRunBody,
    responses((status = 201, body = RunView), (status = 200, description = "A dry run: nothing recorded", body = RunView)))]
async fn create_run(
    caller: Caller,
    State(state): State<AppState>,
    Body(body): Body<NewRunBody>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let channel = state
        .payments
        .channel(caller.org, body.channel_id)
        .await?
        .ok_or_else(|| ApiError::not_found("channel"))?;
    let rules = run_rules(&body, channel.currency)?;
    let dry_run = body.dry_run.unwrap_or(false);
    let summary = state
        .reconciliation
        .run(&NewRun {
            org: caller.org,
            channel: channel.id,
            from: body.from,
            to: body.to,
            rules,
            dry_run,
            started_by: who(&caller),
        })
        .await?;
    let status = if dry_run { StatusCode::OK } else { StatusCode::CREATED };
    Ok((status, Json(run_view(summary, channel.currency))).into_response())
}

/// The org's reconciliation runs, newest first (org key).
#[utoipa::path(get, operation_id = "list_reconciliation_runs", path = "/v1/reconciliation/runs", tag = "reconciliation", params(ChannelPage),
    responses((status = 200, body = RunList)))]
async fn list_runs(
    caller: Caller,
    State(state): State<AppState>,
    QueryParams(page): QueryParams<ChannelPage>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let limit = super::page_size(page.limit)?;
    let runs = state.reconciliation.runs(caller.org, page.channel_id, limit).await?;
    // Runs name few channels: each channel's currency is looked up once.
    let mut currencies = std::collections::HashMap::new();
    let mut views = Vec::with_capacity(runs.len());
    for run in runs {
        let currency = if let Some(&currency) = currencies.get(&run.channel_id) {
            currency
        } else {
            let currency = channel_currency(&state, &caller, run.channel_id).await?;
            currencies.insert(run.channel_id, currency);
            currency
        };
        views.push(run_view(run, currency));
    }
    Ok(Json(RunList { runs: views }).into_response())
}

async fn channel_currency(
    state: &AppState,
    caller: &Caller,
    channel: Uuid,
) -> Result<hazina_ledger::Currency, ApiError> {
    Ok(state
        .payments
        .channel(caller.org, channel)
        .await?
        .ok_or_else(|| ApiError::not_found("channel"))?
        .currency)
}

/// One reconciliation run (org key).
#[utoipa::path(get, operation_id = "get_reconciliation_run", path = "/v1/reconciliation/runs/{run_id}", tag = "reconciliation",
    params(("run_id" = Uuid, Path)), responses((status = 200, body = RunView)))]
async fn get_run(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(id): PathParams<Uuid>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let run = state.reconciliation.run_summary(caller.org, id).await?;
    let currency = channel_currency(&state, &caller, run.channel_id).await?;
    Ok(Json(run_view(run, currency)).into_response())
}

// --- Exceptions ---------------------------------------------------------------------------

/// A reconciliation exception.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionView {
    pub exception_id: Uuid,
    pub channel_id: Uuid,
    /// The run that found it.
    pub run_id: Uuid,
    /// `unmatched_statement` (the provider moved money we do not know of),
    /// `unmatched_ledger` (we think money moved that the provider does not show), or
    /// `difference` (matched, amounts differ).
    pub kind: String,
    /// `in` or `out` of the channel's account at the provider.
    pub direction: String,
    pub amount: MoneyValue,
    /// Statement minus ledger, for a difference (may be negative: `-` then the amount).
    pub difference: String,
    pub value_date: NaiveDate,
    /// The statement line (its key, receipt, reference, counterparty, description).
    pub line_key: Option<String>,
    pub line_receipt: Option<String>,
    pub line_reference: Option<String>,
    pub line_counterparty: Option<String>,
    pub line_description: Option<String>,
    /// The ledger transfer.
    pub transfer_id: Option<Uuid>,
    /// `open` or `resolved`.
    pub status: String,
    pub owner: Option<String>,
    pub note: Option<String>,
    /// `matched`, `adjusted`, `written_off`, `recorded_payment` or `settled_payment`.
    pub resolution: Option<String>,
    /// The ledger transfer the resolution booked, if it booked one.
    pub resolution_transfer_id: Option<Uuid>,
    pub reason: Option<String>,
    pub resolved_by: Option<String>,
    pub created_at: DateTime<Utc>,
    pub resolved_at: Option<DateTime<Utc>>,
}

impl From<Exception> for ExceptionView {
    fn from(e: Exception) -> Self {
        Self {
            exception_id: e.id,
            channel_id: e.channel,
            run_id: e.run,
            kind: e.kind.as_str().to_owned(),
            direction: match e.direction {
                reconciliation::Direction::In => "in".to_owned(),
                reconciliation::Direction::Out => "out".to_owned(),
            },
            amount: MoneyValue::of(&e.amount),
            difference: e.difference.amount().to_string(),
            value_date: e.value_date,
            line_key: e.line_key,
            line_receipt: e.line_receipt,
            line_reference: e.line_reference,
            line_counterparty: e.line_counterparty,
            line_description: e.line_description,
            transfer_id: e.transfer_id,
            status: e.status.as_str().to_owned(),
            owner: e.owner,
            note: e.note,
            resolution: e.resolution,
            resolution_transfer_id: e.resolution_transfer_id,
            reason: e.reason,
            resolved_by: e.resolved_by,
            created_at: e.created_at,
            resolved_at: e.resolved_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionList {
    pub exceptions: Vec<ExceptionView>,
    /// Pass as `before` for the next page, when there may be one.
    pub next_before: Option<Uuid>,
}

/// Open or resolved.
#[derive(Clone, Copy, Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExceptionStatusParam {
    Open,
    Resolved,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExceptionParams {
    pub channel_id: Option<Uuid>,
    pub run_id: Option<Uuid>,
    #[param(inline)]
    pub status: Option<ExceptionStatusParam>,
    /// The page after this exception (the last of the page before).
    pub before: Option<Uuid>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

/// The org's reconciliation exceptions, newest first (org key).
#[utoipa::path(get, operation_id = "list_reconciliation_exceptions", path = "/v1/reconciliation/exceptions", tag = "reconciliation", params(ExceptionParams),
    responses((status = 200, body = ExceptionList)))]
async fn list_exceptions(
    caller: Caller,
    State(state): State<AppState>,
    QueryParams(params): QueryParams<ExceptionParams>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let limit = super::page_size(params.limit)?;
    let filter = ExceptionFilter {
        channel: params.channel_id,
        run: params.run_id,
        status: params.status.map(|status| match status {
            ExceptionStatusParam::Open => ExceptionStatus::Open,
            ExceptionStatusParam::Resolved => ExceptionStatus::Resolved,
        }),
        before: params.before,
        limit,
    };
    let exceptions = state.reconciliation.exceptions(caller.org, &filter).await?;
    let full = i64::try_from(exceptions.len()).is_ok_and(|n| n == limit);
    let next_before = if full { exceptions.last().map(|e| e.id) } else { None };
    let exceptions = exceptions.into_iter().map(ExceptionView::from).collect();
    Ok(Json(ExceptionList { exceptions, next_before }).into_response())
}

/// One reconciliation exception (org key).
#[utoipa::path(get, operation_id = "get_reconciliation_exception", path = "/v1/reconciliation/exceptions/{exception_id}", tag = "reconciliation",
    params(("exception_id" = Uuid, Path)), responses((status = 200, body = ExceptionView)))]
async fn get_exception(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(id): PathParams<Uuid>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let exception = state.reconciliation.exception(caller.org, id).await?;
    Ok(Json(ExceptionView::from(exception)).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({"owner": "amina@finance", "note": "Asked Safaricom for the receipt"}))]
pub struct Assignment {
    /// Who owns it now; kept when absent.
    #[schema(
        min_length = 1,
        max_length = 200,
        pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub owner: Option<String>,
    /// A note; kept when absent.
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub note: Option<String>,
}

pub(crate) fn text(
    value: Option<String>,
    name: &str,
    max: usize,
) -> Result<Option<String>, ApiError> {
    match value {
        None => Ok(None),
        Some(text)
            if text.trim().is_empty() || text.chars().count() > max || text.contains('\0') =>
        {
            Err(ApiError::invalid(
                Code::InvalidValue,
                format!("{name} is 1 to {max} characters, not all blank"),
            ))
        }
        Some(text) => Ok(Some(text)),
    }
}

/// Gives an exception an owner and a note (org key).
#[utoipa::path(post, operation_id = "assign_reconciliation_exception", path = "/v1/reconciliation/exceptions/{exception_id}/assignment", tag = "reconciliation",
    params(("exception_id" = Uuid, Path)), request_body = Assignment, responses((status = 200, body = ExceptionView)))]
async fn assign_exception(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(id): PathParams<Uuid>,
    Body(body): Body<Assignment>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let owner = text(body.owner, "owner", 200)?;
    let note = text(body.note, "note", 2000)?;
    let exception =
        state.reconciliation.assign(caller.org, id, owner.as_deref(), note.as_deref()).await?;
    Ok(Json(ExceptionView::from(exception)).into_response())
}

/// How to resolve an exception.
#[derive(Clone, Copy, Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ResolutionAction {
    /// Match it with other open exceptions (`withExceptionIds`): unmatched lines with
    /// unmatched transfers of one direction; a difference left is a new exception.
    Match,
    /// Book the amount (or difference) by a ledger transfer between the channel's clearing
    /// account and `counterAccountId`.
    Adjust,
    /// Accept it as it is: a recorded decision, no money moves.
    WriteOff,
    /// Record an unmatched line of money in as the payment a customer made (into the
    /// channel's receiving purse).
    RecordPayment,
    /// Settle the stuck payment `paymentId` the line shows went through.
    SettlePayment,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "action": "adjust",
    "reason": "Safaricom charged a fee we had not booked",
    "counterAccountId": "0190f2c4-6f6e-7a61-8b2c-5f9e3a1d4c99"
}))]
pub struct ResolutionBody {
    pub action: ResolutionAction,
    /// Why (kept for the auditor).
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub reason: String,
    /// For `match`: the other exceptions.
    #[schema(max_items = 100)]
    pub with_exception_ids: Option<Vec<Uuid>>,
    /// For `adjust`: the other side of the adjustment (a fees or suspense account).
    pub counter_account_id: Option<Uuid>,
    /// For `settle_payment`: the payment.
    pub payment_id: Option<Uuid>,
}

/// Resolves an exception (org key): by hand, with a reason; what moves money is a ledger
/// transfer, never an edit of history.
#[utoipa::path(post, operation_id = "resolve_reconciliation_exception", path = "/v1/reconciliation/exceptions/{exception_id}/resolution", tag = "reconciliation",
    params(("exception_id" = Uuid, Path)), request_body = ResolutionBody, responses((status = 200, body = ExceptionView)))]
async fn resolve_exception(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(id): PathParams<Uuid>,
    Body(body): Body<ResolutionBody>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let resolve = resolution(body, who(&caller))?;
    let exception = state.reconciliation.resolve(caller.org, id, &resolve).await?;
    Ok(Json(ExceptionView::from(exception)).into_response())
}

/// The resolution a body asks for, checked.
pub(crate) fn resolution(body: ResolutionBody, decided_by: String) -> Result<Resolve, ApiError> {
    let missing = |name: &str| {
        ApiError::invalid(Code::ResolutionNotAllowed, format!("this action needs {name}"))
    };
    let resolution = match body.action {
        ResolutionAction::Match => Resolution::Match {
            with: body.with_exception_ids.ok_or_else(|| missing("withExceptionIds"))?,
        },
        ResolutionAction::Adjust => Resolution::Adjust {
            counter_account: AccountId(
                body.counter_account_id.ok_or_else(|| missing("counterAccountId"))?,
            ),
        },
        ResolutionAction::WriteOff => Resolution::WriteOff,
        ResolutionAction::RecordPayment => Resolution::RecordPayment,
        ResolutionAction::SettlePayment => Resolution::SettlePayment {
            payment: body.payment_id.ok_or_else(|| missing("paymentId"))?,
        },
    };
    let reason = text(Some(body.reason), "reason", 2000)?.unwrap_or_default();
    Ok(Resolve { resolution, reason, decided_by })
}

// --- Drift --------------------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DriftParams {
    pub channel_id: Uuid,
    /// The first day.
    pub from: NaiveDate,
    /// The last day, included (at most 366 days).
    pub to: NaiveDate,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftDayView {
    pub day: NaiveDate,
    /// The clearing account's posted balance at the day's end (UTC), by effective time.
    pub ledger_closing: String,
    /// The statement's closing balance of the day, when a file stated one.
    pub statement_closing: Option<String>,
    /// Statement minus ledger.
    pub difference: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DriftView {
    pub channel_id: Uuid,
    #[schema(value_type = super::money::CurrencyCode)]
    pub currency_code: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// The first day the statement and the ledger disagree.
    pub first_divergence: Option<NaiveDate>,
    pub days: Vec<DriftDayView>,
}

/// A channel's clearing-account drift (org key): per day, the ledger's clearing balance
/// against the statement's closing balance, and where they diverge first.
#[utoipa::path(get, operation_id = "get_reconciliation_drift", path = "/v1/reconciliation/drift", tag = "reconciliation", params(DriftParams),
    responses((status = 200, body = DriftView)))]
async fn drift(
    caller: Caller,
    State(state): State<AppState>,
    QueryParams(params): QueryParams<DriftParams>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    if params.from > params.to {
        return Err(ApiError::bad_request(Code::InvalidPeriod, "from must not be after to"));
    }
    let drift =
        state.reconciliation.drift(caller.org, params.channel_id, params.from, params.to).await?;
    let currency = channel_currency(&state, &caller, drift.channel).await?;
    Ok(Json(DriftView {
        channel_id: drift.channel,
        currency_code: currency.code().to_owned(),
        from: drift.from,
        to: drift.to,
        first_divergence: drift.first_divergence,
        days: drift
            .days
            .into_iter()
            .map(|day| DriftDayView {
                day: day.day,
                ledger_closing: day.ledger_closing.amount().to_string(),
                statement_closing: day.statement_closing.map(|m| m.amount().to_string()),
                difference: day.difference.map(|m| m.amount().to_string()),
            })
            .collect(),
    })
    .into_response())
}

// --- Stuck payments -----------------------------------------------------------------------

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StuckParams {
    /// Unsettled for longer than this many seconds (60 to 31,536,000; 3,600 by default).
    #[param(minimum = 60, maximum = 31_536_000)]
    pub older_than_seconds: Option<u64>,
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StuckList {
    pub payments: Vec<PaymentView>,
}

/// Payments through a provider still unsettled beyond a threshold, oldest first (org key).
#[utoipa::path(get, operation_id = "list_stuck_payments", path = "/v1/stuck-payments", tag = "reconciliation", params(StuckParams),
    responses((status = 200, body = StuckList)))]
async fn list_stuck_payments(
    caller: Caller,
    State(state): State<AppState>,
    QueryParams(params): QueryParams<StuckParams>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let seconds = params.older_than_seconds.unwrap_or(3_600);
    if !(60..=31_536_000).contains(&seconds) {
        return Err(ApiError::bad_request(
            Code::InvalidQuery,
            "olderThanSeconds is 60 to 31536000",
        ));
    }
    let limit = super::page_size(params.limit)?;
    let records =
        state.payments.stuck(caller.org, std::time::Duration::from_secs(seconds), limit).await?;
    let ids: Vec<Uuid> = records.iter().map(|record| record.id).collect();
    let mut histories = state.payments.status_changes_of(caller.org, &ids).await?;
    let mut payments = Vec::with_capacity(records.len());
    for record in &records {
        let history = histories.remove(&record.id).unwrap_or_default();
        payments.push(PaymentView::of(record, history)?);
    }
    Ok(Json(StuckList { payments }).into_response())
}

/// How a stuck payment ended.
#[derive(Clone, Copy, Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SettlementOutcome {
    /// The money moved: the reservation is posted.
    Success,
    /// It did not: the reservation is released.
    Failed,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({
    "outcome": "success",
    "receipt": "SL12ABC3DE",
    "reason": "Safaricom's statement of 3 December shows the payout"
}))]
pub struct SettlementBody {
    pub outcome: SettlementOutcome,
    /// The provider's receipt, when known.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub receipt: Option<String>,
    /// Why (kept in the payment's history with who decided).
    #[schema(
        min_length = 1,
        max_length = 2000,
        pattern = r"^[^\u0000]*[^\u0000\t\n\u000b\f\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000][^\u0000]*$"
    )]
    pub reason: String,
}

/// Settles a stuck payment by hand (org key): posted or voided in the ledger, with the reason
/// and who decided in its history.
#[utoipa::path(post, operation_id = "settle_stuck_payment", path = "/v1/stuck-payments/{transaction_id}/settlement", tag = "reconciliation",
    params(("transaction_id" = Uuid, Path)), request_body = SettlementBody, responses((status = 200, body = PaymentView)))]
async fn settle_stuck_payment(
    caller: Caller,
    State(state): State<AppState>,
    PathParams(id): PathParams<Uuid>,
    Body(body): Body<SettlementBody>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let decision = settlement(body, who(&caller))?;
    let record = state.payments.settle_by_hand(caller.org, id, &decision).await?;
    let history = state.payments.status_changes(record.org, record.id).await?;
    Ok(Json(PaymentView::of(&record, history)?).into_response())
}

/// The decision a settlement body asks for, checked.
pub(crate) fn settlement(
    body: SettlementBody,
    decided_by: String,
) -> Result<ManualSettlement, ApiError> {
    let receipt = text(body.receipt, "receipt", 64)?;
    let reason = text(Some(body.reason), "reason", 2000)?.unwrap_or_default();
    let settlement = match body.outcome {
        SettlementOutcome::Success => Settlement::Succeeded { receipt },
        SettlementOutcome::Failed => Settlement::Failed,
    };
    Ok(ManualSettlement { settlement, reason, decided_by, source: "operator" })
}

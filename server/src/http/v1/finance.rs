//! Finance operations (org key): raw transfers, one or many per request, account statements,
//! and the reports finance closes the books from.

use axum::Json;
use axum::body::Body as ResponseBody;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use futures_util::StreamExt as _;
use hazina_ledger::rules::{Action, Outcome, Posting, RejectReason, Side, TransferRequest};
use hazina_ledger::store::{LedgerLine, StatementQuery, TrialBalance};
use hazina_ledger::{AccountId, TransferId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::money::{BalanceView, MoneyValue, TransferView};
use super::page_size;
use crate::code::Code;
use crate::http::AppState;
use crate::http::auth::Caller;
use crate::http::problem::{AnnouncedIds, ApiError, Body, PathParams, QueryParams, legacy_refusal};
use crate::money;

/// Most transfers in one batch request.
pub const BATCH_TRANSFERS_MAX: usize = 1_000;
/// Largest batch request body (other requests: [`super::BODY_BYTES_MAX`]).
pub const BATCH_BODY_BYTES_MAX: usize = 2 * 1024 * 1024;
/// Most legs in one transfer.
pub const LEGS_MAX: usize = 16;
/// Longest pending timeout: 30 days.
pub const TIMEOUT_SECONDS_MAX: u64 = 30 * 24 * 3_600;
/// Longest transfer code.
pub const CODE_LEN_MAX: usize = 64;

pub fn routes() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa_axum::routes;
    utoipa_axum::router::OpenApiRouter::new()
        .routes(routes!(create_transfer))
        .merge(
            utoipa_axum::router::OpenApiRouter::new()
                .routes(routes!(create_transfers))
                .layer(axum::extract::DefaultBodyLimit::max(BATCH_BODY_BYTES_MAX)),
        )
        .routes(routes!(statement))
        .routes(routes!(trial_balance))
        .routes(routes!(general_ledger))
        .routes(routes!(balance_sheet))
        .routes(routes!(income_statement))
}

/// What a transfer does.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TransferType {
    /// Move money now (`legs`).
    Post,
    /// Reserve money (`legs`, optional `timeoutSeconds`), to post or void later.
    Pending,
    /// Post a pending transfer (`pendingId`), fully or for `amounts` (one per leg).
    PostPending,
    /// Release a pending transfer (`pendingId`).
    VoidPending,
    /// Undo a posted transfer (`reversalOf`) with a transfer of the opposite legs.
    Reverse,
}

#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Leg {
    pub account_id: Uuid,
    pub side: LegSide,
    pub value: MoneyValue,
}

#[derive(Clone, Copy, Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum LegSide {
    Debit,
    Credit,
}

/// A transfer request. Its id is the idempotency key: replaying it returns the original
/// outcome; a different request under the same id is rejected.
#[derive(Clone, Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewTransfer {
    /// A new UUIDv7 when absent.
    pub transfer_id: Option<Uuid>,
    #[serde(rename = "type")]
    pub kind: TransferType,
    /// What the transfer is for, e.g. `fee`, `settlement` (1 to 64 characters).
    #[schema(min_length = 1, max_length = 64)]
    pub code: String,
    /// For `post` and `pending`: 2 to 16 legs that balance per currency.
    #[serde(default)]
    #[schema(max_items = 16)]
    pub legs: Vec<Leg>,
    /// For `pending`: 1 to 2,592,000 (30 days); none waits for a post or void.
    #[schema(minimum = 1, maximum = 2_592_000)]
    #[serde(default, deserialize_with = "crate::schema::whole_number")]
    pub timeout_seconds: Option<u64>,
    pub pending_id: Option<Uuid>,
    pub amounts: Option<Vec<MoneyValue>>,
    pub reversal_of: Option<Uuid>,
    /// When it happened in the world (for the trial balance); now when absent.
    pub effective_at: Option<DateTime<Utc>>,
    /// For an adjustment of a closed period, which goes into the open one (dated now, or
    /// after the close): the end (`through`) of the closed period it adjusts, kept in the
    /// transfer's context as `hazina.adjusts_period`.
    pub adjusts_period: Option<DateTime<Utc>>,
    /// Free-form, stored with the transfer.
    #[schema(value_type = Option<Object>)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

/// A transfer's outcome: the transfer, or the ledger's reason for refusing it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TransferOutcome {
    pub transfer_id: Uuid,
    /// `accepted` or `rejected`.
    pub result: &'static str,
    /// Whether this repeated an earlier request with the same id.
    pub replayed: bool,
    /// The ledger's stable reason code when rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer: Option<TransferView>,
}

impl TransferOutcome {
    fn of(id: TransferId, outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Accepted { transfer, replayed } => Self {
                transfer_id: id.0,
                result: "accepted",
                replayed: *replayed,
                reason: None,
                transfer: Some(TransferView::from(transfer)),
            },
            Outcome::Rejected(reason) => Self {
                transfer_id: id.0,
                result: "rejected",
                replayed: false,
                reason: Some(RejectReason::code(*reason)),
                transfer: None,
            },
        }
    }
}

fn request(
    caller: &Caller,
    new: NewTransfer,
    derived_id: Option<Uuid>,
) -> Result<TransferRequest, ApiError> {
    let invalid = |detail: &str| ApiError::invalid(Code::InvalidTransfer, detail.to_owned());
    if new.code.is_empty() || new.code.chars().count() > CODE_LEN_MAX {
        return Err(invalid("code has 1 to 64 characters"));
    }
    if new.legs.len() > LEGS_MAX {
        return Err(invalid("a transfer has at most 16 legs"));
    }
    let postings = new
        .legs
        .iter()
        .map(|leg| {
            let amount = leg.value.money()?;
            let side = match leg.side {
                LegSide::Debit => Side::Debit,
                LegSide::Credit => Side::Credit,
            };
            Ok(Posting { account: AccountId(leg.account_id), side, amount })
        })
        .collect::<Result<Vec<_>, ApiError>>()?;
    let needs_legs = matches!(new.kind, TransferType::Post | TransferType::Pending);
    if needs_legs == postings.is_empty() {
        return Err(invalid("legs are for post and pending transfers, and they need at least two"));
    }
    let pending_id =
        || new.pending_id.map(TransferId).ok_or_else(|| invalid("pendingId is required"));
    let action = match new.kind {
        TransferType::Post => Action::Post { postings },
        TransferType::Pending => {
            let timeout_ms = match new.timeout_seconds {
                None => None,
                Some(seconds) if (1..=TIMEOUT_SECONDS_MAX).contains(&seconds) => {
                    Some(seconds * 1_000)
                }
                Some(_) => {
                    return Err(invalid("timeoutSeconds is between 1 and 2592000 (30 days)"));
                }
            };
            Action::Pending { postings, timeout_ms }
        }
        TransferType::PostPending => {
            let amounts = new
                .amounts
                .as_ref()
                .map(|amounts| amounts.iter().map(MoneyValue::money).collect::<Result<Vec<_>, _>>())
                .transpose()?;
            Action::PostPending { pending_id: pending_id()?, amounts }
        }
        TransferType::VoidPending => Action::VoidPending { pending_id: pending_id()? },
        TransferType::Reverse => Action::Reverse {
            transfer_id: new
                .reversal_of
                .map(TransferId)
                .ok_or_else(|| invalid("reversalOf is required"))?,
        },
    };
    let mut context = serde_json::Map::new();
    if let Some(metadata) = new.metadata {
        if serde_json::to_vec(&metadata).map_or(true, |bytes| bytes.len() > 16 * 1024) {
            return Err(invalid("metadata is at most 16 KiB of JSON"));
        }
        context.insert("metadata".into(), serde_json::Value::Object(metadata));
    }
    if let Some(app) = caller.app {
        context.insert("appId".into(), serde_json::Value::String(app.to_string()));
    }
    if let Some(through) = new.adjusts_period {
        let mut reference = serde_json::Map::new();
        reference.insert(hazina_ledger::context::ADJUSTS_PERIOD.into(), serde_json::json!(through));
        context.insert(hazina_ledger::context::HAZINA.into(), reference.into());
    }
    let given = new.transfer_id.or(derived_id);
    Ok(TransferRequest {
        id: given.map_or_else(TransferId::generate, TransferId),
        id_is_new: given.is_none(),
        org: caller.org,
        action,
        code: new.code,
        effective_at: new.effective_at,
        context: context.into(),
    })
}

/// Applies one transfer (org key): `201` when accepted, `409` with the problem
/// `ledger_refused` and the ledger's `reason` when rejected.
///
/// Deprecated, for this release only: the request header `Hazina-Refusal: body` answers a
/// rejection as the previous release did, `422` with this operation's `201` body.
#[utoipa::path(post, path = "/v1/transfers", tag = "transfers",
    request_body(content = NewTransfer, examples(
        ("post" = (
            summary = "Move money now: a fee from a customer's wallet to the fees purse",
            value = json!({
                "type": "post",
                "code": "fee",
                "legs": [
                    {
                        "accountId": "0192a3b4-f0e1-7d2c-9b3a-48596a7b8c9d",
                        "side": "debit",
                        "value": {"currencyCode": "KES", "amount": "30.00"}
                    },
                    {
                        "accountId": "0192a3b4-f1a2-7b3c-9d4e-5f6a7b8c9d0e",
                        "side": "credit",
                        "value": {"currencyCode": "KES", "amount": "30.00"}
                    }
                ],
                "metadata": {"orderId": "10452"}
            }),
        )),
        ("pending" = (
            summary = "Reserve money for 15 minutes: an order's amount, from the wallet to \
                the sales purse",
            value = json!({
                "transferId": "0192a3b5-2d3e-7f4a-b5c6-d7e8f9a0b1c2",
                "type": "pending",
                "code": "order-hold",
                "legs": [
                    {
                        "accountId": "0192a3b4-f0e1-7d2c-9b3a-48596a7b8c9d",
                        "side": "debit",
                        "value": {"currencyCode": "KES", "amount": "1200.00"}
                    },
                    {
                        "accountId": "0192a3b4-f3c4-7d5e-8f6a-7b8c9d0e1f2a",
                        "side": "credit",
                        "value": {"currencyCode": "KES", "amount": "1200.00"}
                    }
                ],
                "timeoutSeconds": 900
            }),
        )),
        ("postPending" = (
            summary = "Post part of a reserved amount: 1,000 of the 1,200 held",
            value = json!({
                "type": "post_pending",
                "code": "order-hold",
                "pendingId": "0192a3b5-2d3e-7f4a-b5c6-d7e8f9a0b1c2",
                "amounts": [
                    {"currencyCode": "KES", "amount": "1000.00"},
                    {"currencyCode": "KES", "amount": "1000.00"}
                ]
            }),
        )),
        ("voidPending" = (
            summary = "Release a reserved amount",
            value = json!({
                "type": "void_pending",
                "code": "order-hold",
                "pendingId": "0192a3b5-2d3e-7f4a-b5c6-d7e8f9a0b1c2"
            }),
        )),
        ("reverse" = (
            summary = "Undo a posted transfer: the fee refunded",
            value = json!({
                "type": "reverse",
                "code": "fee-refund",
                "reversalOf": "0192a3b5-1c2d-7e3f-a4b5-c6d7e8f9a0b1"
            }),
        )),
    )),
    responses((status = 201, body = TransferOutcome)))]
async fn create_transfer(
    caller: Caller,
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    announced: Option<axum::Extension<AnnouncedIds>>,
    Body(new): Body<NewTransfer>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let request = request(&caller, new, crate::http::idempotency::derived_id(&caller, &headers))?;
    let debits = money::debits(std::slice::from_ref(&request));
    state.money.check_treasury(caller.org, caller.app, &debits).await?;
    let id = request.id;
    AnnouncedIds::transfers(announced.as_deref(), &[id.0]);
    let outcome = state
        .money
        .submit(request)
        .await
        .map_err(|error| ApiError::from(error).with_transfer_ids(&[id.0]))?;
    let status = match outcome {
        Outcome::Accepted { .. } => StatusCode::CREATED,
        Outcome::Rejected(reason) if !legacy_refusal(&headers) => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                Code::LedgerRefused,
                format!("the ledger refused the transfer: {}", reason.code()),
            )
            .with_transfer_ids(&[id.0])
            .with_member("reason", serde_json::json!(reason.code())));
        }
        Outcome::Rejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    Ok((status, Json(TransferOutcome::of(id, &outcome))).into_response())
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"transfers": [
    {
        "transferId": "0192a3b5-1c2d-7e3f-a4b5-c6d7e8f9a0b1",
        "type": "post",
        "code": "fee",
        "legs": [
            {
                "accountId": "0192a3b4-f0e1-7d2c-9b3a-48596a7b8c9d",
                "side": "debit",
                "value": {"currencyCode": "KES", "amount": "30.00"}
            },
            {
                "accountId": "0192a3b4-f1a2-7b3c-9d4e-5f6a7b8c9d0e",
                "side": "credit",
                "value": {"currencyCode": "KES", "amount": "30.00"}
            }
        ]
    },
    {
        "transferId": "0192a3b5-4f5a-7b6c-97d8-e9f0a1b2c3d4",
        "type": "post",
        "code": "fee",
        "legs": [
            {
                "accountId": "0192a3b4-f2b3-7c4d-8e5f-6a7b8c9d0e1f",
                "side": "debit",
                "value": {"currencyCode": "KES", "amount": "30.00"}
            },
            {
                "accountId": "0192a3b4-f1a2-7b3c-9d4e-5f6a7b8c9d0e",
                "side": "credit",
                "value": {"currencyCode": "KES", "amount": "30.00"}
            }
        ]
    }
]}))]
pub struct TransferBatch {
    /// 1 to 1,000 transfers, applied in order; each has its own outcome.
    #[schema(min_items = 1, max_items = 1000)]
    pub transfers: Vec<NewTransfer>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TransferBatchResult {
    pub outcomes: Vec<TransferOutcome>,
}

/// Applies many transfers in one request (org key), in order, each with its own outcome. A
/// malformed transfer refuses the whole request before anything is applied.
#[utoipa::path(post, operation_id = "create_transfer_batch", path = "/v1/transfers/batch", tag = "transfers", request_body = TransferBatch,
    responses((status = 200, body = TransferBatchResult)))]
async fn create_transfers(
    caller: Caller,
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    announced: Option<axum::Extension<AnnouncedIds>>,
    Body(batch): Body<TransferBatch>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    if batch.transfers.is_empty() || batch.transfers.len() > BATCH_TRANSFERS_MAX {
        return Err(ApiError::invalid(Code::InvalidBatch, "a batch has 1 to 1000 transfers"));
    }
    let requests = batch
        .transfers
        .into_iter()
        .enumerate()
        .map(|(index, new)| {
            // With an Idempotency-Key, the n-th transfer of the batch always gets the same id.
            let derived = crate::http::idempotency::derived_id(&caller, &headers)
                .map(|base| Uuid::new_v5(&base, index.to_string().as_bytes()));
            request(&caller, new, derived)
        })
        .collect::<Result<Vec<_>, _>>()?;
    state.money.check_treasury(caller.org, caller.app, &money::debits(&requests)).await?;
    // Whatever goes wrong from here, the answer names every id: a retry is a replay.
    let ids: Vec<Uuid> = requests.iter().map(|request| request.id.0).collect();
    let with_ids = |error: ApiError| error.with_transfer_ids(&ids);
    AnnouncedIds::transfers(announced.as_deref(), &ids);
    // Admitted whole or refused whole, and applied in this order (one writer serves the org).
    let submitted = state.pipeline.enqueue_all(requests).map_err(|error| {
        with_ids(match error {
            hazina_ledger::pipeline::SubmitError::Overloaded => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                Code::Overloaded,
                "the ledger is overloaded; retry the batch shortly (replays are safe)",
            ),
            other => ApiError::unavailable(&other),
        })
    })?;
    let waiting = ids.iter().zip(submitted);
    let mut outcomes = Vec::with_capacity(ids.len());
    for (id, submitted) in waiting {
        let outcome = submitted.await.map_err(|error| with_ids(ApiError::unavailable(&error)))?;
        outcomes.push(TransferOutcome::of(TransferId(*id), &outcome));
    }
    Ok(Json(TransferBatchResult { outcomes }).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StatementParams {
    /// Entries recorded at or after this time.
    pub from: Option<DateTime<Utc>>,
    /// Entries recorded before this time.
    pub to: Option<DateTime<Utc>>,
    /// The `nextCursor` of the previous page.
    pub cursor: Option<i64>,
    /// Lines per page, 1 to 500 (default 50).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// `json` (default), `csv` or `pdf`; without it, an `Accept` of `text/csv` or
    /// `application/pdf` chooses. CSV and PDF hold every line of the period (after `cursor`,
    /// when given) instead of a page: CSV streamed, PDF up to 20,000 lines.
    #[param(inline)]
    pub format: Option<StatementFormat>,
}

/// The forms of an account statement.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatementFormat {
    Json,
    Csv,
    Pdf,
}

impl StatementFormat {
    /// The form asked for: the `format` parameter, else the first of CSV and PDF the `Accept`
    /// header names, else JSON.
    fn chosen(format: Option<Self>, headers: &axum::http::HeaderMap) -> Self {
        if let Some(format) = format {
            return format;
        }
        let accept = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .map(|range| range.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        for range in accept {
            match range.as_str() {
                "text/csv" => return Self::Csv,
                "application/pdf" => return Self::Pdf,
                _ => {}
            }
        }
        Self::Json
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatementLineView {
    pub sequence: i64,
    pub transfer_id: Uuid,
    pub kind: &'static str,
    pub code: String,
    pub side: &'static str,
    pub amount: String,
    pub pending_amount: String,
    /// The running balance after this line.
    pub balance: BalanceView,
    pub effective_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct StatementView {
    pub account_id: Uuid,
    pub lines: Vec<StatementLineView>,
    pub next_cursor: Option<i64>,
}

/// An account's statement in recording order, with the running balance on every line: a page
/// as JSON, or the whole period as CSV (streamed, any length) or PDF (a printable table with the
/// opening and closing balances, up to 20,000 lines), by `format` or `Accept`.
#[utoipa::path(get, operation_id = "get_account_statement", path = "/v1/accounts/{account_id}/statement", tag = "accounts",
    params(("account_id" = Uuid, Path), StatementParams),
    responses((status = 200, description = "A page of the statement (JSON), or the period's \
        lines as CSV (sequence, recorded_at, effective_at, transfer_id, kind, code, side, \
        currency, debit, credit, pending_amount, balance, available_balance, pending_balance) \
        or as a PDF", content(
        (StatementView = "application/json"),
        (String = "text/csv"),
        (Vec<u8> = "application/pdf"),
    ))))]
async fn statement(
    caller: Caller,
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    PathParams(account_id): PathParams<Uuid>,
    QueryParams(params): QueryParams<StatementParams>,
) -> Result<Response, ApiError> {
    let query = StatementQuery {
        from: params.from,
        to: params.to,
        after_version: params.cursor,
        limit: page_size(params.limit)?,
    };
    match StatementFormat::chosen(params.format, &headers) {
        StatementFormat::Json => {}
        StatementFormat::Csv => return statement_csv(&state, caller.org, account_id, &query).await,
        StatementFormat::Pdf => return statement_pdf(&state, caller.org, account_id, &query).await,
    }
    let page = state.reports.statement(caller.org, AccountId(account_id), &query).await?;
    let lines = page
        .lines
        .iter()
        .map(|line| StatementLineView {
            sequence: line.version,
            transfer_id: line.transfer_id.0,
            kind: line.kind.as_str(),
            code: line.code.clone(),
            side: line.side.as_str(),
            amount: line.amount_posted.amount().to_string(),
            pending_amount: line.amount_pending.amount().to_string(),
            balance: BalanceView::of(&line.balance, line.version),
            effective_at: line.effective_at,
            recorded_at: line.created_at,
        })
        .collect();
    Ok(Json(StatementView { account_id, lines, next_cursor: page.next_after_version })
        .into_response())
}

/// The statement's columns as CSV, in the order of [`statement_csv_row`].
const STATEMENT_CSV_HEADER: &str = "sequence,recorded_at,effective_at,transfer_id,kind,code,side,\
currency,debit,credit,pending_amount,balance,available_balance,pending_balance\n";

/// The whole period's statement as CSV, streamed: the lines are read in keyset pages and each
/// is written as it is read, so memory stays flat for millions of lines.
async fn statement_csv(
    state: &AppState,
    org: hazina_ledger::OrgId,
    account_id: Uuid,
    query: &StatementQuery,
) -> Result<Response, ApiError> {
    let export = state
        .reports
        .statement_export(org, AccountId(account_id), query.from, query.to, query.after_version)
        .await?;
    let header = futures_util::stream::once(async {
        Ok::<_, std::io::Error>(STATEMENT_CSV_HEADER.as_bytes().to_vec())
    });
    let rows = state
        .reports
        .statement_lines(&export)
        .map(|line| line.map_err(std::io::Error::other).and_then(|line| statement_csv_row(&line)));
    Ok(csv_response(
        &format!("statement-{account_id}.csv"),
        ResponseBody::from_stream(header.chain(rows)),
    ))
}

fn statement_csv_row(
    line: &hazina_ledger::store::StatementLine,
) -> Result<Vec<u8>, std::io::Error> {
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(256));
    let amount = line.amount_posted.amount().to_string();
    let (debit, credit) = match line.side {
        Side::Debit => (amount, String::new()),
        Side::Credit => (String::new(), amount),
    };
    writer.write_record([
        line.version.to_string(),
        line.created_at.to_rfc3339(),
        line.effective_at.to_rfc3339(),
        line.transfer_id.0.to_string(),
        line.kind.as_str().to_owned(),
        line.code.clone(),
        line.side.as_str().to_owned(),
        line.balance.currency.code().to_owned(),
        debit,
        credit,
        line.amount_pending.amount().to_string(),
        line.balance.posted.amount().to_string(),
        line.balance.available.amount().to_string(),
        line.balance.pending.amount().to_string(),
    ])?;
    writer.into_inner().map_err(|error| std::io::Error::other(error.to_string()))
}

/// The whole period's statement as a PDF; a period of more than
/// [`crate::pdf::STATEMENT_LINES_MAX`] lines is refused (`report_too_large`) before any is read.
async fn statement_pdf(
    state: &AppState,
    org: hazina_ledger::OrgId,
    account_id: Uuid,
    query: &StatementQuery,
) -> Result<Response, ApiError> {
    let export = state
        .reports
        .statement_export(org, AccountId(account_id), query.from, query.to, query.after_version)
        .await?;
    if export.line_count() > crate::pdf::STATEMENT_LINES_MAX {
        return Err(ApiError::invalid(
            Code::ReportTooLarge,
            format!(
                "the period has {} lines; a PDF statement holds at most {}: narrow the period \
                 or ask for format=csv",
                export.line_count(),
                crate::pdf::STATEMENT_LINES_MAX
            ),
        ));
    }
    let lines: Vec<_> =
        futures_util::TryStreamExt::try_collect(state.reports.statement_lines(&export))
            .await
            .map_err(ApiError::from)?;
    let document = crate::pdf::statement(&export, &lines, Utc::now());
    let mut response = document.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    if let Ok(value) =
        HeaderValue::from_str(&format!("attachment; filename=\"statement-{account_id}.pdf\""))
    {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeriodParams {
    /// Start of the period (inclusive), by effective time.
    pub from: DateTime<Utc>,
    /// End of the period (exclusive); not before `from`.
    pub to: DateTime<Utc>,
    /// `json` (default) or `csv`.
    #[param(inline)]
    pub format: Option<ReportFormat>,
}

#[derive(Clone, Copy, Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    Json,
    Csv,
}

/// A period may be empty (`from` = `to`: the balances at that time and no movement); one that
/// ends before it starts is a mistake.
fn period(params: &PeriodParams) -> Result<(), ApiError> {
    period_of(params.from, params.to)
}

/// As [`period`], for reports whose parameters are not [`PeriodParams`].
fn period_of(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<(), ApiError> {
    if from > to {
        return Err(ApiError::bad_request(Code::InvalidPeriod, "from must not be after to"));
    }
    Ok(())
}

/// The trial balance for a period (org key): per account, opening balance, debits, credits and
/// closing balance by effective time, with totals per currency; JSON or CSV.
#[utoipa::path(get, operation_id = "get_trial_balance", path = "/v1/reports/trial-balance", tag = "reports", params(PeriodParams),
    responses((status = 200, description = "The trial balance (JSON, or CSV with `format=csv`)")))]
async fn trial_balance(
    caller: Caller,
    State(state): State<AppState>,
    QueryParams(params): QueryParams<PeriodParams>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    period(&params)?;
    let report = state.reports.trial_balance(caller.org, params.from, params.to).await?;
    let closed = closed_period(&state, caller.org, params.to).await?;
    match params.format.unwrap_or(ReportFormat::Json) {
        ReportFormat::Json => {
            Ok(Json(TrialBalanceView { report: &report, closed_period: closed }).into_response())
        }
        ReportFormat::Csv => Ok(with_closed_period(
            csv_response("trial-balance.csv", trial_balance_csv(&report)?),
            closed.as_ref(),
        )),
    }
}

/// A trial balance, with the close that covers its period when one does.
#[derive(Serialize)]
struct TrialBalanceView<'a> {
    #[serde(flatten)]
    report: &'a TrialBalance,
    #[serde(rename = "closedPeriod", skip_serializing_if = "Option::is_none")]
    closed_period: Option<super::periods::ClosedPeriodView>,
}

/// The close that covers a report ending at `to` (exclusive): the first whose end is at or
/// after the report's last microsecond, whose chain hash then covers every transfer the report
/// shows.
async fn closed_period(
    state: &AppState,
    org: hazina_ledger::OrgId,
    to: DateTime<Utc>,
) -> Result<Option<super::periods::ClosedPeriodView>, ApiError> {
    let last = to - chrono::TimeDelta::microseconds(1);
    let close = state.reports.period_close_covering(org, last).await?;
    Ok(close.as_ref().map(super::periods::ClosedPeriodView::of))
}

/// A CSV report carries its covering close in a header, `Hazina-Closed-Period`, as the JSON
/// object a JSON report carries under `closedPeriod`.
fn with_closed_period(
    mut response: Response,
    closed: Option<&super::periods::ClosedPeriodView>,
) -> Response {
    let value = closed.and_then(|closed| serde_json::to_string(closed).ok());
    if let Some(value) = value.and_then(|value| HeaderValue::from_str(&value).ok()) {
        response.headers_mut().insert("hazina-closed-period", value);
    }
    response
}

fn trial_balance_csv(report: &TrialBalance) -> Result<Vec<u8>, ApiError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let failed = |error: csv::Error| ApiError::unavailable(&error);
    writer
        .write_record([
            "account_id",
            "kind",
            "name",
            "currency",
            "normal_side",
            "opening",
            "debits",
            "credits",
            "closing",
        ])
        .map_err(failed)?;
    for line in &report.lines {
        writer
            .write_record([
                line.account.0.to_string(),
                line.kind.as_str().to_owned(),
                line.name.clone().unwrap_or_default(),
                line.currency.code().to_owned(),
                line.normal_side.as_str().to_owned(),
                line.opening.amount().to_string(),
                line.debits.amount().to_string(),
                line.credits.amount().to_string(),
                line.closing.amount().to_string(),
            ])
            .map_err(failed)?;
    }
    writer.into_inner().map_err(|error| ApiError::unavailable(error.error()))
}

fn csv_response(filename: &str, body: impl Into<ResponseBody>) -> Response {
    let mut response = body.into().into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

/// The general ledger for a period (org key): every posted entry by effective time, as CSV,
/// streamed as it is read (memory stays flat however long the period).
#[utoipa::path(get, operation_id = "get_general_ledger", path = "/v1/reports/general-ledger", tag = "reports", params(PeriodParams),
    responses((status = 200, description = "CSV: effective_at, recorded_at, transfer_id, kind, code, account_id, account_kind, account_name, currency, debit, credit")))]
async fn general_ledger(
    caller: Caller,
    State(state): State<AppState>,
    QueryParams(params): QueryParams<PeriodParams>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    period(&params)?;
    let closed = closed_period(&state, caller.org, params.to).await?;
    let lines = state.reports.general_ledger(caller.org, params.from, params.to);
    let header = futures_util::stream::once(async {
        Ok::<_, std::io::Error>(
            "effective_at,recorded_at,transfer_id,kind,code,account_id,account_kind,account_name,currency,debit,credit\n"
                .as_bytes()
                .to_vec(),
        )
    });
    let rows = lines
        .map(|line| line.map_err(std::io::Error::other).and_then(|line| ledger_csv_row(&line)));
    Ok(with_closed_period(
        csv_response("general-ledger.csv", ResponseBody::from_stream(header.chain(rows))),
        closed.as_ref(),
    ))
}

fn ledger_csv_row(line: &LedgerLine) -> Result<Vec<u8>, std::io::Error> {
    let mut writer = csv::Writer::from_writer(Vec::with_capacity(256));
    let (debit, credit) = match line.side {
        Side::Debit => (line.amount.amount().to_string(), String::new()),
        Side::Credit => (String::new(), line.amount.amount().to_string()),
    };
    writer.write_record([
        line.effective_at.to_rfc3339(),
        line.recorded_at.to_rfc3339(),
        line.transfer_id.0.to_string(),
        line.kind.as_str().to_owned(),
        line.code.clone(),
        line.account.0.to_string(),
        line.account_kind.as_str().to_owned(),
        line.account_name.clone().unwrap_or_default(),
        line.amount.currency().code().to_owned(),
        debit,
        credit,
    ])?;
    writer.into_inner().map_err(|error| std::io::Error::other(error.to_string()))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BalanceSheetParams {
    /// The moment, by effective time: balances of the entries effective before it (now when
    /// absent).
    pub at: Option<DateTime<Utc>>,
}

/// One kind of account in one currency on the balance sheet.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KindBalanceView {
    /// `channel`, `external`, `wallet`, `purse` or `equity`.
    pub kind: &'static str,
    /// How many accounts of the kind hold the currency.
    pub accounts: i64,
    /// Their posted balance on the section's side (negative when against it).
    pub balance: String,
}

/// The balance sheet in one currency.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalanceSheetCurrencyView {
    #[schema(value_type = super::money::CurrencyCode)]
    pub currency_code: &'static str,
    /// Channel clearing accounts (money held at providers and banks) and external accounts,
    /// debit balances.
    pub assets: Vec<KindBalanceView>,
    /// Customers' wallets: what the org owes them, credit balances.
    pub liabilities: Vec<KindBalanceView>,
    /// Purses (the org's own funds) and equity accounts, credit balances.
    pub equity: Vec<KindBalanceView>,
    pub total_assets: String,
    pub total_liabilities: String,
    pub total_equity: String,
    /// Revenue less expenses of every entry effective before `at`: the result not yet closed
    /// into equity.
    pub current_result: String,
    /// Whether total assets equal total liabilities + total equity + the current result (they
    /// always should: every transfer balances per currency).
    pub balanced: bool,
}

/// The balance sheet at a moment, by effective time.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct BalanceSheetView {
    pub at: DateTime<Utc>,
    /// One per currency the org's accounts hold, in currency-code order.
    pub currencies: Vec<BalanceSheetCurrencyView>,
}

fn kind_views(kinds: &[hazina_ledger::store::KindBalance]) -> Vec<KindBalanceView> {
    kinds
        .iter()
        .map(|kind| KindBalanceView {
            kind: kind.kind.as_str(),
            accounts: kind.accounts,
            balance: kind.balance.amount().to_string(),
        })
        .collect()
}

/// The balance sheet at a moment (org key): every account's posted balance by effective time,
/// per currency, in assets (channel clearing and external accounts), liabilities (customers'
/// wallets) and equity (purses and equity accounts), with the current result (revenue less
/// expenses); assets = liabilities + equity + current result.
#[utoipa::path(get, operation_id = "get_balance_sheet", path = "/v1/reports/balance-sheet", tag = "reports", params(BalanceSheetParams),
    responses((status = 200, body = BalanceSheetView)))]
async fn balance_sheet(
    caller: Caller,
    State(state): State<AppState>,
    QueryParams(params): QueryParams<BalanceSheetParams>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    let at = params.at.unwrap_or_else(Utc::now);
    let sheet = state.reports.balance_sheet(caller.org, at).await?;
    let currencies = sheet
        .currencies
        .iter()
        .map(|currency| BalanceSheetCurrencyView {
            currency_code: currency.currency.code(),
            assets: kind_views(&currency.assets),
            liabilities: kind_views(&currency.liabilities),
            equity: kind_views(&currency.equity),
            total_assets: currency.total_assets.amount().to_string(),
            total_liabilities: currency.total_liabilities.amount().to_string(),
            total_equity: currency.total_equity.amount().to_string(),
            current_result: currency.current_result.amount().to_string(),
            balanced: currency.balanced,
        })
        .collect();
    Ok(Json(BalanceSheetView { at: sheet.at, currencies }).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct IncomeStatementParams {
    /// Start of the period (inclusive), by effective time.
    pub from: DateTime<Utc>,
    /// End of the period (exclusive); not before `from`.
    pub to: DateTime<Utc>,
}

/// A revenue or expense account's movement over the period.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncomeLineView {
    pub account_id: Uuid,
    /// `revenue` or `expense`.
    pub kind: &'static str,
    pub name: Option<String>,
    #[schema(value_type = super::money::CurrencyCode)]
    pub currency_code: &'static str,
    /// Revenue earned (credits less debits) or expense incurred (debits less credits).
    pub amount: String,
}

/// The period's totals in one currency.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncomeTotalsView {
    #[schema(value_type = super::money::CurrencyCode)]
    pub currency_code: &'static str,
    pub revenue: String,
    pub expenses: String,
    /// Revenue less expenses.
    pub net_result: String,
}

/// The income statement over a period, by effective time.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IncomeStatementView {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Every revenue and expense account, in currency, kind and creation order.
    pub lines: Vec<IncomeLineView>,
    /// One per currency of those accounts.
    pub totals: Vec<IncomeTotalsView>,
}

/// The income statement for a period (org key): each revenue and expense account's posted
/// movement by effective time, and per currency revenue, expenses and the net result.
#[utoipa::path(get, operation_id = "get_income_statement", path = "/v1/reports/income-statement", tag = "reports", params(IncomeStatementParams),
    responses((status = 200, body = IncomeStatementView)))]
async fn income_statement(
    caller: Caller,
    State(state): State<AppState>,
    QueryParams(params): QueryParams<IncomeStatementParams>,
) -> Result<Response, ApiError> {
    caller.org_key()?;
    period_of(params.from, params.to)?;
    let report = state.reports.income_statement(caller.org, params.from, params.to).await?;
    let lines = report
        .lines
        .iter()
        .map(|line| IncomeLineView {
            account_id: line.account.0,
            kind: line.kind.as_str(),
            name: line.name.clone(),
            currency_code: line.currency.code(),
            amount: line.amount.amount().to_string(),
        })
        .collect();
    let totals = report
        .totals
        .iter()
        .map(|total| IncomeTotalsView {
            currency_code: total.currency.code(),
            revenue: total.revenue.amount().to_string(),
            expenses: total.expenses.amount().to_string(),
            net_result: total.net_result.amount().to_string(),
        })
        .collect();
    Ok(Json(IncomeStatementView { from: report.from, to: report.to, lines, totals })
        .into_response())
}

//! The error responses of every `/v1` operation, in one place: those its shape implies (every
//! operation, path and query parameters, a JSON body, a `POST`'s Idempotency-Key) and those its
//! handler answers ([`OPERATIONS`], one row per operation), written into the OpenAPI document
//! by [`document`], each status with its problem codes.
//!
//! The handlers' `#[utoipa::path]` annotations list only their successes and other non-problem
//! answers, so that a status and its codes are stated once, here, and stay exact: a fuzzer
//! checks every status the server answers against the document.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use utoipa::{PartialSchema as _, ToSchema as _};

use crate::code::Code;
use crate::http::problem::Problem;

/// A status and the problem codes an operation may answer with it.
type Answer = (StatusCode, &'static [Code]);

/// The content type of every problem.
const PROBLEM_JSON: &str = "application/problem+json";

/// What `payment_channels::document_deprecated_routes` appends to the `operationId` of a
/// deprecated copy: the copy answers as its successor does, so it takes its successor's row.
const DEPRECATED_SUFFIX: &str = "_deprecated";

/// The HTTP methods an OpenAPI path item holds operations under (its other members are not
/// operations).
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

// --- What an operation's shape implies ----------------------------------------------------

/// Every operation: the key is checked first (`auth::Caller`); the database may fail; and
/// `hazina serve` answers any request still running at its request timeout with `timeout`.
/// A client token is refused by every operation but those that take one
/// (`auth::ClientCaller`), which list what they refuse it with.
const EVERY_OPERATION: &[Answer] = &[
    (StatusCode::UNAUTHORIZED, &[Code::Unauthorized]),
    (StatusCode::FORBIDDEN, &[Code::ClientTokenForbidden]),
    (StatusCode::INTERNAL_SERVER_ERROR, &[Code::InternalError]),
    (StatusCode::SERVICE_UNAVAILABLE, &[Code::Timeout, Code::Unavailable]),
];

/// Path parameters (`problem::PathParams`): an id that is not a UUID, or a `%00` anywhere.
const WITH_PATH_PARAMETERS: &[Answer] = &[(StatusCode::BAD_REQUEST, &[Code::InvalidPath])];

/// Query parameters (`problem::QueryParams`): a malformed, missing or unknown parameter, or a
/// `%00`. What a handler checks beyond that (`invalid_limit`, …) is in its row.
const WITH_QUERY_PARAMETERS: &[Answer] = &[(StatusCode::BAD_REQUEST, &[Code::InvalidQuery])];

/// A JSON body (`problem::Body`).
const WITH_BODY: &[Answer] = &[
    (StatusCode::BAD_REQUEST, &[Code::MalformedJson]),
    (StatusCode::PAYLOAD_TOO_LARGE, &[Code::BodyTooLarge]),
    (StatusCode::UNSUPPORTED_MEDIA_TYPE, &[Code::UnsupportedMediaType]),
    (StatusCode::UNPROCESSABLE_ENTITY, &[Code::InvalidBody]),
];

/// A `POST`, with or without a body: the Idempotency-Key layer (`http::idempotency`) reads the
/// body of every one that has a key, whatever the route.
const POST: &[Answer] = &[
    (StatusCode::BAD_REQUEST, &[Code::InvalidIdempotencyKey]),
    (StatusCode::CONFLICT, &[Code::IdempotencyRequestInProgress]),
    (StatusCode::PAYLOAD_TOO_LARGE, &[Code::BodyTooLarge]),
    (StatusCode::UNPROCESSABLE_ENTITY, &[Code::IdempotencyKeyReused]),
];

// --- What each operation's handler answers ------------------------------------------------

/// An org key's operation (`Caller::org_key`).
const ORG_KEY: Answer = (StatusCode::FORBIDDEN, &[Code::OrgKeyRequired]);
/// An app key's operation (`Caller::app_key`).
const APP_KEY: Answer = (StatusCode::FORBIDDEN, &[Code::AppKeyRequired]);
/// Something the request names is missing, or another org's.
const NOT_FOUND: Answer = (StatusCode::NOT_FOUND, &[Code::NotFound]);
/// Submitted through the ledger's pipeline, whose queue may be full.
const PIPELINE: Answer = (StatusCode::SERVICE_UNAVAILABLE, &[Code::Overloaded]);
/// Opens or seals a channel's credentials, which a wrong key file leaves unreadable.
const CREDENTIALS: Answer = (StatusCode::INTERNAL_SERVER_ERROR, &[Code::CredentialsUnreadable]);

const fn bad_request(codes: &'static [Code]) -> Answer {
    (StatusCode::BAD_REQUEST, codes)
}

const fn conflict(codes: &'static [Code]) -> Answer {
    (StatusCode::CONFLICT, codes)
}

const fn unprocessable(codes: &'static [Code]) -> Answer {
    (StatusCode::UNPROCESSABLE_ENTITY, codes)
}

/// An amount as written (`money::amount`).
const AMOUNT: &[Code] = &[Code::InvalidAmount, Code::InvalidCurrency];

/// A metadata or app data value (`DataValue::to_stored`).
const DATA_VALUE: &[Code] = &[Code::InvalidBase64, Code::ValueTooLarge];

/// An activity (`customers::check_activity`).
const ACTIVITY: &[Code] = &[
    Code::InvalidKey,
    Code::InvalidProperty,
    Code::InvalidSessionId,
    Code::InvalidSource,
    Code::TooManyProperties,
];

/// What a payment's `context` is refused with (`money::context_effects`), beyond what its
/// activity and values are; an activity or app data under an org key is a 403.
const PAYMENT_CONTEXT: &[Code] =
    &[Code::CustomerRequired, Code::InvalidKey, Code::MessageNotFound, Code::TooManyMetadataKeys];

/// A transfer request (`finance::request`) and the treasury limits it is checked against.
const TRANSFER: &[Code] = &[
    Code::InvalidAmount,
    Code::InvalidCurrency,
    Code::InvalidTransfer,
    Code::TreasuryLimitExceeded,
];

/// Every operation by `operationId`, with what its handler and the services it calls answer
/// beyond what its shape implies. An operation with nothing more has a row too, so that every
/// new one is a decision (the tests refuse an operation without a row, and a row without an
/// operation).
const OPERATIONS: &[(&str, &[Answer])] = &[
    // Tenancy (`v1::tenancy`, `crate::tenancy`).
    (
        "create_app",
        &[ORG_KEY, conflict(&[Code::AlreadyExists]), unprocessable(&[Code::InvalidName])],
    ),
    ("list_apps", &[ORG_KEY]),
    (
        "create_key",
        &[
            ORG_KEY,
            (StatusCode::NOT_FOUND, &[Code::AppNotFound]),
            unprocessable(&[Code::InvalidName]),
        ],
    ),
    ("list_keys", &[ORG_KEY]),
    ("revoke_key", &[ORG_KEY, NOT_FOUND]),
    // 404: the customer the token is for.
    ("create_auth_token", &[APP_KEY, NOT_FOUND, unprocessable(&[Code::InvalidTtl])]),
    // Customers (`v1::customers`, `crate::customers`): every one of them names a customer,
    // missing or another org's when 404.
    (
        "create_or_resolve_customer",
        &[
            NOT_FOUND,
            unprocessable(&[
                Code::InvalidCustomerNumber,
                Code::InvalidCustomerReference,
                Code::InvalidPhoneNumber,
            ]),
        ],
    ),
    ("get_customer", &[NOT_FOUND]),
    (
        "add_customer_number",
        &[
            NOT_FOUND,
            conflict(&[Code::CustomerNumberTaken]),
            unprocessable(&[
                Code::InvalidCustomerNumber,
                Code::InvalidPhoneNumber,
                Code::TooManyCustomerNumbers,
            ]),
        ],
    ),
    (
        "delete_customer_number",
        &[NOT_FOUND, unprocessable(&[Code::InvalidCustomerNumber, Code::InvalidPhoneNumber])],
    ),
    // 503 `unavailable` also when payments kept arriving at the other's wallets (retry).
    (
        "adopt_customer",
        &[
            NOT_FOUND,
            conflict(&[Code::MergePendingTransfers, Code::MergeWalletConflict]),
            unprocessable(&[Code::CannotAdoptItself]),
            PIPELINE,
        ],
    ),
    (
        "update_tags",
        &[NOT_FOUND, unprocessable(&[Code::InvalidKey, Code::InvalidValue, Code::TooManyTags])],
    ),
    ("delete_tag", &[NOT_FOUND, unprocessable(&[Code::InvalidKey])]),
    (
        "update_secondary_ids",
        &[
            NOT_FOUND,
            conflict(&[Code::SecondaryIdTaken]),
            unprocessable(&[Code::InvalidKey, Code::InvalidValue, Code::TooManySecondaryIds]),
        ],
    ),
    ("delete_secondary_id", &[NOT_FOUND, unprocessable(&[Code::InvalidKey, Code::InvalidValue])]),
    (
        "update_metadata",
        &[
            NOT_FOUND,
            unprocessable(DATA_VALUE),
            unprocessable(&[Code::InvalidKey, Code::TooManyMetadataKeys]),
        ],
    ),
    ("delete_metadata", &[NOT_FOUND, unprocessable(&[Code::InvalidKey])]),
    ("update_app_data", &[APP_KEY, NOT_FOUND, unprocessable(DATA_VALUE)]),
    ("delete_app_data", &[APP_KEY, NOT_FOUND]),
    // 404 also when the app has no data to lease.
    ("lease_app_data", &[APP_KEY, NOT_FOUND, conflict(&[Code::AppDataLeased])]),
    ("list_reminders", &[APP_KEY, NOT_FOUND]),
    (
        "update_reminder",
        &[
            APP_KEY,
            NOT_FOUND,
            unprocessable(&[
                Code::InvalidInterval,
                Code::InvalidKey,
                Code::InvalidPayload,
                Code::TooManyReminders,
            ]),
        ],
    ),
    ("delete_reminder", &[APP_KEY, NOT_FOUND, unprocessable(&[Code::InvalidKey])]),
    // A client token limited to another customer: 403 `client_token_scope`.
    (
        "create_activity",
        &[
            (StatusCode::FORBIDDEN, &[Code::AppKeyRequired, Code::ClientTokenScope]),
            NOT_FOUND,
            unprocessable(ACTIVITY),
        ],
    ),
    // Tags across customers (`v1::tags`, `crate::customers::tags`, `…::reminders`).
    (
        "list_tagged_customers",
        &[
            bad_request(&[Code::InvalidLimit]),
            unprocessable(&[Code::InvalidKey, Code::InvalidValue]),
        ],
    ),
    (
        "tag_customers",
        &[
            NOT_FOUND,
            unprocessable(&[
                Code::InvalidKey,
                Code::InvalidValue,
                Code::TooManyCustomers,
                Code::TooManyTags,
            ]),
        ],
    ),
    ("untag_customers", &[NOT_FOUND, unprocessable(&[Code::InvalidKey, Code::TooManyCustomers])]),
    ("list_tag_reminders", &[APP_KEY, unprocessable(&[Code::InvalidKey])]),
    (
        "set_tag_reminder",
        &[
            APP_KEY,
            unprocessable(&[
                Code::InvalidInterval,
                Code::InvalidKey,
                Code::InvalidPayload,
                Code::InvalidValue,
                Code::TooManyReminders,
            ]),
        ],
    ),
    ("delete_tag_reminder", &[APP_KEY, unprocessable(&[Code::InvalidKey])]),
    (
        "get_customer_timeline",
        &[NOT_FOUND, bad_request(&[Code::InvalidCursor, Code::InvalidLimit])],
    ),
    // Purses, wallets, payments, transfers and accounts (`v1::money`, `crate::money`).
    ("create_purse", &[ORG_KEY, unprocessable(AMOUNT), unprocessable(&[Code::InvalidName])]),
    ("list_purses", &[bad_request(&[Code::InvalidLimit])]),
    ("get_purse", &[NOT_FOUND]),
    (
        "create_wallet",
        &[
            NOT_FOUND,
            conflict(&[Code::AlreadyExists]),
            unprocessable(&[Code::InvalidCurrency, Code::InvalidWalletId]),
        ],
    ),
    ("list_wallets", &[NOT_FOUND]),
    ("get_wallet", &[NOT_FOUND]),
    // Between the ledger's parties (`money::Service::payment_accounts`), or with a customer's
    // mobile money through a channel (`v1::payments::create`): 404 for a party that is not the
    // org's; 403 for an app debiting a channel's clearing account, or an org key sending an
    // activity or app data in the context. 409 `payment_failed`: not made (the ledger refused
    // it, or the provider failed it); `ledger_refused`: the ledger refused to post or void a
    // provider payment's reservation (only if the books were changed behind its back).
    (
        "create_payment",
        &[
            (StatusCode::FORBIDDEN, &[Code::AppKeyRequired, Code::ClearingAccountForbidden]),
            NOT_FOUND,
            unprocessable(AMOUNT),
            unprocessable(&[
                Code::AmbiguousChannelNumber,
                Code::ChannelNotConfigured,
                Code::CurrencyMismatch,
                Code::DuplicateRequest,
                Code::IdAlreadyUsed,
                Code::InvalidBankAccount,
                Code::InvalidBic,
                Code::InvalidCounterParty,
                Code::InvalidCustomerNumber,
                Code::InvalidName,
                Code::InvalidNarration,
                Code::InvalidPhoneNumber,
                Code::InvalidPurse,
                Code::InvalidRequest,
                Code::MissingBankDetails,
                Code::NotSupported,
                Code::TreasuryLimitExceeded,
            ]),
            conflict(&[Code::LedgerRefused, Code::PaymentFailed]),
            unprocessable(PAYMENT_CONTEXT),
            unprocessable(ACTIVITY),
            unprocessable(DATA_VALUE),
            CREDENTIALS,
            PIPELINE,
        ],
    ),
    ("get_transfer", &[NOT_FOUND]),
    ("get_account", &[NOT_FOUND]),
    ("get_payment", &[NOT_FOUND]),
    // Transfers and reports (`v1::finance`): org keys only, so an app's refusal at a clearing
    // account (`clearing_account_forbidden`) never comes. A transfer's rejection is 409
    // `ledger_refused`; a batch's rejections are outcomes of its 200.
    (
        "create_transfer",
        &[ORG_KEY, unprocessable(TRANSFER), conflict(&[Code::LedgerRefused]), PIPELINE],
    ),
    (
        "create_transfer_batch",
        &[ORG_KEY, unprocessable(TRANSFER), unprocessable(&[Code::InvalidBatch]), PIPELINE],
    ),
    // `report_too_large`: a PDF statement of more lines than it holds.
    (
        "get_account_statement",
        &[NOT_FOUND, bad_request(&[Code::InvalidLimit]), unprocessable(&[Code::ReportTooLarge])],
    ),
    // `invalid_amount`: a total beyond the ledger's 64-bit minor units.
    (
        "get_trial_balance",
        &[ORG_KEY, bad_request(&[Code::InvalidPeriod]), unprocessable(&[Code::InvalidAmount])],
    ),
    ("get_general_ledger", &[ORG_KEY, bad_request(&[Code::InvalidPeriod])]),
    // Period close (`v1::periods`): the ledger refuses a close at or before the last one, and
    // one that ends in the future.
    (
        "close_period",
        &[
            ORG_KEY,
            conflict(&[Code::PeriodAlreadyClosed]),
            unprocessable(&[Code::InvalidNote, Code::PeriodInFuture]),
        ],
    ),
    ("list_period_closes", &[ORG_KEY]),
    ("get_balance_sheet", &[ORG_KEY, unprocessable(&[Code::InvalidAmount])]),
    (
        "get_income_statement",
        &[ORG_KEY, bad_request(&[Code::InvalidPeriod]), unprocessable(&[Code::InvalidAmount])],
    ),
    // Events (`v1::events`, `crate::events`): an unknown type is `invalid_query`.
    ("list_events", &[bad_request(&[Code::InvalidCursor, Code::InvalidLimit])]),
    ("stream_events", &[bad_request(&[Code::InvalidCursor])]),
    (
        "reply_to_event",
        &[
            NOT_FOUND,
            conflict(&[Code::ReplyNotAwaited]),
            unprocessable(&[Code::MessageTooLong, Code::UnsupportedBody]),
        ],
    ),
    // Payment channels (`v1::payment_channels`), org keys only.
    (
        "create_payment_channel",
        &[
            ORG_KEY,
            conflict(&[Code::ChannelExists]),
            unprocessable(AMOUNT),
            unprocessable(&[
                Code::CurrencyMismatch,
                Code::InvalidBaseUrl,
                Code::InvalidBic,
                Code::InvalidChannelNumber,
                Code::InvalidCredential,
                Code::InvalidCutOff,
                Code::InvalidName,
                Code::MissingBankDetails,
                Code::MissingCredentials,
                Code::NotSupported,
                Code::ProviderUrlNotAllowed,
                Code::UnknownCredential,
            ]),
            CREDENTIALS,
        ],
    ),
    // Bank channels' files (`v1::payment_channels`, `payments::bank_files`): 422
    // `not_supported` for a channel that is not a bank's.
    (
        "cut_bank_file",
        &[
            ORG_KEY,
            NOT_FOUND,
            conflict(&[Code::NoQueuedPayouts]),
            unprocessable(&[Code::NotSupported]),
            CREDENTIALS,
        ],
    ),
    ("list_bank_files", &[ORG_KEY, NOT_FOUND, unprocessable(&[Code::NotSupported]), CREDENTIALS]),
    // Reconciliation (`v1::reconciliation`, `crate::reconciliation`), org keys only.
    (
        "create_statement_import",
        &[
            ORG_KEY,
            NOT_FOUND,
            unprocessable(&[
                Code::InvalidBase64,
                Code::StatementNotForChannel,
                Code::StatementUnreadable,
            ]),
        ],
    ),
    ("list_statement_imports", &[ORG_KEY, bad_request(&[Code::InvalidLimit])]),
    ("get_statement_import", &[ORG_KEY, NOT_FOUND]),
    (
        "create_reconciliation_run",
        &[
            ORG_KEY,
            NOT_FOUND,
            unprocessable(&[Code::InvalidAmount, Code::InvalidPeriod, Code::InvalidValue]),
        ],
    ),
    ("list_reconciliation_runs", &[ORG_KEY, bad_request(&[Code::InvalidLimit])]),
    ("get_reconciliation_run", &[ORG_KEY, NOT_FOUND]),
    ("list_reconciliation_exceptions", &[ORG_KEY, bad_request(&[Code::InvalidLimit])]),
    ("get_reconciliation_exception", &[ORG_KEY, NOT_FOUND]),
    (
        "assign_reconciliation_exception",
        &[ORG_KEY, NOT_FOUND, unprocessable(&[Code::InvalidValue])],
    ),
    (
        "resolve_reconciliation_exception",
        &[
            ORG_KEY,
            NOT_FOUND,
            conflict(&[
                Code::ExceptionResolved,
                Code::LedgerRefused,
                Code::PaymentAlreadySettled,
                Code::PaymentNotSent,
            ]),
            unprocessable(&[
                Code::InvalidAmount,
                Code::InvalidValue,
                Code::LedgerRefused,
                Code::ReasonRequired,
                Code::ResolutionNotAllowed,
            ]),
            PIPELINE,
        ],
    ),
    (
        "get_reconciliation_drift",
        &[
            ORG_KEY,
            NOT_FOUND,
            bad_request(&[Code::InvalidPeriod]),
            unprocessable(&[Code::InvalidPeriod]),
        ],
    ),
    ("list_stuck_payments", &[ORG_KEY, bad_request(&[Code::InvalidLimit, Code::InvalidQuery])]),
    (
        "settle_stuck_payment",
        &[
            ORG_KEY,
            NOT_FOUND,
            conflict(&[Code::LedgerRefused, Code::PaymentAlreadySettled, Code::PaymentNotSent]),
            unprocessable(&[Code::InvalidValue, Code::ReasonRequired]),
            PIPELINE,
        ],
    ),
    ("list_payment_channels", &[ORG_KEY]),
    ("get_payment_channel", &[ORG_KEY, NOT_FOUND]),
    (
        "set_treasury_limit",
        &[ORG_KEY, NOT_FOUND, unprocessable(AMOUNT), unprocessable(&[Code::CurrencyMismatch])],
    ),
    // 404 for the channel or the receiving purse; 424 when M-Pesa cannot be reached.
    (
        "register_c2b_urls",
        &[
            ORG_KEY,
            NOT_FOUND,
            unprocessable(&[
                Code::CurrencyMismatch,
                Code::NotSupported,
                Code::ProviderRefused,
                Code::ProviderUrlNotAllowed,
            ]),
            (StatusCode::FAILED_DEPENDENCY, &[Code::ProviderUnavailable]),
            CREDENTIALS,
        ],
    ),
    // Messaging (`v1::messaging`, `crate::messaging`): a channel named in a body that is not
    // the org's is `channel_not_found` (422); one named in the path, 404.
    (
        "create_messaging_channel",
        &[
            ORG_KEY,
            conflict(&[Code::ChannelExists]),
            unprocessable(AMOUNT),
            unprocessable(&[
                Code::CurrencyMismatch,
                Code::InvalidBaseUrl,
                Code::InvalidChannelNumber,
                Code::InvalidCredential,
                Code::InvalidName,
                Code::InvalidPurse,
                Code::InvalidValue,
                Code::MissingCredentials,
                Code::NotSupported,
                Code::ProviderUrlNotAllowed,
                Code::UnknownCredential,
            ]),
            CREDENTIALS,
        ],
    ),
    ("list_messaging_channels", &[ORG_KEY, CREDENTIALS]),
    ("get_messaging_channel", &[ORG_KEY, NOT_FOUND, CREDENTIALS]),
    // 404: the customer named by id, or the context's; `not_found` (422): a `replyTo` or a
    // `paymentId` that is no message or payment of the customer's.
    (
        "send_message",
        &[
            (StatusCode::FORBIDDEN, &[Code::AppKeyRequired]),
            NOT_FOUND,
            unprocessable(&[
                Code::ChannelNotFound,
                Code::InsufficientCredits,
                Code::InvalidAmount,
                Code::InvalidBody,
                Code::InvalidCustomerNumber,
                Code::InvalidCustomerReference,
                Code::InvalidPhoneNumber,
                Code::MessageTooLong,
                Code::NoConsent,
                Code::NoSessionInProgress,
                Code::NotFound,
                Code::UnsupportedBody,
            ]),
            conflict(&[Code::LedgerRefused]),
            unprocessable(PAYMENT_CONTEXT),
            unprocessable(ACTIVITY),
            unprocessable(DATA_VALUE),
            CREDENTIALS,
            PIPELINE,
        ],
    ),
    ("get_message", &[NOT_FOUND]),
    (
        "start_message_job",
        &[
            unprocessable(&[
                Code::ChannelNotFound,
                Code::InvalidBody,
                Code::InvalidKey,
                Code::MessageTooLong,
                Code::NoSessionInProgress,
                Code::UnsupportedBody,
            ]),
            CREDENTIALS,
        ],
    ),
    ("get_message_job", &[NOT_FOUND]),
    ("set_messaging_consent", &[NOT_FOUND, unprocessable(&[Code::ChannelNotFound]), CREDENTIALS]),
    // Webhook endpoints (`v1::webhooks`, `crate::webhooks`): an app key's endpoints are its
    // app's, another app's answer 404 like missing ones; 404 also for an `appId` that is not
    // the org's (or, for an app key, not its own).
    (
        "create_webhook_endpoint",
        &[
            NOT_FOUND,
            unprocessable(&[
                Code::InvalidDescription,
                Code::InvalidWebhookUrl,
                Code::TooManyWebhookEndpoints,
                Code::WebhookUrlNotAllowed,
            ]),
            CREDENTIALS,
        ],
    ),
    ("list_webhook_endpoints", &[]),
    ("get_webhook_endpoint", &[NOT_FOUND]),
    (
        "update_webhook_endpoint",
        &[
            NOT_FOUND,
            unprocessable(&[
                Code::InvalidDescription,
                Code::InvalidWebhookUrl,
                Code::WebhookUrlNotAllowed,
            ]),
        ],
    ),
    ("delete_webhook_endpoint", &[NOT_FOUND]),
    ("rotate_webhook_secret", &[NOT_FOUND, unprocessable(&[Code::InvalidOverlap]), CREDENTIALS]),
    ("list_webhook_deliveries", &[NOT_FOUND, bad_request(&[Code::InvalidLimit])]),
    // 404 for the endpoint, or an event that is not the org's (or not the endpoint's app's).
    // An event the caller has none of is a 422 (`unknown_event`): the endpoint exists.
    (
        "redeliver_webhook_events",
        &[NOT_FOUND, unprocessable(&[Code::InvalidRedelivery, Code::UnknownEvent])],
    ),
];

// --- Writing them into the document -------------------------------------------------------

/// Writes every operation's error responses into `document` (an OpenAPI document as JSON),
/// each an `application/problem+json` [`Problem`] whose description names its codes, and adds
/// the `Problem` schema (with the codes') to the components.
///
/// Run it once the document has all its operations (the deprecated copies too). A response
/// the document already has at one of these statuses keeps its own content beside the
/// problem's, unless that content is a problem too (this table replaces it).
pub fn document(document: &mut Value) {
    add_problem_schemas(document);
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for item in paths.values_mut().filter_map(Value::as_object_mut) {
        let shared_parameters = item.get("parameters").cloned().unwrap_or(Value::Null);
        for (method, operation) in item.iter_mut() {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            let answers = answers(method, operation, &shared_parameters);
            let Some(operation) = operation.as_object_mut() else { continue };
            let responses = operation.entry("responses").or_insert_with(|| json!({}));
            let Some(responses) = responses.as_object_mut() else { continue };
            for (status, codes) in &answers {
                write(responses, *status, codes);
            }
            // In status order, whatever order the handler listed its own in.
            let mut sorted: Vec<(String, Value)> = std::mem::take(responses).into_iter().collect();
            sorted.sort_by(|(a, _), (b, _)| a.cmp(b));
            responses.extend(sorted);
        }
    }
}

/// The `Problem` schema and those it refers to (its `code`), unless the document has them: no
/// handler's annotation names it any more.
fn add_problem_schemas(document: &mut Value) {
    let mut schemas = vec![(Problem::name().into_owned(), Problem::schema())];
    Problem::schemas(&mut schemas);
    let Some(root) = document.as_object_mut() else { return };
    let components = root.entry("components").or_insert_with(|| json!({}));
    let Some(components) = components.as_object_mut() else { return };
    let known = components.entry("schemas").or_insert_with(|| json!({}));
    let Some(known) = known.as_object_mut() else { return };
    for (name, schema) in schemas {
        // A schema is plain data: it always serialises.
        if let Ok(schema) = serde_json::to_value(schema) {
            known.entry(name).or_insert(schema);
        }
    }
}

/// Every status an operation may answer with a problem, with its codes in alphabetical order:
/// what its method, parameters and body imply, then its row of [`OPERATIONS`].
fn answers(
    method: &str,
    operation: &Value,
    shared_parameters: &Value,
) -> BTreeMap<StatusCode, Vec<Code>> {
    let mut answers: BTreeMap<StatusCode, Vec<Code>> = BTreeMap::new();
    let mut add = |list: &[Answer]| {
        for (status, codes) in list {
            answers.entry(*status).or_default().extend_from_slice(codes);
        }
    };
    add(EVERY_OPERATION);
    if has_parameters(operation, shared_parameters, "path") {
        add(WITH_PATH_PARAMETERS);
    }
    if has_parameters(operation, shared_parameters, "query") {
        add(WITH_QUERY_PARAMETERS);
    }
    if operation.get("requestBody").is_some() {
        add(WITH_BODY);
    }
    if method == "post" {
        add(POST);
    }
    add(row(operation).unwrap_or_default());
    for codes in answers.values_mut() {
        codes.sort_unstable_by_key(|code| code.as_str());
        codes.dedup();
    }
    answers
}

/// Whether the operation, or its path item, has parameters in `location` (`path`, `query`).
fn has_parameters(operation: &Value, shared_parameters: &Value, location: &str) -> bool {
    [operation.get("parameters"), Some(shared_parameters)]
        .into_iter()
        .flatten()
        .filter_map(Value::as_array)
        .flatten()
        .any(|parameter| parameter.get("in").and_then(Value::as_str) == Some(location))
}

/// The operation's row of [`OPERATIONS`]; a deprecated copy's is its successor's.
fn row(operation: &Value) -> Option<&'static [Answer]> {
    let id = operation.get("operationId").and_then(Value::as_str)?;
    let deprecated = operation.get("deprecated").and_then(Value::as_bool).unwrap_or(false);
    let id = match id.strip_suffix(DEPRECATED_SUFFIX) {
        Some(successor) if deprecated => successor,
        _ => id,
    };
    OPERATIONS.iter().find(|(name, _)| *name == id).map(|(_, answers)| *answers)
}

/// Writes the problem response for `status` into `responses`.
fn write(responses: &mut Map<String, Value>, status: StatusCode, codes: &[Code]) {
    let reference = format!("#/components/schemas/{}", Problem::name());
    let description = description(status, codes);
    let response = responses.entry(status.as_str()).or_insert_with(|| json!({}));
    let Some(response) = response.as_object_mut() else { return };
    let is_problem = |media: &Value| {
        media.pointer("/schema/$ref").and_then(Value::as_str) == Some(reference.as_str())
    };
    let mut content = match response.remove("content") {
        Some(Value::Object(content)) => content,
        _ => Map::new(),
    };
    content.retain(|_, media| !is_problem(media));
    let description = match response.get("description").and_then(Value::as_str) {
        // Another answer with this status (a JSON body, say) stays beside the problem.
        Some(theirs) if !content.is_empty() => format!("{theirs} Or a problem: {description}"),
        _ => description,
    };
    content.insert(PROBLEM_JSON.to_owned(), json!({ "schema": { "$ref": reference } }));
    response.insert("description".to_owned(), Value::String(description));
    response.insert("content".to_owned(), Value::Object(content));
    if status == StatusCode::SERVICE_UNAVAILABLE {
        // `ApiError::into_response` sets it on every 503.
        let headers = response.entry("headers").or_insert_with(|| json!({}));
        if let Some(headers) = headers.as_object_mut() {
            headers.insert(
                "Retry-After".to_owned(),
                json!({
                    "description": "Seconds to wait before retrying.",
                    "schema": { "type": "integer" },
                }),
            );
        }
    }
}

/// "Not found. Problem codes: `not_found`.": the status in a few words, then its codes (the
/// `Code` schema says what each means).
fn description(status: StatusCode, codes: &[Code]) -> String {
    let codes: Vec<String> = codes.iter().map(|code| format!("`{code}`")).collect();
    format!("{}. Problem codes: {}.", summary(status), codes.join(", "))
}

/// A status in a few words, for a reader of the document.
fn summary(status: StatusCode) -> &'static str {
    match status {
        StatusCode::BAD_REQUEST => "The request is malformed",
        StatusCode::UNAUTHORIZED => "No valid API key",
        StatusCode::FORBIDDEN => "Not for this kind of key",
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::CONFLICT => "In conflict with what is there",
        StatusCode::PAYLOAD_TOO_LARGE => "The body is too large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "The body is not sent as JSON",
        StatusCode::UNPROCESSABLE_ENTITY => "Well-formed, but cannot be done as asked",
        StatusCode::FAILED_DEPENDENCY => "The provider could not be reached",
        StatusCode::INTERNAL_SERVER_ERROR => "Failed on the server's side",
        StatusCode::SERVICE_UNAVAILABLE => "Unavailable for now: retry after Retry-After seconds",
        other => other.canonical_reason().unwrap_or("Failed"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::{Value, json};

    use super::OPERATIONS;
    use crate::code::Code;

    /// Every operation of the document: its path, method and operation.
    fn operations(document: &Value) -> Vec<(String, String, Value)> {
        let paths = document["paths"].as_object().cloned().unwrap_or_default();
        let mut found = Vec::new();
        for (path, item) in paths {
            for (method, operation) in item.as_object().cloned().unwrap_or_default() {
                if super::METHODS.contains(&method.as_str()) {
                    found.push((path.clone(), method, operation));
                }
            }
        }
        assert!(found.len() > 40, "the document's operations were not found: {document}");
        found
    }

    /// The codes between backticks in a description.
    fn named_codes(description: &str) -> Vec<&str> {
        description.split('`').skip(1).step_by(2).collect()
    }

    /// The codes of the problem an operation answers with `status`.
    fn codes(operation: &Value, status: &str) -> Vec<String> {
        let response = &operation["responses"][status];
        assert!(
            response["content"][super::PROBLEM_JSON].is_object(),
            "{} answers no problem with {status}: {response}",
            operation["operationId"]
        );
        let description = response["description"].as_str().unwrap_or_default();
        named_codes(description).into_iter().map(str::to_owned).collect()
    }

    #[test]
    fn every_operation_has_a_row_and_every_row_an_operation() {
        let (_, document) = super::super::routes();
        let operations = operations(&document);
        let mut ids = BTreeSet::new();
        for (path, method, operation) in &operations {
            let id = operation["operationId"].as_str().unwrap_or_default();
            assert!(super::row(operation).is_some(), "{method} {path} ({id}) has no row");
            ids.insert(id.to_owned());
        }
        let mut rows = BTreeSet::new();
        for (id, answers) in OPERATIONS {
            assert!(rows.insert(*id), "{id} has two rows");
            assert!(ids.contains(*id), "{id} has a row but is not in the document");
            for (status, codes) in *answers {
                assert!(status.is_client_error() || status.is_server_error(), "{id}: {status}");
                assert!(!codes.is_empty(), "{id}: {status} without codes");
            }
        }
    }

    #[test]
    fn every_problem_response_names_its_codes_and_they_exist() {
        let (_, document) = super::super::routes();
        let reference = json!("#/components/schemas/Problem");
        let mut problems = 0;
        for (path, method, operation) in operations(&document) {
            for (status, response) in
                operation["responses"].as_object().cloned().unwrap_or_default()
            {
                let content = response["content"].as_object().cloned().unwrap_or_default();
                assert!(
                    content
                        .get("application/json")
                        .is_none_or(|json| json["schema"]["$ref"] != reference),
                    "{method} {path} {status}: a problem sent as application/json"
                );
                let Some(problem) = content.get(super::PROBLEM_JSON) else { continue };
                assert_eq!(problem["schema"]["$ref"], reference, "{method} {path} {status}");
                problems += 1;
                let description = response["description"].as_str().unwrap_or_default();
                let named = named_codes(description);
                assert!(!named.is_empty(), "{method} {path} {status} names no code: {description}");
                for code in named {
                    assert!(
                        Code::ALL.iter().any(|known| known.as_str() == code),
                        "{method} {path} {status}: `{code}` is no code"
                    );
                }
            }
        }
        assert!(problems > 0);
        assert!(document["components"]["schemas"]["Problem"].is_object());
    }

    #[test]
    fn every_operation_answers_the_errors_its_shape_implies() {
        let (_, document) = super::super::routes();
        for (path, method, operation) in operations(&document) {
            let has = |status: &str, code: Code| {
                let codes = codes(&operation, status);
                assert!(
                    codes.iter().any(|c| c == code.as_str()),
                    "{method} {path} {status} lacks `{code}`: {codes:?}"
                );
            };
            has("401", Code::Unauthorized);
            has("500", Code::InternalError);
            has("503", Code::Unavailable);
            has("503", Code::Timeout);
            let parameters = operation["parameters"].as_array().cloned().unwrap_or_default();
            if parameters.iter().any(|p| p["in"] == "path") {
                has("400", Code::InvalidPath);
            }
            if parameters.iter().any(|p| p["in"] == "query") {
                has("400", Code::InvalidQuery);
            }
            if operation["requestBody"].is_object() {
                has("400", Code::MalformedJson);
                has("413", Code::BodyTooLarge);
                has("415", Code::UnsupportedMediaType);
                has("422", Code::InvalidBody);
            }
            if method == "post" {
                has("400", Code::InvalidIdempotencyKey);
                has("409", Code::IdempotencyRequestInProgress);
                has("413", Code::BodyTooLarge);
                has("422", Code::IdempotencyKeyReused);
            }
            // `/v1` limits no rate: only the providers' callbacks do, outside it.
            assert!(operation["responses"]["429"].is_null(), "{method} {path} documents 429");
        }
    }

    #[test]
    fn a_deprecated_copy_answers_as_its_successor() {
        let (_, document) = super::super::routes();
        let successor = &document["paths"]["/v1/payment-channels/{channel_id}/c2b-registration"]["post"]
            ["responses"];
        let copy =
            &document["paths"]["/v1/channels/{channel_id}/c2b-registration"]["post"]["responses"];
        assert!(successor["424"].is_object(), "{successor}");
        assert_eq!(copy, successor);
    }

    /// A payment not made or a transfer the ledger refuses is a 409 problem, and no 409 or
    /// 422 is anything else (generated clients read one body per status).
    #[test]
    fn refusals_are_409_problems() {
        let (_, document) = super::super::routes();
        for (path, id, refusal) in [
            ("/v1/payments", "create_payment", "payment_failed"),
            ("/v1/transfers", "create_transfer", "ledger_refused"),
        ] {
            let operation = &document["paths"][path]["post"];
            assert_eq!(operation["operationId"], id);
            let codes = codes(operation, "409");
            assert!(codes.iter().any(|code| code == refusal), "{id}: {codes:?}");
            for status in ["409", "422"] {
                let content = operation["responses"][status]["content"].as_object().unwrap();
                assert_eq!(content.keys().collect::<Vec<_>>(), [super::PROBLEM_JSON], "{id}");
            }
        }
    }

    #[test]
    fn the_handlers_annotations_leave_problems_to_the_table() {
        for (file, source) in [
            ("customers.rs", include_str!("customers.rs")),
            ("finance.rs", include_str!("finance.rs")),
            ("money.rs", include_str!("money.rs")),
            ("payment_channels.rs", include_str!("payment_channels.rs")),
            ("payments.rs", include_str!("payments.rs")),
            ("tenancy.rs", include_str!("tenancy.rs")),
        ] {
            for written in ["body = Problem", "(Problem ="] {
                assert!(!source.contains(written), "{file} lists a problem response: {written}");
            }
        }
    }

    /// A response the handler documents at a status the table has keeps its content.
    #[test]
    fn another_answer_at_a_problem_status_stays_beside_it() {
        let mut document = json!({ "paths": { "/v1/things": { "post": {
            "operationId": "create_thing",
            "responses": {
                "422": {
                    "description": "Not made.",
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Thing" } } },
                },
                "201": { "description": "Made." },
            },
        } } } });
        super::document(&mut document);
        let responses = &document["paths"]["/v1/things"]["post"]["responses"];
        let statuses: Vec<&String> = responses.as_object().unwrap().keys().collect();
        assert_eq!(statuses, ["201", "400", "401", "403", "409", "413", "422", "500", "503"]);
        let unprocessable = &responses["422"];
        assert_eq!(
            unprocessable["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Thing"
        );
        assert!(unprocessable["content"][super::PROBLEM_JSON].is_object());
        let description = unprocessable["description"].as_str().unwrap();
        assert!(description.starts_with("Not made. "), "{description}");
        assert_eq!(named_codes(description), ["idempotency_key_reused"]);
        assert!(responses["503"]["headers"]["Retry-After"].is_object());
        assert!(document["components"]["schemas"]["Problem"].is_object());
    }
}

//! The OpenAPI links of every `/v1` operation, in one table ([`LINKS`]): from what an
//! operation answers to the operations on what it names (the purse just made, the customer
//! found), written into the document's success responses by [`document`].
//!
//! A reader follows them from a created resource to what can be done with it; the fuzzer's
//! stateful phase follows them to call those operations with ids the server made, instead of
//! random ones that only ever answer 404.

use std::collections::BTreeSet;

use serde_json::{Map, Value, json};

/// A link from the responses of one operation to another operation.
struct Link {
    /// The `operationId` of the operation whose responses carry the link.
    source: &'static str,
    /// The success statuses of the source whose responses carry it.
    statuses: &'static [&'static str],
    /// The link's name in the response's `links`: what it does, in upper camel case (`GetPurse`).
    name: &'static str,
    /// The `operationId` of the operation it leads to.
    target: &'static str,
    /// Each path parameter of the target with the runtime expression that gives its value:
    /// `$response.body#/…` (a JSON pointer into the source's response), `$request.path.…`
    /// or `$request.body#/…` (the source's request).
    parameters: &'static [(&'static str, &'static str)],
    description: &'static str,
}

/// What `payment_channels::document_deprecated_routes` appends to the `operationId` of a
/// deprecated copy (as `errors.rs` reads it too).
const DEPRECATED_SUFFIX: &str = "_deprecated";

/// The HTTP methods an OpenAPI path item holds operations under.
const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

const OK: &[&str] = &["200"];
const CREATED: &[&str] = &["201"];
/// `create_or_resolve_customer` answers 200 for a customer it found, 201 for one it made;
/// `update_reminder` 200 for a reminder it replaced, 201 for a new one.
const FOUND_OR_CREATED: &[&str] = &["200", "201"];

/// The customer the response names.
const CUSTOMER_IN_BODY: &[(&str, &str)] = &[("customer_id", "$response.body#/customerId")];
/// The customer in the source's own path.
const CUSTOMER_IN_PATH: &[(&str, &str)] = &[("customer_id", "$request.path.customer_id")];

/// Every link, grouped by source. Not linked on purpose: `delete_metadata`, whose key is a
/// name in a map that no JSON pointer can pick without knowing it (the test
/// `every_operation_on_an_identified_resource_is_reachable` lists it); `list_keys` to
/// `revoke_key`, whose first key may be the caller's own; `create_app` to `create_key`, since
/// a key needs no app (an org key names none) and naming one would take a `requestBody` link,
/// which OpenAPI defines as the whole body, not one field of it; and `create_payment`'s `202`
/// to `get_transfer`, since a payment still `queued` has not reserved its transfer yet.
const LINKS: &[Link] = &[
    // --- Reconciliation: imports, exceptions, stuck payments -------------------------------
    Link {
        source: "create_statement_import",
        statuses: FOUND_OR_CREATED,
        name: "GetStatementImport",
        target: "get_statement_import",
        parameters: &[("import_id", "$response.body#/importId")],
        description: "The import just made (or the earlier import of the same file).",
    },
    Link {
        source: "list_reconciliation_exceptions",
        statuses: OK,
        name: "GetReconciliationException",
        target: "get_reconciliation_exception",
        parameters: &[("exception_id", "$response.body#/exceptions/0/exceptionId")],
        description: "The first exception listed.",
    },
    Link {
        source: "get_reconciliation_exception",
        statuses: OK,
        name: "AssignReconciliationException",
        target: "assign_reconciliation_exception",
        parameters: &[("exception_id", "$request.path.exception_id")],
        description: "Give the exception an owner and a note.",
    },
    Link {
        source: "get_reconciliation_exception",
        statuses: OK,
        name: "ResolveReconciliationException",
        target: "resolve_reconciliation_exception",
        parameters: &[("exception_id", "$request.path.exception_id")],
        description: "Resolve the exception.",
    },
    Link {
        source: "list_stuck_payments",
        statuses: OK,
        name: "SettleStuckPayment",
        target: "settle_stuck_payment",
        parameters: &[("transaction_id", "$response.body#/payments/0/transactionId")],
        description: "Settle the oldest stuck payment by hand.",
    },
    // --- Purses: a purse is an account of the ledger, under the same id --------------------
    Link {
        source: "create_purse",
        statuses: CREATED,
        name: "GetPurse",
        target: "get_purse",
        parameters: &[("purse_id", "$response.body#/purseId")],
        description: "The purse just made.",
    },
    Link {
        source: "create_purse",
        statuses: CREATED,
        name: "GetAccount",
        target: "get_account",
        parameters: &[("account_id", "$response.body#/purseId")],
        description: "The purse as a ledger account: its id is the account's.",
    },
    Link {
        source: "create_purse",
        statuses: CREATED,
        name: "GetAccountStatement",
        target: "get_account_statement",
        parameters: &[("account_id", "$response.body#/purseId")],
        description: "The purse's statement: its id is the account's.",
    },
    Link {
        source: "list_purses",
        statuses: OK,
        name: "GetPurse",
        target: "get_purse",
        parameters: &[("purse_id", "$response.body#/purses/0/purseId")],
        description: "The first purse of the page.",
    },
    // --- Wallets ---------------------------------------------------------------------------
    Link {
        source: "create_wallet",
        statuses: CREATED,
        name: "GetWallet",
        target: "get_wallet",
        parameters: &[
            ("customer_id", "$response.body#/customerId"),
            ("wallet_id", "$response.body#/walletId"),
        ],
        description: "The wallet just made.",
    },
    Link {
        source: "create_wallet",
        statuses: CREATED,
        name: "GetAccount",
        target: "get_account",
        parameters: &[("account_id", "$response.body#/accountId")],
        description: "The wallet's ledger account.",
    },
    Link {
        source: "create_wallet",
        statuses: CREATED,
        name: "GetAccountStatement",
        target: "get_account_statement",
        parameters: &[("account_id", "$response.body#/accountId")],
        description: "The statement of the wallet's ledger account.",
    },
    Link {
        source: "create_wallet",
        statuses: CREATED,
        name: "GetCustomer",
        target: "get_customer",
        parameters: CUSTOMER_IN_BODY,
        description: "The customer whose wallet it is.",
    },
    Link {
        source: "list_wallets",
        statuses: OK,
        name: "GetWallet",
        target: "get_wallet",
        parameters: &[
            ("customer_id", "$request.path.customer_id"),
            ("wallet_id", "$response.body#/wallets/0/walletId"),
        ],
        description: "The customer's first wallet.",
    },
    // --- Customers: every operation on a customer that needs only its id -------------------
    Link {
        source: "create_or_resolve_customer",
        statuses: FOUND_OR_CREATED,
        name: "GetCustomer",
        target: "get_customer",
        parameters: CUSTOMER_IN_BODY,
        description: "What the org knows about the customer.",
    },
    Link {
        source: "create_or_resolve_customer",
        statuses: FOUND_OR_CREATED,
        name: "GetCustomerTimeline",
        target: "get_customer_timeline",
        parameters: CUSTOMER_IN_BODY,
        description: "The customer's activities and payments, newest first.",
    },
    Link {
        source: "create_or_resolve_customer",
        statuses: FOUND_OR_CREATED,
        name: "ListWallets",
        target: "list_wallets",
        parameters: CUSTOMER_IN_BODY,
        description: "The customer's wallets.",
    },
    Link {
        source: "create_or_resolve_customer",
        statuses: FOUND_OR_CREATED,
        name: "CreateWallet",
        target: "create_wallet",
        parameters: CUSTOMER_IN_BODY,
        description: "Makes the customer a wallet.",
    },
    Link {
        source: "create_or_resolve_customer",
        statuses: FOUND_OR_CREATED,
        name: "AddCustomerNumber",
        target: "add_customer_number",
        parameters: CUSTOMER_IN_BODY,
        description: "Gives the customer another number.",
    },
    Link {
        source: "create_or_resolve_customer",
        statuses: FOUND_OR_CREATED,
        name: "DeleteCustomerNumber",
        target: "delete_customer_number",
        parameters: CUSTOMER_IN_BODY,
        description: "Takes a number from the customer (named by its query parameters).",
    },
    Link {
        source: "create_or_resolve_customer",
        statuses: FOUND_OR_CREATED,
        name: "AdoptCustomer",
        target: "adopt_customer",
        parameters: CUSTOMER_IN_BODY,
        description: "The customer adopts another's state.",
    },
    Link {
        source: "create_or_resolve_customer",
        statuses: FOUND_OR_CREATED,
        name: "UpdateTags",
        target: "update_tags",
        parameters: CUSTOMER_IN_BODY,
        description: "Sets the customer's tags.",
    },
    Link {
        source: "create_or_resolve_customer",
        statuses: FOUND_OR_CREATED,
        name: "UpdateSecondaryIds",
        target: "update_secondary_ids",
        parameters: CUSTOMER_IN_BODY,
        description: "Sets the customer's secondary ids.",
    },
    Link {
        source: "create_or_resolve_customer",
        statuses: FOUND_OR_CREATED,
        name: "UpdateMetadata",
        target: "update_metadata",
        parameters: CUSTOMER_IN_BODY,
        description: "Sets the customer's metadata.",
    },
    Link {
        source: "create_or_resolve_customer",
        statuses: FOUND_OR_CREATED,
        name: "UpdateAppData",
        target: "update_app_data",
        parameters: CUSTOMER_IN_BODY,
        description: "Sets the calling app's data for the customer.",
    },
    Link {
        source: "create_or_resolve_customer",
        statuses: FOUND_OR_CREATED,
        name: "DeleteAppData",
        target: "delete_app_data",
        parameters: CUSTOMER_IN_BODY,
        description: "Removes the calling app's data for the customer.",
    },
    Link {
        source: "create_or_resolve_customer",
        statuses: FOUND_OR_CREATED,
        name: "LeaseAppData",
        target: "lease_app_data",
        parameters: CUSTOMER_IN_BODY,
        description: "Leases the calling app's data for the customer.",
    },
    Link {
        source: "create_or_resolve_customer",
        statuses: FOUND_OR_CREATED,
        name: "ListReminders",
        target: "list_reminders",
        parameters: CUSTOMER_IN_BODY,
        description: "The calling app's reminders for the customer.",
    },
    Link {
        source: "create_or_resolve_customer",
        statuses: FOUND_OR_CREATED,
        name: "CreateActivity",
        target: "create_activity",
        parameters: CUSTOMER_IN_BODY,
        description: "Records an activity of the customer.",
    },
    // --- What a customer has, by the first of each kind ------------------------------------
    Link {
        source: "get_customer",
        statuses: OK,
        name: "GetWallet",
        target: "get_wallet",
        parameters: &[
            ("customer_id", "$response.body#/customerId"),
            ("wallet_id", "$response.body#/wallets/0/walletId"),
        ],
        description: "The customer's first wallet.",
    },
    Link {
        source: "get_customer",
        statuses: OK,
        name: "DeleteTag",
        target: "delete_tag",
        parameters: &[
            ("customer_id", "$response.body#/customerId"),
            ("key", "$response.body#/tags/0/key"),
        ],
        description: "Removes the customer's first tag.",
    },
    Link {
        source: "get_customer",
        statuses: OK,
        name: "DeleteSecondaryId",
        target: "delete_secondary_id",
        parameters: &[
            ("customer_id", "$response.body#/customerId"),
            ("key", "$response.body#/secondaryIds/0/key"),
            ("value", "$response.body#/secondaryIds/0/value"),
        ],
        description: "Removes the customer's first secondary id.",
    },
    Link {
        source: "get_customer",
        statuses: OK,
        name: "UpdateReminder",
        target: "update_reminder",
        parameters: &[
            ("customer_id", "$response.body#/customerId"),
            ("key", "$response.body#/reminders/0/key"),
        ],
        description: "Replaces the calling app's first reminder for the customer.",
    },
    Link {
        source: "update_tags",
        statuses: OK,
        name: "DeleteTag",
        target: "delete_tag",
        parameters: &[
            ("customer_id", "$request.path.customer_id"),
            ("key", "$response.body#/tags/0/key"),
        ],
        description: "Removes the first of the customer's tags.",
    },
    Link {
        source: "update_secondary_ids",
        statuses: OK,
        name: "DeleteSecondaryId",
        target: "delete_secondary_id",
        parameters: &[
            ("customer_id", "$request.path.customer_id"),
            ("key", "$response.body#/secondaryIds/0/key"),
            ("value", "$response.body#/secondaryIds/0/value"),
        ],
        description: "Removes the first of the customer's secondary ids.",
    },
    Link {
        source: "update_reminder",
        statuses: FOUND_OR_CREATED,
        name: "DeleteReminder",
        target: "delete_reminder",
        parameters: &[("customer_id", "$request.path.customer_id"), ("key", "$response.body#/key")],
        description: "Removes the reminder just set.",
    },
    Link {
        source: "list_reminders",
        statuses: OK,
        name: "UpdateReminder",
        target: "update_reminder",
        parameters: &[
            ("customer_id", "$request.path.customer_id"),
            ("key", "$response.body#/reminders/0/key"),
        ],
        description: "Replaces the first reminder.",
    },
    Link {
        source: "list_reminders",
        statuses: OK,
        name: "DeleteReminder",
        target: "delete_reminder",
        parameters: &[
            ("customer_id", "$request.path.customer_id"),
            ("key", "$response.body#/reminders/0/key"),
        ],
        description: "Removes the first reminder.",
    },
    Link {
        source: "create_activity",
        statuses: CREATED,
        name: "GetCustomerTimeline",
        target: "get_customer_timeline",
        parameters: CUSTOMER_IN_PATH,
        description: "The customer's timeline, where the activity now is.",
    },
    // --- Payments: one settled in the ledger is the transfer under its id ------------------
    Link {
        source: "create_payment",
        statuses: &["201", "202"],
        name: "GetPayment",
        target: "get_payment",
        parameters: &[("transaction_id", "$response.body#/transactionId")],
        description: "The payment just made or sent.",
    },
    Link {
        source: "create_payment",
        statuses: CREATED,
        name: "GetTransfer",
        target: "get_transfer",
        parameters: &[("transfer_id", "$response.body#/transactionId")],
        description: "The ledger's transfer of the payment, under the payment's id.",
    },
    Link {
        source: "create_payment",
        statuses: &["202"],
        name: "GetPaymentChannel",
        target: "get_payment_channel",
        parameters: &[("channel_id", "$response.body#/channelId")],
        description: "The payment channel the payment went through (org key).",
    },
    // --- Transfers and accounts ------------------------------------------------------------
    Link {
        source: "create_transfer",
        statuses: CREATED,
        name: "GetTransfer",
        target: "get_transfer",
        parameters: &[("transfer_id", "$response.body#/transferId")],
        description: "The transfer just applied.",
    },
    Link {
        source: "create_transfer_batch",
        statuses: OK,
        name: "GetTransfer",
        target: "get_transfer",
        parameters: &[("transfer_id", "$response.body#/outcomes/0/transferId")],
        description: "The batch's first transfer (a rejected one is recorded too).",
    },
    Link {
        source: "get_transfer",
        statuses: OK,
        name: "GetAccount",
        target: "get_account",
        parameters: &[("account_id", "$response.body#/legs/0/accountId")],
        description: "The account of the transfer's first leg.",
    },
    Link {
        source: "get_account",
        statuses: OK,
        name: "GetAccountStatement",
        target: "get_account_statement",
        parameters: &[("account_id", "$response.body#/accountId")],
        description: "The account's statement.",
    },
    Link {
        source: "get_account_statement",
        statuses: OK,
        name: "GetTransfer",
        target: "get_transfer",
        parameters: &[("transfer_id", "$response.body#/lines/0/transferId")],
        description: "The transfer of the statement's first line.",
    },
    Link {
        source: "get_income_statement",
        statuses: OK,
        name: "GetAccount",
        target: "get_account",
        parameters: &[("account_id", "$response.body#/lines/0/accountId")],
        description: "The revenue or expense account of the statement's first line.",
    },
    // --- Payment channels (their deprecated copies link to each other: see `document`) -----
    Link {
        source: "create_payment_channel",
        statuses: CREATED,
        name: "GetPaymentChannel",
        target: "get_payment_channel",
        parameters: &[("channel_id", "$response.body#/channelId")],
        description: "The channel just made.",
    },
    Link {
        source: "create_payment_channel",
        statuses: CREATED,
        name: "SetTreasuryLimit",
        target: "set_treasury_limit",
        parameters: &[("channel_id", "$response.body#/channelId")],
        description: "Sets the channel's treasury limit.",
    },
    Link {
        source: "create_payment_channel",
        statuses: CREATED,
        name: "CutBankFile",
        target: "cut_bank_file",
        parameters: &[("channel_id", "$response.body#/channelId")],
        description: "A bank channel: cuts a pain.001 file of its queued payouts now.",
    },
    Link {
        source: "create_payment_channel",
        statuses: CREATED,
        name: "ListBankFiles",
        target: "list_bank_files",
        parameters: &[("channel_id", "$response.body#/channelId")],
        description: "A bank channel: its pain.001 files and how their payments stand.",
    },
    Link {
        source: "create_payment_channel",
        statuses: CREATED,
        name: "RegisterC2bUrls",
        target: "register_c2b_urls",
        parameters: &[("channel_id", "$response.body#/channelId")],
        description: "Registers the channel's C2B callback URLs with the provider.",
    },
    Link {
        source: "create_payment_channel",
        statuses: CREATED,
        name: "GetAccount",
        target: "get_account",
        parameters: &[("account_id", "$response.body#/clearingAccountId")],
        description: "The channel's clearing account: what the provider holds for the org.",
    },
    Link {
        source: "create_payment_channel",
        statuses: CREATED,
        name: "GetAccountStatement",
        target: "get_account_statement",
        parameters: &[("account_id", "$response.body#/clearingAccountId")],
        description: "The statement of the channel's clearing account.",
    },
    Link {
        source: "list_payment_channels",
        statuses: OK,
        name: "GetPaymentChannel",
        target: "get_payment_channel",
        parameters: &[("channel_id", "$response.body#/channels/0/channelId")],
        description: "The first channel.",
    },
    // --- Keys ------------------------------------------------------------------------------
    Link {
        source: "create_key",
        statuses: CREATED,
        name: "RevokeKey",
        target: "revoke_key",
        parameters: &[("key_id", "$response.body#/keyId")],
        description: "Revokes the key just made.",
    },
    // --- Webhook endpoints -----------------------------------------------------------------
    Link {
        source: "create_webhook_endpoint",
        statuses: CREATED,
        name: "GetWebhookEndpoint",
        target: "get_webhook_endpoint",
        parameters: &[("endpoint_id", "$response.body#/endpointId")],
        description: "The endpoint just made.",
    },
    Link {
        source: "create_webhook_endpoint",
        statuses: CREATED,
        name: "UpdateWebhookEndpoint",
        target: "update_webhook_endpoint",
        parameters: &[("endpoint_id", "$response.body#/endpointId")],
        description: "Changes the endpoint.",
    },
    Link {
        source: "create_webhook_endpoint",
        statuses: CREATED,
        name: "DeleteWebhookEndpoint",
        target: "delete_webhook_endpoint",
        parameters: &[("endpoint_id", "$response.body#/endpointId")],
        description: "Deletes the endpoint.",
    },
    Link {
        source: "create_webhook_endpoint",
        statuses: CREATED,
        name: "RotateWebhookSecret",
        target: "rotate_webhook_secret",
        parameters: &[("endpoint_id", "$response.body#/endpointId")],
        description: "Rotates the endpoint's signing secret.",
    },
    Link {
        source: "create_webhook_endpoint",
        statuses: CREATED,
        name: "ListWebhookDeliveries",
        target: "list_webhook_deliveries",
        parameters: &[("endpoint_id", "$response.body#/endpointId")],
        description: "The endpoint's delivery log.",
    },
    Link {
        source: "create_webhook_endpoint",
        statuses: CREATED,
        name: "RedeliverWebhookEvents",
        target: "redeliver_webhook_events",
        parameters: &[("endpoint_id", "$response.body#/endpointId")],
        description: "Delivers events to the endpoint again.",
    },
];

/// Writes [`LINKS`] into the `links` of their sources' responses. A deprecated copy of an
/// operation (`payment_channels::document_deprecated_routes`) takes its successor's links,
/// each to the deprecated copy of its target where there is one: a client of the old paths
/// stays on them, and the fuzzer reaches the copies, which are still served, with real ids.
pub fn document(document: &mut Value) {
    let ids = operation_ids(document);
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else { return };
    let operations = paths
        .values_mut()
        .filter_map(Value::as_object_mut)
        .flat_map(|item| item.iter_mut())
        .filter(|(method, _)| METHODS.contains(&method.as_str()))
        .filter_map(|(_, operation)| operation.as_object_mut());
    for operation in operations {
        let Some(id) = operation.get("operationId").and_then(Value::as_str) else { continue };
        let deprecated = operation.get("deprecated").and_then(Value::as_bool).unwrap_or(false);
        let (source, is_copy) = match id.strip_suffix(DEPRECATED_SUFFIX) {
            Some(successor) if deprecated => (successor.to_owned(), true),
            _ => (id.to_owned(), false),
        };
        let Some(responses) = operation.get_mut("responses").and_then(Value::as_object_mut) else {
            continue;
        };
        for link in LINKS.iter().filter(|link| link.source == source) {
            let target = match format!("{}{DEPRECATED_SUFFIX}", link.target) {
                copy if is_copy && ids.contains(&copy) => copy,
                _ => link.target.to_owned(),
            };
            for status in link.statuses {
                let Some(response) = responses.get_mut(*status).and_then(Value::as_object_mut)
                else {
                    continue;
                };
                let links = response.entry("links").or_insert_with(|| json!({}));
                let Some(links) = links.as_object_mut() else { continue };
                links.insert(link.name.to_owned(), written(link, &target));
            }
        }
    }
}

/// A link as OpenAPI 3.1 writes it, to `target`.
fn written(link: &Link, target: &str) -> Value {
    let parameters: Map<String, Value> = link
        .parameters
        .iter()
        .map(|(name, expression)| ((*name).to_owned(), Value::String((*expression).to_owned())))
        .collect();
    json!({
        "operationId": target,
        "parameters": parameters,
        "description": link.description,
    })
}

/// The `operationId` of every operation of the document.
fn operation_ids(document: &Value) -> BTreeSet<String> {
    let paths = document.get("paths").and_then(Value::as_object);
    paths
        .into_iter()
        .flat_map(|paths| paths.values())
        .filter_map(Value::as_object)
        .flat_map(|item| item.iter())
        .filter(|(method, _)| METHODS.contains(&method.as_str()))
        .filter_map(|(_, operation)| operation.get("operationId").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use serde_json::{Value, json};

    use super::LINKS;

    /// The path parameters of an operation on a resource the server identifies: each such
    /// operation is the target of a link, so that the fuzzer reaches it with a real id.
    const IDENTIFYING: [&str; 8] = [
        "customer_id",
        "purse_id",
        "wallet_id",
        "account_id",
        "transaction_id",
        "transfer_id",
        "channel_id",
        "endpoint_id",
    ];

    /// The operations with an identifying path parameter that no link leads to, and why.
    const UNLINKED: &[(&str, &str)] = &[(
        "delete_metadata",
        "its `key` is a name in the customer's metadata map, which no JSON pointer picks \
         without knowing it (and removing a key that is not there answers as removing one)",
    )];

    /// Every operation of the document by `operationId`, with the parameters its path item
    /// shares added to its own.
    fn operations(document: &Value) -> BTreeMap<String, Value> {
        let mut found = BTreeMap::new();
        for item in document["paths"].as_object().into_iter().flat_map(|paths| paths.values()) {
            let shared = item["parameters"].as_array().cloned().unwrap_or_default();
            for (method, operation) in item.as_object().into_iter().flatten() {
                if !super::METHODS.contains(&method.as_str()) {
                    continue;
                }
                let mut operation = operation.clone();
                let mut parameters =
                    operation["parameters"].as_array().cloned().unwrap_or_default();
                parameters.extend(shared.iter().cloned());
                operation["parameters"] = Value::Array(parameters);
                let id = operation["operationId"].as_str().unwrap_or_default().to_owned();
                assert!(found.insert(id.clone(), operation).is_none(), "{id} is twice");
            }
        }
        assert!(found.len() > 40, "the document's operations were not found: {document}");
        found
    }

    /// An operation's path parameters by name, with their schemas.
    fn path_parameters(operation: &Value) -> BTreeMap<String, Value> {
        let parameters = operation["parameters"].as_array().into_iter().flatten();
        parameters
            .filter(|parameter| parameter["in"] == "path")
            .map(|parameter| {
                (
                    parameter["name"].as_str().unwrap_or_default().to_owned(),
                    parameter["schema"].clone(),
                )
            })
            .collect()
    }

    /// The schema a `$ref` names (through any number of them), or the schema itself.
    fn resolve<'a>(document: &'a Value, mut schema: &'a Value) -> &'a Value {
        while let Some(reference) = schema["$ref"].as_str() {
            let name = reference.strip_prefix("#/components/schemas/").unwrap_or(reference);
            schema = &document["components"]["schemas"][name];
            assert!(schema.is_object(), "{reference} names no schema");
        }
        schema
    }

    /// Whether a schema's `type` is, or includes, `kind`.
    fn has_type(schema: &Value, kind: &str) -> bool {
        schema["type"] == kind
            || schema["type"].as_array().is_some_and(|kinds| kinds.iter().any(|k| k == kind))
    }

    /// The schema of `token` (a property, or an array's item) in `schema`: a property of the
    /// schema, of any member of its `allOf`, or of every member of its `oneOf` or `anyOf`
    /// that is not `null` (a value of the union has it whichever member it is).
    fn step<'a>(document: &'a Value, schema: &'a Value, token: &str) -> Option<&'a Value> {
        let schema = resolve(document, schema);
        if let Some(property) = schema["properties"].get(token) {
            return Some(property);
        }
        if token.parse::<usize>().is_ok() && has_type(schema, "array") {
            return schema.get("items");
        }
        let mut all = schema["allOf"].as_array().into_iter().flatten();
        if let Some(property) = all.find_map(|member| step(document, member, token)) {
            return Some(property);
        }
        for union in ["oneOf", "anyOf"] {
            let members: Vec<&Value> = schema[union]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|member| member["type"] != "null")
                .collect();
            let found: Option<Vec<&Value>> =
                members.iter().map(|member| step(document, member, token)).collect();
            if let Some(found) = found.filter(|found| !found.is_empty()) {
                return found.first().copied();
            }
        }
        None
    }

    /// The schema at a JSON pointer (`/purses/0/purseId`) into a value of `schema`.
    fn at_pointer<'a>(
        document: &'a Value,
        schema: &'a Value,
        pointer: &str,
    ) -> Result<&'a Value, String> {
        let Some(tokens) = pointer.strip_prefix('/') else {
            return Err(format!("{pointer} is no JSON pointer to a member"));
        };
        tokens.split('/').try_fold(schema, |schema, token| {
            let token = token.replace("~1", "/").replace("~0", "~");
            step(document, schema, &token)
                .ok_or_else(|| format!("{pointer}: no `{token}` in {}", resolve(document, schema)))
        })
    }

    /// The schema of the value a runtime expression takes when `source` answers `status`.
    fn expression_schema(
        document: &Value,
        source: &Value,
        status: &str,
        expression: &str,
    ) -> Result<Value, String> {
        let json = |content: &Value| content["content"]["application/json"]["schema"].clone();
        if let Some(pointer) = expression.strip_prefix("$response.body#") {
            let schema = json(&source["responses"][status]);
            return at_pointer(document, &schema, pointer).cloned();
        }
        if let Some(pointer) = expression.strip_prefix("$request.body#") {
            let schema = json(&source["requestBody"]);
            return at_pointer(document, &schema, pointer).cloned();
        }
        if let Some(name) = expression.strip_prefix("$request.path.") {
            return path_parameters(source)
                .remove(name)
                .ok_or_else(|| format!("the source has no path parameter {name}"));
        }
        Err(format!("{expression} is not an expression these links use"))
    }

    /// A schema's types without `null`, and its format.
    fn kind(document: &Value, schema: &Value) -> (Vec<String>, Option<String>) {
        let schema = resolve(document, schema);
        let types = match &schema["type"] {
            Value::String(kind) => vec![kind.clone()],
            Value::Array(kinds) => {
                kinds.iter().filter_map(Value::as_str).map(str::to_owned).collect()
            }
            _ => Vec::new(),
        };
        let types = types.into_iter().filter(|kind| kind != "null").collect();
        (types, schema["format"].as_str().map(str::to_owned))
    }

    /// Every link the document has: source operation, status, name and the link.
    fn written_links(document: &Value) -> Vec<(String, String, String, Value)> {
        let mut found = Vec::new();
        for (id, operation) in operations(document) {
            for (status, response) in operation["responses"].as_object().into_iter().flatten() {
                for (name, link) in response["links"].as_object().into_iter().flatten() {
                    found.push((id.clone(), status.clone(), name.clone(), link.clone()));
                }
            }
        }
        found
    }

    #[test]
    fn every_link_leaves_a_success_its_source_answers() {
        let (_, document) = super::super::routes();
        let operations = operations(&document);
        let mut named = BTreeSet::new();
        for link in LINKS {
            let source = operations.get(link.source);
            let Some(source) = source else { panic!("{} is no operation", link.source) };
            let pascal_case = link.name.starts_with(|c: char| c.is_ascii_uppercase())
                && link.name.chars().all(|c| c.is_ascii_alphanumeric());
            assert!(pascal_case, "{}: {} is not PascalCase", link.source, link.name);
            assert!(!link.description.is_empty(), "{}: {} says nothing", link.source, link.name);
            for status in link.statuses {
                assert!(status.starts_with('2'), "{} {status} is no success", link.source);
                let response = &source["responses"][*status];
                assert!(response.is_object(), "{} answers no {status}", link.source);
                assert!(
                    named.insert((link.source, *status, link.name)),
                    "{} {status} has two links named {}",
                    link.source,
                    link.name
                );
                assert_eq!(
                    response["links"][link.name]["operationId"], link.target,
                    "{} {status}: {} is not in the document",
                    link.source, link.name
                );
            }
        }
    }

    #[test]
    fn every_link_sets_exactly_its_targets_path_parameters() {
        let (_, document) = super::super::routes();
        let operations = operations(&document);
        for link in LINKS {
            let Some(target) = operations.get(link.target) else {
                panic!("{} -> {}: no such operation", link.source, link.target)
            };
            let set: BTreeSet<&str> = link.parameters.iter().map(|(name, _)| *name).collect();
            assert_eq!(set.len(), link.parameters.len(), "{}: a parameter set twice", link.name);
            let wanted = path_parameters(target);
            let wanted: BTreeSet<&str> = wanted.keys().map(String::as_str).collect();
            assert_eq!(set, wanted, "{} -> {} ({})", link.source, link.target, link.name);
        }
    }

    /// Each expression names something the source's request or response has, of the kind the
    /// target's parameter takes (a UUID for an id, a string for a wallet's name).
    #[test]
    fn every_expression_names_what_its_source_has() {
        let (_, document) = super::super::routes();
        let operations = operations(&document);
        for link in LINKS {
            let (Some(source), Some(target)) =
                (operations.get(link.source), operations.get(link.target))
            else {
                panic!("{} -> {}: no such operation", link.source, link.target)
            };
            let wanted = path_parameters(target);
            for status in link.statuses {
                for (name, expression) in link.parameters {
                    let at = format!("{} {status} {} {name}", link.source, link.name);
                    let schema = expression_schema(&document, source, status, expression)
                        .unwrap_or_else(|why| panic!("{at}: {why}"));
                    let parameter = wanted.get(*name).unwrap_or(&Value::Null);
                    let (types, format) = kind(&document, &schema);
                    let (types_wanted, format_wanted) = kind(&document, parameter);
                    assert_eq!(types, types_wanted, "{at}: {expression} is {schema}");
                    if format_wanted.is_some() {
                        assert_eq!(format, format_wanted, "{at}: {expression} is {schema}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_operation_on_an_identified_resource_is_reachable() {
        let (_, document) = super::super::routes();
        let targets: BTreeSet<String> = written_links(&document)
            .into_iter()
            .filter_map(|(.., link)| link["operationId"].as_str().map(str::to_owned))
            .collect();
        let operations = operations(&document);
        for (id, operation) in &operations {
            let parameters = path_parameters(operation);
            if !parameters.keys().any(|name| IDENTIFYING.contains(&name.as_str())) {
                continue;
            }
            let unlinked = UNLINKED.iter().any(|(unlinked, _)| unlinked == id);
            assert!(targets.contains(id) || unlinked, "no link leads to {id}");
        }
        for (id, why) in UNLINKED {
            assert!(operations.contains_key(*id), "{id} is no operation");
            assert!(!targets.contains(*id), "{id} is linked, yet listed as unlinked ({why})");
        }
    }

    #[test]
    fn a_link_is_written_as_openapi_says() {
        let (_, document) = super::super::routes();
        let links = &document["paths"]["/v1/purses"]["post"]["responses"]["201"]["links"];
        assert_eq!(
            links["GetPurse"],
            json!({
                "operationId": "get_purse",
                "parameters": { "purse_id": "$response.body#/purseId" },
                "description": "The purse just made.",
            })
        );
        let found = &document["paths"]["/v1/customers"]["post"]["responses"];
        for status in ["200", "201"] {
            assert_eq!(
                found[status]["links"]["GetCustomer"]["parameters"],
                json!({ "customer_id": "$response.body#/customerId" }),
                "{status}"
            );
        }
    }

    /// A deprecated copy has its successor's links, to the copies of their targets where
    /// there are copies.
    #[test]
    fn a_deprecated_copy_links_as_its_successor_to_the_copies() {
        let (_, document) = super::super::routes();
        let copy = &document["paths"]["/v1/channels"]["post"]["responses"]["201"]["links"];
        let successor =
            &document["paths"]["/v1/payment-channels"]["post"]["responses"]["201"]["links"];
        let names = |links: &Value| links.as_object().map(|links| links.keys().cloned().collect());
        let names: Option<Vec<String>> = names(successor);
        assert!(names.as_ref().is_some_and(|names| names.len() > 1), "{successor}");
        assert_eq!(names, copy.as_object().map(|links| links.keys().cloned().collect()));
        assert_eq!(copy["GetPaymentChannel"]["operationId"], "get_payment_channel_deprecated");
        assert_eq!(copy["GetAccount"]["operationId"], "get_account");
        assert_eq!(
            copy["GetPaymentChannel"]["parameters"],
            successor["GetPaymentChannel"]["parameters"]
        );
    }
}

//! What a payment carries for a customer (an activity, metadata, the calling app's data, the
//! message that led to it), checked and turned into the `hazina` context the ledger applies
//! with the transfer, in the same transaction (`hazina_ledger::context`).

use std::collections::BTreeMap;

use deadpool_postgres::Pool;
use hazina_ledger::context::Effects;
use hazina_ledger::{CustomerId, OrgId};
use serde::Deserialize;
use uuid::Uuid;

use super::MoneyError;
use crate::code::Code;
use crate::customers::{self, DataValue, NewActivity};

/// What a payment carries for a customer: applied in the same transaction as the payment, so
/// all of it happens if the payment succeeds and none of it otherwise.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PaymentContext {
    /// The customer; when absent, the owner of the payment's one wallet party.
    pub customer_id: Option<Uuid>,
    /// The activity that led to the payment (app key), linked to it on the timeline.
    pub activity: Option<NewActivity>,
    /// Metadata keys to set (at most 100).
    #[schema(schema_with = customers::metadata_schema)]
    pub metadata: Option<BTreeMap<String, DataValue>>,
    /// The calling app's new data for the customer (app key).
    pub app_data: Option<DataValue>,
    /// The message that led to the payment: one of the org's, to or from the payment's
    /// customer (the one named, or the owner of its one wallet party) when it has one. Kept
    /// with the payment and shown on its timeline item (`messageId`).
    pub message_id: Option<Uuid>,
}

/// A base64 string of bytes, as the ledger's context decodes them.
fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The calling app, which activities and app data belong to; refused for an org key.
fn app_of(app: Option<Uuid>) -> Result<Uuid, MoneyError> {
    app.ok_or_else(|| MoneyError::Forbidden {
        code: Code::AppKeyRequired,
        detail: "this operation needs an app key".to_owned(),
    })
}

/// The `hazina` context object the database applies with the transfer: the context's
/// customer (named, or the owner of the payment's one wallet party, `wallet_customers`) with
/// the activity, metadata and app data checked as their own endpoints check them. `app` is the
/// calling app (none for an org key). The message it names is checked here too, but kept by
/// the caller with the payment (`messageId` of the transfer context's `payment` object),
/// not in the `hazina` object.
///
/// # Errors
///
/// `Customer` when the named customer is not the org's or a value is refused; `Invalid`
/// (`customer_required`, `too_many_metadata_keys`, `message_not_found`); `Forbidden`
/// (`app_key_required`) for an activity or app data under an org key.
pub async fn context_effects(
    pool: &Pool,
    org: OrgId,
    app: Option<Uuid>,
    context: &PaymentContext,
    wallet_customers: &[CustomerId],
) -> Result<Effects, MoneyError> {
    let mut effects = Effects::default();
    let wants_customer =
        context.activity.is_some() || context.metadata.is_some() || context.app_data.is_some();
    if !wants_customer && context.message_id.is_none() {
        return Ok(effects);
    }
    let customer = match (context.customer_id, wallet_customers) {
        (Some(id), _) => Some(customers::check(pool, org, id).await?),
        (None, [only]) => Some(*only),
        (None, _) if wants_customer => {
            return Err(MoneyError::invalid(
                Code::CustomerRequired,
                "name the context's customerId: the payment has no single wallet party",
            ));
        }
        // A message alone needs no customer: it is then only checked to be the org's.
        (None, _) => None,
    };
    if let Some(message) = context.message_id {
        let of = customers::timeline::message_customer(pool, org, message).await?;
        if of.is_none() || customer.is_some_and(|customer| of != Some(customer)) {
            return Err(MoneyError::invalid(
                Code::MessageNotFound,
                "messageId names no message of the org to or from the payment's customer",
            ));
        }
    }
    let Some(customer) = customer.filter(|_| wants_customer) else {
        return Ok(effects);
    };
    if let Some(activity) = &context.activity {
        let app = app_of(app)?;
        let properties = customers::check_activity(activity)?;
        effects.set_activity(serde_json::json!({
            "id": Uuid::now_v7(), "customer_id": customer.0, "app_id": app,
            "source": activity.source, "session_id": activity.session_id,
            "key": activity.key, "properties": properties,
        }));
    }
    if let Some(metadata) = &context.metadata {
        if metadata.len() > customers::METADATA_KEYS_MAX {
            return Err(MoneyError::invalid(
                Code::TooManyMetadataKeys,
                format!("at most {} metadata keys", customers::METADATA_KEYS_MAX),
            ));
        }
        let mut set = serde_json::Map::new();
        for (key, value) in metadata {
            customers::check_key(key)?;
            let (bytes, is_text) = value.to_stored()?;
            set.insert(
                key.clone(),
                serde_json::json!({ "value": base64_of(&bytes), "is_text": is_text }),
            );
        }
        effects.set_metadata(serde_json::json!({ "customer_id": customer.0, "set": set }));
    }
    if let Some(value) = &context.app_data {
        let app = app_of(app)?;
        let (bytes, is_text) = value.to_stored()?;
        effects.set_app_data(serde_json::json!({
            "customer_id": customer.0, "app_id": app,
            "value": base64_of(&bytes), "is_text": is_text,
        }));
    }
    Ok(effects)
}

//! The `hazina` object of a transfer's context: what the store does for customers when it
//! writes the transfer. Its keys are named here once; [`Effects`] builds the object.
//!
//! - `customers`: the customers whose timelines show the transfer (linked even when it is
//!   refused);
//! - `app`: the app it was made for, which its event names;
//! - `activity`, `metadata`, `app_data`: what an accepted transfer records for its customer
//!   (see `store/effects.rs`);
//! - `adjusts_period`: for an adjustment of a closed period, recorded in the open one, the
//!   end (`through`) of the closed period it adjusts; kept, read by nothing in the ledger.

use serde_json::{Map, Value};

use crate::CustomerId;

/// The context member the store reads.
pub const HAZINA: &str = "hazina";
/// The customers linked to the transfer (an array of UUIDs as strings).
pub const CUSTOMERS: &str = "customers";
/// An activity to record: `{id, customer_id, app_id, source, session_id, key, properties}`.
pub const ACTIVITY: &str = "activity";
/// Metadata to set: `{customer_id, set: {key: {value (base64), is_text}}}`.
pub const METADATA: &str = "metadata";
/// An app's value to set: `{customer_id, app_id, value (base64), is_text}`.
pub const APP_DATA: &str = "app_data";
/// The end of the closed period an adjustment is for (an RFC 3339 time): the convention for
/// correcting a closed period, whose own transfers the ledger no longer takes
/// (`period_closed`), by a transfer in the open period that names it.
pub const ADJUSTS_PERIOD: &str = "adjusts_period";
/// The app the transfer was made for (its API key's), told with the transfer's event.
pub const APP: &str = "app";
/// The members that change a customer's data: applied only when money moves.
pub const CUSTOMER_EFFECTS: [&str; 3] = [ACTIVITY, METADATA, APP_DATA];

/// What a transfer does for its customers, being built.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Effects(Map<String, Value>);

impl Effects {
    /// Records an activity (see [`ACTIVITY`]).
    pub fn set_activity(&mut self, activity: Value) {
        self.0.insert(ACTIVITY.to_owned(), activity);
    }

    /// Sets metadata (see [`METADATA`]).
    pub fn set_metadata(&mut self, metadata: Value) {
        self.0.insert(METADATA.to_owned(), metadata);
    }

    /// Names the app the transfer is made for (see [`APP`]).
    pub fn set_app(&mut self, app: uuid::Uuid) {
        self.0.insert(APP.to_owned(), Value::from(app.to_string()));
    }

    /// Sets an app's value (see [`APP_DATA`]).
    pub fn set_app_data(&mut self, app_data: Value) {
        self.0.insert(APP_DATA.to_owned(), app_data);
    }

    /// The `hazina` object: these effects, and the transfer linked to `customers` and to the
    /// customer the effects are for (sorted, each once).
    pub fn into_hazina(mut self, customers: impl IntoIterator<Item = CustomerId>) -> Value {
        let mut linked: Vec<String> = customers.into_iter().map(|c| c.0.to_string()).collect();
        let effects_customer =
            self.0.values().find_map(|effect| effect.get("customer_id").and_then(Value::as_str));
        linked.extend(effects_customer.map(str::to_owned));
        linked.sort();
        linked.dedup();
        self.0.insert(CUSTOMERS.to_owned(), Value::from(linked));
        Value::Object(self.0)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use uuid::Uuid;

    use super::{CUSTOMERS, Effects};
    use crate::CustomerId;

    #[test]
    fn the_effects_customer_is_linked_once_with_the_others_in_order() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let mut effects = Effects::default();
        effects.set_metadata(json!({ "customer_id": b, "set": {} }));
        let hazina = effects.into_hazina([CustomerId(b), CustomerId(a), CustomerId(b)]);
        assert_eq!(hazina[CUSTOMERS], json!([a.to_string(), b.to_string()]));
        assert_eq!(hazina["metadata"]["customer_id"], json!(b));
    }
}

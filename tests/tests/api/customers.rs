//! Customer data end to end, over real HTTP against real PostgreSQL: tags, secondary ids,
//! metadata, app data and its lease, reminders, activities, the customer's state and
//! timeline; who sees what (apps, orgs); expiry; and bad input of every kind.

use hazina_server::tenancy;
use hazina_tests::ApiServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{customer, other_org, pay};

const PAST: &str = "2020-01-01T00:00:00Z";
const FUTURE: &str = "2999-01-01T00:00:00Z";

/// A key for a second app of the server's own org.
async fn second_app_key(server: &ApiServer) -> String {
    let pool = server.db.pool();
    let app = tenancy::insert_app(&pool, server.org, "second").await.unwrap();
    tenancy::insert_key(&pool, server.org, Some(app.app_id), "k").await.unwrap().token
}

async fn put(server: &ApiServer, key: &str, path: &str, body: &Value) -> (StatusCode, Value) {
    server.call(Method::PUT, path, Some(key), Some(body)).await
}

async fn delete(server: &ApiServer, key: &str, path: &str) -> StatusCode {
    let (status, body) = server.call(Method::DELETE, path, Some(key), None).await;
    assert!(status == StatusCode::NO_CONTENT || status.is_client_error(), "{status} {body}");
    status
}

async fn state(server: &ApiServer, key: &str, customer: &str) -> Value {
    let (status, body) = server.get(key, &format!("/v1/customers/{customer}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

/// The customer found by a secondary id, if any.
async fn resolve(server: &ApiServer, key: &str, value: &str) -> Option<String> {
    let (status, body) = server
        .post(
            &server.app_key,
            "/v1/customers",
            &json!({ "secondaryId": { "key": key, "value": value } }),
        )
        .await;
    match status {
        StatusCode::OK => Some(body["customerId"].as_str().unwrap().to_owned()),
        StatusCode::NOT_FOUND => None,
        other => panic!("{other} {body}"),
    }
}

fn keys_of(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|item| {
            format!("{}={}", item["key"].as_str().unwrap(), item["value"].as_str().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn tags_are_set_replaced_deleted_and_invisible_once_expired() {
    let server = ApiServer::start().await;
    let customer = customer(&server, "+254712000001").await;
    let path = format!("/v1/customers/{customer}/tags");
    let (status, body) = put(
        &server,
        &server.app_key,
        &path,
        &json!({ "tags": [
            { "key": "tier", "value": "gold" },
            { "key": "needs space", "value": "yes", "expiresAt": FUTURE },
            { "key": "promo", "value": "old", "expiresAt": PAST },
        ] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        keys_of(&body["tags"]),
        ["needs space=yes", "tier=gold"],
        "the expired one is hidden"
    );
    assert_eq!(body["tags"][0]["expiresAt"], "2999-01-01T00:00:00Z");
    assert_eq!(body["tags"][1]["expiresAt"], Value::Null);

    // A key already there takes the new value; the others stay. The org key may set them too.
    let (status, body) = put(
        &server,
        &server.org_key,
        &path,
        &json!({ "tags": [{ "key": "tier", "value": "platinum" }] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(keys_of(&body["tags"]), ["needs space=yes", "tier=platinum"]);

    let tags = &state(&server, &server.app_key, &customer).await["tags"];
    assert_eq!(keys_of(tags), ["needs space=yes", "tier=platinum"]);
    assert_eq!(
        delete(&server, &server.app_key, &format!("{path}/needs%20space")).await,
        StatusCode::NO_CONTENT
    );
    // Deleting what is not there is not an error.
    assert_eq!(
        delete(&server, &server.app_key, &format!("{path}/never")).await,
        StatusCode::NO_CONTENT
    );
    let tags = &state(&server, &server.org_key, &customer).await["tags"];
    assert_eq!(keys_of(tags), ["tier=platinum"]);
}

#[tokio::test]
async fn a_customer_has_at_most_100_tags() {
    let server = ApiServer::start().await;
    let customer = customer(&server, "+254712000002").await;
    let path = format!("/v1/customers/{customer}/tags");
    let hundred: Vec<Value> =
        (0..100).map(|i| json!({ "key": format!("t{i:03}"), "value": "v" })).collect();
    let (status, body) = put(&server, &server.app_key, &path, &json!({ "tags": hundred })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tags"].as_array().unwrap().len(), 100);
    // One more is refused, and changes nothing; replacing one is fine.
    let (status, body) = put(
        &server,
        &server.app_key,
        &path,
        &json!({ "tags": [{ "key": "t000", "value": "new" }, { "key": "extra", "value": "v" }] }),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("too_many_tags")),
        "{body}"
    );
    let (status, body) = put(
        &server,
        &server.app_key,
        &path,
        &json!({ "tags": [{ "key": "t000", "value": "new" }] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tags = state(&server, &server.app_key, &customer).await["tags"].clone();
    assert_eq!(tags.as_array().unwrap().len(), 100);
    assert_eq!(tags[0], json!({ "key": "t000", "value": "new", "expiresAt": null }));
    // An expired tag does not count.
    assert_eq!(
        delete(&server, &server.app_key, &format!("{path}/t001")).await,
        StatusCode::NO_CONTENT
    );
    let (status, body) = put(
        &server,
        &server.app_key,
        &path,
        &json!({ "tags": [{ "key": "gone", "value": "v", "expiresAt": PAST }] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) =
        put(&server, &server.app_key, &path, &json!({ "tags": [{ "key": "last", "value": "v" }] }))
            .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["tags"].as_array().unwrap().len(), 100);
}

#[tokio::test]
async fn secondary_ids_are_unique_in_the_org_until_they_expire() {
    let server = ApiServer::start().await;
    let first = customer(&server, "+254712000003").await;
    let second = customer(&server, "+254712000004").await;
    let first_path = format!("/v1/customers/{first}/secondary-ids");
    let second_path = format!("/v1/customers/{second}/secondary-ids");
    let (status, body) = put(
        &server,
        &server.app_key,
        &first_path,
        &json!({ "secondaryIds": [
            { "key": "loyalty", "value": "L-1" },
            { "key": "order", "value": "a/b" },
            { "key": "session", "value": "S-1", "expiresAt": PAST },
        ] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(keys_of(&body["secondaryIds"]), ["loyalty=L-1", "order=a/b"]);
    assert_eq!(resolve(&server, "loyalty", "L-1").await.as_deref(), Some(first.as_str()));
    assert_eq!(resolve(&server, "session", "S-1").await, None, "expired: invisible");

    // Taken by the first customer: refused for the second, whose other ids stay unset.
    let (status, body) = put(
        &server,
        &server.app_key,
        &second_path,
        &json!({ "secondaryIds": [{ "key": "email", "value": "x@y" }, { "key": "loyalty", "value": "L-1" }] }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "secondary_id_taken");
    assert!(body["detail"].as_str().unwrap().contains("loyalty=L-1"), "{body}");
    assert_eq!(state(&server, &server.app_key, &second).await["secondaryIds"], json!([]));
    assert_eq!(resolve(&server, "email", "x@y").await, None);

    // The expired one can be claimed.
    let (status, body) = put(
        &server,
        &server.app_key,
        &second_path,
        &json!({ "secondaryIds": [{ "key": "session", "value": "S-1" }] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(resolve(&server, "session", "S-1").await.as_deref(), Some(second.as_str()));
    assert_eq!(
        keys_of(&state(&server, &server.app_key, &first).await["secondaryIds"]),
        ["loyalty=L-1", "order=a/b"]
    );

    // Once the first lets go of one, the second may have it; a `/` in a value is escaped.
    assert_eq!(
        delete(&server, &server.app_key, &format!("{first_path}/order/a%2Fb")).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(resolve(&server, "order", "a/b").await, None);
    // Deleting another customer's id through this one does nothing.
    assert_eq!(
        delete(&server, &server.app_key, &format!("{second_path}/loyalty/L-1")).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(resolve(&server, "loyalty", "L-1").await.as_deref(), Some(first.as_str()));
    let (status, body) = put(
        &server,
        &server.app_key,
        &second_path,
        &json!({ "secondaryIds": [{ "key": "order", "value": "a/b" }] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(keys_of(&body["secondaryIds"]), ["order=a/b", "session=S-1"]);
    assert_eq!(resolve(&server, "order", "a/b").await.as_deref(), Some(second.as_str()));
}

#[tokio::test]
async fn metadata_keeps_strings_and_bytes_apart() {
    let server = ApiServer::start().await;
    let customer = customer(&server, "+254712000005").await;
    let path = format!("/v1/customers/{customer}/metadata");
    let (status, body) = put(
        &server,
        &server.app_key,
        &path,
        &json!({ "metadata": { "name": { "string": "Wanjiru" }, "blob": { "bytes": "AAEC/w==" } } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let expected = json!({ "blob": { "bytes": "AAEC/w==" }, "name": { "string": "Wanjiru" } });
    assert_eq!(body["metadata"], expected);
    assert_eq!(state(&server, &server.org_key, &customer).await["metadata"], expected);
    // Replace one, keep the other; then delete.
    let (status, body) = put(
        &server,
        &server.org_key,
        &path,
        &json!({ "metadata": { "name": { "bytes": "V2Fu" } } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["metadata"],
        json!({ "blob": { "bytes": "AAEC/w==" }, "name": { "bytes": "V2Fu" } })
    );
    assert_eq!(
        delete(&server, &server.app_key, &format!("{path}/blob")).await,
        StatusCode::NO_CONTENT
    );
    assert_eq!(
        state(&server, &server.app_key, &customer).await["metadata"],
        json!({ "name": { "bytes": "V2Fu" } })
    );
    // A value of exactly the limit is fine.
    let (status, body) = put(
        &server,
        &server.app_key,
        &path,
        &json!({ "metadata": { "big": { "string": "x".repeat(64 * 1024) } } }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{}", body["code"]);
}

#[tokio::test]
async fn app_data_is_the_calling_apps_and_a_lease_locks_it_until_an_update() {
    let server = ApiServer::start().await;
    let customer = customer(&server, "+254712000006").await;
    let path = format!("/v1/customers/{customer}/app-data");
    let lease = format!("{path}/lease");
    let second = second_app_key(&server).await;

    let (status, body) = put(&server, &server.app_key, &path, &json!({ "string": "step-1" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["value"], json!({ "string": "step-1" }));
    assert_eq!(body["leasedUntil"], Value::Null);

    let (status, leased) = server.post(&server.app_key, &lease, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{leased}");
    assert_eq!(leased["value"], json!({ "string": "step-1" }));
    let until: chrono::DateTime<chrono::Utc> =
        leased["leasedUntil"].as_str().unwrap().parse().unwrap();
    let ahead = until - chrono::Utc::now();
    assert!(
        ahead > chrono::TimeDelta::seconds(80) && ahead <= chrono::TimeDelta::seconds(91),
        "{ahead}"
    );
    // A second lease while leased is refused, saying until when.
    let (status, body) = server.post(&server.app_key, &lease, &json!({})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "app_data_leased");
    let shown: chrono::DateTime<chrono::Utc> =
        body["detail"].as_str().unwrap().rsplit(' ').next().unwrap().parse().unwrap();
    assert_eq!(shown, until);
    assert_eq!(
        state(&server, &server.app_key, &customer).await["appData"]["leasedUntil"],
        leased["leasedUntil"]
    );

    // The other app sees none of it, and its own value is separate.
    assert_eq!(state(&server, &second, &customer).await["appData"], Value::Null);
    let (status, body) = server.post(&second, &lease, &json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    let (status, _) = put(&server, &second, &path, &json!({ "bytes": "AQI=" })).await;
    assert_eq!(status, StatusCode::OK);
    let (status, other) = server.post(&second, &lease, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{other}");
    assert_eq!(other["value"], json!({ "bytes": "AQI=" }));
    // An org key has no app: it sees no app data and cannot set any.
    assert_eq!(state(&server, &server.org_key, &customer).await["appData"], Value::Null);
    let (status, body) = put(&server, &server.org_key, &path, &json!({ "string": "x" })).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("app_key_required")));

    // An update ends the lease: the next lease gets the new value.
    let (status, body) = put(&server, &server.app_key, &path, &json!({ "string": "step-2" })).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["leasedUntil"], Value::Null);
    let (status, leased) = server.post(&server.app_key, &lease, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{leased}");
    assert_eq!(leased["value"], json!({ "string": "step-2" }));
    // So does a delete; then there is nothing to lease.
    assert_eq!(delete(&server, &server.app_key, &path).await, StatusCode::NO_CONTENT);
    let (status, body) = server.post(&server.app_key, &lease, &json!({})).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    assert_eq!(state(&server, &server.app_key, &customer).await["appData"], Value::Null);
    // The other app's value outlived the first app's delete.
    assert_eq!(
        state(&server, &second, &customer).await["appData"]["value"],
        json!({ "bytes": "AQI=" })
    );
}

#[tokio::test]
async fn a_lease_that_ran_out_can_be_taken_again() {
    let server = ApiServer::start().await;
    let customer = customer(&server, "+254712000007").await;
    let path = format!("/v1/customers/{customer}/app-data");
    let (status, _) = put(&server, &server.app_key, &path, &json!({ "string": "v" })).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server.post(&server.app_key, &format!("{path}/lease"), &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    // Let the lease run out, as 90 seconds would.
    let client = server.db.pool().get().await.unwrap();
    client
        .execute("UPDATE app_data SET leased_until = now() - interval '1 second'", &[])
        .await
        .unwrap();
    assert_eq!(
        state(&server, &server.app_key, &customer).await["appData"]["leasedUntil"],
        Value::Null
    );
    let (status, body) = server.post(&server.app_key, &format!("{path}/lease"), &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

#[tokio::test]
async fn reminders_are_per_app_and_bounded() {
    let server = ApiServer::start().await;
    let customer = customer(&server, "+254712000008").await;
    let second = second_app_key(&server).await;
    let path = format!("/v1/customers/{customer}/reminders");
    let reminder =
        json!({ "remindAt": "2030-05-01T08:00:00Z", "interval": 86400, "payload": "cart" });
    let (status, body) = put(&server, &server.app_key, &format!("{path}/nudge"), &reminder).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["key"], "nudge");
    assert_eq!(body["remindAt"], "2030-05-01T08:00:00Z");
    assert_eq!(body["interval"], 86400);
    assert_eq!(body["payload"], "cart");
    // The same key again replaces it.
    let (status, body) = put(
        &server,
        &server.app_key,
        &format!("{path}/nudge"),
        &json!({ "remindAt": "2030-05-02T08:00:00Z" }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["interval"], Value::Null);
    let (status, list) = server.get(&server.app_key, &path).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    assert_eq!(list["reminders"].as_array().unwrap().len(), 1);
    assert_eq!(list["reminders"][0]["remindAt"], "2030-05-02T08:00:00Z");
    assert_eq!(state(&server, &server.app_key, &customer).await["reminders"], list["reminders"]);

    // Another app sees none of them; an org key has none.
    let (_, other) = server.get(&second, &path).await;
    assert_eq!(other["reminders"], json!([]));
    assert_eq!(state(&server, &second, &customer).await["reminders"], json!([]));
    assert_eq!(state(&server, &server.org_key, &customer).await["reminders"], json!([]));
    let (status, body) = server.get(&server.org_key, &path).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("app_key_required")));
    // The other app's delete does not touch this app's reminder.
    assert_eq!(delete(&server, &second, &format!("{path}/nudge")).await, StatusCode::NO_CONTENT);
    assert_eq!(
        server.get(&server.app_key, &path).await.1["reminders"].as_array().unwrap().len(),
        1
    );

    // A hundred per customer per app.
    for i in 1..100 {
        let (status, body) =
            put(&server, &server.app_key, &format!("{path}/r{i}"), &json!({ "remindAt": FUTURE }))
                .await;
        assert_eq!(status, StatusCode::CREATED, "{i} {body}");
    }
    let (status, body) = put(
        &server,
        &server.app_key,
        &format!("{path}/one-too-many"),
        &json!({ "remindAt": FUTURE }),
    )
    .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("too_many_reminders"))
    );
    let (_, list) = server.get(&server.app_key, &path).await;
    assert_eq!(list["reminders"].as_array().unwrap().len(), 100);
    assert_eq!(list["reminders"][0]["key"], "nudge", "soonest first");
    // The other app has its own hundred.
    let (status, _) =
        put(&server, &second, &format!("{path}/mine"), &json!({ "remindAt": FUTURE })).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(
        delete(&server, &server.app_key, &format!("{path}/nudge")).await,
        StatusCode::NO_CONTENT
    );
    let (_, list) = server.get(&server.app_key, &path).await;
    assert_eq!(list["reminders"].as_array().unwrap().len(), 99);
    assert!(list["reminders"].as_array().unwrap().iter().all(|r| r["key"] != "nudge"));
}

async fn activity(server: &ApiServer, customer: &str, body: &Value) -> Value {
    let (status, activity) =
        server.post(&server.app_key, &format!("/v1/customers/{customer}/activities"), body).await;
    assert_eq!(status, StatusCode::CREATED, "{activity}");
    activity
}

#[tokio::test]
async fn activities_are_recorded_and_grouped_into_sessions() {
    let server = ApiServer::start().await;
    let customer = customer(&server, "+254712000009").await;
    let first = activity(
        &server,
        &customer,
        &json!({ "source": "web-shop", "sessionId": "s1", "key": "visit", "at": "2024-01-01T10:00:00Z" }),
    )
    .await;
    assert_eq!(first["source"], "web-shop");
    assert_eq!(first["sessionId"], "s1");
    assert_eq!(first["at"], "2024-01-01T10:00:00Z");
    assert_eq!(first["properties"], json!({}));
    assert_eq!(first["appId"], server.app.to_string());
    activity(
        &server,
        &customer,
        &json!({ "source": "web-shop", "sessionId": "s1", "key": "cart_abandoned",
                 "properties": { "cartTotal": "1200", "items": "3" }, "at": "2024-01-01T10:05:00Z" }),
    )
    .await;
    // The same session id from another source is another session.
    activity(
        &server,
        &customer,
        &json!({ "source": "mobile", "sessionId": "s1", "key": "opened", "at": "2024-01-02T09:00:00Z" }),
    )
    .await;
    let now = activity(
        &server,
        &customer,
        &json!({ "source": "web-shop", "sessionId": "s2", "key": "visit" }),
    )
    .await;
    let at: chrono::DateTime<chrono::Utc> = now["at"].as_str().unwrap().parse().unwrap();
    assert!((chrono::Utc::now() - at).abs() < chrono::TimeDelta::seconds(60), "{at}");

    let sessions = state(&server, &server.org_key, &customer).await["activitySessions"].clone();
    let shape: Vec<(String, String, Vec<String>)> = sessions
        .as_array()
        .unwrap()
        .iter()
        .map(|session| {
            (
                session["source"].as_str().unwrap().to_owned(),
                session["sessionId"].as_str().unwrap().to_owned(),
                session["activities"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["key"].as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    let expected = [
        ("web-shop", "s2", vec!["visit"]),
        ("mobile", "s1", vec!["opened"]),
        ("web-shop", "s1", vec!["cart_abandoned", "visit"]),
    ]
    .map(|(source, session, keys)| {
        (source.to_owned(), session.to_owned(), keys.into_iter().map(str::to_owned).collect())
    });
    assert_eq!(shape, expected);
    assert_eq!(sessions[2]["startedAt"], "2024-01-01T10:00:00Z");
    assert_eq!(sessions[2]["lastAt"], "2024-01-01T10:05:00Z");
    assert_eq!(
        sessions[2]["activities"][0]["properties"],
        json!({ "cartTotal": "1200", "items": "3" })
    );

    // Recording needs an app.
    let (status, body) = server
        .post(
            &server.org_key,
            &format!("/v1/customers/{customer}/activities"),
            &json!({ "source": "web-shop", "sessionId": "s3", "key": "visit" }),
        )
        .await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::FORBIDDEN, Some("app_key_required")));
}

/// A purse that may go 1,000 KES below zero, and a wallet of the customer, as payment parties.
async fn purse_and_wallet(server: &ApiServer, customer: &str) -> (Value, Value) {
    let purse = crate::common::overdraft_purse(server, "1000").await;
    crate::common::wallet(server, customer, "main").await;
    (
        json!({ "purse": { "purseId": purse } }),
        json!({ "wallet": { "customerId": customer, "walletId": "main" } }),
    )
}

fn item_id(item: &Value) -> String {
    item["activityId"].as_str().or_else(|| item["transactionId"].as_str()).unwrap().to_owned()
}

/// The ids of a timeline's items read `limit` at a time following the cursors, and how many
/// pages that took.
async fn every_page(server: &ApiServer, path: &str, limit: usize) -> (Vec<String>, usize) {
    let mut ids = Vec::new();
    let mut cursor: Option<String> = None;
    for pages in 1..100 {
        let url = match &cursor {
            Some(cursor) => format!("{path}?limit={limit}&cursor={cursor}"),
            None => format!("{path}?limit={limit}"),
        };
        let (status, page) = server.get(&server.app_key, &url).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= limit);
        ids.extend(items.iter().map(item_id));
        match page["nextCursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return (ids, pages),
        }
    }
    panic!("the cursor does not advance");
}

#[tokio::test]
async fn the_timeline_merges_activities_and_payments_newest_first_a_page_at_a_time() {
    let server = ApiServer::start().await;
    let customer = customer(&server, "+254712000010").await;
    let (purse, wallet) = purse_and_wallet(&server, &customer).await;

    let oldest = activity(
        &server,
        &customer,
        &json!({ "source": "web-shop", "sessionId": "s1", "key": "visit", "at": "2020-01-01T00:00:00Z" }),
    )
    .await;
    let (status, paid) =
        server.post(&server.app_key, "/v1/payments", &pay(&purse, &wallet, "10")).await;
    assert_eq!(status, StatusCode::CREATED, "{paid}");
    // A payment's time is the ledger's, which may trail the database's clock by a moment (a
    // batch that reads nothing moves its writer's last reading of the clock on: see
    // ARCHITECTURE.md), so an activity recorded "now" just before a payment is asked for can
    // still be later than the payment. The activity between the two payments says when it
    // happened instead: just after the first.
    let paid_at: chrono::DateTime<chrono::Utc> =
        paid["createdAt"].as_str().unwrap().parse().unwrap();
    let abandoned_at = (paid_at + chrono::TimeDelta::microseconds(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let abandoned = activity(
        &server,
        &customer,
        &json!({ "source": "web-shop", "sessionId": "s2", "key": "cart_abandoned", "properties": { "cartTotal": "1200" }, "at": abandoned_at }),
    )
    .await;
    // More than the wallet holds: refused, and on the timeline all the same.
    let (status, refused) =
        server.post(&server.app_key, "/v1/payments", &pay(&wallet, &purse, "100")).await;
    assert_eq!((status, &refused["code"]), (StatusCode::CONFLICT, &json!("payment_failed")));
    let older = activity(
        &server,
        &customer,
        &json!({ "source": "mobile", "sessionId": "s1", "key": "opened", "at": "2021-06-01T00:00:00Z" }),
    )
    .await;

    let path = format!("/v1/customers/{customer}/timeline");
    let (status, page) = server.get(&server.org_key, &path).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert_eq!(page["nextCursor"], Value::Null);
    let items = page["items"].as_array().unwrap().clone();
    let ids: Vec<String> = items.iter().map(item_id).collect();
    let expected = [
        &refused["transactionId"],
        &abandoned["activityId"],
        &paid["transactionId"],
        &older["activityId"],
        &oldest["activityId"],
    ]
    .map(|id| id.as_str().unwrap().to_owned());
    assert_eq!(ids, expected);
    let types: Vec<&str> = items.iter().map(|item| item["type"].as_str().unwrap()).collect();
    assert_eq!(types, ["payment", "activity", "payment", "activity", "activity"]);
    assert_eq!(items[0]["status"], "insufficient_funds");
    assert_eq!(items[2]["status"], "success");
    assert_eq!(items[2]["narration"], "test");
    assert_eq!(items[2]["at"], paid["createdAt"]);
    assert_eq!(items[2]["creditParty"], wallet);
    let legs = items[2]["legs"].as_array().unwrap();
    assert_eq!(legs.len(), 2);
    assert!(legs.iter().all(|leg| leg["amount"] == "10.00" && leg["currencyCode"] == "KES"));
    assert_eq!(items[1]["properties"], json!({ "cartTotal": "1200" }));
    let times: Vec<chrono::DateTime<chrono::Utc>> =
        items.iter().map(|item| item["at"].as_str().unwrap().parse().unwrap()).collect();
    assert!(times.windows(2).all(|pair| pair[0] >= pair[1]), "{times:?}");

    // Two at a time: the same items, in the same order, then no cursor.
    assert_eq!(every_page(&server, &path, 2).await, (expected.to_vec(), 3));
    // A page exactly as long as what is left has no next cursor.
    let (_, page) = server.get(&server.app_key, &format!("{path}?limit=5")).await;
    assert_eq!(page["items"].as_array().unwrap().len(), 5);
    assert_eq!(page["nextCursor"], Value::Null);

    // The state shows the payments newest first, and the wallet's balance.
    let state = state(&server, &server.app_key, &customer).await;
    let payments: Vec<&str> = state["payments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["transactionId"].as_str().unwrap())
        .collect();
    assert_eq!(
        payments,
        [refused["transactionId"].as_str().unwrap(), paid["transactionId"].as_str().unwrap()]
    );
    assert_eq!(state["wallets"][0]["balance"]["actual"], "10.00");
}

/// Sends each body to `path` and expects a 4xx problem with the code, 400 for a malformed
/// request and 422 for an unacceptable one.
async fn refused(server: &ApiServer, method: &Method, path: &str, cases: &[(Option<Value>, &str)]) {
    for (body, code) in cases {
        let status = match *code {
            "invalid_limit" | "invalid_query" | "invalid_cursor" | "invalid_path" => {
                StatusCode::BAD_REQUEST
            }
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        let (got, answer) =
            server.call(method.clone(), path, Some(&server.app_key), body.as_ref()).await;
        assert_eq!(
            (got, answer["code"].as_str()),
            (status, Some(*code)),
            "{method} {path} {body:?} -> {answer}"
        );
        assert_eq!(answer["status"], status.as_u16(), "a problem document: {answer}");
    }
}

fn many(n: usize, item: impl Fn(usize) -> Value) -> Vec<Value> {
    (0..n).map(item).collect()
}

async fn bad_tags_and_secondary_ids(server: &ApiServer, base: &str) {
    let long = "x".repeat(257);
    let tags = |tags: Value| Some(json!({ "tags": tags }));
    let tag = |key: &str, value: &str| json!({ "key": key, "value": value });
    let cases = [
        (tags(json!([tag("", "v")])), "invalid_key"),
        (tags(json!([tag("  ", "v")])), "invalid_key"),
        (tags(json!([tag(&long, "v")])), "invalid_key"),
        // A NUL anywhere in a body: no stored text can hold one.
        (tags(json!([tag("a\u{0}b", "v")])), "invalid_body"),
        (tags(json!([tag("ok", "v"), tag("k", &long)])), "invalid_value"),
        (tags(json!(many(101, |i| tag(&format!("t{i}"), "v")))), "too_many_tags"),
        (tags(json!([{ "key": "k", "value": 5 }])), "invalid_body"),
        (tags(json!([{ "key": "k", "value": "v", "colour": "red" }])), "invalid_body"),
        (tags(json!([{ "key": "k", "value": "v", "expiresAt": "tomorrow" }])), "invalid_body"),
        (Some(json!({ "tags": [], "extra": 1 })), "invalid_body"),
        (Some(json!({ "tag": [] })), "invalid_body"),
    ];
    refused(server, &Method::PUT, &format!("{base}/tags"), &cases).await;
    let ids = |ids: Value| Some(json!({ "secondaryIds": ids }));
    let cases = [
        (ids(json!([tag("k", &long)])), "invalid_value"),
        (ids(json!([tag("k", "")])), "invalid_value"),
        (ids(json!([tag("", "v")])), "invalid_key"),
        (ids(json!(many(101, |i| tag("k", &format!("v{i}"))))), "too_many_secondary_ids"),
        (ids(json!(tag("k", "v"))), "invalid_body"),
    ];
    refused(server, &Method::PUT, &format!("{base}/secondary-ids"), &cases).await;
    refused(server, &Method::DELETE, &format!("{base}/tags/a%00b"), &[(None, "invalid_path")])
        .await;
    let path = format!("{base}/secondary-ids/loyalty/a%00b");
    refused(server, &Method::DELETE, &path, &[(None, "invalid_path")]).await;
}

async fn bad_metadata_and_app_data(server: &ApiServer, base: &str) {
    let metadata = |metadata: Value| Some(json!({ "metadata": metadata }));
    let too_large = "x".repeat(64 * 1024 + 1);
    let hundred_and_one: serde_json::Map<String, Value> =
        (0..101).map(|i| (format!("m{i}"), json!({ "string": "x" }))).collect();
    let cases = [
        (
            metadata(json!({ "good": { "string": "x" }, "bad": { "bytes": "not base64!" } })),
            "invalid_base64",
        ),
        (metadata(json!({ "k": { "string": "a", "bytes": "YQ==" } })), "invalid_body"),
        (metadata(json!({ "k": {} })), "invalid_body"),
        (metadata(json!({ "k": "plain" })), "invalid_body"),
        (metadata(json!({ "k": { "number": 1 } })), "invalid_body"),
        (metadata(json!({ "k": { "string": too_large } })), "value_too_large"),
        (metadata(json!({ "x".repeat(257): { "string": "x" } })), "invalid_key"),
        (metadata(Value::Object(hundred_and_one)), "too_many_metadata_keys"),
    ];
    refused(server, &Method::PUT, &format!("{base}/metadata"), &cases).await;
    let cases = [
        (Some(json!({ "bytes": "%%%" })), "invalid_base64"),
        (Some(json!({ "bytes": "YQ" })), "invalid_base64"),
        (Some(json!({ "string": 5 })), "invalid_body"),
        (Some(json!({})), "invalid_body"),
        (Some(json!({ "value": { "string": "x" } })), "invalid_body"),
        (Some(json!({ "string": too_large })), "value_too_large"),
    ];
    refused(server, &Method::PUT, &format!("{base}/app-data"), &cases).await;
}

async fn bad_reminders_activities_and_queries(server: &ApiServer, base: &str) {
    let cases = [
        (Some(json!({ "remindAt": "soon" })), "invalid_body"),
        (Some(json!({ "interval": 60 })), "invalid_body"),
        (Some(json!({ "remindAt": FUTURE, "interval": 0 })), "invalid_interval"),
        (Some(json!({ "remindAt": FUTURE, "interval": -60 })), "invalid_body"),
        (Some(json!({ "remindAt": FUTURE, "interval": 1.5 })), "invalid_body"),
        (Some(json!({ "remindAt": FUTURE, "interval": 1_000_000_000_u64 })), "invalid_interval"),
        (Some(json!({ "remindAt": FUTURE, "payload": "x".repeat(4097) })), "invalid_payload"),
        (Some(json!({ "remindAt": FUTURE, "repeat": true })), "invalid_body"),
    ];
    refused(server, &Method::PUT, &format!("{base}/reminders/nudge"), &cases).await;
    let path = format!("{base}/reminders/{}", "k".repeat(257));
    refused(server, &Method::PUT, &path, &[(Some(json!({ "remindAt": FUTURE })), "invalid_key")])
        .await;
    let activity = |fields: Value| {
        let mut body = json!({ "source": "web", "sessionId": "s", "key": "k" });
        body.as_object_mut().unwrap().extend(fields.as_object().unwrap().clone());
        Some(body)
    };
    let properties: serde_json::Map<String, Value> =
        (0..51).map(|i| (format!("p{i}"), json!("v"))).collect();
    let cases = [
        (activity(json!({ "source": "" })), "invalid_source"),
        (activity(json!({ "sessionId": "x".repeat(257) })), "invalid_session_id"),
        (activity(json!({ "key": "" })), "invalid_key"),
        (Some(json!({ "source": "web", "sessionId": "s" })), "invalid_body"),
        (activity(json!({ "properties": { "total": 1200 } })), "invalid_body"),
        (activity(json!({ "properties": ["a"] })), "invalid_body"),
        (activity(json!({ "properties": properties })), "too_many_properties"),
        (activity(json!({ "properties": { "note": "x".repeat(1025) } })), "invalid_property"),
        (activity(json!({ "properties": { "note": "a\u{0}" } })), "invalid_body"),
        (activity(json!({ "at": 5 })), "invalid_body"),
        (activity(json!({ "colour": "red" })), "invalid_body"),
    ];
    refused(server, &Method::POST, &format!("{base}/activities"), &cases).await;
    for (query, code) in [
        ("limit=0", "invalid_limit"),
        ("limit=501", "invalid_limit"),
        ("limit=ten", "invalid_query"),
        ("since=yesterday", "invalid_query"),
        ("cursor=garbage", "invalid_cursor"),
    ] {
        refused(server, &Method::GET, &format!("{base}/timeline?{query}"), &[(None, code)]).await;
    }
    // Any position the document's pattern allows is a cursor, before what PostgreSQL can keep
    // and in the far future too: a page, maybe empty, never a 5xx.
    for micros in ["-999999999999999999", "999999999999999999"] {
        let path = format!("{base}/timeline?cursor={micros}_{}", "f".repeat(32));
        let (status, page) = server.get(&server.app_key, &path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
    }
}

#[tokio::test]
async fn bad_input_is_a_4xx_with_a_stable_code_and_changes_nothing() {
    let server = ApiServer::start().await;
    let customer = customer(&server, "+254712000011").await;
    let base = format!("/v1/customers/{customer}");
    // Something of every kind, to see that nothing changes.
    for (path, body) in [
        ("tags", json!({ "tags": [{ "key": "tier", "value": "gold" }] })),
        ("secondary-ids", json!({ "secondaryIds": [{ "key": "loyalty", "value": "L-1" }] })),
        ("metadata", json!({ "metadata": { "name": { "string": "Wanjiru" } } })),
        ("app-data", json!({ "string": "step-1" })),
        ("reminders/nudge", json!({ "remindAt": FUTURE })),
    ] {
        let (status, body) = put(&server, &server.app_key, &format!("{base}/{path}"), &body).await;
        assert!(status.is_success(), "{path}: {status} {body}");
    }
    activity(&server, &customer, &json!({ "source": "web", "sessionId": "s", "key": "k" })).await;
    let before = state(&server, &server.app_key, &customer).await;

    bad_tags_and_secondary_ids(&server, &base).await;
    bad_metadata_and_app_data(&server, &base).await;
    bad_reminders_activities_and_queries(&server, &base).await;

    // A customer is named by exactly one of a number and a secondary id, the other absent.
    let number = json!({ "number": "+254712000011", "provider": "cellular" });
    let named = [
        (Some(json!({})), "invalid_customer_reference"),
        (
            Some(json!({ "customerNumber": number, "secondaryId": { "key": "k", "value": "v" } })),
            "invalid_customer_reference",
        ),
        (Some(json!({ "customerNumber": number, "secondaryId": null })), "invalid_body"),
        (
            Some(json!({ "customerNumber": null, "secondaryId": { "key": "k", "value": "v" } })),
            "invalid_body",
        ),
    ];
    refused(&server, &Method::POST, "/v1/customers", &named).await;

    // Paths that are not ids, and customers that do not exist.
    refused(&server, &Method::GET, "/v1/customers/not-a-uuid", &[(None, "invalid_path")]).await;
    let path = "/v1/customers/not-a-uuid/timeline";
    refused(&server, &Method::GET, path, &[(None, "invalid_path")]).await;
    refused(&server, &Method::DELETE, "/v1/customers/123/tags/tier", &[(None, "invalid_path")])
        .await;
    let missing = uuid::Uuid::now_v7();
    for (method, path, body) in [
        (Method::GET, format!("/v1/customers/{missing}"), None),
        (Method::GET, format!("/v1/customers/{missing}/timeline"), None),
        (Method::PUT, format!("/v1/customers/{missing}/tags"), Some(json!({ "tags": [] }))),
    ] {
        let (got, answer) =
            server.call(method.clone(), &path, Some(&server.app_key), body.as_ref()).await;
        assert_eq!((got, answer["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")));
    }
    // Malformed JSON, and no key at all.
    let response = server
        .http
        .put(format!("{}{base}/tags", server.base))
        .bearer_auth(&server.app_key)
        .header("content-type", "application/json")
        .body("{\"tags\": [")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let (status, _) = server.call(Method::GET, &base, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    assert_eq!(state(&server, &server.app_key, &customer).await, before, "nothing changed");
}

#[tokio::test]
async fn another_orgs_keys_find_no_customer_and_change_nothing() {
    let server = ApiServer::start().await;
    let customer = customer(&server, "+254712000012").await;
    let base = format!("/v1/customers/{customer}");
    let (status, _) = put(
        &server,
        &server.app_key,
        &format!("{base}/tags"),
        &json!({ "tags": [{ "key": "tier", "value": "gold" }] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) =
        put(&server, &server.app_key, &format!("{base}/app-data"), &json!({ "string": "v" })).await;
    assert_eq!(status, StatusCode::OK);
    let before = state(&server, &server.app_key, &customer).await;
    let (other_org_key, other_app_key) = other_org(&server).await;
    let reminder = json!({ "remindAt": FUTURE });
    let calls: Vec<(Method, &str, Option<Value>)> = vec![
        (Method::GET, "", None),
        (Method::GET, "/timeline", None),
        (Method::GET, "/reminders", None),
        (Method::PUT, "/tags", Some(json!({ "tags": [{ "key": "tier", "value": "stolen" }] }))),
        (Method::DELETE, "/tags/tier", None),
        (
            Method::PUT,
            "/secondary-ids",
            Some(json!({ "secondaryIds": [{ "key": "k", "value": "v" }] })),
        ),
        (Method::DELETE, "/secondary-ids/k/v", None),
        (Method::PUT, "/metadata", Some(json!({ "metadata": { "k": { "string": "v" } } }))),
        (Method::DELETE, "/metadata/k", None),
        (Method::PUT, "/app-data", Some(json!({ "string": "stolen" }))),
        (Method::POST, "/app-data/lease", Some(json!({}))),
        (Method::DELETE, "/app-data", None),
        (Method::PUT, "/reminders/r", Some(reminder)),
        (Method::DELETE, "/reminders/r", None),
        (Method::POST, "/activities", Some(json!({ "source": "s", "sessionId": "s", "key": "k" }))),
    ];
    for (method, path, body) in calls {
        let path = format!("{base}{path}");
        let (status, answer) =
            server.call(method.clone(), &path, Some(&other_app_key), body.as_ref()).await;
        assert_eq!(
            (status, answer["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found")),
            "{method} {path}"
        );
        if method == Method::GET && !path.ends_with("reminders") {
            let (status, _) = server.call(method.clone(), &path, Some(&other_org_key), None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        }
    }
    // Nor can another org's key resolve the customer by its secondary id.
    let (status, _) = put(
        &server,
        &server.app_key,
        &format!("{base}/secondary-ids"),
        &json!({ "secondaryIds": [{ "key": "loyalty", "value": "L-1" }] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = server
        .post(
            &other_app_key,
            "/v1/customers",
            &json!({ "secondaryId": { "key": "loyalty", "value": "L-1" } }),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // The same secondary id is free in the other org.
    let (status, other) = server
        .post(
            &other_app_key,
            "/v1/customers",
            &json!({ "customerNumber": { "number": "+254712000012", "provider": "cellular" } }),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{other}");
    let other = other["customerId"].as_str().unwrap();
    let (status, body) = put(
        &server,
        &other_app_key,
        &format!("/v1/customers/{other}/secondary-ids"),
        &json!({ "secondaryIds": [{ "key": "loyalty", "value": "L-1" }] }),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    let mut after = state(&server, &server.app_key, &customer).await;
    assert_eq!(keys_of(&after["secondaryIds"]), ["loyalty=L-1"]);
    after["secondaryIds"] = before["secondaryIds"].clone();
    assert_eq!(after, before, "nothing else changed");
}

#[tokio::test]
async fn the_openapi_document_describes_the_customer_routes() {
    let server = ApiServer::start().await;
    let (status, document) = server.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = &document["paths"];
    for (path, methods) in [
        ("/v1/customers", &["post"][..]),
        ("/v1/customers/{customer_id}", &["get"]),
        ("/v1/customers/{customer_id}/tags", &["put"]),
        ("/v1/customers/{customer_id}/tags/{key}", &["delete"]),
        ("/v1/customers/{customer_id}/secondary-ids", &["put"]),
        ("/v1/customers/{customer_id}/secondary-ids/{key}/{value}", &["delete"]),
        ("/v1/customers/{customer_id}/metadata", &["put"]),
        ("/v1/customers/{customer_id}/metadata/{key}", &["delete"]),
        ("/v1/customers/{customer_id}/app-data", &["put", "delete"]),
        ("/v1/customers/{customer_id}/app-data/lease", &["post"]),
        ("/v1/customers/{customer_id}/reminders", &["get"]),
        ("/v1/customers/{customer_id}/reminders/{key}", &["put", "delete"]),
        ("/v1/customers/{customer_id}/activities", &["post"]),
        ("/v1/customers/{customer_id}/timeline", &["get"]),
    ] {
        for method in methods {
            let operation = &paths[path][method];
            assert!(operation.is_object(), "{method} {path} missing");
            assert_eq!(operation["tags"], json!(["customers"]), "{method} {path}");
        }
    }
    for schema in [
        "CustomerState",
        "Tag",
        "SecondaryId",
        "DataValue",
        "AppData",
        "Reminder",
        "Activity",
        "Payment",
        "TimelineItem",
        "Timeline",
    ] {
        assert!(document["components"]["schemas"][schema].is_object(), "{schema} missing");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_leases_and_claims_have_one_winner_each() {
    let server = std::sync::Arc::new(ApiServer::start().await);
    let leased = customer(&server, "+254712000013").await;
    let path = format!("/v1/customers/{leased}/app-data");
    let (status, _) = put(&server, &server.app_key, &path, &json!({ "string": "v" })).await;
    assert_eq!(status, StatusCode::OK);
    let leases: Vec<_> = (0..8)
        .map(|_| {
            let server = server.clone();
            let path = format!("{path}/lease");
            tokio::spawn(async move { server.post(&server.app_key, &path, &json!({})).await })
        })
        .collect();
    let mut granted = 0;
    for lease in leases {
        let (status, body) = lease.await.unwrap();
        match status {
            StatusCode::OK => granted += 1,
            StatusCode::CONFLICT => assert_eq!(body["code"], "app_data_leased"),
            other => panic!("{other} {body}"),
        }
    }
    assert_eq!(granted, 1);

    // Eight customers claim one secondary id at once: one has it, the others are told so.
    let mut claimants = Vec::new();
    for i in 0..8 {
        claimants.push(customer(&server, &format!("+2547120001{i:02}")).await);
    }
    let claims: Vec<_> = claimants
        .iter()
        .map(|claimant| {
            let server = server.clone();
            let path = format!("/v1/customers/{claimant}/secondary-ids");
            tokio::spawn(async move {
                let body = json!({ "secondaryIds": [
                    { "key": "a", "value": "1" }, { "key": "b", "value": "2" },
                ] });
                put(&server, &server.app_key, &path, &body).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for (claim, claimant) in claims.into_iter().zip(&claimants) {
        let (status, body) = claim.await.unwrap();
        match status {
            StatusCode::OK => winners.push(claimant.clone()),
            StatusCode::CONFLICT => assert_eq!(body["code"], "secondary_id_taken"),
            other => panic!("{other} {body}"),
        }
    }
    assert_eq!(winners.len(), 1);
    assert_eq!(resolve(&server, "a", "1").await, Some(winners[0].clone()));
    assert_eq!(resolve(&server, "b", "2").await, Some(winners[0].clone()));
}

#[tokio::test]
async fn a_stored_number_of_an_unknown_provider_is_corrupt_never_dropped() {
    let server = ApiServer::start().await;
    let id = customer(&server, "+254722000101").await;
    let client = server.db.pool().get().await.unwrap();
    // A provider this version does not know, as a newer version's migration that widens the
    // check, or a bad restore, might leave.
    client
        .batch_execute(
            "ALTER TABLE customer_numbers DROP CONSTRAINT customer_numbers_provider_check",
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE customer_numbers SET provider = 'pager' WHERE org_id = $1 AND customer_id = $2",
            &[&server.org.0, &id.parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap();
    let (status, body) = server.get(&server.app_key, &format!("/v1/customers/{id}")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
    assert_eq!(body["code"], "internal_error", "{body}");
}

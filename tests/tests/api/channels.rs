//! Payment channels over real HTTP: created with a clearing account, listed and read without
//! their credentials, org keys only, other orgs' channels invisible, bad input refused.

use hazina_tests::ApiServer;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::common::other_org;

const SECRET: &str = "consumer-secret-that-must-never-come-back";

fn mpesa_channel(number: &str) -> Value {
    json!({
        "provider": "mpesa",
        "channelNumber": number,
        "currencyCode": "KES",
        "name": "Paybill",
        "baseUrl": "http://127.0.0.1:8080/simulator/mpesa",
        "credentials": {
            "consumerKey": "consumer-key",
            "consumerSecret": SECRET,
            "passkey": "bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919",
        },
    })
}

#[tokio::test]
async fn a_channel_gets_a_clearing_account_and_never_shows_its_credentials() {
    let server = ApiServer::start().await;
    let (status, channel) =
        server.post(&server.org_key, "/v1/payment-channels", &mpesa_channel("174379")).await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    assert_eq!(channel["provider"], "mpesa");
    assert_eq!(channel["channelNumber"], "174379");
    assert_eq!(channel["credentialsSet"], json!(["consumerKey", "consumerSecret", "passkey"]));
    assert!(!channel.to_string().contains(SECRET), "{channel}");

    let account = channel["clearingAccountId"].as_str().unwrap();
    let (status, account) = server.get(&server.org_key, &format!("/v1/accounts/{account}")).await;
    assert_eq!(status, StatusCode::OK, "{account}");
    assert_eq!(account["kind"], "channel");
    assert_eq!(account["balance"]["currencyCode"], "KES");
    assert_eq!(account["balance"]["actual"], "0.00");

    let id = channel["channelId"].as_str().unwrap();
    let (status, read) = server.get(&server.org_key, &format!("/v1/payment-channels/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, channel);
    let (status, list) = server.get(&server.org_key, "/v1/payment-channels").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["channels"], json!([channel]));
    assert!(!list.to_string().contains(SECRET));

    // At rest they are sealed: the database holds their names, not their values.
    let client = server.db.connect().await.unwrap();
    let stored: Value = client
        .query_one("SELECT credentials FROM payment_channels WHERE id = $1::text::uuid", &[&id])
        .await
        .unwrap()
        .get(0);
    assert!(!stored.to_string().contains(SECRET), "{stored}");
    assert!(stored["sealed"].as_str().is_some_and(|s| s.starts_with("v1:")), "{stored}");
    assert_eq!(stored["names"], channel["credentialsSet"]);
}

#[tokio::test]
async fn a_channel_number_is_unique_per_provider_and_org_and_a_duplicate_changes_nothing() {
    let server = ApiServer::start().await;
    let (status, _) =
        server.post(&server.org_key, "/v1/payment-channels", &mpesa_channel("600000")).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) =
        server.post(&server.org_key, "/v1/payment-channels", &mpesa_channel("600000")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "channel_exists");
    // No second clearing account was made.
    let client = server.db.connect().await.unwrap();
    let row = client
        .query_one("SELECT count(*) FROM accounts WHERE kind = 'channel'", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, i64>(0), 1);
}

#[tokio::test]
async fn only_org_keys_manage_channels_and_other_orgs_cannot_see_them() {
    let server = ApiServer::start().await;
    let (status, body) =
        server.post(&server.app_key, "/v1/payment-channels", &mpesa_channel("600001")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, _) = server.get(&server.app_key, "/v1/payment-channels").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = server.get("hz_0000000000000000_nope", "/v1/payment-channels").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (_, channel) =
        server.post(&server.org_key, "/v1/payment-channels", &mpesa_channel("600002")).await;
    let id = channel["channelId"].as_str().unwrap();
    let (other, _) = other_org(&server).await;
    let (status, _) = server.get(&other, &format!("/v1/payment-channels/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = server.get(&other, "/v1/payment-channels").await;
    assert_eq!(list["channels"], json!([]));
}

#[tokio::test]
async fn bad_channels_are_refused_with_stable_codes() {
    let server = ApiServer::start().await;
    let cases = [
        (json!({ "channelNumber": "12" }), "invalid_channel_number"),
        (json!({ "channelNumber": "17437a" }), "invalid_channel_number"),
        (json!({ "currencyCode": "XYZ" }), "invalid_currency"),
        (json!({ "baseUrl": "ftp://example.com" }), "invalid_base_url"),
        (json!({ "baseUrl": "http://a b" }), "invalid_base_url"),
        (json!({ "credentials": { "consumerKey": "k" } }), "missing_credentials"),
        (
            json!({ "credentials": { "consumerKey": "k", "consumerSecret": "" } }),
            "invalid_credential",
        ),
        (
            json!({ "credentials": { "consumerKey": "k", "consumerSecret": "s", "pin": "1" } }),
            "unknown_credential",
        ),
        (json!({ "provider": "airtel" }), "invalid_body"),
        (json!({ "surprise": true }), "invalid_body"),
        (
            json!({ "provider": "momo", "channelNumber": "momo-account",
                    "credentials": { "apiUser": "u", "apiKey": "k" } }),
            "missing_credentials",
        ),
    ];
    for (change, code) in cases {
        let mut body = mpesa_channel("174379");
        for (field, value) in change.as_object().unwrap() {
            body[field] = value.clone();
        }
        let (status, problem) = server.post(&server.org_key, "/v1/payment-channels", &body).await;
        assert!(status.is_client_error(), "{change}: {status} {problem}");
        assert_eq!(problem["code"], code, "{change}: {problem}");
    }
    let (_, list) = server.get(&server.org_key, "/v1/payment-channels").await;
    assert_eq!(list["channels"], json!([]));
    let momo = json!({
        "provider": "momo", "channelNumber": "momo-account", "currencyCode": "UGX",
        "baseUrl": "https://sandbox.momodeveloper.mtn.com",
        "credentials": { "apiUser": "u", "apiKey": "k", "subscriptionKey": "s",
                         "targetEnvironment": "sandbox" },
    });
    let (status, body) = server.post(&server.org_key, "/v1/payment-channels", &momo).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}

#[tokio::test]
async fn the_old_channels_path_still_serves_marked_deprecated() {
    let server = ApiServer::start().await;
    let response = server
        .http
        .post(format!("{}/v1/channels", server.base))
        .bearer_auth(&server.org_key)
        .json(&mpesa_channel("174379"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()["deprecation"], "true");
    assert!(response.headers()["link"].to_str().unwrap().contains("/v1/payment-channels"));
    let channel: Value = response.json().await.unwrap();
    // The same channel under its new path, which is not deprecated.
    let id = channel["channelId"].as_str().unwrap();
    let response = server
        .http
        .get(format!("{}/v1/payment-channels/{id}", server.base))
        .bearer_auth(&server.org_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get("deprecation").is_none());
    assert_eq!(response.json::<Value>().await.unwrap(), channel);

    let (_, document) = server.get(&server.org_key, "/openapi.json").await;
    let paths = &document["paths"];
    for (path, method) in [
        ("/v1/channels", "post"),
        ("/v1/channels", "get"),
        ("/v1/channels/{channel_id}", "get"),
        ("/v1/channels/{channel_id}/c2b-registration", "post"),
        ("/v1/channels/{channel_id}/treasury-limit", "put"),
    ] {
        assert_eq!(paths[path][method]["deprecated"], true, "{method} {path}");
        let new = path.replace("/v1/channels", "/v1/payment-channels");
        assert_ne!(paths[&new][method]["deprecated"], true, "{method} {new}");
        assert_ne!(paths[path][method]["operationId"], paths[&new][method]["operationId"]);
    }
}

//! Apps and keys through the API: what a name may be, and keys for apps the org lacks.

use hazina_tests::ApiServer;
use reqwest::StatusCode;
use serde_json::json;

/// A name is counted as sent, holds no control character anywhere (a trailing newline too)
/// and is not blank: exactly what the document's `maxLength` and pattern say.
#[tokio::test]
async fn names_are_refused_as_the_document_says() {
    let server = ApiServer::start().await;
    for name in ["shop\n", "\tshop", "   ", &format!(" {}", "x".repeat(100))] {
        let (status, body) =
            server.post(&server.org_key, "/v1/apps", &json!({ "name": name })).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_name")),
            "{name:?}: {body}"
        );
    }
    let (status, body) = server
        .post(&server.org_key, "/v1/apps", &json!({ "name": format!(" {} ", "x".repeat(98)) }))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "x".repeat(98), "stored trimmed");
}

/// A key for an app the org does not have names what is missing: 404, never a 422 for a
/// request the document allows.
#[tokio::test]
async fn a_key_for_an_unknown_app_is_not_found() {
    let server = ApiServer::start().await;
    let app = uuid::Uuid::now_v7();
    let (status, body) =
        server.post(&server.org_key, "/v1/keys", &json!({ "name": "probe", "appId": app })).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("app_not_found")),
        "{body}"
    );
}

/// The issue's own example: a purse whose name holds a NUL was a 503 that a client would retry
/// forever; it is a 422, and a `%00` in a path a 400, and nothing is made.
#[tokio::test]
async fn a_nul_anywhere_is_a_client_error_and_changes_nothing() {
    let server = ApiServer::start().await;
    let (status, body) = server
        .post(
            &server.org_key,
            "/v1/purses",
            &json!({ "currencyCode": "KES", "name": "flo\u{0}at" }),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_body")),
        "{body}"
    );
    let (status, body) = server.get(&server.org_key, "/v1/purses/a%00b").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_path")),
        "{body}"
    );
    let (_, purses) = server.get(&server.org_key, "/v1/purses").await;
    assert_eq!(purses["purses"], json!([]), "{purses}");
}

/// A body is a JSON object: serde would read a struct from an array of its fields, which the
/// document does not allow.
#[tokio::test]
async fn a_body_that_is_not_an_object_is_refused() {
    let server = ApiServer::start().await;
    for body in [json!([null, null]), json!([]), json!(7)] {
        let (status, problem) = server.post(&server.app_key, "/v1/auth-tokens", &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {problem}");
        assert_eq!(problem["code"], "invalid_body", "{body}");
    }
}

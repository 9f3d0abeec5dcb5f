//! The OpenAPI document and its browser, served by the binary itself.

use hazina_tests::ApiServer;
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn the_openapi_document_describes_every_route_and_needs_no_key() {
    let server = ApiServer::start().await;
    let (status, document) = server.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"), "{}", document["openapi"]);
    let paths = document["paths"].as_object().unwrap();
    for path in ["/v1/apps", "/v1/keys", "/v1/purses", "/v1/payments", "/v1/accounts/{account_id}"]
    {
        assert!(paths.contains_key(path), "{path} missing from {:?}", paths.keys());
    }
    assert!(document["components"]["securitySchemes"]["bearer"].is_object());
    assert!(document["components"]["schemas"]["Problem"].is_object());
}

#[tokio::test]
async fn the_openapi_document_states_the_limits_the_server_enforces() {
    let server = ApiServer::start().await;
    let (_, document) = server.call(Method::GET, "/openapi.json", None, None).await;
    let schemas = &document["components"]["schemas"];
    let property = |schema: &str, name: &str| schemas[schema]["properties"][name].clone();
    // Every limit below is also refused with a 422 by the handlers (customers.rs, money.rs).
    for (schema, name, limit, value) in [
        ("Tags", "tags", "maxItems", 100),
        ("SecondaryIds", "secondaryIds", "maxItems", 100),
        ("Metadata", "metadata", "maxProperties", 100),
        ("NewActivity", "properties", "maxProperties", 50),
        ("NewActivity", "key", "maxLength", 256),
        ("Tag", "value", "maxLength", 256),
        ("CustomerNumber", "number", "maxLength", 256),
        ("NewReminder", "payload", "maxLength", 4096),
        ("NewReminder", "interval", "maximum", 31_622_400),
        ("NewPayment", "narration", "maxLength", 500),
        ("NewPurse", "name", "maxLength", 100),
    ] {
        let found = property(schema, name);
        let stated = found[limit].as_u64().or_else(|| {
            // Optional fields are `oneOf [null, the type]` or a `type` array.
            found["oneOf"].as_array()?.iter().find_map(|branch| branch[limit].as_u64())
        });
        assert_eq!(stated, Some(value), "{schema}.{name} {limit}: {found}");
    }
}

#[tokio::test]
async fn the_docs_page_is_served_from_the_binary() {
    let server = ApiServer::start().await;
    let page = server.http.get(format!("{}/docs/", server.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    // Its assets come from this server, not a CDN.
    assert!(!html.contains("https://"), "{html}");
    let script =
        server.http.get(format!("{}/docs/swagger-ui-bundle.js", server.base)).send().await.unwrap();
    assert_eq!(script.status(), StatusCode::OK);
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_show_the_pipeline() {
    let server = ApiServer::start().await;
    let (status, _) = server
        .post(&server.org_key, "/v1/purses", &serde_json::json!({ "currencyCode": "KES" }))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let response = server.http.get(format!("{}/metrics", server.base)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain"));
    let text = response.text().await.unwrap();
    let line = text
        .lines()
        .find(|line| {
            line.starts_with("http_requests_total")
                && line.contains("route=\"/v1/purses\"")
                && line.contains("status=\"201\"")
        })
        .unwrap_or_else(|| panic!("no request counter for the purse: {text}"));
    let count: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(count >= 1.0, "{line}");
    assert!(text.contains("http_request_duration_seconds_bucket"), "{text}");
    for name in [
        "hazina_pipeline_queue_depth",
        "hazina_pipeline_batch_size_count",
        "hazina_pipeline_overloaded_total",
    ] {
        assert!(text.contains(name), "{name} missing: {text}");
    }
}

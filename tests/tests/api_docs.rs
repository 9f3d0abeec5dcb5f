//! The OpenAPI document and its browser, served by the binary itself.

// A test fails by panicking, so unwrapping is how these tests assert.
#![allow(clippy::unwrap_used, clippy::expect_used)]

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

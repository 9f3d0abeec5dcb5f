//! The forms' protections over plain HTTP: the session cookie's attributes, the CSRF token
//! of every form that changes something, the `Origin` check of signing in, and sessions
//! ended by their key's revocation.

use hazina_tests::ApiServer;
use reqwest::StatusCode;
use reqwest::header::{COOKIE, LOCATION, ORIGIN, SET_COOKIE};
use serde_json::json;

/// A client that shows redirects instead of following them, and keeps no cookies.
pub(crate) fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// `text` as a form field's value (percent-encoded but for unreserved characters).
pub(crate) fn form_encoded(text: &str) -> String {
    text.bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-_.~".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

/// Signs in with `key`, sending `origin` as the `Origin`: the answer.
async fn post_sign_in(server: &ApiServer, key: &str, origin: Option<&str>) -> reqwest::Response {
    let mut request = client()
        .post(format!("{}/ui/login", server.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("key={}", form_encoded(key)));
    if let Some(origin) = origin {
        request = request.header(ORIGIN, origin);
    }
    request.send().await.unwrap()
}

/// Signs in with `key`: the `Cookie` header to send, and the `Set-Cookie` received.
pub(crate) async fn signed_in(server: &ApiServer, key: &str) -> (String, String) {
    let answer = post_sign_in(server, key, Some(&server.base)).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(answer.headers()[LOCATION], "/ui/");
    let set = answer.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    let cookie = set.split(';').next().unwrap().to_owned();
    assert!(cookie.starts_with("hazina_session="), "{set}");
    (cookie, set)
}

/// `GET` a UI page with the cookie: the status, the `Location` and the body.
pub(crate) async fn page(
    server: &ApiServer,
    path: &str,
    cookie: &str,
) -> (StatusCode, String, String) {
    let answer =
        client().get(format!("{}{path}", server.base)).header(COOKIE, cookie).send().await.unwrap();
    let location = answer
        .headers()
        .get(LOCATION)
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (answer.status(), location, answer.text().await.unwrap())
}

/// The CSRF token in a page's sign-out form.
pub(crate) fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// `POST /ui/logout` with the cookie, this `Origin` and this body.
async fn sign_out(server: &ApiServer, cookie: &str, origin: &str, body: &str) -> reqwest::Response {
    client()
        .post(format!("{}/ui/logout", server.base))
        .header(COOKIE, cookie)
        .header(ORIGIN, origin)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

async fn sessions(server: &ApiServer) -> i64 {
    let client = server.db.connect().await.unwrap();
    client
        .query_one("SELECT count(*) FROM ui_sessions WHERE org_id = $1", &[&server.org.0])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_form_without_the_sessions_csrf_token_changes_nothing() {
    let server = ApiServer::start().await;
    let (cookie, set) = signed_in(&server, &server.org_key).await;
    // HttpOnly, SameSite=Strict, the UI's path; not Secure over plain http.
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=43200"] {
        assert!(set.contains(attribute), "{set} lacks {attribute}");
    }
    assert!(!set.contains("Secure"), "{set}");
    let (status, _, html) = page(&server, "/ui/", &cookie).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-page=\"trial-balance\""));
    let csrf = csrf_of(&html);
    assert_eq!(sessions(&server).await, 1);

    // Without the token, with a wrong one, or from another site: 403, and still signed in.
    for (origin, body, code) in [
        (server.base.as_str(), String::new(), "csrf_token_invalid"),
        (server.base.as_str(), "csrf=not-the-token".to_owned(), "csrf_token_invalid"),
        (server.base.as_str(), format!("csrf={csrf}&csrf=x"), "csrf_token_invalid"),
        ("http://attacker.example", format!("csrf={csrf}"), "cross_origin_forbidden"),
    ] {
        let answer = sign_out(&server, &cookie, origin, &body).await;
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{body}");
        assert!(answer.headers().get(SET_COOKIE).is_none());
        let html = answer.text().await.unwrap();
        assert!(html.contains(&format!("data-error-code=\"{code}\"")), "{body}: {html}");
        assert_eq!(sessions(&server).await, 1, "{body}");
        assert_eq!(page(&server, "/ui/", &cookie).await.0, StatusCode::OK);
    }

    // With it: signed out, the row gone, the cookie removed, pages lead to signing in.
    let answer = sign_out(&server, &cookie, &server.base, &format!("csrf={csrf}")).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert_eq!(answer.headers()[LOCATION], "/ui/login");
    assert!(answer.headers()[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(sessions(&server).await, 0);
    let (status, location, _) = page(&server, "/ui/", &cookie).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/ui/login"));
}

#[tokio::test]
async fn signing_in_takes_an_org_key_from_this_servers_pages_only() {
    let server = ApiServer::start().await;
    for origin in [None, Some("http://attacker.example"), Some("null")] {
        let answer = post_sign_in(&server, &server.org_key, origin).await;
        assert_eq!(answer.status(), StatusCode::FORBIDDEN, "{origin:?}");
        assert!(answer.headers().get(SET_COOKIE).is_none());
        let html = answer.text().await.unwrap();
        assert!(html.contains("data-error-code=\"cross_origin_forbidden\""), "{html}");
    }
    let (status, body) =
        server.post(&server.app_key, "/v1/auth-tokens", &json!({ "ttlSeconds": 60 })).await;
    assert!(status.is_success(), "{status} {body}");
    let client_token = body["token"].as_str().unwrap().to_owned();
    for (key, status, code) in [
        ("hz_0123456789abcdef_not-a-key", StatusCode::UNAUTHORIZED, "unauthorized"),
        ("", StatusCode::UNAUTHORIZED, "unauthorized"),
        (server.app_key.as_str(), StatusCode::FORBIDDEN, "org_key_required"),
        (client_token.as_str(), StatusCode::FORBIDDEN, "client_token_forbidden"),
    ] {
        let answer = post_sign_in(&server, key, Some(&server.base)).await;
        assert_eq!(answer.status(), status, "{code}");
        assert!(answer.headers().get(SET_COOKIE).is_none());
        let html = answer.text().await.unwrap();
        assert!(html.contains(&format!("data-error-code=\"{code}\"")), "{html}");
        assert!(!html.contains(key) || key.is_empty(), "the page repeats the key");
    }
    assert_eq!(sessions(&server).await, 0);
    // A cookie that names no session is no session.
    let forged = format!(
        "hazina_session={}.{}.{}",
        server.org.0.simple(),
        uuid::Uuid::now_v7().simple(),
        "A".repeat(43)
    );
    let (status, location, _) = page(&server, "/ui/", &forged).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/ui/login"));
}

#[tokio::test]
async fn revoking_the_key_ends_its_sessions() {
    let server = ApiServer::start().await;
    let (status, key) =
        server.post(&server.org_key, "/v1/keys", &json!({ "name": "finance team" })).await;
    assert_eq!(status, StatusCode::CREATED, "{key}");
    let (cookie, _) = signed_in(&server, key["token"].as_str().unwrap()).await;
    let (other, _) = signed_in(&server, &server.org_key).await;
    assert_eq!(page(&server, "/ui/trial-balance", &cookie).await.0, StatusCode::OK);
    let path = format!("/v1/keys/{}", key["keyId"].as_str().unwrap());
    let (status, body) =
        server.call(reqwest::Method::DELETE, &path, Some(&server.org_key), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, location, _) = page(&server, "/ui/trial-balance", &cookie).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/ui/login"));
    // Another key's session goes on.
    assert_eq!(page(&server, "/ui/trial-balance", &other).await.0, StatusCode::OK);
}

//! The reconciliation, imports, stuck-payment and period-close forms over plain HTTP: each
//! refused without the session's CSRF token, and with bad input a 4xx error page with the
//! API's code — and in every case nothing changed. The upload route alone takes a body larger
//! than a form.

use hazina_tests::ApiServer;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, ORIGIN};

use crate::forms::{client, csrf_of, form_encoded, page, signed_in};
use crate::harness::api;
use crate::ops::Env;

/// A signed-in client: the cookie and the session's CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

async fn session(server: &ApiServer) -> Session {
    let (cookie, _) = signed_in(server, &server.org_key).await;
    let (status, _, html) = page(server, "/ui/reconciliation", &cookie).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    Session { csrf: csrf_of(&html), cookie }
}

/// Posts a form (`fields`, encoded here) to `path`: the status, `Location` and body.
async fn post(
    server: &ApiServer,
    session: &Session,
    path: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let body: Vec<String> =
        fields.iter().map(|(name, value)| format!("{name}={}", form_encoded(value))).collect();
    let answer = client()
        .post(format!("{}{path}", server.base))
        .header(COOKIE, &session.cookie)
        .header(ORIGIN, &server.base)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(body.join("&"))
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let location = answer
        .headers()
        .get(LOCATION)
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, answer.text().await.unwrap())
}

/// A multipart upload of `file` with the other fields; `csrf` `None` leaves the token out.
async fn upload(
    server: &ApiServer,
    session: &Session,
    csrf: Option<&str>,
    channel: &str,
    format: &str,
    file: &[u8],
) -> (StatusCode, String, String) {
    let boundary = "hazina-test-boundary-7d3f";
    let mut body = Vec::new();
    let mut field = |name: &str, value: &str| {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    };
    if let Some(csrf) = csrf {
        field("csrf", csrf);
    }
    field("channel", channel);
    field("format", format);
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; \
             filename=\"statement.csv\"\r\nContent-Type: text/csv\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(file);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let answer = client()
        .post(format!("{}/ui/imports", server.base))
        .header(COOKIE, &session.cookie)
        .header(ORIGIN, &server.base)
        .header(CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let status = answer.status();
    let location = answer
        .headers()
        .get(LOCATION)
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, answer.text().await.unwrap())
}

/// Asserts an error page with `status` and `code`.
fn refused(answer: &(StatusCode, String, String), status: StatusCode, code: &str) {
    assert_eq!(answer.0, status, "{code}: {}", answer.2);
    assert!(answer.2.contains(&format!("data-error-code=\"{code}\"")), "{code}: {}", answer.2);
}

#[tokio::test]
async fn the_reconciliation_forms_refuse_bad_input_and_change_nothing() {
    let env = Env::start().await;
    let server = &env.server;
    let session = session(server).await;
    let channel = env.channel_id.as_str();
    let unknown = uuid::Uuid::now_v7().to_string();
    let csrf = session.csrf.as_str();
    refused(
        &run(server, &session, "not-the-token", channel, "2026-01-01", "2026-01-31", "").await,
        StatusCode::FORBIDDEN,
        "csrf_token_invalid",
    );
    refused(
        &run(server, &session, csrf, "x", "2026-01-01", "2026-01-31", "").await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    );
    refused(
        &run(server, &session, csrf, channel, "January", "2026-01-31", "").await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    );
    refused(
        &run(server, &session, csrf, &unknown, "2026-01-01", "2026-01-31", "").await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    refused(
        &run(server, &session, csrf, channel, "2026-02-01", "2026-01-31", "").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_period",
    );
    refused(
        &run(server, &session, csrf, channel, "2026-01-01", "2026-01-31", "-1").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_amount",
    );
    let runs = api(server, "/v1/reconciliation/runs").await;
    assert_eq!(runs["runs"].as_array().unwrap().len(), 0, "{runs}");
    // A good one: to its page.
    let (status, location, _) =
        run(server, &session, csrf, channel, "2026-01-01", "2026-01-31", "0.50").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.starts_with("/ui/reconciliation/runs/"), "{location}");
    let (status, _, html) = page(server, &location, &session.cookie).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("amounts within 0.50"), "{html}");

    // Exceptions: unknown, or asked for badly; nothing assigned or resolved.
    let path = format!("/ui/reconciliation/exceptions/{unknown}/resolution");
    refused(
        &post(server, &session, &path, &[("action", "write_off"), ("reason", "x")]).await,
        StatusCode::FORBIDDEN,
        "csrf_token_invalid",
    );
    refused(
        &post(server, &session, &path, &[("csrf", csrf), ("action", "write_off"), ("reason", "x")])
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    refused(
        &post(server, &session, &path, &[("csrf", csrf), ("action", "burn"), ("reason", "x")])
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    );
    refused(
        &post(server, &session, &path, &[("csrf", csrf), ("action", "adjust"), ("reason", "x")])
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "resolution_not_allowed",
    );
    refused(
        &post(server, &session, "/ui/reconciliation/exceptions/x/resolution", &[("csrf", csrf)])
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_path",
    );
    let path = format!("/ui/reconciliation/exceptions/{unknown}/assignment");
    refused(
        &post(server, &session, &path, &[("csrf", csrf), ("owner", " ")]).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_value",
    );
    refused(
        &post(server, &session, &path, &[("csrf", csrf), ("owner", "amina")]).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    refused(
        &post(server, &session, &path, &[("csrf", csrf), ("colour", "red")]).await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    );
    let queue = "/ui/reconciliation/exceptions?status=closed";
    let (status, _, html) = page(server, queue, &session.cookie).await;
    refused(&(status, String::new(), html), StatusCode::BAD_REQUEST, "invalid_query");
}

/// Starts a run through the form.
async fn run(
    server: &ApiServer,
    session: &Session,
    csrf: &str,
    channel: &str,
    from: &str,
    to: &str,
    tolerance: &str,
) -> (StatusCode, String, String) {
    let fields = [
        ("csrf", csrf),
        ("channel", channel),
        ("from", from),
        ("to", to),
        ("amount_tolerance", tolerance),
    ];
    post(server, session, "/ui/reconciliation/runs", &fields).await
}

#[tokio::test]
async fn an_upload_is_checked_before_it_starts_and_may_be_far_larger_than_a_form() {
    let env = Env::start().await;
    let server = &env.server;
    let session = session(server).await;
    let channel = env.channel_id.as_str();
    let csrf = Some(session.csrf.as_str());
    let file = crate::ops::statement(&[("QX1", "Pay Bill from 254700000001", "5.00", "", "5.00")]);
    let file = file.as_bytes();
    refused(
        &upload(server, &session, None, channel, "mpesa_csv", file).await,
        StatusCode::FORBIDDEN,
        "csrf_token_invalid",
    );
    refused(
        &upload(server, &session, Some("wrong"), channel, "mpesa_csv", file).await,
        StatusCode::FORBIDDEN,
        "csrf_token_invalid",
    );
    refused(
        &upload(server, &session, csrf, "x", "mpesa_csv", file).await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    );
    let unknown = uuid::Uuid::now_v7().to_string();
    refused(
        &upload(server, &session, csrf, &unknown, "mpesa_csv", file).await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    refused(
        &upload(server, &session, csrf, channel, "pdf", file).await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    );
    refused(
        &upload(server, &session, csrf, channel, "mpesa_csv", b"").await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "statement_unreadable",
    );
    // From another site's page: refused before the body is read.
    let answer = client()
        .post(format!("{}/ui/imports", server.base))
        .header(COOKIE, &session.cookie)
        .header(ORIGIN, "http://attacker.example")
        .header(CONTENT_TYPE, "multipart/form-data; boundary=x")
        .body(format!(
            "--x\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{}\r\n--x--\r\n",
            session.csrf
        ))
        .send()
        .await
        .unwrap();
    let answer = (answer.status(), String::new(), answer.text().await.unwrap());
    refused(&answer, StatusCode::FORBIDDEN, "cross_origin_forbidden");
    // Not multipart: refused as such.
    refused(
        &post(server, &session, "/ui/imports", &[("csrf", &session.csrf), ("channel", channel)])
            .await,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported_media_type",
    );
    let (_, _, html) = page(server, "/ui/imports", &session.cookie).await;
    assert!(!html.contains("data-upload="), "nothing started: {html}");

    // A file of 200 KiB, far above a form's 16 KiB, is taken; it is no statement, which its
    // import says in the table with the API's code.
    let large = "not a statement\r\n".repeat(200 * 1024 / 17);
    let answer = upload(server, &session, csrf, channel, "", large.as_bytes()).await;
    assert_eq!(
        (answer.0, answer.1.as_str()),
        (StatusCode::SEE_OTHER, "/ui/imports"),
        "{}",
        answer.2
    );
    let failed =
        hazina_tests::wait_for("the upload's end", std::time::Duration::from_secs(20), || async {
            let (_, _, html) = page(server, "/ui/imports", &session.cookie).await;
            (html.contains("data-status=\"failed\"")).then_some(html)
        })
        .await
        .unwrap();
    assert!(failed.contains("data-upload-error=\"statement_unreadable\""), "{failed}");
    // A good one is imported.
    let answer = upload(server, &session, csrf, channel, "mpesa_csv", file).await;
    assert_eq!(answer.0, StatusCode::SEE_OTHER, "{}", answer.2);
    let imported =
        hazina_tests::wait_for("the import", std::time::Duration::from_secs(20), || async {
            let (_, _, html) = page(server, "/ui/imports", &session.cookie).await;
            (html.contains("data-status=\"imported\"")).then_some(html)
        })
        .await
        .unwrap();
    assert!(!imported.contains("http-equiv=\"refresh\""), "nothing runs: {imported}");
    let imports = api(server, "/v1/statements/imports").await;
    assert_eq!(imports["imports"].as_array().unwrap().len(), 1, "{imports}");
    // Who imported it, as the API records it: the session's key.
    let by = imports["imports"][0]["importedBy"].as_str().unwrap();
    assert!(by.starts_with("key ") && by.len() == 4 + 36, "{by}");
}

#[tokio::test]
async fn the_stuck_payment_and_period_close_forms_refuse_bad_input_and_change_nothing() {
    let server = ApiServer::start().await;
    let session = session(&server).await;
    let csrf = session.csrf.as_str();
    let unknown = uuid::Uuid::now_v7();
    let path = format!("/ui/stuck-payments/{unknown}/settlement");
    refused(
        &post(&server, &session, &path, &[("outcome", "failed"), ("reason", "x")]).await,
        StatusCode::FORBIDDEN,
        "csrf_token_invalid",
    );
    refused(
        &post(&server, &session, &path, &[("csrf", csrf), ("outcome", "maybe"), ("reason", "x")])
            .await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    );
    refused(
        &post(&server, &session, &path, &[("csrf", csrf), ("outcome", "failed"), ("reason", " ")])
            .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_value",
    );
    refused(
        &post(&server, &session, &path, &[("csrf", csrf), ("outcome", "failed"), ("reason", "x")])
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
    );
    let (status, _, html) =
        page(&server, "/ui/stuck-payments?older_than_minutes=0", &session.cookie).await;
    refused(&(status, String::new(), html), StatusCode::BAD_REQUEST, "invalid_query");

    let today = chrono::Utc::now().date_naive();
    let tomorrow = (today + chrono::Duration::days(1)).to_string();
    let past = (today - chrono::Duration::days(30)).to_string();
    let close = "/ui/periods/close";
    refused(
        &post(&server, &session, close, &[("through_date", "2026-01-31")]).await,
        StatusCode::FORBIDDEN,
        "csrf_token_invalid",
    );
    refused(
        &post(&server, &session, close, &[("csrf", csrf), ("through_date", "31/01/2026")]).await,
        StatusCode::BAD_REQUEST,
        "invalid_body",
    );
    refused(
        &post(&server, &session, close, &[("csrf", csrf), ("through_date", &tomorrow)]).await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "period_in_future",
    );
    let long = "n".repeat(501);
    refused(
        &post(
            &server,
            &session,
            close,
            &[("csrf", csrf), ("through_date", &past), ("note", &long)],
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY,
        "invalid_note",
    );
    assert_eq!(api(&server, "/v1/periods").await.as_array().unwrap().len(), 0);
    let (status, location, _) = post(
        &server,
        &session,
        close,
        &[("csrf", csrf), ("through_date", &past), ("through_time", "12:00")],
    )
    .await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/ui/periods"));
    let closes = api(&server, "/v1/periods").await;
    assert_eq!(closes[0]["through"], format!("{past}T12:00:00Z"), "{closes}");
}

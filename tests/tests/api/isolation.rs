//! Tenant isolation, generated from the OpenAPI document the server serves: every route that
//! names a resource in its path answers another org's keys exactly as it answers for a resource
//! that does not exist (404 `not_found`), and a second app's key as for what no app keeps; no
//! answer shows them anything of it, and nothing of it changes. And an app key never sees
//! another app's app data, not even in a payment's context.
//!
//! The routes come from the document, so a new route is covered as soon as it is served. A
//! route whose path parameter this file cannot fill (see [`World::resource`]) or whose body it
//! does not know (see [`BODIES`]) fails the test with a message saying what to add.

use hazina_ledger::OrgId;
use hazina_ledger::store::Store;
use hazina_server::tenancy;
use hazina_tests::ApiServer;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use uuid::Uuid;

/// The wallet id of every customer made here.
const WALLET: &str = "main";
const FAR_FUTURE: &str = "2999-01-01T00:00:00Z";
const LONG_AGO: &str = "2000-01-01T00:00:00Z";

/// Makes a request body for a route, given the caller's own purse (so that whatever a body
/// names is the caller's, and an answer is about the path alone). Fresh values each call, so
/// that repeating a call never meets a conflict with the previous one.
type MakeBody = fn(&str) -> Value;

/// A minimal valid body for every route with a path parameter that takes one, by
/// `METHOD /path`. A route missing here fails the test: add a body that passes validation.
const BODIES: &[(&str, MakeBody)] = &[
    (
        "POST /v1/payment-channels/{channel_id}/c2b-registration",
        |purse| json!({ "receivingPurseId": purse }),
    ),
    (
        "PUT /v1/payment-channels/{channel_id}/treasury-limit",
        |_| json!({ "treasuryLimit": { "currencyCode": "KES", "amount": "1" } }),
    ),
    // The deprecated alias of the two above.
    (
        "POST /v1/channels/{channel_id}/c2b-registration",
        |purse| json!({ "receivingPurseId": purse }),
    ),
    (
        "PUT /v1/channels/{channel_id}/treasury-limit",
        |_| json!({ "treasuryLimit": { "currencyCode": "KES", "amount": "1" } }),
    ),
    (
        "POST /v1/customers/{customer_id}/activities",
        |_| json!({ "source": "probe", "sessionId": "s1", "key": "probe" }),
    ),
    ("PUT /v1/customers/{customer_id}/app-data", |_| json!({ "string": "probe" })),
    (
        "POST /v1/customers/{customer_id}/numbers",
        |_| json!({ "number": format!("{}@example.com", fresh_name()), "provider": "email" }),
    ),
    ("POST /v1/customers/{customer_id}/adopt", |_| json!({ "otherCustomerId": Uuid::new_v4() })),
    (
        "PUT /v1/customers/{customer_id}/metadata",
        |_| json!({ "metadata": { "probe": { "string": "probe" } } }),
    ),
    ("PUT /v1/customers/{customer_id}/reminders/{key}", |_| json!({ "remindAt": FAR_FUTURE })),
    (
        "PUT /v1/customers/{customer_id}/secondary-ids",
        |_| json!({ "secondaryIds": [{ "key": "probe", "value": fresh_name() }] }),
    ),
    (
        "PUT /v1/customers/{customer_id}/tags",
        |_| json!({ "tags": [{ "key": "probe", "value": "probe" }] }),
    ),
    ("PATCH /v1/webhook-endpoints/{endpoint_id}", |_| json!({ "description": "probe" })),
    ("POST /v1/webhook-endpoints/{endpoint_id}/secrets", |_| json!({})),
    (
        "POST /v1/webhook-endpoints/{endpoint_id}/redeliveries",
        |_| json!({ "from": LONG_AGO, "to": FAR_FUTURE }),
    ),
    (
        "POST /v1/events/{event_id}/reply",
        |_| json!({ "body": { "kind": "ussd", "text": "probe", "isTerminal": true } }),
    ),
    (
        "POST /v1/reconciliation/exceptions/{exception_id}/assignment",
        |_| json!({ "note": "probe" }),
    ),
    (
        "POST /v1/reconciliation/exceptions/{exception_id}/resolution",
        |_| json!({ "action": "write_off", "reason": "probe" }),
    ),
    (
        "POST /v1/stuck-payments/{transaction_id}/settlement",
        |_| json!({ "outcome": "failed", "reason": "probe" }),
    ),
    (
        "POST /v1/customers/{customer_id}/wallets",
        |_| json!({ "walletId": fresh_name(), "currencyCode": "KES" }),
    ),
];

/// A value for a required query parameter, by name: `None` fails the test (add one here).
fn query_value(name: &str) -> Option<&'static str> {
    match name {
        "from" => Some(LONG_AGO),
        "to" => Some(FAR_FUTURE),
        // A tag key (`GET /v1/tags/customers`): org A's, which another org's list never shows.
        "key" => Some("tier"),
        "provider" => Some("email"),
        "number" => Some("probe@example.com"),
        // A channel no org has (`GET /v1/reconciliation/drift`).
        "channelId" => Some("0190f2c4-0000-7000-8000-000000000000"),
        _ => None,
    }
}

fn fresh_name() -> String {
    format!("missing-{}", Uuid::new_v4().simple())
}

/// An answer: its status, its body as sent (reports are CSV) and as JSON (`Null` if not).
#[derive(Debug)]
struct Answer {
    status: StatusCode,
    text: String,
    json: Value,
}

async fn send(
    server: &ApiServer,
    method: &Method,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> Answer {
    let mut request =
        server.http.request(method.clone(), format!("{}{path}", server.base)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap_or_else(|error| panic!("{method} {path}: {error}"));
    let status = response.status();
    let text = if is_event_stream(&response) {
        stream_for_a_while(response).await
    } else {
        response.text().await.unwrap()
    };
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer { status, text, json }
}

fn is_event_stream(response: &reqwest::Response) -> bool {
    response
        .headers()
        .get("content-type")
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"))
}

/// What an event stream sends in its first second (it would go on for long).
async fn stream_for_a_while(mut response: reqwest::Response) -> String {
    let mut text = String::new();
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(1);
    while let Ok(Ok(Some(chunk))) = tokio::time::timeout_at(until, response.chunk()).await {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    text
}

async fn ok(server: &ApiServer, method: &Method, path: &str, key: &str, body: &Value) -> Value {
    let answer = send(server, method, path, key, Some(body)).await;
    assert!(answer.status.is_success(), "{method} {path}: {} {}", answer.status, answer.text);
    answer.json
}

/// A path parameter: its name, the collection it names a resource of (the literal segment
/// before it, e.g. `reminders` for `/reminders/{key}`), and whether it is a UUID.
#[derive(Debug)]
struct PathParam {
    collection: String,
    name: String,
    uuid: bool,
}

/// One operation of the document.
#[derive(Debug)]
struct Route {
    method: Method,
    template: String,
    params: Vec<PathParam>,
    has_body: bool,
    required_query: Vec<String>,
}

impl Route {
    fn name(&self) -> String {
        format!("{} {}", self.method, self.template)
    }

    /// The path with these parameter values (in order) and the required query parameters;
    /// `Err` names what this file does not know how to fill.
    fn path(&self, values: &[String]) -> Result<String, String> {
        let mut values = values.iter();
        let mut path = String::new();
        for segment in self.template.split('/').filter(|s| !s.is_empty()) {
            path.push('/');
            if segment.starts_with('{') {
                path.push_str(values.next().ok_or("too few path values")?);
            } else {
                path.push_str(segment);
            }
        }
        let mut query = Vec::new();
        for name in &self.required_query {
            let value = query_value(name).ok_or_else(|| {
                format!(
                    "{}: required query parameter `{name}` has no value: add one to query_value",
                    self.name()
                )
            })?;
            query.push(format!("{name}={value}"));
        }
        if !query.is_empty() {
            path.push('?');
            path.push_str(&query.join("&"));
        }
        Ok(path)
    }

    fn body_maker(&self) -> Option<MakeBody> {
        let name = self.name();
        BODIES.iter().find(|(route, _)| *route == name).map(|(_, make)| *make)
    }
}

/// Every operation of the document, in its order.
fn routes(document: &Value) -> Vec<Route> {
    let mut routes = Vec::new();
    for (template, item) in document["paths"].as_object().expect("the document has paths") {
        for (method, operation) in item.as_object().expect("a path item is an object") {
            let Ok(method) = method.to_uppercase().parse::<Method>() else { continue };
            let operations =
                [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
            if !operations.contains(&method) {
                continue;
            }
            let declared = operation["parameters"].as_array().cloned().unwrap_or_default();
            let declared_format = |name: &str| {
                declared
                    .iter()
                    .find(|p| p["name"] == name && p["in"] == "path")
                    .map(|p| p["schema"]["format"] == "uuid")
            };
            let mut params = Vec::new();
            let mut collection = String::new();
            for segment in template.split('/').filter(|s| !s.is_empty()) {
                match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => params.push(PathParam {
                        collection: collection.clone(),
                        name: name.to_owned(),
                        uuid: declared_format(name).unwrap_or(false),
                    }),
                    None => segment.clone_into(&mut collection),
                }
            }
            let required_query = declared
                .iter()
                .filter(|p| p["in"] == "query" && p["required"] == true)
                .map(|p| p["name"].as_str().unwrap().to_owned())
                .collect();
            routes.push(Route {
                method,
                template: template.clone(),
                params,
                has_body: operation.get("requestBody").is_some(),
                required_query,
            });
        }
    }
    routes
}

/// Org A (the server's own org) with one resource of every kind, its app A1 (the server's
/// app) that keeps app data and a reminder for customer C, a second app A2, and org B.
#[derive(Debug)]
struct World {
    org_key: String,
    a1_key: String,
    a2_key: String,
    b_org_key: String,
    b_app_key: String,
    /// Org B's own purse, for bodies that name one.
    b_purse: String,
    /// C: a customer with org data (a tag, a secondary id, metadata), app A1's app data and
    /// reminder, a wallet and a payment into it.
    customer: String,
    /// A customer with a wallet like C's and nothing of any app: what a second app should
    /// find at C.
    twin: String,
    purse: String,
    wallet_account: String,
    channel: String,
    spare_key_id: String,
    spare_key_token: String,
    /// A1's payment from the purse into C's wallet, with A1's app data in its context.
    payment: String,
    secondary_value: String,
    reminder_key: String,
    /// A1's app data: a canonical base64 text, so that it reads the same as a value and in
    /// a transfer's context (which holds the bytes in base64).
    app_data: String,
    reminder_payload: String,
    /// App A1's webhook endpoint (of a type nothing here records, so it never changes).
    webhook_endpoint: String,
    /// A messaging channel whose provider never answers, a message queued on it (to a
    /// customer of its own) and a send-by-tag job.
    messaging_channel: String,
    message: String,
    message_job: String,
    /// An event of app A1's payment (a reply to it is refused: it is no session step).
    event: String,
    /// A statement import on the payment channel, a run over it and the exception it raised
    /// (a line the ledger does not know).
    statement_import: String,
    run: String,
    exception: String,
    /// Everything of org A that org B must never see.
    a_markers: Vec<String>,
}

impl World {
    #[allow(clippy::too_many_lines)] // One resource of each kind, made in order.
    async fn make(server: &ApiServer) -> Self {
        let pool = server.db.pool();
        let a2 = tenancy::insert_app(&pool, server.org, "second").await.unwrap();
        let a2_key = tenancy::insert_key(&pool, server.org, Some(a2.app_id), "k").await.unwrap();
        let b = OrgId::generate();
        Store::new(pool.clone()).create_org(b, "other").await.unwrap();
        let b_app = tenancy::insert_app(&pool, b, "other").await.unwrap();
        let b_org_key = tenancy::insert_key(&pool, b, None, "k").await.unwrap().token;
        let b_app_key = tenancy::insert_key(&pool, b, Some(b_app.app_id), "k").await.unwrap().token;
        let org_key = server.org_key.clone();
        let a1_key = server.app_key.clone();
        let (post, put) = (Method::POST, Method::PUT);
        let b_purse = purse(server, &b_org_key).await;
        let purse = purse(server, &org_key).await;
        let (customer, wallet_account) = customer_with_wallet(server, "+254712000001").await;
        let (twin, twin_account) = customer_with_wallet(server, "+254712000002").await;

        let unique = Uuid::new_v4().simple().to_string();
        let tag_value = format!("tag-{unique}");
        let secondary_value = format!("member-{unique}");
        let note = format!("note-{unique}");
        let reminder_key = format!("a1-reminder-{unique}");
        let reminder_payload = format!("a1-reminder-payload-{unique}");
        // 40 base64 characters are exactly 30 bytes: encoded again, they are the same text.
        let app_data = format!("A1appDat{unique}");
        let base = format!("/v1/customers/{customer}");
        let tags = json!({ "tags": [{ "key": "tier", "value": tag_value }] });
        ok(server, &put, &format!("{base}/tags"), &org_key, &tags).await;
        let ids = json!({ "secondaryIds": [{ "key": "member", "value": secondary_value }] });
        ok(server, &put, &format!("{base}/secondary-ids"), &org_key, &ids).await;
        let metadata = json!({ "metadata": { "note": { "string": note } } });
        ok(server, &put, &format!("{base}/metadata"), &org_key, &metadata).await;
        let reminder = json!({ "remindAt": FAR_FUTURE, "payload": reminder_payload });
        ok(server, &put, &format!("{base}/reminders/{reminder_key}"), &a1_key, &reminder).await;
        let payment =
            ok(server, &post, "/v1/payments", &a1_key, &payment_body(&purse, &customer, &app_data))
                .await;
        let payment = payment["transactionId"].as_str().unwrap().to_owned();

        let channel_body = json!({
            "provider": "mpesa", "channelNumber": "600100", "currencyCode": "KES",
            "baseUrl": "http://127.0.0.1:9",
            "credentials": { "consumerKey": "key", "consumerSecret": "secret" },
        });
        let channel = ok(server, &post, "/v1/payment-channels", &org_key, &channel_body).await;
        let spare = ok(server, &post, "/v1/keys", &org_key, &json!({ "name": "spare" })).await;
        let hook = json!({ "url": "http://127.0.0.1:9/hook", "eventTypes": ["webhook_endpoint.disabled"] });
        let hook = ok(server, &post, "/v1/webhook-endpoints", &a1_key, &hook).await;
        let webhook_endpoint = hook["endpointId"].as_str().unwrap().to_owned();
        let (messaging_channel, message, message_job) = messaging(server, &org_key, &a1_key).await;
        let event = app_event(server, &a1_key).await;

        let mut a_markers = vec![
            server.org.0.to_string(),
            server.app.to_string(),
            a2.app_id.to_string(),
            customer.clone(),
            twin.clone(),
            purse.clone(),
            wallet_account.clone(),
            twin_account,
            payment.clone(),
            channel["clearingAccountId"].as_str().unwrap().to_owned(),
            spare["prefix"].as_str().unwrap().to_owned(),
            tag_value,
            secondary_value.clone(),
            note,
            reminder_key.clone(),
            reminder_payload.clone(),
            app_data.clone(),
        ];
        let channel = channel["channelId"].as_str().unwrap().to_owned();
        let (statement_import, run, exception) = reconciled(server, &org_key, &channel).await;
        let spare_key_id = spare["keyId"].as_str().unwrap().to_owned();
        a_markers.extend([channel.clone(), spare_key_id.clone(), webhook_endpoint.clone()]);
        a_markers.extend([messaging_channel.clone(), message.clone(), message_job.clone()]);
        a_markers.push(event.clone());
        a_markers.extend([statement_import.clone(), run.clone(), exception.clone()]);
        Self {
            org_key,
            a1_key,
            a2_key: a2_key.token,
            b_org_key,
            b_app_key,
            b_purse,
            customer,
            twin,
            purse,
            wallet_account,
            channel,
            spare_key_id,
            spare_key_token: spare["token"].as_str().unwrap().to_owned(),
            payment,
            secondary_value,
            reminder_key,
            app_data,
            reminder_payload,
            webhook_endpoint,
            messaging_channel,
            message,
            message_job,
            event,
            statement_import,
            run,
            exception,
            a_markers,
        }
    }

    /// The org A resource a path parameter names: `None` when this file makes none (add one).
    fn resource(&self, param: &PathParam) -> Option<String> {
        let value = match (param.collection.as_str(), param.name.as_str()) {
            ("customers", "customer_id") => &self.customer,
            ("wallets", "wallet_id") => WALLET,
            ("tags", "key") => "tier",
            ("metadata", "key") => "note",
            ("secondary-ids", "key") => "member",
            ("secondary-ids", "value") => &self.secondary_value,
            ("reminders", "key") => &self.reminder_key,
            ("purses", "purse_id") => &self.purse,
            ("accounts", "account_id") => &self.wallet_account,
            ("payment-channels" | "channels", "channel_id") => &self.channel,
            ("keys", "key_id") => &self.spare_key_id,
            ("webhook-endpoints", "endpoint_id") => &self.webhook_endpoint,
            ("messaging-channels", "id") => &self.messaging_channel,
            ("messages", "id") => &self.message,
            ("message-jobs", "id") => &self.message_job,
            ("events", "event_id") => &self.event,
            ("payments" | "stuck-payments", "transaction_id") | ("transfers", "transfer_id") => {
                &self.payment
            }
            ("imports", "import_id") => &self.statement_import,
            ("runs", "run_id") => &self.run,
            ("exceptions", "exception_id") => &self.exception,
            _ => return None,
        };
        Some(value.to_owned())
    }

    /// What a second app of org A should find as it finds `resource`: the same, except that
    /// what belongs to app A1 is replaced by what no app has (the twin customer, a new
    /// reminder key).
    fn control(&self, param: &PathParam) -> Option<String> {
        match (param.collection.as_str(), param.name.as_str()) {
            ("customers", "customer_id") => Some(self.twin.clone()),
            ("reminders", "key") => Some(fresh_name()),
            // App A1's endpoint is as missing to app A2 as one that never was.
            ("webhook-endpoints", "endpoint_id") => Some(Uuid::new_v4().to_string()),
            _ => self.resource(param),
        }
    }

    /// What only app A1 may see.
    fn a1_secrets(&self) -> [&str; 2] {
        [&self.app_data, &self.reminder_payload]
    }
}

/// A statement of one line the ledger does not know, imported into the payment channel, and
/// a run over today that raises it as an exception: the import's, run's and exception's ids.
async fn reconciled(server: &ApiServer, org_key: &str, channel: &str) -> (String, String, String) {
    use base64::Engine as _;
    let now = (chrono::Utc::now() + chrono::Duration::hours(3)).format("%Y-%m-%d %H:%M:%S");
    let file = format!(
        "Receipt No.,Completion Time,Details,Transaction Status,Paid In,Withdrawn,Balance\r\n\
         QX99ISOLAT,{now},Pay Bill from 254700000009,Completed,75.00,,75.00\r\n"
    );
    let import = json!({
        "channelId": channel, "format": "mpesa_csv",
        "content": base64::engine::general_purpose::STANDARD.encode(file),
    });
    let import = ok(server, &Method::POST, "/v1/statements/imports", org_key, &import).await;
    let today = chrono::Utc::now().date_naive();
    let run = json!({
        "channelId": channel, "from": today.pred_opt().unwrap(), "to": today.succ_opt().unwrap(),
    });
    let run = ok(server, &Method::POST, "/v1/reconciliation/runs", org_key, &run).await;
    let (status, page) = server.get(org_key, "/v1/reconciliation/exceptions").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    (
        import["importId"].as_str().unwrap().to_owned(),
        run["runId"].as_str().unwrap().to_owned(),
        page["exceptions"][0]["exceptionId"].as_str().expect("an exception").to_owned(),
    )
}

/// A messaging channel whose provider never answers, a message queued on it by app A1 (to a
/// customer of its own, so that C's timeline never changes) and a job for a tag nobody has.
async fn messaging(server: &ApiServer, org_key: &str, a1_key: &str) -> (String, String, String) {
    let post = Method::POST;
    let sms = json!({
        "channel": "sms", "provider": "africastalking", "channelNumber": "21525",
        "baseUrl": "http://127.0.0.1:9", "credentials": { "username": "u", "apiKey": "k" },
        "unitPrice": { "currencyCode": "KES", "amount": "0" },
    });
    let sms = ok(server, &post, "/v1/messaging-channels", org_key, &sms).await;
    let channel = sms["id"].as_str().unwrap().to_owned();
    let text = json!({ "kind": "text", "text": "probe" });
    let message = json!({ "channelId": channel, "customerNumber": "+254712000009", "body": text });
    let message = ok(server, &post, "/v1/messages", a1_key, &message).await;
    let job = json!({ "channelId": channel, "tag": { "key": "nobody" }, "body": text });
    let job = ok(server, &post, "/v1/message-jobs", a1_key, &job).await;
    (channel, message["id"].as_str().unwrap().to_owned(), job["id"].as_str().unwrap().to_owned())
}

/// An event of the app whose key is `app_key` (its own, not one of no app).
async fn app_event(server: &ApiServer, app_key: &str) -> String {
    let events = send(server, &Method::GET, "/v1/events?limit=500", app_key, None).await.json;
    (events["events"].as_array().unwrap().iter())
        .find(|event| event["appId"] == json!(server.app.to_string()))
        .map(|event| event["id"].as_str().unwrap().to_owned())
        .expect("an event of app A1")
}

/// A new purse of the key's org that may go a million KES below zero.
async fn purse(server: &ApiServer, key: &str) -> String {
    let body = json!({ "currencyCode": "KES", "overdraftLimit": "1000000" });
    let purse = ok(server, &Method::POST, "/v1/purses", key, &body).await;
    purse["purseId"].as_str().unwrap().to_owned()
}

/// A new customer of org A with a KES wallet: its id and the wallet's account id.
async fn customer_with_wallet(server: &ApiServer, number: &str) -> (String, String) {
    let reference = json!({ "customerNumber": { "number": number, "provider": "cellular" } });
    let made = ok(server, &Method::POST, "/v1/customers", &server.app_key, &reference).await;
    let id = made["customerId"].as_str().unwrap().to_owned();
    let path = format!("/v1/customers/{id}/wallets");
    let body = json!({ "walletId": WALLET, "currencyCode": "KES" });
    let wallet = ok(server, &Method::POST, &path, &server.app_key, &body).await;
    (id, wallet["accountId"].as_str().unwrap().to_owned())
}

/// A payment of 100 KES from the purse into the customer's wallet, carrying app data and an
/// activity for the customer.
fn payment_body(purse: &str, customer: &str, app_data: &str) -> Value {
    json!({
        "debitParty": { "purse": { "purseId": purse } },
        "creditParty": { "wallet": { "customerId": customer, "walletId": WALLET } },
        "value": { "currencyCode": "KES", "amount": "100" },
        "narration": "isolation",
        "context": {
            "appData": { "bytes": app_data },
            "activity": { "source": "isolation", "sessionId": "s1", "key": "paid" },
        },
    })
}

/// Org A as its own keys see it: everything a foreign call could have touched.
async fn snapshot(server: &ApiServer, world: &World) -> Vec<(String, Value)> {
    let (customer, twin) = (&world.customer, &world.twin);
    let account = &world.wallet_account;
    let reads = [
        (&world.org_key, format!("/v1/customers/{customer}")),
        (&world.a1_key, format!("/v1/customers/{customer}")),
        (&world.a1_key, format!("/v1/customers/{customer}/reminders")),
        (&world.org_key, format!("/v1/customers/{customer}/timeline")),
        (&world.org_key, format!("/v1/customers/{customer}/wallets")),
        (&world.org_key, format!("/v1/customers/{twin}")),
        (&world.org_key, format!("/v1/purses/{}", world.purse)),
        (&world.org_key, format!("/v1/accounts/{account}")),
        (&world.org_key, format!("/v1/accounts/{account}/statement")),
        (&world.org_key, format!("/v1/transfers/{}", world.payment)),
        (&world.org_key, format!("/v1/payments/{}", world.payment)),
        (&world.org_key, format!("/v1/payment-channels/{}", world.channel)),
        (&world.a1_key, format!("/v1/webhook-endpoints/{}", world.webhook_endpoint)),
        (&world.org_key, "/v1/keys".to_owned()),
        (&world.org_key, "/v1/apps".to_owned()),
        (&world.org_key, format!("/v1/reports/trial-balance?from={LONG_AGO}&to={FAR_FUTURE}")),
        // Org A's period closes: another org's close never closes A's books.
        (&world.org_key, "/v1/periods".to_owned()),
        (&world.org_key, format!("/v1/reports/balance-sheet?at={FAR_FUTURE}")),
        (&world.org_key, format!("/v1/reports/income-statement?from={LONG_AGO}&to={FAR_FUTURE}")),
        // The spare key still works.
        (&world.spare_key_token, "/v1/purses".to_owned()),
    ];
    let mut seen = Vec::new();
    for (key, path) in reads {
        let answer = send(server, &Method::GET, &path, key, None).await;
        assert_eq!(answer.status, StatusCode::OK, "GET {path}: {}", answer.text);
        seen.push((path, answer.json));
    }
    seen
}

/// What belongs to app A1 (its app data and reminders for C), and the balances.
async fn a1_private(server: &ApiServer, world: &World) -> Value {
    let read = |key: &str, path: String| {
        let key = key.to_owned();
        async move { send(server, &Method::GET, &path, &key, None).await.json }
    };
    let state = read(&world.a1_key, format!("/v1/customers/{}", world.customer)).await;
    let wallet = read(&world.org_key, format!("/v1/accounts/{}", world.wallet_account)).await;
    let purse = read(&world.org_key, format!("/v1/purses/{}", world.purse)).await;
    json!({
        "appData": state["appData"],
        "reminders": state["reminders"],
        "wallet": wallet["balance"],
        "purse": purse["balance"],
    })
}

fn compare(what: &str, before: &[(String, Value)], after: &[(String, Value)]) -> Vec<String> {
    before
        .iter()
        .zip(after)
        .filter(|((_, was), (_, is))| was != is)
        .map(|((path, was), (_, is))| {
            format!("{what} changed GET {path}:\n  was {was}\n  is  {is}")
        })
        .collect()
}

/// Calls one route with org B's keys for org A's resource and for missing ones; the problems
/// found.
async fn check_other_org(server: &ApiServer, world: &World, route: &Route) -> Vec<String> {
    let name = route.name();
    let mut problems = Vec::new();
    let mut real = Vec::new();
    for param in &route.params {
        match world.resource(param) {
            Some(value) => real.push(value),
            None => problems.push(format!(
                "{name}: path parameter `{}` (under /{}/) names no resource this test makes in \
                 org A: make one in World::make and return it from World::resource (and from \
                 World::control if it belongs to one app)",
                param.name, param.collection
            )),
        }
    }
    let make_body = route.body_maker();
    if route.has_body && make_body.is_none() {
        problems.push(format!(
            "{name} takes a request body and BODIES has none: add a minimal valid one"
        ));
    }
    if !problems.is_empty() {
        return problems;
    }
    let fresh: Vec<String> = route
        .params
        .iter()
        .map(|param| if param.uuid { Uuid::new_v4().to_string() } else { fresh_name() })
        .collect();
    let (foreign_path, missing_path) = match (route.path(&real), route.path(&fresh)) {
        (Ok(foreign), Ok(missing)) => (foreign, missing),
        (Err(why), _) | (_, Err(why)) => return vec![why],
    };
    let mut not_found = false;
    for (label, key) in
        [("org B's org key", &world.b_org_key), ("org B's app key", &world.b_app_key)]
    {
        let body = make_body.map(|make| make(&world.b_purse));
        let foreign = send(server, &route.method, &foreign_path, key, body.as_ref()).await;
        let body = make_body.map(|make| make(&world.b_purse));
        let missing = send(server, &route.method, &missing_path, key, body.as_ref()).await;
        if (foreign.status, &foreign.text) != (missing.status, &missing.text) {
            problems.push(format!(
                "{name} with {label}: org A's resource answers {} {}, a missing one {} {}",
                foreign.status, foreign.text, missing.status, missing.text
            ));
        }
        if let Some(marker) = world.a_markers.iter().find(|m| foreign.text.contains(m.as_str())) {
            problems.push(format!("{name} with {label} shows org A's {marker}: {}", foreign.text));
        }
        let code = foreign.json["code"].as_str().unwrap_or_default();
        match foreign.status {
            StatusCode::NOT_FOUND if code == "not_found" => not_found = true,
            StatusCode::FORBIDDEN if code.ends_with("_key_required") => {}
            other => problems.push(format!(
                "{name} with {label} answers {other} {}: expected 404 not_found (or 403 for a key \
                 of the wrong kind)",
                foreign.text
            )),
        }
    }
    if !not_found {
        problems.push(format!("{name}: neither of org B's keys was answered 404 not_found"));
    }
    problems
}

/// Calls one route with app A2's key for what app A1 keeps at customer C, and for what no app
/// keeps (the twin, a new reminder key); the problems found.
async fn check_second_app(server: &ApiServer, world: &World, route: &Route) -> Vec<String> {
    let name = route.name();
    let values = |pick: fn(&World, &PathParam) -> Option<String>| {
        route.params.iter().map(|param| pick(world, param)).collect::<Option<Vec<_>>>()
    };
    // Unknown parameters and bodies were reported by `check_other_org`.
    let (Some(owned), Some(control)) = (values(World::resource), values(World::control)) else {
        return Vec::new();
    };
    let make_body = route.body_maker();
    if route.has_body && make_body.is_none() {
        return Vec::new();
    }
    let (Ok(owned_path), Ok(control_path)) = (route.path(&owned), route.path(&control)) else {
        return Vec::new();
    };
    let key = &world.a2_key;
    let body = make_body.map(|make| make(&world.purse));
    let owned = send(server, &route.method, &owned_path, key, body.as_ref()).await;
    let body = make_body.map(|make| make(&world.purse));
    let control = send(server, &route.method, &control_path, key, body.as_ref()).await;
    let mut problems = Vec::new();
    let differs = owned.status != control.status
        || (owned.status.is_client_error() && owned.text != control.text);
    if differs {
        problems.push(format!(
            "{name} with app A2's key: what app A1 keeps answers {} {}, what no app keeps {} {}",
            owned.status, owned.text, control.status, control.text
        ));
    }
    if matches!(
        owned.status,
        StatusCode::BAD_REQUEST
            | StatusCode::UNSUPPORTED_MEDIA_TYPE
            | StatusCode::UNPROCESSABLE_ENTITY
    ) {
        problems.push(format!(
            "{name} with app A2's key refuses the request itself ({} {}): fix its entry in BODIES",
            owned.status, owned.text
        ));
    }
    if let Some(secret) = world.a1_secrets().into_iter().find(|s| owned.text.contains(s)) {
        problems
            .push(format!("{name} shows app A2 what belongs to app A1 ({secret}): {}", owned.text));
    }
    problems
}

/// A route without a resource in its path (a list, a report, a create): for a `GET`, what
/// org B and app A2 are shown must hold nothing of org A's, respectively app A1's.
async fn check_listing(server: &ApiServer, world: &World, route: &Route) -> Vec<String> {
    if route.method != Method::GET {
        return Vec::new();
    }
    let name = route.name();
    let path = match route.path(&[]) {
        Ok(path) => path,
        Err(why) => return vec![why],
    };
    let mut problems = Vec::new();
    for (label, key) in
        [("org B's org key", &world.b_org_key), ("org B's app key", &world.b_app_key)]
    {
        let answer = send(server, &Method::GET, &path, key, None).await;
        if let Some(marker) = world.a_markers.iter().find(|m| answer.text.contains(m.as_str())) {
            problems.push(format!("{name} with {label} shows org A's {marker}: {}", answer.text));
        }
    }
    let answer = send(server, &Method::GET, &path, &world.a2_key, None).await;
    if let Some(secret) = world.a1_secrets().into_iter().find(|s| answer.text.contains(s)) {
        problems.push(format!("{name} shows app A2 app A1's {secret}: {}", answer.text));
    }
    problems
}

#[tokio::test]
async fn every_route_answers_for_another_tenants_resource_as_for_a_missing_one() {
    let server = ApiServer::start().await;
    let world = World::make(&server).await;
    let (status, document) = server.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK, "{document}");
    let routes = routes(&document);
    let with_resource: Vec<&Route> = routes.iter().filter(|r| !r.params.is_empty()).collect();
    assert!(
        with_resource.iter().any(|r| r.template == "/v1/customers/{customer_id}")
            && with_resource.iter().any(|r| r.template == "/v1/transfers/{transfer_id}"),
        "the document's routes were not found: {document}"
    );
    let mut problems = Vec::new();
    for (name, _) in BODIES {
        if !routes.iter().any(|route| route.name() == *name) {
            problems.push(format!("BODIES has {name}, which the document no longer has"));
        }
    }

    // Org B's keys, for org A's resources: as if they did not exist, and nothing changes.
    let before = snapshot(&server, &world).await;
    for route in &routes {
        if route.params.is_empty() {
            problems.extend(check_listing(&server, &world, route).await);
        } else {
            problems.extend(check_other_org(&server, &world, route).await);
        }
    }
    let after = snapshot(&server, &world).await;
    problems.extend(compare("org B's calls", &before, &after));

    // App A2's key, for what app A1 keeps: as if no app kept anything, and A1's is unchanged.
    // (A2 may change the org's data, such as tags: any key of the org may.)
    let before = a1_private(&server, &world).await;
    for route in &with_resource {
        problems.extend(check_second_app(&server, &world, route).await);
    }
    let after = a1_private(&server, &world).await;
    if before != after {
        problems.push(format!("app A2's calls changed app A1's:\n  was {before}\n  is  {after}"));
    }

    assert!(
        problems.is_empty(),
        "{} problems over {} routes ({} with a resource in the path):\n{}",
        problems.len(),
        routes.len(),
        with_resource.len(),
        problems.join("\n")
    );
}

#[tokio::test]
async fn an_app_key_sees_only_its_own_app_data_in_a_payments_context() {
    let server = ApiServer::start().await;
    let world = World::make(&server).await;
    let get = |key: &str, path: String| {
        let key = key.to_owned();
        let server = &server;
        async move {
            let answer = send(server, &Method::GET, &path, &key, None).await;
            assert_eq!(answer.status, StatusCode::OK, "GET {path}: {}", answer.text);
            answer
        }
    };
    let transfer = format!("/v1/transfers/{}", world.payment);

    // The org and the app that wrote it see app A1's app data in the payment's context.
    for key in [&world.org_key, &world.a1_key] {
        let seen = get(key, transfer.clone()).await.json;
        assert_eq!(seen["context"]["hazina"]["app_data"]["value"], world.app_data, "{seen}");
    }

    // App A2 sees the transfer, its parties and activity (activities are the org's), but not
    // app A1's app data: not in the transfer, the payment, the statement or the timeline.
    let seen = get(&world.a2_key, transfer.clone()).await.json;
    let hazina = &seen["context"]["hazina"];
    assert!(hazina.get("app_data").is_none(), "{seen}");
    assert_eq!(hazina["activity"]["key"], "paid", "{seen}");
    assert_eq!(hazina["customers"][0], world.customer.as_str(), "{seen}");
    assert_eq!(seen["context"]["payment"]["narration"], "isolation", "{seen}");
    let customer = &world.customer;
    for path in [
        transfer.clone(),
        format!("/v1/payments/{}", world.payment),
        format!("/v1/accounts/{}/statement", world.wallet_account),
        format!("/v1/customers/{customer}/timeline"),
        format!("/v1/customers/{customer}"),
    ] {
        let answer = get(&world.a2_key, path.clone()).await;
        assert!(!answer.text.contains(&world.app_data), "GET {path}: {}", answer.text);
    }

    // A2's own payment: A2 and the org see its app data, A1 does not.
    let a2_data = format!("A2appDat{}", Uuid::new_v4().simple());
    let body = payment_body(&world.purse, customer, &a2_data);
    let paid = ok(&server, &Method::POST, "/v1/payments", &world.a2_key, &body).await;
    let a2_transfer = format!("/v1/transfers/{}", paid["transactionId"].as_str().unwrap());
    for key in [&world.org_key, &world.a2_key] {
        let seen = get(key, a2_transfer.clone()).await.json;
        assert_eq!(seen["context"]["hazina"]["app_data"]["value"], a2_data, "{seen}");
    }
    let seen = get(&world.a1_key, a2_transfer).await;
    assert!(!seen.text.contains(&a2_data), "{}", seen.text);
    assert!(seen.json["context"]["hazina"].get("app_data").is_none(), "{}", seen.text);
}

#[tokio::test]
async fn bodies_naming_another_orgs_resources_are_answered_as_if_they_were_missing() {
    let server = ApiServer::start().await;
    let world = World::make(&server).await;
    let b_purse = json!({ "purse": { "purseId": world.b_purse } });
    let payment = |debit: Value| {
        json!({
            "debitParty": debit, "creditParty": b_purse,
            "value": { "currencyCode": "KES", "amount": "1" },
        })
    };
    let transfer = |account: &str| {
        json!({
            "type": "post", "code": "probe",
            "legs": [
                { "accountId": account, "side": "debit",
                  "value": { "currencyCode": "KES", "amount": "1" } },
                { "accountId": world.b_purse, "side": "credit",
                  "value": { "currencyCode": "KES", "amount": "1" } },
            ],
        })
    };
    let missing = Uuid::new_v4().to_string();
    let purse = |id: &str| payment(json!({ "purse": { "purseId": id } }));
    let wallet = |id: &str| payment(json!({ "wallet": { "customerId": id, "walletId": WALLET } }));
    let key = |app: &str| json!({ "name": "probe", "appId": app });
    let by_secondary_id =
        |value: &str| json!({ "secondaryId": { "key": "member", "value": value } });
    // What org B sends naming org A's resource, and the same naming a missing one.
    let cases = [
        ("/v1/payments", purse(&world.purse), purse(&missing)),
        ("/v1/payments", wallet(&world.customer), wallet(&missing)),
        ("/v1/transfers", transfer(&world.wallet_account), transfer(&missing)),
        ("/v1/transfers", transfer(&world.purse), transfer(&missing)),
        ("/v1/keys", key(&server.app.to_string()), key(&missing)),
        ("/v1/customers", by_secondary_id(&world.secondary_value), by_secondary_id(&fresh_name())),
    ];
    let before = snapshot(&server, &world).await;
    let mut problems = Vec::new();
    for (path, foreign_body, missing_body) in &cases {
        for (label, key) in [("org key", &world.b_org_key), ("app key", &world.b_app_key)] {
            let foreign = send(&server, &Method::POST, path, key, Some(foreign_body)).await;
            let missing = send(&server, &Method::POST, path, key, Some(missing_body)).await;
            // Transfers answer with their own new id: compare what says why.
            let why = |answer: &Answer| {
                let json = &answer.json;
                (
                    answer.status,
                    json["code"].clone(),
                    json["reason"].clone(),
                    json["detail"].clone(),
                )
            };
            if why(&foreign) != why(&missing) {
                problems.push(format!(
                    "POST {path} with org B's {label}, naming org A's resource: {} {}; naming a \
                     missing one: {} {}",
                    foreign.status, foreign.text, missing.status, missing.text
                ));
            }
            if foreign.status.is_success() {
                problems
                    .push(format!("POST {path} with org B's {label} succeeded: {}", foreign.text));
            }
            if let Some(marker) = world.a_markers.iter().find(|m| foreign.text.contains(m.as_str()))
            {
                problems.push(format!(
                    "POST {path} with org B's {label} shows {marker}: {}",
                    foreign.text
                ));
            }
        }
    }
    let after = snapshot(&server, &world).await;
    problems.extend(compare("org B's requests", &before, &after));
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

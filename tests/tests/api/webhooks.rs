//! Webhooks end to end: real receivers (axum on loopback) that check Standard Webhooks
//! signatures with an HMAC written here, retries after errors and timeouts, a customer's
//! order, redelivery, disabling, the address check, a worker that crashed after claiming, and
//! two workers sharing deliveries; and delivery over https to a receiver whose certificate a
//! private root issued, trusted only when the service is told to.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hazina_ledger::OrgId;
use hazina_server::app::Services;
use hazina_server::events::{self, EventType, NewEvent};
use hazina_server::webhooks::{NewEndpoint, Scope, Settings, WebhookError};
use hazina_tests::{ApiServer, fresh_db, wait_for, webhook_test_settings};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use uuid::Uuid;

const PATIENCE: Duration = Duration::from_secs(30);

/// A request a receiver took, and what it answered (0: it never answered).
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    user_agent: String,
    body: Vec<u8>,
    answered: u16,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// How a receiver answers its `n`-th request (from 0).
#[derive(Clone, Copy, Debug)]
enum Reply {
    Status(u16),
    /// Never answers (the sender's timeout must end the attempt).
    Hang,
}

type Behaviour = Arc<dyn Fn(usize) -> Reply + Send + Sync>;

/// A webhook receiver on a loopback port.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    /// A receiver over plain HTTP.
    async fn start(behaviour: impl Fn(usize) -> Reply + Send + Sync + 'static) -> Self {
        let (app, got) = Self::app(behaviour);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .unwrap();
        });
        Self { url, got, _stop: stop }
    }

    /// A receiver over TLS at `https://localhost:<port>/hook`, with `acceptor`'s certificate.
    async fn start_tls(
        acceptor: TlsAcceptor,
        behaviour: impl Fn(usize) -> Reply + Send + Sync + 'static,
    ) -> Self {
        let (app, got) = Self::app(behaviour);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("https://localhost:{}/hook", listener.local_addr().unwrap().port());
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            loop {
                let tcp = tokio::select! {
                    accepted = listener.accept() => match accepted {
                        Ok((tcp, _)) => tcp,
                        Err(_) => continue,
                    },
                    _ = &mut stopped => break,
                };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    // A client that does not trust the certificate ends the handshake.
                    let Ok(tls) = acceptor.accept(tcp).await else { return };
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(
                            hyper_util::rt::TokioIo::new(tls),
                            hyper_util::service::TowerToHyperService::new(app),
                        )
                        .await;
                });
            }
        });
        Self { url, got, _stop: stop }
    }

    fn app(
        behaviour: impl Fn(usize) -> Reply + Send + Sync + 'static,
    ) -> (axum::Router, Arc<Mutex<Vec<Received>>>) {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let behaviour: Behaviour = Arc::new(behaviour);
        let state = (Arc::clone(&got), behaviour);
        let app = axum::Router::new().route("/hook", axum::routing::post(take)).with_state(state);
        (app, got)
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits until `check` holds of what was received.
    async fn until(&self, what: &str, check: impl Fn(&[Received]) -> bool) -> Vec<Received> {
        wait_for(what, PATIENCE, || async {
            let got = self.received();
            check(&got).then_some(got)
        })
        .await
        .unwrap()
    }
}

async fn take(
    axum::extract::State((got, behaviour)): axum::extract::State<(
        Arc<Mutex<Vec<Received>>>,
        Behaviour,
    )>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let header =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let mut received = Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        user_agent: header("user-agent"),
        body: body.to_vec(),
        answered: 0,
    };
    let n = got.lock().unwrap().len();
    let reply = behaviour(n);
    if let Reply::Status(status) = reply {
        received.answered = status;
    }
    got.lock().unwrap().push(received);
    match reply {
        Reply::Status(status) => StatusCode::from_u16(status).unwrap(),
        Reply::Hang => std::future::pending().await,
    }
}

/// A private root (DER) and a TLS server setting with a certificate it issued for `localhost`
/// and 127.0.0.1.
struct Pki {
    root_der: Vec<u8>,
    acceptor: TlsAcceptor,
}

impl Pki {
    fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair, KeyUsagePurpose};
        let mut root_params = CertificateParams::new(Vec::new()).unwrap();
        root_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        root_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let root_key = KeyPair::generate().unwrap();
        let root = root_params.self_signed(&root_key).unwrap();
        let issuer = Issuer::new(root_params, root_key);
        let server_params =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        let server_key = KeyPair::generate().unwrap();
        let server = server_params.signed_by(&server_key, &issuer).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![server.der().clone()],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(server_key.serialize_der())),
            )
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Self { root_der: root.der().to_vec(), acceptor: TlsAcceptor::from(Arc::new(config)) }
    }
}

/// HMAC-SHA256 as RFC 2104 defines it, written here apart from the server's (ring).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner_pad: Vec<u8> = block.iter().map(|b| b ^ 0x36).collect();
    let outer_pad: Vec<u8> = block.iter().map(|b| b ^ 0x5c).collect();
    let inner = Sha256::new().chain_update(&inner_pad).chain_update(message).finalize();
    Sha256::new().chain_update(&outer_pad).chain_update(inner).finalize().into()
}

/// Whether one of the request's signatures is the secret's, as Standard Webhooks verifies.
fn verifies(secret: &str, id: &str, timestamp: &str, body: &[u8], signatures: &str) -> bool {
    let key = STANDARD.decode(secret.strip_prefix("whsec_").unwrap()).unwrap();
    let mut message = format!("{id}.{timestamp}.").into_bytes();
    message.extend_from_slice(body);
    let expected = format!("v1,{}", STANDARD.encode(hmac_sha256(&key, &message)));
    signatures.split(' ').any(|signature| signature == expected)
}

/// Records events of `org` in a transaction of their own; their ids.
async fn record(pool: &deadpool_postgres::Pool, org: OrgId, new: &[NewEvent]) -> Vec<Uuid> {
    let mut client = pool.get().await.unwrap();
    let tx = client.transaction().await.unwrap();
    let ids = events::record(&tx, org, new).await.unwrap();
    tx.commit().await.unwrap();
    ids
}

fn customer_created(customer: Uuid) -> NewEvent {
    NewEvent::new(
        EventType::CustomerCreated,
        json!({ "customerId": customer, "provider": null, "number": null }),
    )
    .customer(Some(customer))
}

/// The services over a fresh database with its first org, webhooks set as for tests (with
/// `settings` changed by `adjust`), and no worker running: the test drives the rounds.
async fn services(adjust: impl FnOnce(&mut Settings)) -> (hazina_tests::TestDb, Services, OrgId) {
    let db = fresh_db().await;
    let made = hazina_server::tenancy::bootstrap(&db.pool()).await.unwrap().unwrap();
    let services = Services::new(db.pool());
    let mut settings = webhook_test_settings();
    adjust(&mut settings);
    services.webhooks.configure(settings);
    (db, services, made.org)
}

fn endpoint_to(url: &str) -> NewEndpoint {
    NewEndpoint { app: None, url: url.to_owned(), event_types: Vec::new(), description: None }
}

#[tokio::test]
async fn deliveries_are_signed_with_every_live_secret_and_a_tampered_body_fails() {
    let server = ApiServer::start().await;
    let receiver = Receiver::start(|_| Reply::Status(204)).await;
    let (status, created) = server
        .post(&server.org_key, "/v1/webhook-endpoints", &json!({ "url": receiver.url }))
        .await;
    assert_eq!(status, 201, "{created}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"));
    let endpoint = created["endpointId"].as_str().unwrap().to_owned();

    let customer = Uuid::now_v7();
    let ids = record(&server.db.pool(), server.org, &[customer_created(customer)]).await;
    let got = receiver.until("the event", |got| !got.is_empty()).await;
    let first = &got[0];
    assert_eq!(first.id, ids[0].to_string());
    let body = first.json();
    assert_eq!(body["id"], ids[0].to_string());
    assert_eq!(body["type"], "customer.created");
    assert_eq!(body["customerId"], customer.to_string());
    let age = chrono::Utc::now().timestamp() - first.timestamp.parse::<i64>().unwrap();
    assert!((0..60).contains(&age), "a timestamp of now: {}", first.timestamp);
    assert!(verifies(&secret, &first.id, &first.timestamp, &first.body, &first.signature));
    let mut tampered = first.body.clone();
    tampered[1] ^= 0x01;
    assert!(!verifies(&secret, &first.id, &first.timestamp, &tampered, &first.signature));
    assert!(!verifies(&secret, &first.id, "1", &first.body, &first.signature));

    // Rotated: the old secret and the new one both sign until the overlap ends.
    let (status, rotated) = server
        .post(
            &server.org_key,
            &format!("/v1/webhook-endpoints/{endpoint}/secrets"),
            &json!({ "overlapSeconds": 3600 }),
        )
        .await;
    assert_eq!(status, 201, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    record(&server.db.pool(), server.org, &[customer_created(customer)]).await;
    let got = receiver.until("the second event", |got| got.len() >= 2).await;
    let second = &got[1];
    assert_eq!(second.signature.split(' ').count(), 2, "{}", second.signature);
    for secret in [&secret, &new_secret] {
        assert!(verifies(secret, &second.id, &second.timestamp, &second.body, &second.signature));
    }
    // The secret is never shown again.
    let (_, shown) =
        server.get(&server.org_key, &format!("/v1/webhook-endpoints/{endpoint}")).await;
    assert!(shown.get("secret").is_none(), "{shown}");
}

#[tokio::test]
async fn failed_attempts_are_retried_after_errors_and_timeouts_and_logged() {
    let server = ApiServer::start().await;
    let receiver = Receiver::start(|n| match n {
        0 => Reply::Status(500),
        1 => Reply::Hang,
        _ => Reply::Status(200),
    })
    .await;
    let (status, created) = server
        .post(&server.app_key, "/v1/webhook-endpoints", &json!({ "url": receiver.url }))
        .await;
    assert_eq!(status, 201, "{created}");
    let endpoint = created["endpointId"].as_str().unwrap().to_owned();
    assert_eq!(created["appId"], server.app.to_string());
    let ids = record(&server.db.pool(), server.org, &[customer_created(Uuid::now_v7())]).await;
    receiver.until("three attempts", |got| got.len() >= 3).await;
    let path = format!("/v1/webhook-endpoints/{endpoint}/deliveries");
    let log = wait_for("the delivery to succeed", PATIENCE, || async {
        let (_, page) = server.get(&server.app_key, &path).await;
        (page["deliveries"][0]["status"] == "succeeded").then_some(page)
    })
    .await
    .unwrap();
    let delivery = &log["deliveries"][0];
    assert_eq!(delivery["eventId"], ids[0].to_string());
    assert_eq!(delivery["attempts"], 3);
    assert_eq!(delivery["lastStatusCode"], 200);
    let attempts = delivery["attemptLog"].as_array().unwrap();
    let codes: Vec<&Value> = attempts.iter().map(|a| &a["statusCode"]).collect();
    assert_eq!(codes, [&json!(200), &Value::Null, &json!(500)], "{delivery}");
    assert!(attempts[1]["error"].as_str().unwrap().contains("no answer"), "{delivery}");
    assert!(attempts.iter().all(|a| a["latencyMs"].is_i64()));
    // Every attempt carried the same webhook-id.
    assert!(receiver.received().iter().all(|r| r.id == ids[0].to_string()));
    let (status, _) = server.get(&server.app_key, &format!("{path}?limit=0")).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_customers_events_arrive_in_order_even_when_attempts_fail() {
    let server = ApiServer::start().await;
    // Every third request fails.
    let receiver =
        Receiver::start(|n| if n % 3 == 0 { Reply::Status(503) } else { Reply::Status(200) }).await;
    let (status, _) = server
        .post(&server.org_key, "/v1/webhook-endpoints", &json!({ "url": receiver.url }))
        .await;
    assert_eq!(status, 201);
    let customers: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
    let pool = server.db.pool();
    for round in 0..10 {
        let new: Vec<NewEvent> = customers.iter().map(|c| customer_created(*c)).collect();
        record(&pool, server.org, &new).await;
        if round == 4 {
            // Events of no customer go too, unordered.
            record(&pool, server.org, &[NewEvent::new(EventType::CustomerCreated, json!({}))])
                .await;
        }
    }
    let got = receiver
        .until("31 events delivered", |got| {
            got.iter().filter(|r| (200..300).contains(&r.answered)).count() >= 31
        })
        .await;
    let mut next: HashMap<String, i64> = HashMap::new();
    let mut delivered: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    for received in &got {
        let body = received.json();
        let Some(customer) = body["customerId"].as_str().map(str::to_owned) else { continue };
        let sequence = body["sequence"].as_i64().unwrap();
        let expected = next.entry(customer.clone()).or_insert(0);
        // Never one of a customer's events while an earlier one is undelivered.
        assert!(sequence >= *expected, "{customer}: {sequence} came before {expected}");
        if (200..300).contains(&received.answered) {
            *expected = sequence + 1;
            delivered.entry(customer).or_default().push(sequence);
        }
    }
    assert_eq!(delivered.len(), 3);
    for (customer, sequences) in delivered {
        assert_eq!(sequences.len(), 10, "{customer}");
        assert!(sequences.windows(2).all(|w| w[0] < w[1]), "{customer}: {sequences:?}");
    }
}

#[tokio::test]
async fn an_event_or_a_time_range_is_delivered_again() {
    let server = ApiServer::start().await;
    let receiver = Receiver::start(|_| Reply::Status(200)).await;
    let (_, created) = server
        .post(&server.org_key, "/v1/webhook-endpoints", &json!({ "url": receiver.url }))
        .await;
    let endpoint = created["endpointId"].as_str().unwrap().to_owned();
    let ids = record(&server.db.pool(), server.org, &[customer_created(Uuid::now_v7())]).await;
    receiver.until("the event", |got| got.len() == 1).await;
    let path = format!("/v1/webhook-endpoints/{endpoint}/redeliveries");
    let wait_settled = || async {
        wait_for("the delivery to settle", PATIENCE, || async {
            let (_, page) = server
                .get(&server.org_key, &format!("/v1/webhook-endpoints/{endpoint}/deliveries"))
                .await;
            (page["deliveries"][0]["status"] == "succeeded").then_some(())
        })
        .await
        .unwrap();
    };
    wait_settled().await;
    let (status, queued) = server.post(&server.org_key, &path, &json!({ "eventId": ids[0] })).await;
    assert_eq!((status.as_u16(), &queued["queued"]), (202, &json!(1)), "{queued}");
    receiver.until("the event again", |got| got.len() == 2).await;
    wait_settled().await;
    let now = chrono::Utc::now();
    let range = json!({
        "from": now - chrono::Duration::hours(1),
        "to": now + chrono::Duration::hours(1),
    });
    let (status, queued) = server.post(&server.org_key, &path, &range).await;
    assert_eq!((status.as_u16(), &queued["queued"]), (202, &json!(1)), "{queued}");
    let got = receiver.until("the event a third time", |got| got.len() == 3).await;
    assert!(got.iter().all(|r| r.id == ids[0].to_string()));
    // Neither an event nor a range; an unknown event; another app's key.
    let (status, problem) = server.post(&server.org_key, &path, &json!({})).await;
    assert_eq!((status.as_u16(), &problem["code"]), (422, &json!("invalid_redelivery")));
    let (status, problem) =
        server.post(&server.org_key, &path, &json!({ "eventId": Uuid::now_v7() })).await;
    assert_eq!((status.as_u16(), &problem["code"]), (422, &json!("unknown_event")));
    let (status, _) = server.post(&server.app_key, &path, &json!({ "eventId": ids[0] })).await;
    assert_eq!(status, 404, "an app key sees no org-level endpoint");
}

#[tokio::test]
async fn an_endpoint_failing_for_too_long_is_disabled_with_an_event() {
    let (db, services, org) = services(|settings| {
        settings.retry_delays = vec![Duration::from_millis(20); 1000];
        settings.disable_after = Duration::from_millis(300);
    })
    .await;
    let receiver = Receiver::start(|_| Reply::Status(500)).await;
    let scope = Scope { org, app: None };
    let created = services.webhooks.create(scope, endpoint_to(&receiver.url)).await.unwrap();
    let id = created.endpoint.endpoint_id;
    record(&db.pool(), org, &[customer_created(Uuid::now_v7())]).await;
    let webhooks = Arc::clone(&services.webhooks);
    let disabled = wait_for("the endpoint to be disabled", PATIENCE, || async {
        webhooks.round().await.unwrap();
        let endpoint = webhooks.get(scope, id).await.unwrap();
        (!endpoint.enabled).then_some(endpoint)
    })
    .await
    .unwrap();
    assert_eq!(disabled.disabled_reason.as_deref(), Some("failing"));
    let attempts = receiver.received().len();
    assert!(attempts >= 2, "{attempts}");
    let client = db.pool().get().await.unwrap();
    let row = client
        .query_one(
            "SELECT payload FROM events WHERE org_id = $1 AND type = 'webhook_endpoint.disabled'",
            &[&org.0],
        )
        .await
        .unwrap();
    let payload: Value = row.get(0);
    assert_eq!(payload["endpointId"], id.to_string());
    // A disabled endpoint is sent nothing more.
    webhooks.round().await.unwrap();
    assert_eq!(receiver.received().len(), attempts);
}

#[tokio::test]
async fn private_addresses_are_refused_unless_the_operator_allows_them() {
    let (db, services, org) = services(|settings| settings.allow_private = false).await;
    let scope = Scope { org, app: None };
    for url in [
        "http://127.0.0.1:8080/hook",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://localhost/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://10.0.0.1/hook",
    ] {
        let refused = services.webhooks.create(scope, endpoint_to(url)).await.unwrap_err();
        assert!(
            matches!(&refused, WebhookError::Invalid { code, .. }
                if *code == hazina_server::code::Code::WebhookUrlNotAllowed),
            "{url}: {refused:?}"
        );
    }
    // Made while allowed, then no longer allowed: delivery refuses the address itself.
    let receiver = Receiver::start(|_| Reply::Status(200)).await;
    services.webhooks.configure(webhook_test_settings());
    let created = services.webhooks.create(scope, endpoint_to(&receiver.url)).await.unwrap();
    services.webhooks.configure(Settings { allow_private: false, ..webhook_test_settings() });
    record(&db.pool(), org, &[customer_created(Uuid::now_v7())]).await;
    services.webhooks.round().await.unwrap();
    let page =
        services.webhooks.deliveries(scope, created.endpoint.endpoint_id, None, 10).await.unwrap();
    let attempt = &page.deliveries[0].attempt_log[0];
    assert!(attempt.error.as_deref().unwrap_or_default().contains("not public"), "{attempt:?}");
    assert!(receiver.received().is_empty());

    // And over HTTP: the test server allows loopback, so a public-only server is the service
    // above; the API answers its refusal as a problem.
    let server = ApiServer::start().await;
    let (status, problem) = server
        .post(&server.org_key, "/v1/webhook-endpoints", &json!({ "url": "ftp://example.com/x" }))
        .await;
    assert_eq!((status.as_u16(), &problem["code"]), (422, &json!("invalid_webhook_url")));
}

#[tokio::test]
async fn deliveries_claimed_by_a_worker_that_crashed_are_delivered_after_its_lease() {
    let (db, services, org) =
        services(|settings| settings.lease = Duration::from_millis(300)).await;
    let receiver = Receiver::start(|_| Reply::Status(200)).await;
    let scope = Scope { org, app: None };
    services.webhooks.create(scope, endpoint_to(&receiver.url)).await.unwrap();
    let new: Vec<NewEvent> = (0..5).map(|_| customer_created(Uuid::now_v7())).collect();
    let ids = record(&db.pool(), org, &new).await;
    services.webhooks.fan_out().await.unwrap();
    // A worker claims them all under a lease, as `deliver` does, and dies before sending.
    let client = db.pool().get().await.unwrap();
    let claimed = client
        .execute(
            "UPDATE webhook_deliveries SET locked_until = now() + interval '300 milliseconds',
                 lease = gen_random_uuid()
             WHERE org_id = $1 AND status = 'pending'",
            &[&org.0],
        )
        .await
        .unwrap();
    assert_eq!(claimed, 5);
    let round = services.webhooks.deliver().await.unwrap();
    assert_eq!(round.claimed, 0, "leased deliveries are not claimed again");
    let webhooks = Arc::clone(&services.webhooks);
    wait_for("the deliveries after the lease", PATIENCE, || async {
        let round = webhooks.deliver().await.unwrap();
        (round.succeeded > 0).then_some(())
    })
    .await
    .unwrap();
    let got = receiver.until("every event", |got| got.len() >= 5).await;
    let mut received: Vec<String> = got.iter().map(|r| r.id.clone()).collect();
    let mut expected: Vec<String> = ids.iter().map(Uuid::to_string).collect();
    received.sort();
    expected.sort();
    assert_eq!(received, expected);
}

#[tokio::test]
async fn two_workers_deliver_each_event_exactly_once() {
    let (db, services, org) = services(|settings| settings.claim_batch = 40).await;
    let receiver = Receiver::start(|_| Reply::Status(200)).await;
    let scope = Scope { org, app: None };
    services.webhooks.create(scope, endpoint_to(&receiver.url)).await.unwrap();
    let customers: Vec<Uuid> = (0..20).map(|_| Uuid::now_v7()).collect();
    let mut new: Vec<NewEvent> = Vec::new();
    for i in 0..300 {
        new.push(if i % 2 == 0 {
            customer_created(customers[i % customers.len()])
        } else {
            NewEvent::new(EventType::CustomerCreated, json!({}))
        });
    }
    record(&db.pool(), org, &new).await;
    // Two workers, as two server processes run them, on one database.
    let stops: Vec<tokio::sync::oneshot::Sender<()>> = (0..2)
        .map(|_| {
            let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
            tokio::spawn(hazina_server::workers::deliver_webhooks(
                Arc::clone(&services.webhooks),
                async {
                    let _ = stopped.await;
                },
            ));
            stop
        })
        .collect();
    let client = db.pool().get().await.unwrap();
    wait_for("every delivery to succeed", PATIENCE, || async {
        let row = client
            .query_one(
                "SELECT count(*) FILTER (WHERE status = 'succeeded'), count(*)
                 FROM webhook_deliveries WHERE org_id = $1",
                &[&org.0],
            )
            .await
            .unwrap();
        let (succeeded, all): (i64, i64) = (row.get(0), row.get(1));
        (all == 300 && succeeded == 300).then_some(())
    })
    .await
    .unwrap();
    drop(stops);
    let got = receiver.received();
    let mut ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 300);
    assert_eq!(got.len(), 300, "no event was sent twice");
}

/// An endpoint that never answers holds its own share of a worker's requests only: another
/// endpoint's deliveries all arrive while the slow one's first attempts are still waiting.
#[tokio::test]
async fn a_slow_endpoint_never_holds_up_another_endpoints_deliveries() {
    let (db, services, org) = services(|settings| {
        // Far longer than the test waits: were the fast endpoint's deliveries behind the slow
        // one's, they would arrive only after these.
        settings.timeout = Duration::from_secs(120);
        settings.lease = Duration::from_secs(300);
        settings.concurrency = 4;
        settings.endpoint_concurrency = 2;
    })
    .await;
    let slow = Receiver::start(|_| Reply::Hang).await;
    let fast = Receiver::start(|_| Reply::Status(200)).await;
    let scope = Scope { org, app: None };
    let slow_endpoint = services.webhooks.create(scope, endpoint_to(&slow.url)).await.unwrap();
    services.webhooks.create(scope, endpoint_to(&fast.url)).await.unwrap();
    let new: Vec<NewEvent> =
        (0..40).map(|i| NewEvent::new(EventType::CustomerCreated, json!({ "n": i }))).collect();
    record(&db.pool(), org, &new).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(hazina_server::workers::deliver_webhooks(Arc::clone(&services.webhooks), async {
        let _ = stopped.await;
    }));
    fast.until("every event at the fast endpoint", |got| got.len() == 40).await;
    assert!(slow.received().len() <= 2, "the slow endpoint took more than its share");
    let deliveries = services
        .webhooks
        .deliveries(scope, slow_endpoint.endpoint.endpoint_id, None, 100)
        .await
        .unwrap();
    assert!(
        deliveries.deliveries.iter().all(|d| d.attempt_log.is_empty()),
        "no attempt of the slow endpoint has ended yet"
    );
    drop(stop);
}

#[tokio::test]
async fn deliveries_over_https_reach_a_receiver_whose_root_is_trusted() {
    let pki = Pki::new();
    let receiver = Receiver::start_tls(pki.acceptor.clone(), |_| Reply::Status(204)).await;
    let root = pki.root_der.clone();
    let (db, services, org) = services(|settings| settings.extra_root_der = Some(root)).await;
    let scope = Scope { org, app: None };
    assert!(receiver.url.starts_with("https://localhost:"), "{}", receiver.url);
    let created = services.webhooks.create(scope, endpoint_to(&receiver.url)).await.unwrap();
    let customer = Uuid::now_v7();
    let ids = record(&db.pool(), org, &[customer_created(customer)]).await;
    let webhooks = Arc::clone(&services.webhooks);
    let got = wait_for("the event over https", PATIENCE, || async {
        webhooks.round().await.unwrap();
        let got = receiver.received();
        (!got.is_empty()).then_some(got)
    })
    .await
    .unwrap();
    let first = &got[0];
    assert_eq!(first.id, ids[0].to_string());
    assert_eq!(first.json()["customerId"], customer.to_string());
    assert!(verifies(&created.secret, &first.id, &first.timestamp, &first.body, &first.signature));
    assert!(first.user_agent.starts_with("Hazina-Webhooks/"), "{}", first.user_agent);
    let page = wait_for("the delivery to be recorded", PATIENCE, || async {
        let page =
            webhooks.deliveries(scope, created.endpoint.endpoint_id, None, 10).await.unwrap();
        (page.deliveries[0].status == "succeeded").then_some(page)
    })
    .await
    .unwrap();
    let delivery = &page.deliveries[0];
    assert_eq!((delivery.attempts, delivery.last_status_code), (1, Some(204)), "{delivery:?}");
    assert_eq!(delivery.attempt_log[0].error, None, "{delivery:?}");
}

#[tokio::test]
async fn an_untrusted_certificate_fails_the_delivery_which_is_retried() {
    let pki = Pki::new();
    let receiver = Receiver::start_tls(pki.acceptor.clone(), |_| Reply::Status(200)).await;
    // The Mozilla roots only: the receiver's private root is not among them.
    let (db, services, org) = services(|settings| settings.extra_root_der = None).await;
    let scope = Scope { org, app: None };
    let created = services.webhooks.create(scope, endpoint_to(&receiver.url)).await.unwrap();
    let id = created.endpoint.endpoint_id;
    record(&db.pool(), org, &[customer_created(Uuid::now_v7())]).await;
    services.webhooks.round().await.unwrap();
    let page = services.webhooks.deliveries(scope, id, None, 10).await.unwrap();
    let delivery = &page.deliveries[0];
    assert_eq!((delivery.status.as_str(), delivery.attempts), ("pending", 1), "{delivery:?}");
    assert!(delivery.next_attempt_at.is_some(), "{delivery:?}");
    let attempt = &delivery.attempt_log[0];
    assert_eq!(attempt.status_code, None, "{attempt:?}");
    assert!(attempt.error.as_deref().unwrap_or_default().contains("certificate"), "{attempt:?}");
    assert!(receiver.received().is_empty(), "nothing was sent before the handshake");

    // Trusted now: the retry reaches the receiver.
    let root = Some(pki.root_der.clone());
    services.webhooks.configure(Settings { extra_root_der: root, ..webhook_test_settings() });
    let webhooks = Arc::clone(&services.webhooks);
    let page = wait_for("the retry to succeed", PATIENCE, || async {
        webhooks.round().await.unwrap();
        let page = webhooks.deliveries(scope, id, None, 10).await.unwrap();
        (page.deliveries[0].status == "succeeded").then_some(page)
    })
    .await
    .unwrap();
    let delivery = &page.deliveries[0];
    assert_eq!((delivery.attempts, delivery.last_status_code), (2, Some(200)), "{delivery:?}");
    assert_eq!(receiver.received().len(), 1);
}

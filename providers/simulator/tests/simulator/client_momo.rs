//! The MoMo client against the MoMo simulator over real loopback HTTP: tokens, request to pay,
//! transfer, status, duplicates, sandbox failures and the errors that leave an outcome unknown.

use std::time::Duration;

use hazina_providers::Status;
use hazina_providers::http::HttpClient;
use hazina_providers::momo::{
    FailureReason, Party, Product, ReferenceId, RequestToPay, Secret, Transfer,
};
use hazina_providers::momo_client::{Client, ClientError, Config};
use hazina_providers::money::{Currency, Money};
use hazina_simulator::momo::{Endpoint, Outcome, Script, Simulator};

use crate::common::serve;

const API_KEY: &str = "api-key-secret-42";
const SUBSCRIPTION_KEY: &str = "subscription-key-secret-77";

async fn start() -> (Simulator, String) {
    let simulator = Simulator::default();
    let base = serve(axum::Router::new().nest("/simulator/momo", simulator.router())).await;
    (simulator, format!("{base}/simulator/momo"))
}

fn client(base_url: &str, product: Product) -> Client {
    let config = Config {
        base_url: base_url.to_owned(),
        product,
        api_user: "api-user".to_owned(),
        api_key: Secret::new(API_KEY),
        subscription_key: Secret::new(SUBSCRIPTION_KEY),
        target_environment: "sandbox".to_owned(),
        callback_url: None,
    };
    Client::new(config, HttpClient { timeout: Duration::from_secs(5) })
}

fn eur(amount: &str) -> Money {
    Money::parse(Currency::from_code("EUR").unwrap(), amount).unwrap()
}

fn request_to_pay(msisdn: &str) -> RequestToPay {
    RequestToPay::new(&eur("1.50"), "order-17", Party::msisdn(msisdn).unwrap(), "Order 17", "")
        .unwrap()
}

#[tokio::test]
async fn a_request_to_pay_is_accepted_and_its_status_read_back() {
    let (simulator, base) = start().await;
    let client = client(&base, Product::Collection);
    let reference = ReferenceId::new_v4();
    client.request_to_pay(&reference, &request_to_pay("256772123456")).await.unwrap();
    let status = client.status(&reference).await.unwrap();
    assert_eq!(status.status(), Status::Succeeded);
    let report = status.to_report().unwrap();
    assert_eq!(report.our_reference.as_deref(), Some("order-17"));
    assert_eq!(report.amount, Some(eur("1.50")));
    assert!(report.receipt.is_some());
    // One token served both calls.
    let tokens = simulator
        .requests()
        .iter()
        .filter(|request| matches!(request.endpoint, Endpoint::Token(_)))
        .count();
    assert_eq!(tokens, 1);
}

#[tokio::test]
async fn the_same_reference_again_is_a_duplicate() {
    let (_simulator, base) = start().await;
    let client = client(&base, Product::Collection);
    let reference = ReferenceId::new_v4();
    let body = request_to_pay("256772123456");
    client.request_to_pay(&reference, &body).await.unwrap();
    let error = client.request_to_pay(&reference, &body).await.unwrap_err();
    assert!(matches!(error, ClientError::Duplicate), "{error:?}");
    // The existing request's status still counts.
    assert_eq!(client.status(&reference).await.unwrap().status(), Status::Succeeded);
}

#[tokio::test]
async fn a_sandbox_failure_is_a_failed_status_with_its_reason() {
    let (_simulator, base) = start().await;
    let client = client(&base, Product::Collection);
    let reference = ReferenceId::new_v4();
    client.request_to_pay(&reference, &request_to_pay("46733123455")).await.unwrap();
    let status = client.status(&reference).await.unwrap();
    assert_eq!(status.status(), Status::Failed);
    assert_eq!(status.failure_reason(), Some(FailureReason::NotEnoughFunds));
}

#[tokio::test]
async fn an_unknown_reference_is_not_found() {
    let (_simulator, base) = start().await;
    let client = client(&base, Product::Collection);
    let error = client.status(&ReferenceId::new_v4()).await.unwrap_err();
    assert!(matches!(error, ClientError::NotFound), "{error:?}");
}

#[tokio::test]
async fn a_transfer_is_accepted_and_its_status_read_back() {
    let (simulator, base) = start().await;
    let client = client(&base, Product::Disbursement);
    let reference = ReferenceId::new_v4();
    let body =
        Transfer::new(&eur("2.00"), "payout-1", Party::msisdn("256772123456").unwrap(), "", "")
            .unwrap();
    client.transfer(&reference, &body).await.unwrap();
    let status = client.status(&reference).await.unwrap();
    assert_eq!(status.status(), Status::Succeeded);
    assert_eq!(status.to_report().unwrap().our_reference.as_deref(), Some("payout-1"));
    let payments = simulator.payments();
    assert_eq!(payments.len(), 1);
    assert_eq!((payments[0].product, payments[0].reference_id), (Product::Disbursement, reference));
    // A collections call on a disbursement client is refused before anything is sent.
    let error = client.request_to_pay(&reference, &request_to_pay("256772123456")).await;
    assert!(matches!(error, Err(ClientError::NotSent(_))), "{error:?}");
}

#[tokio::test]
async fn a_failing_status_endpoint_leaves_the_outcome_unknown() {
    let (simulator, base) = start().await;
    let client = client(&base, Product::Collection);
    let msisdn = "256772000001";
    simulator.script(msisdn, Script::new(Outcome::Successful).status_error(503));
    let reference = ReferenceId::new_v4();
    client.request_to_pay(&reference, &request_to_pay(msisdn)).await.unwrap();
    let error = client.status(&reference).await.unwrap_err();
    assert!(matches!(error, ClientError::Unknown(_)), "{error:?}");
    // Once the endpoint recovers, the status is there.
    simulator.clear_script(msisdn);
    assert_eq!(client.status(&reference).await.unwrap().status(), Status::Succeeded);
}

#[tokio::test]
async fn an_unreachable_provider_leaves_the_outcome_unknown() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    let client = client(&format!("http://{address}/simulator/momo"), Product::Collection);
    let error =
        client.request_to_pay(&ReferenceId::new_v4(), &request_to_pay("256772123456")).await;
    assert!(matches!(error, Err(ClientError::Unknown(_))), "{error:?}");
}

#[tokio::test]
async fn debug_output_shows_no_secret() {
    let (_simulator, base) = start().await;
    let client = client(&base, Product::Collection);
    // With a token cached too.
    client.token().await.unwrap();
    let debug = format!("{client:?}");
    assert!(!debug.contains(API_KEY), "{debug}");
    assert!(!debug.contains(SUBSCRIPTION_KEY), "{debug}");
    assert!(debug.contains("api-user") && debug.contains("sandbox"), "{debug}");
}

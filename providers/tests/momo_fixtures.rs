#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The MTN MoMo adapter against every public sample payload in `fixtures/mtn_momo/`.

mod common;

use hazina_providers::momo::{
    self, Balance, ErrorKind, FailureReason, PaymentStatus, TokenResponse,
};
use hazina_providers::money::{Currency, Money};
use hazina_providers::{Status, StatusReport};

/// Every fixture file, each read by the test named beside it.
const COVERED: &[&str] = &[
    "momodeveloper_requesttopay_GET_200_successful.json", // official_request_to_pay_success
    "momodevelopercommunity_requesttopay_failed_generic.json", // community_request_to_pay_failure
    "php_sdk_mock_AccessToken.json",                      // sdk_access_token
    "php_sdk_mock_Balance.json",                          // sdk_balance
    "php_sdk_mock_DepositStatus.json",                    // sdk_deposit_status
    "php_sdk_mock_Error.json",                            // sdk_error_body
    "php_sdk_mock_RefundStatus.json",                     // sdk_refund_status
    "php_sdk_mock_TransferStatus.json",                   // sdk_transfer_status_and_callback
];

fn fixture(name: &str) -> Vec<u8> {
    common::read("mtn_momo", COVERED, name)
}

fn money(code: &str, amount: &str) -> Money {
    Money::parse(Currency::from_code(code).unwrap(), amount).unwrap()
}

#[test]
fn every_fixture_is_covered() {
    common::assert_every_file_covered("mtn_momo", COVERED);
}

#[test]
fn official_request_to_pay_success() {
    // Every scalar is a number here, including the ids and the MSISDN.
    let status =
        PaymentStatus::parse(&fixture("momodeveloper_requesttopay_GET_200_successful.json"))
            .unwrap();
    assert_eq!(status.payer.as_ref().unwrap().party_id_type.as_deref(), Some("MSISDN"));
    assert_eq!(status.payer.as_ref().unwrap().party_id.as_ref().unwrap().as_str(), "4656473839");
    assert_eq!(status.payee, None);
    let report = status.to_report().unwrap();
    assert_eq!(
        report,
        StatusReport {
            status: Status::Succeeded,
            our_reference: Some("947354".to_owned()),
            request_reference: None,
            receipt: Some("23503452".to_owned()),
            code: Some("SUCCESSFUL".to_owned()),
            description: None,
            amount: Some(money("UGX", "100")),
            payer: Some("4656473839".to_owned()),
            payee: None,
        }
    );
}

#[test]
fn community_request_to_pay_failure() {
    // A 200 reply that reports a failed payment; every scalar is a string here.
    let body = fixture("momodevelopercommunity_requesttopay_failed_generic.json");
    let status = PaymentStatus::parse(&body).unwrap();
    assert_eq!(status.failure_reason(), Some(FailureReason::InternalProcessingError));
    assert_eq!(status.payer_message.as_deref(), Some("test"));
    assert_eq!(status.payee_note.as_deref(), Some("test"));
    assert_eq!(status.payer.as_ref().unwrap().party_id.as_ref().unwrap().as_str(), "25677000000");
    let report = status.to_report().unwrap();
    assert_eq!(
        report,
        StatusReport {
            status: Status::Failed,
            our_reference: Some("04822b2a-0896-4612-9e9e-15ce749b7883".to_owned()),
            request_reference: None,
            receipt: None,
            code: Some("INTERNAL_PROCESSING_ERROR".to_owned()),
            description: None,
            amount: Some(money("UGX", "500000000")),
            payer: Some("25677000000".to_owned()),
            payee: None,
        }
    );
    // The same body as a callback correlates on externalId.
    assert_eq!(momo::parse_callback(&body).unwrap(), report);
}

#[test]
fn sdk_access_token() {
    let token: TokenResponse =
        serde_json::from_slice(&fixture("php_sdk_mock_AccessToken.json")).unwrap();
    assert!(token.access_token.expose().starts_with("eyJraWQiOiJcL0V4YXNlMmpqdkVtcUtLNTdm"));
    assert!(token.access_token.expose().ends_with("hcpwZwkEKg"));
    assert_eq!(token.expires_in_seconds().unwrap(), 3600);
    assert_eq!(token.token_type, None);
    // The token never shows in Debug output.
    let debug = format!("{token:?}");
    assert!(!debug.contains("eyJ"), "{debug}");
    // The string form of expires_in reads the same.
    let string: TokenResponse = serde_json::from_str(
        r#"{"access_token":"t","expires_in":"3600","token_type":"access_token"}"#,
    )
    .unwrap();
    assert_eq!(string.expires_in_seconds().unwrap(), 3600);
    assert_eq!(string.token_type.as_deref(), Some("access_token"));
}

#[test]
fn sdk_balance() {
    let body = fixture("php_sdk_mock_Balance.json");
    let balance = Balance::parse(&body).unwrap();
    assert_eq!(balance.available_balance.as_str(), "1000");
    assert_eq!(balance.to_money().unwrap(), money("EUR", "1000"));
    // A balance is not a payment status: refused for lacking `status`.
    let error = PaymentStatus::parse(&body).unwrap_err();
    assert!(error.to_string().contains("missing field `status`"), "{error}");
}

/// The disbursement mocks share one payment: the SDK writes its MSISDN as a float.
fn assert_sdk_disbursement(report: &StatusReport) {
    assert_eq!(
        report,
        &StatusReport {
            status: Status::Succeeded,
            our_reference: Some("83453".to_owned()),
            request_reference: None,
            receipt: Some("363440463".to_owned()),
            code: Some("SUCCESSFUL".to_owned()),
            description: None,
            amount: Some(money("UGX", "100")),
            payer: None,
            payee: Some("4609274685.0".to_owned()),
        }
    );
}

fn assert_float_party_id_kept_verbatim(status: &PaymentStatus) {
    let payee = status.payee.as_ref().unwrap();
    assert_eq!(payee.party_id_type.as_deref(), Some("MSISDN"));
    assert_eq!(payee.party_id.as_ref().unwrap().as_str(), "4609274685.0");
}

#[test]
fn sdk_deposit_status() {
    let status = PaymentStatus::parse(&fixture("php_sdk_mock_DepositStatus.json")).unwrap();
    assert_float_party_id_kept_verbatim(&status);
    assert_eq!(status.payer_message, None);
    assert_sdk_disbursement(&status.to_report().unwrap());
}

#[test]
fn sdk_refund_status() {
    let status = PaymentStatus::parse(&fixture("php_sdk_mock_RefundStatus.json")).unwrap();
    assert_float_party_id_kept_verbatim(&status);
    assert_eq!(status.payer_message.as_deref(), Some("Payer message here"));
    assert_eq!(status.payee_note.as_deref(), Some("None"));
    assert_sdk_disbursement(&status.to_report().unwrap());
}

#[test]
fn sdk_transfer_status_and_callback() {
    let body = fixture("php_sdk_mock_TransferStatus.json");
    let status = PaymentStatus::parse(&body).unwrap();
    assert_float_party_id_kept_verbatim(&status);
    assert_eq!(status.payer_message.as_deref(), Some("January Salary"));
    assert_eq!(status.payee_note.as_deref(), Some("Any thing we want to type."));
    assert_sdk_disbursement(&status.to_report().unwrap());
    // Transfer callbacks have this shape with no referenceId: matched on externalId alone.
    let callback = momo::parse_callback(&body).unwrap();
    assert_eq!(callback.request_reference, None);
    assert_sdk_disbursement(&callback);
}

#[test]
fn sdk_error_body() {
    let body = fixture("php_sdk_mock_Error.json");
    // The mock has no HTTP status; classified under the statuses it could come with.
    let error = momo::classify(400, &body);
    assert_eq!(error.kind, ErrorKind::Rejected);
    assert_eq!(error.code(), Some("genericError"));
    let parsed = error.body.as_ref().unwrap();
    assert_eq!(parsed.error_category.as_deref(), Some("businessRule"));
    assert_eq!(parsed.description(), Some("string"));
    assert_eq!(parsed.error_date_time.as_deref(), Some("2022-01-04T12:19:17.268Z"));
    assert_eq!(parsed.error_parameters.len(), 1);
    assert_eq!(parsed.error_parameters[0].key, "string");
    assert_eq!(parsed.error_parameters[0].value.as_str(), "string");
    assert!(error.to_string().contains("400"), "{error}");
    assert_eq!(momo::classify(500, &body).kind, ErrorKind::Unknown);
    assert_eq!(momo::classify(409, &body).kind, ErrorKind::Duplicate);
    // An error body is not a payment status: refused for lacking `status`.
    let refused = PaymentStatus::parse(&body).unwrap_err();
    assert!(refused.to_string().contains("missing field `status`"), "{refused}");
    assert!(momo::parse_callback(&body).is_err());
}

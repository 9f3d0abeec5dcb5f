#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The M-Pesa Daraja adapter against every public sample payload in `fixtures/mpesa_daraja_*`.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use chrono::{DateTime, NaiveDateTime, Utc};
use hazina_providers::money::{Currency, Money};
use hazina_providers::mpesa::{
    self, AccountBalanceRequest, B2cCommand, B2cPayout, B2cRequest, C2bPayment,
    C2bRegisterUrlRequest, C2bRegisterUrlResponse, C2bRejectReason, C2bSimulateRequest,
    C2bValidationReply, Callback, ErrorResponse, MpesaResult, Msisdn, PullQueryRequest,
    PullQueryResponse, PullRegisterRequest, PullRegisterResponse, QueuedResponse, ReversalRequest,
    StkCallback, StkPush, StkPushRequest, StkPushResponse, StkQueryRequest, StkQueryResponse,
    StkTransactionType, TokenResponse, TransactionStatusRequest,
};
use hazina_providers::{ParseError, Secret, Status};

const PORTAL: &str = "mpesa_daraja_portal";
const GHOSTSCYPHER: &str = "mpesa_daraja_ghostscypher";

/// Every fixture file, each read by the test named after its API.
const COVERED: &[(&str, &str)] = &[
    (PORTAL, "AccountBalance_00_Request_Body.json"),
    (PORTAL, "AccountBalance_01_Response_Body.json"),
    (PORTAL, "AccountBalance_02_Result_body.json"),
    (PORTAL, "Authorization_00_Request_Body.txt"), // refused: a header example, not JSON
    (PORTAL, "Authorization_01_Response_Body.json"),
    (PORTAL, "BusinessToCustomer_00_Request_Body.json"),
    (PORTAL, "BusinessToCustomer_01_Response_Body.json"),
    (PORTAL, "BusinessToCustomer_02_Callback_payload.json"),
    (PORTAL, "BusinessToCustomer_03_Sample_Unsuccessful_Callback_Payload.json"),
    (PORTAL, "BusinessToCustomer_04_Sample_Error_Response.json"),
    (PORTAL, "CustomerToBusiness_00_Register_URLs.json"),
    (PORTAL, "CustomerToBusiness_01_Simulate_Transactions.json"),
    (PORTAL, "CustomerToBusiness_02_Simulate_Response.json"),
    (PORTAL, "CustomerToBusiness_03_Register_URLs_Response.json"),
    (PORTAL, "CustomerToBusiness_04_Validation_Confirmation_Payload_v2_masked.json"),
    (PORTAL, "CustomerToBusiness_05_Validation_Accept_Response.json"),
    (PORTAL, "CustomerToBusiness_06_Validation_Reject_Response.json"),
    (PORTAL, "MpesaExpressSimulate_00_Request_Body.json"),
    (PORTAL, "MpesaExpressSimulate_01_Response_Body.json"),
    (PORTAL, "MpesaExpressSimulate_02_Sample_Unsuccessful_Callback_Payload.json"),
    (PORTAL, "MpesaExpressSimulate_03_Sample_Successful_Callback_Payload.json"),
    (PORTAL, "MpesaExpressSimulate_04_Sample_Error_Response.json"),
    (PORTAL, "PullTransaction_00_Register_Request.json"),
    (PORTAL, "PullTransaction_01_Register_Response.json"),
    (PORTAL, "PullTransaction_02_Query_Request.json"),
    (PORTAL, "Reversal_00_Request_Body.json"),
    (PORTAL, "Reversal_01_Success_Response.json"),
    (PORTAL, "Reversal_02_Successful_Callback.json"),
    (PORTAL, "Reversal_03_Unsuccessful_Callback.json"),
    (PORTAL, "Reversal_04_Error_Response.json"),
    (PORTAL, "TransactionStatus_00_Request_Body.json"),
    (PORTAL, "TransactionStatus_01_Response_Body.json"),
    (PORTAL, "TransactionStatus_02_Callback_payload.json"),
    (GHOSTSCYPHER, "account_balance_request_annotated.jsonc"),
    (GHOSTSCYPHER, "account_balance_result_callback.json"),
    (GHOSTSCYPHER, "b2b_result_callback_success.json"), // read generically: B2B is deprecated
    (GHOSTSCYPHER, "b2c_request_annotated.jsonc"),      // refused: a v1 body without our id
    (GHOSTSCYPHER, "b2c_result_callback_success.json"),
    (GHOSTSCYPHER, "c2b_register_request_annotated.jsonc"),
    (GHOSTSCYPHER, "c2b_validation_and_confirmation_payloads.jsonc"),
    (GHOSTSCYPHER, "oauth_token_response.json"),
    (GHOSTSCYPHER, "pull_query_request_annotated.jsonc"),
    (GHOSTSCYPHER, "pull_query_response.json"),
    (GHOSTSCYPHER, "pull_register_response.json"),
    (GHOSTSCYPHER, "reversal_request_annotated.jsonc"),
    (GHOSTSCYPHER, "reversal_result_callback.json"),
    (GHOSTSCYPHER, "stk_callback_cancelled_and_success.jsonc"),
    (GHOSTSCYPHER, "stkpush_query_request_annotated.jsonc"),
    (GHOSTSCYPHER, "stkpush_query_response_cancelled.json"),
    (GHOSTSCYPHER, "stkpush_request_annotated.jsonc"),
    (GHOSTSCYPHER, "transaction_status_request_annotated.jsonc"),
    (GHOSTSCYPHER, "transaction_status_result_callback.json"),
];

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A fixture's text, with `//` comments removed from `.jsonc` files.
fn fixture(folder: &str, name: &str) -> String {
    assert!(COVERED.contains(&(folder, name)), "{folder}/{name} is read but not in COVERED");
    let text = std::fs::read_to_string(fixtures().join(folder).join(name)).unwrap();
    let commented = Path::new(name).extension().is_some_and(|ext| ext == "jsonc");
    if commented { strip_comments(&text) } else { text }
}

/// Removes `//` comments outside strings (the URLs inside strings keep their `//`).
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let (mut in_string, mut escaped) = (false, false);
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '/' && chars.peek() == Some(&'/') {
            for skipped in chars.by_ref() {
                if skipped == '\n' {
                    out.push('\n');
                    break;
                }
            }
        } else {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

fn parse<T: serde::de::DeserializeOwned>(folder: &str, name: &str) -> T {
    serde_json::from_str(&fixture(folder, name)).unwrap()
}

/// The JSON documents of a file that holds several one after another.
fn documents(folder: &str, name: &str) -> Vec<String> {
    let text = fixture(folder, name);
    serde_json::Deserializer::from_str(&text)
        .into_iter::<Box<serde_json::value::RawValue>>()
        .map(|raw| raw.unwrap().get().to_owned())
        .collect()
}

fn kes(amount: &str) -> Money {
    Money::parse(Currency::from_code("KES").unwrap(), amount).unwrap()
}

fn result(folder: &str, name: &str) -> MpesaResult {
    match mpesa::callback(&fixture(folder, name)).unwrap() {
        Callback::Result(result) => result,
        other => panic!("{name} is not a result callback: {other:?}"),
    }
}

fn stk(body: &str) -> StkCallback {
    match mpesa::callback(body).unwrap() {
        Callback::Stk(stk) => stk,
        other => panic!("not an STK callback: {other:?}"),
    }
}

fn c2b(body: &str) -> C2bPayment {
    match mpesa::callback(body).unwrap() {
        Callback::C2b(payment) => payment,
        other => panic!("not a C2B body: {other:?}"),
    }
}

#[test]
fn every_fixture_is_covered() {
    let mut present = BTreeSet::new();
    for folder in [PORTAL, GHOSTSCYPHER] {
        for entry in std::fs::read_dir(fixtures().join(folder)).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            present.insert((folder, name));
        }
    }
    let listed: BTreeSet<(&str, String)> =
        COVERED.iter().map(|(folder, name)| (*folder, (*name).to_owned())).collect();
    let unlisted: Vec<_> = present.difference(&listed).collect();
    let missing: Vec<_> = listed.difference(&present).collect();
    assert!(unlisted.is_empty(), "fixtures no test reads: {unlisted:?}");
    assert!(missing.is_empty(), "listed fixtures that do not exist: {missing:?}");
}

#[test]
fn authorization() {
    // The header example is documentation, not a body Daraja sends: it is refused as JSON,
    // and its header is what `basic_auth` produces for the key and secret it encodes.
    let text = fixture(PORTAL, "Authorization_00_Request_Body.txt");
    assert!(serde_json::from_str::<serde_json::Value>(&text).is_err());
    let header = text.lines().find_map(|line| line.split("\"Basic ").nth(1)).unwrap();
    let encoded = header.trim_end_matches('"');
    let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    let decoded = String::from_utf8(decoded).unwrap();
    let (key, secret) = decoded.split_once(':').unwrap();
    assert_eq!(mpesa::basic_auth(key, secret), format!("Basic {encoded}"));

    let token: TokenResponse = parse(PORTAL, "Authorization_01_Response_Body.json");
    assert_eq!(token.access_token.expose(), "c9SQxWWhmdVRlyh0zh8gZDTkubVF");
    assert!(!format!("{token:?}").contains("c9SQxWWhmdVRlyh0zh8gZDTkubVF"));
    assert_eq!(token.expires_in_seconds().unwrap(), 3599);
    // The older sandbox sends the lifetime as a string.
    let token: TokenResponse = parse(GHOSTSCYPHER, "oauth_token_response.json");
    assert_eq!(token.access_token.expose(), "SGWcJPtNtYNPGm6uSYR9yPYrAI3Bm");
    assert_eq!(token.expires_in_seconds().unwrap(), 3599);
}

#[test]
fn stk_push_request_and_response() {
    let sample: StkPushRequest = parse(PORTAL, "MpesaExpressSimulate_00_Request_Body.json");
    assert_eq!(sample.business_short_code.as_str(), "174379");
    // The sample's password is the sandbox passkey; building the same push reproduces it.
    let passkey = &Secret::new("bfb279f9aa9bdbcf158e97dd71a467cd2e0c893059b10f78e6b72ada1ed2c919");
    let local = NaiveDateTime::parse_from_str(sample.timestamp.as_str(), "%Y%m%d%H%M%S").unwrap();
    let at: DateTime<Utc> = (local - chrono::TimeDelta::hours(3)).and_utc();
    let amount = kes(sample.amount.as_str());
    let built = StkPushRequest::new(&StkPush {
        shortcode: "174379",
        passkey,
        at,
        transaction_type: StkTransactionType::CustomerPayBillOnline,
        amount: &amount,
        phone_number: sample.phone_number.as_str(),
        party_b: sample.party_b.as_str(),
        callback_url: &sample.callback_url,
        account_reference: &sample.account_reference,
        transaction_desc: &sample.transaction_desc,
    })
    .unwrap();
    assert_eq!(built.password, sample.password);
    // Secrets go on the wire as sent, and never into a debug print.
    let passkey_text = passkey.expose();
    assert!(!format!("{built:?}").contains(built.password.expose()));
    assert!(!format!("{built:?}").contains(passkey_text));
    assert_eq!(built.timestamp, sample.timestamp);
    assert_eq!(built.amount, sample.amount);
    assert_eq!(built.transaction_type, sample.transaction_type);
    // The sample's PartyA differs from its PhoneNumber; we send the payer as both.
    assert_eq!(built.party_a.as_str(), "254722111111");

    let annotated: StkPushRequest = parse(GHOSTSCYPHER, "stkpush_request_annotated.jsonc");
    assert_eq!(annotated.transaction_type, "CustomerPayBillOnline");
    assert_eq!(annotated.callback_url, "https://ip_address:port/callback");

    let response: StkPushResponse = parse(PORTAL, "MpesaExpressSimulate_01_Response_Body.json");
    assert!(response.is_accepted());
    assert_eq!(response.checkout_request_id, "ws_CO_1007202409152617172396192");
    assert_eq!(response.merchant_request_id, "2654-4b64-97ff-b827b542881d3130");

    let error: ErrorResponse = parse(PORTAL, "MpesaExpressSimulate_04_Sample_Error_Response.json");
    assert_eq!(error.error_code, "400.002.02");
    assert_eq!(error.error_message, "Bad Request - Invalid BusinessShortCode");
    assert!(!error.is_duplicate());
}

#[test]
fn stk_callbacks() {
    let failed =
        stk(&fixture(PORTAL, "MpesaExpressSimulate_02_Sample_Unsuccessful_Callback_Payload.json"));
    let report = failed.to_report().unwrap();
    assert_eq!(report.status, Status::Failed);
    assert_eq!(report.code.as_deref(), Some("1032"));
    assert_eq!(report.request_reference.as_deref(), Some("ws_CO_21072024125243250722943992"));
    assert_eq!(report.description.as_deref(), Some("Request cancelled by user"));
    assert_eq!((report.receipt, report.amount), (None, None));

    let paid =
        stk(&fixture(PORTAL, "MpesaExpressSimulate_03_Sample_Successful_Callback_Payload.json"));
    let report = paid.to_report().unwrap();
    assert_eq!(report.status, Status::Succeeded);
    assert_eq!(report.receipt.as_deref(), Some("NLJ7RT61SV"));
    assert_eq!(report.amount, Some(kes("1.00")));
    assert_eq!(report.request_reference.as_deref(), Some("ws_CO_191220191020363925"));
    assert_eq!(report.our_reference, None, "STK carries no id of ours");
    // Numbers keep their exact digits.
    assert_eq!(paid.item("PhoneNumber").unwrap().as_str(), "254708374149");
    assert_eq!(paid.item("TransactionDate").unwrap().as_str(), "20191219102115");

    let bodies = documents(GHOSTSCYPHER, "stk_callback_cancelled_and_success.jsonc");
    assert_eq!(bodies.len(), 2);
    let cancelled = stk(&bodies[0]).to_report().unwrap();
    assert_eq!(cancelled.status, Status::Failed);
    assert_eq!(cancelled.request_reference.as_deref(), Some("ws_CO_27072017151044001"));
    let accepted = stk(&bodies[1]);
    assert_eq!(accepted.item("Balance"), None, "the Balance item has no value");
    let report = accepted.to_report().unwrap();
    assert_eq!(report.status, Status::Succeeded);
    assert_eq!(report.receipt.as_deref(), Some("LGR7OWQX0R"));
    assert_eq!(report.amount, Some(kes("1")));
}

#[test]
fn stk_query() {
    let request: StkQueryRequest = parse(GHOSTSCYPHER, "stkpush_query_request_annotated.jsonc");
    assert_eq!(request.checkout_request_id, " ");

    let response: StkQueryResponse = parse(GHOSTSCYPHER, "stkpush_query_response_cancelled.json");
    // The query was accepted (ResponseCode "0"); the payment was cancelled (ResultCode "1032").
    assert_eq!(response.response_code.as_str(), "0");
    let report = response.to_report();
    assert_eq!(report.status, Status::Failed);
    assert_eq!(report.code.as_deref(), Some("1032"));
    assert_eq!(report.request_reference.as_deref(), Some("ws_CO_27072017151044001"));
    assert_eq!(report.description.as_deref(), Some("[STK_CB - ]Request cancelled by user"));
}

#[test]
fn c2b_registration_and_simulation() {
    let register: C2bRegisterUrlRequest = parse(PORTAL, "CustomerToBusiness_00_Register_URLs.json");
    assert_eq!(register.short_code.as_str(), "600984");
    // The portal writes a placeholder where the value goes; we send one of the two.
    assert_eq!(register.response_type, "Either Cancelled or Completed");
    let ours = C2bRegisterUrlRequest::new(
        "600984",
        mpesa::C2bDefaultAction::Cancelled,
        "https://example.com/c",
        "https://example.com/v",
    );
    assert_eq!(serde_json::to_value(&ours).unwrap()["ResponseType"], "Cancelled");

    let annotated: C2bRegisterUrlRequest =
        parse(GHOSTSCYPHER, "c2b_register_request_annotated.jsonc");
    assert_eq!(annotated.confirmation_url, "http://ip_address:port/confirmation");

    let simulate: C2bSimulateRequest =
        parse(PORTAL, "CustomerToBusiness_01_Simulate_Transactions.json");
    assert_eq!(simulate.short_code.as_str(), "600984");
    assert_eq!(simulate.msisdn.as_str(), "254708374149");
    assert_eq!(simulate.amount.as_str(), "1");

    for (name, id, description) in [
        (
            "CustomerToBusiness_02_Simulate_Response.json",
            "53e3-4aa8-9fe0-8fb5e4092cdd3405976",
            "Accept the service request successfully.",
        ),
        (
            "CustomerToBusiness_03_Register_URLs_Response.json",
            "6e86-45dd-91ac-fd5d4178ab523408729",
            "Success",
        ),
    ] {
        let response: C2bRegisterUrlResponse = parse(PORTAL, name);
        assert_eq!(response.originator_conversation_id, id, "{name}: OriginatorCoversationID");
        assert_eq!(response.response_code.as_str(), "0");
        assert_eq!(response.response_description, description);
    }
}

#[test]
fn c2b_payments_and_replies() {
    let name = "CustomerToBusiness_04_Validation_Confirmation_Payload_v2_masked.json";
    let masked = c2b(&fixture(PORTAL, name)).to_received().unwrap();
    assert_eq!(masked.report.status, Status::Succeeded);
    assert_eq!(masked.report.amount, Some(kes("5.00")));
    assert_eq!(masked.report.receipt.as_deref(), Some("RKL51ZDR4F"));
    assert_eq!(masked.report.our_reference.as_deref(), Some("Sample Transaction"));
    assert_eq!(masked.payer_msisdn, Some(Msisdn::Masked("2547 ***** 126".to_owned())));
    assert_eq!(masked.payer_name, "NICHOLAS");
    assert_eq!(masked.business_short_code, "600966");

    let bodies = documents(GHOSTSCYPHER, "c2b_validation_and_confirmation_payloads.jsonc");
    assert_eq!(bodies.len(), 2, "a validation body, then a confirmation body");
    let validation = c2b(&bodies[0]);
    assert_eq!(validation.org_account_balance, "");
    let confirmation = c2b(&bodies[1]);
    assert_eq!(confirmation.org_account_balance, "49197.00");
    assert_eq!(confirmation.third_party_trans_id, "1234567890");
    let received = confirmation.to_received().unwrap();
    assert_eq!(received.report.amount, Some(kes("10.00")));
    assert_eq!(received.report.receipt.as_deref(), Some("LGR219G3EY"));
    assert_eq!(received.report.our_reference.as_deref(), Some("xyz"));
    assert_eq!(received.payer_msisdn, Some(Msisdn::Full("254708374149".to_owned())));
    assert_eq!(received.payer_name, "John Doe");

    let accept: C2bValidationReply =
        parse(PORTAL, "CustomerToBusiness_05_Validation_Accept_Response.json");
    assert_eq!(accept, C2bValidationReply::accept());
    assert!(accept.is_accept());
    let reject: C2bValidationReply =
        parse(PORTAL, "CustomerToBusiness_06_Validation_Reject_Response.json");
    assert_eq!(reject, C2bValidationReply::reject(C2bRejectReason::InvalidMsisdn));
    assert!(!reject.is_accept());
}

#[test]
fn b2c_request_and_responses() {
    let sample: B2cRequest = parse(PORTAL, "BusinessToCustomer_00_Request_Body.json");
    let amount = kes(sample.amount.as_str());
    let built = B2cRequest::new(&B2cPayout {
        originator_conversation_id: &sample.originator_conversation_id,
        initiator_name: &sample.initiator_name,
        security_credential: &sample.security_credential,
        command: B2cCommand::BusinessPayment,
        amount: &amount,
        party_a: sample.party_a.as_str(),
        party_b: sample.party_b.as_str(),
        remarks: &sample.remarks,
        queue_timeout_url: &sample.queue_timeout_url,
        result_url: &sample.result_url,
        occasion: Some(&sample.occasion),
    })
    .unwrap();
    assert_eq!(built, sample, "we build the portal's sample body exactly");
    assert_eq!(sample.occasion, "ChristmasPay");

    // The older sample is the v1 body, without our OriginatorConversationID: v3 without it
    // would lose the idempotency key, so it is refused.
    let v1 = fixture(GHOSTSCYPHER, "b2c_request_annotated.jsonc");
    let error = serde_json::from_str::<B2cRequest>(&v1).unwrap_err();
    assert!(error.to_string().contains("OriginatorConversationID"), "{error}");

    let response: QueuedResponse = parse(PORTAL, "BusinessToCustomer_01_Response_Body.json");
    assert!(response.is_accepted());
    assert_eq!(response.conversation_id, "AG_20240706_20106e9209f64bebd05b");
    assert_eq!(response.originator_conversation_id, "600997_Test_32et3241ed8yu");

    let duplicate: ErrorResponse =
        parse(PORTAL, "BusinessToCustomer_04_Sample_Error_Response.json");
    assert!(duplicate.is_duplicate());
    assert_eq!(duplicate.request_id, "1c5b-4ba8-815c-ac45c57a3db01469899");
}

#[test]
fn b2c_results() {
    let report =
        result(PORTAL, "BusinessToCustomer_02_Callback_payload.json").to_b2c_report().unwrap();
    assert_eq!(report.status, Status::Succeeded);
    assert_eq!(report.our_reference.as_deref(), Some("53e3-4aa8-9fe0-8fb5e4092cdd3533373"));
    assert_eq!(report.request_reference.as_deref(), Some("AG_20240706_2010364430d9bbdaf872"));
    assert_eq!(report.receipt.as_deref(), Some("SG632NMUAB"));
    assert_eq!(report.amount, Some(kes("10")));
    assert_eq!(report.code.as_deref(), Some("0"));

    let failed = result(PORTAL, "BusinessToCustomer_03_Sample_Unsuccessful_Callback_Payload.json");
    assert!(failed.parameters().is_empty());
    let report = failed.to_b2c_report().unwrap();
    assert_eq!(report.status, Status::Failed);
    assert_eq!(report.code.as_deref(), Some("2001"));
    assert_eq!(report.description.as_deref(), Some("The initiator information is invalid."));
    assert_eq!(report.our_reference.as_deref(), Some("53e3-4aa8-9fe0-8fb5e4092cdd3544366"));
    assert_eq!((report.receipt, report.amount), (None, None), "no money moved");

    let old = result(GHOSTSCYPHER, "b2c_result_callback_success.json");
    let report = old.to_b2c_report().unwrap();
    assert_eq!(report.status, Status::Succeeded);
    assert_eq!(report.our_reference.as_deref(), Some("19455-424535-1"));
    assert_eq!(report.receipt.as_deref(), Some("LGH3197RIB"));
    assert_eq!(report.amount, Some(kes("8000")));
    assert_eq!(old.parameter("B2CRecipientIsRegisteredCustomer").unwrap().as_str(), "Y");
}

#[test]
fn b2b_result_is_read_but_not_transformed() {
    // B2B is deprecated, so there is no B2B transformer; its body still reads as a result,
    // with ReferenceItem as an array and a value-less item.
    let b2b = result(GHOSTSCYPHER, "b2b_result_callback_success.json");
    assert_eq!(b2b.result_code.as_str(), "0");
    assert_eq!(b2b.transaction_id, "LGR519G2QV");
    assert_eq!(b2b.parameter("Amount").unwrap().as_str(), "10");
    assert_eq!(b2b.parameters().len(), 8);
    let items = b2b.reference_data.as_ref().unwrap().reference_item.as_slice();
    assert_eq!(items.len(), 3);
    assert_eq!(items[0].value.as_ref().unwrap().as_str(), "aaa");
    assert_eq!(items[2].key, "Occasion");
    assert_eq!(items[2].value, None);
}

#[test]
fn transaction_status() {
    // The portal spells "Command ID" and "Transaction ID" with spaces; both spellings read.
    let portal: TransactionStatusRequest = parse(PORTAL, "TransactionStatus_00_Request_Body.json");
    assert_eq!(portal.command_id, "TransactionStatusQuery");
    assert_eq!(portal.transaction_id.as_deref(), Some("NEF61H8J60"));
    assert_eq!(
        portal.original_conversation_id.as_deref(),
        Some("7071-4170-a0e5-8345632bad442144258")
    );
    let sent = serde_json::to_value(&portal).unwrap();
    assert_eq!(sent["CommandID"], "TransactionStatusQuery");
    assert_eq!(sent["TransactionID"], "NEF61H8J60");
    let older: TransactionStatusRequest =
        parse(GHOSTSCYPHER, "transaction_status_request_annotated.jsonc");
    assert_eq!(older.command_id, "TransactionStatusQuery");
    assert_eq!(older.identifier_type.as_str(), "1");

    let response: QueuedResponse = parse(PORTAL, "TransactionStatus_01_Response_Body.json");
    assert!(response.is_accepted());
    assert_eq!(response.conversation_id, "AG_20210709_1234409f86436c583e3f");

    let portal = result(PORTAL, "TransactionStatus_02_Callback_payload.json");
    let report = portal.to_transaction_status_report().unwrap();
    assert_eq!(report.status, Status::Succeeded);
    // The queried payment's ids, not the query's own (3213-416199-2, AG_…493344ae97d86f75).
    assert_eq!(report.our_reference.as_deref(), Some("3211-416020-3"));
    assert_eq!(report.request_reference.as_deref(), Some("AG_20180223_000041b09c22e613d6c9"));
    assert_eq!(report.receipt.as_deref(), Some("MBN31H462N"));
    assert_eq!(report.amount, Some(kes("300")));
    assert_eq!(report.description.as_deref(), Some("Completed"));
    // The repeated key reads as its first value.
    assert_eq!(portal.parameter("DebitPartyName").unwrap().as_str(), "600310 - Safaricom333");

    // The older result writes some keys with spaces ("Originator Conversation ID").
    let older = result(GHOSTSCYPHER, "transaction_status_result_callback.json");
    let report = older.to_transaction_status_report().unwrap();
    assert_eq!(report.status, Status::Succeeded);
    assert_eq!(report.our_reference.as_deref(), Some("19455-773836-1"));
    assert_eq!(report.request_reference.as_deref(), Some("AG_20170727_00004492b1b6d0078fbe"));
    assert_eq!(report.receipt.as_deref(), Some("LGR919G2AV"));
    assert_eq!(report.amount, Some(kes("10")));
}

#[test]
fn reversal() {
    let request: ReversalRequest = parse(PORTAL, "Reversal_00_Request_Body.json");
    assert_eq!(request.transaction_id, "PDU91HIVIT");
    assert_eq!(request.receiver_identifier_type.as_str(), "11");
    assert_eq!(request.amount.as_str(), "200");
    let sent = serde_json::to_value(&request).unwrap();
    assert_eq!(sent["RecieverIdentifierType"], "11", "Daraja's spelling is kept");
    let older: ReversalRequest = parse(GHOSTSCYPHER, "reversal_request_annotated.jsonc");
    assert_eq!(older.command_id, "TransactionReversal");
    assert_eq!(older.occasion.as_deref(), Some(" "));

    let response: QueuedResponse = parse(PORTAL, "Reversal_01_Success_Response.json");
    assert!(response.is_accepted());
    assert_eq!(response.originator_conversation_id, "f1e2-4b95-a71d-b30d3cdbb7a7735297");

    let reversed = result(PORTAL, "Reversal_02_Successful_Callback.json");
    let report = reversed.to_reversal_report().unwrap();
    assert_eq!(report.status, Status::Succeeded);
    assert_eq!(report.receipt.as_deref(), Some("SKE52PAWR9"));
    assert_eq!(report.amount, Some(kes("1.00")));
    assert_eq!(report.request_reference.as_deref(), Some("AG_20211114_201018edbbf9f1582eaa"));
    assert_eq!(reversed.reversed_transaction_id().as_deref(), Some("SKC82PACB8"));

    let report =
        result(PORTAL, "Reversal_03_Unsuccessful_Callback.json").to_reversal_report().unwrap();
    assert_eq!(report.status, Status::Failed);
    assert_eq!(report.code.as_deref(), Some("R000002"));
    assert_eq!(report.receipt, None);

    let error: ErrorResponse = parse(PORTAL, "Reversal_04_Error_Response.json");
    assert_eq!(error.error_message, "Bad Request - Invalid TransactionID");

    // A success without parameters still succeeds, with no amount to report.
    let report =
        result(GHOSTSCYPHER, "reversal_result_callback.json").to_reversal_report().unwrap();
    assert_eq!(report.status, Status::Succeeded);
    assert_eq!(report.receipt.as_deref(), Some("LGR019G3J2"));
    assert_eq!(report.our_reference.as_deref(), Some("10819-695089-1"));
    assert_eq!(report.amount, None);
}

#[test]
fn account_balance() {
    let request: AccountBalanceRequest = parse(PORTAL, "AccountBalance_00_Request_Body.json");
    assert_eq!(request.command_id, "AccountBalance");
    assert_eq!(request.party_a.as_str(), "600000");
    assert_eq!(request.identifier_type.as_str(), "4");
    let older: AccountBalanceRequest =
        parse(GHOSTSCYPHER, "account_balance_request_annotated.jsonc");
    assert_eq!(older.party_a.as_str(), "shortcode");

    let response: QueuedResponse = parse(PORTAL, "AccountBalance_01_Response_Body.json");
    assert!(response.is_accepted());
    assert_eq!(response.originator_conversation_id, "515-5258779-3");

    // Here ResultType and ResultCode are strings.
    let portal = result(PORTAL, "AccountBalance_02_Result_body.json");
    assert_eq!(portal.result_code.as_str(), "0");
    let accounts = portal.account_balances().unwrap();
    let names: Vec<&str> = accounts.iter().map(|account| account.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "Working Account",
            "Float Account",
            "Utility Account",
            "Charges Paid Account",
            "Organization Settlement Account"
        ]
    );
    assert_eq!(accounts[0].current, kes("700000.00"));
    assert_eq!(accounts[0].available, kes("700000.00"));
    assert_eq!(accounts[2].available, kes("228037.00"));
    assert_eq!(accounts[3].current, kes("-1540.00"));

    let older = result(GHOSTSCYPHER, "account_balance_result_callback.json");
    let accounts = older.account_balances().unwrap();
    assert_eq!(accounts.len(), 5);
    assert_eq!(accounts[0].current, kes("46713.00"));
    assert_eq!(accounts[3].current, kes("-220.00"));
    assert_eq!(older.parameter("BOCompletedTime").unwrap().as_str(), "20170728095642");
}

#[test]
fn pull_transactions() {
    let register: PullRegisterRequest = parse(PORTAL, "PullTransaction_00_Register_Request.json");
    assert_eq!(register.request_type, "Pull");
    assert_eq!(register.nominated_number.as_str(), "0722000000");

    let registered: PullRegisterResponse =
        parse(PORTAL, "PullTransaction_01_Register_Response.json");
    assert_eq!(registered.response_status.as_str(), "1000");
    assert!(registered.is_registered());
    // The older response spells its fields with spaces; 1001 is "already registered".
    let again: PullRegisterResponse = parse(GHOSTSCYPHER, "pull_register_response.json");
    assert_eq!(again.response_status.as_str(), "1001");
    assert_eq!(again.response_description, "ShortCode already Registered");
    assert!(again.is_registered());

    let query: PullQueryRequest = parse(PORTAL, "PullTransaction_02_Query_Request.json");
    assert_eq!(query.start_date, "2020-08-04 8:36:00");
    assert_eq!(query.end_date, "2020-08-16 10:10:000", "kept verbatim, typo and all");
    let older: PullQueryRequest = parse(GHOSTSCYPHER, "pull_query_request_annotated.jsonc");
    assert_eq!(older.offset_value.as_str(), "0");

    let response: PullQueryResponse = parse(GHOSTSCYPHER, "pull_query_response.json");
    assert_eq!(response.response_code.as_str(), "1000");
    let transactions: Vec<_> = response.transactions().collect();
    assert_eq!(transactions.len(), 5);
    assert_eq!(transactions[0].transaction_id, "yzlyrEsRG1");
    assert_eq!(transactions[0].msisdn.as_str(), "72200000");
    assert_eq!(transactions[0].amount().unwrap(), kes("168.00"));
    assert_eq!(transactions[4].amount().unwrap(), kes("93.00"));
    assert_eq!(transactions[0].bill_reference, "37207636392");
}

#[test]
fn callback_refuses_what_is_not_a_callback() {
    // A synchronous error body arriving at a callback URL is none of the callback kinds.
    let error = fixture(PORTAL, "Reversal_04_Error_Response.json");
    assert!(matches!(mpesa::callback(&error), Err(ParseError::Unexpected(_))));
    let request = fixture(PORTAL, "MpesaExpressSimulate_00_Request_Body.json");
    assert!(matches!(mpesa::callback(&request), Err(ParseError::Unexpected(_))));
}

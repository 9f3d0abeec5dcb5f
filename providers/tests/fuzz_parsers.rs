#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Property-based fuzzing of every reader of provider input: M-Pesa (Daraja) callbacks and
//! bodies, MTN MoMo status, callback, token, balance and error bodies, ISO 20022 pain.002
//! and camt.052/053/054 files, and Africa's Talking SMS answers, delivery reports and inbound
//! messages.
//!
//! These are proptest targets inside `cargo test`, not `cargo fuzz` targets: libFuzzer's
//! instrumentation needs nightly flags or an unsanitised build with an extra toolchain step,
//! and CI runs the stable toolchain (RELIABILITY.md, "Parser fuzzing"). Each family is fed
//! three kinds of input: arbitrary bytes; documents shaped like the real messages, with
//! arbitrary values; and the public samples in `fixtures/` with values replaced, fields
//! dropped, duplicated, renamed or nested. Whatever arrives, a reader must not panic; an amount
//! it reads must be exactly the text sent, held at its currency's scale and never finer; and a
//! status must be pending unless the message says, in the provider's own words, that the
//! payment succeeded or failed.
//!
//! `HAZINA_FUZZ_CASES` sets the cases per target: 1,024 by default, one to two seconds each in
//! a debug build.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use hazina_fuzz::{Grammar, config};
use hazina_providers::africastalking::{
    DeliveryReport, InboundSms, Price, SendOutcome, SendSmsResponse, UssdReply, UssdStep,
};
use hazina_providers::iso20022::{camt, pain002};
use hazina_providers::messaging::DeliveryStatus;
use hazina_providers::money::{Currency, Money};
use hazina_providers::mpesa::{
    self, B2C_FAILURE_CODES, C2bPayment, Callback, ErrorResponse, MpesaResult, Msisdn,
    PullQueryResponse, PullRegisterResponse, QueuedResponse, REVERSAL_FAILURE_CODES,
    ResultEnvelope, STK_FAILURE_CODES, StkCallback, StkCallbackEnvelope, StkPushResponse,
    StkQueryResponse, TokenResponse,
};
use hazina_providers::{ParseError, Status, StatusReport, momo};
use proptest::prelude::*;
use proptest::sample::{Index, select};

// =============================================================================================
// Oracles
// =============================================================================================

/// The text an amount must read as at `exponent` decimal places, in the lenient grammar that
/// providers send (a plus sign, `"5."`, `".5"`).
fn at_scale(text: &str, exponent: u32) -> Option<String> {
    hazina_fuzz::at_scale(text, exponent, Grammar::Lenient)
}

/// An amount read from `source` (as sent, surrounding spaces allowed) in `currency` is exactly
/// that text at the currency's scale, and reads back as itself.
fn exact(money: &Money, currency: &str, source: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(money.currency().code(), currency.trim());
    held_at_scale(money)?;
    let exponent = money.currency().exponent();
    let expected = at_scale(source.trim(), exponent);
    prop_assert_eq!(
        Some(money.amount().to_string()),
        expected,
        "{:?} read as {:?} at scale {}",
        source,
        money,
        exponent
    );
    Ok(())
}

/// The amount has exactly its currency's decimals, and its text reads back as itself.
fn held_at_scale(money: &Money) -> Result<(), TestCaseError> {
    prop_assert_eq!(money.amount().scale(), money.currency().exponent(), "{:?}", money);
    let text = money.amount().to_string();
    prop_assert_eq!(Money::parse(money.currency(), &text).ok(), Some(*money), "{}", text);
    Ok(())
}

/// Whether refusing `source` as an amount at `exponent` decimals is fair: it is not a plain
/// decimal, is finer than the currency, or is longer than the 28 digits an exact decimal holds.
fn unreadable(source: &str, exponent: u32) -> bool {
    let source = source.trim();
    let digits = |text: &str| text.bytes().filter(u8::is_ascii_digit).count();
    at_scale(source, exponent).is_none_or(|text| digits(&text) > 28) || digits(source) > 28
}

/// Any report: its amount, when it has one, is held at its currency's scale.
fn report_amount(report: &StatusReport) -> Result<(), TestCaseError> {
    if let Some(money) = &report.amount {
        held_at_scale(money)?;
    }
    Ok(())
}

/// The status a result code maps to, by the documented lists: `0` succeeded, a listed code
/// failed, anything else pending.
fn by_code(code: &str, failures: &[&str]) -> Status {
    let code = code.trim();
    if code == "0" {
        Status::Succeeded
    } else if failures.contains(&code) {
        Status::Failed
    } else {
        Status::Pending
    }
}

// =============================================================================================
// JSON documents that keep numbers as written and may repeat keys
// =============================================================================================

#[derive(Clone, Debug, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    /// A number as written (`1.00`, `4609274685.0`, `1e400`).
    Number(String),
    String(String),
    Array(Vec<Json>),
    /// In order; a key may repeat.
    Object(Vec<(String, Json)>),
}

impl Json {
    fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Self::Null => out.push_str("null"),
            Self::Bool(value) => out.push_str(if *value { "true" } else { "false" }),
            Self::Number(text) => out.push_str(text),
            Self::String(text) => out.push_str(&serde_json::to_string(text).unwrap()),
            Self::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
            Self::Object(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(key).unwrap());
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
        }
    }

    /// The paths of every value in the document, the document itself first.
    fn paths(&self) -> Vec<Vec<usize>> {
        let mut paths = vec![vec![]];
        let mut at = 0;
        while at < paths.len() {
            let path = paths[at].clone();
            let count = match self.at(&path) {
                Self::Array(items) => items.len(),
                Self::Object(fields) => fields.len(),
                _ => 0,
            };
            for i in 0..count {
                let mut child = path.clone();
                child.push(i);
                paths.push(child);
            }
            at += 1;
        }
        paths
    }

    fn at(&self, path: &[usize]) -> &Self {
        path.iter().fold(self, |node, &i| match node {
            Self::Array(items) => &items[i],
            Self::Object(fields) => &fields[i].1,
            _ => unreachable!("a path into a scalar"),
        })
    }

    fn at_mut(&mut self, path: &[usize]) -> &mut Self {
        path.iter().fold(self, |node, &i| match node {
            Self::Array(items) => &mut items[i],
            Self::Object(fields) => &mut fields[i].1,
            _ => unreachable!("a path into a scalar"),
        })
    }
}

/// Reads the JSON documents of a sample (several may follow one another; `//` comments are
/// skipped). Samples are well-formed, so this reader is strict and small.
struct JsonReader<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> JsonReader<'a> {
    fn documents(text: &'a str) -> Vec<Json> {
        let mut reader = JsonReader { text, at: 0 };
        let mut documents = Vec::new();
        reader.skip();
        while reader.at < text.len() {
            documents.push(reader.value());
            reader.skip();
        }
        documents
    }

    fn rest(&self) -> &'a str {
        &self.text[self.at..]
    }

    fn skip(&mut self) {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start();
            self.at += rest.len() - trimmed.len();
            if trimmed.starts_with("//") {
                self.at += trimmed.find('\n').unwrap_or(trimmed.len());
            } else {
                return;
            }
        }
    }

    fn value(&mut self) -> Json {
        self.skip();
        let rest = self.rest();
        let first = rest.chars().next().unwrap();
        match first {
            '{' => {
                self.at += 1;
                let mut fields = Vec::new();
                loop {
                    self.skip();
                    if self.rest().starts_with('}') {
                        self.at += 1;
                        return Json::Object(fields);
                    }
                    if self.rest().starts_with(',') {
                        self.at += 1;
                        continue;
                    }
                    let Json::String(key) = self.value() else { panic!("a key") };
                    self.skip();
                    assert!(self.rest().starts_with(':'));
                    self.at += 1;
                    fields.push((key, self.value()));
                }
            }
            '[' => {
                self.at += 1;
                let mut items = Vec::new();
                loop {
                    self.skip();
                    if self.rest().starts_with(']') {
                        self.at += 1;
                        return Json::Array(items);
                    }
                    if self.rest().starts_with(',') {
                        self.at += 1;
                        continue;
                    }
                    items.push(self.value());
                }
            }
            '"' => {
                let mut escaped = false;
                let end = rest
                    .char_indices()
                    .skip(1)
                    .find(|&(_, c)| {
                        let close = c == '"' && !escaped;
                        escaped = c == '\\' && !escaped;
                        close
                    })
                    .unwrap()
                    .0;
                self.at += end + 1;
                Json::String(serde_json::from_str(&rest[..=end]).unwrap())
            }
            _ => {
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || "+-.".contains(c)))
                    .unwrap_or(rest.len());
                self.at += end;
                match &rest[..end] {
                    "null" => Json::Null,
                    "true" => Json::Bool(true),
                    "false" => Json::Bool(false),
                    number => Json::Number(number.to_owned()),
                }
            }
        }
    }
}

/// One change to a document.
#[derive(Clone, Debug)]
enum Mutation<T> {
    /// The value at the path becomes this one.
    Replace(T),
    /// The value (or field) at the path is removed.
    Drop,
    /// The field or item at the path appears twice: as it is, or with this other value.
    Duplicate(Option<T>),
    /// The value at the path is nested one level deeper.
    Nest,
    /// A string becomes a number with its text, or a number a string; a field is renamed.
    Retype(String),
}

fn mutation<T: std::fmt::Debug + Clone + 'static>(
    value: impl Strategy<Value = T> + Clone + 'static,
) -> impl Strategy<Value = (Index, Mutation<T>)> {
    let kind = prop_oneof![
        4 => value.clone().prop_map(Mutation::Replace),
        2 => Just(Mutation::Drop),
        2 => prop::option::of(value).prop_map(Mutation::Duplicate),
        1 => Just(Mutation::Nest),
        1 => key().prop_map(Mutation::Retype),
    ];
    (any::<Index>(), kind)
}

fn mutate_json(document: &mut Json, (index, change): &(Index, Mutation<Json>)) {
    let paths = document.paths();
    let path = &paths[index.index(paths.len())];
    let Some((&last, parent_path)) = path.split_last() else {
        // The document itself.
        match change {
            Mutation::Replace(value) => *document = value.clone(),
            Mutation::Nest => *document = Json::Array(vec![document.clone()]),
            _ => {}
        }
        return;
    };
    let parent = document.at_mut(parent_path);
    match (parent, change) {
        (Json::Object(fields), Mutation::Drop) => {
            fields.remove(last);
        }
        (Json::Array(items), Mutation::Drop) => {
            items.remove(last);
        }
        (Json::Object(fields), Mutation::Duplicate(other)) => {
            let (key, value) = fields[last].clone();
            fields.insert(last + 1, (key, other.clone().unwrap_or(value)));
        }
        (Json::Array(items), Mutation::Duplicate(other)) => {
            let value = other.clone().unwrap_or_else(|| items[last].clone());
            items.insert(last + 1, value);
        }
        (Json::Object(fields), Mutation::Retype(key)) if index.index(2) == 0 => {
            fields[last].0.clone_from(key);
        }
        (parent, change) => {
            let node = match parent {
                Json::Object(fields) => &mut fields[last].1,
                Json::Array(items) => &mut items[last],
                _ => unreachable!("a parent is a container"),
            };
            match change {
                Mutation::Replace(value) => *node = value.clone(),
                Mutation::Nest if index.index(2) == 0 => *node = Json::Array(vec![node.clone()]),
                Mutation::Nest => *node = Json::Object(vec![("Value".into(), node.clone())]),
                Mutation::Retype(_) => {
                    *node = match &*node {
                        Json::String(text) if serde_json::from_str::<f64>(text).is_ok() => {
                            Json::Number(text.clone())
                        }
                        Json::Number(text) => Json::String(text.clone()),
                        other => other.clone(),
                    }
                }
                Mutation::Drop | Mutation::Duplicate(_) => {}
            }
        }
    }
}

// =============================================================================================
// Values
// =============================================================================================

/// Field names of every message, so that generated and renamed fields hit real ones.
#[rustfmt::skip]
const KEYS: &[&str] = &[
    "Body", "stkCallback", "MerchantRequestID", "CheckoutRequestID", "ResultCode", "ResultDesc",
    "CallbackMetadata", "Item", "Name", "Value", "Amount", "MpesaReceiptNumber", "PhoneNumber",
    "Result", "ResultType", "OriginatorConversationID", "ConversationID", "TransactionID",
    "ResultParameters", "ResultParameter", "ReferenceData", "ReferenceItem", "Key",
    "TransactionAmount", "TransactionReceipt", "TransactionStatus", "ReceiptNo", "TransID",
    "TransAmount", "BusinessShortCode", "BillRefNumber", "MSISDN", "FirstName", "ResponseCode",
    "AccountBalance", "expires_in", "access_token", "Response", "amount", "transactionId", "status",
    "currency", "externalId", "referenceId", "financialTransactionId", "reason", "code", "message",
    "payer", "payee", "partyId", "partyIdType", "availableBalance", "errorCode", "errorParameters",
    "key", "value",
];

fn key() -> impl Strategy<Value = String> + Clone {
    prop_oneof![4 => select(KEYS).prop_map(str::to_owned), 1 => any::<String>()]
}

/// Texts an amount may be sent as, valid and not: plain decimals of every length and scale,
/// signs, spaces, exponents, separators, the edges of 64-bit minor units and of `Decimal`.
fn amount_text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        6 => "[-+]?[0-9]{0,3}(\\.[0-9]{0,4})?",
        3 => "[-+]?[0-9]{1,32}(\\.[0-9]{0,32})?",
        // Exact at the currency's scale up to the 28 digits a decimal holds, then not.
        2 => "-?[0-9]{1,6}\\.[0-9]{0,3}0{18,30}[1-9]{1,3}",
        2 => "[ \t]{0,2}[0-9]{1,6}(\\.[0-9]{1,3})?[ \t]{0,2}",
        2 => select(&[
            "0", "-0", "0.00", "-0.00", "00012.50", "1e3", "1E-2", "1_000", "1,000", "0x10", ".5",
            "5.", "-", "+", ".", "", "NaN", "inf", "1.2.3", "--1", "+-1", "１２", "1\u{a0}",
            "92233720368547758.07", "92233720368547758.08", "-92233720368547758.08",
            "9223372036854775807", "9223372036854775808", "79228162514264337593543950335",
            "79228162514264337593543950336", "7922816251426433759354395033.5",
            "0.0000000000000000000000000001", "1.00000000000000000000000000000",
            "1.000000000000000000000000000009",
            "99999999999999999999999999999999999999999",
        ][..]).prop_map(str::to_owned),
        1 => any::<String>(),
    ]
}

/// Amount texts that are mostly what a provider sends, sometimes one of the odd ones.
fn money_text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        6 => "[1-9][0-9]{0,6}(\\.[0-9]{2})?",
        2 => amount_text(),
    ]
}

/// JSON number texts: integers, decimals and exponents, up to absurd sizes.
fn number_text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        4 => "-?(0|[1-9][0-9]{0,5})(\\.[0-9]{1,4})?",
        2 => "-?(0|[1-9][0-9]{0,40})(\\.[0-9]{1,40})?([eE][-+]?[0-9]{1,3})?",
        1 => select(&["1e400", "-1e400", "1.0", "4609274685.0", "18446744073709551616"][..])
            .prop_map(str::to_owned),
    ]
}

/// Result codes and statuses as providers write them, with their look-alikes.
fn code_text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        4 => select(&[
            "0", " 0", "0 ", "00", "0.0", "-0", "1", "1032", "1037", "2001", "17", "SFC_IC0003",
            "R000001", "R000002", "r000002", "4999", "X123", "00000000", "1000", "1001",
            "SUCCESSFUL", "FAILED", "PENDING", "successful", " SUCCESSFUL", "CREATED",
            "Completed", "completed", " COMPLETED ", "Pending", "Failed",
        ][..]).prop_map(str::to_owned),
        1 => select(STK_FAILURE_CODES).prop_map(str::to_owned),
        1 => select(B2C_FAILURE_CODES).prop_map(str::to_owned),
        1 => "[A-Z0-9_ ]{0,10}",
    ]
}

/// Phone numbers and parties as providers write them: whole, masked, with names, or not.
fn party_text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        "\\+?2547[0-9]{8}",
        "2547[0-9*]{5} ?\\*{0,5} ?[0-9]{3}",
        "[0-9]{5,12} - [A-Za-z ]{0,12}",
        any::<String>(),
    ]
}

fn string() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        2 => amount_text(),
        2 => code_text(),
        1 => party_text(),
        2 => any::<String>(),
    ]
}

/// A scalar JSON value of any kind.
fn scalar() -> impl Strategy<Value = Json> + Clone {
    prop_oneof![
        1 => Just(Json::Null),
        1 => any::<bool>().prop_map(Json::Bool),
        3 => number_text().prop_map(Json::Number),
        4 => string().prop_map(Json::String),
    ]
}

/// Any JSON value, nested a little.
fn json() -> impl Strategy<Value = Json> + Clone {
    scalar().prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::vec((key(), inner), 0..4).prop_map(Json::Object),
        ]
    })
}

/// A value where an amount belongs: mostly amount-like, sometimes anything.
fn amount_json() -> impl Strategy<Value = Json> + Clone {
    prop_oneof![
        5 => money_text().prop_map(Json::String),
        4 => money_text().prop_map(|text| {
            if serde_json::from_str::<serde_json::Number>(&text).is_ok() {
                Json::Number(text)
            } else {
                Json::String(text)
            }
        }),
        2 => number_text().prop_map(Json::Number),
        1 => json(),
    ]
}

/// A value where a code or a status belongs, as a string or (when numeric) a number.
fn code_json() -> impl Strategy<Value = Json> + Clone {
    prop_oneof![
        6 => code_text().prop_map(Json::String),
        5 => code_text().prop_map(|text| {
            if serde_json::from_str::<serde_json::Number>(&text).is_ok() {
                Json::Number(text)
            } else {
                Json::String(text)
            }
        }),
        1 => json(),
    ]
}

fn text_json() -> impl Strategy<Value = Json> + Clone {
    prop_oneof![12 => string().prop_map(Json::String), 1 => json()]
}

/// A field that is almost always there: most bodies should get past the required fields to
/// the transformers, and a few miss one.
fn field(
    name: &'static str,
    value: impl Strategy<Value = Json> + 'static,
) -> BoxedStrategy<Option<(String, Json)>> {
    prop::option::weighted(0.95, value.prop_map(move |value| (name.to_owned(), value))).boxed()
}

fn object(fields: Vec<BoxedStrategy<Option<(String, Json)>>>) -> BoxedStrategy<Json> {
    fields.prop_map(|fields| Json::Object(fields.into_iter().flatten().collect())).boxed()
}

/// One object, or a list of them, as Daraja sends `Item` and `ResultParameter`.
fn one_or_many(item: BoxedStrategy<Json>) -> BoxedStrategy<Json> {
    prop_oneof![
        1 => item.clone(),
        3 => prop::collection::vec(item, 0..5).prop_map(Json::Array),
    ]
    .boxed()
}

// =============================================================================================
// M-Pesa
// =============================================================================================

/// The `{Key, Value}` parameter names the transformers look for, with look-alikes.
#[rustfmt::skip]
const PARAMETERS: &[&str] = &[
    "TransactionAmount", "TransactionReceipt", "ReceiverPartyPublicName", "TransactionStatus",
    "Amount", "ReceiptNo", "DebitPartyName", "CreditPartyName", "OriginatorConversationID",
    "ConversationID", "Conversation ID", "Transaction Status", "OriginalTransactionID",
    "AccountBalance", "amount", "Amount ",
];

/// An `AccountBalance` value: `Name|Currency|n|n|n|n` entries joined by `&`, some broken.
fn balances_text() -> impl Strategy<Value = String> {
    let currency = prop_oneof![
        select(&["KES", "USD", "BHD", "UGX", "XAU", "kes", ""][..]).prop_map(str::to_owned),
        "[A-Z]{3}"
    ];
    let entry = ("[A-Za-z ]{0,12}", currency, prop::collection::vec(amount_text(), 3..=5))
        .prop_map(|(name, currency, amounts)| format!("{name}|{currency}|{}", amounts.join("|")));
    prop::collection::vec(entry, 1..4).prop_map(|entries| entries.join("&"))
}

fn key_value() -> BoxedStrategy<Json> {
    let value = prop_oneof![
        3 => amount_json(),
        2 => code_json(),
        1 => party_text().prop_map(Json::String),
        1 => balances_text().prop_map(Json::String),
    ];
    object(vec![
        field(
            "Key",
            prop_oneof![4 => select(PARAMETERS).prop_map(str::to_owned), 1 => key()]
                .prop_map(Json::String),
        ),
        field("Value", value),
    ])
}

fn stk_callback() -> BoxedStrategy<Json> {
    let item = object(vec![
        field(
            "Name",
            select(
                &[
                    "Amount",
                    "MpesaReceiptNumber",
                    "PhoneNumber",
                    "Balance",
                    "TransactionDate",
                    "amount",
                ][..],
            )
            .prop_map(|name| Json::String(name.to_owned())),
        ),
        field("Value", prop_oneof![amount_json(), party_text().prop_map(Json::String)]),
    ]);
    let metadata = object(vec![field("Item", one_or_many(item))]);
    let callback = object(vec![
        field("MerchantRequestID", text_json()),
        field("CheckoutRequestID", text_json()),
        field("ResultCode", code_json()),
        field("ResultDesc", text_json()),
        field("CallbackMetadata", metadata),
    ]);
    callback
        .prop_map(|callback| {
            Json::Object(vec![(
                "Body".into(),
                Json::Object(vec![("stkCallback".into(), callback)]),
            )])
        })
        .boxed()
}

fn result_callback() -> BoxedStrategy<Json> {
    let result = object(vec![
        field("ResultType", code_json()),
        field("ResultCode", code_json()),
        field("ResultDesc", text_json()),
        field("OriginatorConversationID", text_json()),
        field("ConversationID", text_json()),
        field("TransactionID", text_json()),
        field("ResultParameters", object(vec![field("ResultParameter", one_or_many(key_value()))])),
        field("ReferenceData", object(vec![field("ReferenceItem", one_or_many(key_value()))])),
    ]);
    result.prop_map(|result| Json::Object(vec![("Result".into(), result)])).boxed()
}

fn c2b_body() -> BoxedStrategy<Json> {
    object(vec![
        field("TransactionType", text_json()),
        field("TransID", text_json()),
        field("TransTime", code_json()),
        field("TransAmount", amount_json()),
        field("BusinessShortCode", code_json()),
        field("BillRefNumber", text_json()),
        field("InvoiceNumber", text_json()),
        field("OrgAccountBalance", amount_json()),
        field("ThirdPartyTransID", text_json()),
        field(
            "MSISDN",
            prop_oneof![party_text().prop_map(Json::String), number_text().prop_map(Json::Number)],
        ),
        field("FirstName", text_json()),
        field("MiddleName", text_json()),
        field("LastName", text_json()),
    ])
}

fn stk_query_response() -> BoxedStrategy<Json> {
    object(vec![
        field("ResponseCode", code_json()),
        field("ResponseDescription", text_json()),
        field("MerchantRequestID", text_json()),
        field("CheckoutRequestID", text_json()),
        field("ResultCode", code_json()),
        field("ResultDesc", text_json()),
    ])
}

fn pull_query_response() -> BoxedStrategy<Json> {
    let transaction = object(vec![
        field("transactionId", text_json()),
        field("msisdn", code_json()),
        field("amount", amount_json()),
    ]);
    let page = prop::collection::vec(transaction, 0..3).prop_map(Json::Array);
    object(vec![
        field("ResponseCode", code_json()),
        field("Response", prop::collection::vec(page, 0..3).prop_map(Json::Array)),
    ])
}

fn token_response() -> BoxedStrategy<Json> {
    object(vec![field("access_token", text_json()), field("expires_in", code_json())])
}

/// A body shaped like one of Daraja's.
fn mpesa_shaped() -> BoxedStrategy<Json> {
    prop_oneof![
        3 => stk_callback(),
        4 => result_callback(),
        3 => c2b_body(),
        1 => stk_query_response(),
        1 => pull_query_response(),
        1 => token_response(),
    ]
    .boxed()
}

/// Reads a body with every M-Pesa reader, as the server's callback handlers do
/// (`server/src/payments/mpesa.rs`: `read_callback` for `stk`, `result` and `status`,
/// `read_c2b`, both `from_slice` and a transformer), and checks what each makes of it.
fn mpesa_reads(body: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(envelope) = serde_json::from_slice::<StkCallbackEnvelope>(body) {
        stk_checks(&envelope.body.stk_callback)?;
    }
    if let Ok(envelope) = serde_json::from_slice::<ResultEnvelope>(body) {
        result_checks(&envelope.result)?;
    }
    if let Ok(payment) = serde_json::from_slice::<C2bPayment>(body) {
        c2b_checks(&payment)?;
    }
    if let Ok(text) = std::str::from_utf8(body) {
        match mpesa::callback(text) {
            Ok(Callback::Stk(callback)) => stk_checks(&callback)?,
            Ok(Callback::Result(result)) => result_checks(&result)?,
            Ok(Callback::C2b(payment)) => c2b_checks(&payment)?,
            Err(ParseError::Json(_) | ParseError::Unexpected(_)) => {}
            Err(other) => prop_assert!(false, "callback failed with {}", other),
        }
        balances_checks(text)?;
    }
    if let Ok(query) = serde_json::from_slice::<StkQueryResponse>(body) {
        let report = query.to_report();
        let accepted = query.response_code.as_str().trim() == "0";
        let expected = match &query.result_code {
            Some(code) if accepted => by_code(code.as_str(), STK_FAILURE_CODES),
            _ => Status::Pending,
        };
        prop_assert_eq!(report.status, expected, "{:?}", query);
        prop_assert_eq!(report.amount, None);
    }
    if let Ok(pull) = serde_json::from_slice::<PullQueryResponse>(body) {
        for transaction in pull.transactions() {
            if let Ok(money) = transaction.amount() {
                exact(&money, "KES", transaction.amount.as_str())?;
            }
        }
    }
    if let Ok(token) = serde_json::from_slice::<TokenResponse>(body)
        && let Ok(seconds) = token.expires_in_seconds()
    {
        let text = token.expires_in.as_str().trim();
        prop_assert_eq!(text.trim_start_matches('+').trim_start_matches('0'), {
            let digits = seconds.to_string();
            if digits == "0" { String::new() } else { digits }
        });
    }
    // The synchronous answers: read for their one decision.
    if let Ok(reply) = serde_json::from_slice::<QueuedResponse>(body) {
        prop_assert_eq!(reply.is_accepted(), reply.response_code.as_str().trim() == "0");
    }
    if let Ok(reply) = serde_json::from_slice::<StkPushResponse>(body) {
        prop_assert_eq!(reply.is_accepted(), reply.response_code.as_str().trim() == "0");
    }
    if let Ok(reply) = serde_json::from_slice::<ErrorResponse>(body) {
        prop_assert!(!reply.is_duplicate() || reply.error_code == "500.002.1001");
    }
    if let Ok(reply) = serde_json::from_slice::<PullRegisterResponse>(body) {
        let registered = matches!(reply.response_status.as_str().trim(), "1000" | "1001");
        prop_assert_eq!(reply.is_registered(), registered);
    }
    Ok(())
}

fn stk_checks(callback: &StkCallback) -> Result<(), TestCaseError> {
    let Ok(report) = callback.to_report() else {
        // Only an unreadable amount refuses a callback.
        let amount = callback.item("Amount").unwrap();
        prop_assert!(unreadable(amount.as_str(), 2), "Amount {:?} refused", amount);
        return Ok(());
    };
    let code = callback.result_code.as_str();
    prop_assert_eq!(report.status, by_code(code, STK_FAILURE_CODES), "ResultCode {:?}", code);
    match (callback.item("Amount"), &report.amount) {
        (Some(text), Some(money)) => exact(money, "KES", text.as_str())?,
        (None, None) => {}
        (text, money) => prop_assert!(false, "Amount {:?} read as {:?}", text, money),
    }
    Ok(())
}

fn result_checks(result: &MpesaResult) -> Result<(), TestCaseError> {
    let code = result.result_code.as_str();
    let amount = |money: Option<&Money>, key: &str| -> Result<(), TestCaseError> {
        match (result.parameter(key), money) {
            (Some(text), Some(money)) => exact(money, "KES", text.as_str()),
            (None, None) => Ok(()),
            (text, money) => Err(TestCaseError::fail(format!("{key} {text:?} read as {money:?}"))),
        }
    };
    if let Ok(report) = result.to_b2c_report() {
        let status = by_code(code, B2C_FAILURE_CODES);
        prop_assert_eq!(report.status, status, "B2C ResultCode {:?}", code);
        // A receipt is what the ledger posts under: only a success has one.
        prop_assert!(report.receipt.is_none() || status == Status::Succeeded);
        amount(report.amount.as_ref(), "TransactionAmount")?;
    }
    if let Ok(report) = result.to_transaction_status_report() {
        // The query's own code says only that the query was answered; the payment succeeded
        // only when its status says Completed, and a status query never fails a payment.
        let completed = result
            .parameter("TransactionStatus")
            .is_some_and(|status| status.as_str().trim().eq_ignore_ascii_case("completed"));
        let expected =
            if code.trim() == "0" && completed { Status::Succeeded } else { Status::Pending };
        prop_assert_eq!(report.status, expected, "status result {:?}", result);
        amount(report.amount.as_ref(), "Amount")?;
    }
    if let Ok(report) = result.to_reversal_report() {
        let status = by_code(code, REVERSAL_FAILURE_CODES);
        prop_assert_eq!(report.status, status, "reversal ResultCode {:?}", code);
        prop_assert!(report.receipt.is_none() || status == Status::Succeeded);
        amount(report.amount.as_ref(), "Amount")?;
    }
    let _ = result.reversed_transaction_id();
    if let Ok(balances) = result.account_balances() {
        prop_assert_eq!(code.trim(), "0");
        let text = result.parameter("AccountBalance").unwrap().as_str();
        prop_assert_eq!(balances.len(), text.split('&').count());
        for (balance, entry) in balances.iter().zip(text.split('&')) {
            let fields: Vec<&str> = entry.split('|').collect();
            let amounts = [&balance.current, &balance.available, &balance.reserved];
            for (money, source) in amounts.into_iter().chain([&balance.uncleared]).zip(&fields[2..])
            {
                exact(money, fields[1], source)?;
            }
        }
    }
    Ok(())
}

fn balances_checks(text: &str) -> Result<(), TestCaseError> {
    if let Ok(balances) = mpesa::parse_account_balances(text) {
        for (balance, entry) in balances.iter().zip(text.split('&')) {
            let fields: Vec<&str> = entry.split('|').collect();
            exact(&balance.current, fields[1], fields[2])?;
            exact(&balance.uncleared, fields[1], fields[5])?;
        }
    }
    Ok(())
}

fn c2b_checks(payment: &C2bPayment) -> Result<(), TestCaseError> {
    match payment.payer_msisdn() {
        Some(Msisdn::Full(digits)) => prop_assert!(digits.bytes().all(|b| b.is_ascii_digit())),
        Some(Msisdn::Masked(text)) => prop_assert!(!text.is_empty()),
        None => prop_assert!(payment.msisdn.as_str().trim().is_empty()),
    }
    let Ok(received) = payment.to_received() else {
        // Refused only without a receipt or an amount.
        let amount = payment.trans_amount.as_str();
        prop_assert!(payment.trans_id.trim().is_empty() || unreadable(amount, 2), "{:?}", payment);
        return Ok(());
    };
    // A confirmation is the provider's word that the money moved, so it succeeded; with a
    // receipt and an amount, or it is refused.
    prop_assert_eq!(received.report.status, Status::Succeeded);
    prop_assert_eq!(received.report.receipt.as_deref(), Some(payment.trans_id.trim()));
    prop_assert!(!payment.trans_id.trim().is_empty());
    let money = received.report.amount.as_ref().unwrap();
    exact(money, "KES", payment.trans_amount.as_str())?;
    Ok(())
}

// =============================================================================================
// MTN MoMo
// =============================================================================================

fn currency_text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        4 => select(&["UGX", "EUR", "KES", "GHS", "BHD", "JPY", "CLF", "XAU", "XXX", "ugx", "",
            " EUR", "EUR "][..]).prop_map(str::to_owned),
        1 => "[A-Z]{3}",
        1 => any::<String>(),
    ]
}

fn momo_party() -> BoxedStrategy<Json> {
    object(vec![
        field(
            "partyIdType",
            select(&["MSISDN", "EMAIL", "PARTY_CODE", "msisdn"][..])
                .prop_map(|kind| Json::String(kind.to_owned())),
        ),
        field(
            "partyId",
            prop_oneof![party_text().prop_map(Json::String), number_text().prop_map(Json::Number)],
        ),
    ])
}

fn momo_status_body() -> BoxedStrategy<Json> {
    let reason = prop_oneof![
        3 => code_text().prop_map(Json::String),
        3 => object(vec![field("code", code_json()), field("message", text_json())]),
        1 => json(),
    ];
    object(vec![
        field("referenceId", text_json()),
        field("amount", amount_json()),
        field("currency", prop_oneof![8 => currency_text().prop_map(Json::String), 1 => json()]),
        field(
            "financialTransactionId",
            prop_oneof![text_json(), number_text().prop_map(Json::Number)],
        ),
        field("externalId", prop_oneof![text_json(), number_text().prop_map(Json::Number)]),
        field("payer", momo_party()),
        field("payee", momo_party()),
        field("payerMessage", text_json()),
        field("payeeNote", text_json()),
        field(
            "status",
            prop_oneof![
                6 => select(&["SUCCESSFUL", "FAILED", "PENDING"][..]).prop_map(|status| Json::String(status.to_owned())),
                1 => code_json(),
            ],
        ),
        field("reason", reason),
    ])
}

fn momo_shaped() -> BoxedStrategy<Json> {
    let balance = object(vec![
        field("availableBalance", amount_json()),
        field("currency", currency_text().prop_map(Json::String)),
    ]);
    let token = object(vec![
        field("access_token", text_json()),
        field("expires_in", code_json()),
        field("token_type", text_json()),
    ]);
    let parameter = object(vec![field("key", text_json()), field("value", code_json())]);
    let error = object(vec![
        field("code", code_json()),
        field("message", text_json()),
        field("errorCategory", text_json()),
        field(
            "errorCode",
            select(&["RESOURCE_ALREADY_EXIST", "RESOURCE_NOT_FOUND", "genericError"][..])
                .prop_map(|code| Json::String(code.to_owned())),
        ),
        field("errordescription", text_json()),
        field("errorParameters", prop::collection::vec(parameter, 0..3).prop_map(Json::Array)),
    ]);
    prop_oneof![6 => momo_status_body(), 1 => balance, 1 => token, 1 => error].boxed()
}

/// Reads a body with every MoMo reader and checks what each makes of it.
fn momo_reads(body: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(status) = momo::PaymentStatus::parse(body) {
        let expected = match status.status_text.as_str() {
            "SUCCESSFUL" => Status::Succeeded,
            "FAILED" => Status::Failed,
            _ => Status::Pending,
        };
        prop_assert_eq!(status.status(), expected, "status {:?}", status.status_text);
        let _ = status.failure_reason();
        if let Ok(report) = status.to_report() {
            prop_assert_eq!(report.status, expected);
            if let Some(money) = &report.amount {
                let amount = status.amount.as_ref().unwrap();
                exact(money, status.currency.as_deref().unwrap(), amount.as_str())?;
            } else {
                // No amount is read only when one is missing or its currency is unknown.
                let known = status
                    .currency
                    .as_deref()
                    .is_some_and(|code| Currency::from_code(code).is_ok());
                prop_assert!(status.amount.is_none() || !known, "{:?}", status);
            }
            let callback = momo::parse_callback(body);
            let matched = report.our_reference.is_some() || report.request_reference.is_some();
            prop_assert_eq!(callback.is_ok(), matched);
        } else {
            // Refused only for an amount in a known currency that is not one.
            let currency = Currency::from_code(status.currency.as_deref().unwrap());
            let amount = status.amount.as_ref().unwrap().as_str();
            prop_assert!(unreadable(amount, currency.unwrap().exponent()), "{:?}", status);
            prop_assert!(momo::parse_callback(body).is_err());
        }
    } else {
        prop_assert!(momo::parse_callback(body).is_err());
    }
    if let Ok(balance) = momo::Balance::parse(body)
        && let Ok(money) = balance.to_money()
    {
        exact(&money, &balance.currency, balance.available_balance.as_str())?;
    }
    if let Ok(token) = serde_json::from_slice::<momo::TokenResponse>(body) {
        let _ = token.expires_in_seconds();
    }
    for http_status in [200, 400, 404, 409, 500] {
        let error = momo::classify(http_status, body);
        prop_assert_eq!(error.http_status, http_status);
        if http_status == 409 {
            prop_assert_eq!(error.kind, momo::ErrorKind::Duplicate);
        }
        let _ = error.to_string();
    }
    Ok(())
}

// =============================================================================================
// XML documents
// =============================================================================================

#[derive(Clone, Debug, PartialEq)]
enum Xml {
    Element {
        name: String,
        attributes: Vec<(String, String)>,
        children: Vec<Xml>,
    },
    /// Text as written (escaped, or deliberately not).
    Text(String),
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

impl Xml {
    fn element(name: &str, children: Vec<Xml>) -> Self {
        Self::Element { name: name.to_owned(), attributes: vec![], children }
    }

    fn leaf(name: &str, text: &str) -> Self {
        Self::element(name, vec![Self::Text(escape(text))])
    }

    fn render(&self) -> String {
        let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Self::Text(text) => out.push_str(text),
            Self::Element { name, attributes, children } => {
                out.push('<');
                out.push_str(name);
                for (key, value) in attributes {
                    write!(out, " {key}=\"{value}\"").unwrap();
                }
                if children.is_empty() {
                    out.push_str("/>");
                    return;
                }
                out.push('>');
                for child in children {
                    child.write(out);
                }
                write!(out, "</{name}>").unwrap();
            }
        }
    }

    /// Reads a sample (declaration, elements, attributes and text; samples have no CDATA).
    fn read(text: &str) -> Self {
        let mut stack: Vec<Xml> = vec![Self::element("", vec![])];
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(tag) = rest.strip_prefix('<') {
                let end = tag.find('>').unwrap();
                let inner = &tag[..end];
                rest = &tag[end + 1..];
                if inner.starts_with('?') || inner.starts_with('!') {
                    continue;
                }
                if let Some(closing) = inner.strip_prefix('/') {
                    let done = stack.pop().unwrap();
                    let Self::Element { name, .. } = &done else { unreachable!() };
                    assert_eq!(name, closing.trim());
                    stack.last_mut().unwrap().push(done);
                    continue;
                }
                let empty = inner.ends_with('/');
                let inner = inner.trim_end_matches('/');
                let (name, mut attributes_text) =
                    inner.split_once(char::is_whitespace).unwrap_or((inner, ""));
                let mut attributes = Vec::new();
                while let Some((key, after)) = attributes_text.split_once("=\"") {
                    let (value, after) = after.split_once('"').unwrap();
                    attributes.push((key.trim().to_owned(), value.to_owned()));
                    attributes_text = after;
                }
                let element = Self::Element { name: name.to_owned(), attributes, children: vec![] };
                if empty {
                    stack.last_mut().unwrap().push(element);
                } else {
                    stack.push(element);
                }
            } else {
                let end = rest.find('<').unwrap_or(rest.len());
                if !rest[..end].trim().is_empty() {
                    stack.last_mut().unwrap().push(Self::Text(rest[..end].to_owned()));
                }
                rest = &rest[end..];
            }
        }
        let Self::Element { mut children, .. } = stack.pop().unwrap() else { unreachable!() };
        assert!(stack.is_empty() && children.len() == 1, "one root element");
        children.pop().unwrap()
    }

    fn push(&mut self, child: Xml) {
        let Self::Element { children, .. } = self else { unreachable!("text has no children") };
        children.push(child);
    }

    fn paths(&self) -> Vec<Vec<usize>> {
        let mut paths = vec![vec![]];
        let mut at = 0;
        while at < paths.len() {
            let path = paths[at].clone();
            if let Self::Element { children, .. } = self.at(&path) {
                for i in 0..children.len() {
                    let mut child = path.clone();
                    child.push(i);
                    paths.push(child);
                }
            }
            at += 1;
        }
        paths
    }

    fn at(&self, path: &[usize]) -> &Self {
        path.iter().fold(self, |node, &i| match node {
            Self::Element { children, .. } => &children[i],
            Self::Text(_) => unreachable!("a path into text"),
        })
    }

    fn at_mut(&mut self, path: &[usize]) -> &mut Self {
        path.iter().fold(self, |node, &i| match node {
            Self::Element { children, .. } => &mut children[i],
            Self::Text(_) => unreachable!("a path into text"),
        })
    }

    /// Every `(Ccy, text)` of an element with a currency attribute: the amounts sent.
    fn amounts(&self, out: &mut Vec<(String, String)>) {
        if let Self::Element { attributes, children, .. } = self {
            let text: String = children
                .iter()
                .map(
                    |child| {
                        if let Self::Text(text) = child { unescape(text) } else { String::new() }
                    },
                )
                .collect();
            for (key, value) in attributes {
                if key == "Ccy" {
                    out.push((unescape(value), text.clone()));
                }
            }
            for child in children {
                child.amounts(out);
            }
        }
    }
}

/// Element names of pain.002 and camt, so that inserted and renamed elements hit real ones.
#[rustfmt::skip]
const ELEMENTS: &[&str] = &[
    "Document", "CstmrPmtStsRpt", "GrpHdr", "MsgId", "OrgnlGrpInfAndSts", "OrgnlMsgId",
    "OrgnlMsgNmId", "GrpSts", "StsRsnInf", "Rsn", "Cd", "Prtry", "AddtlInf", "OrgnlPmtInfAndSts",
    "TxInfAndSts", "OrgnlEndToEndId", "OrgnlInstrId", "TxSts", "OrgnlTxRef", "IntrBkSttlmAmt",
    "Amt", "InstdAmt", "BkToCstmrStmt", "BkToCstmrDbtCdtNtfctn", "BkToCstmrAcctRpt", "Stmt",
    "Ntfctn", "Rpt", "Id", "ElctrncSeqNb", "Acct", "IBAN", "Othr", "Ccy", "Bal", "Tp", "CdOrPrtry",
    "CdtDbtInd", "Dt", "DtTm", "Ntry", "RvslInd", "Sts", "BookgDt", "ValDt", "AcctSvcrRef",
    "NtryDtls", "TxDtls", "Refs", "EndToEndId", "InstrId", "RltdPties", "Dbtr", "Cdtr", "Nm", "Pty",
    "DbtrAcct", "CdtrAcct", "RmtInf", "Ustrd", "Strd", "CdtrRefInf", "Ref",
];

/// Texts of ISO 20022 elements: status codes, indicators, dates, amounts and anything.
fn xml_text() -> impl Strategy<Value = String> + Clone {
    prop_oneof![
        3 => amount_text(),
        3 => select(&["ACSC", "ACCC", "RJCT", "CANC", "ACSP", "ACTC", "PART", "PDNG", "BOOK",
            "INFO", "CRDT", "DBIT", "true", "false", "1", "0", " ACSC ", "acsc", "NOTPROVIDED",
            "OPBD", "CLBD", "PRCD", "2023-01-10", "2023-02-30", "2015-03-10T18:43:50+00:00",
            "2015-03-10T18:43:50", "AM04", "EA178"][..]).prop_map(str::to_owned),
        2 => any::<String>(),
    ]
}

fn element_name() -> impl Strategy<Value = String> + Clone {
    prop_oneof![4 => select(ELEMENTS).prop_map(str::to_owned), 1 => "[A-Za-z][A-Za-z0-9]{0,8}"]
}

/// One change to an XML document.
#[derive(Clone, Debug)]
enum XmlMutation {
    /// The element's content becomes this text, escaped or (sometimes) as it is.
    Text(String, bool),
    Drop,
    Duplicate,
    /// An attribute is set (`Ccy`, `xmlns` or another).
    Attribute(String, String),
    /// The element is renamed.
    Rename(String),
    /// A new element is added inside, with this text.
    Insert(String, String),
    /// The element is wrapped in a new one.
    Wrap(String),
}

fn xml_mutation() -> impl Strategy<Value = (Index, XmlMutation)> {
    let attribute = prop_oneof![
        3 => Just("Ccy".to_owned()),
        1 => Just("xmlns".to_owned()),
        1 => "[a-z]{1,4}",
    ];
    let attribute_value = prop_oneof![
        2 => currency_text(),
        1 => select(&["urn:iso:std:iso:20022:tech:xsd:pain.002.001.03",
            "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02",
            "urn:iso:std:iso:20022:tech:xsd:camt.054", "urn:iso:std:iso:20022:tech:xsd:camt",
            "urn:iso:std:iso:20022:tech:xsd:pain.002"][..]).prop_map(str::to_owned),
        1 => any::<String>(),
    ];
    let kind = prop_oneof![
        5 => (xml_text(), prop::bool::weighted(0.9)).prop_map(|(t, e)| XmlMutation::Text(t, e)),
        2 => Just(XmlMutation::Drop),
        2 => Just(XmlMutation::Duplicate),
        2 => (attribute, attribute_value).prop_map(|(k, v)| XmlMutation::Attribute(k, v)),
        1 => element_name().prop_map(XmlMutation::Rename),
        2 => (element_name(), xml_text()).prop_map(|(n, t)| XmlMutation::Insert(n, t)),
        1 => element_name().prop_map(XmlMutation::Wrap),
    ];
    (any::<Index>(), kind)
}

fn mutate_xml(document: &mut Xml, (index, change): &(Index, XmlMutation)) {
    let paths = document.paths();
    let path = &paths[index.index(paths.len())];
    if let (Some((&last, parent_path)), XmlMutation::Drop | XmlMutation::Duplicate) =
        (path.split_last(), change)
    {
        let Xml::Element { children, .. } = document.at_mut(parent_path) else { unreachable!() };
        if matches!(change, XmlMutation::Drop) {
            children.remove(last);
        } else {
            let copy = children[last].clone();
            children.insert(last + 1, copy);
        }
        return;
    }
    let node = document.at_mut(path);
    let Xml::Element { name, attributes, children } = node else {
        if let XmlMutation::Text(text, escaped) = change {
            *node = Xml::Text(if *escaped { escape(text) } else { text.clone() });
        }
        return;
    };
    match change {
        XmlMutation::Text(text, escaped) => {
            *children = vec![Xml::Text(if *escaped { escape(text) } else { text.clone() })];
        }
        XmlMutation::Attribute(key, value) => {
            attributes.retain(|(k, _)| k != key);
            attributes.push((key.clone(), escape(value)));
        }
        XmlMutation::Rename(new) => new.clone_into(name),
        XmlMutation::Insert(child, text) => children.push(Xml::leaf(child, text)),
        XmlMutation::Wrap(outer) => {
            let inner = node.clone();
            *node = Xml::element(outer, vec![inner]);
        }
        XmlMutation::Drop | XmlMutation::Duplicate => {}
    }
}

fn optional(xml: Option<Xml>) -> Vec<Xml> {
    xml.into_iter().collect()
}

/// A `Document`'s namespace and the wrapper element it goes with: mostly a message the reader
/// takes, with its own wrapper; sometimes another message, version or wrapper.
fn message(family: &'static str) -> impl Strategy<Value = (String, &'static str)> {
    let names: &'static [(&str, &str)] = if family == "pain.002" {
        &[("pain.002.001.03", "CstmrPmtStsRpt"), ("pain.002.001.10", "CstmrPmtStsRpt")]
    } else {
        &[
            ("camt.052.001.06", "BkToCstmrAcctRpt"),
            ("camt.053.001.02", "BkToCstmrStmt"),
            ("camt.053.001.08", "BkToCstmrStmt"),
            ("camt.054.001.02", "BkToCstmrDbtCdtNtfctn"),
        ]
    };
    let wrapper = if family == "pain.002" { "CstmrPmtStsRpt" } else { "BkToCstmrStmt" };
    let odd = select(
        &[
            "pain.002",
            "pain.0021.001.03",
            "camt.053",
            "camt.055.001.01",
            "pain.002.001.03",
            "camt.054.001.02",
        ][..],
    );
    prop_oneof![
        10 => select(names)
            .prop_map(|(name, wrapper)| (format!("urn:iso:std:iso:20022:tech:xsd:{name}"), wrapper)),
        1 => odd.prop_map(move |name| (format!("urn:iso:std:iso:20022:tech:xsd:{name}"), wrapper)),
        1 => any::<String>().prop_map(move |text| (text, wrapper)),
    ]
}

/// An amount element: mostly a currency and a decimal, sometimes anything.
fn amount_xml(name: &'static str) -> impl Strategy<Value = Xml> + Clone {
    let currency = prop_oneof![
        12 => select(&["EUR", "KES", "USD", "CHF"][..]).prop_map(str::to_owned),
        1 => select(&["BHD", "JPY", "CLF"][..]).prop_map(str::to_owned),
        1 => currency_text(),
    ];
    (currency, money_text()).prop_map(move |(currency, amount)| Xml::Element {
        name: name.to_owned(),
        attributes: vec![("Ccy".into(), escape(&currency))],
        children: vec![Xml::Text(escape(&amount))],
    })
}

/// A leaf element that is almost always there (the reader requires it), with any text.
fn required(name: &'static str) -> impl Strategy<Value = Option<Xml>> + Clone {
    prop::option::weighted(0.98, xml_text().prop_map(move |text| Xml::leaf(name, &text)))
}

/// A leaf element that is mostly there, with any text.
fn leaf(name: &'static str) -> impl Strategy<Value = Option<Xml>> + Clone {
    prop::option::weighted(0.9, xml_text().prop_map(move |text| Xml::leaf(name, &text)))
}

/// A leaf element that is mostly there, mostly with one of the values its reader decides on.
fn leaf_of(
    name: &'static str,
    values: &'static [&'static str],
) -> impl Strategy<Value = Option<Xml>> + Clone {
    let text = prop_oneof![15 => select(values).prop_map(str::to_owned), 1 => xml_text()];
    prop::option::weighted(0.98, text.prop_map(move |text| Xml::leaf(name, &text)))
}

const STATUS_CODES: &[&str] = &["ACSC", "ACCC", "RJCT", "CANC", "ACSP", "ACTC", "PART", "PDNG"];
const SIDES: &[&str] = &["CRDT", "DBIT", " CRDT "];
const DAYS: &[&str] = &["2023-01-10", "2024-02-29", "2023-01-11", "2023-02-30", "2023-1-1"];
const MOMENTS: &[&str] =
    &["2015-03-10T18:43:50+00:00", "2015-03-10T18:43:50.123Z", "2015-03-10T18:43:50"];

fn reason_xml() -> impl Strategy<Value = Xml> + Clone {
    let code = prop_oneof![
        leaf_of("Cd", &["AM04", "AC01", "MS03", "NARR"]),
        leaf_of("Prtry", &["EA178", "AM04", "X1"]),
    ];
    (code, prop::collection::vec(xml_text(), 0..3)).prop_map(|(code, lines)| {
        let mut children = vec![Xml::element("Rsn", optional(code))];
        children.extend(lines.iter().map(|line| Xml::leaf("AddtlInf", line)));
        Xml::element("StsRsnInf", children)
    })
}

fn pain002_shaped() -> BoxedStrategy<Xml> {
    let transaction = (
        leaf("OrgnlEndToEndId"),
        prop::option::weighted(0.7, leaf_of("TxSts", STATUS_CODES)).prop_map(Option::flatten),
        prop::collection::vec(reason_xml(), 0..2),
        prop::option::of(prop_oneof![
            amount_xml("IntrBkSttlmAmt"),
            amount_xml("InstdAmt").prop_map(|amount| Xml::element("Amt", vec![amount])),
        ]),
    )
        .prop_map(|(end_to_end, status, reasons, amount)| {
            let mut children = optional(end_to_end);
            children.extend(optional(status));
            children.extend(reasons);
            children.extend(amount.map(|a| Xml::element("OrgnlTxRef", vec![a])));
            Xml::element("TxInfAndSts", children)
        });
    let payment = prop::collection::vec(transaction, 0..3)
        .prop_map(|transactions| Xml::element("OrgnlPmtInfAndSts", transactions));
    (
        message("pain.002"),
        required("MsgId"),
        leaf("OrgnlMsgId"),
        leaf_of("GrpSts", STATUS_CODES),
        prop::collection::vec(reason_xml(), 0..2),
        prop::collection::vec(payment, 0..3),
    )
        .prop_map(|((xmlns, wrapper), id, original, group_status, reasons, payments)| {
            let mut group = optional(original);
            group.extend(optional(group_status));
            group.extend(reasons);
            let mut report = vec![
                Xml::element("GrpHdr", optional(id)),
                Xml::element("OrgnlGrpInfAndSts", group),
            ];
            report.extend(payments);
            Xml::Element {
                name: "Document".into(),
                attributes: vec![("xmlns".into(), escape(&xmlns))],
                children: vec![Xml::element(wrapper, report)],
            }
        })
        .boxed()
}

fn camt_shaped() -> BoxedStrategy<Xml> {
    let date = prop_oneof![leaf_of("Dt", DAYS), leaf_of("DtTm", MOMENTS)]
        .prop_map(|date| date.into_iter().collect::<Vec<_>>());
    let balance = (
        leaf_of("Cd", &["OPBD", "CLBD", "PRCD", "CLAV", "ITBD"]),
        amount_xml("Amt"),
        leaf_of("CdtDbtInd", SIDES),
        date.clone(),
    )
        .prop_map(|(code, amount, side, date)| {
            let mut children =
                vec![Xml::element("Tp", vec![Xml::element("CdOrPrtry", optional(code))]), amount];
            children.extend(optional(side));
            children.push(Xml::element("Dt", date));
            Xml::element("Bal", children)
        });
    let transaction = (
        leaf_of("EndToEndId", &["E2E-1", "NOTPROVIDED", "notprovided"]),
        leaf("AcctSvcrRef"),
        prop::option::of(amount_xml("Amt")),
        prop::option::weighted(0.5, leaf_of("CdtDbtInd", SIDES)).prop_map(Option::flatten),
    )
        .prop_map(|(end_to_end, reference, amount, side)| {
            let mut children =
                vec![Xml::element("Refs", [end_to_end, reference].into_iter().flatten().collect())];
            children.extend(amount);
            children.extend(optional(side));
            Xml::element("TxDtls", children)
        });
    let statuses = &["BOOK", "BOOK", " BOOK ", "PDNG", "INFO", "book"][..];
    let status = prop_oneof![
        leaf_of("Sts", statuses),
        leaf_of("Cd", statuses).prop_map(|code| Some(Xml::element("Sts", optional(code)))),
    ];
    let entry = (
        amount_xml("Amt"),
        leaf_of("CdtDbtInd", SIDES),
        prop::option::weighted(0.5, leaf_of("RvslInd", &["true", "false", "1", "0"]))
            .prop_map(Option::flatten),
        status,
        date,
        leaf("AcctSvcrRef"),
        prop::collection::vec(transaction, 0..3),
    )
        .prop_map(|(amount, side, reversal, status, date, reference, transactions)| {
            let mut children = vec![amount];
            children.extend(optional(side));
            children.extend(optional(reversal));
            children.extend(optional(status));
            children.push(Xml::element("BookgDt", date));
            children.extend(optional(reference));
            children.push(Xml::element("NtryDtls", transactions));
            Xml::element("Ntry", children)
        });
    let statement = (
        required("Id"),
        leaf("IBAN"),
        prop::option::weighted(0.5, leaf_of("Ccy", &["EUR", "KES"])).prop_map(Option::flatten),
        prop::collection::vec(balance, 0..3),
        prop::collection::vec(entry, 0..3),
        select(&["Stmt", "Ntfctn", "Rpt"][..]),
    )
        .prop_map(|(id, iban, currency, balances, entries, name)| {
            let mut account = vec![Xml::element("Id", optional(iban))];
            account.extend(optional(currency));
            let mut children = optional(id);
            children.push(Xml::element("Acct", account));
            children.extend(balances);
            children.extend(entries);
            Xml::element(name, children)
        });
    (message("camt"), required("MsgId"), prop::collection::vec(statement, 1..3))
        .prop_map(|((xmlns, wrapper), id, statements)| {
            let mut children = vec![Xml::element("GrpHdr", optional(id))];
            children.extend(statements);
            Xml::Element {
                name: "Document".into(),
                attributes: vec![("xmlns".into(), escape(&xmlns))],
                children: vec![Xml::element(wrapper, children)],
            }
        })
        .boxed()
}

/// Reads a document with the ISO 20022 readers and checks what they make of it; `sent` are the
/// document's `(Ccy, amount)` pairs when the test built it, to check amounts against.
fn iso_reads(xml: &str, sent: Option<&[(String, String)]>) -> Result<(), TestCaseError> {
    let was_sent = |money: &Money| -> Result<(), TestCaseError> {
        held_at_scale(money)?;
        if let Some(sent) = sent {
            let exponent = money.currency().exponent();
            let text = money.amount().to_string();
            let found = sent.iter().any(|(currency, amount)| {
                currency.trim() == money.currency().code()
                    && at_scale(amount.trim(), exponent).as_deref() == Some(text.as_str())
            });
            prop_assert!(found, "{:?} is not an amount sent: {:?}", money, sent);
        }
        Ok(())
    };
    if let Ok(report) = pain002::parse(xml) {
        let reports = report.status_reports();
        let group = report.group_status.as_deref().filter(|status| *status != "PART");
        if report.transactions.is_empty() {
            prop_assert_eq!(reports.len(), 1);
            prop_assert_eq!(reports[0].status, pain002_status(group.unwrap_or_default()));
        } else {
            prop_assert_eq!(reports.len(), report.transactions.len());
        }
        for (transaction, status) in report.transactions.iter().zip(&reports) {
            let code = transaction.status.as_deref().or(group).unwrap_or_default();
            prop_assert_eq!(status.status, pain002_status(code), "{:?}", transaction);
            prop_assert_eq!(status.amount, transaction.amount);
        }
        for status in &reports {
            // Independently of the parse: the words that decide are in the file.
            match status.status {
                Status::Succeeded => prop_assert!(xml.contains("ACSC") || xml.contains("ACCC")),
                Status::Failed => prop_assert!(xml.contains("RJCT") || xml.contains("CANC")),
                Status::Pending => {}
            }
            if let Some(money) = &status.amount {
                was_sent(money)?;
            }
        }
    }
    if let Ok(document) = camt::parse(xml) {
        for statement in &document.statements {
            for balance in &statement.balances {
                was_sent(&balance.amount)?;
            }
            let mut expected = Vec::new();
            for entry in &statement.entries {
                was_sent(&entry.amount)?;
                for transaction in &entry.transactions {
                    if let Some(money) = &transaction.amount {
                        was_sent(money)?;
                    }
                }
                if entry.status == camt::EntryStatus::Booked {
                    let status = if entry.reversal { Status::Failed } else { Status::Succeeded };
                    expected.extend(std::iter::repeat_n(status, entry.transactions.len().max(1)));
                }
            }
            let reports = statement.status_reports();
            let statuses: Vec<Status> = reports.iter().map(|report| report.status).collect();
            // Only booked entries moved money; only a booked reversal undoes it.
            prop_assert_eq!(&statuses, &expected);
            if !statuses.is_empty() {
                prop_assert!(xml.contains("BOOK"));
            }
            if statuses.contains(&Status::Failed) {
                prop_assert!(xml.contains("RvslInd"));
            }
            for report in &reports {
                report_amount(report)?;
            }
            if let camt::BalanceCheck::Discrepancy {
                computed_closing,
                stated_closing,
                difference,
            } = statement.check_balances()
            {
                prop_assert_eq!(
                    stated_closing.checked_sub(&computed_closing).ok(),
                    Some(difference)
                );
                prop_assert!(!difference.amount().is_zero());
            }
        }
    }
    Ok(())
}

/// pain.002's mapping, restated: settlement completed succeeded, rejected or cancelled failed.
fn pain002_status(code: &str) -> Status {
    match code.trim() {
        "ACSC" | "ACCC" => Status::Succeeded,
        "RJCT" | "CANC" => Status::Failed,
        _ => Status::Pending,
    }
}

// =============================================================================================
// The public samples
// =============================================================================================

fn fixtures(folder: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(folder)
}

/// Every JSON document of every sample in these folders.
fn json_samples(folders: &[&str]) -> Vec<Json> {
    let mut samples = Vec::new();
    for folder in folders {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures(folder))
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "json" || ext == "jsonc"))
            .collect();
        paths.sort();
        for path in paths {
            samples.extend(JsonReader::documents(&std::fs::read_to_string(path).unwrap()));
        }
    }
    assert!(!samples.is_empty(), "the samples are missing");
    samples
}

static MPESA_SAMPLES: LazyLock<Vec<Json>> =
    LazyLock::new(|| json_samples(&["mpesa_daraja_portal", "mpesa_daraja_ghostscypher"]));
static MOMO_SAMPLES: LazyLock<Vec<Json>> = LazyLock::new(|| json_samples(&["mtn_momo"]));
static ISO_SAMPLES: LazyLock<Vec<Xml>> = LazyLock::new(|| {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(fixtures("iso20022"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .collect();
    paths.sort();
    paths.iter().map(|path| Xml::read(&std::fs::read_to_string(path).unwrap())).collect()
});

/// How many changes a sample gets: mostly one, so that most still read, up to four.
fn changes() -> impl Strategy<Value = usize> {
    prop_oneof![4 => Just(1_usize), 2 => Just(2), 1 => 3..=4_usize]
}

/// A sample with one to four changes.
fn mutated_json(samples: &'static [Json]) -> impl Strategy<Value = Json> {
    let change = mutation(prop_oneof![3 => scalar(), 1 => json()]);
    (any::<Index>(), changes(), prop::collection::vec(change, 4)).prop_map(
        move |(index, count, changes)| {
            let mut document = samples[index.index(samples.len())].clone();
            for change in &changes[..count] {
                mutate_json(&mut document, change);
            }
            document
        },
    )
}

fn mutated_xml() -> impl Strategy<Value = Xml> {
    (any::<Index>(), changes(), prop::collection::vec(xml_mutation(), 4)).prop_map(
        |(index, count, changes)| {
            let mut document = ISO_SAMPLES[index.index(ISO_SAMPLES.len())].clone();
            for change in &changes[..count] {
                mutate_xml(&mut document, change);
            }
            document
        },
    )
}

/// Bytes that are mostly near-JSON or near-XML, so that readers get past the first character.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => prop::collection::vec(any::<u8>(), 0..256),
        1 => "[{}\\[\\]\":,0-9a-zA-Z .\\-]{0,128}".prop_map(String::into_bytes),
        1 => "[<>/=\" a-zA-Z0-9.:]{0,128}".prop_map(String::into_bytes),
    ]
}

// =============================================================================================
// The targets
// =============================================================================================

proptest! {
    #![proptest_config(config())]

    #[test]
    fn mpesa_arbitrary_bytes(body in bytes()) {
        mpesa_reads(&body)?;
    }

    #[test]
    fn mpesa_shaped_bodies(body in mpesa_shaped()) {
        mpesa_reads(body.render().as_bytes())?;
    }

    #[test]
    fn mpesa_mutated_samples(body in mutated_json(&MPESA_SAMPLES)) {
        mpesa_reads(body.render().as_bytes())?;
    }

    #[test]
    fn momo_arbitrary_bytes(body in bytes()) {
        momo_reads(&body)?;
    }

    #[test]
    fn momo_shaped_bodies(body in momo_shaped()) {
        momo_reads(body.render().as_bytes())?;
    }

    #[test]
    fn momo_mutated_samples(body in mutated_json(&MOMO_SAMPLES)) {
        momo_reads(body.render().as_bytes())?;
    }

    #[test]
    fn iso20022_arbitrary_bytes(body in bytes()) {
        iso_reads(&String::from_utf8_lossy(&body), None)?;
    }

    #[test]
    fn iso20022_shaped_files(document in prop_oneof![pain002_shaped(), camt_shaped()]) {
        let mut sent = Vec::new();
        document.amounts(&mut sent);
        iso_reads(&document.render(), Some(&sent))?;
    }

    #[test]
    fn iso20022_mutated_samples(document in mutated_xml()) {
        let mut sent = Vec::new();
        document.amounts(&mut sent);
        iso_reads(&document.render(), Some(&sent))?;
    }
}

// =============================================================================================
// Africa's Talking SMS
// =============================================================================================

/// Whatever an Africa's Talking form or answer holds: no panic; a price is exactly the text
/// sent; a delivery report is final only in the provider's own final words; a USSD step's
/// inputs join back into its text, and a reply read from a body writes that body.
fn africastalking_reads(body: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(report) = DeliveryReport::from_form(body)
        && !matches!(report.status.as_str(), "Success" | "Rejected" | "Failed")
    {
        prop_assert_eq!(report.delivery_status(), DeliveryStatus::Sent);
    }
    let _ = InboundSms::from_form(body);
    if let Ok(step) = UssdStep::from_form(body) {
        prop_assert_eq!(step.inputs().join("*"), step.text.clone());
    }
    // A reply read from a body writes that body back.
    if let Some(reply) = std::str::from_utf8(body).ok().and_then(UssdReply::parse) {
        let written = reply.body();
        prop_assert_eq!(written.as_bytes(), body);
    }
    if let Ok(answer) = serde_json::from_slice::<SendSmsResponse>(body) {
        for recipient in &answer.data.recipients {
            if let SendOutcome::Accepted { cost: Some(price), .. } = recipient.outcome() {
                price_is_exact(&recipient.cost, price)?;
            }
        }
    }
    Ok(())
}

/// A price read from `text` is its amount exactly, in its currency.
fn price_is_exact(text: &str, price: Price) -> Result<(), TestCaseError> {
    let (code, amount) = text.trim().split_once(' ').expect("a price has a space");
    prop_assert_eq!(price.currency.code(), code);
    prop_assert_eq!(Some(price.amount), rust_decimal::Decimal::from_str_exact(amount.trim()).ok());
    Ok(())
}

/// Forms and answers shaped like Africa's Talking's, with arbitrary values.
fn africastalking_shaped() -> impl Strategy<Value = Vec<u8>> {
    let word = "(Sent|Submitted|Buffered|Success|Rejected|Failed|[A-Za-z]{0,10})";
    let reason =
        "(|&failureReason=(UserInBlackList|InsufficientCredit|DeliveryFailure|[A-Za-z%]{0,12}))";
    let report = proptest::string::string_regex(&format!(
        "id=[A-Za-z0-9_%]{{0,12}}&status={word}&phoneNumber=[%+0-9]{{0,16}}{reason}"
    ))
    .expect("a valid pattern");
    let inbound = "from=[%+0-9]{0,16}&to=[0-9]{0,6}&text=[a-zA-Z%+]{0,20}&date=[0-9T:Z-]{0,20}&id=[0-9a-z]{0,8}";
    let cost = "(KES|UGX|USD|XYZ|[A-Z]{0,4}) -?[0-9]{0,8}(\\.[0-9]{0,6})?";
    let answer = (0u16..600, cost).prop_map(|(code, cost)| {
        format!(
            r#"{{"SMSMessageData":{{"Message":"m","Recipients":[{{"statusCode":{code},"number":"+254711000001","status":"s","cost":"{cost}","messageId":"ATXid_1"}}]}}}}"#
        )
    });
    let ussd = "sessionId=[A-Za-z0-9_]{0,8}&serviceCode=[%*#0-9A-F]{0,12}&phoneNumber=[%+0-9]{0,16}&text=[0-9*%A-F]{0,20}";
    let reply = "(CON |END |CON|END|)[a-zA-Z0-9 .\\n]{0,20}";
    prop_oneof![
        report.prop_map(String::into_bytes),
        inbound.prop_map(String::into_bytes),
        ussd.prop_map(String::into_bytes),
        reply.prop_map(String::into_bytes),
        answer.prop_map(String::into_bytes),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn africastalking_arbitrary_bytes(body in bytes()) {
        africastalking_reads(&body)?;
    }

    #[test]
    fn africastalking_shaped_bodies(body in africastalking_shaped()) {
        africastalking_reads(&body)?;
    }
}

// =============================================================================================
// The harness itself
// =============================================================================================

#[test]
fn samples_survive_the_round_trip_unchanged() {
    // The readers above see a sample exactly as the fixture test does, so a mutation is the
    // only difference between a mutated sample and the real one.
    for sample in MPESA_SAMPLES.iter().chain(MOMO_SAMPLES.iter()) {
        let text = sample.render();
        let ours = JsonReader::documents(&text);
        assert_eq!(ours, vec![sample.clone()]);
        let theirs: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(theirs, serde_json::from_str::<serde_json::Value>(&ours[0].render()).unwrap());
    }
    for sample in ISO_SAMPLES.iter() {
        assert_eq!(&Xml::read(&sample.render()), sample);
    }
    // And the unmutated samples pass every check.
    for sample in MPESA_SAMPLES.iter() {
        mpesa_reads(sample.render().as_bytes()).unwrap();
    }
    for sample in MOMO_SAMPLES.iter() {
        momo_reads(sample.render().as_bytes()).unwrap();
    }
    let mut read = 0;
    for sample in ISO_SAMPLES.iter() {
        let mut sent = Vec::new();
        sample.amounts(&mut sent);
        let xml = sample.render();
        iso_reads(&xml, Some(&sent)).unwrap();
        read += usize::from(pain002::parse(&xml).is_ok() || camt::parse(&xml).is_ok());
    }
    assert_eq!(read, ISO_SAMPLES.len() - 1, "every pain.002 and camt sample reads");
}

#[test]
fn the_oracles_catch_what_they_are_for() {
    assert_eq!(at_scale("5.5", 2).as_deref(), Some("5.50"));
    assert_eq!(at_scale("-0.00", 2).as_deref(), Some("0.00"));
    assert_eq!(at_scale("+007", 0).as_deref(), Some("7"));
    assert_eq!(at_scale("1.005", 2), None);
    assert_eq!(at_scale("1e3", 2), None);
    assert_eq!(at_scale(".", 2), None);
    let kes = Currency::from_code("KES").unwrap();
    let money = Money::parse(kes, "5.50").unwrap();
    assert!(exact(&money, "KES", "5.5").is_ok());
    assert!(exact(&money, "KES", "5.49").is_err(), "another amount");
    assert!(exact(&money, "UGX", "5.5").is_err(), "another currency");
    let failed = r#"{"Body":{"stkCallback":{"MerchantRequestID":"m","CheckoutRequestID":"c",
        "ResultCode":1032,"ResultDesc":"Cancelled"}}}"#;
    let envelope: StkCallbackEnvelope = serde_json::from_str(failed).unwrap();
    assert_eq!(envelope.body.stk_callback.to_report().unwrap().status, Status::Failed);
    assert!(mpesa_reads(failed.as_bytes()).is_ok());
}

#[test]
fn an_amount_with_more_decimals_than_a_decimal_holds_is_refused_not_rounded() {
    // Found by these targets: past 28 decimal places the readers rounded, so a callback saying
    // 1.000…0009 (finer than KES allows) was read as a payment of exactly 1.00.
    let fine = "1.000000000000000000000000000009";
    let stk = format!(
        r#"{{"Body":{{"stkCallback":{{"MerchantRequestID":"m","CheckoutRequestID":"c",
        "ResultCode":0,"CallbackMetadata":{{"Item":[{{"Name":"Amount","Value":{fine}}}]}}}}}}}}"#
    );
    let envelope: StkCallbackEnvelope = serde_json::from_str(&stk).unwrap();
    assert!(envelope.body.stk_callback.to_report().is_err());
    let c2b = format!(r#"{{"TransID":"T","TransAmount":"{fine}","BusinessShortCode":"600000"}}"#);
    assert!(serde_json::from_str::<C2bPayment>(&c2b).unwrap().to_received().is_err());
    let momo =
        format!(r#"{{"amount":"{fine}","currency":"EUR","externalId":"e","status":"SUCCESSFUL"}}"#);
    assert!(momo::parse_callback(momo.as_bytes()).is_err());
    for body in [stk, c2b, momo] {
        mpesa_reads(body.as_bytes()).unwrap();
        momo_reads(body.as_bytes()).unwrap();
    }
}

const ALL_STATUSES: &[&str] = &["pending", "succeeded", "failed"];

/// What a reader made of one input, for measuring the generators.
#[derive(Default)]
struct Reach {
    read: usize,
    amounts: usize,
    statuses: std::collections::BTreeSet<&'static str>,
}

impl Reach {
    fn report(&mut self, report: &StatusReport) {
        self.amounts += usize::from(report.amount.is_some());
        self.statuses.insert(match report.status {
            Status::Pending => "pending",
            Status::Succeeded => "succeeded",
            Status::Failed => "failed",
        });
    }

    /// At least `percent` of `count` inputs read, some with an amount, each status seen.
    fn check(&self, what: &str, count: usize, percent: usize, statuses: &[&str]) {
        eprintln!(
            "{what}: {} of {count} read, {} amounts, {:?}",
            self.read, self.amounts, self.statuses
        );
        assert!(self.read * 100 >= count * percent, "{what}: {} of {count} read", self.read);
        assert!(self.amounts > 0, "{what}: no amount read");
        assert!(statuses.iter().all(|s| self.statuses.contains(s)), "{what}: {:?}", self.statuses);
    }
}

#[test]
fn the_generators_reach_past_the_envelope() {
    // A target whose inputs never get past the first field proves nothing about the
    // transformers: most shaped and mutated inputs must read, with amounts and every status.
    use proptest::strategy::ValueTree as _;
    use proptest::test_runner::TestRunner;
    fn sample<T>(strategy: impl Strategy<Value = T>, count: usize) -> Vec<T> {
        let mut runner = TestRunner::deterministic();
        (0..count).map(|_| strategy.new_tree(&mut runner).unwrap().current()).collect()
    }
    let count = 300;
    let mpesa = [
        ("M-Pesa shaped", mpesa_shaped().boxed(), 12),
        ("M-Pesa mutated", mutated_json(&MPESA_SAMPLES).boxed(), 3),
    ];
    for (what, strategy, percent) in mpesa {
        let mut reach = Reach::default();
        for body in sample(strategy, count) {
            let report = match mpesa::callback(&body.render()) {
                Ok(Callback::Stk(callback)) => callback.to_report().ok(),
                Ok(Callback::Result(result)) => result.to_b2c_report().ok(),
                Ok(Callback::C2b(payment)) => payment.to_received().ok().map(|r| r.report),
                Err(_) => None,
            };
            if let Some(report) = report {
                reach.read += 1;
                reach.report(&report);
            }
        }
        reach.check(what, count, percent, ALL_STATUSES);
    }
    let momo = [
        ("MoMo shaped", momo_shaped().boxed(), 10),
        ("MoMo mutated", mutated_json(&MOMO_SAMPLES).boxed(), 8),
    ];
    for (what, strategy, percent) in momo {
        let mut reach = Reach::default();
        for body in sample(strategy, count) {
            if let Ok(report) = momo::parse_callback(body.render().as_bytes()) {
                reach.read += 1;
                reach.report(&report);
            }
        }
        reach.check(what, count, percent, ALL_STATUSES);
    }
    let iso = [
        ("pain.002 shaped", pain002_shaped().boxed(), 30),
        ("camt shaped", camt_shaped().boxed(), 7),
        ("ISO 20022 mutated", mutated_xml().boxed(), 25),
    ];
    for (what, strategy, percent) in iso {
        let mut reach = Reach::default();
        for document in sample(strategy, count) {
            let xml = document.render();
            let mut reports = Vec::new();
            if let Ok(report) = pain002::parse(&xml) {
                reports.extend(report.status_reports());
            } else if let Ok(document) = camt::parse(&xml) {
                reports
                    .extend(document.statements.iter().flat_map(camt::Statement::status_reports));
            } else {
                continue;
            }
            reach.read += 1;
            for report in &reports {
                reach.report(report);
            }
        }
        // A camt reports only booked entries, which are never pending.
        let statuses: &[&str] =
            if what == "camt shaped" { &["succeeded", "failed"] } else { ALL_STATUSES };
        reach.check(what, count, percent, statuses);
    }
}

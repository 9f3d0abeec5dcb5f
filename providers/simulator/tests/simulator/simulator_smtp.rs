//! The SMTP simulator over a real loopback socket, driven by the providers' lettre sender, and
//! its `SendGrid` Inbound Parse posts read by the providers' reader.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use hazina_providers::Secret;
use hazina_providers::email::{SmtpConfig, SmtpSender, read_inbound_parse};
use hazina_providers::messaging::{DeliveryStatus, Email, InboundPart, SendResult};
use hazina_simulator::smtp::{InboundMail, RecipientScript, SmtpSimulator, post_inbound};
use tokio::sync::mpsc;

use super::common::{DEADLINE, serve};

const US: &str = "Hazina <statements@hazina.example>";

fn sender(sim: &SmtpSimulator) -> SmtpSender {
    let mut config = SmtpConfig::plain("127.0.0.1", sim.address().port());
    config.timeout = Duration::from_secs(5);
    SmtpSender::new(&config).unwrap()
}

fn email(subject: &str) -> Email {
    Email {
        subject: subject.to_owned(),
        plain: "Dear customer,\r\n.\r\n..two dots\r\nYour statement is attached.".to_owned(),
        html: Some("<p>Dear customer,</p>".to_owned()),
        cc: vec!["accounts@customer.example".to_owned()],
        bcc: vec!["audit@hazina.example".to_owned()],
    }
}

fn refused(result: &SendResult) -> Option<DeliveryStatus> {
    match result {
        SendResult::Refused { status, .. } => Some(*status),
        _ => None,
    }
}

#[tokio::test]
async fn a_mail_sent_through_lettre_is_recorded_whole() {
    let sim = SmtpSimulator::start(None).await.unwrap();
    let result =
        sender(&sim).send(US, "jane@customer.example", &email("Your statement"), None).await;
    let SendResult::Accepted {
        provider_message_id: Some(id), status: DeliveryStatus::Sent, ..
    } = &result
    else {
        panic!("not sent: {result:?}")
    };
    let mails = sim.wait_for(1, DEADLINE).await;
    assert_eq!(mails.len(), 1);
    let mail = &mails[0];
    assert_eq!(mail.mail_from, "statements@hazina.example");
    assert_eq!(
        mail.rcpt_to,
        ["jane@customer.example", "accounts@customer.example", "audit@hazina.example"]
    );
    assert_eq!(mail.subject.as_deref(), Some("Your statement"));
    assert_eq!(mail.from, ["statements@hazina.example"]);
    assert_eq!(mail.to, ["jane@customer.example"]);
    assert_eq!(mail.cc, ["accounts@customer.example"]);
    assert!(mail.bcc_header.is_empty());
    assert_eq!(mail.message_id.as_deref(), Some(id.as_str()));
    assert!(id.ends_with("@hazina.example"), "{id}");
    // Dot-stuffing undone: a lone dot and a leading dot survive the trip.
    assert_eq!(
        mail.text.as_deref().map(|text| text.replace("\r\n", "\n")),
        Some("Dear customer,\n.\n..two dots\nYour statement is attached.".to_owned())
    );
    assert_eq!(mail.html.as_deref(), Some("<p>Dear customer,</p>"));
}

#[tokio::test]
async fn refusals_map_to_delivery_statuses_over_the_socket() {
    let sim = SmtpSimulator::start(None).await.unwrap();
    sim.script("gone@customer.example", RecipientScript::Unknown);
    sim.script("busy@customer.example", RecipientScript::Temporary);
    sim.script("drop@customer.example", RecipientScript::Drop);
    sim.script("spam@customer.example", RecipientScript::RejectMessage);
    let sender = sender(&sim);
    let mut plain = email("Hi");
    plain.cc.clear();
    plain.bcc.clear();
    let gone = sender.send(US, "gone@customer.example", &plain, None).await;
    assert_eq!(refused(&gone), Some(DeliveryStatus::CustomerNumberNotFound), "{gone:?}");
    let busy = sender.send(US, "busy@customer.example", &plain, None).await;
    assert!(matches!(busy, SendResult::Retry { .. }), "{busy:?}");
    let dropped = sender.send(US, "drop@customer.example", &plain, None).await;
    assert!(matches!(dropped, SendResult::Retry { .. }), "{dropped:?}");
    let spam = sender.send(US, "spam@customer.example", &plain, None).await;
    assert_eq!(refused(&spam), Some(DeliveryStatus::Rejected), "{spam:?}");
    // The connection pool recovers: the next mail goes through.
    let fine = sender.send(US, "fine@customer.example", &plain, None).await;
    assert!(matches!(fine, SendResult::Accepted { .. }), "{fine:?}");
    assert_eq!(sim.wait_for(1, DEADLINE).await.len(), 1);
    let invalid = sender.send(US, "not an address", &plain, None).await;
    assert_eq!(refused(&invalid), Some(DeliveryStatus::InvalidRequest));
}

#[tokio::test]
async fn auth_plain_is_checked() {
    let sim = SmtpSimulator::start(Some(("hazina", "s3cret"))).await.unwrap();
    assert!(sim.requires_auth());
    let config = |password: &str| {
        let mut config = SmtpConfig::plain("127.0.0.1", sim.address().port());
        config.username = Some("hazina".to_owned());
        config.password = Some(Secret::new(password));
        config.timeout = Duration::from_secs(5);
        config
    };
    let good = SmtpSender::new(&config("s3cret")).unwrap();
    let sent = good.send(US, "jane@customer.example", &email("Hi"), None).await;
    assert!(matches!(sent, SendResult::Accepted { .. }), "{sent:?}");
    let bad = SmtpSender::new(&config("wrong")).unwrap();
    let refused_login = bad.send(US, "jane@customer.example", &email("Hi"), None).await;
    assert_eq!(
        refused(&refused_login),
        Some(DeliveryStatus::ApplicationError),
        "{refused_login:?}"
    );
    let anonymous = sender(&sim).send(US, "jane@customer.example", &email("Hi"), None).await;
    assert_eq!(refused(&anonymous), Some(DeliveryStatus::ApplicationError), "{anonymous:?}");
    assert_eq!(sim.mails().len(), 1);
}

#[tokio::test]
async fn a_customer_reply_posted_as_inbound_parse_threads_to_our_mail() {
    let sim = SmtpSimulator::start(None).await.unwrap();
    let result = sender(&sim).send(US, "jane@customer.example", &email("Statement"), None).await;
    let SendResult::Accepted { provider_message_id: Some(ours), .. } = result else {
        panic!("not sent: {result:?}")
    };
    let (inbounds, mut received) = mpsc::unbounded_channel();
    let router = axum::Router::new().route(
        "/email/inbound/secret-path-token",
        post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let inbounds = inbounds.clone();
            async move {
                let content_type = headers
                    .get(header::CONTENT_TYPE)
                    .and_then(|value| value.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                match read_inbound_parse(&content_type, &body) {
                    Ok(inbound) => {
                        let _ = inbounds.send(inbound);
                        StatusCode::OK
                    }
                    Err(_) => StatusCode::BAD_REQUEST,
                }
            }
        }),
    );
    let base = serve(router).await;
    let mail = InboundMail {
        from: "jane@customer.example".into(),
        to: "statements@hazina.example".into(),
        cc: vec!["john@customer.example".into()],
        subject: "Re: Statement".into(),
        text: "Thanks!".into(),
        html: Some("<p>Thanks!</p>".into()),
        message_id: Some("reply-1@customer.example".into()),
        in_reply_to: Some(ours.clone()),
    };
    let (status, _) =
        post_inbound(&format!("{base}/email/inbound/secret-path-token"), &mail).await.unwrap();
    assert_eq!(status, 200);
    let inbound = tokio::time::timeout(DEADLINE, received.recv()).await.unwrap().unwrap();
    assert_eq!(inbound.customer, "jane@customer.example");
    assert_eq!(inbound.channel_number, "statements@hazina.example");
    assert_eq!(inbound.provider_message_id.as_deref(), Some("reply-1@customer.example"));
    assert_eq!(inbound.in_reply_to.as_deref(), Some(ours.as_str()));
    let [InboundPart::Email(email)] = inbound.parts.as_slice() else {
        panic!("{:?}", inbound.parts)
    };
    assert_eq!(email.subject, "Re: Statement");
    assert_eq!(email.plain, "Thanks!");
    assert_eq!(email.html.as_deref(), Some("<p>Thanks!</p>"));
    assert_eq!(email.cc, ["john@customer.example"]);
}

#[tokio::test]
async fn five_hundred_mails_over_pooled_connections_are_all_recorded() {
    let sim = SmtpSimulator::start(None).await.unwrap();
    let sender = sender(&sim);
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..10 {
        let sender = sender.clone();
        tasks.spawn(async move {
            let mut accepted = 0;
            for index in 0..50 {
                let mut mail = email(&format!("Bulk {worker}-{index}"));
                mail.cc.clear();
                mail.bcc.clear();
                let result = sender.send(US, "bulk@customer.example", &mail, None).await;
                accepted += usize::from(matches!(result, SendResult::Accepted { .. }));
            }
            accepted
        });
    }
    let mut accepted = 0;
    while let Some(count) = tasks.join_next().await {
        accepted += count.unwrap();
    }
    assert_eq!(accepted, 500);
    let mails = sim.wait_for(500, DEADLINE).await;
    assert_eq!(mails.len(), 500);
    let mut ids: Vec<_> = mails.iter().filter_map(|mail| mail.message_id.clone()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 500, "Message-IDs repeat");
}

//! `SendGrid` Inbound Parse bodies read as inbound email: the multipart/form-data fields of
//! twilio.com/docs/sendgrid/for-developers/parsing-email/inbound-email (with its `charsets`
//! example: the text body in latin1), under the boundary `xYzZY` that `SendGrid`'s posts carry.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use hazina_providers::email::{parse_form, read_inbound_parse, read_inbound_parse_form};
use hazina_providers::messaging::{Channel, Email, InboundPart};

const CONTENT_TYPE: &str = "multipart/form-data; boundary=xYzZY";

fn part(name: &str, value: &[u8]) -> Vec<u8> {
    let mut out =
        format!("--xYzZY\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").into_bytes();
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    out
}

fn form(parts: &[(&str, &[u8])], attachment: Option<(&str, &[u8])>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in parts {
        body.extend(part(name, value));
    }
    if let Some((file_name, bytes)) = attachment {
        body.extend_from_slice(
            format!(
                "--xYzZY\r\nContent-Disposition: form-data; name=\"attachment1\"; filename=\"{file_name}\"\r\nContent-Type: application/pdf\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"--xYzZY--\r\n");
    body
}

const HEADERS: &[u8] = b"Received: by mx0047p1mdw1.sendgrid.net with SMTP id 6WCVv7KAWn Wed, 27 Jul 2016 20:53:06 +0000 (UTC)\nDate: Wed, 27 Jul 2016 13:53:03 -0700\nFrom: Jane Customer <jane@customer.example>\nTo: support@hazina.example\nMessage-ID: <CAN8y_Fm7a1@mail.customer.example>\nIn-Reply-To: <01907f6e9a2b7c3d@hazina.example>\nReferences: <01907f6e9a2b7c3d@hazina.example>\nSubject: Re: Your statement\nMime-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"001a113df448cad2d00538a4a6f6\"\n";

fn sample(text: &[u8], charsets: &[u8]) -> Vec<u8> {
    form(
        &[
            ("headers", HEADERS),
            ("dkim", b"{@customer.example : pass}"),
            ("content-ids", b"{}"),
            ("to", b"support@hazina.example"),
            ("html", b"<p>Thanks, I got it.</p>"),
            ("from", b"Jane Customer <jane@customer.example>"),
            ("cc", b"\"Doe, John\" <john@customer.example>, accounts@customer.example"),
            ("text", text),
            ("sender_ip", b"209.85.223.178"),
            ("envelope", br#"{"to":["support@hazina.example"],"from":"jane@customer.example"}"#),
            ("attachments", b"1"),
            ("subject", b"Re: Your statement"),
            (
                "attachment-info",
                br#"{"attachment1":{"filename":"receipt.pdf","type":"application/pdf"}}"#,
            ),
            ("charsets", charsets),
            ("SPF", b"pass"),
        ],
        Some(("receipt.pdf", b"%PDF-1.4\r\n--xYz not a boundary\r\n\x00\xff")),
    )
}

#[test]
fn an_inbound_parse_post_is_an_inbound_email_threaded_to_ours() {
    let body = sample(
        b"Thanks, I got it.\r\n\r\n> Your statement",
        br#"{"to":"UTF-8","html":"UTF-8","subject":"UTF-8","from":"UTF-8","text":"UTF-8"}"#,
    );
    let inbound = read_inbound_parse(CONTENT_TYPE, &body).unwrap();
    assert_eq!(inbound.channel, Channel::Email);
    assert_eq!(inbound.customer, "jane@customer.example");
    assert_eq!(inbound.channel_number, "support@hazina.example");
    assert_eq!(inbound.provider_message_id.as_deref(), Some("CAN8y_Fm7a1@mail.customer.example"));
    assert_eq!(inbound.in_reply_to.as_deref(), Some("01907f6e9a2b7c3d@hazina.example"));
    assert_eq!(inbound.received_at.unwrap().to_rfc3339(), "2016-07-27T20:53:03+00:00");
    assert_eq!(
        inbound.parts,
        [InboundPart::Email(Email {
            subject: "Re: Your statement".into(),
            plain: "Thanks, I got it.\r\n\r\n> Your statement".into(),
            html: Some("<p>Thanks, I got it.</p>".into()),
            cc: vec!["john@customer.example".into(), "accounts@customer.example".into()],
            bcc: vec![],
        })]
    );
}

#[test]
fn a_field_in_latin1_is_decoded_as_charsets_says() {
    let body = sample(
        b"Merci, re\xe7u.",
        br#"{"to":"UTF-8","cc":"UTF-8","subject":"UTF-8","from":"UTF-8","text":"iso-8859-1"}"#,
    );
    let parse = read_inbound_parse_form(CONTENT_TYPE, &body).unwrap();
    assert_eq!(parse.text.as_deref(), Some("Merci, reçu."));
    assert_eq!(parse.attachments, ["receipt.pdf"]);
    assert_eq!(parse.spam_score, None);
    assert_eq!(parse.sender_ip.as_deref(), Some("209.85.223.178"));
}

#[test]
fn attachment_bytes_are_kept_as_sent() {
    let body = sample(b"x", b"{}");
    let fields = parse_form(CONTENT_TYPE, &body).unwrap();
    let attachment = fields.iter().find(|field| field.name == "attachment1").unwrap();
    assert_eq!(attachment.file_name.as_deref(), Some("receipt.pdf"));
    assert_eq!(attachment.content_type.as_deref(), Some("application/pdf"));
    assert_eq!(attachment.value, b"%PDF-1.4\r\n--xYz not a boundary\r\n\x00\xff");
    let names: Vec<&str> = fields.iter().map(|field| field.name.as_str()).collect();
    assert_eq!(names.len(), 16, "{names:?}");
}

#[test]
fn without_the_envelope_the_header_fields_name_the_parties() {
    let body = form(
        &[
            ("from", b"\"Jane\" <jane@customer.example>"),
            ("to", b"Support <support@hazina.example>"),
            ("subject", b"Hi"),
            ("text", b"Hello"),
        ],
        None,
    );
    let inbound = read_inbound_parse(CONTENT_TYPE, &body).unwrap();
    assert_eq!(inbound.customer, "jane@customer.example");
    assert_eq!(inbound.channel_number, "support@hazina.example");
    assert_eq!(inbound.provider_message_id, None);
}

#[test]
fn what_is_not_a_form_with_parties_is_refused() {
    assert!(read_inbound_parse("application/json", b"{}").is_err());
    assert!(read_inbound_parse("multipart/form-data", b"").is_err());
    assert!(read_inbound_parse("multipart/form-data; boundary=a\r\nX: y", b"").is_err());
    let no_sender = form(&[("to", b"support@hazina.example"), ("text", b"x")], None);
    assert!(read_inbound_parse(CONTENT_TYPE, &no_sender).is_err());
}

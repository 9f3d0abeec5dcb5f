//! Email channels over TLS to a relay whose certificate a private CA signs: the channel names
//! that CA (`rootCertificate`), and mail goes out over STARTTLS to a relay that refuses it in
//! the clear. A root that is not one is refused when the channel is made.

use std::time::Duration;

use base64::Engine as _;
use hazina_simulator::smtp::{SmtpOptions, SmtpSimulator, SmtpTls};
use reqwest::StatusCode;
use serde_json::json;

use super::start;

#[tokio::test]
async fn mail_goes_out_over_starttls_to_a_relay_the_channel_s_own_root_signs() {
    let env = start().await;
    let options =
        SmtpOptions { tls: SmtpTls::StartTls { required: true }, ..SmtpOptions::default() };
    let relay = SmtpSimulator::start_with(options).await.unwrap();
    let root =
        base64::engine::general_purpose::STANDARD.encode(relay.root_certificate_der().unwrap());
    let new = |root: &str| {
        json!({
            "channel": "email", "provider": "smtp", "channelNumber": "orders@shop.example",
            "baseUrl": format!("smtp+starttls://localhost:{}", relay.address().port()),
            "credentials": {"rootCertificate": root},
            "unitPrice": {"currencyCode": "KES", "amount": "0"},
        })
    };
    // Not a certificate: refused, nothing made.
    for bad in ["not base64!", "aGVsbG8="] {
        let (status, body) =
            env.server.post(&env.server.org_key, "/v1/messaging-channels", &new(bad)).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNPROCESSABLE_ENTITY, Some("invalid_credential")),
            "{body}"
        );
    }
    let (status, channel) =
        env.server.post(&env.server.org_key, "/v1/messaging-channels", &new(&root)).await;
    assert_eq!(status, StatusCode::CREATED, "{channel}");
    let mail = json!({"kind": "email", "subject": "Receipt", "plain": "Paid: KES 1,250."});
    let (status, sent) = env
        .send(&json!({"channelId": channel["id"], "customerNumber": "buyer@example.com", "body": mail}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sent}");
    let mails = relay.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].tls, "the mail came in the clear");
    assert_eq!(mails[0].subject.as_deref(), Some("Receipt"));
}

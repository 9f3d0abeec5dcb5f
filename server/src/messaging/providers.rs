//! The providers behind the channels, as the worker uses them: one send of a batch of messages
//! with the same body, answered per message. Africa's Talking takes a batch in one request;
//! the others take one message per request, sent a few at a time. Nothing leaves for an
//! address the operator does not allow (any more): the channel's messages wait for it, as for
//! an outage.

use futures_util::StreamExt as _;
use hazina_providers::africastalking::client::{
    Client as AtClient, Config as AtConfig, send_results,
};
use hazina_providers::africastalking::sms::sms_text;
use hazina_providers::africastalking::voice::CallEntry;
use hazina_providers::http::HttpClient;
use hazina_providers::messaging::{Body, Channel, DeliveryStatus, SendResult};
use hazina_providers::{Secret, email, messenger, meta, telegram, whatsapp};

use super::channels::{ChannelRecord, ProviderKind};
use crate::payments::ProviderHosts;

/// Requests in flight at once for a provider that takes one message per request.
const SINGLE_SENDS_IN_FLIGHT: usize = 32;

/// A message as the worker sends it.
#[derive(Clone, Debug)]
pub struct Outgoing {
    /// The customer's address on the channel.
    pub number: String,
    /// The provider's id of the message this one answers, where it has one.
    pub reply_to: Option<String>,
    /// The Messenger message tag it goes with (`MESSAGE_TAG`), if any.
    pub provider_tag: Option<String>,
}

/// Sends `body` to every one of `outgoing` on `channel`; one result per message, in order.
/// A channel whose address `hosts` does not allow sends nothing: every message is to be tried
/// again (the operator may allow the address again), as after an outage, and stays unpaid.
pub async fn send_batch(
    http: HttpClient,
    hosts: &ProviderHosts,
    channel: &ChannelRecord,
    body: &Body,
    outgoing: &[Outgoing],
) -> Vec<SendResult> {
    // Checked when the channel was made, and again here: the operator's settings may have
    // changed since, and a channel's credentials go only where they allow.
    if let Some(known) = channel.provider.known_hosts()
        && let Err(why) = hosts.check_known(known, &channel.base_url)
    {
        tracing::warn!(
            channel = %channel.id,
            "not sending to an address the operator does not allow"
        );
        let reason = format!("the operator does not allow the channel's address: {why}");
        return vec![SendResult::Retry { reason }; outgoing.len()];
    }
    let sent = match (channel.provider, channel.channel) {
        (ProviderKind::AfricasTalking, Channel::Sms) => sms(http, channel, body, outgoing).await,
        (ProviderKind::AfricasTalking, Channel::Voice) => calls(http, channel, outgoing).await,
        (ProviderKind::Meta, Channel::WhatsApp) => {
            whatsapp_sends(http, channel, body, outgoing).await
        }
        (ProviderKind::Meta, Channel::Messenger) => {
            messenger_sends(http, channel, body, outgoing).await
        }
        (ProviderKind::Telegram, Channel::Telegram) => {
            telegram_sends(http, channel, body, outgoing).await
        }
        (ProviderKind::Smtp, Channel::Email) => emails(http, channel, body, outgoing).await,
        _ => Err(SendResult::Refused {
            status: DeliveryStatus::NotSupported,
            reason: format!(
                "{} does not send on {}",
                channel.provider.as_str(),
                channel.channel.as_str()
            ),
        }),
    };
    // A result for the whole batch (a missing credential, a body the channel cannot carry)
    // is every message's.
    sent.unwrap_or_else(|result| vec![result; outgoing.len()])
}

/// A credential the channel must have, or the refusal of every message for its lack.
fn credential(channel: &ChannelRecord, name: &str) -> Result<Secret, SendResult> {
    channel.credential(name).ok_or_else(|| SendResult::Refused {
        status: DeliveryStatus::ApplicationError,
        reason: format!("the channel lacks its {name} credential"),
    })
}

/// The Africa's Talking client of a channel.
fn africastalking(http: HttpClient, channel: &ChannelRecord) -> Result<AtClient, SendResult> {
    let username = credential(channel, "username")?;
    let key = credential(channel, "apiKey")?;
    Ok(AtClient::new(AtConfig::at(&channel.base_url, username.expose(), key), http))
}

/// SMS: one bulk request for the batch.
async fn sms(
    http: HttpClient,
    channel: &ChannelRecord,
    body: &Body,
    outgoing: &[Outgoing],
) -> Result<Vec<SendResult>, SendResult> {
    let text = sms_text(body).ok_or_else(|| unsupported(body))?;
    let client = africastalking(http, channel)?;
    let numbers: Vec<&str> = outgoing.iter().map(|o| o.number.as_str()).collect();
    let outcome = client.send_sms(&numbers, text, Some(&channel.number)).await;
    Ok(send_results(&numbers, &outcome).into_iter().map(|(_, result)| result).collect())
}

/// Outbound calls: one request per customer; the call's steps then come to the voice URL.
async fn calls(
    http: HttpClient,
    channel: &ChannelRecord,
    outgoing: &[Outgoing],
) -> Result<Vec<SendResult>, SendResult> {
    let client = africastalking(http, channel)?;
    let sends = outgoing.iter().map(|message| {
        let client = &client;
        async move {
            match client.make_call(&channel.number, &[message.number.as_str()], None).await {
                Ok(answer) => answer.entries.first().map_or_else(
                    || SendResult::Refused {
                        status: DeliveryStatus::Failed,
                        reason: answer.error_message.clone().unwrap_or_default(),
                    },
                    CallEntry::send_result,
                ),
                Err(error) => error.send_result(),
            }
        }
    });
    Ok(one_by_one(sends.collect::<Vec<_>>()).await)
}

async fn whatsapp_sends(
    http: HttpClient,
    channel: &ChannelRecord,
    body: &Body,
    outgoing: &[Outgoing],
) -> Result<Vec<SendResult>, SendResult> {
    let token = credential(channel, "accessToken")?;
    let phone_number_id = credential(channel, "phoneNumberId")?;
    let client = meta::Client::new(graph(channel), http);
    let sends = outgoing.iter().map(|message| {
        let (client, token, phone_number_id) = (&client, &token, &phone_number_id);
        async move {
            match whatsapp::build_send(&message.number, body, message.reply_to.as_deref()) {
                Ok(request) => {
                    client.send_whatsapp(token, phone_number_id.expose(), &request).await
                }
                Err(error) => refused_build(&error),
            }
        }
    });
    Ok(one_by_one(sends.collect::<Vec<_>>()).await)
}

async fn messenger_sends(
    http: HttpClient,
    channel: &ChannelRecord,
    body: &Body,
    outgoing: &[Outgoing],
) -> Result<Vec<SendResult>, SendResult> {
    let token = credential(channel, "accessToken")?;
    let client = meta::Client::new(graph(channel), http);
    let sends = outgoing.iter().map(|message| {
        let (client, token) = (&client, &token);
        async move {
            // A tagged message may go outside the customer's window; any other goes inside
            // it (the service checked), as a response.
            let kind = message
                .provider_tag
                .clone()
                .map_or(messenger::MessagingType::Response, messenger::MessagingType::MessageTag);
            match messenger::build_send(&message.number, body, &kind) {
                Ok(request) => client.send_messenger(token, &channel.number, &request).await,
                Err(error) => refused_build(&error),
            }
        }
    });
    Ok(one_by_one(sends.collect::<Vec<_>>()).await)
}

async fn telegram_sends(
    http: HttpClient,
    channel: &ChannelRecord,
    body: &Body,
    outgoing: &[Outgoing],
) -> Result<Vec<SendResult>, SendResult> {
    let token = credential(channel, "botToken")?;
    let client =
        telegram::Client::new(telegram::Config { base_url: channel.base_url.clone(), token }, http);
    let sends = outgoing.iter().map(|message| {
        let client = &client;
        async move {
            let options =
                telegram::SendOptions { parse_mode: None, reply_to: message.reply_to.clone() };
            client.send(&message.number, body, &options).await.result
        }
    });
    Ok(one_by_one(sends.collect::<Vec<_>>()).await)
}

async fn emails(
    http: HttpClient,
    channel: &ChannelRecord,
    body: &Body,
    outgoing: &[Outgoing],
) -> Result<Vec<SendResult>, SendResult> {
    let Body::Email(mail) = body else { return Err(unsupported(body)) };
    let unusable =
        |reason: String| SendResult::Refused { status: DeliveryStatus::ApplicationError, reason };
    let config = smtp_config(channel, http).map_err(unusable)?;
    let sender = email::SmtpSender::new(&config)
        .map_err(|error| unusable(format!("the SMTP settings are unusable: {error}")))?;
    let sends = outgoing.iter().map(|message| {
        let sender = &sender;
        async move {
            let reply = message
                .reply_to
                .as_ref()
                .map(|id| email::Reply { in_reply_to: id.clone(), references: vec![id.clone()] });
            sender.send(&channel.number, &message.number, mail, reply.as_ref()).await
        }
    });
    Ok(one_by_one(sends.collect::<Vec<_>>()).await)
}

/// Runs one send per message, a few at a time, keeping their order.
async fn one_by_one<F: Future<Output = SendResult>>(sends: Vec<F>) -> Vec<SendResult> {
    futures_util::stream::iter(sends).buffered(SINGLE_SENDS_IN_FLIGHT).collect().await
}

/// Where the Graph API is for a Meta channel: its base URL, the default version.
fn graph(channel: &ChannelRecord) -> meta::Config {
    meta::Config {
        base_url: channel.base_url.trim_end_matches('/').to_owned(),
        ..meta::Config::default()
    }
}

/// An email channel's SMTP server: its base URL is `smtp://host:port` (plain, for a relay on
/// the same host or the simulator), `smtp+starttls://host:port` or `smtps://host:port`.
pub fn smtp_config(channel: &ChannelRecord, http: HttpClient) -> Result<email::SmtpConfig, String> {
    let (tls, rest, port) = if let Some(rest) = channel.base_url.strip_prefix("smtps://") {
        (email::TlsMode::Implicit, rest, 465)
    } else if let Some(rest) = channel.base_url.strip_prefix("smtp+starttls://") {
        (email::TlsMode::StartTls, rest, 587)
    } else if let Some(rest) = channel.base_url.strip_prefix("smtp://") {
        (email::TlsMode::None, rest, 25)
    } else {
        return Err(
            "an email channel's base URL is smtp://, smtp+starttls:// or smtps://".to_owned()
        );
    };
    let rest = rest.trim_end_matches('/');
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => {
            (host, port.parse::<u16>().map_err(|_| format!("{port:?} is not a port"))?)
        }
        None => (rest, port),
    };
    if host.is_empty() {
        return Err("the SMTP server's host is empty".to_owned());
    }
    let mut config = email::SmtpConfig::plain(host, port);
    config.tls = tls;
    config.timeout = http.timeout;
    config.username = channel.credential("username").map(|name| name.expose().to_owned());
    config.password = channel.credential("password");
    let root = channel.credential("rootCertificate");
    config.extra_root_der =
        super::channels::smtp_root(root.as_ref().map(hazina_providers::Secret::expose))
            .map_err(|error| error.to_string())?;
    Ok(config)
}

fn unsupported(body: &Body) -> SendResult {
    SendResult::Refused {
        status: DeliveryStatus::InvalidRequest,
        reason: format!("the channel cannot carry a {} body", body.kind()),
    }
}

fn refused_build(error: &meta::BuildError) -> SendResult {
    let status = match error {
        meta::BuildError::Unsupported(_) => DeliveryStatus::NotSupported,
        meta::BuildError::Invalid(_) => DeliveryStatus::InvalidRequest,
    };
    SendResult::Refused { status, reason: error.to_string() }
}

//! The providers behind the channels, as the worker and the callbacks use them: one send of a
//! batch of messages with the same body, answered per message.

use hazina_providers::africastalking::client::{Client, Config, send_results};
use hazina_providers::africastalking::sms::sms_text;
use hazina_providers::messaging::{Body, Channel, DeliveryStatus, SendResult};

use super::channels::{ChannelRecord, ProviderKind};

/// A message as the worker sends it: the customer's address.
#[derive(Clone, Debug)]
pub struct Outgoing {
    pub number: String,
}

/// Sends `body` to every one of `outgoing` on `channel`; one result per message, in order.
pub async fn send_batch(
    http: hazina_providers::http::HttpClient,
    channel: &ChannelRecord,
    body: &Body,
    outgoing: &[Outgoing],
) -> Vec<SendResult> {
    let everyone = |result: SendResult| vec![result; outgoing.len()];
    match (channel.provider, channel.channel) {
        (ProviderKind::AfricasTalking, Channel::Sms) => {
            let Some(text) = sms_text(body) else {
                return everyone(unsupported(body));
            };
            let (Some(username), Some(key)) =
                (channel.credential("username"), channel.credential("apiKey"))
            else {
                return everyone(missing_credentials());
            };
            let client = Client::new(Config::at(&channel.base_url, username.expose(), key), http);
            let numbers: Vec<&str> = outgoing.iter().map(|o| o.number.as_str()).collect();
            let outcome = client.send_sms(&numbers, text, Some(&channel.number)).await;
            send_results(&numbers, &outcome).into_iter().map(|(_, result)| result).collect()
        }
        _ => everyone(SendResult::Refused {
            status: DeliveryStatus::NotSupported,
            reason: format!(
                "sending on {} through {} is not built yet",
                channel.channel.as_str(),
                channel.provider.as_str()
            ),
        }),
    }
}

fn unsupported(body: &Body) -> SendResult {
    SendResult::Refused {
        status: DeliveryStatus::InvalidRequest,
        reason: format!("the channel cannot carry a {} body", body.kind()),
    }
}

fn missing_credentials() -> SendResult {
    SendResult::Refused {
        status: DeliveryStatus::ApplicationError,
        reason: "the channel lacks its credentials".to_owned(),
    }
}

//! WhatsApp Cloud API (Meta): the send request (`POST /{version}/{phone-number-id}/messages`)
//! built from a [`Body`], its answer and errors as a [`SendResult`], and the webhook
//! (`object: whatsapp_business_account`) read into [`StatusUpdate`]s, [`Inbound`] messages and
//! the customer-service windows they open. Wire facts: `reference/messaging.md` §5; the error
//! codes are Meta's Cloud API error codes as integrators reproduce them (for example
//! developers.kaleyra.io/docs/cloud-api-error-codes, niswey.com/knowledge-base/error-codes-meta;
//! 131047 "Re-engagement message": dualhook.com/docs/whatsapp-error-131047).
//!
//! Signatures and the verification handshake are in [`crate::meta`].

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::ParseError;
use crate::messaging::{
    Body, Channel, DeliveryStatus, Inbound, InboundPart, Location, Media, MediaType, SendResult,
    StatusUpdate,
};
pub use crate::meta::BuildError;
use crate::meta::{ErrorData, ErrorMeaning, GraphError};
use crate::wire::Text;

/// The `object` of a WhatsApp webhook.
pub const WEBHOOK_OBJECT: &str = "whatsapp_business_account";

/// The prefix of the [`Media::url`] of an inbound media message that names a Cloud API media
/// id rather than a URL: the file is fetched with `GET /{version}/{media-id}` and the URL
/// that answer gives (with the token).
pub const MEDIA_ID_PREFIX: &str = "whatsapp-media:";

// =============================================================================================
// Send request
// =============================================================================================

/// A send request body, as the Cloud API spells it. Read back by the simulator, so every
/// field but the product is optional on the way in.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendRequest {
    /// Always `"whatsapp"`.
    #[serde(default)]
    pub messaging_product: String,
    /// `"individual"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_type: Option<String>,
    /// The customer's number, digits only.
    #[serde(default)]
    pub to: String,
    /// `text`, `template`, `image`, `audio`, `video`, `document`, `sticker`, `location`, …;
    /// the Cloud API takes a missing type as `text`.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The message this one replies to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Context>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<MediaObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<MediaObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<MediaObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<MediaObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticker: Option<MediaObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<LocationObject>,
    /// Echoed in the message's status webhooks (up to 512 bytes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
}

impl SendRequest {
    /// The message type, `text` when none is named.
    pub fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or("text")
    }

    /// Whether this is a template message, the only kind the Cloud API delivers outside the
    /// customer-service window.
    pub fn is_template(&self) -> bool {
        self.kind() == "template"
    }
}

/// `context`: the id (`wamid.…`) of the message replied to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Context {
    pub message_id: String,
}

/// `text`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextObject {
    #[serde(default)]
    pub body: String,
    /// Whether the first URL in the body gets a preview.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<bool>,
}

/// `template`: an approved template by name and language, with its parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateObject {
    #[serde(default)]
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<Language>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<Component>,
}

/// `template.language`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Language {
    /// For example `en_US`.
    #[serde(default)]
    pub code: String,
}

/// A template component (`header`, `body`, `button`) and its parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Component {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<Parameter>,
}

/// A template parameter; only `text` parameters are built here.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Parameter {
    #[serde(rename = "type", default)]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A media object, by public link (or by an uploaded media id).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MediaObject {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Images, videos and documents only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

/// `location`; coordinates are JSON numbers written with exactly their digits.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocationObject {
    #[serde(serialize_with = "crate::meta::exact_number")]
    #[serde(deserialize_with = "crate::meta::read_exact")]
    pub latitude: Decimal,
    #[serde(serialize_with = "crate::meta::exact_number")]
    #[serde(deserialize_with = "crate::meta::read_exact")]
    pub longitude: Decimal,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// The digits of a number as WhatsApp wants them (`+254 712-345678` → `254712345678`).
pub fn digits(number: &str) -> String {
    number.chars().filter(char::is_ascii_digit).collect()
}

/// The send request for `body` to the customer `to` (E.164, with or without `+`), replying to
/// the message `reply_to` (a `wamid.…`) when given.
///
/// Text is `text`; a URL is `text` with `preview_url`; a template is `template` with its
/// parameters as the `body` component's text parameters (a language is required); media go by
/// `link` (`voice` as `audio`; a caption only on images, videos and documents); a location is
/// `location`.
///
/// # Errors
///
/// [`BuildError::Unsupported`] for a body WhatsApp does not carry (email, USSD, voice, a
/// contact card); [`BuildError::Invalid`] for an empty recipient, a template without a
/// language, or a caption on audio or a sticker.
pub fn build_send(
    to: &str,
    body: &Body,
    reply_to: Option<&str>,
) -> Result<SendRequest, BuildError> {
    let to = digits(to);
    if to.is_empty() {
        return Err(BuildError::Invalid("the recipient has no digits".into()));
    }
    let mut request = SendRequest {
        messaging_product: "whatsapp".into(),
        recipient_type: Some("individual".into()),
        to,
        context: reply_to.map(|id| Context { message_id: id.to_owned() }),
        ..SendRequest::default()
    };
    let kind = match body {
        Body::Text { text } => {
            request.text = Some(TextObject { body: text.clone(), preview_url: None });
            "text"
        }
        Body::Url { url } => {
            request.text = Some(TextObject { body: url.clone(), preview_url: Some(true) });
            "text"
        }
        Body::Template(template) => {
            let Some(code) = template.language.as_deref().filter(|code| !code.trim().is_empty())
            else {
                return Err(BuildError::Invalid("a WhatsApp template needs a language".into()));
            };
            let components = if template.params.is_empty() {
                Vec::new()
            } else {
                let parameters = template
                    .params
                    .iter()
                    .map(|text| Parameter { kind: "text".into(), text: Some(text.clone()) })
                    .collect();
                vec![Component { kind: "body".into(), parameters }]
            };
            request.template = Some(TemplateObject {
                name: template.id.clone(),
                language: Some(Language { code: code.to_owned() }),
                components,
            });
            "template"
        }
        Body::Media(media) => set_media(&mut request, media)?,
        Body::Location(location) => {
            request.location = Some(LocationObject {
                latitude: location.latitude,
                longitude: location.longitude,
                name: location.label.clone(),
                address: location.address.clone(),
            });
            "location"
        }
        Body::Email(_) | Body::Ussd { .. } | Body::Voice { .. } => {
            return Err(BuildError::Unsupported(body.kind()));
        }
    };
    request.kind = Some(kind.to_owned());
    Ok(request)
}

fn set_media(request: &mut SendRequest, media: &Media) -> Result<&'static str, BuildError> {
    let (kind, takes_caption) = match media.media {
        MediaType::Image => ("image", true),
        MediaType::Video => ("video", true),
        MediaType::Document => ("document", true),
        MediaType::Audio | MediaType::Voice => ("audio", false),
        MediaType::Sticker => ("sticker", false),
        MediaType::Contact => return Err(BuildError::Unsupported("contact")),
    };
    if media.caption.is_some() && !takes_caption {
        return Err(BuildError::Invalid(format!("WhatsApp sends no caption with {kind}")));
    }
    let object = MediaObject {
        link: Some(media.url.clone()),
        id: None,
        caption: media.caption.clone(),
        filename: None,
    };
    let slot = match kind {
        "image" => &mut request.image,
        "video" => &mut request.video,
        "document" => &mut request.document,
        "audio" => &mut request.audio,
        _ => &mut request.sticker,
    };
    *slot = Some(object);
    Ok(kind)
}

// =============================================================================================
// Send answer
// =============================================================================================

/// The answer to a send: `{"messaging_product":"whatsapp","contacts":[{"input","wa_id"}],
/// "messages":[{"id":"wamid.…"}]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResponse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    #[serde(default)]
    pub contacts: Vec<ResponseContact>,
    #[serde(default)]
    pub messages: Vec<ResponseMessage>,
}

/// `contacts[]` of a send answer: the number as sent and the customer's WhatsApp id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseContact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
}

/// `messages[]` of a send answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResponseMessage {
    pub id: String,
    /// `accepted` or `held_for_quality_assessment` (marketing templates), when present.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_status: Option<String>,
}

/// The Cloud API's answer to a send (HTTP status and body; `retry_after` from a
/// `Retry-After` header when the caller saw one) as a [`SendResult`]: 200 with
/// `messages[0].id` is accepted as [`DeliveryStatus::Queued`]; 429, 5xx and transient codes
/// are retries; other error codes map by [`error_meaning`].
pub fn read_send_answer(status: u16, body: &[u8], retry_after: Option<&str>) -> SendResult {
    crate::meta::classify_answer(
        status,
        body,
        retry_after,
        |body| {
            let answer: SendResponse = serde_json::from_slice(body).ok()?;
            let id = answer.messages.into_iter().next()?.id;
            Some(SendResult::Accepted {
                provider_message_id: Some(id),
                status: DeliveryStatus::Queued,
                cost: None,
            })
        },
        |error| error_meaning(error.code),
    )
}

/// What a Cloud API error code means for a message, whether it came in a send answer or in a
/// `failed` status. Codes not listed are [`DeliveryStatus::Failed`].
pub fn error_meaning(code: i64) -> ErrorMeaning {
    use DeliveryStatus as S;
    let refused = ErrorMeaning::refused;
    match code {
        // Outside the 24-hour customer-service window: only a template gets through.
        131_047 => refused(S::NoSessionInProgress),
        // Undeliverable: chiefly a number that is not on WhatsApp (inferred mapping).
        131_026 => refused(S::CustomerNumberNotFound),
        // The customer stopped marketing messages from the business.
        131_050 => refused(S::NoConsent),
        // Template does not exist (in that language).
        132_001 => refused(S::TagNotFound),
        // Unsupported message type.
        131_051 => refused(S::NotSupported),
        // Business eligibility: a payment problem on the business's account.
        131_042 => refused(S::InsufficientCredits),
        // The business number is deleted or not registered.
        33 | 133_010 => refused(S::InvalidChannelNumber),
        // Our token or permissions (AuthException, API method, permission denied, expired
        // token, API permission, missing token).
        0 | 3 | 10 | 190 | 200..=299 | 2500 | 131_005 => refused(S::ApplicationError),
        // Policy: blocked, restricted, held back by Meta, spam rate limit, experiment.
        368 | 130_497 | 131_031 | 131_048 | 131_049 | 130_472 => refused(S::Rejected),
        // Rate limits and transient failures: try again later.
        1 | 2 | 4 | 80_007 | 130_429 | 131_000 | 131_016 | 131_056 | 131_057 => {
            ErrorMeaning::retry()
        }
        // Malformed requests: bad parameters, template parameter mismatches, media errors.
        100 | 131_008 | 131_009 | 131_021 | 131_052 | 131_053 | 132_000 | 132_005 | 132_007
        | 132_012 | 132_015 | 132_016 | 135_000 => refused(S::InvalidRequest),
        _ => refused(S::Failed),
    }
}

// =============================================================================================
// Webhook
// =============================================================================================

/// A webhook POST body: `{"object":"whatsapp_business_account","entry":[…]}`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Webhook {
    pub object: String,
    #[serde(default)]
    pub entry: Vec<Entry>,
}

/// `entry[]`: one WhatsApp Business Account and its changes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// The WhatsApp Business Account id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<Text>,
    #[serde(default)]
    pub changes: Vec<Change>,
}

/// `changes[]`: `field` (`messages`) and its `value`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default)]
    pub value: Value,
}

/// `changes[].value`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Metadata>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<Contact>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<Status>,
    /// Errors about the whole change (not about one message).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<WebhookError>,
}

/// Our business number the change is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub display_phone_number: Text,
    pub phone_number_id: Text,
}

/// `contacts[]`: the customer's profile name and WhatsApp id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<Text>,
}

/// `contacts[].profile`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// `messages[]`: a message a customer sent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    /// The customer's WhatsApp id (their number's digits).
    pub from: Text,
    /// `wamid.…`.
    pub id: String,
    /// Seconds since the epoch, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Text>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The message replied to, for a reply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<MessageContext>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextObject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<InboundMedia>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<InboundMedia>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<InboundMedia>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<InboundMedia>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticker: Option<InboundMedia>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<InboundLocation>,
    /// A quick-reply button of a template, pressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button: Option<Button>,
    /// A reply button or list row of an interactive message, chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<Interactive>,
    /// For `type: unsupported`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<WebhookError>,
}

/// `messages[].context`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageContext {
    /// The `wamid` of the message replied to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<Text>,
}

/// An inbound media object: an id to fetch it by, its type, and the caption.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMedia {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
    /// A voice note (audio recorded in the app).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<bool>,
    /// A download URL, when the payload carries one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// An inbound location.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundLocation {
    pub latitude: Text,
    pub longitude: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// `messages[].button`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Button {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payload: Option<String>,
}

/// `messages[].interactive`: `button_reply` or `list_reply`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interactive {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub button_reply: Option<Reply>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub list_reply: Option<Reply>,
}

/// A chosen reply button or list row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `statuses[]`: a change of one of our messages' status.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// The `wamid` of our message.
    pub id: String,
    /// `sent`, `delivered`, `read` or `failed`.
    pub status: String,
    /// Seconds since the epoch, as a string.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<Text>,
    /// Why, for `failed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<WebhookError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Conversation>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
}

/// `statuses[].conversation`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expiration_timestamp: Option<Text>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// `conversation.origin`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `statuses[].pricing`: billable or not, the model and the category (no amount).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pricing {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billable: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_model: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
}

/// An error in a webhook (`statuses[].errors[]`, `value.errors[]`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookError {
    pub code: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_data: Option<ErrorData>,
}

impl WebhookError {
    /// The reason to record: the code, the title, and the details when there are some.
    pub fn reason(&self) -> String {
        let mut error = GraphError::new(self.code, "", "");
        error.message = self.title.clone().or_else(|| self.message.clone()).unwrap_or_default();
        error.error_data.clone_from(&self.error_data);
        error.reason()
    }
}

/// A customer-service window that an inbound message opens: free-form messages to the
/// customer from that business number are allowed for 24 hours from `opened_at`. The server
/// keeps the latest per customer and number and decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceWindow {
    /// Our business number, E.164 with `+`.
    pub channel_number: String,
    /// The customer, E.164 with `+`.
    pub customer: String,
    /// The message's own time, as WhatsApp stamped it.
    pub opened_at: DateTime<Utc>,
    /// The message that opened it.
    pub provider_message_id: String,
}

/// What one webhook says, in our terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Events {
    pub statuses: Vec<StatusUpdate>,
    pub inbound: Vec<Inbound>,
    /// One per inbound message with a readable time.
    pub windows: Vec<ServiceWindow>,
    /// Errors about a whole change (`value.errors[]`), as reasons.
    pub errors: Vec<String>,
}

/// Reads a webhook body (after [`crate::meta::verify_signature`] passed on the same bytes)
/// into status updates, inbound messages and the windows they open. A status WhatsApp may add
/// later reads as [`DeliveryStatus::Sent`] at most; a message type without a part here
/// (reaction, contacts, order, unsupported) is an inbound with no parts, as it still opens the
/// window; a time that cannot be read leaves `at`/`received_at` empty.
///
/// # Errors
///
/// Not JSON, not a WhatsApp webhook (`object`), or an inbound message for a business number
/// without digits.
pub fn read_webhook(body: &[u8]) -> Result<Events, ParseError> {
    let webhook: Webhook = serde_json::from_slice(body)?;
    if webhook.object != WEBHOOK_OBJECT {
        return Err(ParseError::Unexpected(format!("object {:?}", webhook.object)));
    }
    let mut events = Events::default();
    for change in webhook.entry.iter().flat_map(|entry| &entry.changes) {
        let value = &change.value;
        events.errors.extend(value.errors.iter().map(WebhookError::reason));
        events.statuses.extend(value.statuses.iter().map(status_update));
        if value.messages.is_empty() {
            continue;
        }
        let channel_number = value
            .metadata
            .as_ref()
            .map(|metadata| e164(metadata.display_phone_number.as_str()))
            .filter(|number| number.len() > 1)
            .ok_or_else(|| ParseError::Unexpected("messages without our number".into()))?;
        for message in &value.messages {
            let inbound = inbound(message, &channel_number);
            if let Some(opened_at) = inbound.received_at {
                events.windows.push(ServiceWindow {
                    channel_number: channel_number.clone(),
                    customer: inbound.customer.clone(),
                    opened_at,
                    provider_message_id: message.id.clone(),
                });
            }
            events.inbound.push(inbound);
        }
    }
    Ok(events)
}

/// A number as E.164 with `+`, from whatever WhatsApp wrote (`15550783881`, `+1 555-078-3881`).
pub fn e164(number: &str) -> String {
    format!("+{}", digits(number))
}

/// One `statuses[]` entry in our terms.
pub fn status_update(status: &Status) -> StatusUpdate {
    let at = status.timestamp.as_ref().and_then(crate::meta::from_seconds);
    let (status_code, reason) = match status.status.as_str() {
        "delivered" => (DeliveryStatus::Delivered, None),
        "read" => (DeliveryStatus::Read, None),
        "failed" => match status.errors.first() {
            Some(error) => (error_meaning(error.code).status, Some(error.reason())),
            None => (DeliveryStatus::Failed, None),
        },
        // `sent`, and any status WhatsApp may add: at most sent.
        _ => (DeliveryStatus::Sent, None),
    };
    StatusUpdate {
        provider_message_id: status.id.clone(),
        status: status_code,
        reason,
        cost: None,
        at,
    }
}

/// One `messages[]` entry in our terms.
fn inbound(message: &Message, channel_number: &str) -> Inbound {
    Inbound {
        channel: Channel::WhatsApp,
        customer: e164(message.from.as_str()),
        channel_number: channel_number.to_owned(),
        provider_message_id: Some(message.id.clone()),
        session_id: None,
        in_reply_to: message.context.as_ref().and_then(|context| context.id.clone()),
        parts: parts(message),
        cost: None,
        received_at: message.timestamp.as_ref().and_then(crate::meta::from_seconds),
    }
}

fn parts(message: &Message) -> Vec<InboundPart> {
    let media = |object: Option<&InboundMedia>, kind: MediaType| {
        object.and_then(|object| {
            let url = object
                .url
                .clone()
                .or_else(|| object.id.as_ref().map(|id| format!("{MEDIA_ID_PREFIX}{id}")))?;
            let kind = if kind == MediaType::Audio && object.voice == Some(true) {
                MediaType::Voice
            } else {
                kind
            };
            Some(InboundPart::Media(Media { url, media: kind, caption: object.caption.clone() }))
        })
    };
    let part = match message.kind.as_deref().unwrap_or("text") {
        "text" => message.text.as_ref().map(|text| InboundPart::Text { text: text.body.clone() }),
        "image" => media(message.image.as_ref(), MediaType::Image),
        "audio" => media(message.audio.as_ref(), MediaType::Audio),
        "video" => media(message.video.as_ref(), MediaType::Video),
        "document" => media(message.document.as_ref(), MediaType::Document),
        "sticker" => media(message.sticker.as_ref(), MediaType::Sticker),
        "location" => message.location.as_ref().and_then(|location| {
            Some(InboundPart::Location(Location {
                latitude: crate::wire::decimal(location.latitude.as_str()).ok()?,
                longitude: crate::wire::decimal(location.longitude.as_str()).ok()?,
                label: location.name.clone(),
                address: location.address.clone(),
            }))
        }),
        "button" => message.button.as_ref().and_then(|button| {
            let text = button.text.clone().or_else(|| button.payload.clone())?;
            Some(InboundPart::Text { text })
        }),
        "interactive" => message.interactive.as_ref().and_then(|interactive| {
            let reply = interactive.button_reply.as_ref().or(interactive.list_reply.as_ref())?;
            let text = reply.title.clone().or_else(|| reply.id.clone())?;
            Some(InboundPart::Text { text })
        }),
        _ => None,
    };
    part.into_iter().collect()
}

/// The media id inside a [`Media::url`] read from an inbound message, when it names one.
pub fn media_id(url: &str) -> Option<&str> {
    url.strip_prefix(MEDIA_ID_PREFIX)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn coordinates_go_out_as_exact_json_numbers() {
        let request = build_send(
            "+254 712 345678",
            &Body::Location(Location {
                latitude: "-1.292066".parse().unwrap(),
                longitude: "36.821946".parse().unwrap(),
                label: Some("Nairobi".into()),
                address: None,
            }),
            None,
        )
        .unwrap();
        let json = serde_json::to_string(&request).unwrap();
        assert!(json.contains(r#""latitude":-1.292066,"longitude":36.821946"#), "{json}");
        assert!(json.contains(r#""to":"254712345678""#), "{json}");
        let back: SendRequest = serde_json::from_str(&json).unwrap();
        assert_eq!(back, request);
    }
}

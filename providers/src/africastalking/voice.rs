//! Africa's Talking voice: the XML action vocabulary our voice URL answers with (rendered with
//! quick-xml from the platform's [`VoiceAction`]s, and read back for the simulator), the call
//! callback form, and the outbound call request (`POST /call` on the voice host) with its
//! answer.

use serde::{Deserialize, Serialize};

use super::{Price, meaningful, timestamp};
use crate::messaging::{
    self, Channel, DeliveryStatus, Inbound, InboundPart, Prompt, SendResult, VoiceAction,
    VoiceCallStatus, VoiceInput,
};

// ---------------------------------------------------------------------------------------------
// The XML vocabulary
// ---------------------------------------------------------------------------------------------

/// A voice answer: `<Response>` and its actions, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename = "Response")]
pub struct Response {
    #[serde(rename = "$value", default)]
    pub actions: Vec<Action>,
}

/// One element of a `<Response>`, with the provider's attribute names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    Say(SayXml),
    Play(PlayXml),
    GetDigits(GetDigitsXml),
    Dial(DialXml),
    /// Without a prompt it records the rest of the call; with one (and usually
    /// `finishOnKey`), it records the caller's answer to it.
    Record(RecordXml),
    Enqueue(EnqueueXml),
    Dequeue(DequeueXml),
    /// The URL whose XML takes over the call.
    Redirect(String),
    /// Refuses the call (it must be the only action; it is not charged).
    Reject,
    Conference,
}

/// What a caller hears inside `GetDigits` or `Record`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PromptXml {
    Say(SayXml),
    Play(PlayXml),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SayXml {
    /// `man` or `woman`.
    #[serde(rename = "@voice", default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<String>,
    #[serde(rename = "@playBeep", default, skip_serializing_if = "Option::is_none")]
    pub play_beep: Option<bool>,
    #[serde(rename = "$text", default)]
    pub text: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayXml {
    #[serde(rename = "@url")]
    pub url: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetDigitsXml {
    #[serde(rename = "@timeout", default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    #[serde(rename = "@finishOnKey", default, skip_serializing_if = "Option::is_none")]
    pub finish_on_key: Option<String>,
    #[serde(rename = "@numDigits", default, skip_serializing_if = "Option::is_none")]
    pub num_digits: Option<u32>,
    /// Where the digits go; the number's voice URL when absent.
    #[serde(rename = "@callbackUrl", default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    #[serde(rename = "$value", default, skip_serializing_if = "Vec::is_empty")]
    pub prompt: Vec<PromptXml>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DialXml {
    /// Comma-separated.
    #[serde(rename = "@phoneNumbers")]
    pub phone_numbers: String,
    #[serde(rename = "@record", default, skip_serializing_if = "Option::is_none")]
    pub record: Option<bool>,
    #[serde(rename = "@sequential", default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<bool>,
    #[serde(rename = "@ringbackTone", default, skip_serializing_if = "Option::is_none")]
    pub ringback_tone: Option<String>,
    #[serde(rename = "@callerId", default, skip_serializing_if = "Option::is_none")]
    pub caller_id: Option<String>,
    #[serde(rename = "@maxDuration", default, skip_serializing_if = "Option::is_none")]
    pub max_duration: Option<u32>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordXml {
    #[serde(rename = "@finishOnKey", default, skip_serializing_if = "Option::is_none")]
    pub finish_on_key: Option<String>,
    #[serde(rename = "@maxLength", default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u32>,
    #[serde(rename = "@timeout", default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u32>,
    #[serde(rename = "@trimSilence", default, skip_serializing_if = "Option::is_none")]
    pub trim_silence: Option<bool>,
    #[serde(rename = "@playBeep", default, skip_serializing_if = "Option::is_none")]
    pub play_beep: Option<bool>,
    #[serde(rename = "@callbackUrl", default, skip_serializing_if = "Option::is_none")]
    pub callback_url: Option<String>,
    #[serde(rename = "$value", default, skip_serializing_if = "Vec::is_empty")]
    pub prompt: Vec<PromptXml>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnqueueXml {
    #[serde(rename = "@holdMusic", default, skip_serializing_if = "Option::is_none")]
    pub hold_music: Option<String>,
    #[serde(rename = "@name", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DequeueXml {
    #[serde(rename = "@phoneNumber")]
    pub phone_number: String,
    #[serde(rename = "@name", default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Why a voice answer could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum XmlError {
    #[error("the voice XML could not be written: {0}")]
    Write(#[from] quick_xml::SeError),
    #[error("the voice XML could not be written: {0}")]
    Io(#[from] std::io::Error),
    #[error("the voice XML could not be read: {0}")]
    Read(#[from] quick_xml::DeError),
}

/// The voice answer for `actions`: `<?xml …?><Response>…</Response>`. `callback_url` is where
/// a `GetDigits` or a prompted `Record` sends what the caller did (the number's voice URL
/// when `None`).
///
/// # Errors
///
/// [`XmlError::Write`] when quick-xml cannot write it (it escapes every text, so only an
/// internal failure).
pub fn render(actions: &[VoiceAction], callback_url: Option<&str>) -> Result<String, XmlError> {
    let response = Response {
        actions: actions.iter().map(|action| Action::new(action, callback_url)).collect(),
    };
    response.to_xml()
}

impl Response {
    /// The XML, with its declaration.
    ///
    /// # Errors
    ///
    /// As for [`render`].
    pub fn to_xml(&self) -> Result<String, XmlError> {
        let mut writer = quick_xml::Writer::new(Vec::new());
        writer.write_event(quick_xml::events::Event::Decl(quick_xml::events::BytesDecl::new(
            "1.0",
            Some("UTF-8"),
            None,
        )))?;
        writer.write_serializable("Response", self)?;
        // quick-xml writes UTF-8 from `&str`s only.
        Ok(String::from_utf8_lossy(&writer.into_inner()).into_owned())
    }

    /// Reads a voice answer (as the simulator does).
    ///
    /// # Errors
    ///
    /// [`XmlError::Read`] for anything but a `<Response>` of known actions.
    pub fn parse(xml: &str) -> Result<Self, XmlError> {
        Ok(quick_xml::de::from_str(xml)?)
    }

    /// The actions in the platform's terms (a `Conference`, which the platform has no word
    /// for, is left out).
    #[must_use]
    pub fn platform_actions(&self) -> Vec<VoiceAction> {
        self.actions.iter().filter_map(Action::to_platform).collect()
    }
}

fn voice_name(voice: messaging::Voice) -> String {
    match voice {
        messaging::Voice::Male => "man",
        messaging::Voice::Female => "woman",
    }
    .to_owned()
}

fn voice_of(name: &str) -> Option<messaging::Voice> {
    match name.trim().to_ascii_lowercase().as_str() {
        "man" | "male" => Some(messaging::Voice::Male),
        "woman" | "female" => Some(messaging::Voice::Female),
        _ => None,
    }
}

/// `Some(true)` for a flag that is set; an unset one is left out (the provider's default is
/// false for every flag here).
fn flag(value: bool) -> Option<bool> {
    value.then_some(true)
}

impl SayXml {
    fn new(say: &messaging::Say) -> Self {
        Self {
            voice: say.voice.map(voice_name),
            play_beep: flag(say.play_beep),
            text: say.text.clone(),
        }
    }

    fn to_platform(&self) -> messaging::Say {
        messaging::Say {
            text: self.text.clone(),
            voice: self.voice.as_deref().and_then(voice_of),
            play_beep: self.play_beep.unwrap_or(false),
        }
    }
}

impl PromptXml {
    fn new(prompt: &Prompt) -> Self {
        match prompt {
            Prompt::Say(say) => Self::Say(SayXml::new(say)),
            Prompt::Play { url } => Self::Play(PlayXml { url: url.clone() }),
        }
    }

    fn to_platform(&self) -> Prompt {
        match self {
            Self::Say(say) => Prompt::Say(say.to_platform()),
            Self::Play(play) => Prompt::Play { url: play.url.clone() },
        }
    }
}

impl Action {
    /// The element for a platform action; `callback_url` goes on `GetDigits` and `Record`.
    #[must_use]
    pub fn new(action: &VoiceAction, callback_url: Option<&str>) -> Self {
        let callback_url = callback_url.map(str::to_owned);
        let prompt = |prompt: &Option<Prompt>| prompt.iter().map(PromptXml::new).collect();
        match action {
            VoiceAction::Say(say) => Self::Say(SayXml::new(say)),
            VoiceAction::Play { url } => Self::Play(PlayXml { url: url.clone() }),
            VoiceAction::GetDigits { prompt: said, timeout_seconds, finish_on_key, num_digits } => {
                Self::GetDigits(GetDigitsXml {
                    timeout: *timeout_seconds,
                    finish_on_key: finish_on_key.clone(),
                    num_digits: *num_digits,
                    callback_url,
                    prompt: prompt(said),
                })
            }
            VoiceAction::Dial {
                customer_numbers,
                record,
                sequential,
                ringback_tone,
                caller_id,
                max_duration_seconds,
            } => Self::Dial(DialXml {
                phone_numbers: customer_numbers.join(","),
                record: flag(*record),
                sequential: flag(*sequential),
                ringback_tone: ringback_tone.clone(),
                caller_id: caller_id.clone(),
                max_duration: *max_duration_seconds,
            }),
            VoiceAction::RecordSession => Self::Record(RecordXml::default()),
            VoiceAction::GetRecording {
                prompt: said,
                timeout_seconds,
                max_length_seconds,
                finish_on_key,
                play_beep,
                trim_silence,
            } => Self::Record(RecordXml {
                finish_on_key: finish_on_key.clone(),
                max_length: *max_length_seconds,
                timeout: *timeout_seconds,
                trim_silence: flag(*trim_silence),
                play_beep: flag(*play_beep),
                callback_url,
                prompt: prompt(said),
            }),
            VoiceAction::Enqueue { hold_music, queue_name } => Self::Enqueue(EnqueueXml {
                hold_music: hold_music.clone(),
                name: queue_name.clone(),
            }),
            VoiceAction::Dequeue { channel_number, queue_name, .. } => Self::Dequeue(DequeueXml {
                phone_number: channel_number.clone(),
                name: queue_name.clone(),
            }),
            VoiceAction::Reject => Self::Reject,
            VoiceAction::Redirect { url } => Self::Redirect(url.clone()),
        }
    }

    /// The element in the platform's terms; `None` for `Conference`. A `Record` without a
    /// prompt, a finishing key, a length or a time-out records the session; otherwise it asks
    /// for a recording.
    #[must_use]
    pub fn to_platform(&self) -> Option<VoiceAction> {
        Some(match self {
            Self::Say(say) => VoiceAction::Say(say.to_platform()),
            Self::Play(play) => VoiceAction::Play { url: play.url.clone() },
            Self::GetDigits(digits) => VoiceAction::GetDigits {
                prompt: digits.prompt.first().map(PromptXml::to_platform),
                timeout_seconds: digits.timeout,
                finish_on_key: digits.finish_on_key.clone(),
                num_digits: digits.num_digits,
            },
            Self::Dial(dial) => VoiceAction::Dial {
                customer_numbers: dial
                    .phone_numbers
                    .split(',')
                    .map(str::trim)
                    .filter(|number| !number.is_empty())
                    .map(str::to_owned)
                    .collect(),
                record: dial.record.unwrap_or(false),
                sequential: dial.sequential.unwrap_or(false),
                ringback_tone: dial.ringback_tone.clone(),
                caller_id: dial.caller_id.clone(),
                max_duration_seconds: dial.max_duration,
            },
            Self::Record(record) if record.is_session() => VoiceAction::RecordSession,
            Self::Record(record) => VoiceAction::GetRecording {
                prompt: record.prompt.first().map(PromptXml::to_platform),
                timeout_seconds: record.timeout,
                max_length_seconds: record.max_length,
                finish_on_key: record.finish_on_key.clone(),
                play_beep: record.play_beep.unwrap_or(false),
                trim_silence: record.trim_silence.unwrap_or(false),
            },
            Self::Enqueue(enqueue) => VoiceAction::Enqueue {
                hold_music: enqueue.hold_music.clone(),
                queue_name: enqueue.name.clone(),
            },
            Self::Dequeue(dequeue) => VoiceAction::Dequeue {
                channel_number: dequeue.phone_number.clone(),
                record: false,
                queue_name: dequeue.name.clone(),
            },
            Self::Redirect(url) => VoiceAction::Redirect { url: url.trim().to_owned() },
            Self::Reject => VoiceAction::Reject,
            Self::Conference => return None,
        })
    }
}

impl RecordXml {
    /// Whether it records the rest of the call rather than an answer to a prompt.
    #[must_use]
    pub fn is_session(&self) -> bool {
        self.prompt.is_empty()
            && self.finish_on_key.is_none()
            && self.max_length.is_none()
            && self.timeout.is_none()
            && self.play_beep.is_none()
            && self.trim_silence.is_none()
    }
}

// ---------------------------------------------------------------------------------------------
// The call callback
// ---------------------------------------------------------------------------------------------

/// A call callback (a form posted to the number's voice URL, or to a `callbackUrl`): every
/// step of a live call (`isActive=1`, answered with XML) and its end (`isActive=0`, with its
/// duration and cost).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VoiceCallback {
    /// `1` while the call is live, `0` on its final request.
    pub is_active: String,
    /// Stable for the call.
    pub session_id: String,
    /// `Inbound` or `Outbound` (the casing varies in the provider's documents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destination_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dtmf_digits: Option<String>,
    /// Empty when nothing was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_in_seconds: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hangup_cause: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_session_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_start_time: Option<String>,
}

impl VoiceCallback {
    /// Reads the form.
    ///
    /// # Errors
    ///
    /// When `isActive` or `sessionId` is missing.
    pub fn from_form(body: &[u8]) -> Result<Self, serde_urlencoded::de::Error> {
        serde_urlencoded::from_bytes(body)
    }

    /// The form body (as the simulator sends it).
    ///
    /// # Errors
    ///
    /// None in practice: every field is a string.
    pub fn form(&self) -> Result<String, serde_urlencoded::ser::Error> {
        serde_urlencoded::to_string(self)
    }

    /// Whether the call is still live (anything but `0` is taken as live, so that a live
    /// call is never closed on a word this adapter does not know).
    #[must_use]
    pub fn is_active(&self) -> bool {
        self.is_active.trim() != "0"
    }

    /// Whether the customer called us.
    #[must_use]
    pub fn is_inbound(&self) -> bool {
        self.direction
            .as_deref()
            .is_some_and(|direction| direction.trim().eq_ignore_ascii_case("inbound"))
    }

    /// The call's duration, when the provider said it.
    #[must_use]
    pub fn duration_seconds(&self) -> Option<u32> {
        self.duration_in_seconds.as_deref().and_then(|seconds| seconds.trim().parse().ok())
    }

    /// The call's status: live while active; at its end `Completed` when it lasted, else
    /// `NotAnswered`.
    #[must_use]
    pub fn call_status(&self) -> VoiceCallStatus {
        if self.is_active() {
            VoiceCallStatus::Active
        } else if self.duration_seconds().unwrap_or(0) > 0 {
            VoiceCallStatus::Completed
        } else {
            VoiceCallStatus::NotAnswered
        }
    }

    /// The callback in the platform's terms: the customer is the caller of an inbound call
    /// and the called party of an outbound one; the cost is kept when exact.
    #[must_use]
    pub fn inbound(&self) -> Inbound {
        let inbound = self.is_inbound();
        let caller = self.caller_number.clone().unwrap_or_default();
        let destination = self.destination_number.clone().unwrap_or_default();
        let (customer, channel_number) =
            if inbound { (caller, destination) } else { (destination, caller) };
        let cost =
            match (meaningful(self.currency_code.as_deref()), meaningful(self.amount.as_deref())) {
                (Some(currency), Some(amount)) => {
                    Price::parse(&format!("{currency} {amount}")).and_then(Price::money)
                }
                _ => None,
            };
        Inbound {
            channel: Channel::Voice,
            customer,
            channel_number,
            provider_message_id: None,
            session_id: Some(self.session_id.clone()),
            in_reply_to: None,
            parts: vec![InboundPart::Voice(VoiceInput {
                inbound,
                status: self.call_status(),
                dtmf_digits: meaningful(self.dtmf_digits.as_deref()).map(str::to_owned),
                recording_url: meaningful(self.recording_url.as_deref()).map(str::to_owned),
                hangup_cause: meaningful(self.hangup_cause.as_deref()).map(str::to_owned),
                duration_seconds: self.duration_seconds(),
            })],
            cost,
            received_at: self.call_start_time.as_deref().and_then(timestamp),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Outbound calls
// ---------------------------------------------------------------------------------------------

/// The outbound call form (`POST /call` on the voice host).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MakeCall {
    pub username: String,
    /// Our voice number.
    pub from: String,
    /// Comma-separated customer numbers.
    pub to: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
}

impl MakeCall {
    /// The form body.
    ///
    /// # Errors
    ///
    /// None in practice: every field is a string.
    pub fn form(&self) -> Result<String, serde_urlencoded::ser::Error> {
        serde_urlencoded::to_string(self)
    }

    /// Reads the form (as the simulator receives it).
    ///
    /// # Errors
    ///
    /// When a required field is missing.
    pub fn from_form(body: &[u8]) -> Result<Self, serde_urlencoded::de::Error> {
        serde_urlencoded::from_bytes(body)
    }
}

/// The answer to an outbound call request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MakeCallResponse {
    #[serde(default)]
    pub entries: Vec<CallEntry>,
    /// `"None"` when all went well.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// One number of an outbound call request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallEntry {
    pub phone_number: String,
    /// `Queued`, or why not.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

impl CallEntry {
    /// The entry in the platform's terms: `Queued` is accepted under the call's session id;
    /// anything else is refused.
    #[must_use]
    pub fn send_result(&self) -> SendResult {
        if self.status.trim() == "Queued" {
            return SendResult::Accepted {
                provider_message_id: meaningful(self.session_id.as_deref()).map(str::to_owned),
                status: DeliveryStatus::Queued,
                cost: None,
            };
        }
        let status = match self.status.trim() {
            "InvalidPhoneNumber" | "DestinationNotSupported" => DeliveryStatus::NotSupported,
            "InsufficientCredit" => DeliveryStatus::InsufficientCredits,
            "InvalidCallerId" | "InvalidChannelNumber" => DeliveryStatus::InvalidChannelNumber,
            _ => DeliveryStatus::Failed,
        };
        let reason = meaningful(self.error_message.as_deref())
            .map_or_else(|| self.status.clone(), |error| format!("{}: {error}", self.status));
        SendResult::Refused { status, reason }
    }
}

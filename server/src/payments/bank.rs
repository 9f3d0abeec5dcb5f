//! Bank channels for the engine: the channel's bank details and cut-off schedule, the
//! creditor's account a payout names, and the [`Adapter`](super::provider::Adapter) of a bank.
//!
//! A bank payout is reserved like any other; its `send` does no I/O — the payment stays
//! `queued` (stage `sending`) until a cut-off collects it into a pain.001 file
//! (`bank_files.rs`), which moves it to `pending_confirmation` with the file's message id as
//! its request reference. The bank's pain.002 and camt.054 files, read from the channel's
//! `in/` directory, then post or void it.

use chrono::{DateTime, Duration, NaiveTime, TimeDelta, Utc};
use hazina_ledger::OrgId;
use hazina_providers::iso20022::bank;
use hazina_providers::{ParseError, StatusReport};
use uuid::Uuid;

use super::{Channel, Engine, Flow, PaymentError, QueryOutcome, Record, Recovery, SendOutcome};
use crate::code::Code;

/// Most cut-offs a day.
pub const CUT_OFFS_MAX: usize = 48;
/// The longest debtor or creditor name a bank file carries (`Max140Text`).
pub const NAME_CHARS_MAX: usize = 140;
/// The furthest a UTC offset goes (UTC+14:00, Kiribati; UTC-12:00 is within it).
const UTC_OFFSET_MINUTES_MAX: i32 = 14 * 60;
/// What a bank payout says while it waits for the bank's files.
const WAITING: &str = "waiting for the bank's files (pain.002, camt.054)";

/// A bank channel's details: who the debtor is to the bank, and when files are cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BankDetails {
    pub debtor_name: String,
    pub bic: String,
    /// Minutes after midnight in the channel's offset, ascending, distinct.
    pub cut_offs: Vec<i32>,
    pub utc_offset_minutes: i32,
}

impl BankDetails {
    /// The details as a front door was given them: the debtor's name, the bank's BIC, the
    /// cut-off times of day (`HH:MM`) and the UTC offset they are in (`+03:00`).
    ///
    /// # Errors
    ///
    /// `Invalid` with `invalid_name`, `invalid_bic` or `invalid_cut_off`.
    pub fn parse(
        debtor_name: &str,
        bic: &str,
        cut_offs: &[String],
        utc_offset: &str,
    ) -> Result<Self, PaymentError> {
        let debtor_name = name(debtor_name)?;
        if !bank::is_bic(bic) {
            return Err(PaymentError::invalid(
                Code::InvalidBic,
                "a BIC has 8 or 11 characters: 6 letters, then letters or digits",
            ));
        }
        let invalid = |detail: &str| PaymentError::invalid(Code::InvalidCutOff, detail);
        if cut_offs.is_empty() || cut_offs.len() > CUT_OFFS_MAX {
            return Err(invalid("a bank channel has 1 to 48 cut-off times a day"));
        }
        let mut minutes = Vec::with_capacity(cut_offs.len());
        for time in cut_offs {
            let parsed = NaiveTime::parse_from_str(time, "%H:%M")
                .ok()
                .filter(|_| time.len() == 5)
                .ok_or_else(|| invalid("a cut-off time is HH:MM, from 00:00 to 23:59"))?;
            let since_midnight = parsed.signed_duration_since(NaiveTime::MIN).num_minutes();
            minutes.push(i32::try_from(since_midnight).unwrap_or_default());
        }
        minutes.sort_unstable();
        if minutes.windows(2).any(|pair| pair[0] == pair[1]) {
            return Err(invalid("each cut-off time is given once"));
        }
        let utc_offset_minutes = utc_offset_minutes(utc_offset)
            .ok_or_else(|| invalid("a UTC offset is +HH:MM or -HH:MM, within 14 hours"))?;
        Ok(Self { debtor_name, bic: bic.to_owned(), cut_offs: minutes, utc_offset_minutes })
    }

    /// The cut-off times as `HH:MM`.
    pub fn cut_off_times(&self) -> Vec<String> {
        self.cut_offs.iter().map(|m| format!("{:02}:{:02}", m / 60, m % 60)).collect()
    }

    /// The offset as `+HH:MM`.
    pub fn utc_offset(&self) -> String {
        let sign = if self.utc_offset_minutes < 0 { '-' } else { '+' };
        let minutes = self.utc_offset_minutes.abs();
        format!("{sign}{:02}:{:02}", minutes / 60, minutes % 60)
    }

    pub(super) async fn insert(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        org: OrgId,
        channel: Uuid,
    ) -> Result<(), PaymentError> {
        tx.execute(
            "INSERT INTO bank_channels (org_id, channel_id, debtor_name, bic, cut_offs,
                 utc_offset_minutes)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &org.0,
                &channel,
                &self.debtor_name,
                &self.bic,
                &self.cut_offs,
                &self.utc_offset_minutes,
            ],
        )
        .await?;
        Ok(())
    }

    pub(super) fn from_row(row: &tokio_postgres::Row, at: usize) -> Self {
        Self {
            debtor_name: row.get(at),
            bic: row.get(at + 1),
            cut_offs: row.get(at + 2),
            utc_offset_minutes: row.get(at + 3),
        }
    }

    /// The first cut-off strictly after `after`.
    pub fn next_cut_off(&self, after: DateTime<Utc>) -> DateTime<Utc> {
        next_cut_off(&self.cut_offs, self.utc_offset_minutes, after)
    }

    /// The day a file cut at `at` asks the bank to execute it: that day in the channel's
    /// offset.
    pub fn execution_date(&self, at: DateTime<Utc>) -> chrono::NaiveDate {
        (at + Duration::minutes(i64::from(self.utc_offset_minutes))).date_naive()
    }
}

/// `+HH:MM` or `-HH:MM` as minutes east of UTC.
fn utc_offset_minutes(text: &str) -> Option<i32> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = rest.split_once(':')?;
    if hours.len() != 2 || minutes.len() != 2 {
        return None;
    }
    let hours: i32 = hours.parse().ok()?;
    let minutes: i32 = minutes.parse().ok()?;
    let total = hours * 60 + minutes;
    (minutes < 60 && total <= UTC_OFFSET_MINUTES_MAX).then_some(sign * total)
}

/// The first of the daily `cut_offs` (minutes after midnight at `offset` minutes east of UTC,
/// ascending) strictly after `after`.
pub fn next_cut_off(cut_offs: &[i32], offset: i32, after: DateTime<Utc>) -> DateTime<Utc> {
    let offset = TimeDelta::minutes(i64::from(offset));
    let local_day = (after + offset).date_naive();
    for day in [local_day, local_day + Duration::days(1)] {
        let midnight = day.and_time(NaiveTime::MIN).and_utc() - offset;
        for minutes in cut_offs {
            let at = midnight + Duration::minutes(i64::from(*minutes));
            if at > after {
                return at;
            }
        }
    }
    // Unreachable with at least one cut-off (tomorrow's first is after `after`); a day later
    // is the safe answer for none.
    after + Duration::days(1)
}

/// A name as a bank file carries it: 1 to 140 characters, not blank, no control characters.
fn name(text: &str) -> Result<String, PaymentError> {
    let trimmed = text.trim();
    if trimmed.is_empty()
        || trimmed.chars().count() > NAME_CHARS_MAX
        || trimmed.chars().any(char::is_control)
    {
        return Err(PaymentError::invalid(
            Code::InvalidName,
            "a name on a bank transfer has 1 to 140 characters, no control characters",
        ));
    }
    Ok(trimmed.to_owned())
}

/// The account a bank payout pays: its number (IBAN or other), the holder's name and, where
/// the scheme needs it, the bank's BIC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreditorAccount {
    pub account: String,
    pub name: String,
    pub bic: Option<String>,
}

impl CreditorAccount {
    /// The creditor as a front door was given it.
    ///
    /// # Errors
    ///
    /// `Invalid` with `invalid_bank_account` (an account that is no IBAN or account number,
    /// or an IBAN with wrong check digits), `invalid_name` or `invalid_bic`.
    pub fn parse(account: &str, holder: &str, bic: Option<&str>) -> Result<Self, PaymentError> {
        let account = bank::account(account).map_err(|error| {
            PaymentError::invalid(Code::InvalidBankAccount, format!("the creditor's {error}"))
        })?;
        let name = name(holder)?;
        if let Some(bic) = bic
            && !bank::is_bic(bic)
        {
            return Err(PaymentError::invalid(
                Code::InvalidBic,
                "a BIC has 8 or 11 characters: 6 letters, then letters or digits",
            ));
        }
        Ok(Self { account, name, bic: bic.map(str::to_owned) })
    }

    /// The creditor a payment's stored request names (`creditParty.customer.bankAccount`).
    ///
    /// # Errors
    ///
    /// Why the stored request names none, or none valid.
    pub fn of(record: &Record) -> Result<Self, String> {
        let stored = record
            .request
            .get("creditParty")
            .and_then(|party| party.get("customer"))
            .and_then(|customer| customer.get("bankAccount"))
            .ok_or("a bank payout names the creditor's bankAccount")?;
        let text = |field: &str| stored.get(field).and_then(|v| v.as_str());
        Self::parse(
            text("accountNumber").unwrap_or_default(),
            text("name").unwrap_or_default(),
            text("bic"),
        )
        .map_err(|error| error.to_string())
    }
}

impl super::provider::Adapter for super::provider::Bank {
    /// Credits on the account (camt.054) are payments customers make unprompted.
    const RECEIVES_UNPROMPTED: bool = true;

    /// The end-to-end id: the payment id's 32 hex digits, within `Max35Text`, and never the
    /// `NOTPROVIDED` placeholder.
    fn our_reference(id: Uuid) -> String {
        id.simple().to_string()
    }

    fn check(_: &Engine, _: &Channel, record: &Record) -> Result<(), String> {
        if record.flow != Flow::Payout {
            return Err("a bank channel pays out; money coming in is read from camt.054".into());
        }
        CreditorAccount::of(record).map(drop)
    }

    /// No I/O: the payment waits for the next cut-off, which puts it in a file.
    async fn send(_: &Engine, _: &Channel, _: &Record) -> SendOutcome {
        SendOutcome::NotSent("queued for the next bank file".to_owned())
    }

    async fn query(_: &Engine, _: &Channel, _: &Record) -> QueryOutcome {
        QueryOutcome::Unknown(WAITING.to_owned())
    }

    /// Never sent again by the engine: the cut-off worker puts it in a file once.
    async fn recover(_: &Engine, _: &Channel, _: &Record) -> Recovery {
        Recovery::Query(QueryOutcome::Unknown(WAITING.to_owned()))
    }

    fn read_callback(_: &str, _: &[u8]) -> Result<StatusReport, ParseError> {
        Err(ParseError::Unexpected("a bank sends files, not callbacks".to_owned()))
    }

    /// Nothing to register: the bank's camt.054 credits arrive with the other files.
    async fn register_unprompted(_: &Engine, _: &Channel) -> Result<(), PaymentError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().to_utc()
    }

    fn details(cut_offs: &[&str], offset: &str) -> Result<BankDetails, PaymentError> {
        let cut_offs: Vec<String> = cut_offs.iter().map(|t| (*t).to_owned()).collect();
        BankDetails::parse("Hazina Ltd", "KCBLKENX", &cut_offs, offset)
    }

    #[test]
    fn the_next_cut_off_is_the_first_scheduled_time_after_in_the_channel_s_offset() {
        let nairobi = details(&["15:00", "10:00"], "+03:00").unwrap();
        assert_eq!(nairobi.cut_off_times(), ["10:00", "15:00"]);
        assert_eq!(nairobi.utc_offset(), "+03:00");
        // 06:59 UTC is 09:59 in Nairobi: today's 10:00 (07:00 UTC).
        assert_eq!(nairobi.next_cut_off(at("2026-03-02T06:59:00Z")), at("2026-03-02T07:00:00Z"));
        // Exactly at a cut-off: the next one.
        assert_eq!(nairobi.next_cut_off(at("2026-03-02T07:00:00Z")), at("2026-03-02T12:00:00Z"));
        // After the last: tomorrow's first.
        assert_eq!(nairobi.next_cut_off(at("2026-03-02T12:00:00Z")), at("2026-03-03T07:00:00Z"));
        // 22:30 UTC is already tomorrow in Nairobi (01:30).
        assert_eq!(nairobi.next_cut_off(at("2026-03-02T22:30:00Z")), at("2026-03-03T07:00:00Z"));
        assert_eq!(nairobi.execution_date(at("2026-03-02T22:30:00Z")).to_string(), "2026-03-03");
        let new_york = details(&["23:30"], "-05:00").unwrap();
        assert_eq!(new_york.next_cut_off(at("2026-03-02T12:00:00Z")), at("2026-03-03T04:30:00Z"));
    }

    #[test]
    fn a_schedule_is_refused_with_a_stable_code() {
        for (cut_offs, offset) in [
            (&[][..], "+03:00"),
            (&["25:00"][..], "+03:00"),
            (&["9:00"][..], "+03:00"),
            (&["10:00", "10:00"][..], "+03:00"),
            (&["10:00"][..], "03:00"),
            (&["10:00"][..], "+15:00"),
            (&["10:00"][..], "+03:60"),
        ] {
            let error = details(cut_offs, offset).unwrap_err();
            assert_eq!(error.code(), Code::InvalidCutOff, "{cut_offs:?} {offset}");
        }
        let cut_offs = vec!["10:00".to_owned()];
        let bic = BankDetails::parse("Hazina", "KCB", &cut_offs, "+03:00").unwrap_err();
        assert_eq!(bic.code(), Code::InvalidBic);
        let name = BankDetails::parse(" ", "KCBLKENX", &cut_offs, "+03:00").unwrap_err();
        assert_eq!(name.code(), Code::InvalidName);
    }

    #[test]
    fn a_creditor_needs_a_valid_account_and_a_name() {
        let creditor = CreditorAccount::parse("nl91 abna 0417 1643 00", " Jane ", None).unwrap();
        assert_eq!(creditor.account, "NL91ABNA0417164300");
        assert_eq!(creditor.name, "Jane");
        let code = |account: &str, name: &str, bic| {
            CreditorAccount::parse(account, name, bic).unwrap_err().code()
        };
        assert_eq!(code("NL91ABNA0417164301", "Jane", None), Code::InvalidBankAccount);
        assert_eq!(code("12-34", "Jane", None), Code::InvalidBankAccount);
        assert_eq!(code("0123456789", "", None), Code::InvalidName);
        assert_eq!(code("0123456789", "Jane", Some("XX")), Code::InvalidBic);
    }
}

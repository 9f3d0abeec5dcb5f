//! A bank at the other end of a file exchange: it takes each pain.001 from a channel's `out/`
//! directory (as an SFTP agent would), answers with a pain.002 in `in/` — accepting each
//! transfer, or rejecting it by a rule (a creditor account starting with a prefix: `AC01`;
//! an amount beyond a limit: `AM02`) — and books the accepted ones in a camt.054 debit
//! notification. Tests make it write a camt.054 credit (a collection) or any booking of their
//! own. Its files are ISO 20022 shapes our parsers read, written with escaped text, into a
//! hidden temporary file renamed into place so a reader never sees half of one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::Utc;
use hazina_providers::iso20022::{bank, pain001};
use hazina_providers::money::Money;

/// How the bank answers.
#[derive(Clone, Debug)]
pub struct Rules {
    /// Transfers to a creditor account starting with this are rejected (`AC01`, incorrect
    /// account number).
    pub reject_account_prefix: Option<String>,
    /// Transfers above this amount (in their own currency) are rejected (`AM02`, not allowed
    /// amount).
    pub limit: Option<Money>,
    /// Whether accepted transfers are booked in a camt.054 right after the pain.002.
    pub book: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Self { reject_account_prefix: None, limit: None, book: true }
    }
}

/// One pain.001 the bank answered.
#[derive(Clone, Debug)]
pub struct Answered {
    pub message_id: String,
    /// The end-to-end ids accepted, with their amounts.
    pub accepted: Vec<(String, Money)>,
    /// The end-to-end ids rejected, with the reason code.
    pub rejected: Vec<(String, String)>,
    pub status_report: PathBuf,
    pub notification: Option<PathBuf>,
}

/// A booking to notify (`camt.054`): money out (a debit, with our end-to-end id) or in (a
/// credit, with the payer's remittance).
#[derive(Clone, Debug)]
pub struct Booking {
    pub credit: bool,
    pub amount: Money,
    pub end_to_end_id: Option<String>,
    pub bank_reference: String,
    pub remittance: Option<String>,
    pub debtor_name: Option<String>,
    pub debtor_account: Option<String>,
}

/// The simulated bank over an exchange directory (`<root>/<channel id>/out` and `in`).
#[derive(Debug)]
pub struct Bank {
    root: PathBuf,
    rules: Mutex<Rules>,
    sequence: AtomicU64,
}

impl Bank {
    /// A bank answering every channel under `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into(), rules: Mutex::new(Rules::default()), sequence: AtomicU64::new(0) }
    }

    /// Replaces how it answers.
    pub fn set_rules(&self, rules: Rules) {
        *self.rules.lock().unwrap_or_else(PoisonError::into_inner) = rules;
    }

    fn rules(&self) -> Rules {
        self.rules.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// A fresh id for a message or booking (`SIM…`).
    fn next_id(&self, what: &str) -> String {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        format!("SIM{what}{}{n:06}", Utc::now().format("%Y%m%d%H%M%S"))
    }

    /// Takes and answers every pain.001 waiting in every channel's `out/`.
    ///
    /// # Errors
    ///
    /// The file system's; a file that is not a pain.001 we read is moved to `rejected/` beside
    /// `out/` and left unanswered.
    pub fn process(&self) -> std::io::Result<Vec<Answered>> {
        let mut answered = Vec::new();
        let channels = match std::fs::read_dir(&self.root) {
            Ok(channels) => channels,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(answered),
            Err(error) => return Err(error),
        };
        let mut dirs: Vec<PathBuf> = channels
            .filter_map(Result::ok)
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
            .map(|entry| entry.path())
            .collect();
        dirs.sort();
        for dir in dirs {
            answered.extend(self.process_channel(&dir)?);
        }
        Ok(answered)
    }

    /// Takes and answers the pain.001 files in one channel's `out/`, oldest name first.
    ///
    /// # Errors
    ///
    /// The file system's.
    pub fn process_channel(&self, channel_dir: &Path) -> std::io::Result<Vec<Answered>> {
        let out = channel_dir.join("out");
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&out) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
                .map(|entry| entry.path())
                .filter(|path| {
                    let name = path.file_name().unwrap_or_default().to_string_lossy();
                    !name.starts_with('.') && name.ends_with(".xml")
                })
                .collect(),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(error) => return Err(error),
        };
        files.sort();
        let mut answered = Vec::new();
        for path in files {
            let text = std::fs::read_to_string(&path)?;
            let name = path.file_name().unwrap_or_default().to_owned();
            let Ok(initiation) = pain001::parse(&text) else {
                let rejected = channel_dir.join("bank").join("rejected");
                std::fs::create_dir_all(&rejected)?;
                std::fs::rename(&path, rejected.join(name))?;
                continue;
            };
            // Taken: as an agent moves a file it delivered.
            let taken = channel_dir.join("bank").join("taken");
            std::fs::create_dir_all(&taken)?;
            std::fs::rename(&path, taken.join(&name))?;
            answered.push(self.answer(channel_dir, &initiation)?);
        }
        Ok(answered)
    }

    fn answer(
        &self,
        channel_dir: &Path,
        initiation: &pain001::InitiationSummary,
    ) -> std::io::Result<Answered> {
        let rules = self.rules();
        let mut accepted = Vec::new();
        let mut rejected = Vec::new();
        let mut transactions = String::new();
        let mut account = None;
        let mut payment_information = String::new();
        for payment in &initiation.payments {
            payment_information.clone_from(&payment.payment_information_id);
            account = account.or(payment.debtor_iban.clone());
            for transfer in &payment.transfers {
                let creditor = transfer.creditor_iban.as_deref().unwrap_or_default();
                let refused = if rules
                    .reject_account_prefix
                    .as_deref()
                    .is_some_and(|prefix| creditor.starts_with(prefix))
                {
                    Some(("AC01", "Incorrect account number"))
                } else if rules.limit.is_some_and(|limit| {
                    limit.currency() == transfer.amount.currency()
                        && transfer.amount.amount() > limit.amount()
                }) {
                    Some(("AM02", "Not allowed amount"))
                } else {
                    None
                };
                let id = &transfer.end_to_end_id;
                let amount = &transfer.amount;
                let reason = if let Some((code, words)) = refused {
                    rejected.push((id.clone(), code.to_owned()));
                    format!(
                        "<TxSts>RJCT</TxSts><StsRsnInf><Rsn><Cd>{code}</Cd></Rsn>\
                         <AddtlInf>{}</AddtlInf></StsRsnInf>",
                        escape(words)
                    )
                } else {
                    accepted.push((id.clone(), *amount));
                    "<TxSts>ACCP</TxSts>".to_owned()
                };
                let _ = write!(
                    transactions,
                    "\n      <TxInfAndSts><OrgnlEndToEndId>{}</OrgnlEndToEndId>{reason}\
                     <OrgnlTxRef><Amt><InstdAmt Ccy=\"{}\">{}</InstdAmt></Amt></OrgnlTxRef>\
                     </TxInfAndSts>",
                    escape(id),
                    amount.currency().code(),
                    amount.amount()
                );
            }
        }
        let group = match (accepted.is_empty(), rejected.is_empty()) {
            (false, true) => "ACCP",
            (true, false) => "RJCT",
            _ => "PART",
        };
        let report_id = self.next_id("R");
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:pain.002.001.03\">\n\
             <CstmrPmtStsRpt>\n  <GrpHdr><MsgId>{report_id}</MsgId><CreDtTm>{}</CreDtTm></GrpHdr>\n  \
             <OrgnlGrpInfAndSts><OrgnlMsgId>{}</OrgnlMsgId><OrgnlMsgNmId>{}</OrgnlMsgNmId>\
             <GrpSts>{group}</GrpSts></OrgnlGrpInfAndSts>\n  \
             <OrgnlPmtInfAndSts><OrgnlPmtInfId>{}</OrgnlPmtInfId>{transactions}\n  \
             </OrgnlPmtInfAndSts>\n</CstmrPmtStsRpt>\n</Document>\n",
            now(),
            escape(&initiation.message_id),
            escape(&initiation.message_name),
            escape(&payment_information),
        );
        let inbound = channel_dir.join("in");
        let status_report = write_atomically(&inbound, &format!("{report_id}.pain002.xml"), &xml)?;
        let notification = if rules.book && !accepted.is_empty() {
            let bookings: Vec<Booking> = accepted
                .iter()
                .map(|(id, amount)| Booking {
                    credit: false,
                    amount: *amount,
                    end_to_end_id: Some(id.clone()),
                    bank_reference: self.next_id("B"),
                    remittance: None,
                    debtor_name: None,
                    debtor_account: None,
                })
                .collect();
            let account = account.unwrap_or_default();
            Some(self.notify(channel_dir, &account, &bookings)?)
        } else {
            None
        };
        Ok(Answered {
            message_id: initiation.message_id.clone(),
            accepted,
            rejected,
            status_report,
            notification,
        })
    }

    /// Writes a camt.054 notification of `bookings` on `account` into the channel's `in/`.
    ///
    /// # Errors
    ///
    /// The file system's.
    pub fn notify(
        &self,
        channel_dir: &Path,
        account: &str,
        bookings: &[Booking],
    ) -> std::io::Result<PathBuf> {
        let message_id = self.next_id("N");
        let currency = bookings.first().map_or("EUR", |booking| booking.amount.currency().code());
        let today = Utc::now().format("%Y-%m-%d");
        let mut entries = String::new();
        for booking in bookings {
            let (side, family) = if booking.credit { ("CRDT", "RCDT") } else { ("DBIT", "ICDT") };
            let reference = escape(&booking.bank_reference);
            let end_to_end = booking.end_to_end_id.as_deref().unwrap_or("NOTPROVIDED");
            let mut details = format!(
                "<Refs><AcctSvcrRef>{reference}</AcctSvcrRef><EndToEndId>{}</EndToEndId></Refs>",
                escape(end_to_end)
            );
            if booking.debtor_name.is_some() || booking.debtor_account.is_some() {
                details.push_str("<RltdPties>");
                if let Some(name) = &booking.debtor_name {
                    let _ = write!(details, "<Dbtr><Nm>{}</Nm></Dbtr>", escape(name));
                }
                if let Some(account) = &booking.debtor_account {
                    details.push_str(&account_element("DbtrAcct", account));
                }
                details.push_str("</RltdPties>");
            }
            if let Some(remittance) = &booking.remittance {
                let _ = write!(details, "<RmtInf><Ustrd>{}</Ustrd></RmtInf>", escape(remittance));
            }
            let _ = write!(
                entries,
                "\n    <Ntry><Amt Ccy=\"{}\">{}</Amt><CdtDbtInd>{side}</CdtDbtInd><Sts>BOOK</Sts>\
                 <BookgDt><Dt>{today}</Dt></BookgDt><ValDt><Dt>{today}</Dt></ValDt>\
                 <AcctSvcrRef>{reference}</AcctSvcrRef>\
                 <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>{family}</Cd><SubFmlyCd>ESCT</SubFmlyCd>\
                 </Fmly></Domn></BkTxCd><NtryDtls><TxDtls>{details}</TxDtls></NtryDtls></Ntry>",
                booking.amount.currency().code(),
                booking.amount.amount(),
            );
        }
        let xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\
             <Document xmlns=\"urn:iso:std:iso:20022:tech:xsd:camt.054.001.02\">\n\
             <BkToCstmrDbtCdtNtfctn>\n  <GrpHdr><MsgId>{message_id}</MsgId><CreDtTm>{now}</CreDtTm></GrpHdr>\n  \
             <Ntfctn><Id>{message_id}</Id><CreDtTm>{now}</CreDtTm>\
             <Acct>{account}<Ccy>{currency}</Ccy></Acct>{entries}\n  </Ntfctn>\n\
             </BkToCstmrDbtCdtNtfctn>\n</Document>\n",
            now = now(),
            account = account_id(account),
        );
        write_atomically(&channel_dir.join("in"), &format!("{message_id}.camt054.xml"), &xml)
    }

    /// Writes a camt.054 credit of `amount` on `account` (a collection), with the payer's
    /// remittance `reference`, under the bank's reference `bank_reference`.
    ///
    /// # Errors
    ///
    /// The file system's.
    pub fn credit(
        &self,
        channel_dir: &Path,
        account: &str,
        amount: Money,
        reference: &str,
        bank_reference: &str,
    ) -> std::io::Result<PathBuf> {
        let booking = Booking {
            credit: true,
            amount,
            end_to_end_id: None,
            bank_reference: bank_reference.to_owned(),
            remittance: Some(reference.to_owned()),
            debtor_name: Some("Simulated Payer".to_owned()),
            debtor_account: Some("DE89370400440532013000".to_owned()),
        };
        self.notify(channel_dir, account, &[booking])
    }

    /// Answers every channel's files every `every` until the task is dropped (for `hazina
    /// serve --simulate`; tests call [`Bank::process`] themselves).
    pub fn spawn(self: Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            loop {
                let bank = Arc::clone(&self);
                match tokio::task::spawn_blocking(move || bank.process()).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(error)) => tracing::warn!(error = %error, "the bank simulator failed"),
                    Err(error) => tracing::warn!(error = %error, "the bank simulator panicked"),
                }
                tokio::time::sleep(every).await;
            }
        })
    }
}

/// An account's `<Id>`: `<IBAN>` for an IBAN, `<Othr><Id>` otherwise.
fn account_id(account: &str) -> String {
    if bank::is_iban(account) {
        format!("<Id><IBAN>{}</IBAN></Id>", escape(account))
    } else {
        format!("<Id><Othr><Id>{}</Id></Othr></Id>", escape(account))
    }
}

fn account_element(element: &str, account: &str) -> String {
    format!("<{element}>{}</{element}>", account_id(account))
}

fn now() -> String {
    Utc::now().format("%Y-%m-%dT%H:%M:%S").to_string()
}

/// Text as XML character data or an attribute value.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Writes `dir/name` whole: a hidden temporary file renamed into place.
fn write_atomically(dir: &Path, name: &str, contents: &str) -> std::io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let temporary = dir.join(format!(".{name}.tmp"));
    std::fs::write(&temporary, contents)?;
    let path = dir.join(name);
    std::fs::rename(&temporary, &path)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::{NaiveDate, TimeZone};
    use hazina_providers::iso20022::bank::Inbound;
    use hazina_providers::iso20022::pain001::{Debtor, PayoutBatch, Transfer};
    use hazina_providers::money::Currency;
    use hazina_providers::{Status, iso20022};

    use super::*;

    fn eur(amount: &str) -> Money {
        Money::parse(Currency::from_code("EUR").unwrap(), amount).unwrap()
    }

    fn transfer(id: &str, account: &str, amount: &str) -> Transfer {
        Transfer {
            end_to_end_id: id.to_owned(),
            amount: eur(amount),
            creditor_name: "A & B <Ltd>".to_owned(),
            creditor_iban: account.to_owned(),
            creditor_bic: None,
            remittance: Some("Invoice \"7\"".to_owned()),
        }
    }

    #[test]
    fn the_bank_answers_a_pain001_with_a_pain002_and_books_the_accepted() {
        let root = std::env::temp_dir().join(format!("hazina-sim-bank-{}", uuid::Uuid::now_v7()));
        let channel = root.join("channel");
        let batch = PayoutBatch {
            message_id: "MSG-1".to_owned(),
            created_at: Utc.with_ymd_and_hms(2026, 3, 2, 7, 0, 0).unwrap(),
            debtor: Debtor {
                name: "Hazina".to_owned(),
                iban: "NL91ABNA0417164300".to_owned(),
                bic: "ABNANL2A".to_owned(),
            },
            execution_date: NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(),
            transfers: vec![
                transfer("E1", "DE89370400440532013000", "10.00"),
                transfer("E2", "GB29NWBK60161331926819", "5.00"),
                transfer("E3", "DE89370400440532013000", "900.00"),
            ],
        };
        write_atomically(&channel.join("out"), "MSG-1.xml", &pain001::build(&batch).unwrap())
            .unwrap();
        let bank = Bank::new(&root);
        bank.set_rules(Rules {
            reject_account_prefix: Some("GB".to_owned()),
            limit: Some(eur("500")),
            book: true,
        });
        let answered = bank.process().unwrap();
        assert_eq!(answered.len(), 1);
        assert!(!channel.join("out/MSG-1.xml").exists(), "the file was taken");
        let answer = &answered[0];
        assert_eq!(answer.accepted.iter().map(|a| a.0.as_str()).collect::<Vec<_>>(), ["E1"]);
        assert_eq!(answer.rejected, [("E2".into(), "AC01".into()), ("E3".into(), "AM02".into())]);
        let report = std::fs::read_to_string(&answer.status_report).unwrap();
        let Inbound::StatusReport(report) = iso20022::bank::read(&report).unwrap() else {
            panic!("not a pain.002")
        };
        assert_eq!(report.original_message_id, "MSG-1");
        assert_eq!(report.group_status.as_deref(), Some("PART"));
        let statuses: Vec<_> = report
            .status_reports()
            .into_iter()
            .map(|r| (r.our_reference.unwrap(), r.status, r.code, r.amount))
            .collect();
        assert_eq!(
            statuses[0],
            ("E1".into(), Status::Pending, Some("ACCP".into()), Some(eur("10")))
        );
        assert_eq!(statuses[1].1, Status::Failed);
        assert_eq!(statuses[1].2.as_deref(), Some("AC01"));
        let notification = std::fs::read_to_string(answer.notification.as_ref().unwrap()).unwrap();
        let Inbound::Account(document) = iso20022::bank::read(&notification).unwrap() else {
            panic!("not a camt")
        };
        let statement = &document.statements[0];
        assert_eq!(statement.account.iban.as_deref(), Some("NL91ABNA0417164300"));
        let bookings = iso20022::bank::bookings(statement);
        assert_eq!(bookings.len(), 1);
        assert!(bookings[0].is_payout_settlement());
        assert_eq!(bookings[0].end_to_end_id.as_deref(), Some("E1"));
        assert_eq!(bookings[0].amount, Some(eur("10")));
        // A collection, with text that needs escaping, reads back as written.
        let credit =
            bank.credit(&channel, "0123456789", eur("7.50"), "CUST <42> & co", "BREF-1").unwrap();
        let Inbound::Account(document) =
            iso20022::bank::read(&std::fs::read_to_string(credit).unwrap()).unwrap()
        else {
            panic!("not a camt")
        };
        assert_eq!(document.statements[0].account.other_id.as_deref(), Some("0123456789"));
        let bookings = iso20022::bank::bookings(&document.statements[0]);
        assert!(bookings[0].is_collection());
        assert_eq!(bookings[0].remittance, ["CUST <42> & co"]);
        assert_eq!(bookings[0].bank_reference.as_deref(), Some("BREF-1"));
        std::fs::remove_dir_all(&root).unwrap();
    }
}

//! Payments through a provider: payouts to a customer's mobile money (B2C), collections from it
//! (C2B checkout) and payments customers make unprompted (C2B confirmations).
//!
//! A payment's life is a row of `provider_payments` (migration 0005) plus, in the ledger, a
//! pending transfer under the payment's id. The rules of what moves money are the pure state
//! machine [`hazina_providers::lifecycle`]; this module stores its state, feeds it what the
//! provider says (the response to our request, callbacks, status replies) and carries out what
//! it decides:
//!
//! 1. the row is written first (`reserving`), then the pending transfer reserves the money;
//! 2. the row says `sending` before the request leaves, so that after a crash we know the
//!    request may have reached the provider: it is then asked about (or sent again under the
//!    same key where the provider deduplicates), never sent under a new key;
//! 3. every later event is applied under the row's lock: the ledger first (posting or voiding
//!    under ids derived from the payment's, so a repeat is a replay), then the row.
//!
//! [`Engine::run_due`] is the worker's round (`worker.rs`): it asks the provider about every
//! payment whose next attempt is due, with exponential backoff, so a payment whose callback
//! never comes still converges.
//!
//! Here: the engine, starting a payment and applying what the provider said. Beside it: the
//! stored payment (`record.rs`), channels (`channels.rs`), callbacks taken and matched
//! (`callbacks.rs`), received payments (`received.rs`), the worker's round (`worker.rs`), the
//! `Adapter` each provider implements (`provider.rs`) and the providers (`mpesa.rs`,
//! `momo.rs`, `airtime.rs`, and banks through ISO 20022 files: `bank.rs`, `bank_files.rs`).

pub(crate) mod airtime;
mod bank;
mod bank_files;
mod callbacks;
mod channels;
mod error;
pub(crate) mod momo;
pub(crate) mod mpesa;
pub(crate) mod provider;
mod received;
mod record;
mod status;
mod stuck;
mod worker;

pub use bank::{BankDetails, CreditorAccount};
pub use bank_files::{BankFile, FILES_LISTED_MAX};
pub use callbacks::Callback;
pub use channels::{CHANNEL_NUMBER_LEN_MAX, Channel, ChannelSummary, NewChannel, Provider};
pub use error::PaymentError;
pub use record::{Flow, Record, Stage, StatusChange};
pub use status::PaymentStatus;
pub use stuck::{ManualSettlement, Settlement, posting_transfer_id};

use provider::{Adapter as _, adapter};

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use chrono::Utc;
use deadpool_postgres::Pool;
use hazina_ledger::context;
use hazina_ledger::pipeline::Pipeline;
use hazina_ledger::rules::{Action, Outcome, Posting, RejectReason, Side, TransferRequest};
use hazina_ledger::{AccountId, Money, OrgId, TransferId};
use hazina_providers::StatusReport;
use hazina_providers::http::HttpClient;
use hazina_providers::lifecycle::{self, Event, Settled};
use uuid::Uuid;

use crate::code::Code;
use crate::events::types::{Amount, PaymentStatusData};
use crate::events::{self, EventType, NewEvent};
use crate::secrets::Sealer;

/// Namespace of the ids of the transfers that post or void a payment's reservation, and of
/// received payments' transfers.
const TRANSFER_NAMESPACE: Uuid = Uuid::from_u128(0x6861_7a69_6e61_0005_8000_0000_0000_0001);

/// How long an STK push whose sending had an unknown outcome waits for its callback before it
/// is taken as expired: Daraja's prompts time out after about a minute.
const STK_UNKNOWN_EXPIRY: chrono::TimeDelta = chrono::TimeDelta::minutes(10);

/// How much longer than [`Settings::respond_within`] a request handler holds a new payment.
const HANDLER_LEASE_MARGIN: Duration = Duration::from_secs(5);

/// Most due payments one worker pass takes.
pub const DUE_BATCH_MAX: i64 = 100;

/// When and how the engine asks providers, and where providers call back.
#[derive(Clone, Debug)]
pub struct Settings {
    /// The address providers reach this server at, for callback URLs (no trailing slash).
    pub public_url: String,
    /// The first status query after a request is answered; later ones double, up to
    /// `query_interval_max`.
    pub first_query: Duration,
    pub query_interval_max: Duration,
    /// How long the worker owns a payment it is working on before another process may take
    /// it over: longer than a provider call can take.
    pub lease: Duration,
    /// How long a `POST /v1/payments` waits for the provider before answering with the payment
    /// as it is (the worker carries it on); a process that dies meanwhile gives the payment up
    /// a few seconds after this.
    pub respond_within: Duration,
    /// How often the worker looks for due payments.
    pub poll_interval: Duration,
    /// Which provider addresses channels may name.
    pub provider_hosts: ProviderHosts,
    /// Where bank channels exchange files: one folder per channel id, with `out/` (pain.001
    /// for the bank) and `in/` (its pain.002 and camt.054). The operator's, never the API's.
    pub bank_exchange_dir: std::path::PathBuf,
}

/// Which addresses the engine may send provider requests (and channel credentials) to: https
/// to a provider's known hosts by default, anything else only as the operator allows.
#[derive(Clone, Debug, Default)]
pub struct ProviderHosts {
    /// More hosts, https only (`--allow-provider-host`).
    pub extra: Vec<String>,
    /// Any http or https address (`--allow-any-provider-url`): the operator's explicit choice.
    pub any: bool,
    /// The address this server listens on, when it serves the simulators there
    /// (`http://ADDRESS/simulator/…`, through loopback or that address).
    pub simulators: Option<std::net::SocketAddr>,
}

impl ProviderHosts {
    /// The hosts each provider publishes its API at (production and sandbox).
    fn known(provider: Provider) -> &'static [&'static str] {
        match provider {
            Provider::Mpesa => &["api.safaricom.co.ke", "sandbox.safaricom.co.ke"],
            Provider::Momo => &["proxy.momoapi.mtn.com", "sandbox.momodeveloper.mtn.com"],
            Provider::Africastalking => {
                &["api.africastalking.com", "api.sandbox.africastalking.com"]
            }
            Provider::Bank => &[],
        }
    }

    /// Whether a channel of `provider` may call `url`; why not, when it may not.
    ///
    /// # Errors
    ///
    /// The reason, for the operator: not https, or a host that is not the provider's.
    pub fn check(&self, provider: Provider, url: &str) -> Result<(), String> {
        if provider == Provider::Bank {
            // A bank channel calls nothing: its files go through the exchange directory.
            return Ok(());
        }
        self.check_known(Self::known(provider), url)
    }

    /// Whether a channel whose provider publishes its API at `known` hosts may call `url`.
    ///
    /// # Errors
    ///
    /// The reason, for the operator: not https, or a host that is not the provider's.
    pub fn check_known(&self, known: &[&str], url: &str) -> Result<(), String> {
        let parsed =
            reqwest::Url::parse(url.trim()).map_err(|error| format!("not a URL: {error}"))?;
        if self.any && matches!(parsed.scheme(), "http" | "https") {
            return Ok(());
        }
        if let Some(listening) = self.simulators {
            let host = parsed.host_str().unwrap_or_default();
            let host = host.trim_start_matches('[').trim_end_matches(']');
            let ours = host.eq_ignore_ascii_case("localhost")
                || host
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback() || ip == listening.ip());
            let simulator = parsed.path().starts_with("/simulator/");
            if ours && simulator && parsed.port() == Some(listening.port()) {
                return Ok(());
            }
        }
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        let allowed = known.contains(&host.as_str())
            || self.extra.iter().any(|extra| extra.eq_ignore_ascii_case(&host));
        if parsed.scheme() != "https" || !parsed.username().is_empty() || !allowed {
            return Err(format!(
                "a channel calls https://{} (or a host the operator allows with \
                 --allow-provider-host), not {url}",
                known.join(" or https://")
            ));
        }
        Ok(())
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".to_owned(),
            first_query: Duration::from_secs(30),
            query_interval_max: Duration::from_secs(30 * 60),
            lease: Duration::from_secs(90),
            respond_within: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            provider_hosts: ProviderHosts::default(),
            bank_exchange_dir: std::path::PathBuf::from("./.hazina/bank-exchange"),
        }
    }
}

/// What a provider answered to our request.
#[derive(Debug)]
pub enum SendOutcome {
    /// Taken, with the provider's reference for it when it gives one.
    Accepted(Option<String>),
    /// Refused outright: nothing was or will be paid.
    Refused { code: String, description: String },
    /// An earlier request under our key exists: its outcome counts.
    Duplicate,
    /// It may have reached the provider; the outcome is unknown.
    Unknown(String),
    /// It certainly did not leave (no token, an invalid request): try again later.
    NotSent(String),
}

/// What a status query gave.
#[derive(Debug)]
pub enum QueryOutcome {
    /// The provider's answer.
    Reply(StatusReport),
    /// The answer comes later, by callback (M-Pesa's transaction status).
    Asked,
    /// The provider has no record of the request under our key: it never arrived.
    NeverArrived,
    /// No usable answer this time.
    Unknown(String),
}

/// The engine: stores payments, talks to providers, applies what they say.
#[derive(Debug)]
pub struct Engine {
    pool: Pool,
    pipeline: Pipeline,
    http: HttpClient,
    settings: RwLock<Settings>,
    sealer: Sealer,
    mpesa_clients: Mutex<HashMap<Uuid, Arc<hazina_providers::mpesa_client::Client>>>,
    momo_clients: Mutex<HashMap<(Uuid, bool), Arc<hazina_providers::momo_client::Client>>>,
    wake: tokio::sync::Notify,
}

impl Engine {
    /// An engine whose channel credentials are sealed with `sealer`.
    pub fn new(pool: Pool, pipeline: Pipeline, sealer: Sealer) -> Self {
        Self {
            pool,
            pipeline,
            http: HttpClient::default(),
            settings: RwLock::new(Settings::default()),
            sealer,
            mpesa_clients: Mutex::default(),
            momo_clients: Mutex::default(),
            wake: tokio::sync::Notify::new(),
        }
    }

    /// Replaces the settings (at startup, once the listening address is known).
    pub fn configure(&self, settings: Settings) {
        *self.settings.write().unwrap_or_else(PoisonError::into_inner) = settings;
    }

    pub fn settings(&self) -> Settings {
        self.settings.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Where the provider calls back about `kind` of this channel (and payment).
    fn callback_url(&self, channel: &Channel, kind: &str, payment: Option<Uuid>) -> String {
        let base = self.settings().public_url;
        let provider = match channel.provider {
            Provider::Mpesa => "mpesa",
            Provider::Momo => "momo",
            Provider::Africastalking => "africastalking-airtime",
            Provider::Bank => "bank",
        };
        let mut url = format!(
            "{}/callbacks/{provider}/{}/{}/{kind}",
            base.trim_end_matches('/'),
            channel.id,
            channel.token
        );
        if let Some(payment) = payment {
            url.push('/');
            url.push_str(&payment.to_string());
        }
        url
    }

    /// The org's channel with this provider name and number.
    pub async fn channel_by_number(
        &self,
        org: OrgId,
        number: &str,
    ) -> Result<Option<Channel>, PaymentError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM payment_channels WHERE org_id = $1 AND channel_number = $2
                     ORDER BY id",
                    Channel::COLUMNS
                ),
                &[&org.0, &number],
            )
            .await?;
        if rows.len() > 1 {
            return Err(PaymentError::invalid(
                Code::AmbiguousChannelNumber,
                "two of the org's channels have this number; name the channel by its id",
            ));
        }
        rows.first().map(|row| Channel::from_row(row, &self.sealer)).transpose()
    }

    /// The org's channel by id.
    pub async fn channel(&self, org: OrgId, id: Uuid) -> Result<Option<Channel>, PaymentError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!(
                    "SELECT {} FROM payment_channels WHERE org_id = $1 AND id = $2",
                    Channel::COLUMNS
                ),
                &[&org.0, &id],
            )
            .await?;
        row.as_ref().map(|row| Channel::from_row(row, &self.sealer)).transpose()
    }

    /// The treasury limits of those of `accounts` that are the org's channels' clearing
    /// accounts: the most an org key may move out of each in one transfer.
    pub async fn treasury_limits(
        &self,
        org: OrgId,
        accounts: &[AccountId],
    ) -> Result<HashMap<AccountId, Money>, PaymentError> {
        if accounts.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<Uuid> = accounts.iter().map(|account| account.0).collect();
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT clearing_account_id, currency, treasury_limit_minor FROM payment_channels
                 WHERE org_id = $1 AND clearing_account_id = ANY($2)",
                &[&org.0, &ids],
            )
            .await?;
        rows.iter()
            .map(|row| {
                let currency = error::stored_currency(row.get(1))?;
                Ok((AccountId(row.get(0)), Money::from_minor(currency, row.get(2))))
            })
            .collect()
    }

    /// How many payments are held for review, in every org (for the operator's metrics).
    ///
    /// Across orgs by nature, a sweep of every org's rows: a count for the operator, no lock
    /// and no write, which a database distributed by org answers from every shard at once.
    pub async fn held_count(&self) -> Result<i64, PaymentError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one("SELECT count(*) FROM provider_payments WHERE stage = 'review'", &[])
            .await?;
        Ok(row.get(0))
    }

    /// A payment by id, within the org.
    pub async fn record(&self, org: OrgId, id: Uuid) -> Result<Option<Record>, PaymentError> {
        Ok(self.records(org, &[id]).await?.pop())
    }

    /// The payments with these ids (those that went through a provider).
    pub async fn records(&self, org: OrgId, ids: &[Uuid]) -> Result<Vec<Record>, PaymentError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {} FROM provider_payments WHERE id = ANY($1) AND org_id = $2",
                    Record::COLUMNS
                ),
                &[&ids, &org.0],
            )
            .await?;
        rows.iter().map(Record::from_row).collect()
    }

    /// A payment's statuses, oldest first.
    pub async fn status_changes(
        &self,
        org: OrgId,
        id: Uuid,
    ) -> Result<Vec<StatusChange>, PaymentError> {
        Ok(self.status_changes_of(org, &[id]).await?.remove(&id).unwrap_or_default())
    }

    /// The statuses of these payments, each oldest first.
    pub async fn status_changes_of(
        &self,
        org: OrgId,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, Vec<StatusChange>>, PaymentError> {
        let mut changes: HashMap<Uuid, Vec<StatusChange>> = HashMap::new();
        if ids.is_empty() {
            return Ok(changes);
        }
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT payment_id, status, at, source, provider_code, description
                 FROM provider_payment_events WHERE org_id = $2 AND payment_id = ANY($1)
                 ORDER BY payment_id, seq",
                &[&ids, &org.0],
            )
            .await?;
        for row in &rows {
            changes.entry(row.get(0)).or_default().push(StatusChange {
                status: PaymentStatus::from_stored(row.get(1))?,
                at: row.get(2),
                source: row.get(3),
                provider_code: row.get(4),
                description: row.get(5),
            });
        }
        Ok(changes)
    }

    // --- Starting a payment ---------------------------------------------------------------

    /// Whether the provider would take this payment at all (its amount, number and fields),
    /// so that a request it must refuse is refused before anything is reserved.
    pub fn check(&self, new: &NewProviderPayment) -> Result<(), String> {
        let now = Utc::now();
        let draft = Record {
            id: new.id,
            org: new.org,
            app: new.app,
            channel: new.channel.id,
            flow: new.flow,
            customer: new.customer,
            msisdn: new.msisdn.clone(),
            account: new.account,
            amount: new.amount,
            our_reference: new.our_reference.clone(),
            stage: Stage::Reserving,
            status: PaymentStatus::Queued,
            settled: None,
            request_reference: None,
            receipt: None,
            provider_code: None,
            provider_description: None,
            attempts: 0,
            next_attempt_at: None,
            request: new.request.clone(),
            created_at: now,
            updated_at: now,
            alert: None,
        };
        adapter!(new.channel.provider, A => A::check(self, &new.channel, &draft))
    }

    /// Records a new payout or collection, reserves its money and sends it. A payment whose
    /// id exists is not started again: the existing one is returned (`false`), and the
    /// caller compares what was asked.
    pub async fn start(&self, new: NewProviderPayment) -> Result<(Record, bool), PaymentError> {
        let channel = new.channel.clone();
        let respond_within = self.settings().respond_within;
        let lease = respond_within + HANDLER_LEASE_MARGIN;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let inserted = tx
            .query_opt(
                &format!(
                    "INSERT INTO provider_payments (id, org_id, app_id, channel_id, flow,
                         customer_id, msisdn, account_id, currency, amount_minor, our_reference,
                         stage, status, next_attempt_at, request)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'reserving', 'queued',
                         now() + make_interval(secs => $12), $13)
                     ON CONFLICT (org_id, id) DO NOTHING
                     RETURNING {}",
                    Record::COLUMNS
                ),
                &[
                    &new.id,
                    &new.org.0,
                    &new.app,
                    &channel.id,
                    &new.flow.as_str(),
                    &new.customer,
                    &new.msisdn,
                    &new.account.0,
                    &new.amount.currency().code(),
                    &new.amount
                        .to_minor()
                        .map_err(|e| PaymentError::invalid(Code::InvalidAmount, e.to_string()))?,
                    &new.our_reference,
                    &lease.as_secs_f64(),
                    &new.request,
                ],
            )
            .await;
        let row = match inserted {
            Ok(Some(row)) => row,
            Ok(None) => {
                let existing = self
                    .record(new.org, new.id)
                    .await?
                    .ok_or_else(|| PaymentError::invalid(Code::IdAlreadyUsed, "the id is taken"))?;
                return Ok((existing, false));
            }
            Err(error)
                if error.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) =>
            {
                return Err(PaymentError::invalid(
                    Code::DuplicateRequest,
                    "a payment with this reference exists on the channel",
                ));
            }
            Err(error) => return Err(error.into()),
        };
        let record = Record::from_row(&row)?;
        insert_event(&tx, record.org, record.id, PaymentStatus::Queued, "request", None, None)
            .await?;
        tell(&tx, &record, EventType::PaymentStatusChanged, None).await?;
        tx.commit().await?;
        drop(client);
        let id = record.id;
        let sent = tokio::time::timeout(respond_within, self.reserve_and_send(record, &channel));
        if let Ok(record) = sent.await {
            return Ok((record?, true));
        }
        // Stopped mid-way: every step so far is recorded, and the worker takes it from there
        // (a request that may have left is asked about, never sent under a new key).
        self.retry_later(new.org, id, "no answer from the provider in time; carried on").await?;
        Ok((self.read(new.org, id).await?, true))
    }

    /// Reserves the money (when not yet) and sends the request.
    async fn reserve_and_send(
        &self,
        record: Record,
        channel: &Channel,
    ) -> Result<Record, PaymentError> {
        let (debit, credit) = match record.flow {
            Flow::Payout => (record.account, channel.clearing),
            Flow::Collect | Flow::Received => (channel.clearing, record.account),
        };
        let request = TransferRequest {
            id: TransferId(record.id),
            id_is_new: false,
            org: record.org,
            action: Action::Pending {
                postings: vec![
                    Posting { account: debit, side: Side::Debit, amount: record.amount },
                    Posting { account: credit, side: Side::Credit, amount: record.amount },
                ],
                // Never expires: a payout's money stays held until the provider says.
                timeout_ms: None,
            },
            code: format!("provider_{}", record.flow.as_str()),
            effective_at: None,
            context: reservation_context(&record),
        };
        let outcome = self.pipeline.submit(request).await?;
        if let Outcome::Rejected(reason) = outcome {
            return self.refuse_reservation(record.org, record.id, reason).await;
        }
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE provider_payments SET stage = 'sending', updated_at = now()
                 WHERE org_id = $1 AND id = $2 AND stage = 'reserving'",
                &[&record.org.0, &record.id],
            )
            .await?;
        drop(client);
        self.send(record.org, record.id, channel).await
    }

    /// The reservation was refused (insufficient funds, a closed account): the payment ends
    /// without reaching the provider.
    async fn refuse_reservation(
        &self,
        org: OrgId,
        id: Uuid,
        reason: RejectReason,
    ) -> Result<Record, PaymentError> {
        let status = PaymentStatus::of_outcome(Some(reason));
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_one(
                &format!(
                    "UPDATE provider_payments SET stage = 'settled', status = $2, provider_code = $3,
                         next_attempt_at = NULL, updated_at = now()
                     WHERE org_id = $4 AND id = $1 RETURNING {}",
                    Record::COLUMNS
                ),
                &[&id, &status.as_str(), &reason.code(), &org.0],
            )
            .await?;
        let record = Record::from_row(&row)?;
        insert_event(&tx, record.org, id, status, "request", Some(reason.code()), None).await?;
        tell(&tx, &record, EventType::PaymentStatusChanged, Some(PaymentStatus::Queued)).await?;
        tx.commit().await?;
        Ok(record)
    }

    /// Sends the payment's request (under its one key) and applies the answer.
    async fn send(&self, org: OrgId, id: Uuid, channel: &Channel) -> Result<Record, PaymentError> {
        let record = self.read(org, id).await?;
        let allowed = self.settings().provider_hosts.check(channel.provider, &channel.base_url);
        let outcome = match allowed {
            // Nothing leaves for an address the operator no longer allows: kept until they do.
            Err(why) => SendOutcome::NotSent(why),
            Ok(()) => adapter!(channel.provider, A => A::send(self, channel, &record).await),
        };
        tracing::info!(payment = %id, outcome = ?outcome, "provider request sent");
        let (event, stage) = match outcome {
            SendOutcome::Accepted(reference) => {
                (Some(Event::Accepted { request_reference: reference }), Stage::Sent)
            }
            SendOutcome::Refused { code, description } => {
                let event = Event::Refused { code: code.clone() };
                let said = Some(description.as_str());
                return self.apply(org, id, &event, Stage::Sent, "response", said).await;
            }
            SendOutcome::Duplicate => (Some(Event::Unknown), Stage::Sent),
            SendOutcome::Unknown(why) | SendOutcome::NotSent(why) => {
                self.retry_later(org, id, &why).await?;
                return self.read(org, id).await;
            }
        };
        let record = match event {
            Some(event) => self.apply(org, id, &event, stage, "response", None).await?,
            None => record,
        };
        self.match_parked(&record).await?;
        Ok(record)
    }

    // --- Applying what the provider said --------------------------------------------------

    /// Applies one event under the payment's lock: the ledger moves first (under derived ids,
    /// so that a repeat after a crash is a replay), then the row and its history.
    pub async fn apply(
        &self,
        org: OrgId,
        id: Uuid,
        event: &Event,
        stage_at_least: Stage,
        source: &str,
        description: Option<&str>,
    ) -> Result<Record, PaymentError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let row = tx
            .query_opt(
                &format!(
                    "SELECT {} FROM provider_payments WHERE org_id = $1 AND id = $2 FOR UPDATE",
                    Record::COLUMNS
                ),
                &[&org.0, &id],
            )
            .await?
            .ok_or_else(|| PaymentError::NotFound("payment"))?;
        let record = Record::from_row(&row)?;
        if matches!(record.stage, Stage::Reserving | Stage::Review) {
            // Nothing was sent: whatever this is cannot be about our request yet. Or an
            // operator must look first: nothing moves by itself any more.
            return Ok(record);
        }
        let channel_number: String = tx
            .query_one(
                "SELECT channel_number FROM payment_channels WHERE org_id = $1 AND id = $2",
                &[&org.0, &record.channel],
            )
            .await?
            .get(0);
        let mut state = record.lifecycle(&channel_number);
        let actions = state.apply(event);
        let (code, said) = what_was_said(&record, event, description);
        let (query, alert) = self.carry_out(&tx, &record, &actions, code.as_deref()).await?;
        let stage = if state.settled.is_some() {
            Stage::Settled
        } else if alert.is_some() {
            Stage::Review
        } else if record.stage == Stage::Sending && stage_at_least == Stage::Sent {
            Stage::Sent
        } else {
            record.stage
        };
        let status = status_of(&state, stage, record.status);
        // Asked now when the event wants a query; a request just answered is first asked
        // about after `first_query`; otherwise the schedule (and its backoff) stands.
        let next = match stage {
            Stage::Settled | Stage::Review => None,
            _ if query => Some(Duration::ZERO),
            Stage::Sent if record.stage != Stage::Sent => Some(self.settings().first_query),
            _ => Some(Duration::MAX),
        };
        let settled_name = state.settled.map(|s| match s {
            Settled::Posted => "posted",
            Settled::Voided => "voided",
        });
        let updated = tx
            .query_one(
                &format!(
                    "UPDATE provider_payments SET stage = $2, status = $3, settled = $4,
                         request_reference = $5, receipt = $6, provider_code = $7,
                         provider_description = $8, alert = COALESCE($10, alert),
                         next_attempt_at = CASE WHEN $9::float8 IS NULL THEN NULL
                             WHEN $9::float8 = 'infinity' THEN next_attempt_at
                             ELSE LEAST(next_attempt_at, now() + make_interval(secs => $9)) END,
                         updated_at = now()
                     WHERE org_id = $11 AND id = $1 RETURNING {}",
                    Record::COLUMNS
                ),
                &[
                    &id,
                    &stage.as_str(),
                    &status.as_str(),
                    &settled_name,
                    &state.request_reference,
                    &state.receipt,
                    &code,
                    &said,
                    &next.map(|d| if d == Duration::MAX { f64::INFINITY } else { d.as_secs_f64() }),
                    &alert,
                    &org.0,
                ],
            )
            .await?;
        let updated = Record::from_row(&updated)?;
        if status != record.status {
            let said = alert.as_deref().or(said.as_deref());
            insert_event(&tx, record.org, id, status, source, code.as_deref(), said).await?;
            tell(&tx, &updated, EventType::PaymentStatusChanged, Some(record.status)).await?;
        }
        tx.commit().await?;
        if query {
            self.wake.notify_one();
        }
        Ok(updated)
    }

    /// Does what the lifecycle decided, in `tx` (the payment's lock held): moves the ledger,
    /// notes contradictions; answers whether to ask the provider now, and why the payment is
    /// held for review, if it must be.
    async fn carry_out(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        record: &Record,
        actions: &[lifecycle::Action],
        code: Option<&str>,
    ) -> Result<(bool, Option<String>), PaymentError> {
        let id = record.id;
        let (mut query, mut alert) = (false, None);
        for action in actions {
            match action {
                lifecycle::Action::Disagreement { why } => {
                    tracing::error!(payment = %id, why = why.as_str(),
                        "a provider's answer disagrees with the payment; held for review");
                    metrics::counter!("hazina_provider_disagreements_total",
                        "flow" => record.flow.as_str())
                    .increment(1);
                    alert = Some(why.clone());
                }
                lifecycle::Action::Post { .. } => self.post(record).await?,
                lifecycle::Action::Void { .. } => self.void(record).await?,
                lifecycle::Action::Query => query = true,
                lifecycle::Action::Contradiction { settled, reported } => {
                    tracing::warn!(payment = %id, ?settled, ?reported,
                        "the provider contradicts a settled payment; the ledger stays");
                    let said = format!("the provider now reports {reported:?}");
                    insert_event(
                        tx,
                        record.org,
                        id,
                        record.status,
                        "contradiction",
                        code,
                        Some(&said),
                    )
                    .await?;
                }
            }
        }
        Ok((query, alert))
    }

    /// Posts the reservation; a received payment, which has none, is recorded as a transfer
    /// under its own id.
    async fn post(&self, record: &Record) -> Result<(), PaymentError> {
        if record.flow == Flow::Received {
            let channel = self
                .channel(record.org, record.channel)
                .await?
                .ok_or_else(|| PaymentError::NotFound("channel"))?;
            let postings = vec![
                Posting { account: channel.clearing, side: Side::Debit, amount: record.amount },
                Posting { account: record.account, side: Side::Credit, amount: record.amount },
            ];
            let request = TransferRequest {
                id: TransferId(record.id),
                id_is_new: false,
                org: record.org,
                action: Action::Post { postings },
                code: "provider_received".to_owned(),
                effective_at: None,
                context: reservation_context(record),
            };
            return self.ledger(record, "post", request).await;
        }
        let action = Action::PostPending { pending_id: TransferId(record.id), amounts: None };
        self.ledger(record, "post", Self::resolution(record, "post", action)).await
    }

    /// Releases the reservation; a received payment has none.
    async fn void(&self, record: &Record) -> Result<(), PaymentError> {
        if record.flow == Flow::Received {
            return Ok(());
        }
        let action = Action::VoidPending { pending_id: TransferId(record.id) };
        self.ledger(record, "void", Self::resolution(record, "void", action)).await
    }

    /// The transfer that posts or voids a reservation, under an id derived from the payment's.
    /// A post carries what the payment does for the customer: it happens when the money moves,
    /// and never for a payment that fails.
    fn resolution(record: &Record, what: &str, action: Action) -> TransferRequest {
        let mut context = serde_json::Map::from_iter([(
            "providerPayment".to_owned(),
            serde_json::json!({ "id": record.id }),
        )]);
        if matches!(action, Action::PostPending { .. })
            && let Some(effects) = effects_context(record)
        {
            context.insert(context::HAZINA.to_owned(), effects);
        }
        TransferRequest {
            id: TransferId(Uuid::new_v5(
                &TRANSFER_NAMESPACE,
                format!("{}/{what}", record.id).as_bytes(),
            )),
            id_is_new: false,
            org: record.org,
            action,
            code: format!("provider_{}_{what}", record.flow.as_str()),
            effective_at: None,
            context: Arc::new(context),
        }
    }

    async fn ledger(
        &self,
        record: &Record,
        what: &str,
        request: TransferRequest,
    ) -> Result<(), PaymentError> {
        match self.pipeline.submit(request).await? {
            Outcome::Accepted { .. } => Ok(()),
            Outcome::Rejected(reason) => {
                // Posting or voiding our own open reservation cannot be refused unless the
                // books were changed behind our back; stop rather than record a lie.
                tracing::error!(payment = %record.id, reason = reason.code(),
                    "the ledger refused to {what} a provider payment's reservation");
                Err(PaymentError::LedgerRefused { what: what.to_owned(), reason: reason.code() })
            }
        }
    }

    /// Schedules another attempt with backoff, noting why.
    async fn retry_later(&self, org: OrgId, id: Uuid, why: &str) -> Result<(), PaymentError> {
        let settings = self.settings();
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE provider_payments SET attempts = attempts + 1,
                     provider_description = $2,
                     next_attempt_at = now() + make_interval(secs => LEAST($4::float8,
                         $3::float8 * power(2, LEAST(attempts, 20)))),
                     updated_at = now()
                 WHERE org_id = $5 AND id = $1 AND stage <> 'settled'",
                &[
                    &id,
                    &why,
                    &settings.first_query.as_secs_f64(),
                    &settings.query_interval_max.as_secs_f64(),
                    &org.0,
                ],
            )
            .await?;
        Ok(())
    }

    /// The row as it is now (no lock).
    async fn read(&self, org: OrgId, id: Uuid) -> Result<Record, PaymentError> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                &format!(
                    "SELECT {} FROM provider_payments WHERE org_id = $1 AND id = $2",
                    Record::COLUMNS
                ),
                &[&org.0, &id],
            )
            .await?;
        Record::from_row(&row)
    }

    /// The ledger's store on the engine's pool, for reads.
    fn store(&self) -> hazina_ledger::store::Store {
        hazina_ledger::store::Store::new(self.pool.clone())
    }

    /// What [`Engine::wake`] signals: the provider queries worker waits on it.
    pub fn wake_signal(&self) -> &tokio::sync::Notify {
        &self.wake
    }

    /// Wakes the worker at once (a query is due).
    pub fn wake(&self) {
        self.wake.notify_one();
    }
}

/// The reference our request to `provider` carries for the payment `id`.
pub fn our_reference(provider: Provider, id: Uuid) -> String {
    adapter!(provider, A => A::our_reference(id))
}

/// The ledger context of a payment's transfer (its parties, the customers whose timelines
/// show it), as stored with the payment, without what it does for the customer: a
/// reservation moves no money yet, so its effects wait for the post ([`effects_context`]).
fn reservation_context(record: &Record) -> hazina_ledger::rules::Context {
    let mut context =
        record.request.get("context").and_then(|c| c.as_object()).cloned().unwrap_or_default();
    if let Some(serde_json::Value::Object(hazina)) = context.get_mut(context::HAZINA) {
        hazina.retain(|key, _| !context::CUSTOMER_EFFECTS.contains(&key.as_str()));
    }
    Arc::new(context)
}

/// The payment's effects for the customer, as the `hazina` object of the transfer that posts
/// its money (none when it has none).
fn effects_context(record: &Record) -> Option<serde_json::Value> {
    let hazina = record.request.get("context")?.get(context::HAZINA)?.as_object()?;
    let effects: serde_json::Map<String, serde_json::Value> = hazina
        .iter()
        .filter(|(key, _)| context::CUSTOMER_EFFECTS.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    (!effects.is_empty()).then_some(serde_json::Value::Object(effects))
}

/// The provider's code and words after an event: the event's when it has them, the
/// payment's last otherwise.
fn what_was_said(
    record: &Record,
    event: &Event,
    description: Option<&str>,
) -> (Option<String>, Option<String>) {
    let mut code = record.provider_code.clone();
    let mut said = description.map(str::to_owned).or(record.provider_description.clone());
    match event {
        Event::Callback { report, .. } | Event::StatusReply(report) => {
            if report.code.is_some() {
                code.clone_from(&report.code);
            }
            if report.description.is_some() {
                said.clone_from(&report.description);
            }
        }
        Event::Refused { code: refused } => code = Some(refused.clone()),
        Event::Accepted { .. } | Event::Unknown => {}
    }
    (code, said)
}

/// The platform's status of a payment in this state.
fn status_of(state: &lifecycle::Payment, stage: Stage, before: PaymentStatus) -> PaymentStatus {
    match state.settled {
        Some(Settled::Posted) => PaymentStatus::Success,
        Some(Settled::Voided) => PaymentStatus::Failed,
        None if stage == Stage::Review => PaymentStatus::HeldForReview,
        None if stage == Stage::Sent => PaymentStatus::PendingConfirmation,
        None => before,
    }
}

/// What a payment caught mid-send needs.
#[derive(Debug)]
pub enum Recovery {
    /// Send again under the same key (the provider deduplicates, or never got it).
    Send,
    /// The provider's answer about it.
    Query(QueryOutcome),
    /// Nothing to ask with yet: wait for the callback.
    Wait,
    /// It can no longer succeed.
    Expire,
}

/// The references a callback carries (ours and the provider's), for matching a parked one.
pub fn references(report: &StatusReport) -> Vec<String> {
    [&report.our_reference, &report.request_reference].into_iter().flatten().cloned().collect()
}

/// The event a callback is: a result from the provider, trusted when verified; M-Pesa's
/// transaction status results answer our own query.
pub fn callback_event(kind: &str, report: StatusReport, verified: bool) -> Event {
    if kind == "status" && verified {
        Event::StatusReply(report)
    } else {
        Event::Callback { report, verified }
    }
}

/// Tells apps, through the outbox, that the payment now stands as `record` says (its status
/// before: `previous`). The last statement of the change's transaction.
async fn tell<C: deadpool_postgres::GenericClient>(
    client: &C,
    record: &Record,
    kind: EventType,
    previous: Option<PaymentStatus>,
) -> Result<(), PaymentError> {
    let data = PaymentStatusData {
        transaction_id: record.id,
        flow: record.flow.as_str().to_owned(),
        status: record.status.as_str().to_owned(),
        status_code: record.status.platform_code(),
        previous_status: previous.map(|status| status.as_str().to_owned()),
        value: Amount::of(&record.amount),
        channel_id: Some(record.channel),
        customer_number: Some(record.msisdn.clone()),
        provider_code: record.provider_code.clone(),
        description: record.provider_description.clone(),
    };
    let event = NewEvent::of(kind, &data)
        .app(record.app)
        .customer(record.customer)
        .context(record.request.get("context").cloned());
    events::record(client, record.org, &[event]).await?;
    Ok(())
}

async fn insert_event<C: deadpool_postgres::GenericClient>(
    client: &C,
    org: OrgId,
    id: Uuid,
    status: PaymentStatus,
    source: &str,
    code: Option<&str>,
    description: Option<&str>,
) -> Result<(), PaymentError> {
    client
        .execute(
            "INSERT INTO provider_payment_events (org_id, payment_id, seq, status, source,
                 provider_code, description)
             SELECT $6, $1, COALESCE(max(seq), 0) + 1, $2, $3, $4, $5
             FROM provider_payment_events WHERE org_id = $6 AND payment_id = $1",
            &[&id, &status.as_str(), &source, &code, &description, &org.0],
        )
        .await?;
    Ok(())
}

/// What a new payment is.
#[derive(Debug)]
pub struct NewProviderPayment {
    pub id: Uuid,
    pub org: OrgId,
    pub app: Option<Uuid>,
    pub channel: Channel,
    pub flow: Flow,
    pub customer: Option<Uuid>,
    pub msisdn: String,
    pub account: AccountId,
    pub amount: Money,
    pub our_reference: String,
    /// The payment as asked, with `context`: its transfer's ledger context.
    pub request: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::{Provider, ProviderHosts};

    #[test]
    fn channels_call_https_to_the_providers_hosts_and_what_the_operator_allows() {
        let strict = ProviderHosts::default();
        let allowed = |hosts: &ProviderHosts, provider, url| hosts.check(provider, url).is_ok();
        assert!(allowed(&strict, Provider::Mpesa, "https://sandbox.safaricom.co.ke"));
        assert!(allowed(&strict, Provider::Mpesa, "https://API.safaricom.co.ke/"));
        assert!(allowed(&strict, Provider::Momo, "https://proxy.momoapi.mtn.com"));
        for (provider, url) in [
            (Provider::Mpesa, "http://sandbox.safaricom.co.ke"),
            (Provider::Mpesa, "https://sandbox.safaricom.co.ke.evil.example"),
            (Provider::Mpesa, "https://api.safaricom.co.ke@evil.example"),
            (Provider::Mpesa, "https://proxy.momoapi.mtn.com"),
            (Provider::Momo, "https://127.0.0.1:8080/simulator/momo"),
            (Provider::Momo, "not a url"),
        ] {
            assert!(!allowed(&strict, provider, url), "{url}");
        }
        let extra = ProviderHosts { extra: vec!["momo.example.ug".into()], ..strict.clone() };
        assert!(allowed(&extra, Provider::Momo, "https://momo.example.ug/collection"));
        assert!(!allowed(&extra, Provider::Momo, "http://momo.example.ug/collection"));
        let any = ProviderHosts { any: true, ..strict.clone() };
        assert!(allowed(&any, Provider::Mpesa, "http://10.0.0.7:9000"));
        assert!(!allowed(&any, Provider::Mpesa, "file:///etc/passwd"));
        let listening = "0.0.0.0:8080".parse().ok();
        let simulating = ProviderHosts { simulators: listening, ..strict };
        assert!(allowed(&simulating, Provider::Mpesa, "http://127.0.0.1:8080/simulator/mpesa"));
        assert!(allowed(&simulating, Provider::Momo, "http://localhost:8080/simulator/momo"));
        assert!(!allowed(&simulating, Provider::Mpesa, "http://127.0.0.1:8081/simulator/mpesa"));
        assert!(!allowed(&simulating, Provider::Mpesa, "http://127.0.0.1:8080/v1/payments"));
        assert!(!allowed(&simulating, Provider::Mpesa, "http://10.0.0.7:8080/simulator/mpesa"));
    }
}

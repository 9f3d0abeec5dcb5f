//! The payments worker's round: due payments leased org by org and worked on — reserved,
//! sent, asked about, or recovered after a crash mid-send — and the provider's answers to our
//! queries applied. `workers::query_providers` runs it on the shared drain loop.

use hazina_ledger::OrgId;
use hazina_providers::lifecycle::Event;
use hazina_providers::{Status, StatusReport};

use super::provider::{Adapter as _, adapter};
use super::{Channel, DUE_BATCH_MAX, Engine, PaymentError, QueryOutcome, Record, Recovery, Stage};

impl Engine {
    /// Takes the payments that are due (skipping those another process holds), leases them,
    /// and works on each: reserve, send, or ask. The oldest [`DUE_BATCH_MAX`] due payments of
    /// all orgs are taken, org by org: which orgs have them is read across orgs
    /// ([`Engine::due_orgs`]), and each org's are then leased by a statement of that org and
    /// worked on before the next org's are leased, so that a failure leaves nothing leased
    /// and idle.
    pub async fn run_due(&self) -> Result<usize, PaymentError> {
        let settings = self.settings();
        let mut worked = 0;
        for (org, count) in self.due_orgs().await? {
            let client = self.pool.get().await?;
            let rows = client
                .query(
                    &format!(
                        "UPDATE provider_payments
                         SET next_attempt_at = now() + make_interval(secs => $1)
                         WHERE org_id = $3 AND id IN (SELECT id FROM provider_payments
                             WHERE org_id = $3 AND next_attempt_at <= now()
                             ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED)
                         RETURNING {}",
                        Record::COLUMNS
                    ),
                    &[&settings.lease.as_secs_f64(), &count, &org.0],
                )
                .await?;
            drop(client);
            let due: Vec<Record> = rows.iter().map(Record::from_row).collect::<Result<_, _>>()?;
            for record in &due {
                if let Err(error) = self.work_on(record).await {
                    tracing::warn!(payment = %record.id, code = %error.code(), error = %crate::error_chain(&error),
                        "could not advance a provider payment; will try again");
                }
            }
            worked += due.len();
        }
        Ok(worked)
    }

    /// The orgs that have any of the oldest [`DUE_BATCH_MAX`] due payments, the oldest due
    /// first, each with how many of them it has.
    ///
    /// Across orgs by nature (the worker serves every org), a sweep of every org's rows: it
    /// only reads, takes no lock, and names no row it acts on; [`Engine::run_due`] leases each
    /// org's payments with a statement of that org, which skips any another process took
    /// in between.
    async fn due_orgs(&self) -> Result<Vec<(OrgId, i64)>, PaymentError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT org_id, count(*) FROM (SELECT org_id, next_attempt_at
                     FROM provider_payments WHERE next_attempt_at <= now()
                     ORDER BY next_attempt_at LIMIT $1) AS due
                 GROUP BY org_id ORDER BY min(next_attempt_at)",
                &[&DUE_BATCH_MAX],
            )
            .await?;
        Ok(rows.iter().map(|row| (OrgId(row.get(0)), row.get(1))).collect())
    }

    async fn work_on(&self, record: &Record) -> Result<(), PaymentError> {
        let channel = (self.channel(record.org, record.channel).await?)
            .ok_or_else(|| PaymentError::NotFound("channel"))?;
        match record.stage {
            Stage::Settled | Stage::Review => Ok(()),
            Stage::Reserving => self.reserve_and_send(record.clone(), &channel).await.map(drop),
            Stage::Sending => self.recover_sending(record, &channel).await,
            Stage::Sent => self.query(record, &channel).await,
        }
    }

    /// A payment whose request may or may not have left: find out, never send under a new
    /// key.
    async fn recover_sending(
        &self,
        record: &Record,
        channel: &Channel,
    ) -> Result<(), PaymentError> {
        if let Err(why) = self.settings().provider_hosts.check(channel.provider, &channel.base_url)
        {
            return self.retry_later(record.org, record.id, &why).await;
        }
        let outcome = adapter!(channel.provider, A => A::recover(self, channel, record).await);
        let (org, id) = (record.org, record.id);
        match outcome {
            Recovery::Send => self.send(org, id, channel).await.map(drop),
            Recovery::Query(QueryOutcome::NeverArrived) => {
                self.send(org, id, channel).await.map(drop)
            }
            Recovery::Query(outcome) => self.take_query(record, outcome).await,
            Recovery::Wait => {
                self.retry_later(org, id, "waiting for the provider's callback").await
            }
            Recovery::Expire => {
                let mut report = StatusReport::new(Status::Failed);
                report.code = Some("expired".to_owned());
                report.description =
                    Some("no answer from the provider before the prompt expired".to_owned());
                self.apply(org, id, &Event::StatusReply(report), Stage::Sent, "recovery", None)
                    .await
                    .map(drop)
            }
        }
    }

    /// Asks the provider about a sent payment.
    async fn query(&self, record: &Record, channel: &Channel) -> Result<(), PaymentError> {
        let allowed = self.settings().provider_hosts.check(channel.provider, &channel.base_url);
        let outcome = match allowed {
            Err(why) => QueryOutcome::Unknown(why),
            Ok(()) => adapter!(channel.provider, A => A::query(self, channel, record).await),
        };
        self.take_query(record, outcome).await
    }

    async fn take_query(&self, record: &Record, outcome: QueryOutcome) -> Result<(), PaymentError> {
        tracing::info!(payment = %record.id, outcome = ?outcome, "asked the provider");
        let (org, id) = (record.org, record.id);
        match outcome {
            QueryOutcome::Reply(report) => {
                let pending = report.status == Status::Pending;
                let updated = self
                    .apply(org, id, &Event::StatusReply(report), Stage::Sent, "query", None)
                    .await?;
                if pending && updated.stage != Stage::Settled {
                    self.retry_later(org, id, "the provider says it is still pending").await?;
                }
                Ok(())
            }
            QueryOutcome::Asked => {
                self.retry_later(org, id, "asked; the answer comes by callback").await
            }
            QueryOutcome::NeverArrived => {
                self.retry_later(org, id, "the provider has no record of the request").await
            }
            QueryOutcome::Unknown(why) => self.retry_later(org, id, &why).await,
        }
    }
}

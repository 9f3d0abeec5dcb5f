//! Clearing-account drift: for each day of a period, what the channel's clearing account held
//! at the day's end by the ledger (posted, by effective time) against the closing balance the
//! provider's or bank's statement gives for the day, and the first day they diverge.

use chrono::{Days, NaiveDate, NaiveTime};
use hazina_ledger::rules::Side;
use hazina_ledger::{Money, OrgId};
use uuid::Uuid;

use super::{ReconciliationError, Service};
use crate::code::Code;

/// The longest period one drift report covers.
const DRIFT_DAYS_MAX: i64 = 366;

/// One day of a drift report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DriftDay {
    pub day: NaiveDate,
    /// The clearing account's posted balance at the day's end (UTC), by effective time.
    pub ledger_closing: Money,
    /// The statement's closing balance of the day, when an imported file stated one.
    pub statement_closing: Option<Money>,
    /// Statement minus ledger, when the statement states the day.
    pub difference: Option<Money>,
}

/// A drift report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    pub channel: Uuid,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub days: Vec<DriftDay>,
    /// The first day the statement states and the ledger disagrees with.
    pub first_divergence: Option<NaiveDate>,
}

impl Service {
    /// The channel's drift over `[from, to]`, both days included.
    ///
    /// # Errors
    ///
    /// `NotFound` for no such channel; `Invalid` (`invalid_period`); the database's.
    pub async fn drift(
        &self,
        org: OrgId,
        channel: Uuid,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Drift, ReconciliationError> {
        if to < from || (to - from).num_days() >= DRIFT_DAYS_MAX {
            return Err(ReconciliationError::invalid(
                Code::InvalidPeriod,
                format!("a drift report covers 1 to {DRIFT_DAYS_MAX} days, from <= to"),
            ));
        }
        let channel = self.channel(org, channel).await?;
        let start = from.and_time(NaiveTime::MIN).and_utc();
        let end =
            to.checked_add_days(Days::new(1)).unwrap_or(to).and_time(NaiveTime::MIN).and_utc();
        let (debits, credits) = self.store.posted_sums_before(org, channel.clearing, start).await?;
        let mut balance = i128::from(debits) - i128::from(credits);
        let movements = self.store.movements(org, channel.clearing, start, end).await?;
        let mut by_day: std::collections::BTreeMap<NaiveDate, i128> =
            std::collections::BTreeMap::new();
        for movement in &movements {
            let signed = match movement.side {
                Side::Debit => i128::from(movement.amount_minor),
                Side::Credit => -i128::from(movement.amount_minor),
            };
            *by_day.entry(movement.effective_at.date_naive()).or_default() += signed;
        }
        let client = self.pool.get().await?;
        let stated: std::collections::HashMap<NaiveDate, i64> = client
            .query(
                "SELECT day, closing_minor FROM statement_balances
                 WHERE org_id = $1 AND channel_id = $2 AND day >= $3 AND day <= $4",
                &[&org.0, &channel.id, &from, &to],
            )
            .await?
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let currency = channel.currency;
        let money = |minor: i128| {
            i64::try_from(minor).map(|minor| Money::from_minor(currency, minor)).map_err(|_| {
                ReconciliationError::Corrupt("a clearing balance beyond 64 bits".to_owned())
            })
        };
        let mut days = Vec::new();
        let mut first_divergence = None;
        let mut day = from;
        while day <= to {
            balance += by_day.get(&day).copied().unwrap_or(0);
            let statement = stated.get(&day).copied();
            let difference = statement.map(|closing| i128::from(closing) - balance);
            if difference.is_some_and(|d| d != 0) && first_divergence.is_none() {
                first_divergence = Some(day);
            }
            days.push(DriftDay {
                day,
                ledger_closing: money(balance)?,
                statement_closing: statement.map(|minor| Money::from_minor(currency, minor)),
                difference: difference.map(money).transpose()?,
            });
            let Some(next) = day.checked_add_days(Days::new(1)) else { break };
            day = next;
        }
        Ok(Drift { channel: channel.id, from, to, days, first_divergence })
    }
}

//! A run: the channel's unmatched statement lines over a period against the ledger's
//! unmatched movements on its clearing account, matched by the pure engine, recorded whole
//! under the channel's lock — matches, the exceptions for what did not match (each raised
//! once, however many runs see it), and exceptions a match now explains resolved.

use std::collections::HashMap;

use chrono::{DateTime, Days, NaiveDate, NaiveTime, Utc};
use hazina_ledger::OrgId;
use hazina_ledger::rules::Side;
use serde::Serialize;
use tokio_postgres::types::{ToSql, Type};
use uuid::Uuid;

use super::exceptions::{EXCEPTION_COLUMNS, EXCEPTION_FROM, from_row};
use super::import::lock_channel;
use super::matching::{self, Item, Line, Rules};
use super::{Direction, ReconciliationError, Service, copy_in, direction_from, direction_name};
use crate::code::Code;
use crate::events::{self, EventType};

/// The longest period one run covers.
const PERIOD_DAYS_MAX: i64 = 366;

/// A run as asked.
#[derive(Clone, Debug)]
pub struct NewRun {
    pub org: OrgId,
    pub channel: Uuid,
    /// The period, both days included (value dates of lines, effective dates in UTC of
    /// transfers).
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub rules: Rules,
    /// Match and count, but record nothing.
    pub dry_run: bool,
    pub started_by: String,
}

/// What a run did (or, dry, would do).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunSummary {
    /// `None` for a dry run.
    pub id: Option<Uuid>,
    pub channel_id: Uuid,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub date_tolerance_days: u32,
    pub amount_tolerance_minor: i64,
    pub net_fees: bool,
    /// Unmatched lines and transfers the run looked at.
    pub lines: i32,
    pub items: i32,
    /// Matches made, and of them those with an amount difference.
    pub matched: i32,
    pub differences: i32,
    pub unmatched_lines: i32,
    pub unmatched_items: i32,
    /// Exceptions raised by this run (new ones only) and resolved by its matches.
    pub exceptions_opened: i32,
    pub exceptions_resolved: i32,
    pub started_by: String,
    pub created_at: Option<DateTime<Utc>>,
    pub dry_run: bool,
}

/// A line as read for matching.
struct LineRow {
    key: String,
    value_date: NaiveDate,
    amount_minor: i64,
    direction: Direction,
}

/// A movement as read for matching.
struct ItemRow {
    transfer_id: Uuid,
    effective_date: NaiveDate,
    amount_minor: i64,
    direction: Direction,
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(NaiveTime::MIN).and_utc()
}

impl Service {
    /// Runs reconciliation over a period.
    ///
    /// # Errors
    ///
    /// `NotFound` for no such channel; `Invalid` (`invalid_period`) for a period that ends
    /// before it starts or is longer than a year; the database's.
    #[allow(clippy::too_many_lines)] // Read, match, then one transaction's writes, in order.
    pub async fn run(&self, new: &NewRun) -> Result<RunSummary, ReconciliationError> {
        if new.to < new.from || (new.to - new.from).num_days() >= PERIOD_DAYS_MAX {
            return Err(ReconciliationError::invalid(
                Code::InvalidPeriod,
                format!("a run covers 1 to {PERIOD_DAYS_MAX} days, from <= to"),
            ));
        }
        let org = new.org;
        let channel = self.channel(org, new.channel).await?;
        let tolerance = Days::new(u64::from(new.rules.date_tolerance_days));
        let window_from = new.from.checked_sub_days(tolerance).unwrap_or(new.from);
        let window_to = new.to.checked_add_days(tolerance).unwrap_or(new.to);
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        lock_channel(&tx, org, channel.id).await?;
        let started = std::time::Instant::now();

        let (lines, line_info) = read_lines(&tx, org, channel.id, window_from, window_to).await?;

        let (items, item_info) =
            self.read_items(&tx, org, &channel, window_from, window_to).await?;

        let read = started.elapsed();
        let outcome = matching::reconcile(&lines, &items, &new.rules);
        let matched = started.elapsed();
        drop(lines);
        drop(items);
        let in_period = |day: NaiveDate| day >= new.from && day <= new.to;
        let differences = outcome.matches.iter().filter(|m| m.amount_difference != 0).count();
        let unmatched_lines: Vec<usize> = outcome
            .unmatched_lines
            .iter()
            .copied()
            .filter(|&i| in_period(line_info[i].value_date))
            .collect();
        let unmatched_items: Vec<usize> = outcome
            .unmatched_items
            .iter()
            .copied()
            .filter(|&i| in_period(item_info[i].effective_date))
            .collect();
        let mut summary = RunSummary {
            id: None,
            channel_id: channel.id,
            from: new.from,
            to: new.to,
            date_tolerance_days: new.rules.date_tolerance_days,
            amount_tolerance_minor: new.rules.amount_tolerance,
            net_fees: new.rules.net_fees,
            lines: count(line_info.len()),
            items: count(item_info.len()),
            matched: count(outcome.matches.len()),
            differences: count(differences),
            unmatched_lines: count(unmatched_lines.len()),
            unmatched_items: count(unmatched_items.len()),
            exceptions_opened: 0,
            exceptions_resolved: 0,
            started_by: new.started_by.clone(),
            created_at: None,
            dry_run: new.dry_run,
        };
        if new.dry_run {
            return Ok(summary);
        }

        let run = Uuid::now_v7();
        let rules = serde_json::json!({
            "dateToleranceDays": new.rules.date_tolerance_days,
            "amountToleranceMinor": new.rules.amount_tolerance,
            "netFees": new.rules.net_fees,
            "groupMax": new.rules.group_max,
        });
        let created_at: DateTime<Utc> = tx
            .query_one(
                "INSERT INTO reconciliation_runs (org_id, id, channel_id, from_date, to_date,
                     rules, lines, items, matched, differences, unmatched_lines,
                     unmatched_items, started_by)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 RETURNING created_at",
                &[
                    &org.0,
                    &run,
                    &channel.id,
                    &new.from,
                    &new.to,
                    &rules,
                    &summary.lines,
                    &summary.items,
                    &summary.matched,
                    &summary.differences,
                    &summary.unmatched_lines,
                    &summary.unmatched_items,
                    &new.started_by,
                ],
            )
            .await?
            .get(0);
        summary.id = Some(run);
        summary.created_at = Some(created_at);

        let written =
            write_matches(&tx, org, channel.id, run, &outcome, &line_info, &item_info).await?;

        let resolved = resolve_explained(&tx, org, channel.id, run, &written).await?;

        let found = Found {
            outcome: &outcome,
            match_ids: &written.match_ids,
            line_info: &line_info,
            item_info: &item_info,
            unmatched_lines: &unmatched_lines,
            unmatched_items: &unmatched_items,
            last_day: new.to,
        };
        let opened =
            open_exceptions(&tx, org, channel.id, channel.currency.code(), run, &found).await?;
        summary.exceptions_opened = count(opened.len());
        summary.exceptions_resolved = count(resolved.len());
        let mut told = Vec::with_capacity(opened.len() + resolved.len());
        for row in &resolved {
            told.push(from_row(row)?.event(EventType::ReconciliationExceptionResolved));
        }
        for row in &opened {
            told.push(from_row(row)?.event(EventType::ReconciliationExceptionOpened));
        }
        events::record(&tx, org, &told).await?;
        tx.commit().await?;
        tracing::info!(
            run = %run,
            lines = summary.lines,
            items = summary.items,
            read_ms = read.as_millis(),
            match_ms = matched.saturating_sub(read).as_millis(),
            write_ms = started.elapsed().saturating_sub(matched).as_millis(),
            "reconciliation run recorded"
        );
        Ok(summary)
    }

    /// The clearing account's movements not matched yet, with effective dates in
    /// `[from, to]`, and everything that names each (its ids, its provider payment's
    /// references and receipt).
    async fn read_items(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        org: OrgId,
        channel: &crate::payments::Channel,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<(Vec<Item>, Vec<ItemRow>), ReconciliationError> {
        // The clearing account's movements not matched yet, and what names each.
        let movements = self
            .store
            .movements(
                org,
                channel.clearing,
                midnight(from),
                midnight(to.checked_add_days(Days::new(1)).unwrap_or(to)),
            )
            .await?;
        let ids: Vec<Uuid> = movements.iter().map(|m| m.transfer_id.0).collect();
        let matched: std::collections::HashSet<Uuid> = tx
            .query(
                "SELECT transfer_id FROM reconciliation_matched_transfers
                 WHERE org_id = $1 AND channel_id = $2 AND transfer_id = ANY($3)",
                &[&org.0, &channel.id, &ids],
            )
            .await?
            .iter()
            .map(|row| row.get(0))
            .collect();
        let movements: Vec<_> =
            movements.into_iter().filter(|m| !matched.contains(&m.transfer_id.0)).collect();
        let payment_ids: Vec<Uuid> = movements
            .iter()
            .flat_map(|m| [Some(m.transfer_id.0), m.refers_to.map(|id| id.0)])
            .flatten()
            .collect();
        let mut names: HashMap<Uuid, Vec<String>> = HashMap::new();
        for row in tx
            .query(
                "SELECT id, our_reference, request_reference, receipt FROM provider_payments
                 WHERE org_id = $1 AND channel_id = $2 AND id = ANY($3)",
                &[&org.0, &channel.id, &payment_ids],
            )
            .await?
        {
            let said: Vec<String> = [
                Some(row.get::<_, String>(1)),
                row.get::<_, Option<String>>(2),
                row.get::<_, Option<String>>(3),
            ]
            .into_iter()
            .flatten()
            .collect();
            names.insert(row.get(0), said);
        }
        let mut items = Vec::with_capacity(movements.len());
        let mut item_info = Vec::with_capacity(movements.len());
        for movement in &movements {
            let direction = match movement.side {
                Side::Debit => Direction::In,
                Side::Credit => Direction::Out,
            };
            let mut references = vec![movement.transfer_id.0.to_string()];
            for id in [Some(movement.transfer_id.0), movement.refers_to.map(|id| id.0)]
                .into_iter()
                .flatten()
            {
                if Some(id) != Some(movement.transfer_id.0) {
                    references.push(id.to_string());
                }
                if let Some(said) = names.get(&id) {
                    references.extend(said.iter().cloned());
                }
            }
            items.push(Item {
                references,
                direction,
                amount: movement.amount_minor,
                fee: 0,
                effective_at: movement.effective_at,
            });
            item_info.push(ItemRow {
                transfer_id: movement.transfer_id.0,
                effective_date: movement.effective_at.date_naive(),
                amount_minor: movement.amount_minor,
                direction,
            });
        }

        Ok((items, item_info))
    }

    /// The org's runs, newest first.
    ///
    /// # Errors
    ///
    /// The database's.
    pub async fn runs(
        &self,
        org: OrgId,
        channel: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<RunSummary>, ReconciliationError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "{RUN_COLUMNS} WHERE r.org_id = $1 AND ($2::uuid IS NULL OR r.channel_id = $2)
                     ORDER BY r.created_at DESC, r.id DESC LIMIT $3"
                ),
                &[&org.0, &channel, &limit.clamp(1, 1_000)],
            )
            .await?;
        Ok(rows.iter().map(run_summary).collect())
    }

    /// One run.
    ///
    /// # Errors
    ///
    /// `NotFound`; the database's.
    pub async fn run_summary(
        &self,
        org: OrgId,
        id: Uuid,
    ) -> Result<RunSummary, ReconciliationError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(&format!("{RUN_COLUMNS} WHERE r.org_id = $1 AND r.id = $2"), &[&org.0, &id])
            .await?
            .ok_or(ReconciliationError::NotFound("run"))?;
        Ok(run_summary(&row))
    }
}

/// The channel's lines not matched yet, with value dates in `[from, to]`: as the engine reads
/// them, and as the run records them.
async fn read_lines(
    tx: &deadpool_postgres::Transaction<'_>,
    org: OrgId,
    channel: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<(Vec<Line>, Vec<LineRow>), ReconciliationError> {
    // The channel's lines not matched yet, within the period and its tolerance.
    let line_rows = tx
        .query(
            "SELECT l.key, l.receipt, l.reference, l.batch, l.direction, l.amount_minor,
                 l.fee_minor, l.is_fee, l.value_date, l.booked_at
             FROM statement_lines l
             WHERE l.org_id = $1 AND l.channel_id = $2 AND l.value_date >= $3
                 AND l.value_date <= $4
                 AND NOT EXISTS (SELECT 1 FROM reconciliation_matched_lines m
                     WHERE m.org_id = l.org_id AND m.channel_id = l.channel_id
                         AND m.line_key = l.key)
",
            &[&org.0, &channel, &from, &to],
        )
        .await?;
    // In booking order, ties by key: sorted here, which is much cheaper than a sort of a
    // million rows in PostgreSQL's small working memory (it spills to disk).
    let mut line_rows: Vec<(DateTime<Utc>, &tokio_postgres::Row)> =
        line_rows.iter().map(|row| (row.get(9), row)).collect();
    line_rows
        .sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.get::<_, &str>(0).cmp(b.1.get(0))));
    let mut lines = Vec::with_capacity(line_rows.len());
    let mut line_info = Vec::with_capacity(line_rows.len());
    for (_, row) in line_rows {
        let direction = direction_from(row.get(4))?;
        lines.push(Line {
            receipt: row.get(1),
            reference: row.get(2),
            batch: row.get(3),
            direction,
            amount: row.get(5),
            fee: row.get(6),
            is_fee: row.get(7),
            value_date: row.get(8),
            booked_at: row.get(9),
        });
        line_info.push(LineRow {
            key: row.get(0),
            value_date: row.get(8),
            amount_minor: row.get(5),
            direction,
        });
    }

    Ok((lines, line_info))
}

/// The ids a run gave its matches, and which lines and transfers each accounts for.
struct Written {
    match_ids: Vec<Uuid>,
    line_keys: Vec<String>,
    line_matches: Vec<Uuid>,
    transfer_ids: Vec<Uuid>,
    transfer_matches: Vec<Uuid>,
}

/// Records the run's matches and what each accounts for.
async fn write_matches(
    tx: &deadpool_postgres::Transaction<'_>,
    org: OrgId,
    channel: Uuid,
    run: Uuid,
    outcome: &matching::Outcome,
    line_info: &[LineRow],
    item_info: &[ItemRow],
) -> Result<Written, ReconciliationError> {
    // The matches, and which lines and transfers each accounts for.
    let mut match_ids = Vec::with_capacity(outcome.matches.len());
    let mut match_rules = Vec::with_capacity(outcome.matches.len());
    let mut match_amounts = Vec::with_capacity(outcome.matches.len());
    let mut match_days = Vec::with_capacity(outcome.matches.len());
    let (mut line_keys, mut line_matches) = (Vec::new(), Vec::new());
    let (mut transfer_ids, mut transfer_matches) = (Vec::new(), Vec::new());
    for found in &outcome.matches {
        let id = Uuid::now_v7();
        match_ids.push(id);
        match_rules.push(found.rule.as_str());
        match_amounts.push(found.amount_difference);
        match_days.push(i32::try_from(found.days_difference).unwrap_or(i32::MAX));
        for &i in &found.lines {
            line_keys.push(line_info[i].key.clone());
            line_matches.push(id);
        }
        for &i in &found.items {
            transfer_ids.push(item_info[i].transfer_id);
            transfer_matches.push(id);
        }
    }
    // Written by binary COPY: a run of a million lines writes three million rows here.
    let writer = copy_in(
        tx,
        "COPY reconciliation_matches (org_id, id, channel_id, run_id, rule,
             amount_difference_minor, days_difference) FROM STDIN BINARY",
        &[Type::UUID, Type::UUID, Type::UUID, Type::UUID, Type::TEXT, Type::INT8, Type::INT4],
    )
    .await?;
    futures_util::pin_mut!(writer);
    for i in 0..match_ids.len() {
        let row: [&(dyn ToSql + Sync); 7] = [
            &org.0,
            &match_ids[i],
            &channel,
            &run,
            &match_rules[i],
            &match_amounts[i],
            &match_days[i],
        ];
        writer.as_mut().write(&row).await?;
    }
    writer.finish().await?;
    let writer = copy_in(
        tx,
        "COPY reconciliation_matched_lines (org_id, channel_id, line_key, match_id)
         FROM STDIN BINARY",
        &[Type::UUID, Type::UUID, Type::TEXT, Type::UUID],
    )
    .await?;
    futures_util::pin_mut!(writer);
    for (key, id) in line_keys.iter().zip(&line_matches) {
        writer.as_mut().write(&[&org.0 as &(dyn ToSql + Sync), &channel, key, id]).await?;
    }
    writer.finish().await?;
    let writer = copy_in(
        tx,
        "COPY reconciliation_matched_transfers (org_id, channel_id, transfer_id, match_id)
         FROM STDIN BINARY",
        &[Type::UUID, Type::UUID, Type::UUID, Type::UUID],
    )
    .await?;
    futures_util::pin_mut!(writer);
    for (transfer, id) in transfer_ids.iter().zip(&transfer_matches) {
        writer.as_mut().write(&[&org.0 as &(dyn ToSql + Sync), &channel, transfer, id]).await?;
    }
    writer.finish().await?;

    Ok(Written { match_ids, line_keys, line_matches, transfer_ids, transfer_matches })
}

/// Resolves the open exceptions of the lines and transfers this run matched.
async fn resolve_explained(
    tx: &deadpool_postgres::Transaction<'_>,
    org: OrgId,
    channel: Uuid,
    run: Uuid,
    written: &Written,
) -> Result<Vec<tokio_postgres::Row>, ReconciliationError> {
    // Exceptions this run's matches explain are resolved.
    Ok(tx
        .query(
            &format!(
                "WITH by_line AS (
                     UPDATE reconciliation_exceptions x SET status = 'resolved',
                         resolution = 'matched', resolution_match_id = m.match_id,
                         reason = 'matched by a run', resolved_by = $3::text,
                         resolved_at = now()
                     FROM UNNEST($4::text[], $5::uuid[]) AS m (line_key, match_id)
                     WHERE x.org_id = $1 AND x.channel_id = $2 AND x.status = 'open'
                         AND x.kind = 'unmatched_statement' AND x.line_key = m.line_key
                     RETURNING x.*
                 ), by_transfer AS (
                     UPDATE reconciliation_exceptions x SET status = 'resolved',
                         resolution = 'matched', resolution_match_id = m.match_id,
                         reason = 'matched by a run', resolved_by = $3::text,
                         resolved_at = now()
                     FROM UNNEST($6::uuid[], $7::uuid[]) AS m (transfer_id, match_id)
                     WHERE x.org_id = $1 AND x.channel_id = $2 AND x.status = 'open'
                         AND x.kind = 'unmatched_ledger' AND x.transfer_id = m.transfer_id
                     RETURNING x.*
                 ), resolved AS (
                     SELECT * FROM by_line UNION ALL SELECT * FROM by_transfer
                 )
                 SELECT {EXCEPTION_COLUMNS} FROM {}",
                EXCEPTION_FROM.replacen("reconciliation_exceptions e", "resolved e", 1)
            ),
            &[
                &org.0,
                &channel,
                &format!("run {run}"),
                &written.line_keys,
                &written.line_matches,
                &written.transfer_ids,
                &written.transfer_matches,
            ],
        )
        .await?)
}

/// What a run found, for the exceptions it raises.
struct Found<'a> {
    outcome: &'a matching::Outcome,
    match_ids: &'a [Uuid],
    line_info: &'a [LineRow],
    item_info: &'a [ItemRow],
    unmatched_lines: &'a [usize],
    unmatched_items: &'a [usize],
    /// The period's last day (a difference without a line or transfer is dated on it).
    last_day: NaiveDate,
}

/// Raises the run's exceptions — differences, then what is unmatched in the period — each
/// at most once (an open one of the same line or transfer stands).
async fn open_exceptions(
    tx: &deadpool_postgres::Transaction<'_>,
    org: OrgId,
    channel: Uuid,
    currency: &str,
    run: Uuid,
    found: &Found<'_>,
) -> Result<Vec<tokio_postgres::Row>, ReconciliationError> {
    let (line_info, item_info) = (found.line_info, found.item_info);
    // New exceptions: differences, then what is unmatched in the period.
    let mut kinds: Vec<&str> = Vec::new();
    let mut keys: Vec<Option<&str>> = Vec::new();
    let mut transfers: Vec<Option<Uuid>> = Vec::new();
    let mut matches: Vec<Option<Uuid>> = Vec::new();
    let mut directions: Vec<&str> = Vec::new();
    let mut amounts: Vec<i64> = Vec::new();
    let mut diffs: Vec<i64> = Vec::new();
    let mut dates: Vec<NaiveDate> = Vec::new();
    for (found_match, id) in found.outcome.matches.iter().zip(found.match_ids) {
        if found_match.amount_difference == 0 {
            continue;
        }
        let line = found_match.lines.first().map(|&i| &line_info[i]);
        let item = found_match.items.first().map(|&i| &item_info[i]);
        kinds.push("difference");
        keys.push(line.map(|l| l.key.as_str()));
        transfers.push(item.map(|i| i.transfer_id));
        matches.push(Some(*id));
        let direction = line.map(|l| l.direction).or(item.map(|i| i.direction));
        directions.push(direction_name(direction.unwrap_or(Direction::In)));
        amounts.push(found_match.lines.iter().map(|&i| line_info[i].amount_minor).sum());
        diffs.push(found_match.amount_difference);
        dates.push(
            line.map(|l| l.value_date).or(item.map(|i| i.effective_date)).unwrap_or(found.last_day),
        );
    }
    for &i in found.unmatched_lines {
        let line = &line_info[i];
        kinds.push("unmatched_statement");
        keys.push(Some(&line.key));
        transfers.push(None);
        matches.push(None);
        directions.push(direction_name(line.direction));
        amounts.push(line.amount_minor);
        diffs.push(0);
        dates.push(line.value_date);
    }
    for &i in found.unmatched_items {
        let item = &item_info[i];
        kinds.push("unmatched_ledger");
        keys.push(None);
        transfers.push(Some(item.transfer_id));
        matches.push(None);
        directions.push(direction_name(item.direction));
        amounts.push(item.amount_minor);
        diffs.push(0);
        dates.push(item.effective_date);
    }
    let ids: Vec<Uuid> = kinds.iter().map(|_| Uuid::now_v7()).collect();
    Ok(tx
        .query(
            &format!(
                "WITH opened AS (
                     INSERT INTO reconciliation_exceptions (org_id, id, channel_id, run_id,
                         kind, line_key, transfer_id, match_id, currency, direction,
                         amount_minor, difference_minor, value_date, status)
                     SELECT $1, x.id, $2, $3, x.kind, x.key, x.transfer, x.match, $4,
                         x.direction, x.amount, x.diff, x.day, 'open'
                     FROM UNNEST($5::uuid[], $6::text[], $7::text[], $8::uuid[], $9::uuid[],
                         $10::text[], $11::int8[], $12::int8[], $13::date[])
                         AS x (id, kind, key, transfer, match, direction, amount, diff, day)
                     ON CONFLICT DO NOTHING
                     RETURNING *
                 )
                 SELECT {EXCEPTION_COLUMNS} FROM {}",
                EXCEPTION_FROM.replacen("reconciliation_exceptions e", "opened e", 1)
            ),
            &[
                &org.0,
                &channel,
                &run,
                &currency,
                &ids,
                &kinds,
                &keys,
                &transfers,
                &matches,
                &directions,
                &amounts,
                &diffs,
                &dates,
            ],
        )
        .await?)
}

const RUN_COLUMNS: &str = "SELECT r.id, r.channel_id, r.from_date, r.to_date, r.rules, r.lines, \
    r.items, r.matched, r.differences, r.unmatched_lines, r.unmatched_items, r.started_by, \
    r.created_at, \
    (SELECT count(*) FROM reconciliation_exceptions x WHERE x.org_id = r.org_id AND x.run_id = r.id), \
    (SELECT count(*) FROM reconciliation_exceptions x WHERE x.org_id = r.org_id \
        AND x.resolved_by = 'run ' || r.id::text) \
    FROM reconciliation_runs r";

fn run_summary(row: &tokio_postgres::Row) -> RunSummary {
    let rules: serde_json::Value = row.get(4);
    let number = |name: &str| rules.get(name).and_then(serde_json::Value::as_i64).unwrap_or(0);
    RunSummary {
        id: Some(row.get(0)),
        channel_id: row.get(1),
        from: row.get(2),
        to: row.get(3),
        date_tolerance_days: u32::try_from(number("dateToleranceDays")).unwrap_or(0),
        amount_tolerance_minor: number("amountToleranceMinor"),
        net_fees: rules.get("netFees").and_then(serde_json::Value::as_bool).unwrap_or(false),
        lines: row.get(5),
        items: row.get(6),
        matched: row.get(7),
        differences: row.get(8),
        unmatched_lines: row.get(9),
        unmatched_items: row.get(10),
        exceptions_opened: count(usize::try_from(row.get::<_, i64>(13)).unwrap_or(0)),
        exceptions_resolved: count(usize::try_from(row.get::<_, i64>(14)).unwrap_or(0)),
        started_by: row.get(11),
        created_at: Some(row.get(12)),
        dry_run: false,
    }
}

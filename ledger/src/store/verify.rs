//! The ledger's invariants, checked against the database: for tests, the benchmark and
//! operators who want proof that the books are sound.

use std::collections::HashMap;

use uuid::Uuid;

use super::{Store, StoreError, rows};
use crate::rules::{Side, Sums};

/// An invariant that does not hold, with what broke it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// Which invariant, in the words of `ARCHITECTURE.md`.
    pub invariant: &'static str,
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

/// Each check: the invariant's name and a query returning one text row per violation.
const CHECKS: &[(&str, &str)] = &[
    (
        "debits equal credits per org and currency",
        "SELECT org_id || ' ' || currency FROM accounts GROUP BY org_id, currency
         HAVING sum(debits_posted) <> sum(credits_posted)
             OR sum(debits_pending) <> sum(credits_pending)",
    ),
    (
        "every transfer balances per currency",
        "SELECT e.transfer_id || ' ' || a.currency FROM entries e
         JOIN accounts a ON a.org_id = e.org_id AND a.id = e.account_id
         GROUP BY e.org_id, e.transfer_id, a.currency
         HAVING sum(CASE e.side WHEN 'debit' THEN e.amount_posted ELSE -e.amount_posted END) <> 0
             OR sum(CASE e.side WHEN 'debit' THEN e.amount_pending ELSE -e.amount_pending END) <> 0",
    ),
    (
        "no negative sums and no account past its limit",
        "SELECT id::text FROM accounts
         WHERE least(debits_posted, credits_posted, debits_pending, credits_pending) < 0
            OR (limit_kind <> 'unbounded' AND normal_side = 'credit'
                AND debits_posted + debits_pending > credits_posted + overdraft_limit)
            OR (limit_kind <> 'unbounded' AND normal_side = 'debit'
                AND credits_posted + credits_pending > debits_posted + overdraft_limit)",
    ),
    (
        "account sums equal the sums of their entries",
        "SELECT a.id::text FROM accounts a
         LEFT JOIN (
             SELECT org_id, account_id,
                 sum(amount_posted) FILTER (WHERE side = 'debit') AS debits_posted,
                 sum(amount_posted) FILTER (WHERE side = 'credit') AS credits_posted,
                 sum(amount_pending) FILTER (WHERE side = 'debit') AS debits_pending,
                 sum(amount_pending) FILTER (WHERE side = 'credit') AS credits_pending,
                 count(*) AS n, max(version) AS version
             FROM entries GROUP BY org_id, account_id
         ) e ON e.org_id = a.org_id AND e.account_id = a.id
         WHERE coalesce(e.debits_posted, 0) <> a.debits_posted
            OR coalesce(e.credits_posted, 0) <> a.credits_posted
            OR coalesce(e.debits_pending, 0) <> a.debits_pending
            OR coalesce(e.credits_pending, 0) <> a.credits_pending
            OR coalesce(e.n, 0) <> a.version OR coalesce(e.version, 0) <> a.version",
    ),
    (
        "each entry's running sums follow from the one before",
        "SELECT account_id || ' v' || version FROM (
             SELECT e.*, lag(e.debits_posted, 1, 0::int8) OVER w AS dp,
                 lag(e.credits_posted, 1, 0::int8) OVER w AS cp,
                 lag(e.debits_pending, 1, 0::int8) OVER w AS dpe,
                 lag(e.credits_pending, 1, 0::int8) OVER w AS cpe
             FROM entries e WINDOW w AS (PARTITION BY org_id, account_id ORDER BY version)
         ) x
         WHERE (side = 'debit' AND (debits_posted <> dp + amount_posted
                 OR debits_pending <> dpe + amount_pending
                 OR credits_posted <> cp OR credits_pending <> cpe))
            OR (side = 'credit' AND (credits_posted <> cp + amount_posted
                 OR credits_pending <> cpe + amount_pending
                 OR debits_posted <> dp OR debits_pending <> dpe))",
    ),
    (
        "an account's entries are recorded at times that never go back",
        "SELECT account_id || ' v' || version FROM (
             SELECT account_id, version, created_at,
                 lag(created_at) OVER (PARTITION BY org_id, account_id ORDER BY version) AS before
             FROM entries
         ) x
         WHERE created_at < before",
    ),
    (
        "every entry belongs to an existing account and an accepted transfer",
        "SELECT e.account_id || ' v' || e.version FROM entries e
         WHERE NOT EXISTS (SELECT 1 FROM accounts a
                           WHERE a.org_id = e.org_id AND a.id = e.account_id)
            OR NOT EXISTS (SELECT 1 FROM transfers t
                           WHERE t.org_id = e.org_id AND t.id = e.transfer_id
                               AND t.rejection IS NULL)",
    ),
    (
        "a pending transfer is open exactly when it is unresolved",
        "SELECT t.id::text FROM transfers t
         WHERE t.kind = 'pending' AND t.rejection IS NULL
           AND EXISTS (SELECT 1 FROM transfers r
                       WHERE r.org_id = t.org_id AND r.pending_id = t.id AND r.rejection IS NULL)
             = EXISTS (SELECT 1 FROM pending_open o
                       WHERE o.org_id = t.org_id AND o.transfer_id = t.id)",
    ),
];

impl Store {
    /// Checks every ledger invariant over the whole database, every org's books (joins stay
    /// within an org) and every org's hash chain ([`Store::verify_chain`]); returns what does
    /// not hold.
    ///
    /// It reads everything, in one repeatable-read snapshot: for tests, benchmarks and audits,
    /// not for a request path.
    pub async fn verify(&self) -> Result<Vec<Violation>, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let mut violations = Vec::new();
        for (invariant, query) in CHECKS {
            for row in tx.query(*query, &[]).await? {
                violations.push(Violation { invariant, detail: row.get(0) });
            }
        }

        // The pending sums equal the open pending transfers' postings.
        let open = tx
            .query(
                &format!(
                    "SELECT {} FROM transfers
                     WHERE (org_id, id) IN (SELECT org_id, transfer_id FROM pending_open)",
                    rows::TRANSFER_COLUMNS
                ),
                &[],
            )
            .await?;
        let mut expected: HashMap<(Uuid, Uuid), Sums> = HashMap::new();
        for row in &open {
            let transfer = rows::transfer(row)?;
            for posting in transfer.postings {
                let sums = expected.entry((transfer.org.0, posting.account.0)).or_default();
                let minor = posting.amount.to_minor().map_err(StoreError::InvalidAmount)?;
                match posting.side {
                    Side::Debit => sums.debits_pending += minor,
                    Side::Credit => sums.credits_pending += minor,
                }
            }
        }
        let pending = tx
            .query(
                "SELECT org_id, id, debits_pending, credits_pending FROM accounts
                 WHERE debits_pending <> 0 OR credits_pending <> 0",
                &[],
            )
            .await?;
        let mut actual: HashMap<(Uuid, Uuid), (i64, i64)> = pending
            .iter()
            .map(|row| ((row.get(0), row.get(1)), (row.get(2), row.get(3))))
            .collect();
        for (account, sums) in &expected {
            let found = actual.remove(account).unwrap_or((0, 0));
            if found != (sums.debits_pending, sums.credits_pending) {
                violations.push(Violation {
                    invariant: "pending sums equal the open pending transfers",
                    detail: account.1.to_string(),
                });
            }
        }
        for account in actual.keys() {
            violations.push(Violation {
                invariant: "pending sums equal the open pending transfers",
                detail: account.1.to_string(),
            });
        }
        tx.commit().await?;
        // Each org's chain, recomputed in a snapshot of its own (it streams, org by org).
        for org in self.orgs().await? {
            let report = self.verify_chain(org).await?;
            if !report.is_intact() {
                violations.push(Violation {
                    invariant: "each org's journal follows from its hash chain",
                    detail: format!("org {org}: {report}"),
                });
            }
        }
        Ok(violations)
    }
}

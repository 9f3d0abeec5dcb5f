-- Reports by effective time (trial balance, balance sheet, income statement, general ledger):
-- the org's posted entries in effective-time order. Without it, every report read all of the
-- org's entries, whatever its period: seconds on a ledger of millions.
--
-- The key is the general ledger's order (effective time, then transfer, account and version,
-- which is unique), so its export reads keyset pages as index ranges; `side` and
-- `amount_posted` ride along so that summing an account's entries over a period reads the
-- index only. Entries that only move pending sums are never in a report of posted amounts and
-- are left out. What it costs the posting path is measured in BENCHMARKS.md ("Reports").
--
-- Built in the migration's transaction (not CONCURRENTLY), so writes to entries wait while it
-- is built: minutes on a ledger of tens of millions of entries.
CREATE INDEX entries_effective ON entries (org_id, effective_at, transfer_id, account_id, version)
    INCLUDE (side, amount_posted)
    WHERE amount_posted > 0;

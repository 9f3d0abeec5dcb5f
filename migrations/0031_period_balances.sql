-- Every account's posted sums at each period close, so that the reports of closed periods
-- read one row per account instead of the entries of the history before them.
--
-- A close seals its period: afterwards no transfer may be effective at or before `through`
-- (0024), so the posted debits and credits of the entries effective at or before it can never
-- change again, and are written once, in the close's transaction, from the previous close's
-- row plus the entries between the two (the effective-time index of 0027). A report at a
-- close's end then reads these rows; one at another time starts from the nearest close before
-- it, or from the account's totals when the end of the history is nearer
-- (`ledger/src/store/reports.rs`). Accounts with nothing posted by then have no row (zero).
-- History: never updated or deleted.
CREATE TABLE period_balances (
    org_id uuid NOT NULL,
    through timestamptz NOT NULL,
    account_id uuid NOT NULL,
    debits_posted bigint NOT NULL CHECK (debits_posted >= 0),
    credits_posted bigint NOT NULL CHECK (credits_posted >= 0),
    PRIMARY KEY (org_id, through, account_id),
    FOREIGN KEY (org_id, through) REFERENCES period_closes (org_id, through)
);

CREATE TRIGGER period_balances_immutable BEFORE UPDATE OR DELETE ON period_balances
    FOR EACH ROW EXECUTE FUNCTION hazina_refuse_change();
CREATE TRIGGER period_balances_no_truncate BEFORE TRUNCATE ON period_balances
    FOR EACH STATEMENT EXECUTE FUNCTION hazina_refuse_change();

-- The closes made before this migration.
INSERT INTO period_balances (org_id, through, account_id, debits_posted, credits_posted)
SELECT c.org_id, c.through, e.account_id,
    COALESCE(sum(e.amount_posted) FILTER (WHERE e.side = 'debit'), 0),
    COALESCE(sum(e.amount_posted) FILTER (WHERE e.side = 'credit'), 0)
FROM period_closes c
JOIN entries e ON e.org_id = c.org_id AND e.amount_posted > 0 AND e.effective_at <= c.through
GROUP BY c.org_id, c.through, e.account_id;

-- The rows reconciliation writes by the million — statement lines, matches, and the lines and
-- transfers each match accounts for — lose their foreign keys. Checking them was most of the
-- cost of importing and matching a large statement: on this kind of machine, inserting
-- 1,000,000 rows shaped like statement lines with their three foreign keys took 39 s against
-- 13 s without (BENCHMARKS.md, "Reconciliation"); a run writes three such tables.
--
-- What the keys protected holds by construction, as for the ledger's entries (ARCHITECTURE.md):
-- a statement line is written only in the transaction that writes its import, under the
-- channel's lock, and the import's own keys name the org and the channel; a match and the
-- lines and transfers it accounts for are written only in the transaction of its run (or of a
-- person's resolution), which names the channel under its lock; none of these rows, nor their
-- parents, is ever deleted. The parents — imports, runs, exceptions — keep theirs.
DO $$
DECLARE
    dropped record;
BEGIN
    FOR dropped IN
        SELECT c.conrelid::regclass AS on_table, c.conname
        FROM pg_constraint c
        WHERE c.contype = 'f'
            AND c.conrelid IN ('statement_lines'::regclass, 'reconciliation_matches'::regclass,
                'reconciliation_matched_lines'::regclass,
                'reconciliation_matched_transfers'::regclass)
    LOOP
        EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', dropped.on_table, dropped.conname);
    END LOOP;
END
$$;

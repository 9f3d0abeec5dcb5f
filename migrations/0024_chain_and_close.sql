-- The tamper-evident journal and period close.
--
-- Each org's accepted transfers form a hash chain: a transfer's `chain_hash` is the SHA-256 of
-- its canonical encoding (`ledger/src/chain.rs`, version 1), which covers its content, its
-- `chain_seq` (1, 2, 3… per org) and the previous transfer's hash. Changing, removing or
-- inserting a transfer after the fact breaks every later hash. The batch path writes both
-- columns when it inserts the transfer (transfers stay insert-only), under the lock of the
-- org's head row below, and moves the head in the same transaction. Rejections are not in the
-- chain (both columns NULL). Transfers recorded before this migration are not chained.
--
-- An org closes a period by `through`: afterwards no transfer may have an effective time at or
-- before it (the rules refuse it with `period_closed`). The close is read under the same head
-- lock as a batch's, so a close and a batch serialise.

CREATE TABLE ledger_heads (
    org_id uuid PRIMARY KEY REFERENCES orgs (id),
    -- The last accepted transfer's chain position and hash (0 and 32 zero bytes before any).
    chain_seq bigint NOT NULL DEFAULT 0 CHECK (chain_seq >= 0),
    chain_hash bytea NOT NULL DEFAULT '\x0000000000000000000000000000000000000000000000000000000000000000'
        CHECK (length(chain_hash) = 32),
    -- The end (inclusive) of the last closed period; NULL while none is closed.
    closed_through timestamptz
)
-- Every batch updates its org's row: free space lets PostgreSQL update it in place (HOT).
WITH (fillfactor = 50);

INSERT INTO ledger_heads (org_id) SELECT id FROM orgs;

-- Adding nullable columns rewrites nothing; the checks read the table once.
ALTER TABLE transfers
    ADD COLUMN chain_seq bigint,
    ADD COLUMN chain_hash bytea,
    ADD CONSTRAINT transfers_chain_whole
        CHECK ((chain_seq IS NULL) = (chain_hash IS NULL)
            AND (chain_seq IS NULL OR (chain_seq > 0 AND length(chain_hash) = 32
                AND rejection IS NULL)));

-- The periods each org closed, with the chain's head at the moment of closing: its hash
-- covers every transfer recorded until then, so a close seals the history it closes.
-- History: never updated or deleted.
CREATE TABLE period_closes (
    org_id uuid NOT NULL REFERENCES orgs (id),
    through timestamptz NOT NULL,
    closed_at timestamptz NOT NULL,
    -- Who closed it: the API key's id, or the name of the tool.
    closed_by text NOT NULL,
    note text,
    chain_seq bigint NOT NULL CHECK (chain_seq >= 0),
    chain_hash bytea NOT NULL CHECK (length(chain_hash) = 32),
    PRIMARY KEY (org_id, through)
);

CREATE TRIGGER period_closes_immutable BEFORE UPDATE OR DELETE ON period_closes
    FOR EACH ROW EXECUTE FUNCTION hazina_refuse_change();
CREATE TRIGGER period_closes_no_truncate BEFORE TRUNCATE ON period_closes
    FOR EACH STATEMENT EXECUTE FUNCTION hazina_refuse_change();

-- An overlapped batch evaluates against the head its writer expects; at commit this fails
-- the statement, and so the transaction, when any head it assumed changed (another process's
-- batch, a close), exactly as 0006's check of its accounts.
CREATE FUNCTION hazina_assert_heads_unchanged(unchanged bigint, assumed bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF unchanged IS DISTINCT FROM assumed THEN
        RAISE EXCEPTION 'a prepared batch''s chain head changed before it committed'
            USING ERRCODE = 'HZ003';
    END IF;
    RETURN true;
END
$$;

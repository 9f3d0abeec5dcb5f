-- The double-entry ledger: orgs, accounts with their running sums, immutable transfers and
-- entries, and the set of pending transfers that are still open.
--
-- Amounts are BIGINT minor units of the account's currency (see ARCHITECTURE.md for why not
-- NUMERIC). Transfers and entries are history: the database refuses to update or delete them.

CREATE TABLE orgs (
    id uuid PRIMARY KEY,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE accounts (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id),
    kind text NOT NULL
        CHECK (kind IN ('purse', 'wallet', 'channel', 'revenue', 'expense', 'equity', 'external')),
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    normal_side text NOT NULL CHECK (normal_side IN ('debit', 'credit')),
    limit_kind text NOT NULL CHECK (limit_kind IN ('no_overdraft', 'overdraft', 'unbounded')),
    overdraft_limit bigint NOT NULL DEFAULT 0 CHECK (overdraft_limit >= 0),
    customer_id uuid,
    wallet_id text,
    name text,
    closed boolean NOT NULL DEFAULT false,
    debits_posted bigint NOT NULL DEFAULT 0 CHECK (debits_posted >= 0),
    credits_posted bigint NOT NULL DEFAULT 0 CHECK (credits_posted >= 0),
    debits_pending bigint NOT NULL DEFAULT 0 CHECK (debits_pending >= 0),
    credits_pending bigint NOT NULL DEFAULT 0 CHECK (credits_pending >= 0),
    version bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'wallet') = (customer_id IS NOT NULL AND wallet_id IS NOT NULL)),
    CHECK (limit_kind = 'overdraft' OR overdraft_limit = 0),
    -- The rules never let an account past its limit; the database refuses it too, so that a bug
    -- fails a batch instead of corrupting a balance. Pending debits (credits) reserve funds.
    CHECK (
        limit_kind = 'unbounded'
        OR (normal_side = 'credit'
            AND debits_posted + debits_pending <= credits_posted + overdraft_limit)
        OR (normal_side = 'debit'
            AND credits_posted + credits_pending <= debits_posted + overdraft_limit)
    )
)
-- Every batch updates its accounts' sums; free space on each page lets PostgreSQL update in
-- place (HOT) instead of adding index entries for every new row version.
WITH (fillfactor = 70);

CREATE INDEX accounts_org ON accounts (org_id, kind);
CREATE UNIQUE INDEX accounts_wallet ON accounts (org_id, customer_id, wallet_id)
    WHERE kind = 'wallet';

-- One row per transfer request that reached the ledger's state checks: accepted ones
-- (rejection IS NULL) and the ones rejected for a reason that depends on ledger state, kept so
-- that a replay of the same id returns the same outcome.
CREATE TABLE transfers (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    kind text NOT NULL CHECK (
        kind IN ('posted', 'pending', 'post_pending', 'void_pending', 'expire_pending', 'reversal')
    ),
    code text NOT NULL,
    -- The legs as posted: [{"account", "side", "amount", "currency"}], amounts as decimal strings.
    postings jsonb NOT NULL,
    -- What the request asked for where it differs from `postings` (partial post amounts).
    requested jsonb,
    pending_id uuid,
    reversal_of uuid,
    timeout_ms bigint CHECK (timeout_ms > 0),
    expires_at timestamptz,
    effective_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    context jsonb NOT NULL DEFAULT '{}',
    rejection text
);

-- A pending transfer is resolved (posted, voided or expired) at most once, and a transfer is
-- reversed at most once: the rules check it, and these indexes make the database refuse it too.
CREATE UNIQUE INDEX transfers_resolution ON transfers (pending_id)
    WHERE pending_id IS NOT NULL AND rejection IS NULL;
CREATE UNIQUE INDEX transfers_reversal ON transfers (reversal_of)
    WHERE reversal_of IS NOT NULL AND rejection IS NULL;

-- One row per account a transfer touched, with the account's sums after it.
--
-- No foreign keys: checking them took more than half of the time of inserting a batch's
-- entries (BENCHMARKS.md). The batch path writes an entry only in the transaction that writes
-- its transfer and locks its account; entries are immutable, transfers can never be deleted,
-- accounts refuse DELETE (below), and `Store::verify` checks that every entry's account and
-- transfer exist.
CREATE TABLE entries (
    account_id uuid NOT NULL,
    version bigint NOT NULL CHECK (version > 0),
    transfer_id uuid NOT NULL,
    side text NOT NULL CHECK (side IN ('debit', 'credit')),
    -- Change to the side's posted sum (never negative) and pending sum (negative on release).
    amount_posted bigint NOT NULL CHECK (amount_posted >= 0),
    amount_pending bigint NOT NULL,
    debits_posted bigint NOT NULL,
    credits_posted bigint NOT NULL,
    debits_pending bigint NOT NULL,
    credits_pending bigint NOT NULL,
    effective_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (account_id, version)
);

-- No index on created_at: an account's entries are recorded in version order with times that
-- never go back, so the store finds the entry at a time by binary search over the primary key
-- (about 20 lookups for a million entries) instead of maintaining a second index on every
-- insert (BENCHMARKS.md).

-- Pending transfers not yet posted, voided or expired. Mutable bookkeeping, not history: the
-- batch-posting path inserts and deletes rows, and the expiry sweeper reads them by deadline.
CREATE TABLE pending_open (
    transfer_id uuid PRIMARY KEY REFERENCES transfers (id),
    org_id uuid NOT NULL,
    expires_at timestamptz
);

CREATE INDEX pending_open_expiry ON pending_open (expires_at) WHERE expires_at IS NOT NULL;

CREATE FUNCTION hazina_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on % is refused: ledger history is immutable', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'integrity_constraint_violation';
END
$$;

CREATE TRIGGER transfers_immutable BEFORE UPDATE OR DELETE ON transfers
    FOR EACH ROW EXECUTE FUNCTION hazina_refuse_change();
CREATE TRIGGER transfers_no_truncate BEFORE TRUNCATE ON transfers
    FOR EACH STATEMENT EXECUTE FUNCTION hazina_refuse_change();
CREATE TRIGGER entries_immutable BEFORE UPDATE OR DELETE ON entries
    FOR EACH ROW EXECUTE FUNCTION hazina_refuse_change();
CREATE TRIGGER entries_no_truncate BEFORE TRUNCATE ON entries
    FOR EACH STATEMENT EXECUTE FUNCTION hazina_refuse_change();

-- Accounts are closed, never deleted: their entries must keep pointing at them.
CREATE TRIGGER accounts_no_delete BEFORE DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION hazina_refuse_change();
CREATE TRIGGER accounts_no_truncate BEFORE TRUNCATE ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION hazina_refuse_change();

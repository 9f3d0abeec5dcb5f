-- Reconciliation: what providers and banks say moved through a payment channel (statement
-- lines, imported from their files), matched against the ledger's transfers on the channel's
-- clearing account, and what did not match as exceptions that a person resolves.
--
-- Statement lines are facts about the outside world, kept as imported: never updated. A
-- match, an exception and its resolution are decisions, recorded beside them; a resolution
-- that moves money is a ledger transfer named here, never an edit of history.

-- One imported file: where it came from and what it added.
CREATE TABLE statement_imports (
    org_id uuid NOT NULL REFERENCES orgs (id),
    id uuid NOT NULL,
    channel_id uuid NOT NULL,
    -- mpesa_csv, mpesa_pull, momo_report, camt053, camt054, mt940.
    format text NOT NULL,
    file_name text,
    file_sha256 bytea NOT NULL,
    file_bytes bigint NOT NULL,
    -- Lines the file held; new to the channel; already known (an overlapping file);
    -- skipped (pending or failed on the statement, or in another currency).
    lines_read integer NOT NULL,
    lines_new integer NOT NULL,
    lines_known integer NOT NULL,
    lines_skipped integer NOT NULL,
    -- Who imported it: the key's id.
    imported_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, channel_id) REFERENCES payment_channels (org_id, id)
);

CREATE INDEX statement_imports_channel ON statement_imports (org_id, channel_id, created_at);
-- The same file imported again is found by its digest.
CREATE INDEX statement_imports_digest ON statement_imports (org_id, channel_id, file_sha256);

-- One transaction on a provider's or bank's statement, once per channel however many files
-- carry it (`key`: the provider's receipt, else a digest of what the line says).
CREATE TABLE statement_lines (
    org_id uuid NOT NULL REFERENCES orgs (id),
    channel_id uuid NOT NULL,
    key text NOT NULL,
    -- The first file that carried it, and its place there (1-based).
    import_id uuid NOT NULL,
    position integer NOT NULL,
    receipt text,
    reference text,
    batch text,
    direction text NOT NULL CHECK (direction IN ('in', 'out')),
    currency text NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    fee_minor bigint NOT NULL DEFAULT 0 CHECK (fee_minor >= 0),
    is_fee boolean NOT NULL DEFAULT false,
    booked_at timestamptz NOT NULL,
    value_date date NOT NULL,
    balance_after_minor bigint,
    counterparty text,
    description text,
    reversal boolean NOT NULL DEFAULT false,
    PRIMARY KEY (org_id, channel_id, key),
    FOREIGN KEY (org_id, import_id) REFERENCES statement_imports (org_id, id),
    FOREIGN KEY (org_id, channel_id) REFERENCES payment_channels (org_id, id)
);

CREATE INDEX statement_lines_date ON statement_lines (org_id, channel_id, value_date);

-- The statement's closing balance of a day, as a file stated it (a statement's closing
-- balance, or the balance after a day's last line): what the clearing account should hold.
CREATE TABLE statement_balances (
    org_id uuid NOT NULL REFERENCES orgs (id),
    channel_id uuid NOT NULL,
    day date NOT NULL,
    currency text NOT NULL,
    closing_minor bigint NOT NULL,
    import_id uuid NOT NULL,
    PRIMARY KEY (org_id, channel_id, day),
    FOREIGN KEY (org_id, import_id) REFERENCES statement_imports (org_id, id),
    FOREIGN KEY (org_id, channel_id) REFERENCES payment_channels (org_id, id)
);

-- One matching of a channel's statement lines against its ledger transfers over a period.
CREATE TABLE reconciliation_runs (
    org_id uuid NOT NULL REFERENCES orgs (id),
    id uuid NOT NULL,
    channel_id uuid NOT NULL,
    from_date date NOT NULL,
    to_date date NOT NULL,
    -- The rules as applied: tolerances, fee netting, group size.
    rules jsonb NOT NULL,
    lines integer NOT NULL,
    items integer NOT NULL,
    matched integer NOT NULL,
    differences integer NOT NULL,
    unmatched_lines integer NOT NULL,
    unmatched_items integer NOT NULL,
    started_by text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, channel_id) REFERENCES payment_channels (org_id, id),
    CHECK (from_date <= to_date)
);

CREATE INDEX reconciliation_runs_channel ON reconciliation_runs (org_id, channel_id, created_at);

-- A set of statement lines matched to a set of ledger transfers: by a run's rule, or by a
-- person resolving exceptions (`run_id` null, `decided_by` set).
CREATE TABLE reconciliation_matches (
    org_id uuid NOT NULL REFERENCES orgs (id),
    id uuid NOT NULL,
    channel_id uuid NOT NULL,
    run_id uuid,
    -- reference, batch, amount_and_date, group, … or manual.
    rule text NOT NULL,
    -- Statement total minus ledger total, signed, in minor units; days between them.
    amount_difference_minor bigint NOT NULL,
    days_difference integer NOT NULL,
    decided_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, run_id) REFERENCES reconciliation_runs (org_id, id),
    FOREIGN KEY (org_id, channel_id) REFERENCES payment_channels (org_id, id)
);

-- A line is matched at most once, and so is a transfer: the keys say so. No foreign key to
-- the line: checking it took 26 of a 20,000-line run's 28 seconds (BENCHMARKS.md), and what it
-- would protect holds by construction — a run matches only lines it read under the channel's
-- lock, and lines are never deleted.
CREATE TABLE reconciliation_matched_lines (
    org_id uuid NOT NULL,
    channel_id uuid NOT NULL,
    line_key text NOT NULL,
    match_id uuid NOT NULL,
    PRIMARY KEY (org_id, channel_id, line_key),
    FOREIGN KEY (org_id, match_id) REFERENCES reconciliation_matches (org_id, id),
    FOREIGN KEY (org_id, channel_id) REFERENCES payment_channels (org_id, id)
);

CREATE TABLE reconciliation_matched_transfers (
    org_id uuid NOT NULL,
    channel_id uuid NOT NULL,
    transfer_id uuid NOT NULL,
    match_id uuid NOT NULL,
    PRIMARY KEY (org_id, channel_id, transfer_id),
    FOREIGN KEY (org_id, match_id) REFERENCES reconciliation_matches (org_id, id),
    FOREIGN KEY (org_id, channel_id) REFERENCES payment_channels (org_id, id)
);

-- What a run could not match, or matched with a difference: a person's to resolve.
CREATE TABLE reconciliation_exceptions (
    org_id uuid NOT NULL REFERENCES orgs (id),
    id uuid NOT NULL,
    channel_id uuid NOT NULL,
    -- The run that found it first.
    run_id uuid NOT NULL,
    -- unmatched_statement: the provider moved money we do not know of; unmatched_ledger: we
    -- think money moved that the provider does not show; difference: matched, but the amounts
    -- differ beyond nothing.
    kind text NOT NULL CHECK (kind IN ('unmatched_statement', 'unmatched_ledger', 'difference')),
    line_key text,
    transfer_id uuid,
    match_id uuid,
    currency text NOT NULL,
    direction text NOT NULL CHECK (direction IN ('in', 'out')),
    amount_minor bigint NOT NULL,
    -- For a difference: statement minus ledger.
    difference_minor bigint NOT NULL DEFAULT 0,
    value_date date NOT NULL,
    status text NOT NULL CHECK (status IN ('open', 'resolved')),
    owner text,
    note text,
    -- matched (by hand or by a later run), adjusted (a ledger transfer booked the
    -- difference), written_off (a recorded decision), recorded_payment (a received payment
    -- recorded from the line), settled_payment (a stuck payment settled from the line).
    resolution text CHECK (resolution IN
        ('matched', 'adjusted', 'written_off', 'recorded_payment', 'settled_payment')),
    resolution_transfer_id uuid,
    resolution_match_id uuid,
    reason text,
    resolved_by text,
    created_at timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, run_id) REFERENCES reconciliation_runs (org_id, id),
    FOREIGN KEY (org_id, channel_id) REFERENCES payment_channels (org_id, id),
    FOREIGN KEY (org_id, channel_id, line_key) REFERENCES statement_lines (org_id, channel_id, key),
    CHECK ((kind = 'unmatched_ledger') = (line_key IS NULL)),
    CHECK ((kind = 'unmatched_statement') = (transfer_id IS NULL)),
    CHECK ((status = 'resolved') = (resolution IS NOT NULL)),
    CHECK ((status = 'resolved') = (resolved_at IS NOT NULL))
);

-- One open exception per line and per transfer: a run again over the same days finds the
-- exceptions it found before instead of raising them twice.
CREATE UNIQUE INDEX reconciliation_exceptions_open_line
    ON reconciliation_exceptions (org_id, channel_id, line_key, kind)
    WHERE status = 'open' AND line_key IS NOT NULL;
CREATE UNIQUE INDEX reconciliation_exceptions_open_transfer
    ON reconciliation_exceptions (org_id, channel_id, transfer_id, kind)
    WHERE status = 'open' AND transfer_id IS NOT NULL;
CREATE INDEX reconciliation_exceptions_status
    ON reconciliation_exceptions (org_id, status, created_at);

-- Payments still with their provider, oldest first, for the stuck-payments list.
CREATE INDEX provider_payments_unsettled ON provider_payments (org_id, created_at)
    WHERE stage <> 'settled';

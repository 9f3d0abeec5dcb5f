-- Bank channels: payouts sent to a bank as ISO 20022 files through a file-exchange directory
-- (pain.001 out; pain.002 and camt.054 in), and collections recognised from camt.054 credits.
--
-- A bank channel is a `payment_channels` row (provider `bank`, its number the org's debtor
-- account) with its bank details and cut-off schedule in `bank_channels`. A payout to a bank
-- account is a `provider_payments` row like any other; it waits (stage `sent`, in no file)
-- until a cut-off collects it into a `bank_files` row, its membership recorded in
-- `bank_file_payments` in the same transaction. The file on disk is written from the
-- recorded row afterwards, so a crash between recording and writing rewrites the same file
-- (same message id, same payments) and never makes a second one. Inbound files are recorded
-- once per channel by their SHA-256 digest in `bank_inbound_files`.

ALTER TABLE payment_channels DROP CONSTRAINT payment_channels_provider_check;
ALTER TABLE payment_channels ADD CONSTRAINT payment_channels_provider_check
    CHECK (provider IN ('mpesa', 'momo', 'africastalking', 'bank'));

CREATE TABLE bank_channels (
    org_id uuid NOT NULL,
    channel_id uuid NOT NULL,
    -- The debtor as the bank knows it (`Dbtr/Nm`, `DbtrAgt/FinInstnId/BIC`).
    debtor_name text NOT NULL CHECK (length(debtor_name) BETWEEN 1 AND 140),
    bic text NOT NULL CHECK (bic ~ '^[A-Z]{6}[A-Z0-9]{2}([A-Z0-9]{3})?$'),
    -- Cut-off times of day, minutes after midnight in the channel's UTC offset, ascending.
    cut_offs integer[] NOT NULL CHECK (cardinality(cut_offs) BETWEEN 1 AND 48),
    utc_offset_minutes integer NOT NULL CHECK (utc_offset_minutes BETWEEN -840 AND 840),
    -- The last cut-off the worker took (a file made or nothing queued); the next is the first
    -- scheduled time after it.
    last_cut_off_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, channel_id),
    FOREIGN KEY (org_id, channel_id) REFERENCES payment_channels (org_id, id)
);

CREATE TABLE bank_files (
    org_id uuid NOT NULL,
    id uuid NOT NULL,
    channel_id uuid NOT NULL,
    -- `GrpHdr/MsgId` and `PmtInf/PmtInfId`: unique per channel (banks refuse a repeated one).
    message_id text NOT NULL CHECK (length(message_id) BETWEEN 1 AND 35),
    file_name text NOT NULL,
    payment_count integer NOT NULL CHECK (payment_count > 0),
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    control_sum_minor bigint NOT NULL CHECK (control_sum_minor > 0),
    execution_date date NOT NULL,
    -- `cut_off` (the schedule) or `on_demand` (the API).
    reason text NOT NULL CHECK (reason IN ('cut_off', 'on_demand')),
    -- `prepared`: recorded, not yet on disk; `written`: renamed into `out/`.
    status text NOT NULL CHECK (status IN ('prepared', 'written')),
    -- The bank's group status from its pain.002 (`ACCP`, `PART`, `RJCT`, …), once it answered.
    bank_status text,
    created_at timestamptz NOT NULL DEFAULT now(),
    written_at timestamptz,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, channel_id, message_id),
    FOREIGN KEY (org_id, channel_id) REFERENCES payment_channels (org_id, id)
);

CREATE INDEX bank_files_unwritten ON bank_files (org_id, channel_id) WHERE status = 'prepared';

-- A payment is in one file at most: the key is the payment.
CREATE TABLE bank_file_payments (
    org_id uuid NOT NULL,
    payment_id uuid NOT NULL,
    file_id uuid NOT NULL,
    PRIMARY KEY (org_id, payment_id),
    FOREIGN KEY (org_id, file_id) REFERENCES bank_files (org_id, id),
    FOREIGN KEY (org_id, payment_id) REFERENCES provider_payments (org_id, id)
);

CREATE INDEX bank_file_payments_file ON bank_file_payments (org_id, file_id);

CREATE TABLE bank_inbound_files (
    org_id uuid NOT NULL,
    id uuid NOT NULL,
    channel_id uuid NOT NULL,
    -- SHA-256 of the file's bytes, hex: the same file delivered twice is read once.
    digest text NOT NULL CHECK (digest ~ '^[0-9a-f]{64}$'),
    file_name text NOT NULL,
    -- `pain.002.001.03`, `camt.054.001.02`, … when it could be read.
    message_name text,
    message_id text,
    -- `processing` until every payment it names was updated; `processed`; `unreadable` (not
    -- an ISO 20022 message we read); `refused` (for another account or channel).
    status text NOT NULL CHECK (status IN ('processing', 'processed', 'unreadable', 'refused')),
    detail text,
    applied integer NOT NULL DEFAULT 0,
    -- What moved no money and needs a person: amounts that disagree, credits no account takes,
    -- references we do not know.
    exceptions jsonb NOT NULL DEFAULT '[]',
    received_at timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, channel_id, digest),
    FOREIGN KEY (org_id, channel_id) REFERENCES payment_channels (org_id, id)
);

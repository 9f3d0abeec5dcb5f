-- The outbox: what happened that an app may care about, written in the same transaction as
-- the change it tells of, so that a change that rolled back tells nothing and one that
-- committed is never lost.
--
-- Each org's events are numbered 1, 2, 3, … in the order their transactions committed. A
-- transaction writes its events' rows (`event_rows`) with its other writes, each with its
-- place in the transaction (`ord`, from 0); then, as its last statement before COMMIT, one
-- `event_batches` row that takes the next numbers from the org's counter (`event_counters`),
-- whose row it holds until it commits. So numbers become visible in order and without gaps,
-- and what a transaction does while holding the counter (or, in the ledger, the accounts'
-- locks) is one small row, however many events it tells. An event's number is its batch's
-- `first_seq` plus its `ord`; the view `events` shows every event with its number.

CREATE TABLE event_counters (
    org_id uuid PRIMARY KEY,
    last_seq bigint NOT NULL CHECK (last_seq > 0)
);

CREATE TABLE event_batches (
    org_id uuid NOT NULL,
    first_seq bigint NOT NULL CHECK (first_seq > 0),
    -- At most 10,000, so that a reader after a number knows how far back a batch that holds
    -- it may start.
    count integer NOT NULL CHECK (count BETWEEN 1 AND 10000),
    -- Its last 16 bits are zero: its events' ids carry their `ord` there.
    batch_id uuid NOT NULL CHECK (right(batch_id::text, 4) = '0000'),
    PRIMARY KEY (org_id, first_seq),
    UNIQUE (org_id, batch_id)
);

CREATE TABLE event_rows (
    org_id uuid NOT NULL,
    -- Its transaction's `event_batches` row (written in the same transaction).
    batch_id uuid NOT NULL,
    -- Its id (a webhook's `webhook-id`) is the batch id, whose last 16 bits are zero, with
    -- `ord` in them: found by id through the primary key, with no index of its own.
    ord integer NOT NULL CHECK (ord >= 0 AND ord < 65536),
    type text NOT NULL,
    -- The payload's version within its type.
    version smallint NOT NULL DEFAULT 1,
    app_id uuid,
    customer_id uuid,
    at timestamptz NOT NULL,
    -- The ledger transfer it came from, if any: its context is the event's context.
    transfer_id uuid,
    -- For a transfer's event, the accounts it moved and each one's version after it, as
    -- `[[account, version], …]` (their balances are in `entries`); NULL otherwise.
    accounts jsonb,
    -- NULL for a transfer's event, whose payload and context are the (immutable) transfer's.
    payload jsonb,
    -- The context of the change (a payment's, as its app gave it).
    context jsonb,
    PRIMARY KEY (org_id, batch_id, ord)
);

CREATE INDEX event_rows_customer ON event_rows (org_id, customer_id) WHERE customer_id IS NOT NULL;

CREATE VIEW events AS
SELECT r.org_id, b.first_seq + r.ord AS seq,
    (left(r.batch_id::text, 32) || lpad(to_hex(r.ord), 4, '0'))::uuid AS id, r.type, r.version, r.app_id, r.customer_id,
    r.at, r.transfer_id, r.accounts, r.payload, r.context
FROM event_batches AS b
JOIN event_rows AS r ON r.org_id = b.org_id AND r.batch_id = b.batch_id;

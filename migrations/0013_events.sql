-- The outbox: what happened that an app may care about, written in the same transaction as
-- the change it tells of, so that a change that rolled back tells nothing and one that
-- committed is never lost.
--
-- Each org's events are numbered 1, 2, 3, … in the order their transactions committed: a
-- transaction takes its numbers from `event_counters` as its last statement before COMMIT,
-- holding the org's counter row until it commits, so no reader ever sees a number before a
-- smaller one of the same org. Readers page by `seq` and miss nothing.

CREATE TABLE event_counters (
    org_id uuid PRIMARY KEY,
    last_seq bigint NOT NULL CHECK (last_seq > 0)
);

CREATE TABLE events (
    org_id uuid NOT NULL,
    seq bigint NOT NULL CHECK (seq > 0),
    -- Unique; a webhook's `webhook-id`.
    id uuid NOT NULL,
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
    PRIMARY KEY (org_id, seq)
);

CREATE INDEX events_customer ON events (org_id, customer_id, seq) WHERE customer_id IS NOT NULL;
CREATE INDEX events_at ON events (org_id, at);
CREATE INDEX events_id ON events (org_id, id);

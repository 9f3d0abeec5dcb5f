-- Messenger's watermarks, kept (`server/src/messaging/inbound.rs`, `worker.rs`), and an index
-- for the messaging worker's claim of due messages.

-- The latest `delivery` and `read` watermark of each customer of a channel: every message to
-- them sent at or before `up_to` is delivered (or read). A watermark names no message, so
-- one that arrives before the answer to a send (when the message has no provider id yet)
-- cannot be parked as a status report is; it is kept here instead, and applied to the
-- message when its provider id is recorded. Keyed by the customer's address on the channel
-- (the PSID), which is what the watermark names and what each message records.
CREATE TABLE messaging_watermarks (
    org_id uuid NOT NULL,
    channel_id uuid NOT NULL,
    customer_number text NOT NULL,
    status text NOT NULL CHECK (status IN ('delivered', 'read')),
    up_to timestamptz NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, channel_id, customer_number, status),
    FOREIGN KEY (org_id, channel_id) REFERENCES messaging_channels (org_id, id)
);

-- When the message's latest request left (the worker's claim): a watermark covers a message
-- whose request had left by its time, not one merely queued by then (a message queued before
-- the customer read the conversation, and sent after, is not read).
ALTER TABLE messages ADD COLUMN sending_at timestamptz;

-- The worker's claim takes the due messages of every org, soonest first, a batch at a time
-- (`messaging::worker`, `claim`). `messages_due` leads with `org_id`, so across orgs it can
-- only be read whole and sorted: every claim read the whole due backlog (with a bulk send's
-- 100,000 queued, 85 ms and a sort spilled to disk to take 1,000 of them; 1.3 ms through this
-- index). This index is in the claim's order, so a claim reads only what it takes; it holds
-- only messages not yet done.
-- It replaces `messages_due`, which nothing else read.
CREATE INDEX messages_claim ON messages (next_attempt_at) WHERE stage <> 'done';
DROP INDEX messages_due;

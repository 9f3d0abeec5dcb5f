-- Payments through a provider: a payout to a customer's mobile money (B2C), a collection from
-- it (C2B checkout), and a payment a customer made unprompted (C2B confirmation). Each one's
-- life is kept here so that any process, after any restart, can carry it on: the ledger holds
-- the money (a pending transfer under the payment's id, posted or voided once), this table
-- holds what the provider said and what to ask it next.

-- Each channel's callback URLs carry a secret only the provider is told: a callback that
-- presents it is taken as the provider's; one that does not is only a hint, confirmed by a
-- status query before money moves. Received payments without a wallet go to the channel's
-- receiving purse.
ALTER TABLE payment_channels
    ADD COLUMN callback_token text NOT NULL
        DEFAULT replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''),
    ADD COLUMN receiving_purse_id uuid;

CREATE TABLE provider_payments (
    -- The payment's transaction id, which is also its pending transfer's id.
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id),
    -- The app whose key made it; null for an org key or a received payment.
    app_id uuid,
    channel_id uuid NOT NULL REFERENCES payment_channels (id),
    flow text NOT NULL CHECK (flow IN ('payout', 'collect', 'received')),
    customer_id uuid,
    -- The customer's number as the provider writes it (E.164 without '+'), or as it arrived.
    msisdn text NOT NULL,
    -- Our side of the payment: the purse or wallet paid from or into.
    account_id uuid NOT NULL,
    currency text NOT NULL,
    amount_minor bigint NOT NULL CHECK (amount_minor > 0),
    -- The key we send and the provider deduplicates on (B2C OriginatorConversationID, MoMo
    -- X-Reference-Id), or the provider's id of a received payment (M-Pesa TransID): one per
    -- channel, so a payment is never sent under a second key and a duplicate is never taken
    -- twice.
    our_reference text NOT NULL,
    -- reserving: the row exists, the reservation may not; sending: the request may have left;
    -- sent: the provider answered (or a callback did); settled: posted or voided, or refused
    -- before anything was sent.
    stage text NOT NULL CHECK (stage IN ('reserving', 'sending', 'sent', 'settled')),
    -- The platform's payment status (queued, pending_confirmation, success, failed, …).
    status text NOT NULL,
    settled text CHECK (settled IN ('posted', 'voided')),
    -- The provider's id for our request (CheckoutRequestID, ConversationID) and its receipt
    -- for the money that moved.
    request_reference text,
    receipt text,
    -- The provider's result code, and its words for it.
    provider_code text,
    provider_description text,
    -- How many times it was asked about, and when next; null once nothing is due.
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    -- The payment as asked (parties, value, narration), for its view and for replays.
    request jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel_id, our_reference),
    CHECK ((stage = 'settled') = (next_attempt_at IS NULL))
);

CREATE INDEX provider_payments_due ON provider_payments (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX provider_payments_reference ON provider_payments (channel_id, request_reference)
    WHERE request_reference IS NOT NULL;
CREATE INDEX provider_payments_org ON provider_payments (org_id, id);

-- Every status a payment passed through, in order: what the notifications issue delivers.
CREATE TABLE provider_payment_events (
    payment_id uuid NOT NULL REFERENCES provider_payments (id),
    seq integer NOT NULL,
    at timestamptz NOT NULL DEFAULT now(),
    status text NOT NULL,
    -- What said it: request, response, callback, query, recovery.
    source text NOT NULL,
    provider_code text,
    description text,
    PRIMARY KEY (payment_id, seq)
);

-- Every callback as it arrived. One that matched no payment yet stays parked (payment_id
-- null) until a payment with its reference is recorded.
CREATE TABLE provider_callbacks (
    id bigserial PRIMARY KEY,
    channel_id uuid NOT NULL REFERENCES payment_channels (id),
    payment_id uuid REFERENCES provider_payments (id),
    kind text NOT NULL,
    -- The references it carries (ours and the provider's), for matching a parked one.
    refs text[] NOT NULL DEFAULT '{}',
    verified boolean NOT NULL,
    body text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX provider_callbacks_parked ON provider_callbacks USING gin (refs)
    WHERE payment_id IS NULL;

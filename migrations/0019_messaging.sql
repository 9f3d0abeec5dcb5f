-- Messaging (`server/src/messaging/`): an org's channels at messaging providers, the messages
-- sent and received on them with each one's status history, what each customer allowed on each
-- channel, sessions (USSD, voice calls), and send-by-tag jobs.

-- A channel: one number (short code, sender id, USSD code, voice number, WhatsApp number, bot
-- name, page id, email address) of one channel at one provider. Credentials are sealed at rest
-- (bound to the row's id). A message's cost moves from the org's messaging purse (`purse_id`)
-- to the channel's clearing account: reserved when the message is queued, posted or voided on
-- the provider's answer.
CREATE TABLE messaging_channels (
    org_id uuid NOT NULL REFERENCES orgs (id),
    id uuid NOT NULL,
    channel text NOT NULL
        CHECK (channel IN ('sms', 'voice', 'ussd', 'messenger', 'telegram', 'whatsapp', 'email')),
    provider text NOT NULL
        CHECK (provider IN ('africastalking', 'meta', 'telegram', 'smtp')),
    channel_number text NOT NULL,
    name text,
    base_url text NOT NULL,
    credentials jsonb NOT NULL,
    -- The secret every callback URL of the channel carries.
    callback_token text NOT NULL,
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- What one unit costs (an SMS segment, a voice minute, a message), in minor units.
    unit_price_minor bigint NOT NULL CHECK (unit_price_minor >= 0),
    purse_id uuid,
    clearing_account_id uuid NOT NULL,
    -- Whether a customer must have opted in before anything is sent (else: unless opted out).
    consent_required boolean NOT NULL DEFAULT false,
    -- USSD and voice: what the customer gets when the app does not answer in time.
    fallback_text text NOT NULL DEFAULT 'Sorry, the service is unavailable. Please try again later.',
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, channel, channel_number)
);

-- Messages, outbound and inbound. `stage` is where an outbound one is in our hands: `queued`
-- (to send at `next_attempt_at`), `sending` (the request may have left), `done`. `status` is
-- the platform's delivery status, moved only to a status of higher rank (`status_rank`), so a
-- late `sent` never overwrites `delivered`.
CREATE TABLE messages (
    org_id uuid NOT NULL,
    id uuid NOT NULL,
    app_id uuid,
    channel_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    direction text NOT NULL CHECK (direction IN ('outbound', 'inbound')),
    -- The customer's address on the channel.
    customer_number text NOT NULL,
    body jsonb NOT NULL,
    stage text NOT NULL CHECK (stage IN ('queued', 'sending', 'done')),
    status text NOT NULL,
    status_rank smallint NOT NULL,
    reason text,
    provider_message_id text,
    session_id text,
    reply_to uuid,
    job_id uuid,
    payment_id uuid,
    -- What it is reserved to cost (units x the channel's unit price), and what the provider
    -- said it cost, in the channel's currency's minor units.
    units integer NOT NULL DEFAULT 0,
    cost_reserved_minor bigint NOT NULL DEFAULT 0,
    cost_minor bigint,
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    context jsonb,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, channel_id) REFERENCES messaging_channels (org_id, id)
);

CREATE UNIQUE INDEX messages_by_provider_id
    ON messages (org_id, channel_id, direction, provider_message_id)
    WHERE provider_message_id IS NOT NULL;
CREATE INDEX messages_due ON messages (org_id, next_attempt_at) WHERE stage <> 'done';
CREATE INDEX messages_by_customer ON messages (org_id, customer_id, created_at);
CREATE INDEX messages_by_job ON messages (org_id, job_id) WHERE job_id IS NOT NULL;

-- Every status a message took, in order.
CREATE TABLE message_statuses (
    org_id uuid NOT NULL,
    message_id uuid NOT NULL,
    seq integer NOT NULL,
    status text NOT NULL,
    reason text,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (org_id, message_id, seq)
);

-- What a customer allowed on a channel number, and when they last wrote in on it (which opens
-- WhatsApp's and Messenger's 24-hour customer-service window).
CREATE TABLE messaging_contacts (
    org_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    channel_id uuid NOT NULL,
    consent text CHECK (consent IN ('allowed', 'blocked')),
    consent_source text,
    consent_updated_at timestamptz,
    last_inbound_at timestamptz,
    PRIMARY KEY (org_id, customer_id, channel_id)
);

-- USSD sessions and voice calls.
CREATE TABLE messaging_sessions (
    org_id uuid NOT NULL,
    channel_id uuid NOT NULL,
    provider_session_id text NOT NULL,
    customer_id uuid NOT NULL,
    status text NOT NULL,
    steps integer NOT NULL DEFAULT 0,
    started_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    ended_at timestamptz,
    PRIMARY KEY (org_id, channel_id, provider_session_id)
);

-- A message to every customer with a tag, sent in the background in customer id order;
-- `through` is the last customer queued.
CREATE TABLE message_jobs (
    org_id uuid NOT NULL,
    id uuid NOT NULL,
    app_id uuid,
    channel_id uuid NOT NULL,
    tag_key text NOT NULL,
    tag_value text,
    body jsonb NOT NULL,
    status text NOT NULL CHECK (status IN ('running', 'done')),
    through uuid,
    queued bigint NOT NULL DEFAULT 0,
    refused bigint NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (org_id, id)
);

CREATE INDEX message_jobs_running ON message_jobs (org_id, created_at) WHERE status = 'running';

-- Status reports that named a provider id no message had yet (a delivery report that beat
-- the answer to its send): applied when the id is recorded.
CREATE TABLE message_reports_parked (
    org_id uuid NOT NULL,
    channel_id uuid NOT NULL,
    provider_message_id text NOT NULL,
    status text NOT NULL,
    reason text,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, channel_id, provider_message_id, status)
);

-- Webhooks: the org's endpoints, their signing secrets, one delivery per event and endpoint,
-- and every attempt to deliver it.
--
-- Fan-out copies each new event of the outbox (`events`, 0013) past an endpoint's cursor
-- (`fanned_seq`) into a delivery row, in the transaction that moves the cursor on; workers
-- claim due deliveries with a lease (`locked_until`, `lease`) taken by `FOR UPDATE SKIP
-- LOCKED`, so that several processes share them and a crashed worker's are claimed again
-- once its lease has run out.

CREATE TABLE webhook_endpoints (
    org_id uuid NOT NULL,
    id uuid NOT NULL,
    -- NULL for an org-level endpoint (all the org's events); else the app's and the org's.
    app_id uuid,
    url text NOT NULL,
    -- Empty: every stored type.
    event_types text[] NOT NULL DEFAULT '{}',
    enabled boolean NOT NULL DEFAULT true,
    description text,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- Why it was disabled by the server (`failing`), NULL when enabled or disabled by a caller.
    disabled_reason text,
    -- Since when every delivery to it failed; NULL once one succeeds.
    failing_since timestamptz,
    -- The last event sequence number fanned out to it.
    fanned_seq bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, app_id) REFERENCES apps (org_id, id)
);

-- Several at once while a secret is rotated: each signs until it expires.
CREATE TABLE webhook_secrets (
    org_id uuid NOT NULL,
    endpoint_id uuid NOT NULL,
    id uuid NOT NULL,
    -- `whsec_…`, sealed (`crate::secrets::Sealer`) with the secret's id as associated data.
    sealed text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- NULL: the current secret.
    expires_at timestamptz,
    PRIMARY KEY (org_id, endpoint_id, id),
    FOREIGN KEY (org_id, endpoint_id) REFERENCES webhook_endpoints (org_id, id)
);

CREATE TABLE webhook_deliveries (
    org_id uuid NOT NULL,
    id uuid NOT NULL,
    endpoint_id uuid NOT NULL,
    event_seq bigint NOT NULL,
    -- Its place among the events of one sequence number (a transfer's balance events).
    event_ord integer NOT NULL,
    event_id uuid NOT NULL,
    event_type text NOT NULL,
    occurred_at timestamptz NOT NULL,
    -- A customer's deliveries to an endpoint go in sequence order; NULL: unordered.
    customer_id uuid,
    -- The event as sent (JSON).
    body text NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'succeeded', 'failed')),
    -- Attempts of the current round (a redelivery starts a new one).
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    locked_until timestamptz NOT NULL DEFAULT '-infinity',
    -- The claim that holds it: only its worker records its result.
    lease uuid,
    last_status_code integer,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, endpoint_id, event_id),
    FOREIGN KEY (org_id, endpoint_id) REFERENCES webhook_endpoints (org_id, id)
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX webhook_deliveries_order
    ON webhook_deliveries (org_id, endpoint_id, customer_id, event_seq, event_ord)
    WHERE status = 'pending' AND customer_id IS NOT NULL;
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (org_id, endpoint_id, id);
CREATE INDEX webhook_deliveries_at ON webhook_deliveries (org_id, endpoint_id, occurred_at);

CREATE TABLE webhook_attempts (
    org_id uuid NOT NULL,
    delivery_id uuid NOT NULL,
    id uuid NOT NULL,
    endpoint_id uuid NOT NULL,
    at timestamptz NOT NULL,
    -- NULL when no answer came (refused address, connection failure, timeout).
    status_code integer,
    latency_ms integer NOT NULL,
    error text,
    -- The start of the answer's body (at most 1 KiB of it).
    response text,
    PRIMARY KEY (org_id, delivery_id, id),
    FOREIGN KEY (org_id, delivery_id) REFERENCES webhook_deliveries (org_id, id)
);

-- The HTTP API's data: apps and API keys inside orgs, customers and what an org knows about
-- them, payments, and stored responses for idempotent requests.
--
-- What a payment carries for its customer (an activity, metadata, app data) is written by a
-- trigger on the ledger's transfers (below), so that it commits in the same transaction as the
-- transfer, whichever path wrote it, and never twice: a replayed transfer is not inserted again.

CREATE TABLE apps (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id),
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, name)
);

-- A key is `hz_<prefix>_<secret>`; only the prefix (to find it) and a SHA-256 of the secret are
-- kept. The secret has 256 bits of entropy, so a plain hash is enough (no password stretching).
CREATE TABLE api_keys (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id),
    -- NULL for an org key.
    app_id uuid REFERENCES apps (id),
    prefix text NOT NULL UNIQUE,
    secret_sha256 bytea NOT NULL,
    name text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE INDEX api_keys_org ON api_keys (org_id, created_at);

CREATE TABLE customers (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id),
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX customers_org ON customers (org_id, id);

-- Cellular numbers are stored in E.164; `partition` is '' when not given.
CREATE TABLE customer_numbers (
    org_id uuid NOT NULL,
    provider text NOT NULL
        CHECK (provider IN ('cellular', 'email', 'telegram', 'facebook', 'app')),
    number text NOT NULL,
    partition text NOT NULL DEFAULT '',
    customer_id uuid NOT NULL REFERENCES customers (id),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, provider, number, partition)
);

CREATE INDEX customer_numbers_customer ON customer_numbers (customer_id);

-- Unique within the org while it has not expired; an expired one can be claimed again.
CREATE TABLE customer_secondary_ids (
    org_id uuid NOT NULL,
    key text NOT NULL,
    value text NOT NULL,
    customer_id uuid NOT NULL REFERENCES customers (id),
    expires_at timestamptz,
    PRIMARY KEY (org_id, key, value)
);

CREATE INDEX customer_secondary_ids_customer ON customer_secondary_ids (customer_id);

CREATE TABLE customer_tags (
    customer_id uuid NOT NULL REFERENCES customers (id),
    key text NOT NULL,
    value text NOT NULL,
    expires_at timestamptz,
    PRIMARY KEY (customer_id, key)
);

CREATE INDEX customer_tags_by_tag ON customer_tags (key, value);

-- A value is a string (`is_text`) or bytes.
CREATE TABLE customer_metadata (
    customer_id uuid NOT NULL,
    key text NOT NULL,
    value bytea NOT NULL,
    is_text boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, key)
);

-- One value per customer per app; a lease locks it against other leases until `leased_until`
-- or the next update.
CREATE TABLE app_data (
    customer_id uuid NOT NULL,
    app_id uuid NOT NULL,
    value bytea NOT NULL,
    is_text boolean NOT NULL,
    leased_until timestamptz,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, app_id)
);

CREATE TABLE reminders (
    customer_id uuid NOT NULL REFERENCES customers (id),
    app_id uuid NOT NULL REFERENCES apps (id),
    key text NOT NULL,
    remind_at timestamptz NOT NULL,
    interval_ms bigint CHECK (interval_ms > 0),
    payload text,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, app_id, key)
);

CREATE INDEX reminders_due ON reminders (remind_at);

CREATE TABLE activities (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    app_id uuid NOT NULL,
    source text NOT NULL,
    session_id text NOT NULL,
    key text NOT NULL,
    properties jsonb NOT NULL DEFAULT '{}',
    at timestamptz NOT NULL,
    -- The transfer it came with, if any.
    transfer_id uuid
);

CREATE INDEX activities_customer ON activities (customer_id, at, id);

-- The transfers a customer took part in (as a wallet's owner, or named in the payment's
-- context), for the customer's state and timeline.
CREATE TABLE customer_transfers (
    customer_id uuid NOT NULL,
    transfer_id uuid NOT NULL,
    at timestamptz NOT NULL,
    PRIMARY KEY (customer_id, at, transfer_id)
);

-- Responses to requests sent with an `Idempotency-Key`, per caller (a key's app, or the org).
CREATE TABLE idempotent_requests (
    org_id uuid NOT NULL,
    caller text NOT NULL,
    key text NOT NULL,
    request_sha256 bytea NOT NULL,
    status smallint NOT NULL,
    response jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, caller, key)
);

-- Applies what an accepted transfer carries for customers, from its context's `hazina` object:
--   customers: [uuid]                        linked for their timelines
--   activity:  {id, customer_id, app_id, source, session_id, key, properties, at}
--   metadata:  {customer_id, set: {key: {value (base64), is_text}}, delete: [key]}
--   app_data:  {customer_id, app_id, value (base64), is_text}
-- The API validates all of it before the transfer is submitted: this must not fail.
CREATE FUNCTION hazina_apply_transfer_context() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ctx jsonb := NEW.context -> 'hazina';
    item jsonb;
    entry record;
BEGIN
    IF jsonb_typeof(ctx -> 'customers') = 'array' THEN
        INSERT INTO customer_transfers (customer_id, transfer_id, at)
        SELECT DISTINCT c::uuid, NEW.id, NEW.created_at
        FROM jsonb_array_elements_text(ctx -> 'customers') AS c
        ON CONFLICT DO NOTHING;
    END IF;
    IF NEW.rejection IS NOT NULL THEN
        RETURN NULL;
    END IF;
    item := ctx -> 'activity';
    IF jsonb_typeof(item) = 'object' THEN
        INSERT INTO activities
            (id, org_id, customer_id, app_id, source, session_id, key, properties, at, transfer_id)
        VALUES ((item ->> 'id')::uuid, NEW.org_id, (item ->> 'customer_id')::uuid,
            (item ->> 'app_id')::uuid, item ->> 'source', item ->> 'session_id', item ->> 'key',
            coalesce(item -> 'properties', '{}'), NEW.created_at, NEW.id)
        ON CONFLICT DO NOTHING;
    END IF;
    item := ctx -> 'metadata';
    IF jsonb_typeof(item) = 'object' THEN
        FOR entry IN SELECT key, value FROM jsonb_each(coalesce(item -> 'set', '{}')) LOOP
            INSERT INTO customer_metadata (customer_id, key, value, is_text, updated_at)
            VALUES ((item ->> 'customer_id')::uuid, entry.key,
                decode(entry.value ->> 'value', 'base64'), (entry.value ->> 'is_text')::boolean,
                NEW.created_at)
            ON CONFLICT (customer_id, key) DO UPDATE
                SET value = EXCLUDED.value, is_text = EXCLUDED.is_text,
                    updated_at = EXCLUDED.updated_at;
        END LOOP;
        DELETE FROM customer_metadata
        WHERE customer_id = (item ->> 'customer_id')::uuid
            AND key IN (SELECT jsonb_array_elements_text(coalesce(item -> 'delete', '[]')));
    END IF;
    item := ctx -> 'app_data';
    IF jsonb_typeof(item) = 'object' THEN
        INSERT INTO app_data (customer_id, app_id, value, is_text, leased_until, updated_at)
        VALUES ((item ->> 'customer_id')::uuid, (item ->> 'app_id')::uuid,
            decode(item ->> 'value', 'base64'), (item ->> 'is_text')::boolean, NULL,
            NEW.created_at)
        ON CONFLICT (customer_id, app_id) DO UPDATE
            SET value = EXCLUDED.value, is_text = EXCLUDED.is_text, leased_until = NULL,
                updated_at = EXCLUDED.updated_at;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER transfers_context AFTER INSERT ON transfers
    FOR EACH ROW WHEN (NEW.context ? 'hazina')
    EXECUTE FUNCTION hazina_apply_transfer_context();

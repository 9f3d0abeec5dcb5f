-- Customers with several identities, merged customers, and short-lived client tokens.
--
-- A customer may hold numbers of two more providers: `whatsapp` (E.164, like `cellular`) and
-- `messenger` (a page-scoped id, as text).
ALTER TABLE customer_numbers DROP CONSTRAINT customer_numbers_provider_check;
ALTER TABLE customer_numbers ADD CONSTRAINT customer_numbers_provider_check
    CHECK (provider IN ('cellular', 'email', 'telegram', 'whatsapp', 'facebook', 'messenger',
        'app'));

-- A customer adopted by another (`POST /v1/customers/{id}/adopt`): its row is gone and its id
-- resolves to the adopting customer's, in one hop (a merge points the aliases of the customer
-- it adopts at the adopting one, so chains never form).
CREATE TABLE customer_aliases (
    org_id uuid NOT NULL,
    old_customer_id uuid NOT NULL,
    customer_id uuid NOT NULL,
    merged_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, old_customer_id),
    FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id)
);

CREATE INDEX customer_aliases_customer ON customer_aliases (org_id, customer_id);

-- A client token (`hzc_<org>_<id>_<secret>`), minted by an app key for a browser or device:
-- it acts for the app only to record activities, for one customer when it names one, until
-- it expires or the key that minted it is revoked. Only a SHA-256 of the secret is kept (a
-- 256-bit secret needs no password hashing). The token names its org, so that finding it is
-- filtered by org like every other statement.
CREATE TABLE client_tokens (
    org_id uuid NOT NULL,
    id uuid NOT NULL,
    key_id uuid NOT NULL,
    app_id uuid NOT NULL,
    customer_id uuid,
    secret_sha256 bytea NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, key_id) REFERENCES api_keys (org_id, id),
    FOREIGN KEY (org_id, app_id) REFERENCES apps (org_id, id)
);

CREATE INDEX client_tokens_expires ON client_tokens (org_id, expires_at);

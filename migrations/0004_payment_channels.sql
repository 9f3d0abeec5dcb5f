-- Payment channels: an org's endpoints at a provider (an M-Pesa paybill or till, an MTN MoMo
-- account), each with a clearing account in the ledger for the money held there. The
-- credentials are secrets: the API stores them and never returns them.
CREATE TABLE payment_channels (
    id uuid PRIMARY KEY,
    org_id uuid NOT NULL REFERENCES orgs (id),
    provider text NOT NULL CHECK (provider IN ('mpesa', 'momo')),
    -- The paybill, till or shortcode (M-Pesa), or the account's identifier (MoMo).
    channel_number text NOT NULL,
    currency text NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    name text,
    -- Where the provider's API is: its production or sandbox address, or a simulator.
    base_url text NOT NULL,
    credentials jsonb NOT NULL,
    clearing_account_id uuid NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (org_id, provider, channel_number)
);

CREATE INDEX payment_channels_org ON payment_channels (org_id, id);

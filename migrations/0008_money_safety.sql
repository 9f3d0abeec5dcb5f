-- Money safety (issue 12).
--
-- A provider's trusted answer that disagrees with the payment as recorded (another amount,
-- currency, party or receipt) moves no money: the payment is held in `review` for an
-- operator, with the disagreement in `alert`, and is no longer asked about.
ALTER TABLE provider_payments
    DROP CONSTRAINT provider_payments_stage_check,
    ADD CONSTRAINT provider_payments_stage_check
        CHECK (stage IN ('reserving', 'sending', 'sent', 'review', 'settled')),
    DROP CONSTRAINT provider_payments_check,
    ADD CONSTRAINT provider_payments_due_check
        CHECK ((stage IN ('review', 'settled')) = (next_attempt_at IS NULL)),
    ADD COLUMN alert text;

-- Moving money out of a channel's clearing account (money the provider holds for us) is an
-- org key's treasury operation, up to this amount per payment in the channel's minor units;
-- 0, the default, allows none.
ALTER TABLE payment_channels
    ADD COLUMN treasury_limit_minor bigint NOT NULL DEFAULT 0 CHECK (treasury_limit_minor >= 0);

-- Idempotency-Key: a first request still running holds its key by a lease it renews
-- (`running_until`), so that a retry never takes it over and runs it twice, while one whose
-- process died is taken over once the lease lapses. Replays give back the first response as it
-- was: its headers and its body as bytes. The caller is now the API key's id (the key, not its
-- app or org, scopes an Idempotency-Key); rows of the older scheme are left to expire.
ALTER TABLE idempotent_requests
    ADD COLUMN running_until timestamptz,
    ADD COLUMN response_headers jsonb,
    ADD COLUMN response_body bytea;
CREATE INDEX idempotent_requests_created ON idempotent_requests (org_id, created_at);

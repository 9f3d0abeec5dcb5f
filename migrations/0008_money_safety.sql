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

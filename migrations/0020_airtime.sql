-- Airtime through Africa's Talking (`server/src/payments/airtime.rs`): a payment channel may be
-- an Africa's Talking account, whose payouts are airtime sent to the customer's number. Its
-- payments are provider payments like any other (reserved, sent under the payment's id as the
-- `Idempotency-Key`, posted or voided on the status callback), so only the provider list grows.
ALTER TABLE payment_channels DROP CONSTRAINT payment_channels_provider_check;
ALTER TABLE payment_channels ADD CONSTRAINT payment_channels_provider_check
    CHECK (provider IN ('mpesa', 'momo', 'africastalking'));

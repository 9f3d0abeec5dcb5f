-- The Messenger message tag an outbound message goes with (`providerTag`: `ACCOUNT_UPDATE`,
-- `POST_PURCHASE_UPDATE`, …, `server/src/messaging/outbound.rs`): sent as `MESSAGE_TAG` with
-- it, which lets a non-promotional message go outside the customer's 24-hour window. None for
-- every other message. The values are checked by the API, not here, so that a tag Meta adds
-- needs no migration.
ALTER TABLE messages ADD COLUMN provider_tag text;

-- The rest of the API's tables keyed by org, as 0009 did for the ledger's and 0010 for
-- customers' data: customers, activities, payment channels and provider payments get primary
-- keys `(org_id, id)`, their unique keys include `org_id`, and every foreign key between
-- tables that carry `org_id` is `(org_id, x) REFERENCES parent (org_id, id)`, so that a row
-- can only point at a row of its own org and the schema can be distributed by `org_id`
-- (Citus, one co-location group). Ids are unique per org, like transfers' since 0009.
--
-- Three tables are *reference tables* in such a deployment (small, copied to every node),
-- not distributed: `orgs`, `apps` and `api_keys`. An API key is found by its prefix before
-- its org is known (that is what authentication is for), so the prefix must stay unique
-- across orgs, which only a reference table can promise; and a reference table cannot point
-- a foreign key at a distributed one, so the apps its keys belong to are a reference table
-- too. Both are small (a few rows per org) and read far more than written. They still get
-- keys `(org_id, id)` like the rest, so that distributed tables (reminders) reference
-- `apps (org_id, id)` and a key's app is always of the key's org. `api_keys.prefix` stays
-- UNIQUE on its own: the one global key left, allowed because its table is a reference table.
-- `tests/tests/server/schema.rs` holds the schema to all of this.
--
-- Upgrading: every row already points at a row of its own org (the API checks the org of
-- what a request names, and 0010 copied the org of the newer columns from the owning rows),
-- so the foreign keys below are added over existing data as they are. A row that does not
-- would make this migration fail rather than be changed: it was never reachable through the
-- API, and an operator decides what it was.
--
-- Each statement is on its own: on a table Citus already knows, a DROP and an ADD of a
-- constraint in one ALTER TABLE are refused.

-- The foreign keys that point at the keys re-made below go first.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_app_id_fkey;
ALTER TABLE reminders DROP CONSTRAINT reminders_app_id_fkey;
ALTER TABLE reminders DROP CONSTRAINT reminders_customer_id_fkey;
ALTER TABLE customer_numbers DROP CONSTRAINT customer_numbers_customer_id_fkey;
ALTER TABLE customer_secondary_ids DROP CONSTRAINT customer_secondary_ids_customer_id_fkey;
ALTER TABLE customer_tags DROP CONSTRAINT customer_tags_customer_id_fkey;
ALTER TABLE provider_payments DROP CONSTRAINT provider_payments_channel_id_fkey;
ALTER TABLE provider_payment_events DROP CONSTRAINT provider_payment_events_payment_id_fkey;
ALTER TABLE provider_callbacks DROP CONSTRAINT provider_callbacks_channel_id_fkey;
ALTER TABLE provider_callbacks DROP CONSTRAINT provider_callbacks_payment_id_fkey;

-- Apps and API keys (reference tables, see above).
ALTER TABLE apps DROP CONSTRAINT apps_pkey;
ALTER TABLE apps ADD CONSTRAINT apps_pkey PRIMARY KEY (org_id, id);
ALTER TABLE api_keys DROP CONSTRAINT api_keys_pkey;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_pkey PRIMARY KEY (org_id, id);

-- Customers and their activities. The org's index of customers is now the primary key.
ALTER TABLE customers DROP CONSTRAINT customers_pkey;
ALTER TABLE customers ADD CONSTRAINT customers_pkey PRIMARY KEY (org_id, id);
DROP INDEX customers_org;
ALTER TABLE activities DROP CONSTRAINT activities_pkey;
ALTER TABLE activities ADD CONSTRAINT activities_pkey PRIMARY KEY (org_id, id);

-- Payment channels: a clearing account is one channel's within the org (accounts are keyed
-- `(org_id, id)` since 0009).
ALTER TABLE payment_channels DROP CONSTRAINT payment_channels_pkey;
ALTER TABLE payment_channels ADD CONSTRAINT payment_channels_pkey PRIMARY KEY (org_id, id);
DROP INDEX payment_channels_org;
ALTER TABLE payment_channels DROP CONSTRAINT payment_channels_clearing_account_id_key;
ALTER TABLE payment_channels ADD CONSTRAINT payment_channels_org_id_clearing_account_id_key
    UNIQUE (org_id, clearing_account_id);

-- Provider payments: one per reference on a channel, as before (a channel is one org's).
ALTER TABLE provider_payments DROP CONSTRAINT provider_payments_pkey;
ALTER TABLE provider_payments ADD CONSTRAINT provider_payments_pkey PRIMARY KEY (org_id, id);
DROP INDEX provider_payments_org;
ALTER TABLE provider_payments DROP CONSTRAINT provider_payments_channel_id_our_reference_key;
ALTER TABLE provider_payments ADD CONSTRAINT provider_payments_org_id_channel_id_our_reference_key
    UNIQUE (org_id, channel_id, our_reference);

-- The foreign keys again, each within the org.
ALTER TABLE api_keys ADD CONSTRAINT api_keys_app_id_fkey
    FOREIGN KEY (org_id, app_id) REFERENCES apps (org_id, id);
ALTER TABLE reminders ADD CONSTRAINT reminders_app_id_fkey
    FOREIGN KEY (org_id, app_id) REFERENCES apps (org_id, id);
ALTER TABLE reminders ADD CONSTRAINT reminders_customer_id_fkey
    FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id);
ALTER TABLE customer_numbers ADD CONSTRAINT customer_numbers_customer_id_fkey
    FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id);
ALTER TABLE customer_secondary_ids ADD CONSTRAINT customer_secondary_ids_customer_id_fkey
    FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id);
ALTER TABLE customer_tags ADD CONSTRAINT customer_tags_customer_id_fkey
    FOREIGN KEY (org_id, customer_id) REFERENCES customers (org_id, id);
ALTER TABLE provider_payments ADD CONSTRAINT provider_payments_channel_id_fkey
    FOREIGN KEY (org_id, channel_id) REFERENCES payment_channels (org_id, id);
ALTER TABLE provider_payment_events ADD CONSTRAINT provider_payment_events_payment_id_fkey
    FOREIGN KEY (org_id, payment_id) REFERENCES provider_payments (org_id, id);
ALTER TABLE provider_callbacks ADD CONSTRAINT provider_callbacks_channel_id_fkey
    FOREIGN KEY (org_id, channel_id) REFERENCES payment_channels (org_id, id);
-- A parked callback has no payment: with `payment_id` null the key is not checked.
ALTER TABLE provider_callbacks ADD CONSTRAINT provider_callbacks_payment_id_fkey
    FOREIGN KEY (org_id, payment_id) REFERENCES provider_payments (org_id, id);

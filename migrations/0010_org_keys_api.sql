-- The API's tables that had no `org_id` take it from the rows that own them, and their keys
-- lead with it, as 0009 did for the ledger's: customers' tags, metadata, app data and
-- reminders from the customer, a payment's events from the payment, a callback from its
-- channel. Every statement on them now names the org.
--
-- Metadata and app data had no foreign key to their customer; a row whose customer does not
-- exist could never be read (every read finds the customer in the caller's org first) and has
-- no org to take: it is deleted.

ALTER TABLE customer_tags ADD COLUMN org_id uuid;
UPDATE customer_tags AS t SET org_id = c.org_id FROM customers AS c WHERE c.id = t.customer_id;
ALTER TABLE customer_tags ALTER COLUMN org_id SET NOT NULL;
ALTER TABLE customer_tags DROP CONSTRAINT customer_tags_pkey;
ALTER TABLE customer_tags ADD CONSTRAINT customer_tags_pkey PRIMARY KEY (org_id, customer_id, key);
DROP INDEX customer_tags_by_tag;
CREATE INDEX customer_tags_by_tag ON customer_tags (org_id, key, value);

ALTER TABLE customer_metadata ADD COLUMN org_id uuid;
UPDATE customer_metadata AS m SET org_id = c.org_id FROM customers AS c WHERE c.id = m.customer_id;
DELETE FROM customer_metadata WHERE org_id IS NULL;
ALTER TABLE customer_metadata ALTER COLUMN org_id SET NOT NULL;
ALTER TABLE customer_metadata DROP CONSTRAINT customer_metadata_pkey;
ALTER TABLE customer_metadata ADD CONSTRAINT customer_metadata_pkey
    PRIMARY KEY (org_id, customer_id, key);

ALTER TABLE app_data ADD COLUMN org_id uuid;
UPDATE app_data AS d SET org_id = c.org_id FROM customers AS c WHERE c.id = d.customer_id;
DELETE FROM app_data WHERE org_id IS NULL;
ALTER TABLE app_data ALTER COLUMN org_id SET NOT NULL;
ALTER TABLE app_data DROP CONSTRAINT app_data_pkey;
ALTER TABLE app_data ADD CONSTRAINT app_data_pkey PRIMARY KEY (org_id, customer_id, app_id);

ALTER TABLE reminders ADD COLUMN org_id uuid;
UPDATE reminders AS r SET org_id = c.org_id FROM customers AS c WHERE c.id = r.customer_id;
ALTER TABLE reminders ALTER COLUMN org_id SET NOT NULL;
ALTER TABLE reminders DROP CONSTRAINT reminders_pkey;
ALTER TABLE reminders ADD CONSTRAINT reminders_pkey PRIMARY KEY (org_id, customer_id, app_id, key);
DROP INDEX reminders_due;
CREATE INDEX reminders_due ON reminders (org_id, remind_at);

ALTER TABLE provider_payment_events ADD COLUMN org_id uuid;
UPDATE provider_payment_events AS e SET org_id = p.org_id
    FROM provider_payments AS p WHERE p.id = e.payment_id;
ALTER TABLE provider_payment_events ALTER COLUMN org_id SET NOT NULL;
ALTER TABLE provider_payment_events DROP CONSTRAINT provider_payment_events_pkey;
ALTER TABLE provider_payment_events ADD CONSTRAINT provider_payment_events_pkey
    PRIMARY KEY (org_id, payment_id, seq);

ALTER TABLE provider_callbacks ADD COLUMN org_id uuid;
UPDATE provider_callbacks AS b SET org_id = c.org_id
    FROM payment_channels AS c WHERE c.id = b.channel_id;
ALTER TABLE provider_callbacks ALTER COLUMN org_id SET NOT NULL;
ALTER TABLE provider_callbacks DROP CONSTRAINT provider_callbacks_pkey;
ALTER TABLE provider_callbacks ADD CONSTRAINT provider_callbacks_pkey PRIMARY KEY (org_id, id);

-- A customer's activities, newest first, within the org.
DROP INDEX activities_customer;
CREATE INDEX activities_customer ON activities (org_id, customer_id, at, id);

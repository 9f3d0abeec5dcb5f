-- Reminders that fire (the reminders worker, `server/src/workers/reminders.rs`), reminders by
-- tag, and the tag index the by-tag commands and firings read.

-- Reminders set for every customer with a tag (`tag_key`, and `tag_value` unless NULL: any
-- value), per app. When one falls due the worker emits one `reminder.due` event per customer
-- that has the tag live at that moment, in chunks of customers in id order: `fired_through`
-- is the last customer reached for the due time `remind_at`, written in the transaction that
-- recorded that chunk's events, so a firing that spans several transactions reaches every
-- customer once. NULL when no firing is under way.
CREATE TABLE tag_reminders (
    org_id uuid NOT NULL,
    app_id uuid NOT NULL,
    tag_key text NOT NULL,
    key text NOT NULL,
    tag_value text,
    remind_at timestamptz NOT NULL,
    interval_ms bigint CHECK (interval_ms > 0),
    payload text,
    fired_through uuid,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, app_id, tag_key, key),
    FOREIGN KEY (org_id, app_id) REFERENCES apps (org_id, id)
);

CREATE INDEX tag_reminders_due ON tag_reminders (org_id, remind_at);

-- The customers with a tag, in id order: with a value (`customer_tags_by_tag`) or with any
-- value (`customer_tags_by_key`), so that pages and firing chunks read an index range.
DROP INDEX customer_tags_by_tag;
CREATE INDEX customer_tags_by_tag ON customer_tags (org_id, key, value, customer_id);
CREATE INDEX customer_tags_by_key ON customer_tags (org_id, key, customer_id);

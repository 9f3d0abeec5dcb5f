-- A ledger batch tells of its transfers in one row per org (`event_transfers`) instead of one
-- row per transfer (`event_rows`, 0013): a row per transfer, with its primary key and the
-- customer index, cost the hot payment workload 14% of its throughput, one row per batch
-- costs it under 10% (BENCHMARKS.md, "The outbox"). Numbering is unchanged: the batch's
-- `event_batches` row, written last, numbers its transfers' events in the order listed.
--
-- The row holds what an event of a transfer needs that the immutable transfer and its
-- entries do not: its customer and app (a transfer that posts, voids, expires or reverses
-- another and names none tells of the other's), and the range of versions each account the
-- batch moved took in it (a transfer's entries are found by their primary key through it:
-- entries have no index by transfer).
CREATE TABLE event_transfers (
    org_id uuid NOT NULL,
    -- Its `event_batches` row (written in the same transaction).
    batch_id uuid NOT NULL,
    -- The accepted transfers in the order told: the one at index i (from 1) is the event at
    -- `ord` i - 1. `customers` and `apps` run in step with it (NULL where there is none).
    transfers uuid[] NOT NULL,
    customers uuid[] NOT NULL,
    apps uuid[] NOT NULL,
    -- Each account the transfers moved, with its first and last version in the batch.
    accounts uuid[] NOT NULL,
    first_versions bigint[] NOT NULL,
    last_versions bigint[] NOT NULL,
    PRIMARY KEY (org_id, batch_id),
    CHECK (cardinality(customers) = cardinality(transfers)
        AND cardinality(apps) = cardinality(transfers)
        AND cardinality(first_versions) = cardinality(accounts)
        AND cardinality(last_versions) = cardinality(accounts))
);

-- A transfer's event, found from the transfer (an org's events filtered by customer are found
-- through the customer's transfers): its batch and place. NULL for a refused transfer.
ALTER TABLE transfers ADD COLUMN event_batch uuid, ADD COLUMN event_ord integer,
    ADD CONSTRAINT transfers_event_place CHECK ((event_batch IS NULL) = (event_ord IS NULL));

-- The events already told one row per transfer move to the new form. Transfers are immutable
-- (0001); their new columns are filled here, once.
INSERT INTO event_transfers
    (org_id, batch_id, transfers, customers, apps, accounts, first_versions, last_versions)
SELECT told.org_id, told.batch_id, told.transfers, told.customers, told.apps,
    coalesce(moved.accounts, '{}'), coalesce(moved.first_versions, '{}'),
    coalesce(moved.last_versions, '{}')
FROM (
    SELECT org_id, batch_id, array_agg(transfer_id ORDER BY ord) AS transfers,
        array_agg(customer_id ORDER BY ord) AS customers, array_agg(app_id ORDER BY ord) AS apps
    FROM event_rows WHERE transfer_id IS NOT NULL AND payload IS NULL
    GROUP BY org_id, batch_id
) AS told
LEFT JOIN (
    SELECT org_id, batch_id, array_agg(account ORDER BY account) AS accounts,
        array_agg(first ORDER BY account) AS first_versions,
        array_agg(last ORDER BY account) AS last_versions
    FROM (
        SELECT r.org_id, r.batch_id, (pair ->> 0)::uuid AS account,
            min((pair ->> 1)::bigint) AS first, max((pair ->> 1)::bigint) AS last
        FROM event_rows AS r, jsonb_array_elements(r.accounts) AS pair
        WHERE r.transfer_id IS NOT NULL AND r.payload IS NULL
        GROUP BY 1, 2, 3
    ) AS ranges
    GROUP BY org_id, batch_id
) AS moved USING (org_id, batch_id);

ALTER TABLE transfers DISABLE TRIGGER transfers_immutable;
UPDATE transfers AS t SET event_batch = r.batch_id, event_ord = r.ord
FROM event_rows AS r
WHERE r.org_id = t.org_id AND r.transfer_id = t.id AND r.payload IS NULL;
ALTER TABLE transfers ENABLE TRIGGER transfers_immutable;

DROP VIEW events;
DELETE FROM event_rows WHERE transfer_id IS NOT NULL AND payload IS NULL;
ALTER TABLE event_rows DROP COLUMN accounts;

-- Every event, numbered: the rows recorded with their payloads, and the ledger's transfers
-- with the accounts each moved and their versions after it (`[[account, version], …]`).
CREATE VIEW events AS
SELECT r.org_id, b.first_seq + r.ord AS seq,
    (left(r.batch_id::text, 32) || lpad(to_hex(r.ord), 4, '0'))::uuid AS id, r.type, r.version,
    r.app_id, r.customer_id, r.at, r.transfer_id, NULL::jsonb AS accounts, r.payload, r.context
FROM event_batches AS b
JOIN event_rows AS r ON r.org_id = b.org_id AND r.batch_id = b.batch_id
UNION ALL
SELECT x.org_id, b.first_seq + told.ord - 1 AS seq,
    (left(x.batch_id::text, 32) || lpad(to_hex(told.ord - 1), 4, '0'))::uuid AS id,
    CASE t.kind
        WHEN 'posted' THEN 'transfer.posted' WHEN 'post_pending' THEN 'transfer.posted'
        WHEN 'pending' THEN 'transfer.pending' WHEN 'void_pending' THEN 'transfer.voided'
        WHEN 'expire_pending' THEN 'transfer.expired' WHEN 'reversal' THEN 'transfer.reversed'
    END AS type,
    1::smallint AS version, told.app_id, told.customer_id, t.created_at AS at,
    told.transfer_id,
    (SELECT jsonb_agg(jsonb_build_array(e.account_id, e.version) ORDER BY e.account_id)
     FROM unnest(x.accounts, x.first_versions, x.last_versions) AS a (account, first, last)
     JOIN entries AS e ON e.org_id = x.org_id AND e.account_id = a.account
         AND e.version BETWEEN a.first AND a.last
     WHERE e.transfer_id = told.transfer_id) AS accounts,
    NULL::jsonb AS payload, t.context
FROM event_batches AS b
JOIN event_transfers AS x ON x.org_id = b.org_id AND x.batch_id = b.batch_id
CROSS JOIN LATERAL unnest(x.transfers, x.customers, x.apps) WITH ORDINALITY
    AS told (transfer_id, customer_id, app_id, ord)
JOIN transfers AS t ON t.org_id = x.org_id AND t.id = told.transfer_id;

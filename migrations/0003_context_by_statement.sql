-- Links payments to their customers' timelines with one statement per batch instead of one
-- trigger call per transfer: nearly every payment carries `hazina.customers`, and the row
-- trigger's call, JSON walk and single-row insert cost more than the transfer's own insert.
-- What else a context carries (activity, metadata, app data) is rare and stays per row, now
-- called only for accepted transfers that carry one of them.

DROP TRIGGER transfers_context ON transfers;

CREATE FUNCTION hazina_link_transfer_customers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO customer_transfers (customer_id, transfer_id, at)
    SELECT DISTINCT c::uuid, t.id, t.created_at
    FROM inserted AS t,
        jsonb_array_elements_text(
            CASE WHEN jsonb_typeof(t.context -> 'hazina' -> 'customers') = 'array'
                THEN t.context -> 'hazina' -> 'customers' ELSE '[]' END) AS c
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE TRIGGER transfers_customers AFTER INSERT ON transfers
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION hazina_link_transfer_customers();

-- As in 0002, without the customers (linked above) and the rejection check (in the WHEN).
CREATE OR REPLACE FUNCTION hazina_apply_transfer_context() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    ctx jsonb := NEW.context -> 'hazina';
    item jsonb;
    entry record;
BEGIN
    item := ctx -> 'activity';
    IF jsonb_typeof(item) = 'object' THEN
        INSERT INTO activities
            (id, org_id, customer_id, app_id, source, session_id, key, properties, at, transfer_id)
        VALUES ((item ->> 'id')::uuid, NEW.org_id, (item ->> 'customer_id')::uuid,
            (item ->> 'app_id')::uuid, item ->> 'source', item ->> 'session_id', item ->> 'key',
            coalesce(item -> 'properties', '{}'), NEW.created_at, NEW.id)
        ON CONFLICT DO NOTHING;
    END IF;
    item := ctx -> 'metadata';
    IF jsonb_typeof(item) = 'object' THEN
        FOR entry IN SELECT key, value FROM jsonb_each(coalesce(item -> 'set', '{}')) LOOP
            INSERT INTO customer_metadata (customer_id, key, value, is_text, updated_at)
            VALUES ((item ->> 'customer_id')::uuid, entry.key,
                decode(entry.value ->> 'value', 'base64'), (entry.value ->> 'is_text')::boolean,
                NEW.created_at)
            ON CONFLICT (customer_id, key) DO UPDATE
                SET value = EXCLUDED.value, is_text = EXCLUDED.is_text,
                    updated_at = EXCLUDED.updated_at;
        END LOOP;
        DELETE FROM customer_metadata
        WHERE customer_id = (item ->> 'customer_id')::uuid
            AND key IN (SELECT jsonb_array_elements_text(coalesce(item -> 'delete', '[]')));
    END IF;
    item := ctx -> 'app_data';
    IF jsonb_typeof(item) = 'object' THEN
        INSERT INTO app_data (customer_id, app_id, value, is_text, leased_until, updated_at)
        VALUES ((item ->> 'customer_id')::uuid, (item ->> 'app_id')::uuid,
            decode(item ->> 'value', 'base64'), (item ->> 'is_text')::boolean, NULL,
            NEW.created_at)
        ON CONFLICT (customer_id, app_id) DO UPDATE
            SET value = EXCLUDED.value, is_text = EXCLUDED.is_text, leased_until = NULL,
                updated_at = EXCLUDED.updated_at;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER transfers_context AFTER INSERT ON transfers
    FOR EACH ROW
    WHEN (NEW.rejection IS NULL
        AND NEW.context -> 'hazina' ?| ARRAY['activity', 'metadata', 'app_data'])
    EXECUTE FUNCTION hazina_apply_transfer_context();

-- Links payments to their customers' timelines with one statement per batch instead of one
-- trigger call per transfer: nearly every payment carries `hazina.customers`, and the row
-- trigger's call, JSON walk and single-row insert cost more than the transfer's own insert.
-- What else a context carries (activity, metadata, app data) is rare and stays per row.

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

-- 0002's function, unchanged, now called only for accepted transfers that carry an activity,
-- metadata or app data (it links their customers too, which the statement trigger then finds
-- already linked).
CREATE TRIGGER transfers_context AFTER INSERT ON transfers
    FOR EACH ROW
    WHEN (NEW.rejection IS NULL
        AND NEW.context -> 'hazina' ?| ARRAY['activity', 'metadata', 'app_data'])
    EXECUTE FUNCTION hazina_apply_transfer_context();

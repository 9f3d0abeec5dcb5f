-- A prepared (overlapped) batch may take its time from its writer's last reading of the
-- database's clock, moved on by the writer's monotonic clock, instead of reading the clock in a
-- round trip of its own. Its guarded update then also refuses it when that time is ahead of the
-- database's clock, so that the times of an account's entries still never go backwards,
-- whichever process writes them: whoever locks the accounts next reads a later time.
--
-- It checks the accounts with 0006's hazina_assert_accounts_unchanged (HZ001), then the time.
--
-- Upgrading: stop servers of earlier versions before a server of this one migrates, since
-- their batches rely on the trigger dropped below for their customers' timeline links.
CREATE FUNCTION hazina_assert_prepared(unchanged bigint, assumed bigint, recorded_at timestamptz)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    PERFORM hazina_assert_accounts_unchanged(unchanged, assumed);
    IF recorded_at > clock_timestamp() THEN
        RAISE EXCEPTION 'a prepared batch''s time is ahead of the database''s clock'
            USING ERRCODE = 'HZ002';
    END IF;
    RETURN true;
END
$$;

-- The store links a batch's transfers to the customers their context names (under
-- `hazina.customers`) with one plain insert per batch, sent before the transfers' own: the
-- statement trigger did the same from a transition table, with a JSON walk per row in SQL and
-- a speculative insert per link, and cost PostgreSQL about a sixth of its time per payment.
DROP TRIGGER transfers_customers ON transfers;
DROP FUNCTION hazina_link_transfer_customers();

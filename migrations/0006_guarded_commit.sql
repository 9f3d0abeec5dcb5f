-- A prepared (overlapped) batch commits in one round trip: one statement locks its accounts
-- in id order, compares them with the states the batch was evaluated against and updates
-- them, with this function failing the statement, and so the transaction, when any of them
-- changed; the COMMIT sent behind it then rolls back, and the batch is applied again.
CREATE FUNCTION hazina_assert_accounts_unchanged(unchanged bigint, assumed bigint)
RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    IF unchanged IS DISTINCT FROM assumed THEN
        RAISE EXCEPTION 'a prepared batch''s accounts changed before it committed'
            USING ERRCODE = 'HZ001';
    END IF;
    RETURN true;
END
$$;

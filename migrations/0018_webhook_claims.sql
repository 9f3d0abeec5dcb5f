-- A worker claims each endpoint's due deliveries up to that endpoint's room (so that a slow
-- endpoint holds only its own share of a worker's requests): found per endpoint, in the order
-- they are claimed, by this index, reading no further than it claims.
CREATE INDEX webhook_deliveries_endpoint_due
    ON webhook_deliveries (org_id, endpoint_id, next_attempt_at, event_seq, event_ord)
    WHERE status = 'pending';

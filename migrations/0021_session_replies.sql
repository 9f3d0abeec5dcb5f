-- A session step a provider waits on (a USSD screen, a voice call's next actions), keyed by
-- its `message.received` event: the app answers it through its webhook's response or through
-- the stream's reply endpoint (`POST /v1/events/{id}/reply`), whichever comes first before
-- `deadline_at`; the channel's fallback otherwise. Whoever sets `body` first (a statement that
-- finds it still empty) decides the answer, so two replies never both reach the provider.
CREATE TABLE messaging_replies (
    org_id uuid NOT NULL,
    event_id uuid NOT NULL,
    channel_id uuid NOT NULL,
    -- The app the step's event is for (NULL: every app of the org may answer).
    app_id uuid,
    deadline_at timestamptz NOT NULL,
    body jsonb,
    -- Who answered: 'webhook', 'stream' or 'fallback'.
    source text,
    answered_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, event_id),
    FOREIGN KEY (org_id, channel_id) REFERENCES messaging_channels (org_id, id),
    CHECK ((body IS NULL) = (source IS NULL) AND (body IS NULL) = (answered_at IS NULL))
);

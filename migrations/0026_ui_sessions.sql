-- Sessions of the finance web UI (`/ui`): a person signs in with an org API key and gets a
-- cookie `hazina_session=<org>.<id>.<secret>`. Only a SHA-256 of the secret is kept (a random
-- 256-bit secret needs no password hashing), beside the session's CSRF token, which every
-- form that changes something must carry back. The session names its org, so finding it is
-- filtered by org like every other statement; it belongs to the key it was opened with, and
-- is refused as soon as that key is revoked (the lookup joins the key). Sessions last 12 hours;
-- signing out deletes the row, and signing in deletes the org's expired ones.
CREATE TABLE ui_sessions (
    org_id uuid NOT NULL REFERENCES orgs (id),
    id uuid NOT NULL,
    key_id uuid NOT NULL,
    secret_hash bytea NOT NULL,
    csrf_token text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (org_id, id),
    FOREIGN KEY (org_id, key_id) REFERENCES api_keys (org_id, id)
);

CREATE INDEX ui_sessions_expires ON ui_sessions (org_id, expires_at);

-- Dashboard sessions: created by signing in with an API key. The cookie
-- holds a random id; only its SHA-256 is stored. The CSRF token is sent
-- back by the page on every POST/DELETE.
CREATE TABLE dashboard_sessions (
    id_hash      text PRIMARY KEY CHECK (id_hash ~ '^[0-9a-f]{64}$'),
    api_key_id   bigint      NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    csrf_token   text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL
);
CREATE INDEX dashboard_sessions_expiry ON dashboard_sessions (expires_at);

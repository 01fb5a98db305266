-- Dashboard: API tokens (stored hashed), one-time login codes, the audit
-- trail of logins, token changes and denied requests, and the key that
-- signs session cookies. Owned by the dashboard (`prescient dashboard`,
-- `prescient token`).

-- One row per token. Only the SHA-256 of the token is stored; the token
-- itself is shown once, when it is created.
CREATE TABLE api_tokens (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text        NOT NULL,
    role        text        NOT NULL CHECK (role IN ('admin', 'operator', 'viewer')),
    tenant      text,                       -- NULL: every tenant; else only this tenant's rows
    hash        bytea       NOT NULL UNIQUE CHECK (length(hash) = 32),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz,                -- NULL: never
    revoked_at  timestamptz                 -- NULL: valid
);

-- One-time login links (`/login?code=…`): single use, short-lived, for one token.
CREATE TABLE login_codes (
    hash        bytea       PRIMARY KEY CHECK (length(hash) = 32),
    token_id    bigint      NOT NULL REFERENCES api_tokens (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);

-- Logins, token changes and denied requests. Never holds a token or cookie.
CREATE TABLE audit_log (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    token_id    bigint,                     -- who, when known
    actor       text,                       -- the token's name, when known
    action      text        NOT NULL,       -- login, logout, token-create, token-revoke, request
    outcome     text        NOT NULL CHECK (outcome IN ('ok', 'denied')),
    detail      text        NOT NULL DEFAULT '',
    client      text                        -- client address
);
CREATE INDEX audit_log_at ON audit_log (at DESC);

-- Secrets shared by every dashboard replica (the session-cookie HMAC key),
-- created on first start.
CREATE TABLE dashboard_secrets (
    name        text        PRIMARY KEY,
    value       bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

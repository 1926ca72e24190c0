-- 0002_auth_tokens: sessions (refresh-token families), refresh tokens,
-- password-reset and email-verification tokens (mod_beautiful_auth).
-- Every token is stored as the lower-case hex SHA-256 of what the client
-- holds: a copy of this database lets no one sign in.

-- One row per login. Core's authn also checks the Redis key
-- "bl:sess:<id>", which revocation deletes, so a revoked session's access
-- tokens stop working at once.
CREATE TABLE sessions (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz NOT NULL DEFAULT now(),
    -- Slides forward on every refresh.
    expires_at    timestamptz NOT NULL,
    revoked_at    timestamptz,
    revoke_reason text,
    ip            inet,
    user_agent    text,
    CONSTRAINT sessions_revoke_reason CHECK (revoke_reason IN (
        'logout', 'logout_all', 'refresh_reuse', 'password_change', 'password_reset',
        'deactivated', 'role_changed', 'account_deleted')),
    CONSTRAINT sessions_revoked_has_reason CHECK ((revoked_at IS NULL) = (revoke_reason IS NULL)),
    CONSTRAINT sessions_user_agent_length CHECK (length(user_agent) <= 512)
);
-- "Every live session of this user" (logout-all, password change, deactivation).
CREATE INDEX sessions_user_live_idx ON sessions (user_id) WHERE revoked_at IS NULL;
-- Cleanup of old rows.
CREATE INDEX sessions_expires_idx ON sessions (expires_at);

-- The chain of a session's refresh tokens: only the newest is unused.
-- Presenting a used one revokes the session (reuse detection), so used
-- rows are kept until a week after they expire.
CREATE TABLE refresh_tokens (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id  uuid        NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    token_hash  text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    CONSTRAINT refresh_tokens_hash_shape CHECK (token_hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at);

-- Single-use links sent by email. A newer link retires older unused ones
-- (their expires_at is set to the time of the newer one).
CREATE TABLE password_reset_tokens (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    CONSTRAINT password_reset_tokens_hash_shape CHECK (token_hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX password_reset_tokens_user_idx ON password_reset_tokens (user_id) WHERE used_at IS NULL;
CREATE INDEX password_reset_tokens_expires_idx ON password_reset_tokens (expires_at);

CREATE TABLE email_verification_tokens (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    token_hash  text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    CONSTRAINT email_verification_tokens_hash_shape CHECK (token_hash ~ '^[0-9a-f]{64}$')
);
CREATE INDEX email_verification_tokens_user_idx ON email_verification_tokens (user_id)
    WHERE used_at IS NULL;
CREATE INDEX email_verification_tokens_expires_idx ON email_verification_tokens (expires_at);

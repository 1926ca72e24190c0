-- 0003_notify: what SMS, push and in-app delivery need on top of the
-- outbox of 0001 — the 'skipped' status, the provider's message id, a
-- sequence for live-stream resume, the preferences and quiet hours each
-- user sets, and the push device registry (mod_beautiful_notify).

-- A row the user's preferences turned away (channel or type disabled, no
-- phone, no device): never retried, not a dead letter. The new value is
-- not used in this transaction (PostgreSQL forbids that).
ALTER TYPE notification_status ADD VALUE IF NOT EXISTS 'skipped';

ALTER TABLE notifications
    -- The provider's id for what it accepted (Twilio's message sid, FCM's
    -- message name): support can trace a message without its content.
    ADD COLUMN provider_id text,
    -- Why a row was skipped ("channel sms disabled"); never personal data.
    ADD COLUMN skip_reason text,
    -- Increasing per row: the live stream's event id, so a client that
    -- reconnects with Last-Event-ID is sent what it missed in order.
    ADD COLUMN seq bigserial,
    ADD CONSTRAINT notifications_provider_id_length CHECK (length(provider_id) <= 200),
    ADD CONSTRAINT notifications_skip_reason_length CHECK (length(skip_reason) <= 200);
-- Stream resume: the user's in-app rows after an event id.
CREATE INDEX notifications_in_app_seq_idx ON notifications (user_id, seq)
    WHERE channel = 'in_app';
-- Dead letters for the admin list.
CREATE INDEX notifications_failed_idx ON notifications (created_at DESC)
    WHERE status = 'failed';

-- One row per user who changed a default. Absent row: every channel and
-- type on, no quiet hours, no phone.
CREATE TABLE notification_preferences (
    user_id       uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    -- {"email": true, "sms": false, ...}: a channel missing is on.
    channels      jsonb       NOT NULL DEFAULT '{}',
    -- {"reminder.due": ["push", "in_app"], ...}: a type listed goes only
    -- to the channels named; a type missing goes everywhere.
    types         jsonb       NOT NULL DEFAULT '{}',
    quiet_start   time,
    quiet_end     time,
    timezone      text        NOT NULL DEFAULT 'UTC',
    phone         text,
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT notification_preferences_channels_object CHECK (jsonb_typeof(channels) = 'object'),
    CONSTRAINT notification_preferences_types_object CHECK (jsonb_typeof(types) = 'object'),
    CONSTRAINT notification_preferences_quiet_pair CHECK ((quiet_start IS NULL) = (quiet_end IS NULL)),
    CONSTRAINT notification_preferences_timezone CHECK (is_valid_timezone(timezone)),
    -- E.164: a plus, then 8 to 15 digits, the first not 0.
    CONSTRAINT notification_preferences_phone_e164 CHECK (phone ~ '^\+[1-9][0-9]{7,14}$')
);
CREATE TRIGGER notification_preferences_set_updated_at BEFORE UPDATE ON notification_preferences
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Push targets. A token belongs to one installation: registered again by
-- another user (a shared phone), it moves to that user.
CREATE TABLE push_devices (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    platform     text        NOT NULL,
    token        text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT push_devices_platform CHECK (platform IN ('android', 'ios', 'web')),
    CONSTRAINT push_devices_token_length CHECK (length(token) BETWEEN 1 AND 4096)
);
CREATE UNIQUE INDEX push_devices_token_key ON push_devices (token);
CREATE INDEX push_devices_user_idx ON push_devices (user_id);

-- Types that reach the user whatever the preferences say: account
-- security mail and emergencies.
CREATE FUNCTION notification_is_urgent(type text) RETURNS boolean
LANGUAGE sql IMMUTABLE AS $$
    SELECT type IN ('auth.verify_email', 'auth.password_reset',
                    'medical.emergency_access', 'community.report_self_harm')
        OR type LIKE 'security.%'
$$;

-- Why preferences turn a row of channel/type away, or NULL to send it.
CREATE FUNCTION notification_opt_out(p notification_preferences,
                                     channel notification_channel, type text)
RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE
        WHEN notification_is_urgent(type) THEN NULL
        WHEN (p.channels -> channel::text) = 'false'::jsonb
            THEN 'channel ' || channel::text || ' disabled'
        WHEN p.types ? type AND NOT (p.types -> type) ? channel::text
            THEN 'type disabled on channel ' || channel::text
    END
$$;

-- When the quiet hours around at end (in the user's zone), or NULL when
-- at is outside them. A window whose start is after its end spans
-- midnight (22:00-07:00).
CREATE FUNCTION notification_quiet_until(p notification_preferences, at timestamptz)
RETURNS timestamptz LANGUAGE plpgsql STABLE AS $$
DECLARE
    local_at timestamp;
    t time;
BEGIN
    IF p.quiet_start IS NULL OR p.quiet_start = p.quiet_end THEN
        RETURN NULL;
    END IF;
    local_at := at AT TIME ZONE p.timezone;
    t := local_at::time;
    IF p.quiet_start < p.quiet_end THEN
        IF t >= p.quiet_start AND t < p.quiet_end THEN
            RETURN (local_at::date + p.quiet_end) AT TIME ZONE p.timezone;
        END IF;
    ELSIF t >= p.quiet_start THEN
        RETURN (local_at::date + 1 + p.quiet_end) AT TIME ZONE p.timezone;
    ELSIF t < p.quiet_end THEN
        RETURN (local_at::date + p.quiet_end) AT TIME ZONE p.timezone;
    END IF;
    RETURN NULL;
END
$$;

-- Quiet hours hold back what buzzes a phone or lands in a mailbox; in-app
-- rows wait silently in the app anyway, and urgent types never wait.
CREATE FUNCTION notification_deferred_until(p notification_preferences,
                                            channel notification_channel, type text,
                                            at timestamptz)
RETURNS timestamptz LANGUAGE sql STABLE AS $$
    SELECT CASE WHEN channel = 'in_app' OR notification_is_urgent(type) THEN NULL
                ELSE notification_quiet_until(p, at) END
$$;

-- 0001_schema.sql — the Beautiful Life data model.
--
-- Forward-only: once applied somewhere, this file is never edited; changes
-- go into a new numbered file. scripts/migrate runs it in one transaction,
-- so it holds no BEGIN/COMMIT and nothing that cannot run in a transaction.
--
-- Conventions:
--  - ids are uuid (gen_random_uuid(), built into PostgreSQL 13+);
--  - every time is timestamptz; month partitions are cut at UTC midnight;
--  - text columns carry length CHECKs so a bug or a hostile client cannot
--    store megabytes in a name;
--  - every foreign key states its ON DELETE rule; the non-obvious ones say
--    why. In short: personal data goes with its owner (CASCADE), records
--    other people or the law still need stay, detached (SET NULL).

-- ===================================================================== helpers

-- Bookkeeping for scripts/migrate (which also creates it before the first
-- run, so the definition here only documents it).
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     text        PRIMARY KEY,
    filename    text,
    checksum    text,
    applied_at  timestamptz NOT NULL DEFAULT now()
);

-- One updated_at trigger function for every table that has the column.
CREATE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

-- True for 'UTC' and IANA zone names ("Asia/Kolkata",
-- "America/Argentina/Buenos_Aires") that this server knows. Abbreviations
-- ("IST") and POSIX offsets ("UTC+5") are refused: they are ambiguous or
-- ignore daylight saving, which a reminder schedule must follow.
CREATE FUNCTION is_valid_timezone(tz text) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF tz IS NULL OR length(tz) > 64
       OR tz !~ '^(UTC|[A-Z][A-Za-z_]+(/[A-Za-z0-9_+-]+){1,2})$' THEN
        RETURN false;
    END IF;
    PERFORM now() AT TIME ZONE tz;
    RETURN true;
EXCEPTION WHEN invalid_parameter_value THEN
    RETURN false;
END
$$;

-- ======================================================================= enums

CREATE TYPE user_role            AS ENUM ('patient', 'caregiver', 'doctor', 'admin');
CREATE TYPE gender_type          AS ENUM ('male', 'female', 'non_binary', 'other', 'prefer_not_to_say');
CREATE TYPE treatment_stage      AS ENUM ('newly_diagnosed', 'in_treatment', 'post_treatment',
                                          'remission', 'survivor', 'palliative');
CREATE TYPE community_role       AS ENUM ('member', 'moderator', 'owner');
CREATE TYPE medical_record_type  AS ENUM ('lab_result', 'imaging', 'pathology_report', 'prescription',
                                          'discharge_summary', 'treatment_plan', 'consultation_note',
                                          'insurance', 'other');
CREATE TYPE share_access_level   AS ENUM ('view', 'download');
CREATE TYPE reminder_type        AS ENUM ('medication', 'appointment', 'other');
CREATE TYPE reminder_log_status  AS ENUM ('fired', 'skipped', 'failed', 'acknowledged');
CREATE TYPE video_session_status AS ENUM ('scheduled', 'live', 'ended', 'cancelled');
CREATE TYPE conversation_kind    AS ENUM ('direct', 'group');
-- Razorpay's own order/payment and subscription life cycles.
CREATE TYPE payment_status       AS ENUM ('created', 'attempted', 'authorized', 'captured',
                                          'failed', 'refunded');
CREATE TYPE subscription_status  AS ENUM ('created', 'authenticated', 'active', 'pending',
                                          'halted', 'cancelled', 'completed', 'expired');
CREATE TYPE ai_interaction_kind  AS ENUM ('chat', 'symptom_analysis', 'medication_check', 'insight');
CREATE TYPE notification_channel AS ENUM ('email', 'sms', 'push', 'in_app');
CREATE TYPE notification_status  AS ENUM ('pending', 'sending', 'sent', 'failed');
CREATE TYPE audit_outcome        AS ENUM ('success', 'failure', 'denied');

-- ======================================================================= users

CREATE TABLE users (
    id                uuid            PRIMARY KEY DEFAULT gen_random_uuid(),
    email             text            NOT NULL,
    password_hash     text            NOT NULL,
    role              user_role       NOT NULL DEFAULT 'patient',
    first_name        text,
    last_name         text,
    date_of_birth     date,
    gender            gender_type,
    cancer_type       text,
    diagnosis_date    date,
    treatment_stage   treatment_stage,
    city              text,
    state             text,
    country           text,
    bio               text,
    avatar_url        text,
    is_public         boolean         NOT NULL DEFAULT false,
    is_active         boolean         NOT NULL DEFAULT true,
    email_verified_at timestamptz,
    last_active_at    timestamptz,
    deleted_at        timestamptz,
    created_at        timestamptz     NOT NULL DEFAULT now(),
    updated_at        timestamptz     NOT NULL DEFAULT now(),
    -- The application trims and lower-cases; the database makes sure.
    CONSTRAINT users_email_normalised CHECK (email = lower(btrim(email))),
    CONSTRAINT users_email_length     CHECK (length(email) BETWEEN 3 AND 254),
    CONSTRAINT users_email_shape      CHECK (position('@' IN email) > 1),
    CONSTRAINT users_password_hash_length CHECK (length(password_hash) BETWEEN 1 AND 512),
    CONSTRAINT users_first_name_length  CHECK (length(first_name)  <= 100),
    CONSTRAINT users_last_name_length   CHECK (length(last_name)   <= 100),
    CONSTRAINT users_cancer_type_length CHECK (length(cancer_type) <= 100),
    CONSTRAINT users_city_length        CHECK (length(city)        <= 100),
    CONSTRAINT users_state_length       CHECK (length(state)       <= 100),
    CONSTRAINT users_country_length     CHECK (length(country)     <= 100),
    CONSTRAINT users_bio_length         CHECK (length(bio)         <= 2000),
    CONSTRAINT users_avatar_url_length  CHECK (length(avatar_url)  <= 2048),
    CONSTRAINT users_date_of_birth_range  CHECK (date_of_birth  >= DATE '1900-01-01'),
    CONSTRAINT users_diagnosis_date_range CHECK (diagnosis_date >= DATE '1900-01-01')
);
-- Case-insensitive uniqueness. The CHECK above already forces lower case;
-- the index is on lower(email) so a lookup by lower($1) uses it either way.
CREATE UNIQUE INDEX users_email_lower_key ON users (lower(email));
-- Admin listing: filter by role, newest first.
CREATE INDEX users_role_created_idx ON users (role, created_at DESC);
CREATE INDEX users_created_idx      ON users (created_at DESC);
-- Public profile search / directory by cancer type.
CREATE INDEX users_public_cancer_type_idx ON users (cancer_type)
    WHERE is_public AND deleted_at IS NULL;
CREATE TRIGGER users_set_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- ================================================================= communities

CREATE TABLE communities (
    id           uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name         text        NOT NULL,
    slug         text        NOT NULL,
    description  text,
    cancer_type  text,
    avatar_url   text,
    is_private   boolean     NOT NULL DEFAULT false,
    -- A community outlives the account that created it; ownership lives in
    -- community_members.
    created_by   uuid        REFERENCES users (id) ON DELETE SET NULL,
    -- Maintained by triggers below; never written by the application.
    member_count integer     NOT NULL DEFAULT 0 CHECK (member_count >= 0),
    post_count   integer     NOT NULL DEFAULT 0 CHECK (post_count >= 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT communities_name_length CHECK (length(btrim(name)) BETWEEN 2 AND 100),
    CONSTRAINT communities_slug_shape  CHECK (slug ~ '^[a-z0-9]+(-[a-z0-9]+)*$' AND length(slug) <= 100),
    CONSTRAINT communities_description_length CHECK (length(description) <= 5000),
    CONSTRAINT communities_cancer_type_length CHECK (length(cancer_type) <= 100),
    CONSTRAINT communities_avatar_url_length  CHECK (length(avatar_url) <= 2048)
);
CREATE UNIQUE INDEX communities_slug_key       ON communities (slug);
CREATE UNIQUE INDEX communities_name_lower_key ON communities (lower(name));
CREATE INDEX communities_created_by_idx  ON communities (created_by);
CREATE INDEX communities_cancer_type_idx ON communities (cancer_type);
CREATE TRIGGER communities_set_updated_at BEFORE UPDATE ON communities
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE community_members (
    community_id uuid           NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    user_id      uuid           NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role         community_role NOT NULL DEFAULT 'member',
    joined_at    timestamptz    NOT NULL DEFAULT now(),
    -- One membership per user and community.
    PRIMARY KEY (community_id, user_id)
);
-- "My communities".
CREATE INDEX community_members_user_idx ON community_members (user_id, joined_at DESC);
-- Moderation: who moderates / owns a community.
CREATE INDEX community_members_staff_idx ON community_members (community_id, role)
    WHERE role <> 'member';

CREATE TABLE community_posts (
    id            uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    community_id  uuid        NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    author_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title         text,
    content       text        NOT NULL,
    is_anonymous  boolean     NOT NULL DEFAULT false,
    is_pinned     boolean     NOT NULL DEFAULT false,
    -- Maintained by triggers below.
    like_count    integer     NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    comment_count integer     NOT NULL DEFAULT 0 CHECK (comment_count >= 0),
    deleted_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT community_posts_title_length   CHECK (length(title) BETWEEN 1 AND 200),
    CONSTRAINT community_posts_content_length CHECK (length(btrim(content)) BETWEEN 1 AND 20000)
);
-- The community feed (newest first, visible posts) and the pinned ones.
CREATE INDEX community_posts_feed_idx   ON community_posts (community_id, created_at DESC, id DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX community_posts_pinned_idx ON community_posts (community_id, created_at DESC)
    WHERE is_pinned AND deleted_at IS NULL;
-- "My posts" and the FK.
CREATE INDEX community_posts_author_idx ON community_posts (author_id, created_at DESC);
CREATE TRIGGER community_posts_set_updated_at BEFORE UPDATE ON community_posts
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE post_comments (
    id                uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    post_id           uuid        NOT NULL REFERENCES community_posts (id) ON DELETE CASCADE,
    author_id         uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    parent_comment_id uuid,
    content           text        NOT NULL,
    deleted_at        timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT post_comments_content_length CHECK (length(btrim(content)) BETWEEN 1 AND 5000),
    CONSTRAINT post_comments_not_own_parent CHECK (parent_comment_id <> id),
    -- Target of the composite FK below.
    CONSTRAINT post_comments_id_post_key UNIQUE (id, post_id),
    -- A reply must belong to the same post as its parent (composite FK;
    -- top-level comments have a NULL parent and are not checked). Hard-
    -- deleting a comment removes its replies; moderators normally soft-delete
    -- (deleted_at) so the thread keeps its shape.
    CONSTRAINT post_comments_parent_fkey FOREIGN KEY (parent_comment_id, post_id)
        REFERENCES post_comments (id, post_id) ON DELETE CASCADE
);
CREATE INDEX post_comments_post_idx   ON post_comments (post_id, created_at);
CREATE INDEX post_comments_parent_idx ON post_comments (parent_comment_id, created_at)
    WHERE parent_comment_id IS NOT NULL;
CREATE INDEX post_comments_author_idx ON post_comments (author_id, created_at DESC);
CREATE TRIGGER post_comments_set_updated_at BEFORE UPDATE ON post_comments
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE post_likes (
    post_id    uuid        NOT NULL REFERENCES community_posts (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    -- One like per user and post.
    PRIMARY KEY (post_id, user_id)
);
CREATE INDEX post_likes_user_idx ON post_likes (user_id, created_at DESC);

-- Denormalised counters so feeds need no COUNT(*) per row. Each trigger
-- touches one parent row; when the parent itself is being deleted (cascade)
-- the UPDATE simply finds nothing.
CREATE FUNCTION community_member_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE communities SET member_count = member_count + 1 WHERE id = NEW.community_id;
    ELSE
        UPDATE communities SET member_count = greatest(member_count - 1, 0) WHERE id = OLD.community_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER community_members_count AFTER INSERT OR DELETE ON community_members
    FOR EACH ROW EXECUTE FUNCTION community_member_count();

CREATE FUNCTION community_post_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE communities SET post_count = post_count + 1 WHERE id = NEW.community_id;
    ELSE
        UPDATE communities SET post_count = greatest(post_count - 1, 0) WHERE id = OLD.community_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER community_posts_count AFTER INSERT OR DELETE ON community_posts
    FOR EACH ROW EXECUTE FUNCTION community_post_count();

CREATE FUNCTION post_like_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE community_posts SET like_count = like_count + 1 WHERE id = NEW.post_id;
    ELSE
        UPDATE community_posts SET like_count = greatest(like_count - 1, 0) WHERE id = OLD.post_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER post_likes_count AFTER INSERT OR DELETE ON post_likes
    FOR EACH ROW EXECUTE FUNCTION post_like_count();

CREATE FUNCTION post_comment_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE community_posts SET comment_count = comment_count + 1 WHERE id = NEW.post_id;
    ELSE
        UPDATE community_posts SET comment_count = greatest(comment_count - 1, 0) WHERE id = OLD.post_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER post_comments_count AFTER INSERT OR DELETE ON post_comments
    FOR EACH ROW EXECUTE FUNCTION post_comment_count();

-- ============================================================= medical records

CREATE TABLE medical_records (
    id                uuid                PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Deleting an account deletes its records and with them the wrapped data
    -- keys (crypto-erase). The module removes the stored blobs first.
    owner_id          uuid                NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title             text                NOT NULL,
    description       text,
    record_type       medical_record_type NOT NULL DEFAULT 'other',
    record_date       date,
    -- Where the ciphertext lives (generated; never derived from the upload name).
    storage_key       text                NOT NULL,
    original_filename text,
    content_type      text                NOT NULL,
    size_bytes        bigint              NOT NULL,
    -- SHA-256 of the plaintext, 32 bytes.
    sha256            bytea               NOT NULL,
    -- Envelope encryption: a fresh data key per record, wrapped by master
    -- key number key_version. NULL once the record is deleted.
    enc_algorithm     text                NOT NULL DEFAULT 'AES-256-GCM',
    wrapped_key       bytea,
    key_version       integer             NOT NULL,
    -- Per-record nonce prefix; chunk n uses prefix || counter(n).
    nonce_prefix      bytea               NOT NULL,
    chunk_size        integer             NOT NULL DEFAULT 65536,
    deleted_at        timestamptz,
    created_at        timestamptz         NOT NULL DEFAULT now(),
    updated_at        timestamptz         NOT NULL DEFAULT now(),
    CONSTRAINT medical_records_title_length       CHECK (length(btrim(title)) BETWEEN 1 AND 200),
    CONSTRAINT medical_records_description_length CHECK (length(description) <= 5000),
    CONSTRAINT medical_records_storage_key_shape  CHECK (length(storage_key) BETWEEN 1 AND 512
                                                         AND storage_key !~ '(^/|\.\.)'),
    CONSTRAINT medical_records_filename_length    CHECK (length(original_filename) <= 255),
    CONSTRAINT medical_records_content_type_shape CHECK (content_type ~ '^[a-z0-9.+-]+/[a-z0-9.+-]+$'
                                                         AND length(content_type) <= 127),
    CONSTRAINT medical_records_size_positive      CHECK (size_bytes >= 0),
    CONSTRAINT medical_records_sha256_length      CHECK (octet_length(sha256) = 32),
    CONSTRAINT medical_records_key_version        CHECK (key_version > 0),
    CONSTRAINT medical_records_wrapped_key_length CHECK (octet_length(wrapped_key) BETWEEN 16 AND 512),
    CONSTRAINT medical_records_nonce_length       CHECK (octet_length(nonce_prefix) BETWEEN 4 AND 16),
    CONSTRAINT medical_records_chunk_size         CHECK (chunk_size BETWEEN 1024 AND 16777216),
    CONSTRAINT medical_records_record_date_range  CHECK (record_date >= DATE '1900-01-01'),
    -- A live record has its key; a deleted one must not keep it.
    CONSTRAINT medical_records_key_iff_live CHECK ((deleted_at IS NULL) = (wrapped_key IS NOT NULL))
);
CREATE UNIQUE INDEX medical_records_storage_key_key ON medical_records (storage_key);
-- "My records", newest first; filtered by type.
CREATE INDEX medical_records_owner_idx ON medical_records (owner_id, created_at DESC)
    WHERE deleted_at IS NULL;
CREATE INDEX medical_records_owner_type_idx ON medical_records (owner_id, record_type, created_at DESC)
    WHERE deleted_at IS NULL;
-- Master-key rotation: find records still wrapped by an old key.
CREATE INDEX medical_records_key_version_idx ON medical_records (key_version)
    WHERE deleted_at IS NULL;
CREATE TRIGGER medical_records_set_updated_at BEFORE UPDATE ON medical_records
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE medical_record_shares (
    id             uuid               PRIMARY KEY DEFAULT gen_random_uuid(),
    record_id      uuid               NOT NULL REFERENCES medical_records (id) ON DELETE CASCADE,
    -- A share is personal to the grantee: gone with their account.
    shared_with_id uuid               NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    access_level   share_access_level NOT NULL DEFAULT 'view',
    note           text,
    expires_at     timestamptz        NOT NULL,
    revoked_at     timestamptz,
    created_at     timestamptz        NOT NULL DEFAULT now(),
    CONSTRAINT medical_record_shares_note_length CHECK (length(note) <= 1000),
    CONSTRAINT medical_record_shares_expiry      CHECK (expires_at > created_at),
    CONSTRAINT medical_record_shares_revocation  CHECK (revoked_at >= created_at)
);
-- One live (unrevoked) share per record and grantee: re-sharing updates it.
-- "Unexpired" cannot be part of an index predicate (now() moves); the
-- cleanup task revokes expired shares, and reads check expires_at > now().
CREATE UNIQUE INDEX medical_record_shares_active_key ON medical_record_shares (record_id, shared_with_id)
    WHERE revoked_at IS NULL;
-- "Shared with me" and the access check (record, grantee, unexpired).
CREATE INDEX medical_record_shares_grantee_idx ON medical_record_shares (shared_with_id, expires_at)
    WHERE revoked_at IS NULL;
-- Cleanup of expired shares.
CREATE INDEX medical_record_shares_expiry_idx ON medical_record_shares (expires_at)
    WHERE revoked_at IS NULL;

-- Sharing a record with its own owner is meaningless; a CHECK cannot look
-- at another table, so a trigger refuses it.
CREATE FUNCTION medical_record_shares_not_owner() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM medical_records
                WHERE id = NEW.record_id AND owner_id = NEW.shared_with_id) THEN
        RAISE EXCEPTION 'a medical record cannot be shared with its owner'
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'medical_record_shares_not_owner';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER medical_record_shares_not_owner
    BEFORE INSERT OR UPDATE OF record_id, shared_with_id ON medical_record_shares
    FOR EACH ROW EXECUTE FUNCTION medical_record_shares_not_owner();

-- Break-glass: a doctor's emergency access to a record without a share,
-- with a stated reason, for a short time. Every grant and every use is
-- also written to audit_logs by the module.
CREATE TABLE medical_record_emergency_access (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    record_id   uuid        NOT NULL REFERENCES medical_records (id) ON DELETE CASCADE,
    -- The audit rows (which outlive the account) keep the evidence.
    doctor_id   uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    reason      text        NOT NULL,
    ip_address  inet,
    granted_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz,
    CONSTRAINT emergency_access_reason_length CHECK (length(btrim(reason)) BETWEEN 10 AND 1000),
    -- Break-glass is for an emergency, not a standing grant.
    CONSTRAINT emergency_access_window CHECK (expires_at > granted_at
                                              AND expires_at <= granted_at + interval '24 hours'),
    CONSTRAINT emergency_access_revocation CHECK (revoked_at >= granted_at)
);
CREATE INDEX emergency_access_doctor_idx ON medical_record_emergency_access (doctor_id, record_id, expires_at)
    WHERE revoked_at IS NULL;
-- The owner's "who looked at my record" view.
CREATE INDEX emergency_access_record_idx ON medical_record_emergency_access (record_id, granted_at DESC);

-- Only an active doctor can break the glass, and never on their own record.
CREATE FUNCTION medical_record_emergency_access_check() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM users
                    WHERE id = NEW.doctor_id AND role = 'doctor'
                      AND is_active AND deleted_at IS NULL) THEN
        RAISE EXCEPTION 'break-glass access requires an active doctor'
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'emergency_access_doctor_role';
    END IF;
    IF EXISTS (SELECT 1 FROM medical_records
                WHERE id = NEW.record_id AND owner_id = NEW.doctor_id) THEN
        RAISE EXCEPTION 'break-glass access to one''s own record is meaningless'
            USING ERRCODE = 'check_violation',
                  CONSTRAINT = 'emergency_access_not_owner';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER medical_record_emergency_access_check
    BEFORE INSERT OR UPDATE OF record_id, doctor_id ON medical_record_emergency_access
    FOR EACH ROW EXECUTE FUNCTION medical_record_emergency_access_check();

-- =================================================================== reminders

CREATE TABLE reminders (
    id              uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid          NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    type            reminder_type NOT NULL,
    title           text          NOT NULL,
    notes           text,
    medication_name text,
    dosage          text,
    location        text,
    -- RFC 5545 recurrence rule ("FREQ=DAILY;BYHOUR=8,20"); NULL = once.
    rrule           text,
    -- The IANA zone the rule is read in, so 08:00 stays 08:00 across DST.
    timezone        text          NOT NULL DEFAULT 'UTC',
    starts_at       timestamptz   NOT NULL,
    ends_at         timestamptz,
    next_fire_at    timestamptz,
    last_fired_at   timestamptz,
    channels        notification_channel[] NOT NULL DEFAULT '{push,in_app}',
    -- Google Calendar mirror, when the user connected one.
    calendar_event_id text,
    is_active       boolean       NOT NULL DEFAULT true,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    updated_at      timestamptz   NOT NULL DEFAULT now(),
    CONSTRAINT reminders_title_length    CHECK (length(btrim(title)) BETWEEN 1 AND 200),
    CONSTRAINT reminders_notes_length    CHECK (length(notes) <= 2000),
    CONSTRAINT reminders_medication_length CHECK (length(medication_name) <= 200),
    CONSTRAINT reminders_dosage_length   CHECK (length(dosage) <= 200),
    CONSTRAINT reminders_location_length CHECK (length(location) <= 500),
    CONSTRAINT reminders_rrule_shape     CHECK (length(rrule) BETWEEN 1 AND 1000 AND rrule ~ '^(RRULE:)?FREQ='),
    CONSTRAINT reminders_timezone_valid  CHECK (is_valid_timezone(timezone)),
    CONSTRAINT reminders_window          CHECK (ends_at > starts_at),
    CONSTRAINT reminders_channels_nonempty CHECK (cardinality(channels) >= 1),
    CONSTRAINT reminders_calendar_event_length CHECK (length(calendar_event_id) <= 1024)
);
-- The scheduler's queue: due, active reminders (claimed FOR UPDATE SKIP LOCKED).
CREATE INDEX reminders_due_idx  ON reminders (next_fire_at) WHERE is_active AND next_fire_at IS NOT NULL;
CREATE INDEX reminders_user_idx ON reminders (user_id, starts_at);
CREATE TRIGGER reminders_set_updated_at BEFORE UPDATE ON reminders
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- =============================================================== notifications

-- The outbox: written in the same transaction as the change that causes
-- it (bl_outbox_add); the delivery worker claims pending rows with
-- FOR UPDATE SKIP LOCKED, sets 'sending', then 'sent' or back to
-- 'pending' with a later next_attempt_at, or 'failed' when it gives up.
CREATE TABLE notifications (
    id              uuid                 PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid                 NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel         notification_channel NOT NULL,
    type            text                 NOT NULL,
    title           text                 NOT NULL,
    body            text                 NOT NULL,
    data            jsonb,
    status          notification_status  NOT NULL DEFAULT 'pending',
    attempts        integer              NOT NULL DEFAULT 0,
    next_attempt_at timestamptz          NOT NULL DEFAULT now(),
    last_error      text,
    sent_at         timestamptz,
    read_at         timestamptz,
    created_at      timestamptz          NOT NULL DEFAULT now(),
    CONSTRAINT notifications_type_length  CHECK (length(type) BETWEEN 1 AND 100),
    CONSTRAINT notifications_title_length CHECK (length(title) <= 500),
    CONSTRAINT notifications_body_length  CHECK (length(body) <= 100000),
    CONSTRAINT notifications_attempts     CHECK (attempts >= 0)
);
-- The delivery queue.
CREATE INDEX notifications_pending_idx ON notifications (next_attempt_at) WHERE status = 'pending';
-- Rows left 'sending' by a crashed worker are reclaimed after their lease.
CREATE INDEX notifications_sending_idx ON notifications (next_attempt_at) WHERE status = 'sending';
-- The user's notification list and the unread badge.
CREATE INDEX notifications_user_idx ON notifications (user_id, created_at DESC);
CREATE INDEX notifications_unread_idx ON notifications (user_id, created_at DESC)
    WHERE channel = 'in_app' AND read_at IS NULL;

CREATE TABLE reminder_logs (
    id              uuid                PRIMARY KEY DEFAULT gen_random_uuid(),
    reminder_id     uuid                NOT NULL REFERENCES reminders (id) ON DELETE CASCADE,
    -- The occurrence this row is for. Unique per reminder, so an occurrence
    -- fires once even if two hosts' schedulers race.
    scheduled_for   timestamptz         NOT NULL,
    fired_at        timestamptz         NOT NULL DEFAULT now(),
    status          reminder_log_status NOT NULL,
    -- The outbox row it produced; the log survives the notification's cleanup.
    notification_id uuid                REFERENCES notifications (id) ON DELETE SET NULL,
    error           text,
    acknowledged_at timestamptz,
    CONSTRAINT reminder_logs_occurrence_key UNIQUE (reminder_id, scheduled_for),
    CONSTRAINT reminder_logs_error_length   CHECK (length(error) <= 2000)
);
CREATE INDEX reminder_logs_reminder_idx     ON reminder_logs (reminder_id, fired_at DESC);
CREATE INDEX reminder_logs_notification_idx ON reminder_logs (notification_id)
    WHERE notification_id IS NOT NULL;

-- ============================================================== video sessions

CREATE TABLE video_sessions (
    id               uuid                 PRIMARY KEY DEFAULT gen_random_uuid(),
    -- NULL for a session outside any community (e.g. a doctor's Q&A).
    community_id     uuid                 REFERENCES communities (id) ON DELETE CASCADE,
    -- A session without its host cannot take place.
    host_id          uuid                 NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title            text                 NOT NULL,
    description      text,
    scheduled_at     timestamptz          NOT NULL,
    duration_minutes integer              NOT NULL DEFAULT 60,
    meet_link        text,
    calendar_event_id text,
    max_participants integer,
    status           video_session_status NOT NULL DEFAULT 'scheduled',
    created_at       timestamptz          NOT NULL DEFAULT now(),
    updated_at       timestamptz          NOT NULL DEFAULT now(),
    CONSTRAINT video_sessions_title_length       CHECK (length(btrim(title)) BETWEEN 1 AND 200),
    CONSTRAINT video_sessions_description_length CHECK (length(description) <= 5000),
    CONSTRAINT video_sessions_duration           CHECK (duration_minutes BETWEEN 5 AND 480),
    CONSTRAINT video_sessions_meet_link_shape    CHECK (meet_link ~ '^https://' AND length(meet_link) <= 2048),
    CONSTRAINT video_sessions_calendar_event_length CHECK (length(calendar_event_id) <= 1024),
    CONSTRAINT video_sessions_max_participants   CHECK (max_participants BETWEEN 2 AND 1000)
);
CREATE INDEX video_sessions_community_idx ON video_sessions (community_id, scheduled_at DESC);
CREATE INDEX video_sessions_host_idx      ON video_sessions (host_id, scheduled_at DESC);
-- Upcoming sessions.
CREATE INDEX video_sessions_upcoming_idx  ON video_sessions (scheduled_at) WHERE status = 'scheduled';
CREATE TRIGGER video_sessions_set_updated_at BEFORE UPDATE ON video_sessions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE video_session_participants (
    session_id    uuid        NOT NULL REFERENCES video_sessions (id) ON DELETE CASCADE,
    user_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    registered_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, user_id)
);
CREATE INDEX video_session_participants_user_idx ON video_session_participants (user_id);

-- ======================================================================== chat

CREATE TABLE chat_conversations (
    id              uuid              PRIMARY KEY DEFAULT gen_random_uuid(),
    kind            conversation_kind NOT NULL DEFAULT 'direct',
    title           text,
    -- A group chat tied to a community goes with it.
    community_id    uuid              REFERENCES communities (id) ON DELETE CASCADE,
    -- The conversation belongs to all its participants, not its creator.
    created_by      uuid              REFERENCES users (id) ON DELETE SET NULL,
    -- For direct chats: the two user ids, sorted, joined by ':' — makes
    -- "one direct conversation per pair" a unique constraint.
    direct_key      text,
    last_message_at timestamptz,
    created_at      timestamptz       NOT NULL DEFAULT now(),
    updated_at      timestamptz       NOT NULL DEFAULT now(),
    CONSTRAINT chat_conversations_title_length CHECK (length(btrim(title)) BETWEEN 1 AND 200),
    CONSTRAINT chat_conversations_direct_key   CHECK ((kind = 'direct') = (direct_key IS NOT NULL)),
    CONSTRAINT chat_conversations_direct_key_shape CHECK (direct_key ~ '^[0-9a-f-]{36}:[0-9a-f-]{36}$')
);
CREATE UNIQUE INDEX chat_conversations_direct_key_key ON chat_conversations (direct_key)
    WHERE direct_key IS NOT NULL;
CREATE INDEX chat_conversations_community_idx ON chat_conversations (community_id)
    WHERE community_id IS NOT NULL;
CREATE INDEX chat_conversations_created_by_idx ON chat_conversations (created_by);
CREATE TRIGGER chat_conversations_set_updated_at BEFORE UPDATE ON chat_conversations
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE chat_participants (
    conversation_id uuid        NOT NULL REFERENCES chat_conversations (id) ON DELETE CASCADE,
    user_id         uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    joined_at       timestamptz NOT NULL DEFAULT now(),
    last_read_at    timestamptz,
    is_muted        boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (conversation_id, user_id)
);
-- "My conversations".
CREATE INDEX chat_participants_user_idx ON chat_participants (user_id, conversation_id);

-- Partitioned by month on created_at; partitions come from
-- create_monthly_partitions() (below, and monthly from the watchdog task).
CREATE TABLE chat_messages (
    id              uuid        NOT NULL DEFAULT gen_random_uuid(),
    conversation_id uuid        NOT NULL REFERENCES chat_conversations (id) ON DELETE CASCADE,
    -- The other participants keep the history when an account is deleted;
    -- the message shows as from a deleted user.
    sender_id       uuid        REFERENCES users (id) ON DELETE SET NULL,
    body            text        NOT NULL,
    attachments     jsonb,
    edited_at       timestamptz,
    deleted_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (id, created_at),
    CONSTRAINT chat_messages_body_length CHECK (length(body) BETWEEN 1 AND 4000),
    CONSTRAINT chat_messages_attachments_array CHECK (jsonb_typeof(attachments) = 'array')
) PARTITION BY RANGE (created_at);
-- The conversation view and the `before` cursor: newest first.
CREATE INDEX chat_messages_conversation_idx ON chat_messages (conversation_id, created_at DESC, id DESC);
CREATE INDEX chat_messages_sender_idx       ON chat_messages (sender_id, created_at DESC);

-- ==================================================================== payments

CREATE TABLE subscriptions (
    id                       uuid                PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Billing records are kept for accounting after an account is deleted
    -- (detached, not destroyed); the module cancels at Razorpay first.
    user_id                  uuid                REFERENCES users (id) ON DELETE SET NULL,
    plan                     text                NOT NULL,
    razorpay_plan_id         text,
    razorpay_subscription_id text,
    status                   subscription_status NOT NULL DEFAULT 'created',
    current_period_start     timestamptz,
    current_period_end       timestamptz,
    cancel_at_period_end     boolean             NOT NULL DEFAULT false,
    cancelled_at             timestamptz,
    created_at               timestamptz         NOT NULL DEFAULT now(),
    updated_at               timestamptz         NOT NULL DEFAULT now(),
    CONSTRAINT subscriptions_plan_shape CHECK (plan ~ '^[a-z0-9_]{1,50}$'),
    CONSTRAINT subscriptions_razorpay_plan_length CHECK (length(razorpay_plan_id) <= 100),
    CONSTRAINT subscriptions_razorpay_id_length   CHECK (length(razorpay_subscription_id) <= 100),
    CONSTRAINT subscriptions_period CHECK (current_period_end > current_period_start)
);
CREATE UNIQUE INDEX subscriptions_razorpay_subscription_id_key ON subscriptions (razorpay_subscription_id);
-- At most one live subscription per user.
CREATE UNIQUE INDEX subscriptions_one_live_per_user ON subscriptions (user_id)
    WHERE status IN ('authenticated', 'active', 'pending', 'halted');
CREATE INDEX subscriptions_user_idx ON subscriptions (user_id, created_at DESC);
-- Expiry sweep.
CREATE INDEX subscriptions_period_end_idx ON subscriptions (current_period_end)
    WHERE status IN ('active', 'pending', 'halted');
CREATE TRIGGER subscriptions_set_updated_at BEFORE UPDATE ON subscriptions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE TABLE payments (
    id                  uuid           PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Kept for accounting after the account goes (see subscriptions).
    user_id             uuid           REFERENCES users (id) ON DELETE SET NULL,
    subscription_id     uuid           REFERENCES subscriptions (id) ON DELETE SET NULL,
    razorpay_order_id   text           NOT NULL,
    razorpay_payment_id text,
    razorpay_signature  text,
    signature_verified  boolean        NOT NULL DEFAULT false,
    -- Smallest currency unit (paise), never a float.
    amount_paise        bigint         NOT NULL,
    currency            text           NOT NULL DEFAULT 'INR',
    status              payment_status NOT NULL DEFAULT 'created',
    description         text,
    notes               jsonb,
    failure_reason      text,
    paid_at             timestamptz,
    refunded_at         timestamptz,
    created_at          timestamptz    NOT NULL DEFAULT now(),
    updated_at          timestamptz    NOT NULL DEFAULT now(),
    CONSTRAINT payments_amount_positive CHECK (amount_paise > 0),
    CONSTRAINT payments_currency_shape  CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT payments_order_id_length   CHECK (length(razorpay_order_id) BETWEEN 1 AND 100),
    CONSTRAINT payments_payment_id_length CHECK (length(razorpay_payment_id) <= 100),
    CONSTRAINT payments_signature_length  CHECK (length(razorpay_signature) <= 256),
    CONSTRAINT payments_description_length CHECK (length(description) <= 500),
    CONSTRAINT payments_failure_length    CHECK (length(failure_reason) <= 2000),
    -- Money taken has a Razorpay payment id.
    CONSTRAINT payments_captured_has_payment_id
        CHECK (status NOT IN ('captured', 'refunded') OR razorpay_payment_id IS NOT NULL)
);
CREATE UNIQUE INDEX payments_razorpay_order_id_key   ON payments (razorpay_order_id);
CREATE UNIQUE INDEX payments_razorpay_payment_id_key ON payments (razorpay_payment_id);
CREATE INDEX payments_user_idx         ON payments (user_id, created_at DESC);
CREATE INDEX payments_subscription_idx ON payments (subscription_id) WHERE subscription_id IS NOT NULL;
CREATE TRIGGER payments_set_updated_at BEFORE UPDATE ON payments
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Razorpay webhook deliveries, by event id: a redelivered event is
-- recognised (unique) and processed once.
CREATE TABLE payment_webhook_events (
    event_id     text        PRIMARY KEY,
    event_type   text        NOT NULL,
    payload      jsonb       NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now(),
    processed_at timestamptz,
    CONSTRAINT payment_webhook_events_id_length   CHECK (length(event_id) BETWEEN 1 AND 100),
    CONSTRAINT payment_webhook_events_type_length CHECK (length(event_type) BETWEEN 1 AND 100)
);
CREATE INDEX payment_webhook_events_unprocessed_idx ON payment_webhook_events (received_at)
    WHERE processed_at IS NULL;

-- ========================================================================== ai

CREATE TABLE ai_interactions (
    id                uuid                PRIMARY KEY DEFAULT gen_random_uuid(),
    -- Prompts hold health details: they go with the account.
    user_id           uuid                NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind              ai_interaction_kind NOT NULL,
    prompt            text                NOT NULL,
    response          text,
    model             text                NOT NULL,
    prompt_tokens     integer,
    completion_tokens integer,
    latency_ms        integer,
    error             text,
    created_at        timestamptz         NOT NULL DEFAULT now(),
    CONSTRAINT ai_interactions_prompt_length   CHECK (length(prompt) BETWEEN 1 AND 20000),
    CONSTRAINT ai_interactions_response_length CHECK (length(response) <= 100000),
    CONSTRAINT ai_interactions_model_length    CHECK (length(model) BETWEEN 1 AND 100),
    CONSTRAINT ai_interactions_tokens CHECK (prompt_tokens >= 0 AND completion_tokens >= 0),
    CONSTRAINT ai_interactions_latency CHECK (latency_ms >= 0),
    CONSTRAINT ai_interactions_error_length CHECK (length(error) <= 2000)
);
-- History per user, and per-user usage over a window (quotas).
CREATE INDEX ai_interactions_user_idx ON ai_interactions (user_id, created_at DESC);
CREATE INDEX ai_interactions_user_kind_idx ON ai_interactions (user_id, kind, created_at DESC);

-- ================================================================== audit logs

-- Partitioned by month on created_at. Old months are removed by dropping
-- their partition (retention), never by DELETE.
CREATE TABLE audit_logs (
    id            uuid          NOT NULL DEFAULT gen_random_uuid(),
    created_at    timestamptz   NOT NULL DEFAULT now(),
    -- The audit trail outlives the account: the row stays, detached.
    user_id       uuid          REFERENCES users (id) ON DELETE SET NULL,
    action        text          NOT NULL,
    resource_type text,
    resource_id   text,
    outcome       audit_outcome NOT NULL,
    ip_address    inet,
    user_agent    text,
    request_id    text,
    details       jsonb,
    PRIMARY KEY (id, created_at),
    CONSTRAINT audit_logs_action_length CHECK (length(action) BETWEEN 1 AND 100)
) PARTITION BY RANGE (created_at);
CREATE INDEX audit_logs_user_idx     ON audit_logs (user_id, created_at);
CREATE INDEX audit_logs_resource_idx ON audit_logs (resource_type, resource_id, created_at);
CREATE INDEX audit_logs_action_idx   ON audit_logs (action, created_at);

-- Audit rows are append-only. The one update allowed is the foreign key's
-- own ON DELETE SET NULL (user_id to NULL, nothing else changed) and
-- scrubbing the caller's ip/user agent/details when an account is erased.
-- Partition maintenance (moving rows out of the DEFAULT partition) sets
-- bl.partition_maintenance for its transaction. This guards against
-- application bugs; it is not a barrier against a database superuser.
CREATE FUNCTION audit_logs_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF current_setting('bl.partition_maintenance', true) = 'on' THEN
        RETURN CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
    END IF;
    IF TG_OP = 'UPDATE'
       AND NEW.id = OLD.id AND NEW.created_at = OLD.created_at
       AND NEW.action = OLD.action AND NEW.outcome = OLD.outcome
       AND NEW.resource_type IS NOT DISTINCT FROM OLD.resource_type
       AND NEW.resource_id   IS NOT DISTINCT FROM OLD.resource_id
       AND NEW.request_id    IS NOT DISTINCT FROM OLD.request_id
       AND (NEW.user_id IS NULL OR NEW.user_id = OLD.user_id)
       AND (NEW.ip_address IS NULL OR NEW.ip_address = OLD.ip_address)
       AND (NEW.user_agent IS NULL OR NEW.user_agent = OLD.user_agent)
       AND (NEW.details IS NULL OR NEW.details = OLD.details) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit_logs rows are append-only (% refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER audit_logs_append_only BEFORE UPDATE OR DELETE ON audit_logs
    FOR EACH ROW EXECUTE FUNCTION audit_logs_append_only();

-- ================================================================== partitions

-- Creates the DEFAULT partition (so an insert never fails for lack of a
-- partition) and the monthly partitions <table>_YYYY_MM for the current
-- UTC month and the next months_ahead months. Idempotent, and safe when
-- several hosts call it at once (advisory lock per table). Rows that
-- already landed in the DEFAULT partition for a month being created are
-- moved into the new partition, which PostgreSQL requires before the new
-- partition can exist. Returns the number of partitions created.
CREATE FUNCTION create_monthly_partitions(parent regclass, months_ahead integer DEFAULT 3)
RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    nsp      text;
    rel      text;
    keycol   text;
    dflt     text;
    part     text;
    month    timestamp;
    lo       timestamptz;
    hi       timestamptz;
    created  integer := 0;
BEGIN
    IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 120 THEN
        RAISE EXCEPTION 'months_ahead must be between 0 and 120, not %', months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;

    SELECT n.nspname, c.relname, a.attname
      INTO nsp, rel, keycol
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_partitioned_table p ON p.partrelid = c.oid
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.partattrs[0]
     WHERE c.oid = parent
       AND p.partstrat = 'r' AND p.partnatts = 1
       AND a.atttypid = 'timestamptz'::regtype;
    IF NOT FOUND THEN
        RAISE EXCEPTION '% is not a table partitioned by range on one timestamptz column', parent
            USING ERRCODE = 'wrong_object_type';
    END IF;

    PERFORM pg_advisory_xact_lock(hashtext('create_monthly_partitions'), parent::oid::integer);

    dflt := rel || '_default';
    IF to_regclass(format('%I.%I', nsp, dflt)) IS NULL THEN
        EXECUTE format('CREATE TABLE %I.%I PARTITION OF %I.%I DEFAULT', nsp, dflt, nsp, rel);
        created := created + 1;
    END IF;

    FOR i IN 0 .. months_ahead LOOP
        month := date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => i);
        part  := rel || '_' || to_char(month, 'YYYY_MM');
        CONTINUE WHEN to_regclass(format('%I.%I', nsp, part)) IS NOT NULL;
        lo := month AT TIME ZONE 'UTC';
        hi := (month + interval '1 month') AT TIME ZONE 'UTC';

        EXECUTE format('CREATE TABLE %I.%I (LIKE %I.%I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                       nsp, part, nsp, rel);
        PERFORM set_config('bl.partition_maintenance', 'on', true);
        EXECUTE format('WITH moved AS (DELETE FROM %I.%I WHERE %I >= $1 AND %I < $2 RETURNING *) '
                       'INSERT INTO %I.%I SELECT * FROM moved',
                       nsp, dflt, keycol, keycol, nsp, part)
            USING lo, hi;
        PERFORM set_config('bl.partition_maintenance', 'off', true);
        EXECUTE format('ALTER TABLE %I.%I ATTACH PARTITION %I.%I FOR VALUES FROM (%L) TO (%L)',
                       nsp, rel, nsp, part, lo, hi);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$$;

SELECT create_monthly_partitions('audit_logs', 3);
SELECT create_monthly_partitions('chat_messages', 3);

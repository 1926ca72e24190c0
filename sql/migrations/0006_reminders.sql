-- 0006_reminders: what mod_beautiful_reminder needs beyond 0001: the simple
-- schedule form, nagging, medication supply, the states of an occurrence,
-- the care circle and the calendar-feed tokens.

-- An occurrence is fired (notified), then taken, snoozed, skipped or
-- missed. (New enum values cannot be used in this transaction: nothing
-- below refers to them.)
ALTER TYPE reminder_log_status ADD VALUE IF NOT EXISTS 'taken';
ALTER TYPE reminder_log_status ADD VALUE IF NOT EXISTS 'snoozed';
ALTER TYPE reminder_log_status ADD VALUE IF NOT EXISTS 'missed';

ALTER TABLE reminders
    -- The simple form ({times, days}) the client sent, kept to show it
    -- back; rrule always holds the RFC 5545 rule the scheduler expands.
    ADD COLUMN schedule_times     text[],
    ADD COLUMN schedule_days      text[],
    -- Re-notify an unanswered occurrence every nag_after_minutes, at most
    -- nag_max_times, then mark it missed.
    ADD COLUMN nag_after_minutes  integer,
    ADD COLUMN nag_max_times      integer,
    -- Doses left; each taken dose removes supply_per_dose; at or below
    -- supply_refill_at one refill notification goes out.
    ADD COLUMN supply_quantity    numeric(12,3),
    ADD COLUMN supply_per_dose    numeric(12,3),
    ADD COLUMN supply_refill_at   numeric(12,3),
    ADD COLUMN refill_notified_at timestamptz,
    ADD CONSTRAINT reminders_nag_pair CHECK ((nag_after_minutes IS NULL) = (nag_max_times IS NULL)),
    ADD CONSTRAINT reminders_nag_range CHECK (nag_after_minutes BETWEEN 1 AND 1440
                                              AND nag_max_times BETWEEN 1 AND 20),
    ADD CONSTRAINT reminders_supply_set CHECK ((supply_quantity IS NULL) = (supply_per_dose IS NULL)),
    ADD CONSTRAINT reminders_supply_range CHECK (supply_per_dose > 0 AND supply_refill_at >= 0),
    ADD CONSTRAINT reminders_schedule_times_count CHECK (cardinality(schedule_times) BETWEEN 1 AND 24),
    ADD CONSTRAINT reminders_schedule_days_count CHECK (cardinality(schedule_days) BETWEEN 1 AND 7);

ALTER TABLE reminder_logs
    ADD COLUMN taken_at    timestamptz,
    -- The user's note on a completion, or the reason of a skip.
    ADD COLUMN notes       text,
    ADD COLUMN nag_count   integer NOT NULL DEFAULT 0,
    -- When the nag task looks at this occurrence next (a nag, the end of a
    -- snooze, or marking it missed); NULL once it is answered.
    ADD COLUMN next_nag_at timestamptz,
    ADD CONSTRAINT reminder_logs_notes_length CHECK (length(notes) <= 2000),
    ADD CONSTRAINT reminder_logs_nag_count CHECK (nag_count BETWEEN 0 AND 100);
-- The nag task's queue (claimed FOR UPDATE SKIP LOCKED).
CREATE INDEX reminder_logs_nag_idx ON reminder_logs (next_nag_at) WHERE next_nag_at IS NOT NULL;
-- History and adherence by occurrence time use the unique
-- (reminder_id, scheduled_for) index of 0001.

-- A patient's caregivers: invited by email (the account may not exist
-- yet), accepted by the user with that email.
CREATE TABLE care_circle_members (
    id              uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    caregiver_email text        NOT NULL,
    caregiver_id    uuid        REFERENCES users (id) ON DELETE CASCADE,
    status          text        NOT NULL DEFAULT 'pending',
    created_at      timestamptz NOT NULL DEFAULT now(),
    accepted_at     timestamptz,
    CONSTRAINT care_circle_status CHECK (status IN ('pending', 'accepted')),
    CONSTRAINT care_circle_accepted CHECK ((status = 'accepted') = (caregiver_id IS NOT NULL)),
    CONSTRAINT care_circle_email_normalised CHECK (caregiver_email = lower(btrim(caregiver_email))),
    CONSTRAINT care_circle_email_length CHECK (length(caregiver_email) BETWEEN 3 AND 254),
    CONSTRAINT care_circle_once UNIQUE (patient_id, caregiver_email)
);
CREATE INDEX care_circle_caregiver_idx ON care_circle_members (caregiver_id) WHERE caregiver_id IS NOT NULL;
CREATE INDEX care_circle_email_idx ON care_circle_members (caregiver_email);

-- The secret of a user's calendar feed URL, stored as the hex SHA-256 of
-- the token; rotating it replaces the row, so the old URL stops working.
CREATE TABLE reminder_calendar_tokens (
    user_id    uuid        PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    token_hash text        NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT reminder_calendar_token_hash CHECK (token_hash ~ '^[0-9a-f]{64}$')
);

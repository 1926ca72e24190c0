-- 0010_chat_video: what chat and video sessions need beyond 0001 —
-- message lookup by id, read markers and notification coalescing per
-- participant, the per-conversation event log behind the live stream's
-- Last-Event-ID resume, and the Google Calendar sync state and reminders
-- of video sessions.

-- ======================================================================== chat

-- PUT/DELETE /chat/messages/:id find a message by id alone.
CREATE INDEX chat_messages_id_idx ON chat_messages (id);

ALTER TABLE chat_participants
    -- When this participant was last sent a chat.message notification for
    -- the conversation: at most one per BeautifulChatNotifyCoalesce.
    ADD COLUMN notified_at timestamptz;

ALTER TABLE chat_conversations
    -- The number of the conversation's last event (chat_events.seq). Bumped
    -- under the conversation's row lock, so events are numbered in commit
    -- order and a resume from Last-Event-ID misses none.
    ADD COLUMN event_seq bigint NOT NULL DEFAULT 0 CHECK (event_seq >= 0);

CREATE TYPE chat_event_type AS ENUM ('message.created', 'message.edited',
                                     'message.deleted', 'read');

-- What an event stream sends, kept for a while so a client that reconnects
-- with Last-Event-ID gets what it missed. A message event names the
-- message (its current state is sent, so a replayed edit shows the edit);
-- a read event carries the reader and their marker.
CREATE TABLE chat_events (
    conversation_id    uuid            NOT NULL REFERENCES chat_conversations (id) ON DELETE CASCADE,
    seq                bigint          NOT NULL,
    type               chat_event_type NOT NULL,
    message_id         uuid,
    message_created_at timestamptz,
    user_id            uuid            REFERENCES users (id) ON DELETE CASCADE,
    read_up_to         timestamptz,
    created_at         timestamptz     NOT NULL DEFAULT now(),
    PRIMARY KEY (conversation_id, seq),
    CONSTRAINT chat_events_shape CHECK (
        (type = 'read') = (message_id IS NULL)
        AND (message_id IS NULL) = (message_created_at IS NULL))
);
-- The cleanup of old events.
CREATE INDEX chat_events_created_idx ON chat_events (created_at);

-- ============================================================== video sessions

CREATE TYPE video_link_source AS ENUM ('google', 'template');
-- none: Google Calendar is not configured; synced: the event matches the
-- session; insert/patch/delete: that call failed and the background task
-- retries it.
CREATE TYPE video_calendar_state AS ENUM ('none', 'synced', 'insert', 'patch', 'delete');

ALTER TABLE video_sessions
    ADD COLUMN link_source            video_link_source,
    ADD COLUMN calendar_state         video_calendar_state NOT NULL DEFAULT 'none',
    ADD COLUMN calendar_attempts      integer              NOT NULL DEFAULT 0,
    ADD COLUMN calendar_next_attempt  timestamptz,
    ADD COLUMN cancelled_at           timestamptz,
    ADD CONSTRAINT video_sessions_calendar_attempts CHECK (calendar_attempts >= 0),
    ADD CONSTRAINT video_sessions_cancelled CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL));
-- The calendar retry queue.
CREATE INDEX video_sessions_calendar_retry_idx ON video_sessions (calendar_next_attempt)
    WHERE calendar_state IN ('insert', 'patch', 'delete');

ALTER TABLE video_session_participants
    -- Set in the transaction that queues the participant's reminder, so it
    -- is sent once; cleared when the session moves.
    ADD COLUMN reminded_at timestamptz;
-- The reminder task's queue: registrations not yet reminded.
CREATE INDEX video_session_participants_unreminded_idx ON video_session_participants (session_id)
    WHERE reminded_at IS NULL;

-- ======================================================================== chat (rules)

-- A deleted message is a tombstone: its body is erased for everyone.
ALTER TABLE chat_messages
    DROP CONSTRAINT chat_messages_body_length,
    ADD CONSTRAINT chat_messages_body_length CHECK (
        (deleted_at IS NULL AND length(body) BETWEEN 1 AND 4000)
        OR (deleted_at IS NOT NULL AND body = ''));

-- Leaving a community (or being removed) takes one out of its group chats.
CREATE FUNCTION chat_leave_community_groups() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM chat_participants p
     USING chat_conversations c
     WHERE c.id = p.conversation_id AND c.community_id = OLD.community_id
       AND p.user_id = OLD.user_id;
    RETURN NULL;
END
$$;
CREATE TRIGGER community_members_leave_chats AFTER DELETE ON community_members
    FOR EACH ROW EXECUTE FUNCTION chat_leave_community_groups();

-- 0004_community: what mod_beautiful_community needs beyond 0001 —
-- community types and privacy, bans, join requests, invitations, post
-- types and content warnings, comment depth and likes, content reports,
-- and posts that outlive their author's account.

CREATE TYPE community_type    AS ENUM ('support_group', 'treatment', 'caregivers', 'survivors',
                                       'research', 'general');
-- public: anyone signed in reads; private: listed, members read, joining by
-- request; hidden: not listed, 404 to non-members, joining by invitation.
CREATE TYPE community_privacy AS ENUM ('public', 'private', 'hidden');
CREATE TYPE community_post_type AS ENUM ('discussion', 'question', 'story', 'resource');
CREATE TYPE report_reason     AS ENUM ('spam', 'harassment', 'misinformation', 'self_harm', 'other');
CREATE TYPE report_action     AS ENUM ('dismiss', 'remove', 'warn_author');

-- ================================================================ communities

ALTER TABLE communities
    ADD COLUMN type    community_type    NOT NULL DEFAULT 'general',
    ADD COLUMN privacy community_privacy NOT NULL DEFAULT 'public';
UPDATE communities SET privacy = 'private' WHERE is_private;
-- 0001's flag stays, kept in step with privacy.
ALTER TABLE communities
    ADD CONSTRAINT communities_privacy_flag CHECK (is_private = (privacy <> 'public'));
CREATE INDEX communities_type_idx ON communities (type);

-- A banned user cannot join (or be invited) again until the ban is lifted.
CREATE TABLE community_bans (
    community_id uuid        NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    banned_by    uuid        REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, user_id)
);
CREATE INDEX community_bans_user_idx ON community_bans (user_id);

-- Pending requests to join a private community; a decision removes the row.
CREATE TABLE community_join_requests (
    community_id uuid        NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, user_id)
);
CREATE INDEX community_join_requests_user_idx ON community_join_requests (user_id);

-- Open invitations (hidden and private communities); joining uses them up.
CREATE TABLE community_invitations (
    community_id uuid        NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    invited_by   uuid        REFERENCES users (id) ON DELETE SET NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (community_id, user_id)
);
CREATE INDEX community_invitations_user_idx ON community_invitations (user_id);

-- ================================================================ posts

ALTER TABLE community_posts
    ADD COLUMN post_type       community_post_type NOT NULL DEFAULT 'discussion',
    ADD COLUMN content_warning text,
    -- Set when enough distinct reports arrive; cleared by a moderator.
    ADD COLUMN hidden_at       timestamptz,
    ADD COLUMN deleted_by      uuid REFERENCES users (id) ON DELETE SET NULL,
    ADD COLUMN delete_reason   text,
    ADD CONSTRAINT community_posts_content_warning_length
        CHECK (length(btrim(content_warning)) BETWEEN 1 AND 200),
    ADD CONSTRAINT community_posts_delete_reason_length CHECK (length(delete_reason) <= 1000);
-- A post outlives its author's account: shown as from a deleted member.
ALTER TABLE community_posts ALTER COLUMN author_id DROP NOT NULL,
    DROP CONSTRAINT community_posts_author_id_fkey,
    ADD CONSTRAINT community_posts_author_id_fkey FOREIGN KEY (author_id)
        REFERENCES users (id) ON DELETE SET NULL;
-- The feed: pinned first, then newest, walked by keyset
-- (is_pinned, created_at, id) < cursor.
DROP INDEX community_posts_feed_idx;
DROP INDEX community_posts_pinned_idx;
CREATE INDEX community_posts_feed_idx ON community_posts
    (community_id, is_pinned DESC, created_at DESC, id DESC) WHERE deleted_at IS NULL;
-- The feed's total for members: post_count less the few posts hidden by reports.
CREATE INDEX community_posts_hidden_idx ON community_posts (community_id)
    WHERE hidden_at IS NOT NULL AND deleted_at IS NULL;

-- post_count counts visible (not deleted) posts: a soft delete counts too.
CREATE OR REPLACE FUNCTION community_post_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.deleted_at IS NULL THEN
            UPDATE communities SET post_count = post_count + 1 WHERE id = NEW.community_id;
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        IF OLD.deleted_at IS NULL THEN
            UPDATE communities SET post_count = greatest(post_count - 1, 0) WHERE id = OLD.community_id;
        END IF;
    ELSIF (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL) THEN
        UPDATE communities SET post_count = greatest(post_count + CASE WHEN NEW.deleted_at IS NULL
                                                     THEN 1 ELSE -1 END, 0)
            WHERE id = NEW.community_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER community_posts_count_soft AFTER UPDATE OF deleted_at ON community_posts
    FOR EACH ROW EXECUTE FUNCTION community_post_count();

-- ================================================================ comments

ALTER TABLE post_comments
    -- 0 for a top-level comment; replies below depth 3 are stored at 4 and
    -- shown under their depth-3 ancestor (display_parent_id).
    ADD COLUMN depth             smallint NOT NULL DEFAULT 0 CHECK (depth BETWEEN 0 AND 4),
    ADD COLUMN display_parent_id uuid REFERENCES post_comments (id) ON DELETE CASCADE,
    ADD COLUMN like_count        integer NOT NULL DEFAULT 0 CHECK (like_count >= 0),
    ADD COLUMN hidden_at         timestamptz,
    ADD COLUMN deleted_by        uuid REFERENCES users (id) ON DELETE SET NULL,
    ADD CONSTRAINT post_comments_display_parent CHECK ((parent_comment_id IS NULL) = (display_parent_id IS NULL));
ALTER TABLE post_comments ALTER COLUMN author_id DROP NOT NULL,
    DROP CONSTRAINT post_comments_author_id_fkey,
    ADD CONSTRAINT post_comments_author_id_fkey FOREIGN KEY (author_id)
        REFERENCES users (id) ON DELETE SET NULL;
CREATE INDEX post_comments_display_parent_idx ON post_comments (display_parent_id, created_at)
    WHERE display_parent_id IS NOT NULL;
CREATE INDEX post_comments_top_idx ON post_comments (post_id, created_at, id)
    WHERE parent_comment_id IS NULL;

-- comment_count counts comments not deleted.
CREATE OR REPLACE FUNCTION post_comment_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.deleted_at IS NULL THEN
            UPDATE community_posts SET comment_count = comment_count + 1 WHERE id = NEW.post_id;
        END IF;
    ELSIF TG_OP = 'DELETE' THEN
        IF OLD.deleted_at IS NULL THEN
            UPDATE community_posts SET comment_count = greatest(comment_count - 1, 0) WHERE id = OLD.post_id;
        END IF;
    ELSIF (OLD.deleted_at IS NULL) <> (NEW.deleted_at IS NULL) THEN
        UPDATE community_posts SET comment_count = greatest(comment_count + CASE WHEN NEW.deleted_at IS NULL
                                                            THEN 1 ELSE -1 END, 0)
            WHERE id = NEW.post_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER post_comments_count_soft AFTER UPDATE OF deleted_at ON post_comments
    FOR EACH ROW EXECUTE FUNCTION post_comment_count();

CREATE TABLE comment_likes (
    comment_id uuid        NOT NULL REFERENCES post_comments (id) ON DELETE CASCADE,
    user_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (comment_id, user_id)
);
CREATE INDEX comment_likes_user_idx ON comment_likes (user_id);

CREATE FUNCTION comment_like_count() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE post_comments SET like_count = like_count + 1 WHERE id = NEW.comment_id;
    ELSE
        UPDATE post_comments SET like_count = greatest(like_count - 1, 0) WHERE id = OLD.comment_id;
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER comment_likes_count AFTER INSERT OR DELETE ON comment_likes
    FOR EACH ROW EXECUTE FUNCTION comment_like_count();

-- ================================================================ reports

-- One report per user and item (a post or a comment). A moderator's
-- decision resolves every open report of the item at once.
CREATE TABLE content_reports (
    id              uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    community_id    uuid          NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    post_id         uuid          REFERENCES community_posts (id) ON DELETE CASCADE,
    comment_id      uuid          REFERENCES post_comments (id) ON DELETE CASCADE,
    reporter_id     uuid          REFERENCES users (id) ON DELETE SET NULL,
    reason          report_reason NOT NULL,
    details         text,
    created_at      timestamptz   NOT NULL DEFAULT now(),
    resolved_at     timestamptz,
    resolved_by     uuid          REFERENCES users (id) ON DELETE SET NULL,
    resolution      report_action,
    resolution_note text,
    CONSTRAINT content_reports_one_item CHECK (num_nonnulls(post_id, comment_id) = 1),
    CONSTRAINT content_reports_details_length CHECK (length(details) <= 2000),
    CONSTRAINT content_reports_note_length CHECK (length(resolution_note) <= 1000),
    CONSTRAINT content_reports_resolved CHECK ((resolved_at IS NULL) = (resolution IS NULL))
);
CREATE UNIQUE INDEX content_reports_post_reporter_key ON content_reports (post_id, reporter_id)
    WHERE post_id IS NOT NULL;
CREATE UNIQUE INDEX content_reports_comment_reporter_key ON content_reports (comment_id, reporter_id)
    WHERE comment_id IS NOT NULL;
CREATE INDEX content_reports_open_idx ON content_reports (community_id, created_at)
    WHERE resolved_at IS NULL;
CREATE INDEX content_reports_reporter_idx ON content_reports (reporter_id);

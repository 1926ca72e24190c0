-- 0012_community_feed: the community feed's page as one function whose
-- query runs on a generic plan.
--
-- As a prepared statement the feed was planned again on every execution
-- (PostgreSQL's plan cache kept choosing custom plans: a generic plan's
-- estimate assumes a tenth of the posts behind a LIMIT given as a
-- parameter), and planning cost more than running it: about 2.2 ms of
-- backend CPU per page against 0.9 ms on a generic plan, whose plan is the
-- same index scan of community_posts_feed_idx stopped at the limit. A
-- PL/pgSQL function caches its query's plan per connection, and its SET
-- clause makes that plan the generic one for this query alone.
--
-- The access rule and the post's JSON are those of mod_beautiful_community
-- (CM_ACCESS, CM_READS and POST_JSON in modules/community): a change to
-- them there is a new migration here too (t/community_posts.t compares the
-- feed's posts with GET /posts/:id for members and moderators).
--
-- Arguments: community by id or slug (one NULL), viewer, viewer's role;
-- whether to count exactly (a filter is given), post_type, hide content
-- warnings; the cursor (pinned, microseconds since 1970, post id; NULLs:
-- the top of the feed); limit, offset.
-- Returns one row when the community exists: can_see (not hidden from the
-- viewer), can_read, total, the posts, the next cursor when the page is
-- full, the ids of anonymous posts whose author this view reveals, the
-- community's id and privacy.
CREATE FUNCTION community_feed_page(
    p_cid uuid, p_slug text, p_viewer uuid, p_role text,
    p_exact boolean, p_post_type community_post_type, p_hide_cw boolean,
    p_pinned boolean, p_microseconds bigint, p_after_id uuid,
    p_limit int, p_offset int)
RETURNS TABLE (can_see boolean, can_read boolean, total bigint, posts json,
               next_cursor text, revealed json, community_id uuid,
               privacy community_privacy)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
AS $$
#variable_conflict use_column
BEGIN
    RETURN QUERY
    WITH a AS (SELECT p_cid AS cid, p_slug AS slug, p_viewer AS viewer, p_role AS vrole),
    acc AS (
        SELECT c.*, m.role AS my_role,
               (c.privacy <> 'hidden' OR m.role IS NOT NULL OR a.vrole = 'admin'
                OR EXISTS (SELECT 1 FROM community_invitations i
                           WHERE i.community_id = c.id AND i.user_id = a.viewer)) AS can_see,
               ((c.privacy = 'public' AND NOT EXISTS (SELECT 1 FROM community_bans rb
                                                      WHERE rb.community_id = c.id
                                                        AND rb.user_id = a.viewer))
                OR m.role IS NOT NULL OR a.vrole = 'admin') AS can_read,
               (m.role IN ('moderator', 'owner') OR a.vrole = 'admin') AS can_moderate
        FROM a JOIN communities c ON (c.id = a.cid OR c.slug = a.slug)
        LEFT JOIN community_members m ON m.community_id = c.id AND m.user_id = a.viewer)
    SELECT acc.can_see, acc.can_read,
           CASE WHEN NOT acc.can_read THEN 0
                WHEN p_exact THEN (
                    SELECT count(*) FROM community_posts h
                    WHERE h.community_id = acc.id AND h.deleted_at IS NULL
                      AND (acc.can_moderate OR h.hidden_at IS NULL)
                      AND (p_post_type IS NULL OR h.post_type = p_post_type)
                      AND (NOT coalesce(p_hide_cw, false) OR h.content_warning IS NULL))
                ELSE acc.post_count - CASE WHEN acc.can_moderate THEN 0 ELSE (
                    SELECT count(*) FROM community_posts h
                    WHERE h.community_id = acc.id AND h.hidden_at IS NOT NULL
                      AND h.deleted_at IS NULL) END
           END,
           coalesce(x.posts, '[]'::json),
           CASE WHEN x.n = p_limit THEN x.last_cursor END,
           x.revealed, acc.id, acc.privacy
    FROM acc CROSS JOIN a CROSS JOIN LATERAL (
        SELECT json_agg(json_build_object(
                   'id', pg.id, 'community_id', pg.community_id,
                   'title', pg.title, 'content', pg.content, 'post_type', pg.post_type,
                   'content_warning', pg.content_warning, 'is_anonymous', pg.is_anonymous,
                   'is_pinned', pg.is_pinned, 'is_hidden', pg.hidden_at IS NOT NULL,
                   'like_count', pg.like_count, 'comment_count', pg.comment_count,
                   'liked', EXISTS (SELECT 1 FROM post_likes l
                                    WHERE l.post_id = pg.id AND l.user_id = a.viewer),
                   'is_mine', coalesce(pg.author_id = a.viewer, false),
                   'author', CASE WHEN pg.is_anonymous AND NOT acc.can_moderate
                                       AND pg.author_id IS DISTINCT FROM a.viewer THEN NULL
                                  WHEN u.id IS NULL THEN NULL
                                  ELSE json_build_object('id', u.id, 'first_name', u.first_name,
                                                         'avatar_url', u.avatar_url) END,
                   'author_deleted', pg.author_id IS NULL,
                   'created_at', to_char(pg.created_at AT TIME ZONE 'UTC',
                                         'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                   'updated_at', to_char(pg.updated_at AT TIME ZONE 'UTC',
                                         'YYYY-MM-DD"T"HH24:MI:SS"Z"'))
                   ORDER BY pg.is_pinned DESC, pg.created_at DESC, pg.id DESC) AS posts,
               count(*) AS n,
               (array_agg(CASE WHEN pg.is_pinned THEN 't' ELSE 'f' END || '_'
                          || (extract(epoch FROM pg.created_at) * 1000000)::bigint
                          || '_' || pg.id
                          ORDER BY pg.is_pinned, pg.created_at, pg.id))[1] AS last_cursor,
               json_agg(pg.id) FILTER (WHERE pg.is_anonymous AND acc.can_moderate
                                       AND pg.author_id IS DISTINCT FROM a.viewer) AS revealed
        FROM (SELECT p.* FROM community_posts p
              WHERE p.community_id = acc.id AND acc.can_read AND p.deleted_at IS NULL
                AND (acc.can_moderate OR p.hidden_at IS NULL)
                AND (p_post_type IS NULL OR p.post_type = p_post_type)
                AND (NOT coalesce(p_hide_cw, false) OR p.content_warning IS NULL)
                AND (p.is_pinned, p.created_at, p.id)
                    < (coalesce(p_pinned, true),
                       coalesce(timestamptz 'epoch' + p_microseconds * interval '1 microsecond',
                                'infinity'),
                       coalesce(p_after_id, 'ffffffff-ffff-ffff-ffff-ffffffffffff'))
              ORDER BY p.is_pinned DESC, p.created_at DESC, p.id DESC
              LIMIT p_limit OFFSET p_offset) pg
        LEFT JOIN users u ON u.id = pg.author_id) x;
END
$$;

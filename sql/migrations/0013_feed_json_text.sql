-- 0013_feed_json_text: the feed page's posts written as JSON text.
--
-- PostgreSQL 15's json_build_object looks up the output function of every
-- argument on every call; for the feed's twenty posts of nineteen fields
-- that was most of the page's cost (the aggregate took 0.37 of the
-- function's 0.50 ms). The posts are now concatenated text, with
-- to_json only where a string needs escaping (json_string_or_null) and
-- the API's UTC timestamps (json_utc_time): the same JSON, the same keys,
-- about half the backend CPU per page (bench/community_README.md). The
-- next cursor is formatted for the page's last post only.
--
-- The post's JSON stays that of GET /posts/:id (POST_JSON in
-- modules/community/posts.c; t/community_posts.t compares the two), and
-- the access rule that of 0012.

-- A string as a JSON value: quoted and escaped, or null. Inlined by the
-- planner (one SQL expression), so it costs what to_json does.
CREATE FUNCTION json_string_or_null(text) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce(to_json($1)::text, 'null') $$;

-- A timestamp as the API writes it ("2026-12-01T09:30:00Z"), or null.
CREATE FUNCTION json_utc_time(timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT coalesce('"' || to_char($1 AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"') || '"',
                      'null') $$;

-- The return type changes (posts: json to text), so the function is made anew.
DROP FUNCTION community_feed_page(uuid, text, uuid, text, boolean, community_post_type, boolean,
                                  boolean, bigint, uuid, int, int);
CREATE FUNCTION community_feed_page(
    p_cid uuid, p_slug text, p_viewer uuid, p_role text,
    p_exact boolean, p_post_type community_post_type, p_hide_cw boolean,
    p_pinned boolean, p_microseconds bigint, p_after_id uuid,
    p_limit int, p_offset int)
RETURNS TABLE (can_see boolean, can_read boolean, total bigint, posts text,
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
           coalesce('[' || x.posts || ']', '[]'),
           CASE WHEN x.n = p_limit THEN x.last_cursor END,
           x.revealed, acc.id, acc.privacy
    FROM acc CROSS JOIN a CROSS JOIN LATERAL (
        SELECT string_agg('{"id":"' || pg.id || '","community_id":"' || pg.community_id
                   || '","title":' || json_string_or_null(pg.title)
                   || ',"content":' || json_string_or_null(pg.content)
                   || ',"post_type":"' || pg.post_type
                   || '","content_warning":' || json_string_or_null(pg.content_warning)
                   || ',"is_anonymous":' || pg.is_anonymous::text
                   || ',"is_pinned":' || pg.is_pinned::text
                   || ',"is_hidden":' || (pg.hidden_at IS NOT NULL)::text
                   || ',"like_count":' || pg.like_count || ',"comment_count":' || pg.comment_count
                   || ',"liked":' || EXISTS (SELECT 1 FROM post_likes l
                                            WHERE l.post_id = pg.id AND l.user_id = a.viewer)::text
                   || ',"is_mine":' || coalesce(pg.author_id = a.viewer, false)::text
                   || ',"author":' || CASE WHEN pg.is_anonymous AND NOT acc.can_moderate
                                                AND pg.author_id IS DISTINCT FROM a.viewer THEN 'null'
                                           WHEN u.id IS NULL THEN 'null'
                                           ELSE '{"id":"' || u.id || '","first_name":'
                                                || json_string_or_null(u.first_name)
                                                || ',"avatar_url":' || json_string_or_null(u.avatar_url)
                                                || '}' END
                   || ',"author_deleted":' || (pg.author_id IS NULL)::text
                   || ',"created_at":' || json_utc_time(pg.created_at)
                   || ',"updated_at":' || json_utc_time(pg.updated_at) || '}',
                   ',' ORDER BY pg.rn) AS posts,
               count(*) AS n,
               max(CASE WHEN pg.rn = p_offset + p_limit THEN
                       CASE WHEN pg.is_pinned THEN 't' ELSE 'f' END || '_'
                       || (extract(epoch FROM pg.created_at) * 1000000)::bigint || '_' || pg.id
                   END) AS last_cursor,
               json_agg(pg.id) FILTER (WHERE pg.is_anonymous AND acc.can_moderate
                                       AND pg.author_id IS DISTINCT FROM a.viewer) AS revealed
        FROM (SELECT p.*, row_number() OVER (ORDER BY p.is_pinned DESC, p.created_at DESC,
                                                     p.id DESC) AS rn
              FROM community_posts p
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

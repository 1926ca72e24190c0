# mod_beautiful_community: a banned user on every route of a community.
# The rule (modules/community/README.md, "Bans"): a ban takes the
# membership away for good, so a banned user is a non-member who may not
# read the community's content even when it is public. They get the
# answer a non-member of a private community gets — the listing and
# GET /communities/:id (hidden: 404), 403 FORBIDDEN on the community's
# content and moderation routes, 404 NOT_FOUND on its posts and comments
# (their own included) — and nothing changes in any table.
# Then the ban list and lifting a ban: who may (moderators, owners,
# admins), who may not (the same refusals, nothing changed), the audit
# row, and the lifted user joining again by the community's privacy rules.
use strict;
use warnings;
use FindBin;
use POSIX ();
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use BL::Test;
require "$FindBin::Bin/community_helpers.pl";

plan skip_all => 'mod_beautiful_community not loaded' unless community_loaded();

my ($owner, $mod, $member, $member2, $banned, $outsider, $requester) = cm_users(7);
my ($res, $data);

# The suite before this one may have restarted PostgreSQL, and a pooled
# connection that has not noticed yet answers 503 once. Every assertion
# below wants the database up, so first use every worker's connection:
# 16 clients at once (the test server's workers), twice.
for (1 .. 2) {
    my @clients;
    for (1 .. 16) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            cm_req($owner, GET => '/communities') for 1 .. 3;
            POSIX::_exit(0);
        }
        push @clients, $pid;
    }
    waitpid $_, 0 for @clients;
}

# Everything a community holds, as one digest: the community row, members,
# bans, requests, invitations, posts, comments, likes, reports, and the
# notifications and audit rows that name it or its users.
sub state_of {
    my ($cid) = @_;
    return bl_psql_value(q{
        SELECT md5(concat_ws('|',
          (SELECT row(c.name, c.description, c.privacy, c.type, c.member_count, c.post_count)::text
             FROM communities c WHERE c.id = $1),
          (SELECT string_agg(concat(m.user_id, m.role), ',' ORDER BY m.user_id)
             FROM community_members m WHERE m.community_id = $1),
          (SELECT string_agg(b.user_id::text, ',' ORDER BY b.user_id)
             FROM community_bans b WHERE b.community_id = $1),
          (SELECT string_agg(j.user_id::text, ',' ORDER BY j.user_id)
             FROM community_join_requests j WHERE j.community_id = $1),
          (SELECT string_agg(i.user_id::text, ',' ORDER BY i.user_id)
             FROM community_invitations i WHERE i.community_id = $1),
          (SELECT string_agg(row(p.id, p.title, p.content, p.is_pinned, p.deleted_at, p.hidden_at,
                                 p.like_count, p.comment_count, p.updated_at)::text, ',' ORDER BY p.id)
             FROM community_posts p WHERE p.community_id = $1),
          (SELECT string_agg(row(k.id, k.content, k.deleted_at, k.hidden_at, k.like_count,
                                 k.updated_at)::text, ',' ORDER BY k.id)
             FROM post_comments k JOIN community_posts p ON p.id = k.post_id WHERE p.community_id = $1),
          (SELECT string_agg(concat(l.post_id, l.user_id), ',' ORDER BY l.post_id, l.user_id)
             FROM post_likes l JOIN community_posts p ON p.id = l.post_id WHERE p.community_id = $1),
          (SELECT string_agg(concat(l.comment_id, l.user_id), ',' ORDER BY l.comment_id, l.user_id)
             FROM comment_likes l JOIN post_comments k ON k.id = l.comment_id
             JOIN community_posts p ON p.id = k.post_id WHERE p.community_id = $1),
          (SELECT string_agg(row(r.id, r.resolved_at, r.resolution)::text, ',' ORDER BY r.id)
             FROM content_reports r WHERE r.community_id = $1),
          (SELECT count(*) FROM notifications n WHERE n.user_id IN ($2, $3, $4, $5, $6, $7)),
          (SELECT count(*) FROM audit_logs a WHERE a.resource_id IN ($1, $2)
             OR a.user_id = $2)))}, $cid, $banned->{id}, $owner->{id}, $mod->{id}, $member->{id},
        $outsider->{id}, $requester->{id});
}

# One community of each privacy, each with a post and a comment by a
# member, a post and a comment the banned user wrote while a member, a
# like of theirs, an open report, and a pending join request (private).
my %world;
for my $privacy (qw(public private hidden)) {
    my $c = cm_community($owner, privacy => $privacy);
    cm_member($c->{id}, $mod, 'moderator');
    cm_member($c->{id}, $_) for $member, $member2, $banned;
    my %w = (c => $c);
    ($res, $data) = cm_req($member, POST => "/communities/$c->{id}/posts", json => { content => "a $privacy post" });
    $w{post} = $data->{data}{id};
    ($res, $data) = cm_req($member, POST => "/posts/$w{post}/comments", json => { content => 'a comment' });
    $w{comment} = $data->{data}{id};
    ($res, $data) = cm_req($banned, POST => "/communities/$c->{id}/posts", json => { content => 'my own post' });
    $w{own_post} = $data->{data}{id};
    ($res, $data) = cm_req($banned, POST => "/posts/$w{post}/comments", json => { content => 'my own comment' });
    $w{own_comment} = $data->{data}{id};
    ($res) = cm_req($banned, POST => "/posts/$w{post}/like");
    die "setup like: " . $res->code unless $res->code == 200;
    ($res, $data) = cm_req($member, POST => "/posts/$w{own_post}/report", json => { reason => 'spam' });
    $w{report} = $data->{data}{id};
    if ($privacy eq 'private') {
        ($res) = cm_req($requester, POST => "/communities/$c->{id}/join");
        die 'setup join request: ' . $res->code unless $res->code == 202;
    }
    die "setup of $privacy failed" unless $w{post} && $w{comment} && $w{own_post} && $w{own_comment} && $w{report};
    ($res) = cm_req($owner, DELETE => "/communities/$c->{id}/members/$banned->{id}", query => { ban => 'true' });
    is $res->code, 204, "$privacy: the owner bans the user";
    $world{$privacy} = \%w;
}
is bl_psql_value(q{SELECT count(*) FROM community_members WHERE user_id = $1}, $banned->{id}), 0,
   'the ban took every membership away';

# The digest sees a change as small as a member's like.
{
    my $w = $world{public};
    my $before = state_of($w->{c}{id});
    cm_req($member, POST => "/posts/$w->{post}/like", json => { liked => JSON::PP::true });
    isnt state_of($w->{c}{id}), $before, 'the state digest changes with a like';
    cm_req($member, POST => "/posts/$w->{post}/like", json => { liked => JSON::PP::false });
}

# Every route of a community, its posts, comments, likes and reports, as
# [method, path, body, expected status for public, private, hidden].
sub routes_for {
    my ($w) = @_;
    my $cid = $w->{c}{id};
    my ($p, $k, $op, $ok, $rid) = @$w{qw(post comment own_post own_comment report)};
    return (
        [GET    => "/communities/$cid", undef, 200, 200, 404],
        [PUT    => "/communities/$cid", { description => 'taken over' }, 403, 403, 404],
        [DELETE => "/communities/$cid", undef, 403, 403, 404],
        [POST   => "/communities/$cid/join", undef, 403, 403, 404],
        [DELETE => "/communities/$cid/leave", undef, 404, 404, 404],
        [GET    => "/communities/$cid/join-requests", undef, 403, 403, 404],
        [POST   => "/communities/$cid/join-requests/$requester->{id}/approve", undef, 403, 403, 404],
        [POST   => "/communities/$cid/join-requests/$requester->{id}/reject", undef, 403, 403, 404],
        [POST   => "/communities/$cid/invitations", { user_id => $outsider->{id} }, 403, 403, 404],
        [GET    => "/communities/$cid/bans", undef, 403, 403, 404],
        [DELETE => "/communities/$cid/bans/$banned->{id}", undef, 403, 403, 404],
        [GET    => "/communities/$cid/members", undef, 403, 403, 404],
        [PUT    => "/communities/$cid/members/$member2->{id}", { role => 'moderator' }, 403, 403, 404],
        [DELETE => "/communities/$cid/members/$member2->{id}", undef, 403, 403, 404],
        [GET    => "/communities/$cid/posts", undef, 403, 403, 404],
        [POST   => "/communities/$cid/posts", { content => 'back again' }, 403, 403, 404],
        [GET    => "/communities/$cid/reports", undef, 403, 403, 404],
        [POST   => "/communities/$cid/reports/$rid/resolve", { action => 'dismiss' }, 403, 403, 404],
        [GET    => "/posts/$p", undef, 404, 404, 404],
        [PUT    => "/posts/$op", { content => 'edited after the ban' }, 404, 404, 404],
        [PUT    => "/posts/$p", { is_pinned => JSON::PP::true }, 404, 404, 404],
        [DELETE => "/posts/$op", undef, 404, 404, 404],
        [DELETE => "/posts/$p", undef, 404, 404, 404],
        [POST   => "/posts/$p/like", undef, 404, 404, 404],
        [POST   => "/posts/$p/like", { liked => JSON::PP::false }, 404, 404, 404],
        [GET    => "/posts/$p/comments", undef, 404, 404, 404],
        [POST   => "/posts/$p/comments", { content => 'back again' }, 404, 404, 404],
        [POST   => "/posts/$p/comments", { content => 'a reply', parent_comment_id => $k }, 404, 404, 404],
        [PUT    => "/comments/$ok", { content => 'edited after the ban' }, 404, 404, 404],
        [DELETE => "/comments/$ok", undef, 404, 404, 404],
        [DELETE => "/comments/$k", undef, 404, 404, 404],
        [POST   => "/comments/$k/like", undef, 404, 404, 404],
        [POST   => "/posts/$p/report", { reason => 'spam' }, 404, 404, 404],
        [POST   => "/comments/$k/report", { reason => 'harassment' }, 404, 404, 404],
    );
}

my %column = (public => 3, private => 4, hidden => 5);
my %code = (200 => undef, 403 => 'FORBIDDEN', 404 => 'NOT_FOUND');
for my $privacy (qw(public private hidden)) {
    my $w = $world{$privacy};
    my $before = state_of($w->{c}{id});
    for my $route (routes_for($w)) {
        my ($method, $path, $body) = @$route;
        my $want = $route->[$column{$privacy}];
        (my $name = "$privacy: $method $path") =~ s/[0-9a-f]{8}-[0-9a-f-]{27}/:id/g;
        ($res, $data) = cm_req($banned, $method => $path, ($body ? (json => $body) : ()));
        is $res->code, $want, "$name: $want" or diag $res->content;
        is cm_code($data), $code{$want} // '', "$name: " . ($code{$want} // 'no error');
        unlike $res->content, qr/my own (post|comment)|a \Q$privacy\E post|a comment/,
               "$name: no content shown" unless $method eq 'GET' && $want == 200;
        is state_of($w->{c}{id}), $before, "$name: nothing changed";
    }
}

# The listing still names the public and private communities (never the
# hidden one); the messages say why.
($res, $data) = cm_req($banned, GET => '/communities', query => { per_page => 100 });
my %listed = map { $_->{id} => $_ } @{ $data->{data} };
ok $listed{ $world{public}{c}{id} } && $listed{ $world{private}{c}{id} }, 'the listing names the public and private ones';
ok !$listed{ $world{hidden}{c}{id} }, 'not the hidden one';
ok !defined $listed{ $world{public}{c}{id} }{my_role}, 'with no role';
($res, $data) = cm_req($banned, GET => "/communities/$world{public}{c}{id}/posts");
is $data->{error}{message}, 'you are banned from this community', 'the public feed says why';
($res, $data) = cm_req($outsider, GET => "/communities/$world{public}{c}{id}/posts");
is $res->code, 200, 'while anyone else reads the public feed';
($res, $data) = cm_req($outsider, GET => "/posts/$world{public}{post}");
is $res->code, 200, 'and its posts';

($res, $data) = cm_req($banned, DELETE => "/communities/$world{public}{c}{id}/bans/$banned->{id}");
is $data->{error}{message}, 'you are banned from this community', 'lifting their own ban: the same answer';

# ---------------------------------------------------------------- the ban list

# Two more bans in the public community, by the moderator, of non-members
# ahead; the banner of the second one then deletes their account.
my ($early, $late, $gone_mod) = cm_users(3);
my ($admin) = cm_users(1, role => 'admin');
my $pub = $world{public}{c}{id};
cm_member($pub, $gone_mod, 'moderator');
($res) = cm_req($mod, DELETE => "/communities/$pub/members/$early->{id}", query => { ban => 'true' });
is $res->code, 204, 'the moderator bans a non-member ahead';
($res) = cm_req($gone_mod, DELETE => "/communities/$pub/members/$late->{id}", query => { ban => 'true' });
is $res->code, 204, 'a second moderator bans another';
bl_psql(q{DELETE FROM users WHERE id = $1}, $gone_mod->{id});

($res, $data) = cm_req($mod, GET => "/communities/$pub/bans");
is $res->code, 200, 'a moderator lists the bans' or diag $res->content;
is $res->header('Cache-Control'), 'no-store', 'not cached';
ok cm_documented(GET => '/communities/{id}/bans', $res), 'bans as documented';
is $data->{meta}{total}, 3, 'three bans';
is_deeply [map { $_->{user}{id} } @{ $data->{data} }], [$late->{id}, $early->{id}, $banned->{id}],
          'newest first';
is_deeply $data->{data}[2]{user}, { id => $banned->{id}, first_name => 'Member', avatar_url => undef },
          'the banned user as the members list shows a user (no email)';
is_deeply $data->{data}[2]{banned_by}, { id => $owner->{id}, first_name => 'Member', avatar_url => undef },
          'and who banned them';
is $data->{data}[1]{banned_by}{id}, $mod->{id}, 'the moderator banned the second';
is $data->{data}[0]{banned_by}, undef, 'a banner whose account is gone is null';
like $data->{data}[0]{created_at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'created_at in RFC 3339 UTC';
($res, $data) = cm_req($mod, GET => "/communities/$pub/bans", query => { per_page => 2, page => 2 });
is_deeply [map { $_->{user}{id} } @{ $data->{data} }], [$banned->{id}], 'page 2 of 2';
is_deeply [@{ $data->{meta} }{qw(page per_page total total_pages)}], [2, 2, 3, 2], 'with its meta';
($res, $data) = cm_req($mod, GET => "/communities/$pub/bans", query => { per_page => 101 });
is $res->code, 400, 'per_page over 100: 400';
($res, $data) = cm_req($mod, GET => "/communities/$pub/bans", query => { sort => 'oldest' });
is $res->code, 400, 'an unknown parameter: 400';
($res, $data) = cm_req($admin, GET => "/communities/$world{hidden}{c}{id}/bans");
is $res->code, 200, 'an admin lists a hidden community\'s bans';
is $data->{meta}{total}, 1, 'its one ban';

# ---------------------------------------------------------------- refusals

# Who may not list or lift: [user, name, status for public, private, hidden].
my @refused = (
    [$outsider, 'a stranger', 403, 403, 404],
    [$member2, 'a plain member', 403, 403, 403],
);
for my $privacy (qw(public private hidden)) {
    my $cid = $world{$privacy}{c}{id};
    my $before = state_of($cid);
    for my $who (@refused) {
        my ($user, $name) = @$who;
        my $want = $who->[$column{$privacy} - 1];
        for my $route ([GET => "/communities/$cid/bans"], [DELETE => "/communities/$cid/bans/$banned->{id}"]) {
            ($res, $data) = cm_req($user, @$route);
            is $res->code, $want, "$privacy, $name: $route->[0] bans: $want";
            is cm_code($data), $code{$want}, "$privacy, $name: $route->[0] bans: $code{$want}";
        }
    }
    is state_of($cid), $before, "$privacy: the refusals changed nothing";
}
{
    my $before = state_of($pub);
    for my $case (["/communities/$pub/bans/not-a-uuid", 'a malformed user id'],
                  ["/communities/$pub/bans/" . ('x' x 36), 'a 36-character non-UUID'],
                  ["/communities/$pub/bans/$member2->{id}", 'a member who is not banned'],
                  ["/communities/$pub/bans/" . bl_uuid(), 'no such user'],
                  ["/communities/not_a_slug!/bans/$banned->{id}", 'a malformed community id'],
                  ['/communities/' . bl_uuid() . "/bans/$banned->{id}", 'no such community']) {
        ($res, $data) = cm_req($mod, DELETE => $case->[0]);
        is $res->code, 404, "$case->[1]: 404";
        is cm_code($data), 'NOT_FOUND', "$case->[1]: NOT_FOUND";
    }
    ($res, $data) = cm_req($mod, GET => "/communities/not_a_slug!/bans");
    is $res->code, 404, 'the list of a malformed community id: 404';
    is state_of($pub), $before, 'none of them changed anything';
}

# ---------------------------------------------------------------- lifting

sub lifted_audits {
    my ($cid, $uid) = @_;
    return bl_psql_value(q{SELECT string_agg(concat_ws(',', user_id, outcome, resource_type), ';')
                           FROM audit_logs WHERE action = 'community.ban_lifted'
                           AND resource_id = $1 AND details->>'user_id' = $2}, $cid, $uid) // '';
}

# Public: the moderator lifts the owner's ban. The user is not a member
# again, reads the community as anyone does, and joins at once.
($res) = cm_req($mod, DELETE => "/communities/$pub/bans/$banned->{id}");
is $res->code, 204, 'a moderator lifts the ban an owner made' or diag $res->content;
is lifted_audits($pub, $banned->{id}), "$mod->{id},success,community", 'audited: the actor and the user';
is bl_psql_value(q{SELECT count(*) FROM community_bans WHERE community_id = $1 AND user_id = $2},
                 $pub, $banned->{id}), 0, 'the ban row is gone';
is bl_psql_value(q{SELECT count(*) FROM community_bans WHERE community_id = $1}, $pub), 2,
   'the other bans stay';
($res, $data) = cm_req($mod, GET => "/communities/$pub/bans");
ok !grep({ $_->{user}{id} eq $banned->{id} } @{ $data->{data} }), 'the list no longer shows it';
is bl_psql_value(q{SELECT count(*) FROM community_members WHERE community_id = $1 AND user_id = $2},
                 $pub, $banned->{id}), 0, 'not a member again';
($res) = cm_req($banned, GET => "/posts/$world{public}{post}");
is $res->code, 200, 'the public post reads again';
($res) = cm_req($mod, DELETE => "/communities/$pub/bans/$banned->{id}");
is $res->code, 404, 'lifting it twice: 404';
is lifted_audits($pub, $banned->{id}), "$mod->{id},success,community", 'and no second audit row';
($res, $data) = cm_req($banned, POST => "/communities/$pub/join");
is $res->code, 201, 'the user joins the public community again';
is $data->{data}{role}, 'member', 'as a member';

# Private: the owner lifts it; joining is a request again.
my $priv = $world{private}{c}{id};
($res) = cm_req($owner, DELETE => "/communities/$priv/bans/$banned->{id}");
is $res->code, 204, 'the owner lifts the private ban';
is lifted_audits($priv, $banned->{id}), "$owner->{id},success,community", 'audited';
($res, $data) = cm_req($owner, GET => "/communities/$priv/bans");
is_deeply [$res->code, $data->{meta}{total}, $data->{data}], [200, 0, []], 'the list is empty';
($res, $data) = cm_req($banned, POST => "/communities/$priv/join");
is $res->code, 202, 'asking to join the private community is a request again';
is $data->{data}{status}, 'pending', 'pending';
is bl_psql_value(q{SELECT count(*) FROM community_join_requests WHERE community_id = $1 AND user_id = $2},
                 $priv, $banned->{id}), 1, 'a pending request row';

# Hidden: an admin lifts it; the community stays hidden until an invitation.
my $hid = $world{hidden}{c}{id};
($res) = cm_req($admin, DELETE => "/communities/$hid/bans/" . uc $banned->{id});
is $res->code, 204, 'an admin lifts the hidden ban (the id in capitals)';
is lifted_audits($hid, $banned->{id}), "$admin->{id},success,community", 'audited, the id as stored';
($res) = cm_req($banned, GET => "/communities/$hid");
is $res->code, 404, 'the hidden community is still hidden from them';
($res) = cm_req($mod, POST => "/communities/$hid/invitations", json => { user_id => $banned->{id} });
is $res->code, 201, 'and may be invited again';
($res) = cm_req($banned, POST => "/communities/$hid/join");
is $res->code, 201, 'and joins by the invitation';

done_testing;

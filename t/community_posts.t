# mod_beautiful_community: posts, the feed, likes and threaded comments as
# their users see them — who may write, read, edit, pin and delete; the
# feed's order, filters and cursor; anonymous posts; exact like counts
# under a 50-client race; comment threads, tombstones and reply
# notifications; posts outliving a deleted account.
use strict;
use warnings;
use FindBin;
use POSIX ();
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use BL::Test;
require "$FindBin::Bin/community_helpers.pl";

plan skip_all => 'mod_beautiful_community not loaded' unless community_loaded();

my ($owner, $mod, $member, $member2, $stranger) = cm_users(5);
my $admin = cm_user(role => 'admin');
my $pub = cm_community($owner, privacy => 'public');
my $priv = cm_community($owner, privacy => 'private');
my $hidden = cm_community($owner, privacy => 'hidden');
for my $c ($pub, $priv, $hidden) {
    cm_member($c->{id}, $mod, 'moderator');
    cm_member($c->{id}, $member);
    cm_member($c->{id}, $member2);
}
my ($res, $data);
sub post_count { bl_psql_value(q{SELECT count(*) FROM community_posts WHERE community_id = $1}, $_[0]) }

# ---------------------------------------------------------------- write
($res, $data) = cm_req($member, POST => "/communities/$pub->{id}/posts",
                       json => { title => 'Hello', content => 'First week of chemo', post_type => 'story' });
is $res->code, 201, 'a member posts' or diag $res->content;
my $p1 = $data->{data};
is $p1->{author}{id}, $member->{id}, 'with the author';
is $p1->{post_type}, 'story', 'post_type kept';
is $p1->{like_count}, 0, 'no likes';
is $res->header('Cache-Control'), 'no-store', 'no-store';

my $before = post_count($pub->{id});
($res) = cm_req($stranger, POST => "/communities/$pub->{id}/posts", json => { content => 'hi' });
is $res->code, 403, 'a non-member cannot post in a public community';
($res) = cm_req($stranger, POST => "/communities/$priv->{id}/posts", json => { content => 'hi' });
is $res->code, 403, 'nor in a private one';
($res) = cm_req($stranger, POST => "/communities/$hidden->{id}/posts", json => { content => 'hi' });
is $res->code, 404, 'a hidden one is 404';
($res) = cm_req(undef, POST => "/communities/$pub->{id}/posts", json => { content => 'hi' });
is $res->code, 401, 'no token: 401';
for my $bad ([{ title => 'x' }, 'content'],
             [{ content => '  ' }, 'content'],
             [{ content => 'x' x 20001 }, 'content'],
             [{ content => 'x', title => 't' x 201 }, 'title'],
             [{ content => 'x', post_type => 'poll' }, 'post_type'],
             [{ content => 'x', content_warning => 'w' x 201 }, 'content_warning'],
             [{ content => 'x', is_anonymous => 'yes' }, 'is_anonymous'],
             [{ content => 'x', is_pinned => JSON::PP::true }, 'is_pinned'],
             [{ content => 'x', author_id => $owner->{id} }, 'author_id']) {
    ($res, $data) = cm_req($member, POST => "/communities/$pub->{id}/posts", json => $bad->[0]);
    is $res->code, 400, "invalid $bad->[1]: 400";
    is $data->{error}{details}, "field: $bad->[1]", "names $bad->[1]";
}
is post_count($pub->{id}), $before, 'nothing written by the refused posts';

# ---------------------------------------------------------------- feed
my @ids;
for my $i (1 .. 4) {
    ($res, $data) = cm_req($member2, POST => "/communities/$pub->{id}/posts",
                           json => { content => "post $i", post_type => $i % 2 ? 'question' : 'discussion',
                                     ($i == 3 ? (content_warning => 'hospital details') : ()) });
    push @ids, $data->{data}{id};
}
($res) = cm_req($member, PUT => "/posts/$ids[0]", json => { is_pinned => JSON::PP::true });
is $res->code, 403, 'a member cannot pin';
($res, $data) = cm_req($mod, PUT => "/posts/$ids[0]", json => { is_pinned => JSON::PP::true });
is $res->code, 200, 'a moderator pins';
ok $data->{data}{is_pinned}, 'pinned';
($res, $data) = cm_req($member, GET => "/communities/$pub->{id}/posts");
is $res->code, 200, 'feed';
is_deeply [map { $_->{id} } @{ $data->{data} }], [$ids[0], reverse(@ids[1 .. 3]), $p1->{id}],
   'pinned first, then newest';
is $data->{meta}{total}, 5, 'total';
is $data->{meta}{next_cursor}, undef, 'one page: no cursor';
ok cm_documented(GET => '/communities/{id}/posts', $res), 'the feed is as documented';
($res, $data) = cm_req($member, GET => "/communities/$pub->{slug}/posts", query => { post_type => 'question' });
is_deeply [sort map { $_->{id} } @{ $data->{data} }], [sort @ids[0, 2]], 'post_type filter (by slug)';
is $data->{meta}{total}, 2, 'filtered total';
($res, $data) = cm_req($member, GET => "/communities/$pub->{id}/posts", query => { hide_content_warnings => 'true' });
ok !(grep { $_->{id} eq $ids[2] } @{ $data->{data} }), 'hide_content_warnings leaves it out';
is scalar @{ $data->{data} }, 4, 'the rest stay';
($res, $data) = cm_req($member, GET => "/communities/$pub->{id}/posts", query => { per_page => 2 });
my $cursor = $data->{meta}{next_cursor};
ok $cursor, 'a full page gives a cursor';
($res, $data) = cm_req($member, GET => "/communities/$pub->{id}/posts", query => { per_page => 2, before => $cursor });
is_deeply [map { $_->{id} } @{ $data->{data} }], [@ids[2, 1]], 'the cursor gives the next two';
# The widest cursor the parser takes (18 digits, far past PostgreSQL's
# last timestamp minus a margin) reads from the top; the oldest reads nothing.
($res, $data) = cm_req($member, GET => "/communities/$pub->{id}/posts",
                       query => { per_page => 2, before => "t_999999999999999999_$ids[0]" });
is $res->code, 200, 'an 18-digit cursor: 200';
is scalar @{ $data->{data} }, 2, 'from the top of the feed';
($res, $data) = cm_req($member, GET => "/communities/$pub->{id}/posts",
                       query => { before => 'f_0_00000000-0000-0000-0000-000000000000' });
is_deeply [$res->code, scalar @{ $data->{data} }, $data->{meta}{next_cursor}], [200, 0, undef],
          'a cursor before every post: an empty last page';
for my $q ({ before => 'x' }, { before => "t_1_$ids[0]x" }, { before => $cursor, page => 2 },
           { before => "f_1000000000000000000_$ids[0]" }, { before => "f_-1_$ids[0]" },
           { post_type => 'poll' }, { hide_content_warnings => 'yes' }, { order => 'old' }) {
    ($res, $data) = cm_req($member, GET => "/communities/$pub->{id}/posts", query => $q);
    is $res->code, 400, 'bad feed query ' . join('=', %$q) . ': 400';
}
cm_req($member, POST => "/communities/$priv->{id}/posts", json => { content => 'private words' });
cm_req($member, POST => "/communities/$hidden->{id}/posts", json => { content => 'hidden words' });
($res, $data) = cm_req($stranger, GET => "/communities/$priv->{id}/posts");
is $res->code, 403, 'private feed: 403 to a non-member';
unlike $res->content, qr/private words/, 'nothing of it';
($res) = cm_req($stranger, GET => "/communities/$hidden->{id}/posts");
is $res->code, 404, 'hidden feed: 404 to a non-member';
($res, $data) = cm_req($stranger, GET => "/communities/$pub->{id}/posts");
is $res->code, 200, 'public feed readable by anyone signed in';
($res, $data) = cm_req($admin, GET => "/communities/$hidden->{id}/posts");
is $res->code, 200, 'an admin reads a hidden feed';

# ---------------------------------------------------------------- one post
my $hp = bl_psql_value(q{SELECT id FROM community_posts WHERE community_id = $1}, $hidden->{id});
my $pp = bl_psql_value(q{SELECT id FROM community_posts WHERE community_id = $1}, $priv->{id});
for my $r (['GET', ''], ['PUT', '', { content => 'x' }], ['DELETE', ''], ['POST', '/like'],
           ['GET', '/comments'], ['POST', '/comments', { content => 'x' }],
           ['POST', '/report', { reason => 'spam' }]) {
    my ($m, $s, $j) = @$r;
    for my $p ([$hp, 'hidden'], [$pp, 'private']) {
        ($res) = cm_req($stranger, $m => "/posts/$p->[0]$s", ($j ? (json => $j) : ()));
        is $res->code, 404, "$p->[1] post $m $s: 404 to a non-member";
    }
}
($res) = cm_req($stranger, GET => "/posts/not-a-uuid");
is $res->code, 404, 'malformed post id: 404';
($res) = cm_req($stranger, GET => '/posts/' . bl_uuid());
is $res->code, 404, 'unknown post: 404';
($res, $data) = cm_req($stranger, GET => "/posts/$p1->{id}");
is $res->code, 200, 'a public post';
is $data->{data}{content}, 'First week of chemo', 'its content';
ok cm_documented(GET => '/posts/{id}', $res), 'a post is as documented';

($res) = cm_req($member2, PUT => "/posts/$p1->{id}", json => { content => 'hijacked' });
is $res->code, 403, 'another member cannot edit';
($res) = cm_req($mod, PUT => "/posts/$p1->{id}", json => { content => 'moderated' });
is $res->code, 403, 'nor a moderator';
($res, $data) = cm_req($member, PUT => "/posts/$p1->{id}", json => { content => 'x' x 20001 });
is $res->code, 400, 'oversize edit: 400';
($res, $data) = cm_req($member, PUT => "/posts/$p1->{id}", json => { content => 'Second week', content_warning => 'needles' });
is $res->code, 200, 'the author edits';
is $data->{data}{content}, 'Second week', 'changed';
is bl_psql_value(q{SELECT content FROM community_posts WHERE id = $1}, $p1->{id}), 'Second week', 'stored';

# ---------------------------------------------------------------- anonymous
($res, $data) = cm_req($member, POST => "/communities/$pub->{id}/posts",
                       json => { content => 'I am scared', is_anonymous => JSON::PP::true });
is $res->code, 201, 'anonymous post';
my $anon = $data->{data}{id};
is $data->{data}{author}{id}, $member->{id}, 'the author sees it is theirs';
($res, $data) = cm_req($member2, GET => "/posts/$anon");
is $data->{data}{author}, undef, 'a member sees no author';
unlike $res->content, qr/\Q$member->{id}\E/, 'not even the id';
($res, $data) = cm_req($member2, GET => "/communities/$pub->{id}/posts");
my ($in_feed) = grep { $_->{id} eq $anon } @{ $data->{data} };
is $in_feed->{author}, undef, 'nor in the feed';
unlike(JSON::PP->new->canonical->encode($in_feed), qr/\Q$member->{id}\E/, 'its author id nowhere in it');
my $audits = sub { bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE action = 'community.anonymous_author_viewed'
                                     AND user_id = $1 AND created_at > now() - interval '1 hour'}, $_[0]) };
is $audits->($member2->{id}), 0, 'no audit for a view that reveals nothing';
($res, $data) = cm_req($mod, GET => "/posts/$anon");
is $data->{data}{author}{id}, $member->{id}, 'a moderator sees the author';
is $audits->($mod->{id}), 1, 'and that view is audited';
($res, $data) = cm_req($mod, GET => "/communities/$pub->{id}/posts");
($in_feed) = grep { $_->{id} eq $anon } @{ $data->{data} };
is $in_feed->{author}{id}, $member->{id}, 'in the feed too';
is $audits->($mod->{id}), 2, 'audited too';
($res, $data) = cm_req($admin, GET => "/posts/$anon");
is $data->{data}{author}{id}, $member->{id}, 'an admin sees the author';

# The feed's posts (community_feed_page, migration 0013) are the posts
# GET /posts/:id shows, for the author, a member and a moderator alike.
for my $viewer ([$member, 'the author'], [$member2, 'a member'], [$mod, 'a moderator']) {
    my ($u, $who) = @$viewer;
    my ($r1, $one) = cm_req($u, GET => "/posts/$anon");
    my ($r2, $page) = cm_req($u, GET => "/communities/$pub->{id}/posts", query => { per_page => 100 });
    my ($same) = grep { $_->{id} eq $anon } @{ $page->{data} };
    is_deeply $same, $one->{data}, "the anonymous post in the feed is GET /posts/:id's, for $who";
}

# ---------------------------------------------------------------- likes
my @likers = cm_users(50);
bl_psql(q{INSERT INTO community_members (community_id, user_id)
          SELECT $1, unnest(string_to_array($2, ','))::uuid}, $pub->{id}, join(',', map { $_->{id} } @likers));
my @pids;
for my $u (@likers) {
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        my ($r) = cm_req($u, POST => "/posts/$p1->{id}/like");
        POSIX::_exit($r->code == 200 ? 0 : 1);
    }
    push @pids, $pid;
}
my $ok = 0;
for (@pids) { waitpid $_, 0; $ok++ if $? == 0 }
is $ok, 50, '50 users like at once: 50 answers 200';
is bl_psql_value(q{SELECT like_count FROM community_posts WHERE id = $1}, $p1->{id}), 50, 'like_count is 50';
is bl_psql_value(q{SELECT count(*) FROM post_likes WHERE post_id = $1}, $p1->{id}), 50, '50 likes stored';

($res, $data) = cm_req($member, POST => "/posts/$p1->{id}/like");
is_deeply $data->{data}, { liked => JSON::PP::true, like_count => 51 }, 'toggle on: liked, 51';
($res, $data) = cm_req($member, POST => "/posts/$p1->{id}/like");
is_deeply $data->{data}, { liked => JSON::PP::false, like_count => 50 }, 'toggle off: 50';
($res, $data) = cm_req($member, POST => "/posts/$p1->{id}/like", json => { liked => JSON::PP::true });
is $data->{data}{like_count}, 51, 'set liked';
($res, $data) = cm_req($member, POST => "/posts/$p1->{id}/like", json => { liked => JSON::PP::true });
is_deeply $data->{data}, { liked => JSON::PP::true, like_count => 51 }, 'set again: idempotent';
($res, $data) = cm_req($member, POST => "/posts/$p1->{id}/like", json => { liked => JSON::PP::false });
is $data->{data}{like_count}, 50, 'unset';
($res, $data) = cm_req($member, POST => "/posts/$p1->{id}/like", json => { liked => 'yes' });
is $res->code, 400, 'liked must be a boolean';
($res) = cm_req($stranger, POST => "/posts/$p1->{id}/like");
is $res->code, 403, 'a non-member cannot like';
($res, $data) = cm_req($member, GET => "/posts/$p1->{id}");
is $data->{data}{liked}, JSON::PP::false, 'liked is per viewer';

# ---------------------------------------------------------------- comments
my $post = $p1->{id};
my $c = sub {
    my ($u, $content, $parent) = @_;
    my ($r, $d) = cm_req($u, POST => "/posts/$post/comments",
                         json => { content => $content, ($parent ? (parent_comment_id => $parent) : ()) });
    die 'comment: ' . $r->code . ' ' . $r->content unless $r->code == 201;
    return $d->{data};
};
my $top = $c->($member2, 'Sending love');
is $top->{depth}, 0, 'a top-level comment';
is scalar(cm_outbox($member->{id}, 'community.comment_reply')), 1, 'the post author is told';
my @chain = ($top);
push @chain, $c->($chain[-1]{author}{id} eq $member->{id} ? $member2 : $member, "reply $_", $chain[-1]{id}) for 1 .. 5;
is_deeply [map { $_->{depth} } @chain], [0, 1, 2, 3, 4, 4], 'depths stop at 4';
is $chain[5]{parent_comment_id}, $chain[4]{id}, 'the deepest still names what it answers';
is scalar(cm_outbox($member2->{id}, 'community.comment_reply')), 3, 'each reply tells the one answered';
my $second = $c->($member, 'Another top', undef);
($res) = cm_req($member2, DELETE => "/comments/$chain[2]{id}");
is $res->code, 204, 'the author deletes a comment';
($res, $data) = cm_req($member2, GET => "/posts/$post/comments");
is $res->code, 200, 'thread';
is $data->{meta}{total}, 2, 'two top-level comments';
my $t = $data->{data}[0];
is $t->{id}, $top->{id}, 'oldest first';
ok cm_documented(GET => '/posts/{id}/comments', $res), 'the thread is as documented';
my $l2 = $t->{replies}[0]{replies}[0];
is $l2->{id}, $chain[2]{id}, 'the deleted one keeps its place';
ok $l2->{is_deleted}, 'as a tombstone';
is $l2->{content}, undef, 'without content';
is $l2->{author}, undef, 'or author';
my $l3 = $l2->{replies}[0];
is $l3->{depth}, 3, 'depth 3';
is_deeply [map { $_->{id} } @{ $l3->{replies} }], [$chain[4]{id}, $chain[5]{id}],
   'deeper replies attach to the depth-3 ancestor';
is_deeply $l3->{replies}[1]{replies}, [], 'and nest no further';
is bl_psql_value(q{SELECT comment_count FROM community_posts WHERE id = $1}, $post), 6,
   'comment_count counts the comments not deleted';
($res) = cm_req($member2, GET => "/posts/$post/comments", query => { per_page => 1, page => 2 });
($res, $data) = cm_req($member2, GET => "/posts/$post/comments", query => { per_page => 1, page => 2 });
is_deeply [map { $_->{id} } @{ $data->{data} }], [$second->{id}], 'top-level comments are paged';

my $other_post = $ids[1];
($res, $data) = cm_req($member, POST => "/posts/$other_post/comments",
                       json => { content => 'x', parent_comment_id => $top->{id} });
is $res->code, 400, 'a parent from another post: 400';
is $data->{error}{details}, 'field: parent_comment_id', 'names parent_comment_id';
($res, $data) = cm_req($member, POST => "/posts/$post/comments", json => { content => 'x' x 5001 });
is $res->code, 400, 'oversize comment: 400';
($res) = cm_req($member, POST => "/posts/$post/comments", json => { content => 'x', parent_comment_id => 'zz' });
is $res->code, 400, 'malformed parent: 400';
($res) = cm_req($stranger, POST => "/posts/$post/comments", json => { content => 'drive-by' });
is $res->code, 403, 'a non-member cannot comment';
($res) = cm_req($member, PUT => "/comments/$top->{id}", json => { content => 'not mine' });
is $res->code, 403, 'only the author edits a comment';
($res, $data) = cm_req($member2, PUT => "/comments/$top->{id}", json => { content => 'Sending all my love' });
is $res->code, 200, 'the author edits';
is $data->{data}{content}, 'Sending all my love', 'changed';
($res) = cm_req($member, DELETE => "/comments/$top->{id}");
is $res->code, 403, 'a plain member cannot delete another\'s comment';
($res) = cm_req($member, PUT => '/comments/nope', json => { content => 'x' });
is $res->code, 404, 'malformed comment id: 404';
($res, $data) = cm_req($member, POST => "/comments/$top->{id}/like");
is_deeply $data->{data}, { liked => JSON::PP::true, like_count => 1 }, 'comment liked';
($res, $data) = cm_req($member, POST => "/comments/$top->{id}/like");
is $data->{data}{like_count}, 0, 'and toggled back';
($res) = cm_req($stranger, POST => "/comments/$top->{id}/like");
is $res->code, 403, 'a non-member cannot like a comment';
($res) = cm_req($mod, DELETE => "/comments/$second->{id}");
is $res->code, 400, 'a moderator deletes with a reason only';
($res) = cm_req($mod, DELETE => "/comments/$second->{id}", query => { reason => 'off topic' });
is $res->code, 204, 'a moderator deletes';
is bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE action = 'community.comment_deleted'
                   AND resource_id = $1 AND created_at > now() - interval '1 hour'}, $second->{id}), 1,
   'audited';

# ---------------------------------------------------------------- delete posts
($res) = cm_req($member, DELETE => "/posts/$ids[1]");
is $res->code, 403, 'a member cannot delete another\'s post';
($res) = cm_req($mod, DELETE => "/posts/$ids[1]");
is $res->code, 400, 'a moderator needs a reason';
($res) = cm_req($mod, DELETE => "/posts/$ids[1]", query => { reason => 'spam link' });
is $res->code, 204, 'a moderator deletes';
is bl_psql_value(q{SELECT details->>'reason' FROM audit_logs WHERE action = 'community.post_deleted'
                   AND resource_id = $1 AND created_at > now() - interval '1 hour'}, $ids[1]), 'spam link',
   'audited with the reason';
($res) = cm_req($member2, GET => "/posts/$ids[1]");
is $res->code, 404, 'a deleted post is gone';
ok bl_psql_value(q{SELECT deleted_at IS NOT NULL FROM community_posts WHERE id = $1}, $ids[1]), 'soft-deleted';
($res) = cm_req($member2, DELETE => "/posts/$ids[2]");
is $res->code, 204, 'the author deletes without a reason';
is bl_psql_value(q{SELECT post_count FROM communities WHERE id = $1}, $pub->{id}),
   bl_psql_value(q{SELECT count(*) FROM community_posts WHERE community_id = $1 AND deleted_at IS NULL}, $pub->{id}),
   'post_count counts the posts not deleted';

# ---------------------------------------------------------------- a deleted account
SKIP: {
    skip 'mod_beautiful_auth not loaded', 6
        unless (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / auth /;
    require "$FindBin::Bin/auth_helpers.pl";
    my $leaver = new_user();
    my $tok = { token => $leaver->{access} };
    ($res) = cm_req($tok, POST => "/communities/$pub->{id}/join");
    is $res->code, 201, 'joined';
    ($res, $data) = cm_req($tok, POST => "/communities/$pub->{id}/posts", json => { content => 'Goodbye all' });
    my $gone = $data->{data}{id};
    my $solo = cm_community($tok);
    cm_member($solo->{id}, $member2, 'moderator');
    ($res) = bl_request(DELETE => '/api/v1/users/account', token => $leaver->{access},
                        json => { password => 'correct horse battery staple 42' });
    is $res->code, 200, 'account deleted' or diag $res->content;
    is bl_psql_value(q{SELECT count(*) FROM community_members WHERE user_id = $1}, $leaver->{id}), 0,
       'its memberships are gone';
    ($res, $data) = cm_req($member, GET => "/posts/$gone");
    is $res->code, 200, 'its post stays';
    ok $data->{data}{author_deleted} && !defined $data->{data}{author}, 'shown as from a deleted member';
    is bl_psql_value(q{SELECT role FROM community_members WHERE community_id = $1 AND user_id = $2},
                     $solo->{id}, $member2->{id}), 'owner', 'its community passed to the moderator';
}

done_testing;

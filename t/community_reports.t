# mod_beautiful_community: reports and moderation as users see them — one
# report per user and item; the threshold hiding an item from members
# (also when the reports race); the moderators' and admins' queues; a
# moderator restoring or removing the item; urgent self-harm reports; the
# admin list of communities.
use strict;
use warnings;
use FindBin;
use POSIX ();
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use BL::Test;
require "$FindBin::Bin/community_helpers.pl";

plan skip_all => 'mod_beautiful_community not loaded' unless community_loaded();

my ($owner, $mod, $author, $stranger) = cm_users(4);
my @reporters = cm_users(4);
my $admin = cm_user(role => 'admin');
my $pub = cm_community($owner, privacy => 'public');
my $hidden = cm_community($owner, privacy => 'hidden');
for my $c ($pub, $hidden) {
    cm_member($c->{id}, $mod, 'moderator');
    cm_member($c->{id}, $_) for $author, @reporters;
}
my ($res, $data);
sub new_post {
    my ($c, $text) = @_;
    my ($r, $d) = cm_req($author, POST => "/communities/$c->{id}/posts", json => { content => $text });
    die 'post: ' . $r->code unless $r->code == 201;
    return $d->{data}{id};
}
sub open_reports { bl_psql_value(q{SELECT count(*) FROM content_reports WHERE (post_id = $1 OR comment_id = $1)
                                   AND resolved_at IS NULL}, $_[0]) }

my $p1 = new_post($pub, 'Buy cheap pills at example.test');

# ---------------------------------------------------------------- one report
for my $bad ([{ reason => 'boring' }, 'reason'], [{}, 'reason'],
             [{ reason => 'spam', details => 'd' x 2001 }, 'details'],
             [{ reason => 'spam', urgent => JSON::PP::true }, 'urgent']) {
    ($res, $data) = cm_req($reporters[0], POST => "/posts/$p1/report", json => $bad->[0]);
    is $res->code, 400, "invalid $bad->[1]: 400";
    is $data->{error}{details}, "field: $bad->[1]", "names $bad->[1]";
}
is open_reports($p1), 0, 'no report from the refused bodies';
($res, $data) = cm_req($reporters[0], POST => "/posts/$p1/report", json => { reason => 'spam', details => 'a pill shop' });
is $res->code, 201, 'reported';
like $data->{data}{id}, qr/^[0-9a-f-]{36}$/, 'with the report id';
my $first_report = $data->{data}{id};
($res, $data) = cm_req($reporters[0], POST => "/posts/$p1/report", json => { reason => 'other' });
is $res->code, 409, 'one report per user and item';
($res) = cm_req($stranger, POST => "/posts/$p1/report", json => { reason => 'spam' });
is $res->code, 201, 'any reader of a public community may report';
is open_reports($p1), 2, 'two open reports';
($res, $data) = cm_req($author, GET => "/posts/$p1");
is $res->code, 200, 'below the threshold the post stays visible';
($res) = cm_req($reporters[1], POST => '/posts/not-a-uuid/report', json => { reason => 'spam' });
is $res->code, 404, 'malformed post id: 404';
my $hp = new_post($hidden, 'hidden words');
($res) = cm_req($stranger, POST => "/posts/$hp/report", json => { reason => 'spam' });
is $res->code, 404, 'a hidden community\'s post: 404 to a non-member';

# ---------------------------------------------------------------- the threshold
($res) = cm_req($reporters[1], POST => "/posts/$p1/report", json => { reason => 'harassment' });
is $res->code, 201, 'the third report';
ok bl_psql_value(q{SELECT hidden_at IS NOT NULL FROM community_posts WHERE id = $1}, $p1), 'the post is hidden';
($res) = cm_req($author, GET => "/posts/$p1");
is $res->code, 404, 'members no longer see it';
($res, $data) = cm_req($reporters[2], GET => "/communities/$pub->{id}/posts");
ok !(grep { $_->{id} eq $p1 } @{ $data->{data} }), 'nor in the feed';
is $data->{meta}{total}, 0, 'nor in the total';
($res, $data) = cm_req($mod, GET => "/posts/$p1");
is $res->code, 200, 'a moderator still sees it';
ok $data->{data}{is_hidden}, 'marked hidden';

# ---------------------------------------------------------------- the queue
($res) = cm_req($author, GET => "/communities/$pub->{id}/reports");
is $res->code, 403, 'a plain member cannot see the reports';
($res) = cm_req($stranger, GET => "/communities/$hidden->{id}/reports");
is $res->code, 404, 'a hidden community\'s reports: 404 to a non-member';
($res, $data) = cm_req($mod, GET => "/communities/$pub->{id}/reports");
is $res->code, 200, 'the moderator\'s queue';
ok cm_documented(GET => '/communities/{id}/reports', $res), 'as documented';
my ($item) = grep { $_->{item_id} eq $p1 } @{ $data->{data} };
is $item->{report_count}, 3, 'the item with its count';
is scalar @{ $item->{reports} }, 3, 'and its reports';
is $item->{content}, 'Buy cheap pills at example.test', 'and its content';
ok $item->{is_hidden}, 'hidden';
unlike $res->content, qr/\Q$reporters[0]{id}\E|\Q$stranger->{id}\E/, 'reporters are not named';

# ---------------------------------------------------------------- a moderator restores it
my $rid = $item->{reports}[0]{id};
($res) = cm_req($author, POST => "/communities/$pub->{id}/reports/$rid/resolve", json => { action => 'dismiss' });
is $res->code, 403, 'a plain member cannot decide';
($res, $data) = cm_req($mod, POST => "/communities/$pub->{id}/reports/$rid/resolve", json => { action => 'ban' });
is $res->code, 400, 'unknown action: 400';
is $data->{error}{details}, 'field: action', 'names action';
($res) = cm_req($mod, POST => "/communities/$pub->{id}/reports/nope/resolve", json => { action => 'dismiss' });
is $res->code, 404, 'malformed report id: 404';
($res) = cm_req($mod, POST => "/communities/$hidden->{id}/reports/$rid/resolve", json => { action => 'dismiss' });
is $res->code, 404, 'a report of another community: 404';
is open_reports($p1), 3, 'nothing decided by the refused calls';
($res, $data) = cm_req($mod, POST => "/communities/$pub->{id}/reports/$rid/resolve",
                       json => { action => 'dismiss', note => 'satire, not spam' });
is $res->code, 200, 'dismissed' or diag $res->content;
is open_reports($p1), 0, 'every report of the item resolved';
($res) = cm_req($author, GET => "/posts/$p1");
is $res->code, 200, 'members see the post again';
($res) = cm_req($mod, POST => "/communities/$pub->{id}/reports/$rid/resolve", json => { action => 'remove' });
is $res->code, 409, 'a resolved report: 409';
is bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE action = 'community.report_resolved'
                   AND resource_id = $1 AND created_at > now() - interval '1 hour'}, $rid), 1, 'audited';

# ---------------------------------------------------------------- racing reports
my $p2 = new_post($pub, 'Another dubious post');
my @pids;
for my $u (@reporters[0 .. 2]) {
    my $pid = fork;
    die "fork: $!" unless defined $pid;
    if (!$pid) {
        my ($r) = cm_req($u, POST => "/posts/$p2/report", json => { reason => 'misinformation' });
        POSIX::_exit($r->code == 201 ? 0 : 1);
    }
    push @pids, $pid;
}
my $ok = 0;
for (@pids) { waitpid $_, 0; $ok++ if $? == 0 }
is $ok, 3, 'three reports at once: 201 each';
ok bl_psql_value(q{SELECT hidden_at IS NOT NULL FROM community_posts WHERE id = $1}, $p2),
   'the third hides the post, however they raced';

# ---------------------------------------------------------------- removal
($res, $data) = cm_req($mod, GET => "/communities/$pub->{id}/reports");
($item) = grep { $_->{item_id} eq $p2 } @{ $data->{data} };
($res, $data) = cm_req($mod, POST => "/communities/$pub->{id}/reports/$item->{reports}[0]{id}/resolve",
                       json => { action => 'remove', note => 'medical misinformation' });
is $res->code, 200, 'removed';
ok bl_psql_value(q{SELECT deleted_at IS NOT NULL FROM community_posts WHERE id = $1}, $p2), 'soft-deleted';
($res) = cm_req($mod, GET => "/posts/$p2");
is $res->code, 404, 'gone for everyone';
my @removed = cm_outbox($author->{id}, 'community.post_removed');
is scalar(@removed), 1, 'the author is told of the removal';
is $removed[0]{data}{post_id}, $p2, 'naming the post';

# ---------------------------------------------------------------- self-harm
my $p3 = new_post($pub, 'I do not want to go on');
($res) = cm_req($reporters[3], POST => "/posts/$p3/report", json => { reason => 'self_harm' });
is $res->code, 201, 'a self-harm report';
for my $staff ($owner, $mod) {
    my $n = bl_psql_value(q{SELECT string_agg(channel::text, ',' ORDER BY channel) FROM notifications
                            WHERE user_id = $1 AND type = 'community.report_self_harm'}, $staff->{id});
    is $n, 'email,in_app', 'a moderator is told at once (in app and by email)';
}
is scalar(cm_outbox($author->{id}, 'community.report_self_harm')), 0, 'not a plain member';

# ---------------------------------------------------------------- comments
my ($r0, $d0) = cm_req($author, POST => "/posts/$p3/comments", json => { content => 'rude words' });
my $cm = $d0->{data}{id};
for my $u (@reporters[0 .. 2]) {
    ($res) = cm_req($u, POST => "/comments/$cm/report", json => { reason => 'harassment' });
    is $res->code, 201, 'comment reported';
    if ($u == $reporters[0]) {
        ($res) = cm_req($u, POST => "/comments/$cm/report", json => { reason => 'spam' });
        is $res->code, 409, 'once per user';
    }
}
($res) = cm_req($reporters[3], POST => "/comments/$cm/report", json => { reason => 'spam' });
is $res->code, 404, 'once hidden, members cannot reach it';
($res, $data) = cm_req($reporters[3], GET => "/posts/$p3/comments");
my ($shown) = grep { $_->{id} eq $cm } @{ $data->{data} };
ok $shown->{is_hidden} && !defined $shown->{content}, 'a hidden comment is a tombstone to members';
($res, $data) = cm_req($mod, GET => "/posts/$p3/comments");
($shown) = grep { $_->{id} eq $cm } @{ $data->{data} };
is $shown->{content}, 'rude words', 'the moderator reads it';
($res) = cm_req($reporters[0], POST => '/comments/nope/report', json => { reason => 'spam' });
is $res->code, 404, 'malformed comment id: 404';

# ---------------------------------------------------------------- admins
($res) = cm_req($mod, GET => '/admin/reports');
is $res->code, 403, 'a moderator is not an admin';
($res) = cm_req(undef, GET => '/admin/reports');
is $res->code, 401, 'no token: 401';
($res) = cm_req($reporters[0], POST => "/posts/$hp/report", json => { reason => 'other' });
is $res->code, 201, 'a member reports in the hidden community';
($res, $data) = cm_req($admin, GET => '/admin/reports', query => { per_page => 100 });
is $res->code, 200, 'the admin queue';
my %items = map { $_->{item_id} => $_ } @{ $data->{data} };
ok $items{$hp} && $items{$cm}, 'every community, hidden included';
is $items{$cm}{item_type}, 'comment', 'comments too';
my $log_mark = bl_error_log_mark();
my $warning_note = 'Be kind to the others, note ' . bl_uuid();
($res, $data) = cm_req($admin, POST => "/admin/reports/$items{$cm}{reports}[0]{id}/resolve",
                       json => { action => 'warn_author', note => $warning_note });
is $res->code, 200, 'an admin decides';
is $data->{data}{item_type}, 'comment', 'on the comment';
ok bl_psql_value(q{SELECT hidden_at IS NULL FROM post_comments WHERE id = $1}, $cm), 'the comment shows again';
my @warned = bl_psql(q{SELECT user_id, channel::text, title, body, data->>'comment_id', data->>'post_id'
                       FROM notifications WHERE type = 'community.author_warned'
                       AND data->>'comment_id' = $1}, $cm);
is scalar(@warned), 1, 'warn_author: one notification in the outbox';
is $warned[0][0], $author->{id}, 'to the author of the comment';
is $warned[0][1], 'in_app', 'in the app';
like $warned[0][2], qr/warned you about your comment/, 'saying what was warned about';
like $warned[0][3], qr/\Q$warning_note\E/, 'with the moderator\'s note';
is_deeply [@{ $warned[0] }[4, 5]], [$cm, $p3], 'naming the comment and its post';
is scalar(cm_outbox($author->{id}, 'community.post_removed')), 1, 'and no removal notice';
unlike bl_error_log_since($log_mark), qr/\Q$warning_note\E/, 'the note is not in the error log';

# warn_author on a post, by its community's moderator
my $p4 = new_post($pub, 'A borderline post');
($res) = cm_req($_, POST => "/posts/$p4/report", json => { reason => 'other' }) for @reporters[0 .. 1];
($res, $data) = cm_req($mod, GET => "/communities/$pub->{id}/reports");
($item) = grep { $_->{item_id} eq $p4 } @{ $data->{data} };
($res) = cm_req($mod, POST => "/communities/$pub->{id}/reports/$item->{reports}[0]{id}/resolve",
                json => { action => 'warn_author' });
is $res->code, 200, 'a moderator warns the author of a post';
@warned = cm_outbox($author->{id}, 'community.author_warned');
my ($on_post) = grep { ($_->{data}{post_id} // '') eq $p4 } @warned;
ok $on_post && !exists $on_post->{data}{comment_id}, 'the author is told, about the post';
ok bl_psql_value(q{SELECT deleted_at IS NULL AND hidden_at IS NULL FROM community_posts WHERE id = $1}, $p4),
   'the warned post stays';
is scalar(cm_outbox($reporters[0]{id}, 'community.author_warned')), 0, 'reporters are not told';
($res) = cm_req($mod, POST => "/admin/reports/$items{$hp}{reports}[0]{id}/resolve", json => { action => 'dismiss' });
is $res->code, 403, 'a moderator cannot use the admin route';

($res) = cm_req($owner, GET => '/admin/communities');
is $res->code, 403, 'admin communities: 403 to others';
($res, $data) = cm_req($admin, GET => '/admin/communities', query => { privacy => 'hidden', per_page => 100 });
is $res->code, 200, 'admin communities';
ok cm_documented(GET => '/admin/communities', $res), 'as documented';
my ($hrow) = grep { $_->{id} eq $hidden->{id} } @{ $data->{data} };
ok $hrow, 'hidden communities listed';
is $hrow->{open_report_count}, 1, 'with their open reports';
is $hrow->{member_count}, 7, 'members';
is $hrow->{post_count}, 1, 'and posts';
($res) = cm_req($admin, GET => '/admin/communities', query => { privacy => 'secret' });
is $res->code, 400, 'bad filter: 400';

done_testing;

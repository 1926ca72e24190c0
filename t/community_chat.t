# mod_beautiful_community, chat: direct conversations (the pair rule: a
# shared community or medical record; one conversation per pair), group
# chats of a community (moderators create, members join, leavers are
# removed), messages with the 15-minute edit window and tombstones, keyset
# paging over 500 messages, read markers and unread counts, muting, and
# 404 for a non-participant on every route.
use strict;
use warnings;
use FindBin;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use BL::Test;
require "$FindBin::Bin/community_helpers.pl";

plan skip_all => 'mod_beautiful_community not loaded' unless community_loaded();

my ($alice, $bob, $carol, $dave, $erin) = cm_users(5);
bl_psql(q{UPDATE users SET first_name = 'Alice', last_name = 'A' WHERE id = $1}, $alice->{id});
my $circle = cm_community($alice);
cm_member($circle->{id}, $bob);
cm_member($circle->{id}, $erin);

# ---------------------------------------------------------------- direct

my ($res, $data) = cm_req(undef, GET => '/chat/conversations');
is $res->code, 401, 'no token: 401';

($res, $data) = cm_req($alice, POST => '/chat/conversations',
                       json => { kind => 'direct', user_id => $carol->{id} });
is $res->code, 403, 'no shared community or record: 403';
is cm_code($data), 'FORBIDDEN', '... FORBIDDEN';

($res, $data) = cm_req($alice, POST => '/chat/conversations',
                       json => { kind => 'direct', user_id => $bob->{id} });
is $res->code, 201, 'a shared community: 201' or diag $res->content;
my $direct = $data->{data};
ok cm_documented(POST => '/chat/conversations', $res), '... as documented';
is $direct->{kind}, 'direct', 'kind direct';
is_deeply [map { $_->{id} } @{ $direct->{participants} }], [$bob->{id}],
    'the other participant listed';
is $direct->{unread_count}, 0, 'nothing unread';

($res, $data) = cm_req($bob, POST => '/chat/conversations',
                       json => { kind => 'direct', user_id => uc $alice->{id} });
is $res->code, 200, 'the same pair again (other side, upper-case id): 200';
is $data->{data}{id}, $direct->{id}, '... the same conversation';
is bl_psql_value(q{SELECT count(*) FROM chat_conversations WHERE direct_key LIKE '%' || $1 || '%'},
                 $alice->{id}), 1, '... one row';

# A medical record shared with someone is a relationship too.
my $record = bl_psql_value(
    q{INSERT INTO medical_records (owner_id, title, storage_key, content_type, size_bytes,
        sha256, wrapped_key, key_version, nonce_prefix)
      VALUES ($1, 'Scan', 'k/' || gen_random_uuid(), 'application/pdf', 1,
        decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex'), 1,
        decode('00000000', 'hex')) RETURNING id}, $dave->{id});
bl_psql(q{INSERT INTO medical_record_shares (record_id, shared_with_id, expires_at)
          VALUES ($1, $2, now() + interval '1 day')}, $record, $alice->{id});
($res, $data) = cm_req($alice, POST => '/chat/conversations',
                       json => { kind => 'direct', user_id => $dave->{id} });
is $res->code, 201, 'a shared medical record: 201' or diag $res->content;
# A stand-in record (no stored file, a key of zeros): gone again, so the
# store holds only records whose keys open (t/medical_rotation.t re-wraps them all).
bl_psql(q{DELETE FROM medical_records WHERE id = $1}, $record);

for my $case (
    [{ kind => 'direct', user_id => $alice->{id} }, 400, 'with oneself'],
    [{ kind => 'direct', user_id => 'nope' }, 400, 'a malformed user id'],
    [{ kind => 'direct' }, 400, 'no user id'],
    [{ kind => 'channel', user_id => $bob->{id} }, 400, 'an unknown kind'],
    [{ kind => 'direct', user_id => $bob->{id}, extra => 1 }, 400, 'an unknown field'],
    [{ kind => 'direct', user_id => bl_uuid() }, 404, 'a user who does not exist'],
) {
    ($res, $data) = cm_req($alice, POST => '/chat/conversations', json => $case->[0]);
    is $res->code, $case->[1], "direct $case->[2]: $case->[1]";
}
($res) = cm_req($alice, POST => '/chat/conversations', body => 'not json',
                content_type => 'application/json');
is $res->code, 400, 'malformed JSON: 400';

# ---------------------------------------------------------------- messages

($res, $data) = cm_req($alice, POST => "/chat/conversations/$direct->{id}/messages",
                       json => { body => 'Hello Bob' });
is $res->code, 201, 'send: 201' or diag $res->content;
my $m1 = $data->{data};
ok cm_documented(POST => '/chat/conversations/{id}/messages', $res), '... as documented';
is $m1->{body}, 'Hello Bob', 'the body';
is $m1->{sender_id}, $alice->{id}, 'the sender';
ok !$m1->{is_deleted} && !defined $m1->{edited_at}, 'neither edited nor deleted';

for my $case ([{ body => '' }, 'empty'], [{ body => "  \n " }, 'blank'],
              [{ body => 'x' x 4001 }, '4001 characters'], [{ body => 5 }, 'a number'],
              [{}, 'absent'], [{ body => 'ok', to => 1 }, 'an unknown field']) {
    ($res) = cm_req($alice, POST => "/chat/conversations/$direct->{id}/messages",
                    json => $case->[0]);
    is $res->code, 400, "a body $case->[1]: 400";
}
($res) = cm_req($alice, POST => "/chat/conversations/$direct->{id}/messages",
                json => { body => "\x{1F49C}" x 4000 });
is $res->code, 201, '4000 characters (emoji): 201';

($res, $data) = cm_req($bob, GET => '/chat/conversations');
is $res->code, 200, 'list: 200';
ok cm_documented(GET => '/chat/conversations', $res), '... as documented';
my ($mine) = grep { $_->{id} eq $direct->{id} } @{ $data->{data} };
is $mine->{unread_count}, 2, "Bob's unread count";
is $mine->{last_message}{body}, "\x{1F49C}" x 4000, 'the last message';
is_deeply $mine->{participants}, [{ id => $alice->{id}, name => 'Alice A', avatar_url => undef }],
    'the other participant: id, name, avatar';
is $data->{meta}{total}, 1, 'meta total';

($res, $data) = cm_req($alice, GET => '/chat/conversations', query => { per_page => 1 });
is scalar @{ $data->{data} }, 1, 'per_page 1: one conversation';
is $data->{data}[0]{id}, $direct->{id}, '... the one with the latest message first';
is $data->{meta}{total}, 2, '... of two';

# ---------------------------------------------------------------- read markers

($res, $data) = cm_req($bob, POST => "/chat/conversations/$direct->{id}/read",
                       json => { up_to => $m1->{id} });
is $res->code, 200, 'read up to the first: 200' or diag $res->content;
is $data->{data}{unread_count}, 1, '... one left unread';
($res, $data) = cm_req($bob, GET => "/chat/conversations/$direct->{id}/messages",
                       query => { limit => 1 });
my $last = $data->{data}{items}[0];
($res, $data) = cm_req($bob, POST => "/chat/conversations/$direct->{id}/read",
                       json => { up_to => $last->{id} });
is $data->{data}{unread_count}, 0, 'read up to the last: none unread';
($res, $data) = cm_req($bob, POST => "/chat/conversations/$direct->{id}/read",
                       json => { up_to => $m1->{id} });
is $data->{data}{unread_count}, 0, 'an older message does not move the marker back';
($res) = cm_req($bob, POST => "/chat/conversations/$direct->{id}/read", json => { up_to => 'x' });
is $res->code, 400, 'up_to not an id: 400';
($res) = cm_req($bob, POST => "/chat/conversations/$direct->{id}/read",
                json => { up_to => bl_uuid() });
is $res->code, 404, 'up_to a message of no conversation of mine: 404';

($res, $data) = cm_req($bob, PUT => "/chat/conversations/$direct->{id}", json => { is_muted => \1 });
is $res->code, 200, 'mute: 200';
ok $data->{data}{is_muted}, '... muted';
($res) = cm_req($bob, PUT => "/chat/conversations/$direct->{id}", json => { is_muted => 'yes' });
is $res->code, 400, 'is_muted not a boolean: 400';
cm_req($bob, PUT => "/chat/conversations/$direct->{id}", json => { is_muted => \0 });

# ---------------------------------------------------------------- edit and delete

($res, $data) = cm_req($alice, PUT => "/chat/messages/$m1->{id}", json => { body => 'Hello, Bob' });
is $res->code, 200, 'edit within the window: 200' or diag $res->content;
is $data->{data}{body}, 'Hello, Bob', '... the new body';
ok defined $data->{data}{edited_at}, '... edited_at set';
($res, $data) = cm_req($bob, PUT => "/chat/messages/$m1->{id}", json => { body => 'Hijack' });
is $res->code, 403, "someone else's message: 403";
($res) = cm_req($alice, PUT => "/chat/messages/$m1->{id}", json => { body => '' });
is $res->code, 400, 'an empty edit: 400';

# The edit window, with the test clock 16 minutes ahead.
my $later = bl_psql_value(q{SELECT to_char((now() + interval '16 minutes') AT TIME ZONE 'UTC',
                                   'YYYY-MM-DD"T"HH24:MI:SS"Z"')});
($res, $data) = cm_req($alice, PUT => "/chat/messages/$m1->{id}", json => { body => 'Too late' },
                       headers => { 'X-BL-Test-Now' => $later });
if ($res->code == 200) {
    # A build without the test clock: age the message instead.
    bl_psql(q{UPDATE chat_messages SET created_at = created_at - interval '16 minutes'
              WHERE id = $1}, $m1->{id});
    cm_req($alice, PUT => "/chat/messages/$m1->{id}", json => { body => 'Hello, Bob' });
    ($res, $data) = cm_req($alice, PUT => "/chat/messages/$m1->{id}", json => { body => 'Too late' });
}
is $res->code, 403, 'edit after 15 minutes: 403';
like $data->{error}{message}, qr/15 minutes/, '... saying why';

($res) = cm_req($bob, DELETE => "/chat/messages/$m1->{id}");
is $res->code, 403, "deleting someone else's message: 403";
($res) = cm_req($alice, DELETE => "/chat/messages/$m1->{id}");
is $res->code, 204, 'delete: 204';
($res) = cm_req($alice, DELETE => "/chat/messages/$m1->{id}");
is $res->code, 204, 'delete again: 204';
($res, $data) = cm_req($bob, GET => "/chat/conversations/$direct->{id}/messages");
ok cm_documented(GET => '/chat/conversations/{id}/messages', $res), 'a page as documented';
my ($tomb) = grep { $_->{id} eq $m1->{id} } @{ $data->{data}{items} };
ok $tomb && $tomb->{is_deleted}, 'the other side sees a tombstone';
ok $tomb && !defined $tomb->{body}, '... without the body';
is bl_psql_value(q{SELECT length(body) FROM chat_messages WHERE id = $1}, $m1->{id}), 0,
    '... which is gone from the database';
($res) = cm_req($alice, PUT => "/chat/messages/$m1->{id}", json => { body => 'Back' });
ok $res->code == 409 || $res->code == 403, 'editing a tombstone is refused';

# ---------------------------------------------------------------- strangers

my $cid = $direct->{id};
for my $route (
    [GET => "/chat/conversations/$cid"],
    [PUT => "/chat/conversations/$cid", { is_muted => \1 }],
    [POST => "/chat/conversations/$cid/join"],
    [POST => "/chat/conversations/$cid/read", { up_to => $last->{id} }],
    [GET => "/chat/conversations/$cid/messages"],
    [POST => "/chat/conversations/$cid/messages", { body => 'hi' }],
    [GET => "/chat/conversations/$cid/events"],
    [PUT => "/chat/messages/$last->{id}", { body => 'mine now' }],
    [DELETE => "/chat/messages/$last->{id}"],
) {
    my ($method, $path, $json) = @$route;
    ($res, $data) = cm_req($carol, $method => $path, ($json ? (json => $json) : ()));
    is $res->code, 404, "a non-participant: $method $path is 404";
    ok cm_documented($method, ($path =~ s{/[0-9a-f-]{36}}{/{id}}r), $res), '... as documented'
        if $path =~ /messages$/;
}
($res) = cm_req($carol, GET => '/chat/conversations/not-a-uuid/messages');
is $res->code, 404, 'a malformed id: 404';
is bl_psql_value(q{SELECT count(*) FROM chat_messages WHERE conversation_id = $1}, $cid), 2,
    '... and nothing was written';

# ---------------------------------------------------------------- groups

($res, $data) = cm_req($bob, POST => '/chat/conversations',
                       json => { kind => 'group', community_id => $circle->{id}, title => 'Tea' });
is $res->code, 403, 'a plain member creating a group chat: 403';
($res, $data) = cm_req($carol, POST => '/chat/conversations',
                       json => { kind => 'group', community_id => $circle->{id}, title => 'Tea' });
is $res->code, 404, 'a non-member: 404';
($res, $data) = cm_req($alice, POST => '/chat/conversations',
                       json => { kind => 'group', community_id => $circle->{id}, title => ' ' });
is $res->code, 400, 'a blank title: 400';
($res, $data) = cm_req($alice, POST => '/chat/conversations',
                       json => { kind => 'group', community_id => $circle->{id},
                                 title => 'Thursday tea' });
is $res->code, 201, 'the owner creates a group chat: 201' or diag $res->content;
my $group = $data->{data};
is $group->{community_id}, $circle->{id}, '... of the community';

($res, $data) = cm_req($bob, GET => "/chat/conversations/$group->{id}");
is $res->code, 404, 'a member who has not joined: 404';
($res, $data) = cm_req($bob, POST => "/chat/conversations/$group->{id}/join");
is $res->code, 201, 'a member joins: 201';
($res, $data) = cm_req($bob, POST => "/chat/conversations/$group->{id}/join");
is $res->code, 200, '... again: 200';
($res) = cm_req($carol, POST => "/chat/conversations/$group->{id}/join");
is $res->code, 404, 'a non-member cannot join: 404';
($res) = cm_req($bob, POST => "/chat/conversations/$group->{id}/messages", json => { body => 'Hi all' });
is $res->code, 201, 'the member writes in it';

bl_psql(q{DELETE FROM community_members WHERE community_id = $1 AND user_id = $2},
        $circle->{id}, $bob->{id});
($res) = cm_req($bob, GET => "/chat/conversations/$group->{id}/messages");
is $res->code, 404, 'leaving the community removes one from its group chats';

# ---------------------------------------------------------------- paging

my $page_conv = cm_req($alice, POST => '/chat/conversations',
                       json => { kind => 'direct', user_id => $erin->{id} });
my $pid = bl_json($page_conv->content)->{data}{id};
bl_psql(q{INSERT INTO chat_messages (conversation_id, sender_id, body, created_at)
          SELECT $1, $2, 'm' || g, greatest(now() - interval '1 hour', date_trunc('month', now()))
                 + g * interval '1 millisecond'
          FROM generate_series(1, 497) g}, $pid, $alice->{id});
# Three sharing one instant: the id breaks the tie.
bl_psql(q{INSERT INTO chat_messages (conversation_id, sender_id, body, created_at)
          SELECT $1, $2, 'tie' || g, greatest(now() - interval '30 minutes',
                 date_trunc('month', now()) + interval '1 second') FROM generate_series(1, 3) g},
        $pid, $erin->{id});
my (@seen, $cursor, $pages);
do {
    ($res, $data) = cm_req($erin, GET => "/chat/conversations/$pid/messages",
                           query => { limit => 37, (defined $cursor ? (before => $cursor) : ()) });
    die 'page: ' . $res->code . ' ' . $res->content unless $res->code == 200;
    push @seen, map { $_->{id} } @{ $data->{data}{items} };
    $cursor = $data->{data}{next_cursor};
    $pages++;
} while (defined $cursor && $pages < 50);
my @expected = map { $_->[0] } bl_psql(
    q{SELECT id FROM chat_messages WHERE conversation_id = $1 ORDER BY created_at DESC, id DESC},
    $pid);
is scalar @seen, 500, '500 messages paged';
is $pages, 14, '... in 14 pages of 37';
is_deeply \@seen, \@expected, '... newest first, no gap, no duplicate';
($res) = cm_req($erin, GET => "/chat/conversations/$pid/messages", query => { limit => 101 });
is $res->code, 400, 'limit 101: 400';
($res) = cm_req($erin, GET => "/chat/conversations/$pid/messages", query => { limit => 0 });
is $res->code, 400, 'limit 0: 400';
for my $bad ('abc', '123', '12_nope', '_' . bl_uuid(), '1' x 30 . '_' . bl_uuid()) {
    ($res) = cm_req($erin, GET => "/chat/conversations/$pid/messages", query => { before => $bad });
    is $res->code, 400, "cursor '$bad': 400";
}
($res) = cm_req($erin, GET => "/chat/conversations/$pid/messages", query => { sort => 'asc' });
is $res->code, 400, 'an unknown query parameter: 400';

# ---------------------------------------------------------------- coalescing

# The test window is 2 s (t/conf/test.d/community_chat.conf).
my $fresh = scalar cm_user();
cm_member($circle->{id}, $fresh);
($res, $data) = cm_req($alice, POST => '/chat/conversations',
                       json => { kind => 'direct', user_id => $fresh->{id} });
my $nid = $data->{data}{id};
my $sender_before = scalar cm_outbox($alice->{id}, 'chat.message');
cm_req($alice, POST => "/chat/conversations/$nid/messages", json => { body => "one $_" }) for 1 .. 5;
my @rows = cm_outbox($fresh->{id}, 'chat.message');
is scalar @rows, 2, 'five messages: one push and one in-app notification';
is $rows[0]{data}{conversation_id}, $nid, '... naming the conversation';
like $rows[0]{title}, qr/Alice/, '... and the sender';
unlike join(' ', map { "$_->{title} $_->{body}" } @rows), qr/one \d/, '... never the message';
is scalar(cm_outbox($alice->{id}, 'chat.message')), $sender_before, 'the sender gets none';
sleep 2.2;
cm_req($alice, POST => "/chat/conversations/$nid/messages", json => { body => 'again' });
is scalar(cm_outbox($fresh->{id}, 'chat.message')), 4, 'after the window: one more of each';
cm_req($fresh, PUT => "/chat/conversations/$nid", json => { is_muted => \1 });
sleep 2.2;
cm_req($alice, POST => "/chat/conversations/$nid/messages", json => { body => 'muted' });
is scalar(cm_outbox($fresh->{id}, 'chat.message')), 4, 'muted: none';

done_testing();

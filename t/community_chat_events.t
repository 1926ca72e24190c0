# mod_beautiful_community, chat live events: GET
# /api/v1/chat/conversations/:id/events (Server-Sent Events through core's
# live streams). A message reaches the other participant's stream within a
# second; edits, tombstones and read markers follow; a client that comes
# back with Last-Event-ID gets what it missed, in order; a participant
# with the stream open is not notified, and counts as connected only until
# their stream's access token runs out (what a child that died with the
# stream open leaves behind stops counting then); a stranger gets 404.
use strict;
use warnings;
use FindBin;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Time::HiRes qw(sleep time);
use BL::Test;
require "$FindBin::Bin/community_helpers.pl";
require "$FindBin::Bin/notify_helpers.pl";

plan skip_all => 'mod_beautiful_community not loaded' unless community_loaded();

my ($alice, $bob, $carol) = cm_users(3);
my $circle = cm_community($alice);
cm_member($circle->{id}, $bob);
my ($res, $data) = cm_req($alice, POST => '/chat/conversations',
                          json => { kind => 'direct', user_id => $bob->{id} });
my $cid = $data->{data}{id};
my $path = "/api/v1/chat/conversations/$cid/events";

my $stranger = sse_open(token => $carol->{token}, path => $path);
is $stranger->{status}, 404, 'a non-participant: 404';
sse_close($stranger);
my $anon = sse_open(path => $path);
is $anon->{status}, 401, 'no token: 401';
sse_close($anon);

my $bs = sse_open(token => $bob->{token}, path => $path);
is $bs->{status}, 200, "Bob's stream: 200";
like $bs->{headers}{'content-type'}, qr{^text/event-stream}, '... text/event-stream';
sleep 0.3;

my $t0 = time;
($res, $data) = cm_req($alice, POST => "/chat/conversations/$cid/messages",
                       json => { body => 'Are you there?' });
my $m1 = $data->{data};
my ($e1) = sse_events($bs, 1, 5);
ok $e1 && $e1->{at} - $t0 < 1.0,
    sprintf('the message reaches the other client within 1 s (%.3f s)', $e1 ? $e1->{at} - $t0 : -1);
is $e1 && $e1->{event}, 'message.created', 'event: message.created';
is $e1 && bl_json($e1->{data})->{id}, $m1->{id}, '... the message';
is $e1 && bl_json($e1->{data})->{body}, 'Are you there?', '... with its body';
like $e1 && $e1->{id}, qr/^\d+$/, '... and an event id';
is scalar(cm_outbox($bob->{id}, 'chat.message')), 0, 'connected: no notification';

# Bob's presence: one member for his stream, good until his token's expiry
# (cm_users mints tokens for an hour) and a little more.
my %presence = bl_redis(ZRANGE => "bl:chat:online:$cid", 0, -1, "WITHSCORES");
my @bob_members = grep { index($_, "$bob->{id}:") == 0 } keys %presence;
is scalar(@bob_members), 1, "Bob's open stream counts him as connected";
my $left = @bob_members ? $presence{$bob_members[0]} - time : 0;
ok $left > 3600 - 60 && $left < 3600 + 120,
    sprintf("... until about his token's expiry (%d s from now)", $left);

cm_req($alice, PUT => "/chat/messages/$m1->{id}", json => { body => 'Are you there, Bob?' });
my ($e2) = sse_events($bs, 1, 5);
is $e2 && $e2->{event}, 'message.edited', 'an edit: message.edited';
is $e2 && bl_json($e2->{data})->{body}, 'Are you there, Bob?', '... with the new body';
ok $e2 && $e2->{id} > $e1->{id}, '... and a later id';

($res, $data) = cm_req($bob, POST => "/chat/conversations/$cid/messages",
                       json => { body => 'Here' });
my $mb = $data->{data};
my ($e3) = sse_events($bs, 1, 5);
is $e3 && bl_json($e3->{data})->{id}, $mb->{id}, "Bob's own message reaches his stream too";

# Bob goes away; three things happen meanwhile.
sse_close($bs);
sleep 0.7;
is bl_redis(ZSCORE => "bl:chat:online:$cid", $bob_members[0] // 'none'), '',
    "his stream's end takes his presence away";
($res) = cm_req($alice, POST => "/chat/conversations/$cid/read", json => { up_to => $mb->{id} });
is $res->code, 200, 'Alice reads up to it';
($res, $data) = cm_req($alice, POST => "/chat/conversations/$cid/messages",
                       json => { body => 'Missed one' });
my $m2 = $data->{data};
cm_req($alice, DELETE => "/chat/messages/$m1->{id}");
is scalar(cm_outbox($bob->{id}, 'chat.message')), 2, 'away: notified (push and in-app)';

my $back = sse_open(token => $bob->{token}, path => $path, last_id => $e3->{id});
is $back->{status}, 200, 'back with Last-Event-ID: 200';
my @missed = sse_events($back, 3, 5);
is_deeply [map { $_->{event} } @missed], ['read', 'message.created', 'message.deleted'],
    '... the missed events, in order';
is bl_json($missed[0]{data})->{user_id}, $alice->{id}, "... Alice's read marker";
is bl_json($missed[1]{data})->{body}, 'Missed one', '... the new message';
ok bl_json($missed[2]{data})->{is_deleted}, '... the tombstone';
ok !defined bl_json($missed[2]{data})->{body}, '... without its body';
my @ids = map { $_->{id} } @missed;
is_deeply \@ids, [sort { $a <=> $b } @ids], '... ids increasing';

($res, $data) = cm_req($alice, POST => "/chat/conversations/$cid/messages",
                       json => { body => 'Live again' });
my ($live) = sse_events($back, 1, 5);
is $live && bl_json($live->{data})->{body}, 'Live again', '... then live events';
sse_close($back);

my $bad = sse_open(token => $bob->{token}, path => $path, last_id => 'yesterday');
is $bad->{status}, 400, 'a Last-Event-ID that is no event id: 400';
sse_close($bad);

# Presence a child left behind when it died with Carol's stream open: it
# counts until its time, then no more.
cm_member($circle->{id}, $carol);
($res, $data) = cm_req($alice, POST => '/chat/conversations',
                       json => { kind => 'direct', user_id => $carol->{id} });
my $ccid = $data->{data}{id};
my $ckey = "bl:chat:online:$ccid";
my $stale = "$carol->{id}:00000000deadbeef";
bl_redis(ZADD => $ckey, int(time) + 600, $stale);
cm_req($alice, POST => "/chat/conversations/$ccid/messages", json => { body => 'One' });
is scalar(cm_outbox($carol->{id}, 'chat.message')), 0,
    "a dead child's presence, still within its token's time: counted as connected";
bl_redis(ZADD => $ckey, int(time) - 5, $stale);
cm_req($alice, POST => "/chat/conversations/$ccid/messages", json => { body => 'Two' });
is scalar(cm_outbox($carol->{id}, 'chat.message')), 2,
    '... past its time: not connected, notified (push and in-app)';
my $cs = sse_open(token => $carol->{token}, path => "/api/v1/chat/conversations/$ccid/events");
is $cs->{status}, 200, "Carol's stream: 200";
is bl_redis(ZSCORE => $ckey, $stale), '', '... and the next stream drops the stale member';
sse_close($cs);

done_testing();

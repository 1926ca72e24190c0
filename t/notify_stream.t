# mod_beautiful_notify + core's live streams: GET /api/v1/notifications/stream
# (Server-Sent Events). Events within a second of the row's commit, every
# open stream of the user, Last-Event-ID resume, heartbeats, the per-child
# cap (test conf: 2 per child, 2 children) and its 503, a slot freed by a
# client that goes, a lost Redis subscription ending streams, and Redis
# down: 503 while the worker still delivers email and SMS.
use strict;
use warnings FATAL => 'all';

use FindBin ();
use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use Time::HiRes qw(sleep time);
use BL::Test;
require "$FindBin::Bin/notify_helpers.pl";

plan skip_all => 'mod_beautiful_notify not loaded' unless notify_loaded();
plan tests => 34;

my $restarted = 0;
END { bl_stack('redis-start') if $ENV{BL_STACK} && $restarted }

my $u = notify_user();
my $other = notify_user();

# ---------------------------------------------------------------- live events

my $a = sse_open(token => $u->{token});
is($a->{status}, 200, 'stream: 200');
like($a->{headers}{'content-type'}, qr{^text/event-stream}, '... text/event-stream');
is($a->{headers}{'cache-control'}, 'no-store', '... not cached');
my $b = sse_open(token => $u->{token});
is($b->{status}, 200, 'a second stream of the same user: 200');
my $o = sse_open(token => $other->{token});
sleep 0.3;

my $t0 = time;
my $id1 = notify_add(user => $u->{id}, title => 'First');
my ($ea) = sse_events($a, 1, 5);
my ($eb) = sse_events($b, 1, 5);
ok($ea && $ea->{at} - $t0 < 1.0, sprintf('stream A got the event within 1 s (%.3f s)',
                                         $ea ? $ea->{at} - $t0 : -1));
ok($eb && $eb->{at} - $t0 < 1.0, 'stream B got it too');
is($ea && $ea->{event}, 'notification', 'event: notification');
my $data = $ea ? bl_json($ea->{data}) : {};
is($data->{id}, $id1, 'data is the notification');
is($ea && $ea->{id}, notify_row($id1)->{seq}, 'id: the row\'s sequence number');
my @none = sse_events($o, 1, 0.7);
is(scalar @none, 0, "another user's stream gets nothing");
sse_close($o);

# ---------------------------------------------------------------- resume

sse_close($a);
my $id2 = notify_add(user => $u->{id}, title => 'Second');
my $id3 = notify_add(user => $u->{id}, title => 'Third');
notify_wait($_, 5) for $id2, $id3;
sse_events($b, 2, 3);
my $r = sse_open(token => $u->{token}, last_id => $ea->{id});
is($r->{status}, 200, 'reconnect with Last-Event-ID: 200');
my @missed = sse_events($r, 2, 3);
is_deeply([map { bl_json($_->{data})->{title} } @missed], ['Second', 'Third'],
          '... the missed events, in order');
my $id4 = notify_add(user => $u->{id}, title => 'Fourth');
my ($live) = sse_events($r, 1, 3);
is($live && bl_json($live->{data})->{title}, 'Fourth', '... then live ones');
$r->{heartbeats} = 0;
sse_events($r, 1, 1.6);
ok($r->{heartbeats} >= 1, 'an idle stream gets heartbeat comments');
sse_close($r);
sse_close($b);

# A stream lives no longer than the access token it was opened with.
my ($short, $sc) = bl_mint_jwt(sub => $u->{id}, exp => int(time) + 3);
bl_session_create($sc->{sid}, $u->{id});
# The two streams just closed free their slots once the server notices
# (the cap test below shows it); until then the cap may answer 503.
my $ending = sse_open(token => $short);
for (1 .. 20) {
    last unless $ending->{status} == 503;
    sse_close($ending);
    select undef, undef, undef, 0.1;
    $ending = sse_open(token => $short);
}
is($ending->{status}, 200, 'a stream on a token about to expire: 200');
sse_events($ending, 1, 5);
ok($ending->{closed} || $ending->{eof}, '... ends when the token expires');
sse_close($ending);

sleep 1;   # the closed streams' slots are freed within half a second
my $bad = sse_open(token => $u->{token}, last_id => 'abc');
is($bad->{status}, 400, 'a Last-Event-ID that is no event id: 400');
sse_close($bad);
my $anon = sse_open();
is($anon->{status}, 401, 'no token: 401');
sse_close($anon);

# ---------------------------------------------------------------- the cap

sleep 1;   # the closed streams' slots are freed within half a second
# Five streams for four slots: whichever child a connection lands on, at
# least one is refused.
my (@open, @refused);
for (1 .. 5) {
    my $s = sse_open(token => $u->{token});
    if ($s->{status} == 200) { push @open, $s }
    else { push @refused, $s }
}
ok(@open >= 2 && @open <= 4, 'at most two children x two streams are served (' . @open . ')');
is(scalar(@refused) && $refused[0]{status}, 503, 'past the cap: 503');
ok(@refused && $refused[0]{headers}{'retry-after'}, '... with Retry-After');
sse_close($_) for @refused;
sse_close(shift @open);
my $freed;
my $until = time + 6;
while (time < $until) {
    my $s = sse_open(token => $u->{token});
    if ($s->{status} == 200) { $freed = $s; last }
    sse_close($s);
    sleep 0.3;
}
ok($freed, 'a client that disconnects frees its slot');
push @open, $freed if $freed;

# ---------------------------------------------------------------- Redis

# The subscription goes (Redis kills pub/sub clients): streams end, so
# their clients reconnect and resume.
bl_redis('CLIENT', 'KILL', 'TYPE', 'pubsub');
my $ended = 0;
for my $s (@open) {
    sse_events($s, 1, 3);
    $ended++ if $s->{closed} || $s->{eof};
}
is($ended, scalar @open, 'a lost Redis subscription ends every stream');
sse_close($_) for @open;
@open = ();
my $back;
$until = time + 5;
while (time < $until) {
    my $s = sse_open(token => $u->{token}, last_id => $live->{id});
    if ($s->{status} == 200) { $back = $s; last }
    sse_close($s);
    sleep 0.3;
}
ok($back, 'streams are served again once resubscribed');
sse_close($back);

# Redis stopped: no stream (503), but email and SMS still go out.
bl_psql(q{INSERT INTO notification_preferences (user_id, phone) VALUES ($1, '+919800000001')},
        $u->{id});
ok(bl_stack('redis-stop'), 'Redis stopped');
$restarted = 1;
my $down = sse_open(token => $u->{token});
is($down->{status}, 503, 'Redis down: the stream answers 503');
ok($down->{headers}{'retry-after'}, '... with Retry-After');
sse_close($down);
my $mail = notify_add(user => $u->{id}, channel => 'email', type => 'reminder.due');
my $sms = notify_add(user => $u->{id}, channel => 'sms', type => 'reminder.due');
is(notify_wait($mail, 15)->{status}, 'sent', 'Redis down: email delivered');
is(notify_wait($sms, 15)->{status}, 'sent', 'Redis down: SMS delivered');
ok(-f "$ENV{BL_STATE_DIR}/sms/$sms.json", '... into the SMS sink');
my $in_app = notify_add(user => $u->{id}, title => 'While Redis was down');
is(notify_wait($in_app, 15)->{status}, 'sent', 'in-app rows are still stored as delivered');
ok(bl_stack('redis-start'), 'Redis started');
$restarted = 0;
my ($tok, $claims) = bl_mint_jwt(sub => $u->{id});
bl_session_create($claims->{sid}, $u->{id});
my $again;
$until = time + 8;
while (time < $until) {
    my $s = sse_open(token => $tok, last_id => $live->{id});
    if ($s->{status} == 200) { $again = $s; last }
    sse_close($s);
    sleep 0.3;
}
ok($again, 'Redis back: streams again');
my @caught = $again ? sse_events($again, 2, 3) : ();
ok((grep { bl_json($_->{data})->{title} eq 'While Redis was down' } @caught),
   '... and resume brings what was stored while Redis was down');
sse_close($again);

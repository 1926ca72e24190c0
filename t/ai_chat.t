# mod_beautiful_ai: chat against the loopback model (t/tools/openai_fake.py),
# which checks the Bearer key, the model and the message roles and records
# what it got. The conversation and its history, the ledger row with tokens
# and cost, minimum necessary (use_my_data) and redaction, quotas by tier,
# provider errors (429/500 retried, then 503 with Retry-After), a stalled
# model, the circuit breaker, and the conversation routes' unhappy paths.
use strict;
use warnings FATAL => 'all';

use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use FindBin ();
use JSON::PP ();
use POSIX ();
use Time::HiRes qw(time sleep);
use BL::Test;
require "$FindBin::Bin/ai_helpers.pl";
our ($AI_KEY, $AI_MODEL);

plan skip_all => 'mod_beautiful_ai not loaded' unless ai_loaded();
plan tests => 96;

start_fake();
fake_reset();
my $JSON = JSON::PP->new->utf8->canonical;

# ---------------------------------------------------------------- a conversation

my $user = ai_user(first_name => 'Priya', last_name => 'Raman', date_of_birth => '1980-03-05');
my ($res, $data) = ai_post($user, 'chat', { message => 'What helps with nausea after chemo?' });
is($res->code, 200, 'chat: 200');
ai_conforms($res, 'POST', '/ai/chat', 'chat');
is($data->{data}{message}{content}, 'Rest and drink water; tell your care team if it gets worse.',
   'the model\'s answer');
like($data->{data}{disclaimer}, qr/not a clinician/, 'with the disclaimer');
is($data->{data}{usage}{prompt_tokens}, 1000, 'usage: prompt tokens from the provider');
is($data->{data}{usage}{completion_tokens}, 200, 'usage: completion tokens');
ok(abs($data->{data}{usage}{cost_usd} - 0.0027) < 1e-9, 'cost: 1000 x 1.5/1M + 200 x 6/1M');
is($res->header('Cache-Control'), 'no-store', 'no-store');
my $cid = $data->{data}{conversation_id};
like($cid, qr/^[0-9a-f-]{36}$/, 'a conversation id');

my @got = fake_requests();
is(scalar @got, 1, 'one model call');
is($got[0]{auth}, "Bearer $AI_KEY", 'the Bearer key was sent');
is($got[0]{body}{model}, $AI_MODEL, 'the configured model');
is_deeply($got[0]{problems}, [], 'the fake found nothing wrong with the request');
is_deeply([map { $_->{role} } @{ $got[0]{body}{messages} }], ['system', 'user'],
          'system prompt, then the user message');
like($got[0]{body}{messages}[0]{content}, qr/not a doctor/, 'the server\'s own system prompt');
ok(!exists $got[0]{body}{tools} && !exists $got[0]{body}{tool_choice}, 'no tools offered');
like($got[0]{traceparent} // '', qr/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/, 'a traceparent');

my @rows = ledger_rows($user->{id});
is(scalar @rows, 1, 'one ledger row');
is($rows[0]{kind}, 'chat', 'ledger: kind chat');
is($rows[0]{model}, $AI_MODEL, 'ledger: model');
is($rows[0]{prompt_tokens}, 1000, 'ledger: prompt tokens');
is($rows[0]{completion_tokens}, 200, 'ledger: completion tokens');
ok(abs($rows[0]{cost_usd} - 0.0027) < 1e-9, 'ledger: cost');
is($rows[0]{triage}, 'none', 'ledger: not triaged');
ok(defined $rows[0]{latency_ms} && $rows[0]{latency_ms} >= 0, 'ledger: latency');
is($rows[0]{conversation_id}, $cid, 'ledger: the conversation');

# Follow-up: the history goes with it.
fake_reset();
($res, $data) = ai_post($user, 'chat', { message => 'And for mouth sores?', conversation_id => $cid });
is($data->{data}{conversation_id}, $cid, 'the same conversation');
@got = fake_requests();
is_deeply([map { $_->{role} } @{ $got[0]{body}{messages} }],
          ['system', 'user', 'assistant', 'user'], 'the history is sent, oldest first');
is($got[0]{body}{messages}[1]{content}, 'What helps with nausea after chemo?', 'the first question');
($res, $data) = ai_get($user, "conversations/$cid");
is(scalar @{ $data->{data}{messages} }, 4, 'GET conversation: four messages');
is($data->{data}{title}, 'What helps with nausea after chemo?', 'titled by its first message');

# The history is trimmed to the token budget (400 tokens in the test conf):
# the newest messages stay.
{
    my $long = ai_user();
    my ($r1, $d1) = ai_post($long, 'chat', { message => 'first ' . ('x' x 1500) });
    my $c = $d1->{data}{conversation_id};
    ai_post($long, 'chat', { message => 'second ' . ('y' x 600), conversation_id => $c });
    fake_reset();
    ai_post($long, 'chat', { message => 'third', conversation_id => $c });
    my @m = @{ (fake_requests())[0]{body}{messages} };
    ok(!grep({ $_->{content} =~ /^first/ } @m), 'history: the oldest message is dropped');
    ok(grep({ $_->{content} =~ /^second/ } @m), 'history: a newer one is kept');
}

# ---------------------------------------------------------------- conversations

{
    my ($r, $d) = ai_get($user, 'conversations');
    is($r->code, 200, 'list: 200');
    ai_conforms($r, 'GET', '/ai/conversations', 'list');
    is($d->{meta}{total}, 1, 'list: one conversation');
    is($d->{data}[0]{message_count}, 4, 'list: with its message count');
    ai_conforms(scalar ai_get($user, "conversations/$cid"), 'GET', '/ai/conversations/{id}',
                'a conversation');
    my $other = ai_user();
    ($r, $d) = ai_get($other, "conversations/$cid");
    is($r->code, 404, "another user's conversation: 404");
    ($r, $d) = ai_post($other, 'chat', { message => 'hello', conversation_id => $cid });
    is($r->code, 404, "chat into another user's conversation: 404");
    ($r) = bl_request(DELETE => "/api/v1/ai/conversations/$cid", token => $other->{token});
    is($r->code, 404, "deleting another user's conversation: 404");
    ($r) = ai_get($user, 'conversations/not-a-uuid');
    is($r->code, 404, 'a malformed id: 404');
    ($r) = bl_request(DELETE => "/api/v1/ai/conversations/$cid", token => $user->{token});
    is($r->code, 204, 'delete: 204');
    ($r) = ai_get($user, "conversations/$cid");
    is($r->code, 404, 'deleted: 404');
    is(bl_psql_value('SELECT count(*) FROM ai_interactions WHERE user_id = $1', $user->{id}), 2,
       'the ledger rows stay (detached)');
}

# ---------------------------------------------------------------- bad input

{
    my @cases = (
        [{}, 'message is required'],
        [{ message => '' }, 'empty message'],
        [{ message => 'x' x 4001 }, 'a message over 4000 characters'],
        [{ message => 'hi', stream => 'yes' }, 'stream not a boolean'],
        [{ message => 'hi', conversation_id => 'abc' }, 'a malformed conversation_id'],
        [{ message => 'hi', role => 'system' }, 'an unknown field'],
        [{ message => ['hi'] }, 'message not a string'],
    );
    my $before = () = fake_requests();
    for my $c (@cases) {
        my ($r, $d) = ai_post($user, 'chat', $c->[0]);
        is($r->code, 400, "400 for $c->[1]");
    }
    is(scalar(() = fake_requests()), $before, 'no model call for bad input');
    my ($r) = bl_request(POST => '/api/v1/ai/chat', json => { message => 'hi' });
    is($r->code, 401, 'no token: 401');
}

# ---------------------------------------------------------------- minimum necessary

{
    my $u = ai_user(first_name => 'Anjali', last_name => 'Kapoor', date_of_birth => '1975-01-12',
                    cancer_type => 'ovarian');
    bl_psql(q{INSERT INTO reminders (user_id, type, title, medication_name, starts_at)
              VALUES ($1, 'medication', 'Evening pill', 'Letrozole', now())}, $u->{id});
    fake_reset();
    ai_post($u, 'chat', { message => 'Hi, I am Anjali Kapoor (anjali.k@mail.example, +91 98765 43210, '
                                   . 'born 12/01/1975). Is ginger tea fine?' });
    my ($sent) = fake_requests();
    my $all = $JSON->encode($sent->{body}{messages});
    unlike($all, qr/Anjali|Kapoor/i, 'redaction: no name sent');
    unlike($all, qr/anjali\.k\@|mail\.example/, 'redaction: no email sent');
    unlike($all, qr/98765|43210/, 'redaction: no phone number sent');
    unlike($all, qr/1975/, 'redaction: no date of birth sent');
    like($all, qr/\[name\].*\[email\].*\[phone\].*\[date of birth\].*ginger tea/,
         'the question itself is sent, with placeholders');
    unlike($all, qr/Letrozole|ovarian/i, 'use_my_data absent: nothing from the account');
    is(scalar @{ $sent->{body}{messages} }, 2, 'use_my_data absent: no context message');
    my @ledger = ledger_rows($u->{id});
    unlike($ledger[-1]{prompt}, qr/Anjali|98765/, 'the ledger keeps what was sent, redacted');

    fake_reset();
    ai_post($u, 'chat', { message => 'Does my medicine interact with ginger?', use_my_data => JSON::PP::true });
    ($sent) = fake_requests();
    $all = $JSON->encode($sent->{body}{messages});
    like($all, qr/Letrozole/, 'use_my_data: the reminders\' medicines are sent');
    like($all, qr/ovarian/, 'use_my_data: the cancer type is sent');
    unlike($all, qr/Anjali|Kapoor|1975|\@example\.test/, 'use_my_data: still no name, email or birth date');
    is($sent->{body}{messages}[1]{role}, 'user', 'the account data goes in the user role');
}

# ---------------------------------------------------------------- quotas

{
    my $u = ai_user();
    my $day = do { my @t = gmtime; sprintf '%04d%02d%02d', $t[5] + 1900, $t[4] + 1, $t[3] };
    my $key = "bl:ai:quota:$u->{id}:$day";
    ai_post($u, 'chat', { message => 'one' });
    ai_post($u, 'chat', { message => 'two' });
    is(bl_redis('GET', $key), 2, 'quota: two requests counted in Redis');
    bl_redis('SET', $key, 7);
    my ($r, $d) = ai_post($u, 'chat', { message => 'the eighth' });
    is($r->code, 200, 'free tier: the 8th request of the day passes');
    ($r, $d) = ai_post($u, 'chat', { message => 'the ninth' });
    is($r->code, 429, 'free tier: the 9th is refused');
    is($d->{error}{code}, 'AI_QUOTA_EXCEEDED', '... AI_QUOTA_EXCEEDED');
    ai_conforms($r, 'POST', '/ai/chat', 'over quota');
    like($d->{error}{details}, qr/^resets_at: \d{4}-\d\d-\d\dT00:00:00Z$/, '... with the reset time');
    ok($r->header('Retry-After') > 0 && $r->header('Retry-After') <= 86400, '... and Retry-After');
    ($r, $d) = ai_post($u, 'chat', { message => 'I have chest pain' });
    is($d->{data}{triage}{rule}, 'chest_pain', 'over quota: triage still answers');

    # Counted atomically: six at once with three left, exactly three pass.
    my $racer = ai_user();
    my $rkey = "bl:ai:quota:$racer->{id}:$day";
    bl_redis('SET', $rkey, 5);
    my @kids;
    for my $i (1 .. 6) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my ($cr) = ai_post($racer, 'chat', { message => "race $i" });
            # _exit: the suite's END blocks (the fake model's stop) are not ours.
            POSIX::_exit($cr->code == 200 ? 0 : $cr->code == 429 ? 1 : 2);
        }
        push @kids, $pid;
    }
    my %seen;
    for my $pid (@kids) { waitpid $pid, 0; $seen{$? >> 8}++ }
    is(($seen{0} // 0) . ' passed, ' . ($seen{1} // 0) . ' refused', '3 passed, 3 refused',
       'quota: six concurrent requests with three left');
    is(bl_redis('GET', $rkey), 8, 'quota: the counter stops at the limit');

    bl_psql(q{INSERT INTO subscriptions (user_id, plan, status, current_period_start, current_period_end)
              VALUES ($1, 'premium_monthly', 'active', now() - interval '1 day', now() + interval '29 days')},
            $u->{id});
    ($r, $d) = ai_post($u, 'chat', { message => 'premium now' });
    is($r->code, 200, 'premium tier: more requests');
    bl_redis('SET', $key, 16);
    ($r, $d) = ai_post($u, 'chat', { message => 'seventeenth' });
    is($r->code, 429, 'premium tier: refused past 16');
    ($r, $d) = ai_get($u, 'usage');
    ai_conforms($r, 'GET', '/ai/usage', 'usage');
    is($d->{data}{quota}{tier}, 'premium', 'usage: the tier');
    is($d->{data}{quota}{daily_limit}, 16, 'usage: the limit');
    is($d->{data}{quota}{remaining}, 0, 'usage: none left');
}

# ---------------------------------------------------------------- provider errors

{
    my $u = ai_user();
    fake_reset();
    fake_modes('429', '500');
    my ($r, $d) = ai_post($u, 'chat', { message => 'retry me' });
    is($r->code, 200, '429 then 500 then an answer: retried with backoff');
    is(scalar(fake_requests()), 3, 'three attempts');

    fake_reset();
    fake_modes('500', '500', '500');
    ($r, $d) = ai_post($u, 'chat', { message => 'keeps failing' });
    is($r->code, 503, 'still failing after the attempts: 503');
    is($d->{error}{code}, 'AI_UNAVAILABLE', '... AI_UNAVAILABLE');
    ok($r->header('Retry-After') >= 1, '... with Retry-After');
    ai_conforms($r, 'POST', '/ai/chat', 'unavailable');

    my @l = ledger_rows($u->{id});
    is($l[-1]{error}, 'provider answered 500', 'the failed call has its ledger row');
    fake_reset();
    fake_modes('401', 'ok');
    ($r, $d) = ai_post($u, 'chat', { message => 'refused key' });
    is($d->{error}{code}, 'AI_UNAVAILABLE', 'the provider refusing the key: 503 AI_UNAVAILABLE');
    is(scalar(fake_requests()), 1, '... a 401 is not retried');

    fake_reset();
    fake_modes('stall', 'stall', 'stall');
    my $t0 = time;
    ($r, $d) = ai_post($u, 'chat', { message => 'anyone there?' }, timeout => 30);
    my $took = time - $t0;
    is($d->{error}{code}, 'AI_UNAVAILABLE', 'a stalled model: 503 AI_UNAVAILABLE');
    ok($took >= 4 && $took < 12, sprintf('... within the configured deadline (%.1f s)', $took));

    # Breaker: 3 failed calls within 30 s (test conf) open it for 3 s.
    fake_reset();
    fake_modes(('500') x 9);
    ai_post($u, 'chat', { message => "fail $_" }) for 1 .. 3;
    my $calls = () = fake_requests();
    ($r, $d) = ai_post($u, 'chat', { message => 'breaker open?' });
    is($d->{error}{code}, 'AI_UNAVAILABLE', 'breaker open: 503 at once');
    is(scalar(() = fake_requests()), $calls, 'breaker open: the provider is not called');
    sleep 3.2;
    fake_call(POST => '/_control/reset', {});
    ($r, $d) = ai_post($u, 'chat', { message => 'breaker closed again' });
    is($r->code, 200, 'after the open period: calls go out again');
}

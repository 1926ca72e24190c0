# mod_beautiful_ai: streamed answers. The model's tokens reach the client
# as Server-Sent Events while the model is still writing (the fake sends
# one every 0.3 s); the stream ends with a done event carrying usage; a
# client that goes away cancels the upstream request; a triaged message
# streams its guidance; errors before the first token are a JSON 503.
use strict;
use warnings FATAL => 'all';

use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use FindBin ();
use Time::HiRes qw(time sleep);
use BL::Test;
require "$FindBin::Bin/ai_helpers.pl";

plan skip_all => 'mod_beautiful_ai not loaded' unless ai_loaded();
plan tests => 24;

start_fake();
fake_reset();
my $user = ai_user();

# ---------------------------------------------------------------- relayed as it comes

fake_modes('slow');
my ($events, $head) = ai_stream($user, { message => 'Tell me about fatigue', stream => JSON::PP::true });
like($head, qr{^HTTP/1\.1 200}, 'stream: 200');
like($head, qr{Content-Type: text/event-stream}i, 'stream: text/event-stream');
like($head, qr{Cache-Control: no-store}i, 'stream: no-store');
my @names = map { $_->{event} } @$events;
is($names[0], 'start', 'first the start event');
like($events->[0]{data}{conversation_id}, qr/^[0-9a-f-]{36}$/, '... with the conversation id');
is($names[-1], 'done', 'last the done event');
my @tokens = grep { $_->{event} eq 'token' } @$events;
is(scalar @tokens, 12, 'every token relayed');
is(join('', map { $_->{data}{text} } @tokens),
   'Rest and drink water; tell your care team if it gets worse.', 'the text, in order');
my ($model) = fake_requests();
ok($model->{body}{stream}, 'the provider was asked to stream');
ok($model->{body}{stream_options}{include_usage}, '... with usage in the stream');
my $model_took = $model->{finished} - $model->{received};
ok($model_took > 3, sprintf('the model took %.1f s', $model_took));
ok($tokens[0]{at} < $model_took - 2,
   sprintf('the first token arrived at %.2f s, long before the model finished', $tokens[0]{at}));
my $done = $events->[-1]{data};
is($done->{usage}{prompt_tokens}, 1000, 'done: usage from the provider\'s stream');
ok(abs($done->{usage}{cost_usd} - 0.0027) < 1e-9, 'done: the cost');
like($done->{disclaimer}, qr/not a clinician/, 'done: the disclaimer');
my @rows = ledger_rows($user->{id});
is($rows[-1]{completion_tokens}, 200, 'the ledger row has the streamed call\'s tokens');
my $saved = bl_psql_value(q{SELECT content FROM ai_messages WHERE conversation_id = $1 AND role = 'assistant'},
                          $events->[0]{data}{conversation_id});
is($saved, 'Rest and drink water; tell your care team if it gets worse.', 'the whole answer is saved');

# Accept: text/event-stream asks for a stream too.
fake_reset();
($events) = ai_stream($user, { message => 'and sleep?' }, accept => 'text/event-stream');
is((grep { $_->{event} eq 'token' } @$events) + 0, 12, 'Accept: text/event-stream streams');

# ---------------------------------------------------------------- the client goes away

fake_reset();
fake_modes('slow');
($events) = ai_stream($user, { message => 'a long answer please', stream => JSON::PP::true },
                      stop_after => 2);
my $cancelled;
for (1 .. 40) {
    ($cancelled) = grep { $_->{cancelled} } fake_requests();
    last if $cancelled;
    sleep 0.25;
}
ok($cancelled, 'the client closed: the upstream request was cancelled');
ok($cancelled && $cancelled->{tokens_sent} < 12,
   'the model did not get to finish (' . ($cancelled ? $cancelled->{tokens_sent} : '?') . ' of 12 tokens)');
sleep 0.5;
@rows = ledger_rows($user->{id});
is($rows[-1]{error}, 'client_disconnected', 'ledger: client_disconnected');

# ---------------------------------------------------------------- triage and errors

fake_reset();
($events) = ai_stream($user, { message => 'I am vomiting blood', stream => JSON::PP::true });
is(join(',', map { $_->{event} } @$events), 'start,triage,done', 'triage streams start, triage, done');
is($events->[1]{data}{triage}{rule}, 'bleeding', '... with the rule');

fake_modes('500', '500', '500');
my ($res, $data) = ai_post($user, 'chat', { message => 'hello?', stream => JSON::PP::true });
is($data->{error}{code}, 'AI_UNAVAILABLE', 'no token yet when the model failed: a JSON 503');
fake_reset();

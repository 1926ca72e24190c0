# mod_beautiful_ai: structured answers (analyze-symptoms, medication-check)
# asked for with a JSON schema and validated before they are returned; an
# answer that breaks the schema is retried once, then replaced by a safe
# generic answer. Insights computed in SQL from the caller's own data
# (cached per day), and usage.
use strict;
use warnings FATAL => 'all';

use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use FindBin ();
use JSON::PP ();
use BL::Test;
require "$FindBin::Bin/ai_helpers.pl";

plan skip_all => 'mod_beautiful_ai not loaded' unless ai_loaded();
plan tests => 55;

start_fake();
fake_reset();
my $user = ai_user();

# ---------------------------------------------------------------- analyze-symptoms

my ($res, $data) = ai_post($user, 'analyze-symptoms',
                           { symptoms => ['headache', 'tiredness'], description => 'since my last cycle',
                             duration => '2 days', temperature_c => 37.1 });
is($res->code, 200, 'analyze-symptoms: 200');
ai_conforms($res, 'POST', '/ai/analyze-symptoms', 'analyze-symptoms');
is($data->{data}{urgency}, 'routine', 'the model\'s urgency');
is_deeply($data->{data}{self_care}, ['rest', 'drink water'], 'self care');
is($data->{data}{source}, 'model', 'source: model');
like($data->{data}{disclaimer}, qr/not a clinician/, 'the server\'s disclaimer');
my ($req) = fake_requests();
is($req->{body}{response_format}{type}, 'json_schema', 'a JSON schema was asked for');
is($req->{body}{response_format}{json_schema}{name}, 'symptom_assessment', '... named');
ok($req->{body}{response_format}{json_schema}{strict}, '... strict');
is_deeply($req->{body}{response_format}{json_schema}{schema}{properties}{urgency}{enum},
          [qw(emergency urgent soon routine)], '... with the urgency levels');
like($req->{body}{messages}[1]{content}, qr/headache; tiredness.*2 days.*37\.1/s, 'the symptoms were sent');

fake_reset();
fake_modes('bad_json');
($res, $data) = ai_post($user, 'analyze-symptoms', { symptoms => ['cough'] });
is($data->{data}{source}, 'model', 'an answer that broke the schema was asked for again');
is(scalar(fake_requests()), 2, '... two model calls');
my @rows = ledger_rows($user->{id});
is($rows[-2]{error}, 'answer does not fit the schema', 'the broken answer has its ledger row');
is($rows[-1]{error}, undef, 'the good one too');

fake_reset();
fake_modes('bad_json', 'not_json');
($res, $data) = ai_post($user, 'analyze-symptoms', { symptoms => ['cough'] });
is($res->code, 200, 'two broken answers: still 200');
is($data->{data}{source}, 'fallback', '... the safe generic answer');
ai_conforms($res, 'POST', '/ai/analyze-symptoms', 'the fallback');
is($data->{data}{urgency}, 'soon', '... urgency soon');
like($data->{data}{when_to_call}, qr/contact your care team/i, '... pointing to the care team');
is_deeply($data->{data}{possible_causes}, [], '... no guessed causes');
unlike($res->content, qr/maybe|probably be fine/, 'nothing of the broken answers reaches the client');

fake_reset();
fake_modes('500', '500', '500');
($res, $data) = ai_post($user, 'analyze-symptoms', { symptoms => ['cough'] });
is($data->{error}{code}, 'AI_UNAVAILABLE', 'the provider failing: 503 AI_UNAVAILABLE');
fake_reset();

for my $bad ([{ symptoms => [] }, 'an empty list'], [{ symptoms => 'cough' }, 'not a list'],
             [{ symptoms => [''] }, 'an empty symptom'], [{ symptoms => ['a'], temperature_c => 60 },
              'a temperature out of range'], [{ symptoms => ['a'], temperature_c => '38' },
              'a temperature as text'], [{ description => 'x' }, 'no symptoms'],
             [{ symptoms => ['a'], tools => [] }, 'an unknown field']) {
    ($res) = ai_post($user, 'analyze-symptoms', $bad->[0]);
    is($res->code, 400, "analyze-symptoms: 400 for $bad->[1]");
}

# ---------------------------------------------------------------- medication-check

fake_reset();
($res, $data) = ai_post($user, 'medication-check', { medications => ['drug a', 'drug b'],
                                                    question => 'together at night?' });
is($data->{data}{interactions}[0]{severity}, 'moderate', 'medication-check: the validated answer');
is($data->{data}{source}, 'model', '... from the model');
ai_conforms($res, 'POST', '/ai/medication-check', 'medication-check');
fake_modes('bad_json', 'bad_json');
($res, $data) = ai_post($user, 'medication-check', { medications => ['drug a', 'drug b'] });
is($data->{data}{source}, 'fallback', 'two broken answers: the fallback');
like($data->{data}{ask_your_pharmacist}, qr/pharmacist/, '... pointing to the pharmacist');

($res, $data) = ai_post($user, 'medication-check', { question => 'any problems?' });
is($res->code, 400, 'no medications and no use_my_data: 400');
bl_psql(q{INSERT INTO reminders (user_id, type, title, medication_name, starts_at)
          VALUES ($1, 'medication', 'Morning', 'Tamoxifen', now()),
                 ($1, 'medication', 'Night', 'Ondansetron', now())}, $user->{id});
fake_reset();
($res, $data) = ai_post($user, 'medication-check', { use_my_data => JSON::PP::true });
is($res->code, 200, 'use_my_data: the reminders\' medicines are checked');
($req) = fake_requests();
like($req->{body}{messages}[1]{content}, qr/^Medicines: (Ondansetron; Tamoxifen|Tamoxifen; Ondansetron)$/,
     '... both were sent');

# ---------------------------------------------------------------- insights

{
    my $u = ai_user();
    my $med = bl_psql_value(q{INSERT INTO reminders (user_id, type, title, medication_name, starts_at)
                              VALUES ($1, 'medication', 'Daily', 'Capecitabine', now() - interval '20 days')
                              RETURNING id}, $u->{id});
    # 10 days: taken on days 10..4 ago, missed on the last 3.
    for my $d (1 .. 10) {
        my $taken = $d >= 4;
        bl_psql(q{INSERT INTO reminder_logs (reminder_id, scheduled_for, status, acknowledged_at)
                  VALUES ($1, now() - make_interval(days => $2::int), $3::reminder_log_status,
                          CASE WHEN $3 = 'acknowledged' THEN now() END)},
                $med, $d, $taken ? 'acknowledged' : 'fired');
    }
    bl_psql(q{INSERT INTO reminders (user_id, type, title, location, starts_at)
              VALUES ($1, 'appointment', 'Oncology review', 'Ward 3', now() + interval '3 days')},
            $u->{id});
    fake_reset();
    ($res, $data) = ai_get($u, 'insights');
    is($res->code, 200, 'insights: 200');
    ai_conforms($res, 'GET', '/ai/insights', 'insights');
    my ($a) = @{ $data->{data}{adherence} };
    is($a->{medication}, 'Capecitabine', 'adherence per medication');
    is(join('/', @{ $a->{last_7_days} }{qw(scheduled taken)}) . ' ' . (0 + $a->{last_7_days}{rate}),
       '6/3 0.5', 'last 7 days: 6 doses, 3 taken');
    is(join('/', @{ $a->{last_30_days} }{qw(scheduled taken)}) . ' ' . (0 + $a->{last_30_days}{rate}),
       '10/7 0.7', 'last 30 days: 10 doses, 7 taken');
    is($a->{missed_streak}, 3, 'three missed doses in a row');
    is($data->{data}{upcoming_appointments}[0]{title}, 'Oncology review', 'the upcoming appointment');
    is($data->{data}{summary}, undef, 'no summary without use_my_data');
    is(scalar(fake_requests()), 0, 'no model call without use_my_data');

    ($res, $data) = ai_get($u, 'insights', query => { use_my_data => 'true' });
    like($data->{data}{summary}, qr/care team/, 'use_my_data=true: the model\'s summary');
    ai_conforms($res, 'GET', '/ai/insights', 'insights with a summary');
    ($req) = fake_requests();
    like($req->{body}{messages}[1]{content}, qr/Capecitabine/, '... written from the figures');
    ($res, $data) = ai_get($u, 'insights', query => { use_my_data => 'true' });
    is(scalar(fake_requests()), 1, 'the second request of the day is served from the cache');
    ($res) = ai_get($u, 'insights', query => { use_my_data => 'maybe' });
    is($res->code, 400, 'use_my_data must be true or false');

    ($res, $data) = ai_get($u, 'usage');
    is($data->{data}{today}{requests}, 1, 'usage: one model request today');
    is($data->{data}{today}{prompt_tokens}, 1000, 'usage: its tokens');
    is($data->{data}{quota}{used_today}, 1, 'usage: one of the quota used');
}

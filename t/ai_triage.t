# mod_beautiful_ai: red-flag triage before any model call. Every rule of
# data/ai-triage-rules.json fires on each of its "fires" examples and on
# none of the "near_misses" (which go to the model); a triaged message never
# reaches the model, is answered with emergency guidance (the crisis line of
# the user's country for self-harm), is logged in the ledger as triage, and
# works on a server with no model configured.
use strict;
use warnings FATAL => 'all';

use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use FindBin ();
use JSON::PP ();
use BL::Test;
require "$FindBin::Bin/ai_helpers.pl";

plan skip_all => 'mod_beautiful_ai not loaded' unless ai_loaded();

my $rules_file = "$ENV{BL_DATA_DIR}/ai-triage-rules.json";
open(my $fh, '<:raw', $rules_file) or die "$rules_file: $!";
my $rules = JSON::PP->new->utf8->decode(do { local $/; <$fh> })->{rules};
close $fh;
my ($fires, $misses) = (0, 0);
for my $rule (@$rules) {
    $fires += @{ $rule->{examples}{fires} };
    $misses += @{ $rule->{examples}{near_misses} };
}
plan tests => 3 * @$rules + 3 * $fires + 2 * $misses + 28;

start_fake();
fake_reset();
my $user = ai_user(country => 'India');

# ---------------------------------------------------------------- each rule

for my $rule (@$rules) {
    my $ex = $rule->{examples};
    ok(@{ $ex->{fires} } >= 2, "$rule->{id}: at least two examples that fire");
    ok(@{ $ex->{near_misses} } >= 2, "$rule->{id}: at least two near misses");
    ok(length($rule->{guidance}) > 40, "$rule->{id}: has guidance");
    for my $text (@{ $ex->{fires} }) {
        my $before = () = fake_requests();
        my ($res, $data) = ai_post($user, 'chat', { message => $text });
        is($res->code, 200, "$rule->{id} fires: 200 for '$text'");
        is(($data->{data}{triage} // {})->{rule}, $rule->{id},
           "$rule->{id} fires: rule $rule->{id}, urgency "
           . ($data->{data}{urgency} // 'none') . " for '$text'")
            or diag explain $data;
        is(scalar(() = fake_requests()), $before, "$rule->{id}: no model call for '$text'");
    }
    for my $text (@{ $ex->{near_misses} }) {
        my ($res, $data) = ai_post($user, 'chat', { message => $text });
        is($res->code, 200, "$rule->{id} near miss answered: '$text'");
        ok(!$data->{data}{triage} && defined $data->{data}{message}{content}
           && !defined $data->{data}{urgency},
           "$rule->{id} near miss goes to the model: '$text'") or diag explain $data;
    }
    # The near misses spend quota: a fresh user for the next rule.
    $user = ai_user(country => 'India');
}

# ---------------------------------------------------------------- the answer

{
    fake_reset();
    my ($res, $data) = ai_post($user, 'chat', { message => 'I want to end my life tonight' });
    my $d = $data->{data};
    is($d->{urgency}, 'emergency', 'self-harm: urgency emergency');
    like($d->{triage}{crisis_line}, qr/14416/, 'self-harm: the crisis line of the country (India)');
    like($d->{message}{content}, qr/14416/, 'the reply carries the crisis line');
    like($d->{disclaimer}, qr/not a clinician/, 'a disclaimer');
    ai_conforms($res, 'POST', '/ai/chat', 'a triaged answer');
    is(scalar(fake_requests()), 0, 'no model call');
    my @rows = ledger_rows($user->{id});
    is($rows[-1]{triage}, 'self_harm', 'ledger row: triage self_harm');
    ok(!defined $rows[-1]{model} && !defined $rows[-1]{prompt_tokens}, 'ledger row: no model, no tokens');
    is($rows[-1]{conversation_id}, $d->{conversation_id}, 'ledger row: the conversation');
    my ($gres, $gdata) = ai_get($user, "conversations/$d->{conversation_id}");
    is_deeply([map { [$_->{role}, $_->{urgency}] } @{ $gdata->{data}{messages} }],
              [['user', undef], ['assistant', 'emergency']], 'the exchange is in the conversation');

    my $other = ai_user(country => 'Atlantis');
    (undef, $data) = ai_post($other, 'chat', { message => 'I have been thinking about suicide' });
    like($data->{data}{triage}{crisis_line}, qr/local emergency number/,
         'an unlisted country gets the default crisis line');
}

# ---------------------------------------------------------------- no model

{
    my $before = () = fake_requests();
    my ($res, $data) = bl_request(POST => unconfigured_url('/api/v1/ai/chat'),
                                  json => { message => 'crushing pain in my chest' },
                                  token => $user->{token});
    is($res->code, 200, 'no model configured: triage still answers');
    is($data->{data}{triage}{rule}, 'chest_pain', '... with the rule');
    ($res, $data) = bl_request(POST => unconfigured_url('/api/v1/ai/chat'),
                               json => { message => 'what is a CBC test?' }, token => $user->{token});
    is($res->code, 503, 'no model configured: an ordinary message is 503');
    is($data->{error}{code}, 'AI_NOT_CONFIGURED', '... AI_NOT_CONFIGURED');
    ai_conforms($res, 'POST', '/ai/chat', 'not configured');
    ($res, $data) = bl_request(POST => unconfigured_url('/api/v1/ai/analyze-symptoms'),
                               json => { symptoms => ['headache'] }, token => $user->{token});
    is($data->{error}{code}, 'AI_NOT_CONFIGURED', 'analyze-symptoms without a model: AI_NOT_CONFIGURED');
    is(scalar(() = fake_requests()), $before, 'the fake model was never called');
}

# ---------------------------------------------------------------- other routes

{
    fake_reset();
    my $u = ai_user();
    my ($res, $data) = ai_post($u, 'analyze-symptoms',
                               { symptoms => ['chills', 'tired'], description => 'day 5 after chemo',
                                 temperature_c => 38.6 });
    is($data->{data}{urgency}, 'emergency', 'analyze-symptoms: 38.6 °C during chemo is an emergency');
    is($data->{data}{triage}{rule}, 'febrile_neutropenia', '... febrile neutropenia');
    is($data->{data}{source}, 'triage', '... answered by triage');
    ai_conforms($res, 'POST', '/ai/analyze-symptoms', 'a triaged assessment');
    ($res, $data) = ai_post($u, 'analyze-symptoms',
                            { symptoms => ['chills'], description => 'day 5 after chemo',
                              temperature_c => 37.4 });
    is($data->{data}{source}, 'model', '37.4 °C during chemo goes to the model');
    ($res, $data) = ai_post($u, 'medication-check',
                            { medications => ['ondansetron'],
                              question => 'can I take all of them at once to kill myself' });
    is($data->{data}{triage}{rule}, 'self_harm', 'medication-check: the question is triaged');
    ai_conforms($res, 'POST', '/ai/medication-check', 'a triaged medication check');
    is(scalar(fake_requests()), 1, 'only the non-triaged request reached the model');
    my @rows = ledger_rows($u->{id});
    is_deeply([map { "$_->{kind}:$_->{triage}" } @rows],
              ['symptom_analysis:febrile_neutropenia', 'symptom_analysis:none',
               'medication_check:self_harm'], 'a ledger row for each, with the triage outcome');
    # Typographic apostrophes count as plain ones.
    ($res, $data) = ai_post($u, 'chat', { message => "I can\x{2019}t breathe" });
    is($data->{data}{triage}{rule}, 'breathing', 'a typographic apostrophe still matches');
}

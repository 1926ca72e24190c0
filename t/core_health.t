# GET /health and GET /health/ready: liveness, readiness with PostgreSQL and
# Redis each stopped and restarted, and no httpd child crashing meanwhile.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Time::HiRes qw(sleep time);
use BL::Test;

plan tests => 46, sub { (" " . ($ENV{BL_LOADED_MODULES} // '') . " ") =~ / core / };

my $RFC3339 = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
# Fresh connections spread requests over both httpd children.
my $TRIES = 6;

# Polls /health/ready until it answers $code (a dependency coming back may
# take a retry or two while pooled connections are re-established).
sub ready_becomes {
    my ($code, $timeout) = @_;
    my $deadline = time + ($timeout // 20);
    my ($res, $data);
    while (1) {
        ($res, $data) = bl_request(GET => '/health/ready');
        return ($res, $data) if $res->code == $code || time > $deadline;
        sleep 0.25;
    }
}

# Every one of $TRIES requests answers 503 with the given check down.
sub all_unavailable {
    my ($down, $up) = @_;
    my $ok = 1;
    for (1 .. $TRIES) {
        my ($res, $data) = bl_request(GET => '/health/ready');
        $ok &&= $res->code == 503 && ref $data eq 'HASH'
            && $data->{checks}{$down} eq 'down' && $data->{checks}{$up} eq 'ok';
    }
    return $ok;
}

my $mark = bl_error_log_mark();

# ---------------------------------------------------------------- liveness
{
    my ($res, $data) = bl_request(GET => '/health');
    is $res->code, 200, 'GET /health is 200';
    like $res->header('Content-Type'), qr{^application/json}, 'JSON';
    is $data->{status}, 'ok', 'status ok';
    like $data->{timestamp} // '', $RFC3339, 'timestamp is RFC 3339 UTC';
    ok $data->{success}, 'envelope success';
    is $res->header('Cache-Control'), 'no-store', 'never cached';

    ($res) = bl_request(HEAD => '/health');
    is $res->code, 200, 'HEAD /health is 200';
    is $res->content, '', 'HEAD has no body';

    ($res, $data) = bl_request(POST => '/health', json => {});
    is $res->code, 405, 'POST /health is 405';
    is $data->{error}{code}, 'METHOD_NOT_ALLOWED', '405 in the envelope';
    like $res->header('Allow') // '', qr/\bGET\b/, 'Allow names GET';

    ($res, $data) = bl_request(GET => '/health/nothing-here');
    is $res->code, 404, 'unknown path under /health is 404';
    is $data->{error}{code}, 'NOT_FOUND', '404 in the envelope';
}

# ---------------------------------------------------------------- ready
{
    my ($res, $data) = ready_becomes(200);
    is $res->code, 200, 'GET /health/ready is 200 with both up';
    is $data->{status}, 'ok', 'status ok';
    is_deeply $data->{checks}, { database => 'ok', redis => 'ok' }, 'both checks ok';
    like $data->{timestamp} // '', $RFC3339, 'timestamp';
    ok !defined $res->header('Retry-After'), 'no Retry-After when ready';

    ($res, $data) = bl_request(DELETE => '/health/ready');
    is $res->code, 405, 'DELETE /health/ready is 405';
}

# ---------------------------------------------------------------- Redis down
{
    ok bl_stack('redis-stop'), 'Redis stopped';
    my ($res, $data) = bl_request(GET => '/health/ready');
    is $res->code, 503, '/health/ready is 503 with Redis down';
    is $data->{status}, 'unavailable', 'status unavailable';
    is $data->{checks}{redis}, 'down', 'redis down';
    is $data->{checks}{database}, 'ok', 'database still ok';
    like $res->header('Retry-After') // '', qr/^\d+$/, 'Retry-After in seconds';
    is $data->{error}{code}, 'SERVICE_UNAVAILABLE', 'envelope error code';
    ok all_unavailable('redis', 'database'), "$TRIES more requests: all 503";
    ($res) = bl_request(GET => '/health');
    is $res->code, 200, 'liveness unaffected by Redis';

    ok bl_stack('redis-start'), 'Redis started';
    ($res, $data) = ready_becomes(200);
    is $res->code, 200, '/health/ready is 200 again after Redis returns';
    is $data->{checks}{redis}, 'ok', 'redis ok again';
}

# ---------------------------------------------------------------- PostgreSQL down
{
    ok bl_stack('pg-stop'), 'PostgreSQL stopped';
    my ($res, $data) = bl_request(GET => '/health/ready');
    is $res->code, 503, '/health/ready is 503 with PostgreSQL down';
    is $data->{checks}{database}, 'down', 'database down';
    is $data->{checks}{redis}, 'ok', 'redis still ok';
    like $res->header('Retry-After') // '', qr/^\d+$/, 'Retry-After in seconds';
    ok all_unavailable('database', 'redis'), "$TRIES more requests: all 503";

    ok bl_stack('pg-start'), 'PostgreSQL started';
    ($res, $data) = ready_becomes(200, 30);
    is $res->code, 200, '/health/ready is 200 again after PostgreSQL returns';
    is $data->{checks}{database}, 'ok', 'database ok again';
}

# ---------------------------------------------------------------- both down
{
    ok bl_stack('redis-stop') && bl_stack('pg-stop'), 'both stopped';
    my ($res, $data) = bl_request(GET => '/health/ready');
    is $res->code, 503, '503 with both down';
    is_deeply $data->{checks}, { database => 'down', redis => 'down' }, 'both down';
    ok bl_stack('pg-start') && bl_stack('redis-start'), 'both started';
    ($res) = ready_becomes(200, 30);
    is $res->code, 200, '200 again with both back';
}

my @crashes = bl_error_log_crashes($mark);
is scalar(@crashes), 0, 'no httpd child crashed' or diag join "\n", @crashes;

# mod_beautiful_auth with a dependency down: with PostgreSQL or Redis
# stopped every auth route answers 503 SERVICE_UNAVAILABLE in the envelope
# (with Retry-After), no child crashes, and the routes work again once the
# dependency is back.
use strict;
use warnings;
use FindBin;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Time::HiRes qw(sleep time);
use BL::Test;
require "$FindBin::Bin/auth_helpers.pl";

plan skip_all => 'mod_beautiful_auth not loaded' unless auth_loaded();
our $PASSWORD;

# Whatever fails below, the next suite finds both services running.
my $stopped = 0;
END { if ($stopped) { bl_stack('pg-start'); bl_stack('redis-start') } }

sub unavailable {
    my ($name, $res, $data) = @_;
    is $res->code, 503, "$name: 503";
    ok ref $data eq 'HASH' && !$data->{success}
        && ($data->{error}{code} // '') eq 'SERVICE_UNAVAILABLE', "$name: in the envelope"
        or diag $res->content;
    like $res->header('Retry-After') // '', qr/^\d+$/, "$name: Retry-After";
}

# Polls the profile (no throttle, unlike login, whose 503s with the
# database down may keep their slot) until it answers 200: pooled
# connections come back after a retry or two.
sub profile_back {
    my ($token) = @_;
    my $deadline = time + 30;
    while (1) {
        my ($res) = bl_request(GET => '/api/v1/users/profile', token => $token);
        return 1 if $res->code == 200;
        return 0 if time > $deadline;
        sleep 0.25;
    }
}

# Logs in until the answer is no longer 503 (each child's pooled connection
# may fail once after the restart); returns the last status.
sub login_back {
    my ($email) = @_;
    my $deadline = time + 30;
    while (1) {
        my ($res) = login($email);
        return $res->code if $res->code != 503 || time > $deadline;
        sleep 0.25;
    }
}

my $mark = bl_error_log_mark();
my $user = new_user();

# ---------------------------------------------------------------- PostgreSQL down
{
    $stopped = 1;
    ok bl_stack('pg-stop'), 'PostgreSQL stopped';
    unavailable('login', login($user->{email}));
    # More retries than the account throttle allows (5 a minute in the
    # tests): an outage must not lock the owner out once it is over.
    my $all = 1;
    for (1 .. 6) {
        my ($res) = login($user->{email});
        $all &&= $res->code == 503;
    }
    ok $all, 'retried logins: all 503, none 429';
    unavailable('register', register_user());
    unavailable('refresh', bl_request(POST => '/api/v1/auth/refresh',
                                      json => { refresh_token => $user->{refresh} }));
    unavailable('forgot-password', bl_request(POST => '/api/v1/auth/forgot-password',
                                              json => { email => $user->{email} }));
    unavailable('profile', bl_request(GET => '/api/v1/users/profile',
                                      token => $user->{access}));
    unavailable('logout', bl_request(POST => '/api/v1/auth/logout', json => {},
                                     token => $user->{access}));
    ok bl_stack('pg-start'), 'PostgreSQL started';
    ok profile_back($user->{access}), 'the session survived the outage';
    is login_back($user->{email}), 200, 'login works again after PostgreSQL returns';
}

# ---------------------------------------------------------------- Redis down
{
    ok bl_stack('redis-stop'), 'Redis stopped';
    # Throttling and sessions live in Redis: refused, not let through.
    unavailable('login', login($user->{email}));
    unavailable('refresh', bl_request(POST => '/api/v1/auth/refresh',
                                      json => { refresh_token => $user->{refresh} }));
    ok bl_stack('redis-start'), 'Redis started';
    is login_back($user->{email}), 200, 'login works again after Redis returns';
    $stopped = 0;
}

my @crashes = bl_error_log_crashes($mark);
is scalar(@crashes), 0, 'no httpd child crashed' or diag join "\n", @crashes;

done_testing();

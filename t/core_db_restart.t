# PostgreSQL restarted under a running httpd: mod_dbd's connection check
# quietly reconnects a pooled connection, and the new session has none of
# the prepared statements. Core must prepare them again, so the API works
# once more after a short burst of 503s, in the request path and in the
# background tasks (here: notification delivery), without an httpd restart.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Time::HiRes qw(sleep time);
use BL::Test;

plan skip_all => 'mod_beautiful_core not loaded'
    unless (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / core /;
plan skip_all => 'no stack helper' unless $ENV{BL_STACK};

my $ECHO = '/api/v1/core-test/echo';
my $mark = bl_error_log_mark();
my $n = 0;

# One prepared statement on a pooled connection (an audit row).
sub audit_status {
    my $rid = sprintf 'core-db-restart-%d-%d', $$, ++$n;
    my ($res) = bl_request(GET => "$ECHO?db=audit", headers => { 'X-Request-ID' => $rid });
    return $res->code;
}

# Warm up: several requests at once so each child opens pooled connections.
is audit_status(), 200, 'statements work before the restart';
for (1 .. 20) { audit_status() }

my $pg_down = 0;
END { bl_stack('pg-start') if $pg_down }
$pg_down = bl_stack('pg-stop');
ok $pg_down, 'PostgreSQL stopped';
is audit_status(), 503, 'PostgreSQL down: 503';
$pg_down = !bl_stack('pg-start');
ok !$pg_down, 'PostgreSQL started again';

# Each stale pooled connection may fail once (the server closed it); after
# that every connection must be usable again with its statements.
my @codes = map { audit_status() } 1 .. 40;
my @tail = @codes[20 .. 39];
is_deeply \@tail, [(200) x 20], 'after a few 503s every request succeeds again'
    or diag "statuses: @codes";

my $log = bl_error_log_since($mark);
unlike $log, qr/SQLSTATE 26000/, 'no "prepared statement does not exist" after the restart';
like $log, qr/statements prepared again/, 'the reconnected sessions were prepared again';

SKIP: {
    skip 'mod_beautiful_notify not loaded', 1
        unless " $ENV{BL_LOADED_MODULES} " =~ / notify /;
    # The delivery task's connection went through the same restart.
    my $uid = bl_uuid();
    my $email = "restart-$$\@example.org";
    bl_psql(q{INSERT INTO users (id, email, password_hash) VALUES ($1, $2, 'x')}, $uid, $email);
    my $nid = bl_psql_value(q{INSERT INTO notifications (user_id, channel, type, title, body)
                              VALUES ($1, 'email', 'test.restart', 'after restart', 'x')
                              RETURNING id}, $uid);
    my ($status, $deadline) = ('', time + 45);
    while (time < $deadline) {
        $status = bl_psql_value('SELECT status FROM notifications WHERE id = $1', $nid);
        last if $status eq 'sent';
        sleep 0.5;
    }
    is $status, 'sent', 'the delivery task sends again after the restart';
    bl_psql('DELETE FROM users WHERE id = $1', $uid);
}

my @crashes = bl_error_log_crashes($mark);
is scalar(@crashes), 0, 'no httpd child crashed' or diag join "\n", @crashes;

done_testing();

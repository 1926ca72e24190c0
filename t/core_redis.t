# A Redis that does not answer (SYNs dropped): after one connect times out,
# the child fails Redis commands at once for a second instead of making
# every request wait for the connect timeout; then it tries again, and
# recovers when Redis returns. (A Redis that refuses at once, stopped, is
# t/core_health.t's and t/core_authn.t's case: no back-off there.)
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use IO::Socket::INET ();
use Time::HiRes qw(sleep time);
use BL::Test;

plan skip_all => 'mod_beautiful_core not loaded'
    unless (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / core /;
plan skip_all => 'no stack helper' unless $ENV{BL_STACK};

my ($host, $port) = @ENV{qw(BL_REDIS_HOST BL_REDIS_PORT)};
my $mark = bl_error_log_mark();

# Requests on fresh connections: send now, read later, so several run at once.
sub send_ready {
    my $sock = IO::Socket::INET->new(PeerAddr => Apache::TestRequest::hostport(),
                                     Proto => 'tcp', Timeout => 10) or die "connect: $!";
    print $sock "GET /health/ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
    return $sock;
}
sub read_status {
    my $sock = shift;
    local $/;
    my $all = <$sock> // '';
    close $sock;
    return $all =~ m{^HTTP/1\.\d (\d{3})} ? $1 : 0;
}
# One request: its status and how long it took.
sub ready {
    my $t0 = time;
    my $code = read_status(send_ready());
    return ($code, time - $t0);
}
# The pids of the children that served requests from these local ports
# (t/conf/test.d/core_b.conf logs "%P %{remote}p %>s %U").
sub served_by {
    my %ports = map { $_ => 1 } @_;
    my $log = Apache::Test::vars('t_logs') . '/core_b_conn_log';
    my %pids;
    for (1 .. 30) {
        %pids = ();
        if (open my $fh, '<', $log) {
            while (<$fh>) { $pids{$1}++ if /^(\d+) (\d+) / && $ports{$2} }
        }
        my $n = 0;
        $n += $_ for values %pids;
        last if $n >= keys %ports;
        sleep 0.1;
    }
    return keys %pids;
}

# Whatever happens below, Redis comes back for the suites after this one.
my $restarted = 0;
END { bl_stack('redis-start') if $ENV{BL_STACK} && !$restarted }

is bl_request(GET => '/health/ready')->code, 200, 'ready with Redis up';

# The blackhole: a listener on Redis's port that never accepts, its
# backlog filled, so further SYNs are dropped and a connect hangs.
ok bl_stack('redis-stop'), 'Redis stopped';
my $hole = IO::Socket::INET->new(LocalAddr => $host, LocalPort => $port, Listen => 1,
                                 ReuseAddr => 1) or die "listen $host:$port: $!";
my @fill = map { IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Blocking => 0) }
    1 .. 4;
sleep 0.2;
ok !IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port, Timeout => 0.5),
    'a connect to the Redis port hangs';

# Several requests at once reach both children: each waits for one
# connect timeout, and each child then backs off.
my @socks = map { send_ready() } 1 .. 8;
my @ports = map { $_->sockport } @socks;
my $t0 = time;
my @codes = map { read_status($_) } @socks;
my $burst_end = time;
my $took = $burst_end - $t0;
# Right away, inside the children's 1 s back-off.
my @fast = map { [ready()] } 1 .. 5;
my $fast_end = time;
is_deeply \@codes, [(503) x 8], 'blackholed Redis: 503';
cmp_ok $took, '>=', 0.8, sprintf('the first requests wait for the connect timeout (%.2f s)', $took);
# a child's connects are serialised (the pool's lock): without the back-off
# the last of four requests in one child would wait four timeouts
cmp_ok $took, '<', 3.5, 'the burst takes one connect timeout, not one per request';
is_deeply [map { $_->[0] } @fast], [(503) x 5], 'the next ones: 503 too';
my @pids = served_by(@ports);
SKIP: {
    skip 'the burst reached one child only', 1 unless @pids == 2;
    # Only meaningful while the back-off lasts; a loaded machine may not keep up.
    skip sprintf('the requests ended %.2f s after the burst, past the back-off', $fast_end - $burst_end), 1
        if $fast_end - $burst_end > 0.9;
    my ($slowest) = sort { $b <=> $a } map { $_->[1] } @fast;
    cmp_ok $slowest, '<', 0.5,
        sprintf('without waiting (slowest %.2f s): no connect tried during the back-off', $slowest);
}
sleep 1.2;
my $code;
($code, $took) = ready();
cmp_ok $took, '>=', 0.8, 'after the back-off a connect is tried again';

close $_ for grep { defined } @fill;
close $hole;
ok bl_stack('redis-start'), 'Redis started';
$restarted = 1;
my $deadline = time + 20;
$code = bl_request(GET => '/health/ready')->code;
while ($code != 200 && time < $deadline) {
    sleep 0.25;
    $code = bl_request(GET => '/health/ready')->code;
}
is $code, 200, 'ready again once Redis returns';

my @crashes = bl_error_log_crashes($mark);
is scalar(@crashes), 0, 'no httpd child crashed' or diag join "\n", @crashes;

done_testing();

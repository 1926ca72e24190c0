# BeautifulRateLimit: 429 past the limit with Retry-After and RateLimit-*
# headers, allowed again after the window, one count shared by all httpd
# children, keyed by user or IP, "off", Redis down, and config errors.
# The Locations are in t/conf/test.d/core_b.conf.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use IO::Socket::INET ();
use File::Temp qw(tempdir);
use POSIX qw(fmod);
use Time::HiRes qw(sleep time);
use BL::Test;

plan tests => 50, sub { (" " . ($ENV{BL_LOADED_MODULES} // '') . " ") =~ / core / };

sub clear_keys {
    my $name = shift;
    my @keys = grep { length } bl_redis('--scan', '--pattern', "bl:rl:$name:*");
    bl_redis('DEL', @keys) if @keys;
}

# Sleeps to the start of a fixed window, so a burst stays inside one.
sub window_start {
    my $window = shift;
    sleep($window - fmod(time, $window) + 0.02);
}

# ---------------------------------------------------------------- keep-alive connections

# One raw HTTP/1.1 connection; the same connection always stays with the
# httpd child that accepted it.
sub conn_open {
    my $sock = IO::Socket::INET->new(PeerAddr => Apache::TestRequest::hostport(),
                                     Proto => 'tcp', Timeout => 10)
        or die "connect: $!";
    return $sock;
}

sub conn_get {
    my ($sock, $path) = @_;
    print $sock "GET $path HTTP/1.1\r\nHost: localhost\r\nUser-Agent: bl-test/1\r\n\r\n";
    my $head = '';
    while ($head !~ /\r\n\r\n\z/) {
        defined(my $c = getc $sock) or die 'connection closed';
        $head .= $c;
    }
    my ($code) = $head =~ m{^HTTP/1\.\d (\d{3})} or die "bad status line: $head";
    my %h = map { /^([^:]+):\s*(.*?)\s*$/ ? (lc $1 => $2) : () } split /\r\n/, $head;
    my $body = '';
    read $sock, $body, $h{'content-length'} // 0;
    return { code => $code, headers => \%h, body => $body };
}

# The pid of the child that served the last request on $sock, from the
# core_b_conn log ("%P %{remote}p %>s %U"), written in the log phase.
sub conn_pid {
    my $sock = shift;
    my $port = $sock->sockport;
    my $log = Apache::Test::vars('t_logs') . '/core_b_conn_log';
    my $deadline = time + 3;
    while (time < $deadline) {
        if (open my $fh, '<', $log) {
            my $pid;
            while (<$fh>) { $pid = $1 if /^(\d+) \Q$port\E / }
            return $pid if $pid;
        }
        sleep 0.01;
    }
    return undef;
}

# ---------------------------------------------------------------- 429 and the window
{
    clear_keys('core_b_rl');
    window_start(2);
    my @res = map { scalar bl_request(GET => '/core-b/rl/health') } 1 .. 5;
    is_deeply [map { $_->code } @res], [(200) x 5], 'five requests in the window pass';
    is $res[0]->header('RateLimit-Limit'), 5, 'RateLimit-Limit';
    is_deeply [map { $_->header('RateLimit-Remaining') } @res], [4, 3, 2, 1, 0],
        'RateLimit-Remaining counts down';
    like $res[0]->header('RateLimit-Reset') // '', qr/^[12]$/, 'RateLimit-Reset in seconds';

    my ($res, $data) = bl_request(GET => '/core-b/rl/health');
    is $res->code, 429, 'the sixth is 429';
    is $data->{error}{code}, 'RATE_LIMITED', 'envelope error RATE_LIMITED';
    ok !$data->{success}, 'success false';
    my $retry = $res->header('Retry-After') // '';
    like $retry, qr/^[12]$/, 'Retry-After in seconds, within the window';
    is $res->header('RateLimit-Remaining'), 0, 'RateLimit-Remaining 0';
    is $res->header('RateLimit-Limit'), 5, 'RateLimit-Limit on the 429';
    is $res->header('RateLimit-Reset'), $retry, 'RateLimit-Reset equals Retry-After';

    my @keys = grep { length } bl_redis('--scan', '--pattern', 'bl:rl:core_b_rl:*');
    is scalar(@keys), 1, 'one Redis counter for this client and window';
    like $keys[0] // '', qr/^bl:rl:core_b_rl:[0-9a-f]{32}:\d+$/,
        'key: name, hashed client key, window index';
    unlike $keys[0] // '', qr/127\.0\.0\.1/, 'no IP in clear in Redis';
    is bl_redis('GET', $keys[0] // 'none'), 6, 'the counter holds the six requests';
    my $ttl = bl_redis('TTL', $keys[0] // 'none');
    ok $ttl > 0 && $ttl <= 3, 'the counter expires with its window';

    sleep $retry;
    ($res) = bl_request(GET => '/core-b/rl/health');
    is $res->code, 200, 'allowed again after Retry-After';
    is $res->header('RateLimit-Remaining'), 4, 'a fresh window';
}

# ---------------------------------------------------------------- off
{
    my @res = map { scalar bl_request(GET => '/core-b/rl/off/health') } 1 .. 8;
    is_deeply [map { $_->code } @res], [(200) x 8], 'BeautifulRateLimit off: no limit';
    ok !defined $res[0]->header('RateLimit-Limit'), 'and no RateLimit headers';
}

# ---------------------------------------------------------------- across children
{
    my $limit = 30;
    clear_keys('core_b_shared');
    sleep(60 - fmod(time, 60) + 0.02) if 60 - fmod(time, 60) < 10;

    # Open keep-alive connections (to an unlimited location, so nothing is
    # counted yet) until two different children hold one each. Connections
    # held open fill a child, and event MPM then leaves accepting to the other.
    my (%conn_of, %served, @held);
    my ($made, $all_ok) = (0, 1);
    for (1 .. 80) {
        my $sock = conn_open();
        push @held, $sock;
        conn_get($sock, '/core-b/rl/off/health');
        my $pid = conn_pid($sock) // next;
        $conn_of{$pid} //= $sock;
        last if keys %conn_of >= 2;
    }
    my @pids = sort keys %conn_of;
    is scalar(@pids), 2, 'two httpd children each hold a connection ('
        . scalar(@held) . ' opened)';
    @pids = ($pids[0], $pids[0]) if @pids < 2;
    $served{$_} = 0 for @pids;

    # Alternate between the two children up to the limit.
    while ($made < $limit) {
        my $pid = $pids[$made % 2];
        my $r = conn_get($conn_of{$pid}, '/core-b/shared/health');
        $all_ok &&= $r->{code} == 200;
        $served{$pid}++;
        $made++;
    }
    ok $all_ok, "$limit requests over both children pass";
    ok $pids[0] ne $pids[1] && $served{ $pids[0] } < $limit && $served{ $pids[1] } < $limit,
        "each child served fewer than $limit ($served{$pids[0]} and $served{$pids[1]})";

    my $r = conn_get($conn_of{ $pids[0] }, '/core-b/shared/health');
    is $r->{code}, 429, 'the next one is 429 on the first child';
    $r = conn_get($conn_of{ $pids[1] }, '/core-b/shared/health');
    is $r->{code}, 429, 'and 429 on the second child';
    is $r->{headers}{'ratelimit-remaining'}, 0, 'RateLimit-Remaining 0';
    ok $r->{headers}{'retry-after'} > 0, 'Retry-After';

    my @keys = grep { length } bl_redis('--scan', '--pattern', 'bl:rl:core_b_shared:*');
    is scalar(@keys), 1, 'one counter for all children';
    is bl_redis('GET', $keys[0] // 'none'), $limit + 2,
        'the Redis counter equals the number of requests made';
    my $fresh = bl_request(GET => '/core-b/shared/health');
    is $fresh->code, 429, 'a fresh connection is refused too';
}

# ---------------------------------------------------------------- key=user
{
    clear_keys('core_b_user');
    my @tok;
    for (1 .. 2) {
        my ($uid, $sid) = (bl_uuid(), bl_uuid());
        bl_session_create($sid, $uid, 120);
        push @tok, scalar bl_mint_jwt(sub => $uid, sid => $sid);
    }
    my @codes = map { bl_request(GET => '/core-b/user/health', token => $tok[0])->code } 1 .. 4;
    is_deeply \@codes, [200, 200, 200, 429], 'user A: three pass, the fourth is 429';
    is bl_request(GET => '/core-b/user/health', token => $tok[1])->code, 200,
        'user B from the same IP still passes';
    is bl_request(GET => '/core-b/user/health')->code, 401,
        'no token: 401 (authentication comes before counting)';

    clear_keys('core_b_anon');
    @codes = map { bl_request(GET => '/core-b/anon/health')->code } 1 .. 4;
    is_deeply \@codes, [200, 200, 200, 429], 'key=user without a user counts by IP';
}

# ---------------------------------------------------------------- Redis down
{
    my $mark = bl_error_log_mark();
    ok bl_stack('redis-stop'), 'Redis stopped';
    my ($res, $data) = bl_request(GET => '/core-b/rl/off/health');
    is $res->code, 200, 'an unlimited location does not need Redis';
    ($res, $data) = bl_request(GET => '/core-b/rl/health');
    is $res->code, 503, 'a limited location is 503 with Redis down';
    is $data->{error}{code}, 'SERVICE_UNAVAILABLE', 'envelope SERVICE_UNAVAILABLE';
    like $res->header('Retry-After') // '', qr/^\d+$/, 'Retry-After';
    ok bl_stack('redis-start'), 'Redis started';
    my $deadline = time + 10;
    do { sleep 0.25; ($res) = bl_request(GET => '/health/ready') }
        until $res->code == 200 || time > $deadline;
    clear_keys('core_b_rl');
    ($res) = bl_request(GET => '/core-b/rl/health');
    is $res->code, 200, 'limited location answers again once Redis is back';
    is scalar(bl_error_log_crashes($mark)), 0, 'no httpd child crashed';
}

# ---------------------------------------------------------------- directive errors
SKIP: {
    my $so = ($ENV{BL_MODULES_DIR} // '') . '/mod_beautiful_core.so';
    skip 'mod_beautiful_core.so not found', 8 unless -f $so;
    my $httpd = Apache::Test::vars('httpd');
    my $apxs = Apache::Test::vars('apxs') || 'apxs';
    chomp(my $modules = `"$apxs" -q LIBEXECDIR 2>/dev/null` // '');
    my $dir = tempdir(CLEANUP => 1);

    # httpd -t on a minimal config with one BeautifulRateLimit line.
    my $check = sub {
        my $line = shift;
        open my $fh, '>', "$dir/httpd.conf" or die $!;
        print $fh <<"CONF";
ServerRoot "$dir"
ServerName localhost
Listen 127.0.0.1:1
PidFile "$dir/httpd.pid"
ErrorLog "$dir/error_log"
LoadModule mpm_event_module $modules/mod_mpm_event.so
LoadModule authz_core_module $modules/mod_authz_core.so
LoadModule dbd_module $modules/mod_dbd.so
LoadModule beautiful_core_module $so
<Location /x>
    $line
</Location>
CONF
        close $fh;
        my $out = `"$httpd" -t -f "$dir/httpd.conf" 2>&1`;
        return ($? == 0, $out);
    };
    my ($ok, $out) = $check->('BeautifulRateLimit login 5 60 key=user');
    ok $ok, 'a valid rule is accepted' or diag $out;
    ($ok, $out) = $check->('BeautifulRateLimit off');
    ok $ok, '"off" is accepted' or diag $out;
    for my $case (['login 5x 60', qr/limit '5x' must be a whole number/],
                  ['login 0 60', qr/limit '0' must be a whole number from 1/],
                  ['login 5 -1', qr/window '-1' must be a whole number of seconds/],
                  ['login 5 60 key=mac', qr/'key=mac' must be key=ip or key=user/],
                  ['bad/name 5 60', qr/name 'bad\/name' must be/],
                  ['login 5', qr/takes: name limit window_seconds/]) {
        ($ok, $out) = $check->("BeautifulRateLimit $case->[0]");
        ok !$ok && $out =~ $case->[1], "refused: BeautifulRateLimit $case->[0]"
            or diag $out;
    }
}

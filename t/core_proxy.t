# BeautifulTrustedProxy: X-Forwarded-For and X-Forwarded-Proto believed from
# a trusted peer only. t/conf/test.d/core_proxy.conf trusts 127.0.0.2,
# 10.0.0.0/8 and 2001:db8:1::/48; requests from 127.0.0.2 come through the
# "proxy", those from 127.0.0.1 (every other suite's peer) are untrusted.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use POSIX qw(fmod);
use Time::HiRes qw(sleep time);
use BL::Test;

plan skip_all => 'mod_beautiful_core not loaded'
    unless (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / core /;

my $PROXY = '127.0.0.2';
my $DIRECT = '127.0.0.1';
my $ECHO = '/api/v1/core-test/echo';
my $n = 0;

{
    my ($res) = bl_request(GET => '/health', local_address => $PROXY);
    plan skip_all => "cannot connect from $PROXY: " . $res->status_line
        unless $res->code == 200;
}

# The client address an audit row records for a request from $from.
sub audited_ip {
    my ($from, $xff) = @_;
    my $rid = "core-proxy-$$-" . ++$n;
    my ($res) = bl_request(GET => "$ECHO?db=audit", local_address => $from,
                           headers => { 'X-Request-ID' => $rid,
                                        defined $xff ? ('X-Forwarded-For' => $xff) : () });
    return "HTTP " . $res->code unless $res->code == 200;
    return bl_psql_value('SELECT host(ip_address) FROM audit_logs WHERE action = $1', $rid);
}

# ---------------------------------------------------------------- X-Forwarded-For
my @cases = (
    ['one hop', $PROXY, '203.0.113.7', '203.0.113.7'],
    ['trusted hops skipped, first untrusted is the client', $PROXY,
     '198.51.100.1, 203.0.113.7, 10.1.2.3, 10.200.0.9', '203.0.113.7'],
    ['every hop trusted: the leftmost', $PROXY, '10.9.9.9, 10.1.2.3', '10.9.9.9'],
    ['malformed entry stops the walk at the last trusted hop', $PROXY,
     '203.0.113.8, not-an-ip, 10.1.2.3', '10.1.2.3'],
    ['empty entry is malformed', $PROXY, '203.0.113.8,,10.1.2.3', '10.1.2.3'],
    ['malformed rightmost entry: the peer itself', $PROXY, '203.0.113.7:4711', $PROXY],
    ['a name is not an address (no DNS)', $PROXY, 'localhost', $PROXY],
    ['spaces around entries', $PROXY, "  203.0.113.9 ,10.1.2.3  ", '203.0.113.9'],
    ['IPv6 chain', $PROXY, '2001:db8:2::5, 2001:db8:1::7', '2001:db8:2::5'],
    ['no header: the peer', $PROXY, undef, $PROXY],
    ['spoofed from an untrusted peer: ignored', $DIRECT, '203.0.113.7', $DIRECT],
    ['spoofed chain from an untrusted peer: ignored', $DIRECT, '203.0.113.7, 10.1.2.3', $DIRECT],
);
for my $c (@cases) {
    my ($name, $from, $xff, $want) = @$c;
    is audited_ip($from, $xff), $want, "$name (audit row ip)";
}

# the access log's %h is the client too
{
    my $rid = "core-proxy-log-$$";
    bl_request(GET => $ECHO, local_address => $PROXY,
               headers => { 'X-Request-ID' => $rid, 'X-Forwarded-For' => '203.0.113.77' });
    my ($line, $log) = ('', bl_access_log_path());
    for (1 .. 20) {
        open my $fh, '<', $log or last;
        ($line) = grep { /"\Q$rid\E"$/ } <$fh>;
        last if $line;
        sleep 0.1;
    }
    like $line // '', qr/^203\.0\.113\.77 /, 'access log names the forwarded client';
}

# a failed login is audited with the forwarded client's address
SKIP: {
    skip 'mod_beautiful_auth not loaded', 2
        unless (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / auth /;
    for my $c ([$PROXY, '203.0.113.99'], [$DIRECT, $DIRECT]) {
        my ($from, $want) = @$c;
        my $rid = "core-proxy-login-$$-" . ++$n;
        bl_request(POST => '/api/v1/auth/login', local_address => $from,
                   json => { email => "nobody-$rid\@example.org", password => 'wrong password 1!' },
                   headers => { 'X-Request-ID' => $rid, 'X-Forwarded-For' => '203.0.113.99' });
        is bl_psql_value(q{SELECT host(ip_address) FROM audit_logs
                           WHERE request_id = $1 AND action = 'auth.login'}, $rid),
            $want, "failed login from $from audited with $want";
    }
}

# ---------------------------------------------------------------- rate limit by IP
{
    # keep the burst inside one 60 s window
    sleep(60 - fmod(time, 60) + 0.05) if fmod(time, 60) > 50;
    my $ip = sub { sprintf '198.51.100.%d', (($$ + shift) % 250) + 1 };
    my $get = sub {
        my ($from, $xff) = @_;
        my ($res) = bl_request(GET => '/core-proxy/rl/health', local_address => $from,
                               headers => { 'X-Forwarded-For' => $xff });
        return $res->code;
    };
    my @codes = map { $get->($PROXY, $ip->(0)) } 1 .. 3;
    is_deeply \@codes, [200, 200, 429], 'limit counted per forwarded client';
    is $get->($PROXY, $ip->(1)), 200, 'another client behind the same proxy: its own count';
    @codes = map { $get->($DIRECT, $ip->(2 + $_)) } 1 .. 3;
    is_deeply \@codes, [200, 200, 429], 'untrusted peer: one count whatever it claims';
}

# ---------------------------------------------------------------- X-Forwarded-Proto
{
    my $hsts = sub {
        my ($from, $proto) = @_;
        my ($res) = bl_request(GET => $ECHO, local_address => $from,
                               headers => { defined $proto ? ('X-Forwarded-Proto' => $proto) : () });
        return $res->header('Strict-Transport-Security');
    };
    like $hsts->($PROXY, 'https') // '', qr/^max-age=\d+; includeSubDomains$/,
        'HSTS when a trusted proxy says https';
    ok defined $hsts->($PROXY, 'HTTPS'), 'scheme compared without case';
    ok !defined $hsts->($PROXY, 'http'), 'no HSTS when the proxy says http';
    ok !defined $hsts->($PROXY, undef), 'no HSTS without the header';
    ok !defined $hsts->($DIRECT, 'https'), 'no HSTS when an untrusted peer says https';
}

# ---------------------------------------------------------------- configuration errors
SKIP: {
    my $httpd = Apache::Test::vars('httpd');
    # the MPM the test server loads, from its generated httpd.conf
    my $mpm = '';
    if (open my $fh, '<', Apache::Test::vars('t_conf_file')) {
        ($mpm) = map { /^\s*LoadModule\s+(mpm_\w+)\s+"?([^"\s]+)/ ? "$1 $2" : () } <$fh>;
    }
    my $so = ($ENV{BL_MODULES_DIR} // '') . '/mod_beautiful_core.so';
    skip 'no httpd, MPM or module to check a configuration with', 6
        unless $httpd && -x $httpd && $mpm && -f $so;
    my $dir = Apache::Test::vars('t_logs');
    my $check = sub {
        my $arg = shift;
        my $conf = "$dir/core_proxy_check.conf";
        open my $fh, '>', $conf or die "$conf: $!";
        print $fh "ServerRoot $dir\nServerName localhost\nErrorLog /dev/null\n"
                . "PidFile $dir/core_proxy_check.pid\nListen 127.0.0.1:1\n"
                . "LoadModule $mpm\n"
                . "LoadModule beautiful_core_module $so\n"
                . "BeautifulTrustedProxy $arg\n";
        close $fh;
        my $out = `'$httpd' -t -f '$conf' 2>&1`;
        unlink $conf;
        return ($? == 0, $out);
    };
    my ($ok, $out) = $check->('192.0.2.1 10.0.0.0/8 2001:db8::/32 ::1');
    ok $ok, 'addresses and ranges of both families accepted' or diag $out;
    for my $bad (['example.org', qr/is not an IP address/],
                 ['10.0.0.0/33', qr/prefix length out of range/],
                 ['10.0.0.0/0', qr/prefix length out of range/],
                 ['10.0.0.0/abc', qr/not a number/],
                 ['10.1', qr/is not an IP address/]) {
        ($ok, $out) = $check->($bad->[0]);
        ok !$ok && $out =~ $bad->[1], "'$bad->[0]' refused with a clear message" or diag $out;
    }
}

done_testing();

# Two API nodes behind the front of conf/sites-available/beautiful-balancer.conf
# (mod_proxy_balancer + mod_proxy_hcheck), started by scripts/cluster on
# ports BL_PORT_BASE+30 .. +59 with a PostgreSQL and Redis of their own.
# Every request goes through the front; the nodes' access logs tell which
# node served it (by the X-Request-ID the answer carries).
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use File::Temp qw(tempdir);
use JSON::PP ();
use LWP::UserAgent ();
use HTTP::Request ();
use POSIX ();
use Time::HiRes qw(sleep time);
use BL::Test;

my @needs = qw(core auth reminder notify);
my $loaded = ' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ';
plan skip_all => "needs mod_beautiful_@needs" if grep { $loaded !~ / $_ / } @needs;
plan skip_all => 'needs the staged modules (scripts/check)' unless $ENV{BL_MODULES_DIR} && $ENV{BL_SRC_DIR};

my $P = $ENV{BL_PORT_BASE} + 30;
my $SMTP_PORT = $P + 4;
my $dir = tempdir(TMPDIR => 1, CLEANUP => 1);
my %node_log = map { $_ => "$dir/node-$_/logs/access_log" } qw(a b);
my $CA = "$dir/keys/tls.crt";
my $JSON = JSON::PP->new->utf8->canonical;

# The cluster's own PostgreSQL and Redis for bl_psql and bl_redis.
$ENV{PGHOST} = "$dir/pg/run";
$ENV{PGPORT} = $P + 1;
$ENV{BL_REDIS_PORT} = $P + 2;

# ---------------------------------------------------------------- the cluster

my ($cluster_pid, $sink_pid);
END {
    local $?;   # the suite's own exit status, not the cluster's
    kill 'TERM', $sink_pid if $sink_pid;
    if ($cluster_pid) {
        kill 'TERM', $cluster_pid;
        waitpid $cluster_pid, 0;
    }
}

# The loopback SMTP server every delivery of both nodes goes to.
mkdir "$dir/smtp";
$sink_pid = fork // die "fork: $!";
if (!$sink_pid) {
    exec('/usr/bin/python3', "$ENV{BL_SRC_DIR}/t/tools/smtp_sink.py", $SMTP_PORT,
         "$dir/smtp", "$dir/smtp.pid") or POSIX::_exit(1);
}

# Quick background passes and the SMTP transport, on both nodes.
open my $conf, '>', "$dir/test.conf" or die "$dir/test.conf: $!";
print $conf <<"CONF";
<IfModule beautiful_reminder_module>
    BeautifulReminderInterval 300ms
</IfModule>
<IfModule beautiful_notify_module>
    BeautifulNotifyInterval 200ms
    BeautifulNotifyBatchSize 100
    BeautifulNotifyBackoff 1s 2s
    BeautifulMailTransport smtp
    BeautifulSMTPStartTLS off
    BeautifulSMTPTimeout 2s 5s
    BeautifulSMTPURL smtp://127.0.0.1:$SMTP_PORT
</IfModule>
CONF
close $conf;

my $cluster_script = "$ENV{BL_SRC_DIR}/scripts/cluster";
$cluster_pid = fork // die "fork: $!";
if (!$cluster_pid) {
    open STDOUT, '>', "$dir/cluster.log";
    open STDERR, '>&', \*STDOUT;
    $ENV{PORT} = $P;
    $ENV{STATE_DIR} = $dir;
    $ENV{BL_CLUSTER_MODULES_DIR} = $ENV{BL_MODULES_DIR};
    $ENV{BL_CLUSTER_NODE_CONF} = "$dir/test.conf";
    delete @ENV{grep { /^BL_(?!CLUSTER|HCHECK|RUN_USER|PG_FAST)/ && $_ ne 'BL_PORT_BASE' } keys %ENV};
    $ENV{BL_PG_FAST} = 1;
    exec($cluster_script) or POSIX::_exit(1);
}
my $deadline = time + 180;
sleep 0.2 until -e "$dir/cluster.ready" || time > $deadline || waitpid($cluster_pid, POSIX::WNOHANG()) > 0;
unless (-e "$dir/cluster.ready") {
    my $log = do { local $/; open my $f, '<', "$dir/cluster.log"; <$f> // '' };
    $cluster_pid = undef;
    BAIL_OUT("scripts/cluster did not come up:\n$log");
}
ok 1, 'scripts/cluster: front, two nodes, PostgreSQL and Redis are up';

sub front_url { "https://127.0.0.1:$P$_[0]" }

# One request through the front: ($res, $data).
sub front {
    my ($method, $path, %opt) = @_;
    return bl_request($method, front_url($path), ssl_opts => { SSL_ca_file => $CA }, %opt);
}

# Which node logged the request whose answer carried $rid ('a', 'b', or
# ''): the access log line is written just after the answer, so look again
# for a moment.
sub served_by {
    my $rid = shift or return '';
    my $until = time + 3;
    while (1) {
        for my $n (qw(a b)) {
            open my $fh, '<', $node_log{$n} or next;
            while (<$fh>) { return $n if index($_, "rid=$rid ") >= 0 }
        }
        return '' if time > $until;
        sleep 0.05;
    }
}

# Node access log lines after byte $mark that are not health checks.
sub api_lines_since {
    my ($n, $mark) = @_;
    open my $fh, '<', $node_log{$n} or return 0;
    seek $fh, $mark, 0;
    return scalar grep { !m{ /health} } <$fh>;
}

sub stack { system("$ENV{BL_SRC_DIR}/scripts/stack", '--state', $dir, @_) == 0 }
sub cluster { local $ENV{STATE_DIR} = $dir; system($cluster_script, @_) == 0 }

sub wait_for {
    my ($check, $secs) = @_;
    my $until = time + $secs;
    while (time < $until) { return 1 if $check->(); sleep 0.2 }
    return $check->();
}

sub crashes {
    my @lines;
    for my $n (qw(a b)) {
        open my $fh, '<', "$dir/node-$n/logs/error_log" or next;
        push @lines, map { "node $n: $_" } grep { /exit signal|Segmentation fault/ } <$fh>;
    }
    return @lines;
}

# ---------------------------------------------------------------- load

# $workers processes send GET $path through the front (keep-alive) until
# $during has run; returns every request as { start, end, code,
# retry_after } in start order.
sub under_load {
    my (%o) = @_;
    my @kids;
    my $stop = "$dir/load.stop";
    unlink $stop;
    for my $w (1 .. $o{workers}) {
        my $pid = fork // die "fork: $!";
        if (!$pid) {
            my $ua = LWP::UserAgent->new(keep_alive => 4, timeout => 10, max_redirect => 0,
                                         ssl_opts => { SSL_ca_file => $CA });
            open my $out, '>', "$dir/load.$w" or POSIX::_exit(1);
            until (-e $stop) {
                my $req = HTTP::Request->new(GET => front_url($o{path}));
                $req->header(Authorization => "Bearer $o{token}");
                my $t0 = time;
                my $res = $ua->request($req);
                printf $out "%.3f %.3f %d %s %s\n", $t0, time, $res->code,
                    $res->header('Retry-After') // '-', $res->header('X-Request-ID') // '-';
            }
            close $out;
            POSIX::_exit(0);
        }
        push @kids, $pid;
    }
    $o{during}->();
    open my $fh, '>', $stop or die "$stop: $!";
    close $fh;
    waitpid $_, 0 for @kids;
    my @reqs;
    for my $w (1 .. $o{workers}) {
        open my $in, '<', "$dir/load.$w" or next;
        for (<$in>) {
            my ($s, $e, $c, $r, $rid) = split;
            push @reqs, { start => $s, end => $e, code => $c, retry_after => $r, rid => $rid };
        }
    }
    return sort { $a->{start} <=> $b->{start} } @reqs;
}

# ---------------------------------------------------------------- sessions

my $password = 'Cluster-Test-Passphrase-2026';
my $email = 'cluster-' . bl_uuid() . '@example.org';
my ($res) = front(POST => '/api/v1/auth/register', json => { email => $email, password => $password });
is $res->code, 201, 'register through the front';

my ($login, $ldata) = front(POST => '/api/v1/auth/login', json => { email => $email, password => $password });
is $login->code, 200, 'login through the front';
my $token = $ldata->{data}{access_token};
my $login_node = served_by($login->header('X-Request-ID'));
ok $login_node, "the login was served by node $login_node";
my $other = $login_node eq 'a' ? 'b' : 'a';

# N profile reads through the front: their statuses, and how many each
# node served.
sub profile_reads {
    my ($n) = @_;
    my (%by_node, @statuses);
    for (1 .. $n) {
        my ($r) = front(GET => '/api/v1/users/profile', token => $token);
        push @statuses, $r->code;
        $by_node{ served_by($r->header('X-Request-ID')) }++;
    }
    return (\@statuses, \%by_node);
}

my ($codes, $served_ref) = profile_reads(20);
my @codes = @$codes;
my %served = %$served_ref;
is_deeply \@codes, [(200) x 20], 'the session works for every profile read';
ok $served{$other}, "node $other accepted the session node $login_node made ($served{$other} of 20)"
    or diag explain \%served;

my ($logout) = front(POST => '/api/v1/auth/logout', token => $token);
is $logout->code, 200, 'logout through the front';
my $logout_node = served_by($logout->header('X-Request-ID'));
my ($after_ref, $refused_ref) = profile_reads(10);
my @after = @$after_ref;
my %refused_on = %$refused_ref;
is_deeply \@after, [(401) x 10], 'after logout every node refuses the token at the next request';
ok $refused_on{ $logout_node eq 'a' ? 'b' : 'a' }, 'including the node that did not serve the logout'
    or diag explain \%refused_on;

# ---------------------------------------------------------------- rate limit

# auth_forgot: 10 an hour per client, one count in Redis for both nodes.
bl_redis('DEL', grep { length } bl_redis('--scan', '--pattern', 'bl:rl:auth_forgot:*'));
my (@rl, %rl_nodes);
for my $i (1 .. 12) {
    my ($r) = front(POST => '/api/v1/auth/forgot-password',
                    json => { email => "nobody-$i-" . bl_uuid() . '@example.org' });
    push @rl, $r->code;
    $rl_nodes{ served_by($r->header('X-Request-ID')) }++ if $i <= 10;
}
is_deeply \@rl, [(202) x 10, 429, 429], 'the 11th request is limited, wherever it lands';
ok $rl_nodes{a} && $rl_nodes{b}, 'the 10 counted requests were spread over both nodes'
    or diag explain \%rl_nodes;

# ---------------------------------------------------------------- exactly once

sub smtp_message_ids {
    opendir my $dh, "$dir/smtp" or return ();
    my @ids;
    for my $f (grep { /^\d+\.json$/ } readdir $dh) {
        open my $fh, '<', "$dir/smtp/$f" or next;
        local $/;
        my $msg = eval { $JSON->decode(<$fh>) } or next;
        push @ids, $1 if $msg->{data} =~ /^Message-ID: <([0-9a-f-]{36})@/mi;
    }
    return @ids;
}

my ($uid) = map { $_->[0] } bl_psql('SELECT id FROM users WHERE email = $1', $email);
my $t0 = time;
bl_psql(q{INSERT INTO reminders (user_id, type, title, rrule, timezone, starts_at, next_fire_at, channels)
          SELECT $1, 'other', 'cluster ' || g, 'FREQ=DAILY;BYHOUR=3;BYMINUTE=0;BYSECOND=0', 'UTC',
                 now() - interval '1 day', now() - interval '1 second', '{email}'
          FROM generate_series(1, 1000) g}, $uid);
ok wait_for(sub { !bl_psql_value(q{SELECT count(*) FROM reminders
                                   WHERE user_id = $1 AND next_fire_at <= now()}, $uid) }, 60),
   '1,000 due reminders all claimed';
is bl_psql_value(q{SELECT count(*) FROM reminder_logs l JOIN reminders r ON r.id = l.reminder_id
                   WHERE r.user_id = $1 AND l.status = 'fired'}, $uid), 1000, 'one occurrence each';
is bl_psql_value(q{SELECT count(*) FROM notifications WHERE user_id = $1 AND type = 'reminder.due'}, $uid),
   1000, 'one reminder.due notification each: none fired twice';
note sprintf 'reminders fired in %.1f s', time - $t0;

bl_psql(q{INSERT INTO notifications (user_id, channel, type, title, body)
          SELECT $1, 'email', 'cluster.test', 'pending ' || g, 'x' FROM generate_series(1, 1000) g}, $uid);
my $expected = bl_psql_value(q{SELECT count(*) FROM notifications WHERE user_id = $1 AND channel = 'email'}, $uid);
cmp_ok $expected, '>=', 2000, '1,000 pending notifications besides the reminders\' 1,000';
ok wait_for(sub { !bl_psql_value(q{SELECT count(*) FROM notifications WHERE user_id = $1
                                   AND status <> 'sent'}, $uid) }, 90),
   'every notification sent';
my @ids = smtp_message_ids();
my %seen;
my @dups = grep { $seen{$_}++ } @ids;
is scalar(@ids), $expected, 'the SMTP server received one message per notification';
is scalar(@dups), 0, 'no notification delivered twice' or diag "@dups[0 .. 4]";
is bl_psql_value(q{SELECT count(*) FROM notifications WHERE user_id = $1 AND attempts <> 1}, $uid), 0,
   'each claimed once';
note sprintf 'reminders and notifications delivered in %.1f s', time - $t0;

# ---------------------------------------------------------------- node b stopped

# A fresh session for the load (the one above is logged out).
(undef, $ldata) = front(POST => '/api/v1/auth/login', json => { email => $email, password => $password });
$token = $ldata->{data}{access_token};
my $WORKERS = 4;
my ($stop_begin, $stop_end);
my @reqs = under_load(workers => $WORKERS, path => '/api/v1/users/profile', token => $token,
    during => sub {
        sleep 1;
        $stop_begin = time;
        cluster('stop-node', 'b');
        $stop_end = time;
        sleep 3;
    });
my @failed = grep { $_->{code} != 200 } @reqs;
# In flight on node b: sent before it was gone, answered after it began stopping.
my @late = grep { $_->{start} > $stop_end || $_->{end} < $stop_begin } @failed;
cmp_ok scalar(@reqs), '>', 20, sprintf('%d requests through the front while node b stopped', scalar @reqs);
cmp_ok scalar(@failed), '<=', $WORKERS, sprintf('%d failed: at most one in flight per client', scalar @failed);
is scalar(@late), 0, 'only requests in flight while node b stopped failed'
    or diag explain \@late;
my $b_mark = -s $node_log{b};
my @codes_a = map { (front(GET => '/api/v1/users/profile', token => $token))[0]->code } 1 .. 10;
is_deeply \@codes_a, [(200) x 10], 'node a alone serves every request';

ok cluster('start-node', 'b'), 'node b started again';
my $back = wait_for(sub {
    front(GET => '/api/v1/users/profile', token => $token);
    api_lines_since('b', $b_mark) > 0;
}, 15);
ok $back, 'the health check lets node b rejoin: it serves requests again';

# ---------------------------------------------------------------- PostgreSQL restarted

my ($pg_stopped, $pg_started);
@reqs = under_load(workers => $WORKERS, path => '/api/v1/users/profile', token => $token,
    during => sub {
        sleep 1;
        stack('pg-stop');
        $pg_stopped = time;
        sleep 2;
        stack('pg-start');
        $pg_started = time;
        sleep 7;
    });
my @down = grep { $_->{code} != 200 } @reqs;
my @not_503 = grep { $_->{code} != 503 || $_->{retry_after} eq '-' } @down;
my @slow = grep { $_->{start} > $pg_started + 5 && $_->{code} != 200 } @reqs;
cmp_ok scalar(@down), '>', 0, sprintf('%d of %d requests refused while PostgreSQL was down',
                                      scalar @down, scalar @reqs);
is scalar(@not_503), 0, 'every refusal is a 503 with Retry-After' or diag explain [grep { defined } @not_503[0 .. 4]];
is scalar(@slow), 0, 'full service within 5 s of PostgreSQL returning'
    or diag sprintf "PostgreSQL back after %.1f s of load; the last refusal %.1f s after it returned; "
        . "%d answered by the front itself, %d by a node (request ids @{[ map { $_->{rid} } grep { defined } @slow[0 .. 2] ]})",
        $pg_started - $reqs[0]{start}, $slow[-1]{start} - $pg_started,
        scalar(grep { $_->{rid} eq '-' } @slow), scalar(grep { $_->{rid} ne '-' } @slow);
if (@slow) {
    for my $n (qw(a b)) {
        open my $fh, '<', "$dir/node-$n/logs/error_log" or next;
        my @errors = grep { /beautiful_\w+:(?:error|notice)/ && !/no database connection/ } <$fh>;
        diag "node $n: $_" for @errors[-8 .. -1];
    }
}
my @ok_after = grep { $_->{start} > $pg_started + 5 } @reqs;
cmp_ok scalar(@ok_after), '>', 0, 'requests were answered after the restart';

my @crashed = crashes();
is scalar(@crashed), 0, 'no httpd child crashed on either node' or diag @crashed;

done_testing();

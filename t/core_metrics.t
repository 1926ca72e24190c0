# GET /metrics: Prometheus text format that promtool accepts, counters that
# count exactly the requests made, bounded labels, dependency error counters.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use IPC::Open3 qw(open3);
use Symbol qw(gensym);
use Time::HiRes qw(sleep time);
use BL::Test;

plan tests => 41, sub { (" " . ($ENV{BL_LOADED_MODULES} // '') . " ") =~ / core / };

# { 'name{a="x",b="y"}' => value }, label names sorted.
sub parse_metrics {
    my $text = shift;
    my %m;
    for my $line (split /\n/, $text) {
        next if $line =~ /^#/ || $line !~ /\S/;
        my ($name, $labels, $value) = $line =~ /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/
            or next;
        my %l;
        $l{$1} = $2 while ($labels // '') =~ /(\w+)="((?:[^"\\]|\\.)*)"/g;
        $m{ key_of($name, %l) } = $value;
    }
    return \%m;
}

sub key_of {
    my ($name, %l) = @_;
    return $name . '{' . join(',', map { qq{$_="$l{$_}"} } sort keys %l) . '}';
}

sub scrape {
    my ($res) = bl_request(GET => '/metrics');
    return ($res, parse_metrics($res->content));
}

# promtool check metrics < text: returns (exit code == 0, its output).
sub promtool {
    my $text = shift;
    my $err = gensym;
    my ($in, $out);
    my $pid = eval { open3($in, $out, $err, 'promtool', 'check', 'metrics') };
    return (0, 'promtool not found (Debian package prometheus)') unless $pid;
    print $in $text;
    close $in;
    local $/;
    my $output = join '', <$out> // '', <$err> // '';
    waitpid $pid, 0;
    return ($? == 0, $output);
}

# The log phase runs just after the response: poll until a count settles.
sub value_reaches {
    my ($key, $want) = @_;
    my $deadline = time + 3;
    my $m;
    while (1) {
        (undef, $m) = scrape();
        my $v = $m->{$key} // 0;
        return $v if $v >= $want || time > $deadline;
        sleep 0.05;
    }
}

my $health_200 = key_of('http_requests_total', route => '/health', method => 'GET',
                        status => '200');
my $health_count = key_of('http_request_duration_seconds_count',
                          route => '/health', method => 'GET');
my $health_inf = key_of('http_request_duration_seconds_bucket',
                        route => '/health', method => 'GET', le => '+Inf');

# ---------------------------------------------------------------- format
bl_request(GET => '/health');                # at least one sample of each family
my ($res, $m) = scrape();
is $res->code, 200, 'GET /metrics is 200';
like $res->header('Content-Type') // '', qr{^text/plain; version=0\.0\.4}, 'exposition content type';
my $text = $res->content;
my ($ok, $out) = promtool($text);
ok $ok, 'promtool check metrics accepts the output' or diag $out, "\n", $text;
for my $family (qw(http_requests_total http_request_duration_seconds
                   beautiful_db_errors_total beautiful_redis_errors_total)) {
    like $text, qr/^# HELP \Q$family\E \S/m, "HELP for $family";
}
like $text, qr/^# TYPE http_request_duration_seconds histogram$/m, 'histogram TYPE';
like $text, qr/^# TYPE http_requests_total counter$/m, 'counter TYPE';

# ---------------------------------------------------------------- counting
{
    my (undef, $before) = scrape();
    my $n = 3;
    my $count_before = $before->{$health_200} // 0;
    my $hist_before = $before->{$health_count} // 0;
    is bl_request(GET => '/health')->code, 200, "request $_ of $n" for 1 .. $n;
    is value_reaches($health_200, $count_before + $n), $count_before + $n,
        "http_requests_total{route=/health,GET,200} grew by exactly $n";
    my (undef, $after) = scrape();
    is $after->{$health_200}, $count_before + $n, 'and stays there';
    is $after->{$health_count}, $hist_before + $n, "duration _count grew by $n";
    is $after->{$health_inf}, $after->{$health_count}, '+Inf bucket equals _count';
    my $sum = $after->{ key_of('http_request_duration_seconds_sum',
                               route => '/health', method => 'GET') };
    ok defined $sum && $sum > 0, 'duration _sum is positive';
}

# ---------------------------------------------------------------- labels
{
    my $secret = 'core-b-' . bl_uuid();
    is bl_request(GET => "/$secret")->code, 404, 'unknown URI is 404';
    my $k405 = key_of('http_requests_total', route => '/health', method => 'POST',
                      status => '405');
    my (undef, $before) = scrape();
    is bl_request(POST => '/health', json => {})->code, 405, 'POST /health is 405';
    is value_reaches($k405, ($before->{$k405} // 0) + 1), ($before->{$k405} // 0) + 1,
        '405 counted under the route template with its method and status';

    my $r = bl_request(BREW => '/health');
    ok $r->code >= 400, 'an invented method is refused';
    my (undef, $after) = scrape();
    my $text_after = join "\n", keys %$after;
    unlike $text_after, qr/\Q$secret\E/, 'the raw URI never becomes a label';
    unlike $text_after, qr/method="BREW"/, 'an invented method never becomes a label';
    ok((grep { /^http_requests_total\{method="OTHER",route="\/health",/ } keys %$after),
       'it is counted as method OTHER');
    ok((grep { /^http_requests_total\{method="GET",route="unmatched",status="404"\}$/ }
        keys %$after), 'the 404 is counted as route unmatched');
    ok((grep { /^http_requests_total\{method="GET",route="\/metrics",status="200"\}$/ }
        keys %$after), '/metrics counts itself');

    is bl_request(POST => '/metrics', json => {})->code, 405, 'POST /metrics is 405';
}

# ---------------------------------------------------------------- dependency errors
{
    my $k = 'beautiful_redis_errors_total{}';
    my (undef, $before) = scrape();
    ok bl_stack('redis-stop'), 'Redis stopped';
    is bl_request(GET => '/health/ready')->code, 503, '/health/ready is 503';
    ok bl_stack('redis-start'), 'Redis started';
    my (undef, $after) = scrape();
    cmp_ok $after->{$k}, '>', $before->{$k}, 'beautiful_redis_errors_total grew';
    ($ok, $out) = promtool(bl_request(GET => '/metrics')->content);
    ok $ok, 'promtool still accepts the output' or diag $out;
}

# ---------------------------------------------------------------- graceful restart
{
    my (undef, $before) = scrape();
    my $mark = bl_error_log_mark();
    open my $fh, '<', Apache::Test::vars('t_pid_file') or die "pid file: $!";
    chomp(my $ppid = <$fh>);
    ok kill('USR1', $ppid), 'graceful restart signalled';
    my $deadline = time + 15;
    sleep 0.2 until bl_error_log_since($mark) =~ /resuming normal operations/
                    || time > $deadline;
    like bl_error_log_since($mark), qr/resuming normal operations/, 'new generation running';
    my (undef, $after) = scrape();
    cmp_ok $after->{$health_200} // 0, '>=', $before->{$health_200},
        'counters survive a graceful restart';
    is scalar(bl_error_log_crashes($mark)), 0, 'no httpd child crashed';
}

# Domain series (bl_metrics_count / bl_metrics_gauge), summed across the
# children: one TYPE line per name, every series of the name under it.
{
    my $before = 0;
    my ($res) = bl_request(GET => '/metrics');
    $before = $1 if $res->content =~ /^beautiful_test_events_total\{kind="echo"\} (\d+)$/m;
    for my $i (1 .. 6) {
        ($res) = bl_request(GET => "/api/v1/core-test/echo?count=2&gauge=-$i");
    }
    is $res->code, 204, 'the series were fed';
    ($res) = bl_request(GET => '/metrics');
    my $text = $res->content;
    like $text, qr/^beautiful_test_events_total\{kind="echo"\} @{[ $before + 12 ]}$/m,
        'a counter sums every child\'s additions';
    like $text, qr/^beautiful_test_events_total\{kind="other"\} 0$/m, 'a series added 0 is shown';
    my @types = $text =~ /^# TYPE beautiful_test_events_total (\w+)$/mg;
    is_deeply \@types, ['counter'], 'one TYPE line for the name';
    like $text, qr/^# TYPE beautiful_test_level gauge\nbeautiful_test_level -6$/m,
        'a gauge holds the last value set';
}


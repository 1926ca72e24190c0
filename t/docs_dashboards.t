# The operations files stay true to the running server: the Prometheus
# alert rules pass promtool's checks and unit tests (one per alert), the
# Grafana dashboard is valid JSON whose every query names metrics that
# /metrics really serves (for the loaded modules), and /metrics itself is
# valid exposition text by promtool.
use strict;
use warnings FATAL => 'all';

use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use JSON::PP ();
use BL::Test;

my $promtool = '/usr/bin/promtool';
die "$promtool not found (Debian package prometheus)" unless -x $promtool;
plan tests => 8;

my $docs = "$ENV{BL_SRC_DIR}/docs";
my $out = `cd '$docs/prometheus' && '$promtool' check rules alerts.yml 2>&1`;
is $?, 0, 'promtool check rules docs/prometheus/alerts.yml' or diag $out;
$out = `cd '$docs/prometheus' && '$promtool' test rules alerts_test.yml 2>&1`;
is $?, 0, 'promtool test rules: every alert fires when it should and only then' or diag $out;

open(my $fh, '<', "$docs/prometheus/alerts.yml") or die $!;
my $rules = do { local $/; <$fh> };
my @alerts = $rules =~ /^\s*- alert: (\w+)/mg;
open($fh, '<', "$docs/prometheus/alerts_test.yml") or die $!;
my $tests = do { local $/; <$fh> };
my @untested = grep { $tests !~ /alertname: \Q$_\E\b/ } @alerts;
is_deeply \@untested, [], 'a unit test for each of the ' . scalar(@alerts) . ' alerts';

open($fh, '<', "$docs/grafana/beautiful-life.json") or die $!;
my $dash = eval { JSON::PP->new->decode(do { local $/; <$fh> }) };
ok $dash && @{ $dash->{panels} // [] } >= 8, 'the Grafana dashboard is JSON with its panels';
my @exprs = map { $_->{expr} } map { @{ $_->{targets} // [] } } @{ $dash->{panels} // [] };
ok @exprs >= 10, 'and their queries';

# Every metric a query or alert names, from the live /metrics.
my ($res) = bl_request(GET => '/metrics');
my %served = map { $_ => 1 } $res->content =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{| )/mg;
my %owner = (beautiful_notifications => 'notify', beautiful_reminder => 'reminder',
             beautiful_ai => 'ai', beautiful_payments => 'payment');
my $loaded = ' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ';
my %named;
for my $e (@exprs, $rules =~ /expr: \|?\s*([^\n]+(?:\n {12,}[^\n]+)*)/g) {
    $named{$_} = 1 for $e =~ /\b((?:beautiful|http)_[a-z_]+)\b/g;
}
my @missing;
for my $name (sort keys %named) {
    my ($prefix) = grep { index($name, $_) == 0 } keys %owner;
    next if $prefix && $loaded !~ / $owner{$prefix} /;
    push @missing, $name unless $served{$name};
}
is_deeply \@missing, [], 'every metric the dashboard and alerts use is served ('
    . scalar(keys %named) . ' names)';

my $tmp = "$ENV{BL_SRC_DIR}/t/logs/metrics.txt";
open(my $w, '>', $tmp) or die $!;
print {$w} $res->content;
close $w;
$out = `'$promtool' check metrics < '$tmp' 2>&1`;
unlike $out, qr/error|invalid|duplicate/i, 'promtool reads /metrics without an error' or diag $out;
ok $res->code == 200 && length $res->content > 100, '/metrics answered';

# JSON logs: the bl_json LogFormat and BeautifulJSONErrorLog
# (t/conf/test.d/core_jsonlog.conf, a virtual host with both) write one JSON
# object per line, whatever a client sends. Every line of both logs is
# parsed with a strict JSON parser.
use strict;
use warnings FATAL => 'all';

use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use JSON::PP ();
use BL::Test;

plan tests => 19;

my $base = 'http://127.0.0.1:' . ($ENV{BL_JSONLOG_PORT} or die 'BL_JSONLOG_PORT is not set');
my $logs = Apache::Test::vars('serverroot') . '/logs';
my $json = JSON::PP->new->utf8;   # strict: no \x escapes, valid UTF-8 only
my $rid = "jsonlog-$$";

# Sent as bytes (UTF-8 for the accents); read back as characters.
my $hostile = qq{quote" back\\slash tab\t \xc3\xa9t\xc3\xa9 {"json":1}};
my $hostile_text = qq{quote" back\\slash tab\t \x{e9}t\x{e9} {"json":1}};
my @sent = (
    [GET => '/health'],
    [GET => '/api/v1/core-test/echo', 'User-Agent' => $hostile],
    [GET => '/api/v1/core-test/echo', 'User-Agent' => "raw \xff\xfe bytes"],
    [GET => '/api/v1/core-test/private', Authorization => 'Bearer not.a.token'],
    [GET => '/api/v1/no/such/route'],
    [GET => '/no-such-file-here'],
    [GET => '/no-such-%FF-file-%22q%22'],
    [POST => '/api/v1/core-test/echo', 'Content-Type' => 'application/json'],
);
my $n = 0;
for my $s (@sent) {
    my ($method, $path, %h) = @$s;
    $n++;
    my $res = bl_request($method => "$base$path", body => '{"a":',
                         headers => { 'X-Request-ID' => "$rid-$n",
                                      traceparent => '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01',
                                      %h });
    ok $res->code > 0, "$method $path answered (" . $res->code . ')';
}

# Lines appear once the request is logged; give the writes a moment.
sub lines_of {
    my ($file, $want) = @_;
    my @lines;
    for (1 .. 30) {
        open my $fh, '<:raw', "$logs/$file" or do { select undef, undef, undef, 0.1; next };
        @lines = <$fh>;
        last if grep { /\Q$want\E/ } @lines;
        select undef, undef, undef, 0.1;
    }
    return @lines;
}

my @access = lines_of('json_access_log', "$rid-" . scalar @sent);
my @bad = grep { !eval { ref $json->decode($_) eq 'HASH' } } @access;
is_deeply \@bad, [], 'every access log line is a JSON object (' . scalar(@access) . ' lines)';
my %by_rid = map { my $o = $json->decode($_); (($o->{request_id} // '') => $o) } @access;
my $echo = $by_rid{"$rid-2"} // {};
is $echo->{user_agent}, $hostile_text, 'a hostile User-Agent is logged and reads back exactly';
like $by_rid{"$rid-3"}{user_agent} // '', qr/^raw \x{fffd}\x{fffd} bytes$/, 'bytes that are not UTF-8 become U+FFFD';
is $echo->{status}, 200, 'status is a number';
is $echo->{trace_id}, '0af7651916cd43dd8448eb211c80319c', 'the trace id is logged';

my @errors = lines_of('json_error_log', "$rid-");
@bad = grep { !eval { ref $json->decode($_) eq 'HASH' } } @errors;
ok @errors > 0, 'the error log has lines (' . scalar(@errors) . ')';
is_deeply \@bad, [], 'every error log line is a JSON object';
my ($missing) = map { $json->decode($_) } grep { /"request_id":"\Q$rid\E-7"/ } @errors;
like $missing->{message} // '', qr/no-such-\x{fffd}-file-"q"/,
    'a message with a byte that is not UTF-8 keeps its text, the byte as U+FFFD';
is $missing->{request_id}, "$rid-7", 'with its request id';
is $missing->{trace_id}, '0af7651916cd43dd8448eb211c80319c', 'and trace id';
is $missing->{level}, 'info', 'and level';

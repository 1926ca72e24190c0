# W3C Trace Context: a request joins the caller's trace (valid traceparent)
# or starts one, and its trace id is written in the access log line.
use strict;
use warnings FATAL => 'all';

use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use BL::Test;

plan tests => 6;

my $ECHO = '/api/v1/core-test/echo';

# The trace id in the access log line of the request with this id.
sub logged_trace {
    my $rid = shift;
    for (1 .. 30) {
        open my $fh, '<', bl_access_log_path() or last;
        my ($line) = grep { /"\Q$rid\E"$/ } <$fh>;
        return $1 if $line && $line =~ / trace=([0-9a-f-]*) /;
        select undef, undef, undef, 0.1;
    }
    return undef;
}

my $trace = '4bf92f3577b34da6a3ce929d0e0e4736';
my ($res) = bl_request(GET => $ECHO, headers => {
    'X-Request-ID' => "trace-given-$$",
    traceparent => "00-$trace-00f067aa0ba902b7-01" });
is $res->code, 200, 'a request with a traceparent is served';
is logged_trace("trace-given-$$"), $trace, "the caller's trace id is logged";

bl_request(GET => $ECHO, headers => { 'X-Request-ID' => "trace-fresh-$$" });
my $fresh = logged_trace("trace-fresh-$$");
like $fresh // '', qr/^[0-9a-f]{32}$/, 'without one, a new trace id is logged';
isnt $fresh, $trace, 'and it is not some other request\'s';

bl_request(GET => $ECHO, headers => {
    'X-Request-ID' => "trace-bad-$$",
    traceparent => "00-00000000000000000000000000000000-00f067aa0ba902b7-01" });
my $replaced = logged_trace("trace-bad-$$");
like $replaced // '', qr/^[0-9a-f]{32}$/, 'an all-zero trace id is replaced';
isnt $replaced, '0' x 32, 'by a real one';

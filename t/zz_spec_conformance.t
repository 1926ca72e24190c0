# Every answer the other suites got from the API (recorded by bl_request,
# see t/lib/BL/Test.pm) is checked against docs/openapi.yaml: its status is
# documented for its route and a JSON body matches the documented schema.
# Named to run last. Routes the spec does not list (test-only locations,
# unknown paths) are left out.
use strict;
use warnings FATAL => 'all';

use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use BL::Test;

my $capture = $ENV{BL_SPEC_CAPTURE};
plan skip_all => 'BL_SPEC_CAPTURE is not set (scripts/check sets it)' unless $capture;
plan skip_all => 'no answers recorded: this suite ran alone' unless -s $capture;
plan tests => 2;

my $n = 0;
open(my $fh, '<', $capture) or die "$capture: $!";
$n++ while <$fh>;
close $fh;
ok $n >= 50, "the suites' answers were recorded ($n)";

my $tool = "$ENV{BL_SRC_DIR}/t/tools/openapi_check.py";
my $out = `python3 '$tool' --src '$ENV{BL_SRC_DIR}' conformance '$capture' 2>&1`;
is $? >> 8, 0, 'every recorded answer matches the spec' or diag $out;
note $out;

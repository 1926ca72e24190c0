# Request ids core makes: version 4 UUIDs, never the same twice, also
# across the refills of a child's block of random bytes (256 ids each):
# the test server has two children, so 600 requests make at least one of
# them draw a second block.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use LWP::UserAgent;
use BL::Test;

plan skip_all => 'mod_beautiful_core not loaded'
    unless (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / core /;

my $V4 = qr/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
my $ua = LWP::UserAgent->new(keep_alive => 1, timeout => 20, agent => 'bl-test/1');
my (%seen, $bad, $dup);
for my $i (1 .. 600) {
    my $res = $ua->get(bl_url('/health'));
    my $id = $res->header('X-Request-ID') // '';
    $bad++ unless $res->code == 200 && $id =~ $V4;
    $dup++ if $seen{$id}++;
}
ok !$bad, '600 answers, each with a version 4 UUID as its request id';
ok !$dup, 'no request id given twice';
is scalar(keys %seen), 600, '600 distinct ids';

# the log line carries the same id the client got
my $res = $ua->get(bl_url('/health'));
my $id = $res->header('X-Request-ID');
my $found = 0;
for (1 .. 50) {
    open my $fh, '<', bl_access_log_path() or last;
    while (<$fh>) { $found = 1 if index($_, $id) >= 0 }
    last if $found;
    select undef, undef, undef, 0.1;
}
ok $found, 'the access log line names the request id sent back';

done_testing;

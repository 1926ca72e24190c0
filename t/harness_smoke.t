# The harness itself: the test server answers, PostgreSQL, Redis, the JWT
# minting helper and the stack helper work as the suites expect.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use BL::Test;

plan tests => 14;

my ($res) = bl_request(GET => '/bl-harness-no-such-file');
is $res->code, 404, 'the test server answers';

is bl_psql_value('SELECT 1 + $1::int', 41), 42, 'psql reaches the database';
is bl_psql_value('SELECT $1::text', "it's"), "it's", 'parameters are quoted';
my @rows = bl_psql(q{SELECT 'a', NULL UNION ALL SELECT E'b\nc', 'd'});
is_deeply \@rows, [['a', undef], ["b\nc", 'd']], 'rows, NULL and newlines survive';

is bl_redis('PING'), 'PONG', 'redis-cli reaches Redis';
my $sid = bl_uuid();
ok bl_session_create($sid, 'u1', 60), 'session stored';
is bl_redis('GET', "bl:sess:$sid"), 'u1', 'session readable';

my ($token, $claims, $header) = bl_mint_jwt(role => 'doctor', sid => $sid);
is scalar(split /\./, $token), 3, 'minted token has three segments';
is $claims->{role}, 'doctor', 'claim override';
is $header->{kid}, bl_jwt_kid(), 'kid is the key thumbprint';
like bl_mint_jwt(alg => 'none'), qr/^[\w-]+\.[\w-]+\.$/, 'alg none token';

ok bl_stack('status'), 'stack helper reports both services running';

# Two httpd children, so suites can check state shared across children.
my $ppid = do {
    open my $fh, '<', Apache::Test::vars('t_logs') . '/httpd.pid' or die $!;
    local $/; my $p = <$fh>; $p =~ s/\s+//g; $p;
};
my @children;
for my $dir (glob '/proc/[0-9]*') {
    open(my $fh, '<', "$dir/stat") or next;
    my $stat = <$fh> // next;
    $stat =~ s/^.*\)\s+//;    # after "pid (comm)": state ppid ...
    push @children, $dir if (split ' ', $stat)[1] == $ppid;
}
is scalar(@children), 2, 'two httpd children';

SKIP: {
    skip 'mod_beautiful_core not loaded', 1
        unless " $ENV{BL_LOADED_MODULES} " =~ / core /;
    my ($r, $data) = bl_request(GET => '/health');
    ok ref $data eq 'HASH' && $data->{status}, '/health answers JSON';
}

# mod_beautiful_community, video sessions with Google Calendar + Meet,
# against a loopback Google (t/tools/google_fake.py) that verifies the
# RS256 assertion of the JWT-bearer grant (signature, kid, iss, aud,
# scope) and the Calendar calls (Bearer token, conferenceDataVersion=1,
# createRequest.requestId, hangoutsMeet).
#
# Google is a server-wide setting and the shared test server runs without
# it, so this suite runs its own small httpd (mod_dbd, core, community) on
# the shared database and Redis, with Google pointed at the fake.
use strict;
use warnings;
use FindBin;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP ();
use Time::HiRes qw(sleep time);
use BL::Test;
require "$FindBin::Bin/community_helpers.pl";

plan skip_all => 'mod_beautiful_community not loaded' unless community_loaded();

my $fake_base = $ENV{BL_FAKE_PORT_BASE} or die 'BL_FAKE_PORT_BASE is not set';
my ($google_port, $http_port) = ($fake_base + 10, $fake_base + 11);
my $dir = tempdir(CLEANUP => 1);
my $httpd = Apache::Test::vars('httpd');
my $moddir = `apxs -q LIBEXECDIR 2>/dev/null` || '/usr/lib/apache2/modules';
chomp $moddir;
my $calendar = 'sessions@group.calendar.google.com';
my $json = JSON::PP->new->utf8->canonical;
my $fake_pid;

END {
    system($httpd, '-f', "$dir/httpd.conf", '-k', 'stop') if $dir && -s "$dir/httpd.pid";
    my $until = time + 10;
    sleep 0.1 while $dir && -e "$dir/httpd.pid" && time < $until;
    kill 'TERM', $fake_pid if $fake_pid;
}

# ---------------------------------------------------------------- set-up

# A throw-away service account.
system('openssl', 'genpkey', '-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048',
       '-out', "$dir/sa.pem") == 0 or die 'openssl';
my $pem = do { local (@ARGV, $/) = "$dir/sa.pem"; <> };
my %creds = (type => 'service_account', project_id => 'bl-test',
             private_key_id => substr(bl_uuid() =~ s/-//gr, 0, 24), private_key => $pem,
             client_email => 'sessions@bl-test.iam.gserviceaccount.com',
             token_uri => "http://127.0.0.1:$google_port/token");
open(my $cf, '>', "$dir/credentials.json") or die $!;
print $cf $json->encode(\%creds);
close $cf;

$fake_pid = fork // die "fork: $!";
if (!$fake_pid) {
    open(STDOUT, '>', "$dir/fake.out");
    exec('/usr/bin/python3', "$FindBin::Bin/tools/google_fake.py", '--port', $google_port,
         '--credentials', "$dir/credentials.json", '--calendar', $calendar) or die "exec: $!";
}
my $until = time + 10;
sleep 0.1 until (-s "$dir/fake.out") || time > $until;

sub fake { my ($method, $path, $body) = @_;
           my ($r, $d) = bl_request($method => "http://127.0.0.1:$google_port$path",
                                    ($body ? (json => $body) : ()));
           return $d }

open(my $hc, '>', "$dir/httpd.conf") or die $!;
print $hc <<"CONF";
ServerRoot "$dir"
Listen 127.0.0.1:$http_port
ServerName 127.0.0.1
PidFile "$dir/httpd.pid"
DefaultRuntimeDir "$dir"
Mutex file:$dir default
ErrorLog "$dir/error_log"
LogLevel notice
LoadModule mpm_event_module "$moddir/mod_mpm_event.so"
LoadModule authn_core_module "$moddir/mod_authn_core.so"
LoadModule authz_core_module "$moddir/mod_authz_core.so"
LoadModule authz_user_module "$moddir/mod_authz_user.so"
LoadModule dbd_module "$moddir/mod_dbd.so"
LoadModule beautiful_core_module "$ENV{BL_MODULES_DIR}/mod_beautiful_core.so"
LoadModule beautiful_community_module "$ENV{BL_MODULES_DIR}/mod_beautiful_community.so"
# One child: the token cache is per child.
StartServers 1
ServerLimit 1
ThreadsPerChild 16
MinSpareThreads 1
MaxSpareThreads 16
MaxRequestWorkers 16
DBDriver pgsql
DBDParams "host=$ENV{PGHOST} port=$ENV{PGPORT} dbname=$ENV{PGDATABASE} user=$ENV{PGUSER}"
BeautifulRedis $ENV{BL_REDIS_HOST} $ENV{BL_REDIS_PORT} 1000
BeautifulJWTKeyFile "$ENV{BL_JWT_KEY}"
BeautifulJWTIssuer "$ENV{BL_JWT_ISSUER}"
BeautifulJWTAudience "$ENV{BL_JWT_AUDIENCE}"
BeautifulGoogleCalendarURL http://127.0.0.1:$google_port
BeautifulGoogleCredentials "$dir/credentials.json"
BeautifulGoogleCalendarID "$calendar"
BeautifulGoogleTimeout 3s
BeautifulVideoTaskInterval 500ms
BeautifulVideoTestHooks On
<Location /api/v1>
    SetHandler beautiful-community
    BeautifulAPI On
    AuthType Beautiful
    Require valid-user
</Location>
CONF
close $hc;
system($httpd, '-f', "$dir/httpd.conf", '-k', 'start') == 0 or die 'httpd did not start';
$until = time + 10;
sleep 0.1 until (-s "$dir/httpd.pid" && IO::Socket::INET->new("127.0.0.1:$http_port")) ||
                time > $until;

sub api { my ($who, $method, $path, %opt) = @_;
          return bl_request($method => "http://127.0.0.1:$http_port/api/v1$path",
                            token => $who->{token}, %opt) }
sub at { my $min = shift;
         return bl_psql_value(qq{SELECT to_char((now() + interval '$min minutes') AT TIME ZONE 'UTC',
                                 'YYYY-MM-DD"T"HH24:MI:SS"Z"')}) }
sub event_id { return $_[0] =~ s/-//gr }

my $doctor = cm_user(role => 'doctor');
my ($patient, $other) = cm_users(2);

# ---------------------------------------------------------------- the fake checks

my $forged = bl_request(POST => "http://127.0.0.1:$google_port/token",
                        body => 'grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer'
                              . '&assertion=eyJhbGciOiJub25lIn0.e30.',
                        content_type => 'application/x-www-form-urlencoded');
is $forged->code, 400, 'the fake refuses an unsigned assertion';
my ($r) = bl_request(POST => "http://127.0.0.1:$google_port/calendar/v3/calendars/x/events",
                     json => {}, token => 'made-up');
is $r->code, 401, '... and a token it did not issue';
fake(POST => '/_fake/reset');

# ---------------------------------------------------------------- insert

my ($res, $data) = api($doctor, POST => '/video-sessions',
                       json => { title => 'Ask the oncologist', description => 'Open Q&A',
                                 scheduled_at => at(90), duration_minutes => 30 });
is $res->code, 201, 'create with Google configured: 201' or diag $res->content;
my $s1 = $data->{data};
like $s1->{meet_link}, qr{^https://meet\.google\.com/[a-z0-9]{3}-[a-z0-9]{4}-[a-z0-9]{3}$},
    'the Meet link from conferenceData.entryPoints';
is $s1->{link_source}, 'google', '... from Google';
is $s1->{calendar}, 'synced', '... the calendar in step';
like $data->{message}, qr/Google Meet/, 'the host is told';

my @log = @{ fake(GET => '/_fake/log') };
my @tokens = grep { $_->{path} eq '/token' } @log;
is scalar @tokens, 1, 'one token request';
is_deeply $tokens[0]{problems}, [], '... whose assertion verified (RS256, kid, iss, aud, scope)';
my ($insert) = grep { $_->{method} eq 'POST' && $_->{path} =~ m{/events$} } @log;
ok $insert, 'an events.insert';
is_deeply $insert->{problems}, [], '... that the fake found nothing wrong with';
like $insert->{path}, qr{/calendars/sessions%40group\.calendar\.google\.com/events$},
    '... on the configured calendar';
is $insert->{query}, 'conferenceDataVersion=1', '... with conferenceDataVersion=1';
my $body = bl_json($insert->{body});
is $body->{conferenceData}{createRequest}{requestId}, $s1->{id}, '... requestId the session id';
is $body->{conferenceData}{createRequest}{conferenceSolutionKey}{type}, 'hangoutsMeet',
    '... a Meet conference';
is $body->{id}, event_id($s1->{id}), '... the event id from the session id';
is $body->{summary}, 'Ask the oncologist', '... the title';

($res, $data) = api($patient, GET => "/video-sessions/$s1->{id}");
ok !defined $data->{data}{meet_link}, 'a non-participant does not see the Meet link';
($res, $data) = api($patient, POST => "/video-sessions/$s1->{id}/join");
is $data->{data}{meet_link}, $s1->{meet_link}, 'a participant does';

($res) = api($doctor, POST => '/video-sessions',
             json => { title => 'Second', scheduled_at => at(100) });
is $res->code, 201, 'a second session';
is scalar(grep { $_->{path} eq '/token' } @{ fake(GET => '/_fake/log') }), 1,
    '... on the cached token (one child)';

# ---------------------------------------------------------------- patch, delete

($res) = api($doctor, PUT => "/video-sessions/$s1->{id}", json => { title => 'Ask the surgeon' });
is $res->code, 200, 'edit: 200';
my $events = fake(GET => '/_fake/events');
is $events->{event_id($s1->{id})}{summary}, 'Ask the surgeon', 'the event is patched';
($res) = api($doctor, DELETE => "/video-sessions/$s1->{id}");
is $res->code, 204, 'cancel: 204';
$events = fake(GET => '/_fake/events');
is $events->{event_id($s1->{id})}{status}, 'cancelled', 'the event is deleted';

# ---------------------------------------------------------------- Google fails

fake(POST => '/_fake/fail', { count => 2, status => 500 });
($res, $data) = api($doctor, POST => '/video-sessions',
                    json => { title => 'Stormy day', scheduled_at => at(120) });
is $res->code, 201, 'Google answering 500: still 201' or diag $res->content;
my $s3 = $data->{data};
like $s3->{meet_link}, qr{^https://meet\.jit\.si/BeautifulLife-[0-9a-f]{32}$},
    '... with a link from the template';
is $s3->{link_source}, 'template', '... said so';
is $s3->{calendar}, 'insert', '... the insert pending';
like $data->{message}, qr/retried in the background/, 'the host is told';
my ($after);
$until = time + 15;
while (time < $until) {
    ($res, $data) = api($doctor, GET => "/video-sessions/$s3->{id}");
    $after = $data->{data};
    last if $after->{calendar} eq 'synced';
    sleep 0.3;
}
is $after->{calendar}, 'synced', 'the background retry went through';
like $after->{meet_link}, qr{^https://meet\.google\.com/}, '... and the session has its Meet link';
my @inserts = grep { $_->{method} eq 'POST' && $_->{body} =~ /\Q$s3->{id}\E/ }
              @{ fake(GET => '/_fake/log') };
diag explain [map { { q => $_->{query}, f => $_->{failed_on_purpose}, p => $_->{problems} } } @inserts]
    unless $s3->{link_source} eq 'template';
ok @inserts >= 3, 'two failed attempts, then the retry (' . scalar(@inserts) . ' inserts)';
is scalar(grep { $_->{problems} && @{ $_->{problems} } } @inserts), 0,
    '... every one well-formed';
is scalar(grep { $_ eq event_id($s3->{id}) } keys %{ fake(GET => '/_fake/events') }), 1,
    '... one event for the session';

open(my $el, '<', "$dir/error_log");
my @lines = <$el>;
ok !grep(/Segmentation|exit signal/, @lines), 'no crash';
ok !grep(/ya29\.|BEGIN PRIVATE/, @lines), 'no token or key in the log';

done_testing();

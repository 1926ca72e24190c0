# mod_beautiful_notify: the SMTP transport, against a loopback SMTP server
# (t/tools/smtp_sink.py, Python's smtpd) and against a port where nothing
# listens.
#
# The transport is a server-wide setting and the shared test server uses the
# file sink, so this suite runs its own small httpd (mpm, mod_dbd,
# mod_beautiful_core for bl_task_register, and mod_beautiful_notify) on its
# own database: the shared server's worker never sees these rows, and this
# one never sees the shared server's.
use strict;
use warnings FATAL => 'all';

use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use File::Temp qw(tempdir);
use FindBin ();
use Time::HiRes qw(sleep time);
use BL::Test;

plan skip_all => 'mod_beautiful_notify not loaded'
    unless " $ENV{BL_LOADED_MODULES} " =~ / notify /;
plan tests => 20;

my $fake = $ENV{BL_FAKE_PORT_BASE} or die 'BL_FAKE_PORT_BASE is not set';
my ($smtp_port, $dead_port, $http_port) = ($fake + 15, $fake + 16, $fake + 17);
my $dir = tempdir('bl-notify-smtp.XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $db = "notify_smtp_$$";
my $httpd = Apache::Test::vars('httpd');
my $moddir = `apxs -q LIBEXECDIR 2>/dev/null` || '/usr/lib/apache2/modules';
chomp $moddir;
my $core_so = "$ENV{BL_MODULES_DIR}/mod_beautiful_core.so";
my $so = "$ENV{BL_MODULES_DIR}/mod_beautiful_notify.so";
my $from = 'no-reply@beautiful-life.test';
my $sink_pid;

# ---------------------------------------------------------------- helpers

sub psql_admin {
    my $sql = shift;
    system('psql', '-X', '-q', '-U', 'postgres', '-d', 'postgres',
           '-v', 'ON_ERROR_STOP=1', '-c', $sql) == 0 or die "psql: $sql";
}

sub create_database {
    psql_admin(qq{CREATE DATABASE "$db" OWNER beautiful TEMPLATE template0});
    my $migrate = "$ENV{BL_SRC_DIR}/scripts/migrate";
    system($migrate, '-q', '--dsn',
           "host=$ENV{PGHOST} port=$ENV{PGPORT} dbname=$db user=beautiful") == 0
        or die 'migrate failed';
}

sub write_conf {
    my (%d) = @_;
    my $conf = "$dir/httpd.conf";
    open(my $fh, '>', $conf) or die "$conf: $!";
    print $fh <<"CONF";
ServerRoot "$dir"
Listen 127.0.0.1:$http_port
ServerName 127.0.0.1
PidFile "$dir/httpd.pid"
DefaultRuntimeDir "$dir"
Mutex file:$dir default
ErrorLog "$dir/error_log"
LogLevel notice
LoadModule mpm_event_module "$moddir/mod_mpm_event.so"
LoadModule authz_core_module "$moddir/mod_authz_core.so"
LoadModule dbd_module "$moddir/mod_dbd.so"
LoadModule beautiful_core_module "$core_so"
LoadModule beautiful_notify_module "$so"
StartServers 1
DBDriver pgsql
DBDParams "host=$ENV{PGHOST} port=$ENV{PGPORT} dbname=$db user=beautiful"
BeautifulMailTransport smtp
BeautifulMailFrom "Beautiful Life Test <$from>"
BeautifulSMTPStartTLS off
BeautifulSMTPTimeout 2s 5s
BeautifulNotifyInterval 200ms
BeautifulSMTPURL smtp://127.0.0.1:$d{port}
BeautifulNotifyBackoff $d{backoff}
BeautifulNotifyMaxAttempts $d{max_attempts}
CONF
    close $fh;
    return $conf;
}

sub start_httpd {
    my $conf = write_conf(@_);
    unlink "$dir/httpd.pid";
    system($httpd, '-f', $conf, '-k', 'start') == 0 or die 'httpd did not start';
    my $until = time + 10;
    sleep 0.1 until -s "$dir/httpd.pid" || time > $until;
    return -s "$dir/httpd.pid";
}

sub stop_httpd {
    return unless -s "$dir/httpd.pid";
    system($httpd, '-f', "$dir/httpd.conf", '-k', 'stop');
    my $until = time + 10;
    sleep 0.1 while -e "$dir/httpd.pid" && time < $until;
}

sub start_sink {
    my $out = "$dir/received";
    my $pidfile = "$dir/sink.pid";
    $sink_pid = fork // die "fork: $!";
    if (!$sink_pid) {
        exec('/usr/bin/python3', "$FindBin::Bin/tools/smtp_sink.py",
             $smtp_port, $out, $pidfile) or die "exec: $!";
    }
    my $until = time + 10;
    sleep 0.1 until -s $pidfile || time > $until;
    return $out;
}

sub row {
    my $id = shift;
    local $ENV{PGDATABASE} = $db;
    my ($r) = bl_psql(
        q{SELECT status, attempts, last_error, next_attempt_at > now()
          FROM notifications WHERE id = $1}, $id);
    return { status => $r->[0], attempts => $r->[1], last_error => $r->[2],
             later => $r->[3] eq 't' };
}

sub wait_for {
    my ($id, $cond, $secs) = @_;
    my $until = time + ($secs // 15);
    my $r;
    while (time < $until) {
        $r = row($id);
        return $r if $cond->($r);
        sleep 0.2;
    }
    return $r;
}

sub add_notification {
    my ($uid, $title, $body) = @_;
    local $ENV{PGDATABASE} = $db;
    return bl_psql_value(
        q{INSERT INTO notifications (user_id, channel, type, title, body)
          VALUES ($1, 'email', 'test.smtp', $2, $3) RETURNING id},
        $uid, $title, $body);
}

sub crashes {
    open(my $fh, '<', "$dir/error_log") or return ();
    return grep { /exit signal|Segmentation fault/ } <$fh>;
}

END {
    stop_httpd();
    kill 'TERM', $sink_pid if $sink_pid;
    waitpid $sink_pid, 0 if $sink_pid;
    eval { psql_admin(qq{DROP DATABASE IF EXISTS "$db" WITH (FORCE)}) };
}

# ---------------------------------------------------------------- setup
create_database();
my $email = 'smtp-' . bl_uuid() . '@example.org';
my $uid = do {
    local $ENV{PGDATABASE} = $db;
    bl_psql_value(q{INSERT INTO users (email, password_hash) VALUES ($1, 'x') RETURNING id},
                  $email);
};
my $body = "First line\n.\n..two dots\nLast line";
my $nid = add_notification($uid, 'Your appointment', $body);

# ---------------------------------------------------------------- relay down
ok start_httpd(port => $dead_port, backoff => '60s 60s', max_attempts => 3),
    'worker httpd started, SMTP relay unreachable';
my $r = wait_for($nid, sub { $_[0]{attempts} >= 1 && $_[0]{status} eq 'pending' });
is $r->{status}, 'pending', 'relay down: the row goes back to pending';
is $r->{attempts}, 1, 'attempts counted';
like $r->{last_error} // '', qr/^smtp: /, 'last_error says what failed';
ok index($r->{last_error} // '', $email) < 0, 'last_error has no address';
ok $r->{later}, 'next attempt scheduled after the backoff';
sleep 1;
is row($nid)->{attempts}, 1, 'no retry before the backoff';
stop_httpd();

# ---------------------------------------------------------------- relay up
my $received = start_sink();
{
    local $ENV{PGDATABASE} = $db;
    bl_psql(q{UPDATE notifications SET next_attempt_at = now() WHERE id = $1}, $nid);
}
ok start_httpd(port => $smtp_port, backoff => '60s 60s', max_attempts => 3),
    'worker httpd restarted against the loopback SMTP server';
$r = wait_for($nid, sub { $_[0]{status} !~ /^(pending|sending)$/ });
is $r->{status}, 'sent', 'relay up: the notification is sent';
is $r->{attempts}, 2, 'on the second attempt';

my @files = glob "$received/*.json";
is scalar @files, 1, 'the SMTP server received one message';
my $msg = do { local $/; open(my $fh, '<', $files[0] // '/dev/null'); bl_json(<$fh> // '') } || {};
is $msg->{mail_from}, $from, 'envelope sender is BeautifulMailFrom\'s address';
is_deeply $msg->{rcpt_to}, [$email], 'envelope recipient is the user';
my ($head, $got_body) = split /\r?\n\r?\n/, $msg->{data} // '', 2;
like $head, qr/^To: \Q$email\E$/m, 'To header';
like $head, qr/^Subject: Your appointment$/m, 'Subject header';
like $head, qr/^Message-ID: <\Q$nid\E\@beautiful-life\.test>$/m, 'Message-ID header';
$got_body =~ s/\r\n/\n/g if defined $got_body;
is $got_body, $body, 'body intact through SMTP (lines starting with dots included)';
stop_httpd();

# ---------------------------------------------------------------- giving up
my $nid_fail = add_notification($uid, 'Never delivered', 'x');
ok start_httpd(port => $dead_port, backoff => '1s 1s', max_attempts => 2),
    'worker httpd restarted, relay unreachable, 2 attempts allowed';
$r = wait_for($nid_fail, sub { $_[0]{status} eq 'failed' }, 20);
is_deeply [ @{$r}{qw(status attempts)} ], ['failed', 2],
    'marked failed after BeautifulNotifyMaxAttempts';
stop_httpd();

is_deeply [ crashes() ], [], 'no httpd child crashed';

# Shared helpers of the t/reminder_*.t suites (mod_beautiful_reminder),
# loaded with  require "$FindBin::Bin/reminder_helpers.pl";
use strict;
use warnings;
use Time::HiRes qw(sleep time);
use POSIX qw(strftime);
use BL::Test;

sub reminder_loaded {
    return (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / reminder /;
}

# A user with a live session: { id, email, token }.
sub rm_user {
    my (%opt) = @_;
    my $email = $opt{email} // 'rem-' . bl_uuid() . '@example.test';
    my $id = bl_psql_value(
        q{INSERT INTO users (email, password_hash, role, first_name)
          VALUES ($1, 'x', $2::user_role, $3) RETURNING id},
        $email, $opt{role} // 'patient', $opt{first_name} // 'Asha');
    my $sid = bl_uuid();
    bl_session_create($sid, $id, 3600);
    my $token = bl_mint_jwt(sub => $id, sid => $sid, role => $opt{role} // 'patient');
    return { id => $id, email => $email, token => $token };
}

# bl_request as $user (undef: anonymous); with now => 'RFC 3339' the
# request's clock (X-BL-Test-Now).
sub rm_api {
    my ($method, $path, $user, %opt) = @_;
    my %h = %{ delete $opt{headers} || {} };
    $h{'X-BL-Test-Now'} = delete $opt{now} if $opt{now};
    return bl_request($method, "/api/v1$path",
                      ($user ? (token => $user->{token}) : ()), headers => \%h, %opt);
}

# The test clock file (BeautifulTestClock logs/reminder-clock).
sub rm_clock_path {
    require Apache::Test;
    return Apache::Test::vars('serverroot') . '/logs/reminder-clock';
}

# Freezes the clock of requests and of the scheduler at $rfc3339.
sub rm_set_clock {
    my ($t) = @_;
    my $path = rm_clock_path();
    open my $fh, '>', "$path.tmp" or die "clock: $!";
    print $fh "$t\n";
    close $fh;
    rename "$path.tmp", $path or die "clock: $!";
}

sub rm_clear_clock { unlink rm_clock_path() }

# Epoch seconds <-> RFC 3339 UTC.
sub rm_time { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($_[0])) }

sub rm_epoch {
    my ($t) = @_;
    return bl_psql_value(q{SELECT extract(epoch FROM $1::timestamptz)::bigint}, $t);
}

# Creates a reminder for $user; returns its data (dies unless 201).
sub rm_create {
    my ($user, $body, %opt) = @_;
    my ($res, $data) = rm_api(POST => '/reminders', $user, json => $body, %opt);
    die 'create: ' . $res->code . ' ' . $res->content unless $res->code == 201;
    return $data->{data};
}

# Polls $check (a sub returning true when done) for up to $secs seconds.
sub rm_wait {
    my ($check, $secs) = @_;
    my $until = time + ($secs // 10);
    while (time < $until) {
        my $v = $check->();
        return $v if $v;
        sleep 0.2;
    }
    return $check->();
}

# The reminder_logs rows of a reminder: [occurrence, status, nag_count].
sub rm_logs {
    my ($rid) = @_;
    return bl_psql(
        q{SELECT to_char(scheduled_for AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                 status::text, nag_count FROM reminder_logs WHERE reminder_id = $1
          ORDER BY scheduled_for}, $rid);
}

# Outbox rows for a reminder: [type, channel, user_id].
sub rm_outbox {
    my ($rid) = @_;
    return bl_psql(
        q{SELECT type, channel::text, user_id FROM notifications
          WHERE data->>'reminder_id' = $1 ORDER BY created_at, type, channel}, $rid);
}

# Waits until the scheduler has run a pass after now (its next_fire_at
# moved past $occurrence or a log row exists for it).
sub rm_wait_log {
    my ($rid, $occurrence, $secs) = @_;
    return rm_wait(sub {
        bl_psql_value(q{SELECT status::text FROM reminder_logs
                        WHERE reminder_id = $1 AND scheduled_for = $2::timestamptz},
                      $rid, $occurrence);
    }, $secs);
}

# ---------------------------------------------------------------- a second host

# A second httpd on the same database, Redis and clock file, with only the
# modules and mod_beautiful_reminder's test settings (no test vhosts), on
# loopback port BL_FAKE_PORT_BASE + 12: another host of the same site.
sub rm_second_httpd_start {
    require Apache::Test;
    my $root = Apache::Test::vars('serverroot');
    my $dir = "$root/logs/second-httpd";
    mkdir $dir unless -d $dir;
    my $port = $ENV{BL_FAKE_PORT_BASE} + 12;
    my $mods = '/usr/lib/apache2/modules';
    my @defines = map { qq{Define $_ "$ENV{$_}"} } grep { defined $ENV{$_} }
        qw(BL_DB_PARAMS BL_REDIS_HOST BL_REDIS_PORT BL_JWT_KEY BL_JWT_ISSUER BL_JWT_AUDIENCE
           BL_PUBLIC_URL BL_CORS_ORIGINS BL_MAIL_DIR BL_UPLOAD_DIR BL_STATE_DIR BL_STORAGE_KEY
           BL_DATA_DIR BL_FAKE_PORT_BASE);
    # our LoadModule and Include lines, without the other test.d confs
    open my $in, '<', $ENV{BL_MODULES_CONF} or die "modules conf: $!";
    my @ours = grep { !m{/t/conf/test\.d/} || m{/test\.d/reminder\.conf} } <$in>;
    close $in;
    open my $out, '>', "$dir/httpd.conf" or die "second httpd conf: $!";
    print $out join("\n",
        qq{ServerRoot "$root"}, 'ServerName 127.0.0.1', "Listen 127.0.0.1:$port",
        qq{PidFile "$dir/httpd.pid"}, qq{ErrorLog "$dir/error_log"},
        qq{DefaultRuntimeDir "$dir"}, 'LogLevel notice',
        "LoadModule mpm_event_module $mods/mod_mpm_event.so",
        "LoadModule authn_core_module $mods/mod_authn_core.so",
        "LoadModule authz_core_module $mods/mod_authz_core.so",
        "LoadModule authz_user_module $mods/mod_authz_user.so",
        "LoadModule authz_host_module $mods/mod_authz_host.so",
        'StartServers 1', 'ServerLimit 1', 'ThreadsPerChild 4', 'MinSpareThreads 1',
        'MaxSpareThreads 4', 'MaxRequestWorkers 4',
        @defines, 'Define BL_TEST', ''), @ours;
    close $out;
    my $httpd = $ENV{APACHE_TEST_HTTPD} || '/usr/sbin/apache2';
    system($httpd, '-f', "$dir/httpd.conf", '-k', 'start') == 0 or die "second httpd did not start";
    my $ok = rm_wait(sub {
        my ($res) = bl_request(GET => "http://127.0.0.1:$port/health", timeout => 2);
        $res->code == 200;
    }, 15);
    return $ok ? { dir => $dir, port => $port } : undef;
}

sub rm_second_httpd_stop {
    my ($h) = @_;
    return unless $h;
    open my $fh, '<', "$h->{dir}/httpd.pid" or return;
    my $pid = <$fh>;
    close $fh;
    chomp $pid;
    kill 'TERM', $pid if $pid;
    rm_wait(sub { !kill 0, $pid }, 10);
}

1;

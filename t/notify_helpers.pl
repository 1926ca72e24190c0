# Shared helpers of the t/notify_*.t suites (mod_beautiful_notify), loaded with
#   require "$FindBin::Bin/notify_helpers.pl";
use strict;
use warnings;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(sleep time);
use BL::Test;

sub notify_loaded {
    return (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / notify /;
}

# A user with a live session: { id, token, email }.
sub notify_user {
    my (%opt) = @_;
    my $email = 'notify-' . bl_uuid() . '@example.test';
    my $id = bl_psql_value(
        q{INSERT INTO users (email, password_hash, role) VALUES ($1, 'x', $2::user_role)
          RETURNING id}, $email, $opt{role} // 'patient');
    my ($token, $claims) = bl_mint_jwt(sub => $id, role => $opt{role} // 'patient');
    bl_session_create($claims->{sid}, $id) or die 'session';
    return { id => $id, token => $token, email => $email };
}

# Inserts an outbox row as another module's transaction would; returns its id.
sub notify_add {
    my (%n) = @_;
    return bl_psql_value(
        q{INSERT INTO notifications (user_id, channel, type, title, body, data)
          VALUES ($1, $2::notification_channel, $3, $4, $5, $6::jsonb) RETURNING id},
        $n{user}, $n{channel} // 'in_app', $n{type} // 'reminder.due',
        $n{title} // 'Time for your medicine', $n{body} // 'Take 1 tablet',
        $n{data});
}

sub notify_row {
    my $id = shift;
    my ($r) = bl_psql(
        q{SELECT status, attempts, coalesce(last_error, ''), coalesce(skip_reason, ''),
                 coalesce(provider_id, ''), seq, extract(epoch FROM next_attempt_at)::bigint
          FROM notifications WHERE id = $1}, $id);
    return undef unless $r;
    return { status => $r->[0], attempts => $r->[1], last_error => $r->[2],
             skip_reason => $r->[3], provider_id => $r->[4], seq => $r->[5],
             next_attempt_at => $r->[6] };
}

# Polls (bounded) until the row's status is one of @want; returns the row.
sub notify_wait {
    my ($id, $secs, @want) = @_;
    @want = qw(sent failed skipped) unless @want;
    my $until = time + ($secs // 15);
    my $row;
    while (time < $until) {
        $row = notify_row($id);
        return $row if $row && grep { $row->{status} eq $_ } @want;
        sleep 0.1;
    }
    return $row;
}

# ---------------------------------------------------------------- SSE client

# Opens GET /api/v1/notifications/stream; returns { sock, status, headers,
# buf } after the response head (or undef when the connect fails).
sub sse_open {
    my (%opt) = @_;
    my $port = Apache::Test::vars('port');
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                     Proto => 'tcp', Timeout => 5) or return undef;
    my $path = $opt{path} // '/api/v1/notifications/stream';
    my $req = "GET $path HTTP/1.1\r\nHost: 127.0.0.1:$port\r\nAccept: text/event-stream\r\n";
    $req .= "Authorization: Bearer $opt{token}\r\n" if $opt{token};
    $req .= "Last-Event-ID: $opt{last_id}\r\n" if defined $opt{last_id};
    $req .= "\r\n";
    print $sock $req;
    my $c = { sock => $sock, buf => '', sel => IO::Select->new($sock) };
    my $until = time + ($opt{timeout} // 10);
    while ($c->{buf} !~ /\r\n\r\n/ && time < $until) {
        last unless sse_fill($c, $until - time);
    }
    my ($head, $rest) = split /\r\n\r\n/, $c->{buf}, 2;
    return $c unless defined $head;
    my ($status_line, @lines) = split /\r\n/, $head;
    ($c->{status}) = $status_line =~ m{^HTTP/1\.\d (\d+)};
    $c->{headers} = { map { my ($k, $v) = split /:\s*/, $_, 2; (lc $k => $v) } @lines };
    $c->{buf} = $rest // '';
    $c->{chunked} = ($c->{headers}{'transfer-encoding'} // '') =~ /chunked/i;
    $c->{raw} = $c->{buf};
    $c->{buf} = '';
    sse_dechunk($c);
    return $c;
}

sub sse_fill {
    my ($c, $wait) = @_;
    return 0 if $wait <= 0 || !$c->{sel}->can_read($wait);
    my $n = sysread($c->{sock}, my $chunk, 65536);
    unless ($n) { $c->{closed} = 1; return 0 }
    if (defined $c->{raw}) { $c->{raw} .= $chunk; sse_dechunk($c) }
    else { $c->{buf} .= $chunk }
    return 1;
}

# Moves complete chunks (or everything, when not chunked) from raw to buf.
sub sse_dechunk {
    my $c = shift;
    unless ($c->{chunked}) { $c->{buf} .= $c->{raw}; $c->{raw} = ''; return }
    while ($c->{raw} =~ /^([0-9a-fA-F]+)\r\n/) {
        my ($hex, $len) = ($1, hex $1);
        my $need = length($hex) + 2 + $len + 2;
        last if length($c->{raw}) < $need;
        $c->{buf} .= substr($c->{raw}, length($hex) + 2, $len);
        substr($c->{raw}, 0, $need) = '';
        $c->{eof} = 1 if $len == 0;
    }
}

# Reads until $count events arrived or $secs passed; returns the events
# ({ id, event, data, at }) and counts heartbeats in $c->{heartbeats}.
sub sse_events {
    my ($c, $count, $secs) = @_;
    my $until = time + $secs;
    my @events;
    while (1) {
        while ($c->{buf} =~ s/^(.*?)\n\n//s) {
            my $block = $1;
            my %ev;
            for my $line (split /\n/, $block) {
                if ($line =~ /^:/) { $c->{heartbeats}++ if $line =~ /heartbeat/; next }
                my ($k, $v) = $line =~ /^(\w+): ?(.*)$/ or next;
                $ev{$k} = exists $ev{$k} && $k eq 'data' ? "$ev{$k}\n$v" : $v;
            }
            next unless exists $ev{data};
            $ev{at} = time;
            push @events, \%ev;
        }
        last if @events >= $count || time >= $until || $c->{closed};
        sse_fill($c, $until - time);
    }
    return @events;
}

sub sse_close { my $c = shift; close $c->{sock} if $c && $c->{sock} }

# JSON booleans as plain 1/0, so is_deeply compares them with numbers.
sub unbool {
    my $v = shift;
    return [map { unbool($_) } @$v] if ref $v eq 'ARRAY';
    return { map { ($_ => unbool($v->{$_})) } keys %$v } if ref $v eq 'HASH';
    return $v ? 1 : 0 if ref $v && "$v" =~ /^(?:1|0|true|false)$/;
    return $v;
}
1;

# Runs t/tools/openapi_check.py validate on a response: true when the answer
# matches what docs/openapi.yaml documents for METHOD PATH (spec template).
sub notify_conforms {
    my ($res, $method, $path) = @_;
    require File::Temp;
    my ($fh, $file) = File::Temp::tempfile(UNLINK => 1);
    binmode $fh;
    print {$fh} $res->content;
    close $fh;
    my $tool = "$ENV{BL_SRC_DIR}/t/tools/openapi_check.py";
    my $ct = $res->header('Content-Type') // 'application/json';
    my $out = `/usr/bin/python3 '$tool' --spec '$ENV{BL_SRC_DIR}/docs/openapi.yaml' validate $method '$path' ${\ $res->code} '$ct' < '$file' 2>&1`;
    Test::More::diag($out) if $?;
    return $? == 0;
}

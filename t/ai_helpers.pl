# Shared helpers of the t/ai_*.t suites (mod_beautiful_ai), loaded with
#   require "$FindBin::Bin/ai_helpers.pl";
# The model is t/tools/openai_fake.py on $BL_AI_FAKE_PORT, started here for
# the suite and stopped at its end.
use strict;
use warnings;
use FindBin ();
use JSON::PP ();
use LWP::UserAgent ();
use HTTP::Request ();
use Time::HiRes qw(sleep time);
use BL::Test;

our $AI_KEY = 'test-ai-key-5c1f';
our $AI_MODEL = 'bl-test-model';
my $fake_pid;
my $JSON = JSON::PP->new->utf8->canonical;
# Failure details where the run's log shows them.
Test::More->builder->failure_output(\*STDERR);

sub ai_loaded {
    return (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / ai /;
}

sub fake_url { return "http://127.0.0.1:$ENV{BL_AI_FAKE_PORT}" . shift }

# Starts the fake model (once per suite).
sub start_fake {
    my $dir = $ENV{TMPDIR} && -w $ENV{TMPDIR} ? $ENV{TMPDIR} : '/tmp';
    my $pidfile = "$dir/openai_fake.$$.pid";
    unlink $pidfile;
    $fake_pid = fork // die "fork: $!";
    if (!$fake_pid) {
        exec('/usr/bin/python3', "$FindBin::Bin/tools/openai_fake.py", $ENV{BL_AI_FAKE_PORT},
             $AI_KEY, $AI_MODEL, $pidfile) or die "exec: $!";
    }
    my $until = time + 10;
    sleep 0.05 until -s $pidfile || time > $until;
    die 'the fake model did not start' unless -s $pidfile;
    unlink $pidfile;
}

END {
    # waitpid sets $?, which would become the suite's exit status.
    local $?;
    if ($fake_pid) {
        kill 'TERM', $fake_pid;
        waitpid $fake_pid, 0;
    }
}

sub fake_call {
    my ($method, $path, $body) = @_;
    my $req = HTTP::Request->new($method => fake_url($path));
    if ($body) {
        $req->content($JSON->encode($body));
        $req->header('Content-Type' => 'application/json');
    }
    my $res = LWP::UserAgent->new(timeout => 10)->request($req);
    die "fake $path: " . $res->status_line unless $res->is_success;
    return $JSON->decode($res->content);
}

# Forgets what the fake received, and the breaker's state in Redis.
sub fake_reset {
    fake_call(POST => '/_control/reset', {});
    bl_redis('DEL', 'bl:ai:breaker:open', 'bl:ai:breaker:fails');
}
sub fake_modes { fake_call(POST => '/_control/modes', { modes => [@_] }) }
sub fake_requests { return @{ fake_call(GET => '/_control/requests') } }

# A user made directly in the database (no argon2: these suites are about
# the assistant), with a session and an access token.
sub ai_user {
    my (%opt) = @_;
    my $email = 'ai-' . bl_uuid() . '@example.test';
    my $id = bl_psql_value(
        q{INSERT INTO users (email, password_hash, first_name, last_name, date_of_birth,
                             country, cancer_type, treatment_stage)
          VALUES ($1, $8, $2, $3, $4, $5, $6, $7) RETURNING id},
        $email, $opt{first_name} // 'Priya', $opt{last_name} // 'Raman',
        $opt{date_of_birth} // '1980-03-05', $opt{country}, $opt{cancer_type} // 'breast',
        $opt{treatment_stage} // 'in_treatment',
        # No password logs in; unique, so no other suite finds it anywhere.
        '!no-login:' . join('', map { sprintf '%02x', int rand 256 } 1 .. 16));
    my $sid = bl_uuid();
    bl_psql(q{INSERT INTO sessions (id, user_id, expires_at) VALUES ($1, $2, now() + interval '1 hour')},
            $sid, $id);
    bl_session_create($sid, $id, 900);
    my $token = bl_mint_jwt(sub => $id, sid => $sid);
    return { id => $id, email => $email, token => $token };
}

# POST /api/v1/ai/<path> as $user.
sub ai_post {
    my ($user, $path, $json, %opt) = @_;
    return bl_request(POST => "/api/v1/ai/$path", json => $json, token => $user->{token}, %opt);
}

sub ai_get {
    my ($user, $path, %opt) = @_;
    return bl_request(GET => "/api/v1/ai/$path", token => $user->{token}, %opt);
}

# Passes when the answer matches what docs/openapi.yaml documents for
# METHOD PATH (a spec template) and its status (t/tools/openapi_check.py).
sub ai_conforms {
    my ($res, $method, $path, $name) = @_;
    require File::Temp;
    require IPC::Open3;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my ($fh, $file) = File::Temp::tempfile(UNLINK => 1);
    binmode $fh;
    print {$fh} $res->content;
    close $fh;
    open(my $in, '<', $file) or die "$file: $!";
    my $pid = IPC::Open3::open3('<&' . fileno($in), my $out, undef, '/usr/bin/python3',
                                "$ENV{BL_SRC_DIR}/t/tools/openapi_check.py", '--spec',
                                "$ENV{BL_SRC_DIR}/docs/openapi.yaml", 'validate', $method, $path,
                                $res->code, scalar($res->header('Content-Type') // 'application/json'));
    my $text = do { local $/; <$out> } // '';
    waitpid $pid, 0;
    Test::More::ok($? == 0, "$name: matches the spec for $method $path " . $res->code)
        or Test::More::diag($text);
}

# The URL of $path on the virtual host without a model.
sub unconfigured_url { return "http://127.0.0.1:$ENV{BL_AI_TEST_PORT}" . shift }

# The ledger rows of a user, oldest first, as hashes.
sub ledger_rows {
    my $uid = shift;
    my @cols = qw(kind prompt response model prompt_tokens completion_tokens latency_ms error
                  conversation_id cost_usd triage);
    my @rows = bl_psql('SELECT ' . join(', ', @cols)
                       . ' FROM ai_interactions WHERE user_id = $1 ORDER BY created_at, id', $uid);
    return map { my $r = $_; +{ map { ($cols[$_] => $r->[$_]) } 0 .. $#cols } } @rows;
}

# Reads an SSE response from the server as it arrives: returns the
# events [{event, data (decoded), at (seconds since the request)}] and the
# response. With stop_after => N the connection is closed after N token
# events (the client goes away).
sub ai_stream {
    my ($user, $json, %opt) = @_;
    require IO::Socket::INET;
    my $sock = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $opt{port}
                                     // Apache::TestRequest::hostport() =~ s/.*://r,
                                     Timeout => 10) or die "connect: $!";
    my $body = $JSON->encode($json);
    my $start = time;
    print $sock "POST /api/v1/ai/chat HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        . "Authorization: Bearer $user->{token}\r\nContent-Type: application/json\r\n"
        . ($opt{accept} ? "Accept: $opt{accept}\r\n" : '')
        . 'Content-Length: ' . length($body) . "\r\nConnection: close\r\n\r\n" . $body;
    my ($raw, $sse, $head, @events) = ('', '', undef);
    my $tokens = 0;
    while (1) {
        my $n = sysread($sock, my $chunk, 65536);
        last unless $n;
        $raw .= $chunk;
        if (!defined $head) {
            next unless $raw =~ s/\A(.*?\r\n\r\n)//s;
            $head = $1;
        }
        # Chunked framing: take every whole chunk.
        while ($raw =~ /\A([0-9a-fA-F]+)\r\n/ && length($raw) >= length($1) + 2 + hex($1) + 2) {
            my $size = hex $1;
            substr($raw, 0, length($1) + 2, '');
            $sse .= substr($raw, 0, $size, '');
            substr($raw, 0, 2, '');
        }
        while ($sse =~ s/\A\s*event: (\w+)\ndata: ([^\n]*)\n\n//) {
            push @events, { event => $1, data => JSON::PP->new->utf8->decode($2),
                            at => time - $start };
            $tokens++ if $1 eq 'token';
        }
        if ($opt{stop_after} && $tokens >= $opt{stop_after}) {
            close $sock;
            return (\@events, $head);
        }
    }
    close $sock;
    return (\@events, $head);
}

1;

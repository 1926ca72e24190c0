package BL::Test;

# Shared helpers for the Apache::Test suites in t/. The environment they read
# is exported by scripts/check (see README.md, "Tests").

use strict;
use warnings;

use Exporter 'import';
use Carp qw(croak);
use Encode ();
use JSON::PP ();
use LWP::UserAgent ();
use HTTP::Request ();
use IPC::Open3 qw(open3);
use Symbol qw(gensym);
use Apache::Test ();
use Apache::TestRequest ();

our @EXPORT = qw(
    bl_request bl_url bl_tls_url bl_json
    bl_psql bl_psql_value
    bl_redis
    bl_mint_jwt bl_jwt_kid bl_session_create bl_uuid
    bl_mail_messages
    bl_stack
    bl_error_log_path bl_error_log_mark bl_error_log_since bl_error_log_crashes
    bl_access_log_path
);

my $JSON = JSON::PP->new->utf8->canonical->allow_nonref;
my $PYTHON = $ENV{BL_PYTHON} || '/usr/bin/python3';

sub _env {
    my $name = shift;
    my $v = $ENV{$name};
    croak "$name is not set (run the suite through scripts/check)"
        unless defined $v && length $v;
    return $v;
}

=head1 NAME

BL::Test - helpers for the Beautiful Life Apache::Test suites

=head1 SYNOPSIS

  use strict; use warnings;
  use Apache::Test qw(-withtestmore);
  use Test::More import => ['!plan'];   # Apache::Test's plan (skips)
  use BL::Test;

  plan tests => 2;
  my ($res, $data) = bl_request(GET => '/health');
  is $res->code, 200;
  ok $data->{status};

=head1 FUNCTIONS

=head2 bl_json($text)

Decodes JSON text (UTF-8 bytes); returns the Perl data or undef when the
text is not JSON.

=cut

sub bl_json {
    my $text = shift;
    return undef unless defined $text && length $text;
    my $data = eval { $JSON->decode($text) };
    return $data;
}

=head2 bl_url($path)

The absolute URL of $path (e.g. C</api/v1/auth/login>) on the test server.

=cut

sub bl_url {
    my $path = shift // '/';
    $path = "/$path" unless $path =~ m{^/};
    return 'http://' . Apache::TestRequest::hostport() . $path;
}

=head2 bl_tls_url($path)

The absolute https URL of $path on the test server's TLS virtual host
(C<https://127.0.0.1:$BL_TLS_PORT>, t/conf/test.d/core_tls.conf). Pass it
to bl_request, which trusts the test certificate (C<$BL_TLS_CERT>).

=cut

sub bl_tls_url {
    my $path = shift // '/';
    $path = "/$path" unless $path =~ m{^/};
    return 'https://127.0.0.1:' . _env('BL_TLS_PORT') . $path;
}

# Records the answer for t/zz_spec_conformance.t when BL_SPEC_CAPTURE
# names a file: API and health routes of the test server only, the body
# kept for JSON answers.
sub _capture {
    my ($req, $res) = @_;
    my $file = $ENV{BL_SPEC_CAPTURE} or return;
    my $uri = $req->uri;
    return unless $uri->scheme eq 'http' && $uri->host_port eq Apache::TestRequest::hostport();
    my $path = $uri->path;
    return unless $path =~ m{^/(?:api/v1/|health|\.well-known/)};
    my $ct = $res->header('Content-Type') // '';
    my $body = $ct =~ /json/i ? Encode::decode('UTF-8', $res->content // '') : undef;
    my $line = JSON::PP->new->canonical->utf8->encode({
        method => $req->method, path => $path, status => $res->code + 0,
        content_type => $ct, body => $body });
    open(my $fh, '>>', $file) or return;
    flock($fh, 2);
    print {$fh} "$line\n";
    close $fh;
}

=head2 bl_request($method, $path, %opt)

Sends one request to the test server on a fresh connection (redirects are
not followed) and returns C<($res, $data)>: the L<HTTP::Response> and the
decoded JSON body (undef when the body is not JSON). Options:

  json         => Perl data, sent as application/json
  body         => raw request body (string of bytes)
  content_type => Content-Type for body (json sets application/json)
  headers      => { Name => value, ... } extra headers (Origin, ...)
  token        => access token, sent as "Authorization: Bearer <token>"
  cookie       => Cookie header value, e.g. "__Host-bl_at=<token>"
  query        => { name => value } appended as the query string
  timeout      => seconds to wait for the answer (default 20)
  local_address => source address of the connection (e.g. 127.0.0.2, to
                  be a peer other than 127.0.0.1)
  ssl_opts     => { ... } LWP::UserAgent ssl_opts for an https URL (default:
                  verify the host against the test certificate $BL_TLS_CERT)

A $path that is already an absolute http:// or https:// URL (see
bl_tls_url) is used as it is.

Every answer from the test server's API and health routes is also
recorded (when C<$BL_SPEC_CAPTURE> names a file, as scripts/check sets
it) so t/zz_spec_conformance.t can check them all against
docs/openapi.yaml: every suite's answers are checked, not just those a
suite checks itself.

=cut

sub bl_request {
    my ($method, $path, %opt) = @_;
    croak 'bl_request: method and path' unless $method && defined $path;
    my $url = $path =~ m{^https?://} ? $path : bl_url($path);
    if (my $q = $opt{query}) {
        require URI;
        my $u = URI->new($url);
        $u->query_form(map { ($_ => $q->{$_}) } sort keys %$q);
        $url = $u->as_string;
    }
    my $req = HTTP::Request->new(uc $method => $url);
    if (exists $opt{json}) {
        $req->content($JSON->encode($opt{json}));
        $req->header('Content-Type' => $opt{content_type} // 'application/json');
    }
    elsif (defined $opt{body}) {
        $req->content($opt{body});
        $req->header('Content-Type' => $opt{content_type})
            if defined $opt{content_type};
    }
    elsif (defined $opt{content_type}) {
        $req->header('Content-Type' => $opt{content_type});
    }
    $req->header('Content-Length' => length($req->content // ''))
        if $method =~ /^(POST|PUT|PATCH)$/i || length($req->content // '');
    $req->header(Authorization => "Bearer $opt{token}") if defined $opt{token};
    $req->header(Cookie => $opt{cookie}) if defined $opt{cookie};
    my $h = $opt{headers} || {};
    $req->header($_ => $h->{$_}) for sort keys %$h;

    my $ua = LWP::UserAgent->new(
        max_redirect => 0, timeout => $opt{timeout} // 20,
        keep_alive => 0, agent => 'bl-test/1',
        (defined $opt{local_address} ? (local_address => $opt{local_address}) : ()),
    );
    if ($url =~ m{^https://}i) {
        $ua->ssl_opts(%{ $opt{ssl_opts}
                         // { verify_hostname => 1, SSL_ca_file => _env('BL_TLS_CERT') } });
    }
    my $res = $ua->request($req);
    _capture($req, $res);
    my $data;
    my $ct = $res->header('Content-Type') // '';
    $data = bl_json($res->content) if $ct =~ m{json}i;
    return wantarray ? ($res, $data) : $res;
}

=head2 bl_psql($sql, @params)

Runs $sql with psql (C<-XAtq>, ON_ERROR_STOP) against the test database and
returns the rows as array refs of column strings (SQL NULL is undef).
C<$1>, C<$2>, ... in $sql are replaced by @params as quoted literals
(undef is NULL), so values never need escaping by hand. Dies on a SQL error.

  my @rows = bl_psql('SELECT id, email FROM users WHERE email = $1', $email);

=cut

my $FS = "\x1f";    # unit separator between columns
my $RS = "\x1e";    # record separator between rows
my $NULL = "\x1d";  # how psql prints NULL here

sub _quote_literal {
    my $v = shift;
    return 'NULL' unless defined $v;
    $v =~ s/'/''/g;
    return "'$v'";
}

sub bl_psql {
    my ($sql, @params) = @_;
    $sql =~ s/\$(\d+)\b/
        $1 >= 1 && $1 <= @params ? _quote_literal($params[$1 - 1])
                                 : croak "bl_psql: no parameter \$$1"/ge;
    my @cmd = ('psql', '-X', '-A', '-t', '-q', '-v', 'ON_ERROR_STOP=1',
               '-P', "null=$NULL", '-F', $FS, '-R', $RS, '-c', $sql);
    my $err = gensym;
    my $pid = open3(my $in, my $out, $err, @cmd);
    close $in;
    local $/;
    my $stdout = <$out> // '';
    my $stderr = <$err> // '';
    waitpid $pid, 0;
    croak "bl_psql failed: $stderr\nSQL: $sql" if $? != 0;
    $stdout =~ s/\n\z//;
    my @rows;
    for my $rec (split /$RS/, $stdout) {
        next if $rec eq '';
        push @rows, [ map { $_ eq $NULL ? undef : $_ } split /$FS/, $rec, -1 ];
    }
    return @rows;
}

=head2 bl_psql_value($sql, @params)

The first column of the first row of bl_psql($sql, @params), or undef.

=cut

sub bl_psql_value {
    my @rows = bl_psql(@_);
    return @rows ? $rows[0][0] : undef;
}

=head2 bl_redis(@cmd)

Runs one Redis command with redis-cli (C<--raw>) against the test Redis and
returns its output: a list of lines in list context, the text (chomped) in
scalar context.

  bl_redis(qw(SET bl:sess:abc 42 EX 60));
  my $ttl = bl_redis(TTL => 'bl:sess:abc');

=cut

sub bl_redis {
    my @cmd = @_;
    my @argv = ('redis-cli', '--raw', '-h', _env('BL_REDIS_HOST'),
                '-p', _env('BL_REDIS_PORT'), @cmd);
    open(my $fh, '-|', @argv) or croak "redis-cli: $!";
    local $/;
    my $out = <$fh> // '';
    close $fh;
    $out =~ s/\n\z//;
    return wantarray ? split(/\n/, $out) : $out;
}

=head2 bl_uuid()

A fresh random (v4) UUID string.

=cut

sub bl_uuid {
    my @b = map { int rand 256 } 1 .. 16;
    if (open my $fh, '<:raw', '/dev/urandom') {
        read $fh, my $buf, 16;
        @b = unpack 'C16', $buf;
    }
    $b[6] = ($b[6] & 0x0f) | 0x40;
    $b[8] = ($b[8] & 0x3f) | 0x80;
    return sprintf '%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x', @b;
}

=head2 bl_mint_jwt(%opt)

Signs an access token with the dev key (C<$BL_JWT_KEY>) through
/usr/bin/python3 and PyJWT, as the server would. In list context returns
C<($token, \%claims, \%header)> (the header as sent).

Default claims: iss and aud from C<$BL_JWT_ISSUER>/C<$BL_JWT_AUDIENCE>,
sub and sid and jti fresh UUIDs, role "patient", iat and nbf now, exp now
+ 900. Any other key in %opt sets that claim (undef removes it):

  bl_mint_jwt(sub => $uid, role => 'admin', exp => time - 10);

Control options:

  alg      => 'RS256' (default), 'none', 'HS256' (signed with key)
  kid      => header kid (default: RFC 7638 thumbprint of the key;
              undef removes it)
  typ      => header typ (default "at+jwt"; undef removes it)
  header   => { ... } extra or overriding header fields
  key_file => private key PEM to sign with (default $BL_JWT_KEY)
  key      => key material as text: for HS256 the HMAC secret (e.g. the
              public PEM text, for the key-confusion attack)

=cut

my $MINT_PY = <<'PY';
import base64, hashlib, hmac, json, sys
import jwt
from cryptography.hazmat.primitives import serialization

req = json.load(sys.stdin)

def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

def thumbprint(pub):
    nums = pub.public_numbers()
    def b(i):
        return b64u(i.to_bytes((i.bit_length() + 7) // 8, "big"))
    canon = '{"e":"%s","kty":"RSA","n":"%s"}' % (b(nums.e), b(nums.n))
    return b64u(hashlib.sha256(canon.encode()).digest())

with open(req["key_file"], "rb") as f:
    priv = serialization.load_pem_private_key(f.read(), password=None)
header = {"typ": "at+jwt", "kid": thumbprint(priv.public_key())}
for k, v in req["header"].items():
    if v is None:
        header.pop(k, None)
    else:
        header[k] = v
claims = req["claims"]
alg = req["alg"]
if req.get("kid_only"):
    print(header.get("kid", ""))
    sys.exit(0)
if alg == "none" or alg.startswith("HS"):
    header["alg"] = header.get("alg", alg)
    h = b64u(json.dumps(header, separators=(",", ":")).encode())
    p = b64u(json.dumps(claims, separators=(",", ":")).encode())
    sig = ""
    if alg.startswith("HS"):
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384,
                  "HS512": hashlib.sha512}[alg]
        sig = b64u(hmac.new(req["key"].encode(), (h + "." + p).encode(),
                            digest).digest())
    print(h + "." + p + "." + sig)
else:
    extra = dict(header)
    extra.pop("alg", None)
    tok = jwt.encode(claims, priv, algorithm=alg, headers=extra)
    if isinstance(tok, bytes):
        tok = tok.decode()
    print(tok)
PY

sub _python_json {
    my ($script, $input) = @_;
    my $err = gensym;
    my $pid = open3(my $in, my $out, $err, $PYTHON, '-c', $script);
    print $in $JSON->encode($input);
    close $in;
    local $/;
    my $stdout = <$out> // '';
    my $stderr = <$err> // '';
    waitpid $pid, 0;
    croak "python failed: $stderr" if $? != 0;
    $stdout =~ s/\n\z//;
    return $stdout;
}

sub bl_mint_jwt {
    my %opt = @_;
    my %control = map { $_ => 1 } qw(alg kid typ header key key_file);
    my $now = time;
    my %claims = (
        iss => $ENV{BL_JWT_ISSUER} // '',
        aud => $ENV{BL_JWT_AUDIENCE} // '',
        sub => bl_uuid(),
        role => 'patient',
        sid => bl_uuid(),
        jti => bl_uuid(),
        iat => $now,
        nbf => $now,
        exp => $now + 900,
    );
    for my $k (keys %opt) {
        next if $control{$k};
        if (defined $opt{$k}) { $claims{$k} = $opt{$k} } else { delete $claims{$k} }
    }
    my %header = %{ $opt{header} || {} };
    $header{kid} = $opt{kid} if exists $opt{kid};
    $header{typ} = $opt{typ} if exists $opt{typ};
    my $alg = $opt{alg} // 'RS256';
    croak "bl_mint_jwt: alg $alg needs key => secret"
        if $alg =~ /^HS/ && !defined $opt{key};
    my $token = _python_json($MINT_PY, {
        claims => \%claims, header => \%header, alg => $alg,
        key => $opt{key}, key_file => $opt{key_file} // _env('BL_JWT_KEY'),
    });
    my ($h64) = split /\./, $token;
    $h64 =~ tr{-_}{+/};
    $h64 .= '=' x ((4 - length($h64) % 4) % 4);
    require MIME::Base64;
    my $sent = bl_json(MIME::Base64::decode_base64($h64)) || {};
    return wantarray ? ($token, \%claims, $sent) : $token;
}

=head2 bl_jwt_kid([$key_file])

The kid the server publishes for a key: the RFC 7638 JWK thumbprint
(base64url SHA-256) of the public key of $key_file (default C<$BL_JWT_KEY>).

=cut

sub bl_jwt_kid {
    my $file = shift // _env('BL_JWT_KEY');
    return _python_json($MINT_PY, {
        claims => {}, header => {}, alg => 'RS256', key_file => $file,
        kid_only => JSON::PP::true,
    });
}

=head2 bl_session_create($sid, $user_id, [$ttl])

Stores the session as core expects it: Redis key C<bl:sess:$sid> holding
$user_id, expiring after $ttl seconds (default 900). Returns true on OK.

=cut

sub bl_session_create {
    my ($sid, $user_id, $ttl) = @_;
    croak 'bl_session_create($sid, $user_id)' unless defined $sid && defined $user_id;
    my $out = bl_redis('SET', "bl:sess:$sid", $user_id, 'EX', $ttl // 900);
    return $out eq 'OK';
}

=head2 bl_mail_messages()

The messages in the email file sink (C<$BL_MAIL_DIR>), oldest first, as
hash refs C<{ file, name, mtime, content }> (content is the raw message).

=cut

sub bl_mail_messages {
    my $dir = _env('BL_MAIL_DIR');
    opendir(my $dh, $dir) or croak "$dir: $!";
    my @msgs;
    for my $name (grep { !/^\./ && -f "$dir/$_" } readdir $dh) {
        my $file = "$dir/$name";
        open(my $fh, '<:raw', $file) or next;
        local $/;
        my $content = <$fh>;
        push @msgs, { file => $file, name => $name,
                      mtime => (stat $file)[9], content => $content };
    }
    closedir $dh;
    return sort { $a->{mtime} <=> $b->{mtime} || $a->{name} cmp $b->{name} } @msgs;
}

=head2 bl_stack($cmd)

Runs the stack helper (C<$BL_STACK>): pg-start, pg-stop, redis-start,
redis-stop, status. Returns true when it succeeded.

  bl_stack('redis-stop');
  ... expect 503 from /health/ready ...
  bl_stack('redis-start');

=cut

sub bl_stack {
    my $cmd = shift;
    my $stack = _env('BL_STACK');
    my $rc = system($stack, $cmd);
    return $rc == 0;
}

=head2 bl_error_log_path()

The path of the test server's error log.

=head2 bl_error_log_mark()

The current size of the error log: pass it to bl_error_log_since later.

=head2 bl_error_log_since($mark)

The error log text written after $mark (from bl_error_log_mark; 0 = all).

=head2 bl_error_log_crashes($mark)

The error log lines after $mark that show a crashed httpd child ("child pid
... exit signal", "Segmentation fault"): an empty list when none crashed.

=cut

=head2 bl_access_log_path()

The path of the test server's access log; each line ends with the request
id in double quotes.

=cut

sub bl_access_log_path {
    return Apache::Test::vars('t_logs') . '/access_log';
}

sub bl_error_log_path {
    return Apache::Test::vars('t_logs') . '/error_log';
}

sub bl_error_log_mark {
    return -s bl_error_log_path() || 0;
}

sub bl_error_log_since {
    my $mark = shift // 0;
    open(my $fh, '<:raw', bl_error_log_path()) or return '';
    seek $fh, $mark, 0;
    local $/;
    return <$fh> // '';
}

sub bl_error_log_crashes {
    my $text = bl_error_log_since(shift);
    return grep { /child pid \d+ exit signal|Segmentation fault/ } split /\n/, $text;
}

1;

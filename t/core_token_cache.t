# The per-child cache of verified access tokens: it only spares the
# signature check. The session is still asked of Redis on every request,
# so a revoked session is refused on the very next request even when its
# token is cached; a token is never taken from the cache at or past its
# exp; a payload spliced onto a cached token's signature is refused.
#
# A keep-alive connection is served by one httpd child from start to end,
# so requests on one connection see that child's cache; the echo handler
# says "X-BL-Token-Cache: hit" when the caller came from it.
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use MIME::Base64 qw(encode_base64url decode_base64url);
use JSON::PP;
use LWP::UserAgent;
use HTTP::Request;
use BL::Test;

plan skip_all => 'mod_beautiful_core not loaded'
    unless (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / core /;

my $PRIVATE = '/api/v1/core-test/private';
my $ADMIN = '/api/v1/core-test/admin';

# One client, one connection (LWP's connection cache keeps it open).
sub connection {
    return LWP::UserAgent->new(keep_alive => 1, timeout => 20, max_redirect => 0,
                               agent => 'bl-test/1');
}

sub get {
    my ($ua, $token, $path) = @_;
    my $req = HTTP::Request->new(GET => bl_url($path // $PRIVATE));
    $req->header(Authorization => "Bearer $token");
    my $res = $ua->request($req);
    my $ct = $res->header('Content-Type') // '';
    return ($res, $ct =~ /json/ ? bl_json($res->content) : undef);
}

sub cached { return (shift->header('X-BL-Token-Cache') // '') eq 'hit' }
sub on_connection { return shift->header('Client-Response-Num') // 0 }

sub session_token {
    my %claims = @_;
    my $uid = bl_uuid();
    my ($tok, $c) = bl_mint_jwt(sub => $uid, %claims);
    bl_session_create($c->{sid}, $uid);
    return ($tok, $c);
}

# ---------------------------------------------------------------- revocation
{
    my ($tok, $c) = session_token();
    my $ua = connection();
    my ($res, $data) = get($ua, $tok);
    is $res->code, 200, 'first request: verified in full';
    ok !cached($res), 'first request: not from the cache';
    ($res, $data) = get($ua, $tok);
    is $res->code, 200, 'second request on the connection: 200';
    ok cached($res), 'second request: the token came from the cache';
    is on_connection($res), 2, 'same connection, same child';
    is $data->{data}{user}{id}, $c->{sub}, 'cached claims: the user';
    is $data->{data}{user}{role}, 'patient', 'cached claims: the role';

    bl_redis('DEL', "bl:sess:$c->{sid}");
    ($res, $data) = get($ua, $tok);
    is $res->code, 401, 'session revoked: the very next request is refused';
    is on_connection($res), 3, '... on the same connection, where the token is cached';
    is $data && $data->{error}{code}, 'UNAUTHORIZED', '... in the envelope';
    like $res->header('WWW-Authenticate') // '', qr/error="invalid_token"/,
        '... as an invalid token';
    ($res) = get(connection(), $tok);
    is $res->code, 401, 'and on a new connection too';

    # the cache still holds the token: only the session decided
    bl_session_create($c->{sid}, $c->{sub});
    $ua = connection();
    get($ua, $tok);
    ($res) = get($ua, $tok);
    is $res->code, 200, 'session back: accepted again';
    ok cached($res), '... from the cache';

    # the session now names someone else
    bl_session_create($c->{sid}, bl_uuid());
    ($res) = get($ua, $tok);
    is $res->code, 401, 'session of another user: refused with the token cached';
}

# ---------------------------------------------------------------- splicing
{
    my ($tok, $c) = session_token();
    my $ua = connection();
    get($ua, $tok);
    my ($res) = get($ua, $tok);
    ok cached($res), 'token cached';
    my ($h, $p, $sig) = split /\./, $tok;
    my $claims = bl_json(decode_base64url($p));
    $claims->{role} = 'admin';
    my $forged = join '.', $h, encode_base64url(JSON::PP->new->canonical->encode($claims)), $sig;
    ($res, my $data) = get($ua, $forged, $ADMIN);
    is $res->code, 401, 'cached signature on a changed payload: refused';
    is $data && $data->{error}{code}, 'UNAUTHORIZED', '... in the envelope';
    ($res) = get($ua, $tok, $ADMIN);
    is $res->code, 403, 'the real token still carries its own role';
}

# ---------------------------------------------------------------- expiry
{
    my $exp = time + 2;
    my ($tok, $c) = session_token(exp => $exp);
    my $ua = connection();
    get($ua, $tok);
    my ($res) = get($ua, $tok);
    is $res->code, 200, 'short-lived token accepted';
    ok cached($res), '... from the cache before its exp';
    select undef, undef, undef, 0.2 while time <= $exp;
    ($res) = get($ua, $tok);
    is $res->code, 200, 'past exp, within the leeway: accepted';
    ok !cached($res), '... but not from the cache';
    ($res) = get($ua, $tok);
    ok !cached($res), 'and never cached again past its exp';
    is on_connection($res), 4, 'all on one connection';
}

# ---------------------------------------------------------------- a bad token stays bad
{
    my ($tok) = session_token(exp => time - 3600);
    my $ua = connection();
    my ($res) = get($ua, $tok);
    is $res->code, 401, 'expired token refused';
    ($res) = get($ua, $tok);
    is $res->code, 401, 'and refused again (a refusal is not cached)';
}

done_testing;

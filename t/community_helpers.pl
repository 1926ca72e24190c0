# Shared helpers of the t/community_*.t suites (mod_beautiful_community),
# loaded with
#   require "$FindBin::Bin/community_helpers.pl";
# Users are inserted straight into PostgreSQL and given signed access
# tokens and Redis sessions as mod_beautiful_auth would, so a suite needs
# dozens of users without paying for dozens of argon2 hashes.
use strict;
use warnings;
use IPC::Open3 qw(open3);
use JSON::PP ();
use Symbol qw(gensym);
use BL::Test;

sub community_loaded {
    return (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / community /;
}

my $MINT_MANY_PY = <<'PY';
import base64, hashlib, json, sys, time, uuid
import jwt
from cryptography.hazmat.primitives import serialization

req = json.load(sys.stdin)
with open(req["key_file"], "rb") as f:
    priv = serialization.load_pem_private_key(f.read(), password=None)
def b64u(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()
nums = priv.public_key().public_numbers()
def b(i):
    return b64u(i.to_bytes((i.bit_length() + 7) // 8, "big"))
kid = b64u(hashlib.sha256(('{"e":"%s","kty":"RSA","n":"%s"}' % (b(nums.e), b(nums.n))).encode()).digest())
now = int(time.time())
out = []
for u in req["users"]:
    claims = {"iss": req["iss"], "aud": req["aud"], "sub": u["sub"], "role": u["role"],
              "sid": u["sid"], "jti": str(uuid.uuid4()), "iat": now, "nbf": now,
              "exp": now + 3600}
    tok = jwt.encode(claims, priv, algorithm="RS256", headers={"typ": "at+jwt", "kid": kid})
    out.append(tok.decode() if isinstance(tok, bytes) else tok)
print(json.dumps(out))
PY

# Signs one access token per user ({sub, role, sid}) in one python run.
sub _mint_many {
    my @users = @_;
    my $json = JSON::PP->new->utf8;
    my $err = gensym;
    my $pid = open3(my $in, my $out, $err, '/usr/bin/python3', '-c', $MINT_MANY_PY);
    print $in $json->encode({ users => \@users, key_file => $ENV{BL_JWT_KEY},
                              iss => $ENV{BL_JWT_ISSUER}, aud => $ENV{BL_JWT_AUDIENCE} });
    close $in;
    local $/;
    my $stdout = <$out> // '';
    my $stderr = <$err> // '';
    waitpid $pid, 0;
    die "minting tokens failed: $stderr" if $? != 0;
    return @{ $json->decode($stdout) };
}

# $n new users (default 1), each { id, token, role, name }. Options:
#   role => 'patient' (default) | 'admin' | ...
#   name => first name (default "Member")
sub cm_users {
    my ($n, %opt) = @_;
    $n //= 1;
    my $role = $opt{role} // 'patient';
    my (@users, @claims);
    for my $i (1 .. $n) {
        my $email = 'cm-' . bl_uuid() . '@example.test';
        my $name = $opt{name} // 'Member';
        my $id = bl_psql_value(
            q{INSERT INTO users (email, password_hash, role, first_name, email_verified_at)
              VALUES ($1, 'x', $2::user_role, $3, now()) RETURNING id}, $email, $role, $name);
        my $sid = bl_uuid();
        bl_session_create($sid, $id, 3600) or die 'no Redis session';
        push @users, { id => $id, role => $role, name => $name, email => $email, sid => $sid };
        push @claims, { sub => $id, role => $role, sid => $sid };
    }
    my @tokens = _mint_many(@claims);
    $users[$_]{token} = $tokens[$_] for 0 .. $#users;
    return wantarray ? @users : $users[0];
}

sub cm_user { return scalar cm_users(1, @_) }

# One request as $user (undef: no token). Returns ($res, $data).
sub cm_req {
    my ($user, $method, $path, %opt) = @_;
    $path = "/api/v1$path" unless $path =~ m{^/api/};
    return bl_request($method => $path, ($user ? (token => $user->{token}) : ()), %opt);
}

# Creates a community owned by $owner; returns its data.
sub cm_community {
    my ($owner, %fields) = @_;
    my %body = (name => 'Circle ' . substr(bl_uuid(), 0, 8), type => 'support_group', %fields);
    my ($res, $data) = cm_req($owner, POST => '/communities', json => \%body);
    die 'create community: ' . $res->code . ' ' . $res->content unless $res->code == 201;
    return $data->{data};
}

# Makes $user a member of community $cid with $role, straight in the database.
sub cm_member {
    my ($cid, $user, $role) = @_;
    bl_psql(q{INSERT INTO community_members (community_id, user_id, role)
              VALUES ($1, $2, $3::community_role)
              ON CONFLICT (community_id, user_id) DO UPDATE SET role = EXCLUDED.role},
            $cid, $user->{id}, $role // 'member');
}

# The outbox rows of $type for $user_id, as hash refs {title, body, data}.
sub cm_outbox {
    my ($user_id, $type) = @_;
    return map { { title => $_->[0], body => $_->[1], data => bl_json($_->[2]) } }
        bl_psql(q{SELECT title, body, data::text FROM notifications
                  WHERE user_id = $1 AND type = $2 ORDER BY created_at}, $user_id, $type);
}

# Checks the answer $res against docs/openapi.yaml for $method $template
# (a spec path such as /posts/{id}); returns true when it validates.
sub cm_documented {
    my ($method, $template, $res) = @_;
    my $tool = "$ENV{BL_SRC_DIR}/t/tools/openapi_check.py";
    my $err = gensym;
    my $pid = open3(my $in, my $out, $err, '/usr/bin/python3', $tool, 'validate', $method,
                    $template, $res->code);
    print $in $res->content;
    close $in;
    local $/;
    my $text = (<$out> // '') . (<$err> // '');
    waitpid $pid, 0;
    Test::More::diag($text) if $? != 0;
    return $? == 0;
}

sub cm_code { my ($data) = @_; return $data && $data->{error} ? $data->{error}{code} : '' }

1;

# docs/openapi.yaml stays true: its structure, its routes and error codes
# against the modules' sources, and live answers validated against it.
#
# Needs /usr/bin/python3 with python3-yaml and python3-jsonschema (Debian);
# the checks live in t/tools/openapi_check.py.
use strict;
use warnings FATAL => 'all';

use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use File::Spec;
use File::Temp qw(tempfile);
use IPC::Open3 qw(open3);
use JSON::PP ();
use Symbol qw(gensym);
use BL::Test;

my $loaded = ' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ';
my $have_auth = $loaded =~ / auth /;

plan tests => 64, sub { $loaded =~ / core / };

my $SRC = $ENV{BL_SRC_DIR} or BAIL_OUT('BL_SRC_DIR is not set (run through scripts/check)');
my $PYTHON = $ENV{BL_PYTHON} || '/usr/bin/python3';
my $TOOL = File::Spec->catfile($SRC, 't', 'tools', 'openapi_check.py');
my $SPEC = File::Spec->catfile($SRC, 'docs', 'openapi.yaml');

# Runs the checker; $stdin (bytes) is fed on its standard input.
# Returns ($exit_code, $output) with stdout and stderr together.
sub check {
    my ($stdin, @args) = @_;
    my ($in, $inpath) = tempfile(UNLINK => 1);
    binmode $in;
    print {$in} $stdin // '';
    close $in;
    open(my $infh, '<', $inpath) or die "$inpath: $!";
    my $pid = open3('<&' . fileno($infh), my $out, undef, $PYTHON, $TOOL, '--src', $SRC, '--spec',
                    $ENV{BL_OPENAPI_SPEC} // $SPEC, @args);
    local $/;
    my $text = <$out> // '';
    waitpid $pid, 0;
    return ($? >> 8, $text);
}

# The answer validates against the documented response of METHOD PATH.
sub conforms {
    my ($res, $method, $path, $name) = @_;
    local $Test::Builder::Level = $Test::Builder::Level + 1;
    my ($rc, $out) = check($res->content, 'validate', $method, $path, $res->code,
                           scalar($res->header('Content-Type') // 'application/json'));
    ok $rc == 0, "$name: the $method $path " . $res->code . ' answer matches the spec'
        or diag $out;
}

# ---------------------------------------------------------------- the document
{
    ok -r $SPEC, 'docs/openapi.yaml is there';
    my ($rc, $out) = check('', 'structure');
    ok $rc == 0, 'structure: every $ref resolves, every operation answers, schemas are valid'
        or diag $out;
}

SKIP: {
    skip 'the sources (modules/) are not in BL_SRC_DIR', 2
        unless -d File::Spec->catdir($SRC, 'modules');
    my ($rc, $out) = check('', 'routes');
    ok $rc == 0, 'routes: every registered route is documented, and only those' or diag $out;
    ($rc, $out) = check('', 'codes');
    ok $rc == 0, 'codes: every error code the modules use is in ErrorEnvelope' or diag $out;
}

# The checks can fail: a spec with a dangling $ref, an operation without
# responses and a broken schema is refused, and so is a body off the spec.
{
    open(my $fh, '<', $SPEC) or die "$SPEC: $!";
    my $spec = do { local $/; <$fh> };
    close $fh;
    (my $broken = $spec) =~ s{"#/components/schemas/Liveness"}{"#/components/schemas/NoSuchThing"};
    $broken =~ s{(\n    Jwk:\n      type:) object}{$1 objekt};
    my ($bfh, $bpath) = tempfile(SUFFIX => '.yaml', UNLINK => 1);
    print {$bfh} $broken;
    close $bfh;
    local $ENV{BL_OPENAPI_SPEC} = $bpath;
    my ($rc, $out) = check('', 'structure');
    isnt $rc, 0, 'a broken spec fails the structure check';
    like $out, qr{NoSuchThing does not resolve}, '... naming the dangling $ref';
    like $out, qr{schemas/Jwk: not a valid JSON Schema}, '... and the invalid schema';
}
{
    my ($rc, $out) = check('{"success":true,"status":"fine","timestamp":"now"}',
                           'validate', 'GET', '/health', 200);
    isnt $rc, 0, 'a body off the spec fails validation';
    like $out, qr{status}, '... naming the field';
    ($rc, $out) = check('{"success":true}', 'validate', 'GET', '/health', 299);
    isnt $rc, 0, 'an undocumented status fails validation';
}

# ---------------------------------------------------------------- core, live
{
    my ($res, $data) = bl_request(GET => '/health');
    is $res->code, 200, 'GET /health is 200';
    conforms($res, GET => '/health', 'liveness');

    ($res, $data) = bl_request(GET => '/health/ready');
    ok $res->code == 200 || $res->code == 503, 'GET /health/ready answers 200 or 503';
    conforms($res, GET => '/health/ready', 'readiness');

    ($res, $data) = bl_request(POST => '/health', json => {});
    is $res->code, 405, 'POST /health is 405';
    conforms($res, GET => '/health', 'a refused method');

    ($res, $data) = bl_request(GET => '/api/v1/no-such-route-for-docs');
    is $res->code, 401, 'an unknown /api/v1 route is 401 without a token';
    my ($rc, $out) = check($res->content, 'response', 'Unauthorized');
    ok $rc == 0, 'the 401 matches the Unauthorized response of the spec' or diag $out;

    # The description itself is served, without a token, as shipped.
    ($res) = bl_request(GET => '/api/v1/openapi.yaml');
    is $res->code, 200, 'GET /api/v1/openapi.yaml is public';
    like $res->header('Content-Type') // '', qr{^application/yaml}, 'served as YAML';
    open(my $fh, '<:raw', $SPEC) or die "$SPEC: $!";
    my $shipped = do { local $/; <$fh> };
    ok $res->content eq $shipped, 'the served document is docs/openapi.yaml';

    # ... and as JSON, the same document.
    ($res) = bl_request(GET => '/api/v1/openapi.json');
    is $res->code, 200, 'GET /api/v1/openapi.json is public';
    like $res->header('Content-Type') // '', qr{^application/json}, 'served as JSON';
    open(my $py, '|-', 'python3', '-c', 'import json, sys, yaml; '
        . 'sys.exit(0 if json.loads(sys.stdin.read()) == yaml.safe_load(open(sys.argv[1], encoding="utf-8")) else 1)',
        $SPEC) or die "python3: $!";
    print $py $res->content;
    ok close($py), 'openapi.json says what openapi.yaml says';

    # Swagger UI, with a policy of its own.
    ($res) = bl_request(GET => '/docs/');
    is $res->code, 200, 'GET /docs/ is public';
    like $res->content, qr{<script src="init\.js"></script>}, 'the page loads its init script from a file';
    unlike $res->content, qr{<script>}, 'no inline script';
    like $res->header('Content-Security-Policy') // '', qr{script-src 'self'}, 'a CSP for the page';
}

# ---------------------------------------------------------------- auth, live
SKIP: {
    skip 'mod_beautiful_auth is not loaded', 35 unless $have_auth;

    my ($res, $data) = bl_request(GET => '/.well-known/jwks.json');
    is $res->code, 200, 'GET /.well-known/jwks.json is 200';
    conforms($res, GET => '/.well-known/jwks.json', 'jwks');

    ($res, $data) = bl_request(POST => '/api/v1/auth/login', body => '{"email": "a@b.example",',
                               content_type => 'application/json');
    is $res->code, 400, 'malformed JSON to /auth/login is 400';
    is $data->{error}{code}, 'MALFORMED_JSON', '... MALFORMED_JSON';
    conforms($res, POST => '/auth/login', 'malformed JSON');

    ($res, $data) = bl_request(POST => '/api/v1/auth/register',
                               json => {email => 'not-an-address', password => 'a long enough passphrase 7'});
    is $res->code, 400, 'register with a bad email is 400';
    is $data->{error}{code}, 'VALIDATION_ERROR', '... VALIDATION_ERROR';
    conforms($res, POST => '/auth/register', 'bad email');

    ($res, $data) = bl_request(POST => '/api/v1/auth/login', body => 'email=x',
                               content_type => 'application/x-www-form-urlencoded');
    is $res->code, 415, 'a form body to /auth/login is 415';
    conforms($res, POST => '/auth/login', 'wrong content type');

    # A whole account's answers, each against its schema.
    my $email = 'docs-' . lc(substr(bl_uuid(), 0, 8)) . '@example.org';
    my $password = 'sunlit meadow river 2718';
    ($res, $data) = bl_request(POST => '/api/v1/auth/register', json => {
        email => $email, password => $password, role => 'patient',
        profile => {first_name => 'Docs', last_name => 'Check', gender => 'prefer_not_to_say',
                    date_of_birth => '1970-01-31', treatment_stage => 'remission',
                    location => {city => 'Pune', country => 'IN'}, is_public => JSON::PP::true()},
    });
    is $res->code, 201, 'register is 201' or diag $res->content;
    conforms($res, POST => '/auth/register', 'registered');
    my $id = $data->{data}{id} // '';

    ($res, $data) = bl_request(POST => '/api/v1/auth/register',
                               json => {email => uc $email, password => $password});
    is $res->code, 409, 'the same email again is 409';
    conforms($res, POST => '/auth/register', 'duplicate');

    ($res, $data) = bl_request(POST => '/api/v1/auth/login',
                               json => {email => $email, password => 'not the password at all'});
    is $res->code, 401, 'a wrong password is 401';
    conforms($res, POST => '/auth/login', 'wrong password');

    ($res, $data) = bl_request(POST => '/api/v1/auth/login',
                               json => {email => $email, password => $password});
    is $res->code, 200, 'login is 200' or diag $res->content;
    conforms($res, POST => '/auth/login', 'signed in');
    my $token = $data->{data}{access_token};

    ($res, $data) = bl_request(GET => '/api/v1/users/profile', token => $token);
    is $res->code, 200, 'GET /users/profile is 200';
    conforms($res, GET => '/users/profile', 'own profile');

    ($res, $data) = bl_request(PUT => '/api/v1/users/profile', token => $token,
                               json => {bio => 'Walking every day.', cancer_type => undef});
    is $res->code, 200, 'PUT /users/profile is 200';
    conforms($res, PUT => '/users/profile', 'profile updated');

    ($res, $data) = bl_request(GET => "/api/v1/users/profile/$id");
    is $res->code, 200, 'a public profile is 200 to anyone';
    conforms($res, GET => '/users/profile/{id}', 'public profile');

    ($res, $data) = bl_request(GET => '/api/v1/users/profile/' . bl_uuid());
    is $res->code, 404, 'an unknown profile is 404';
    conforms($res, GET => '/users/profile/{id}', 'unknown profile');

    ($res, $data) = bl_request(GET => '/api/v1/admin/users', token => $token);
    is $res->code, 403, 'a patient on /admin/users is 403';
    conforms($res, GET => '/admin/users', 'not an admin');

    ($res, $data) = bl_request(POST => '/api/v1/auth/logout', token => $token);
    is $res->code, 200, 'logout is 200';
    conforms($res, POST => '/auth/logout', 'signed out');

    # The admin views, with the same account made an admin.
    bl_psql(q{UPDATE users SET role = 'admin' WHERE id = $1::uuid}, $id);
    ($res, $data) = bl_request(POST => '/api/v1/auth/login',
                               json => {email => $email, password => $password});
    is $res->code, 200, 'login as an admin is 200';
    $token = $data->{data}{access_token};
    ($res, $data) = bl_request(GET => '/api/v1/admin/users', token => $token,
                               query => {email => 'docs-', per_page => 5});
    is $res->code, 200, 'GET /admin/users is 200 to an admin' or diag $res->content;
    conforms($res, GET => '/admin/users', 'user list');
    ($res, $data) = bl_request(PUT => "/api/v1/admin/users/$id", token => $token,
                               json => {is_active => JSON::PP::true()});
    is $res->code, 200, 'PUT /admin/users/{id} is 200' or diag $res->content;
    conforms($res, PUT => '/admin/users/{id}', 'user updated');
}

# ---------------------------------------------------------------- the human guide
{
    my $guide = File::Spec->catfile($SRC, 'docs', 'api.md');
    ok -s $guide, 'docs/api.md is there';
}

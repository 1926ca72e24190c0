# mod_beautiful_auth: PUT /users/profile takes the shape GET /users/profile
# answers ({"profile": {...}}) as well as the flat fields, so a client can
# send back what it read; the nested object follows the same rules.
use strict;
use warnings;
use FindBin;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use BL::Test;
require "$FindBin::Bin/auth_helpers.pl";

plan skip_all => 'mod_beautiful_auth not loaded' unless auth_loaded();

my $PROFILE = '/api/v1/users/profile';
my $u = new_user(profile => { first_name => 'Grace', last_name => 'Hopper',
                              location => { city => 'Arlington', country => 'USA' } });
my $tok = $u->{access};

sub put_profile {
    my ($body) = @_;
    return bl_request(PUT => $PROFILE, token => $tok, json => $body);
}
sub db_row {
    return bl_psql_value(q{SELECT coalesce(first_name, '<null>') || '|' || coalesce(last_name, '<null>')
                        || '|' || coalesce(city, '<null>') || '|' || coalesce(bio, '<null>')
                        || '|' || is_public || '|' || coalesce(avatar_url, '<null>')
                        FROM users WHERE id = $1}, $u->{id});
}

# nested, as GET answers it
my ($res, $data) = put_profile({ profile => { first_name => 'Amazing', bio => 'Compilers.',
                                              location => { city => 'New York' } } });
is $res->code, 200, 'nested update 200' or diag $res->content;
is $data->{data}{profile}{first_name}, 'Amazing', 'nested first_name set';
is $data->{data}{profile}{bio}, 'Compilers.', 'nested bio set';
is $data->{data}{profile}{location}{city}, 'New York', 'nested location.city set';
is $data->{data}{profile}{last_name}, 'Hopper', 'fields not sent are kept';
is db_row(), 'Amazing|Hopper|New York|Compilers.|false|<null>', 'the row changed';

# the whole GET answer's profile, sent back changed in one field
($res, $data) = bl_request(GET => $PROFILE, token => $tok);
is $res->code, 200, 'GET profile';
my $read = $data->{data}{profile};
ok exists $read->{avatar_url}, 'GET carries the read-only avatar_url';
$read->{last_name} = 'Murray Hopper';
($res, $data) = put_profile({ profile => $read });
is $res->code, 200, 'what GET answered, sent back: 200' or diag $res->content;
is $data->{data}{profile}{last_name}, 'Murray Hopper', 'the changed field saved';
is_deeply { %{ $data->{data}{profile} }, last_name => undef },
          { %$read, last_name => undef }, 'every other field as it was';
is db_row(), 'Amazing|Murray Hopper|New York|Compilers.|false|<null>', 'the row';

# avatar_url in the nested shape is ignored, never written
($res, $data) = put_profile({ profile => { avatar_url => 'https://evil.example/x.png',
                                           bio => 'Nanoseconds.' } });
is $res->code, 200, 'avatar_url ignored in the nested shape';
ok !defined $data->{data}{profile}{avatar_url}, 'avatar_url not set';
is db_row(), 'Amazing|Murray Hopper|New York|Nanoseconds.|false|<null>', 'only bio changed';

# null clears in the nested shape too
($res, $data) = put_profile({ profile => { bio => undef, is_public => \1 } });
is $res->code, 200, 'nested null and boolean';
ok !defined $data->{data}{profile}{bio}, 'nested null clears bio';
is $data->{data}{profile}{is_public}, 1, 'nested is_public set';

# flat fields still work
($res, $data) = put_profile({ first_name => 'Grace' });
is $res->code, 200, 'flat update still 200';
is $data->{data}{profile}{first_name}, 'Grace', 'flat first_name set';

# refusals, each changing nothing
my $before = db_row();
sub refused {
    my ($name, $body, $details) = @_;
    my ($res, $data) = put_profile($body);
    is $res->code, 400, "$name: 400";
    is $data && $data->{error}{code}, 'VALIDATION_ERROR', "$name: VALIDATION_ERROR";
    is $data && $data->{error}{details}, $details, "$name: details" if defined $details;
    is db_row(), $before, "$name: nothing changed";
}
refused('nested and flat mixed', { profile => { bio => 'a' }, first_name => 'B' },
        'field: profile');
refused('profile not an object', { profile => 'Grace' }, 'field: profile');
refused('profile null', { profile => undef }, 'field: profile');
refused('profile an array', { profile => [ { first_name => 'x' } ] }, 'field: profile');
refused('unknown nested field', { profile => { email => 'x@example.test' } },
        'field: profile.email');
refused('read-only field of the user in the nested object', { profile => { role => 'admin' } },
        'field: profile.role');
refused('unknown nested location field', { profile => { location => { planet => 'Mars' } } },
        'field: location.planet');
refused('invalid nested enum', { profile => { gender => 'robot' } }, 'field: gender');
refused('invalid nested date', { profile => { date_of_birth => '2999-01-01' } },
        'field: date_of_birth');
refused('nested is_public not boolean', { profile => { is_public => 'yes' } },
        'field: is_public');
refused('nested name too long', { profile => { first_name => 'x' x 101 } }, 'field: first_name');
is bl_psql_value(q{SELECT role FROM users WHERE id = $1}, $u->{id}), 'patient',
   'the role never changed';

# without a token
($res, $data) = bl_request(PUT => $PROFILE, json => { profile => { bio => 'x' } });
is $res->code, 401, 'no token: 401';

done_testing;

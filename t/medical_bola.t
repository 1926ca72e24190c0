# mod_beautiful_medical: object-level authorization. For every record
# route: another patient, a doctor without a share, an admin, an expired
# share and a revoked share get 404 (the record's existence is not
# confirmed); a view-only share reads metadata but gets 403 on download
# and on the owner's routes; a download share downloads; the owner does
# everything. Nothing the refused callers try changes anything.
use strict;
use warnings;
use FindBin;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use BL::Test;
require "$FindBin::Bin/medical_helpers.pl";

plan skip_all => 'mod_beautiful_medical not loaded' unless medical_loaded();

my $owner = med_user(first_name => 'Olivia');
my %who = (
    'another patient'       => med_user(),
    'a doctor, no share'    => med_user(role => 'doctor'),
    'an admin'              => med_user(role => 'admin'),
    'a caregiver, expired share' => med_user(role => 'caregiver'),
    'a doctor, revoked share' => med_user(role => 'doctor'),
    'a view share'          => med_user(role => 'caregiver'),
    'a download share'      => med_user(role => 'doctor'),
);
my $data = med_pdf(5000, 'SECRET-RESULT;');
my ($res, $d) = med_upload($owner, $data, title => 'Biopsy');
is $res->code, 201, 'owner uploads';
my $id = $d->{data}{id};

sub share {
    my ($user, $level, $expires, $revoked) = @_;
    bl_psql(q{INSERT INTO medical_record_shares (record_id, shared_with_id, access_level, expires_at, revoked_at, created_at)
              VALUES ($1, $2, $3::share_access_level, now() + $4::interval, CASE WHEN $5 THEN now() END, now() - interval '2 hours')},
            $id, $user->{id}, $level, $expires, $revoked ? 'true' : 'false');
}
share($who{'a caregiver, expired share'}, 'download', '-1 hour', 0);
share($who{'a doctor, revoked share'}, 'download', '1 day', 1);
share($who{'a view share'}, 'view', '1 day', 0);
share($who{'a download share'}, 'download', '1 day', 0);

my $snapshot = sub {
    join '|', map { join ',', map { $_ // '' } @$_ }
        bl_psql('SELECT title, description, record_type, deleted_at, encode(wrapped_key, $$hex$$) FROM medical_records WHERE id = $1', $id);
};
my $before = $snapshot->();

my @routes = (
    [GET => "/api/v1/medical-records/$id", undef],
    [PUT => "/api/v1/medical-records/$id", { title => 'Changed by someone else' }],
    [GET => "/api/v1/medical-records/$id/download", undef],
    [GET => "/api/v1/medical-records/$id/access-log", undef],
    [DELETE => "/api/v1/medical-records/$id", undef],
);
my %expect = (
    'a view share'     => { "GET /api/v1/medical-records/$id" => 200, "GET /api/v1/medical-records/$id/download" => 403 },
    'a download share' => { "GET /api/v1/medical-records/$id" => 200, "GET /api/v1/medical-records/$id/download" => 200 },
);
for my $name (sort keys %who) {
    my $u = $who{$name};
    for my $route (@routes) {
        my ($m, $path, $json) = @$route;
        my $want = $expect{$name} ? ($expect{$name}{"$m $path"} // 403) : 404;
        my ($r, $j) = bl_request($m => $path, token => $u->{token}, (defined $json ? (json => $json) : ()));
        is $r->code, $want, "$name: $m " . ($path =~ s{.*/$id}{:id}r) . " -> $want";
        if ($want >= 400) {
            is $j && $j->{success}, JSON::PP::false(), "$name: an error envelope" if $j;
            ok index($r->content, 'SECRET') < 0 && index($r->content, 'Biopsy') < 0,
               "$name: nothing of the record in the answer";
        }
        if ($want == 200 && $path =~ /download$/) {
            ok $r->content eq $data, "$name: the file";
        }
        if ($want == 200 && $m eq 'GET' && $path !~ /download$/) {
            is $j->{data}{owner}{id}, $owner->{id}, "$name: owner shown";
        }
    }
    my ($r, $j) = bl_request(GET => '/api/v1/medical-records', token => $u->{token});
    my @ids = map { $_->{id} } @{ $j->{data} || [] };
    if ($expect{$name}) {
        ok((grep { $_ eq $id } @ids), "$name: the record is in my list");
        my ($item) = grep { $_->{id} eq $id } @{ $j->{data} };
        is $item->{access}, ($name =~ /view/ ? 'view' : 'download'), "$name: with my access";
        ($r, $j) = bl_request(GET => '/api/v1/medical-records', token => $u->{token}, query => { shared => 'false' });
        ok !(grep { $_->{id} eq $id } @{ $j->{data} }), "$name: not among my own records";
    } else {
        ok !(grep { $_ eq $id } @ids), "$name: the record is not in my list";
    }
}
is $snapshot->(), $before, 'nothing changed by any of them';
ok -f med_blob_path($id), 'the blob is still there';

my %actions = map { ($_->[0] . '/' . $_->[1] => $_->[2]) }
    bl_psql(q{SELECT user_id, action || ':' || outcome, count(*) FROM audit_logs WHERE resource_id = $1 GROUP BY 1, 2}, $id);
is $actions{"$who{'a view share'}{id}/medical.record.download:denied"}, 1, 'the refused download is audited';
is $actions{"$who{'a download share'}{id}/medical.record.download:success"}, 1, 'the download is audited';

# The owner sees who looked.
($res, $d) = bl_request(GET => "/api/v1/medical-records/$id/access-log", token => $owner->{token});
is $res->code, 200, 'owner: access log';
my %seen = map { (($_->{actor} || {})->{id} // '') . ' ' . $_->{action} . ' ' . $_->{outcome} => 1 } @{ $d->{data} };
ok $seen{"$who{'a download share'}{id} medical.record.download success"}, 'shows the download by the grantee';
ok $seen{"$who{'a view share'}{id} medical.record.read success"}, 'and the read by the view share';
ok $d->{data}[0]{at} =~ /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, 'with when';

# The owner: update then delete.
($res, $d) = bl_request(PUT => "/api/v1/medical-records/$id", token => $owner->{token}, json => { title => 'Biopsy (left)' });
is $res->code, 200, 'owner: update 200';
$res = bl_request(DELETE => "/api/v1/medical-records/$id", token => $owner->{token});
is $res->code, 204, 'owner: delete 204';
is bl_psql_value(q{SELECT count(*) FROM medical_record_shares WHERE record_id = $1 AND revoked_at IS NULL}, $id), 0,
   'delete revokes the shares';
$res = bl_request(GET => "/api/v1/medical-records/$id", token => $who{'a download share'}{token});
is $res->code, 404, 'a former grantee: 404 after delete';
$res = bl_request(GET => "/api/v1/medical-records/$id");
is $res->code, 401, 'no token: 401';

done_testing;

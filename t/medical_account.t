# Account deletion with medical records: the rows and wrapped data keys go
# with the account (crypto-erase), the stored files once the deletion has
# committed, and a deletion refused keeps every file.
use strict;
use warnings;
use FindBin;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use BL::Test;
require "$FindBin::Bin/auth_helpers.pl";
require "$FindBin::Bin/medical_helpers.pl";

plan skip_all => 'mod_beautiful_medical and mod_beautiful_auth needed' unless medical_loaded() && auth_loaded();
our $PASSWORD;

my $u = new_user();
my $user = { id => $u->{id}, token => $u->{access} };
my @paths;
for my $n (1, 2) {
    my ($res, $d) = med_upload($user, med_pdf(1500, "ACCT$n;"), title => "Record $n");
    is $res->code, 201, "record $n uploaded";
    push @paths, med_blob_path($d->{data}{id});
}
ok((-f $paths[0] && -f $paths[1]), 'both files stored');
my ($res) = bl_request(DELETE => '/api/v1/users/account', token => $user->{token},
                       json => { password => 'not the password at all' });
is $res->code, 403, 'deletion refused (wrong password)';
ok((-f $paths[0] && -f $paths[1]), 'the files stay');
($res) = bl_request(DELETE => '/api/v1/users/account', token => $user->{token}, json => { password => $PASSWORD });
is $res->code, 200, 'account deleted' or diag $res->content;
is bl_psql_value(q{SELECT count(*) FROM medical_records WHERE owner_id = $1}, $user->{id}), 0,
   'records and their wrapped keys gone';
ok((!-e $paths[0] && !-e $paths[1]), 'the stored files removed');

done_testing;

# mod_beautiful_community: communities and membership as their users see
# them — create, read by id and slug, search, update, delete; public,
# private (join requests) and hidden (invitations) communities; the
# members list, roles, removal and bans; the last-owner rule.
use strict;
use warnings;
use FindBin;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use BL::Test;
require "$FindBin::Bin/community_helpers.pl";

plan skip_all => 'mod_beautiful_community not loaded' unless community_loaded();

my ($owner, $mod, $member, $stranger, $other) = cm_users(5);
my $admin = cm_user(role => 'admin');

# ---------------------------------------------------------------- create
my ($res, $data) = cm_req(undef, GET => '/communities');
is $res->code, 401, 'no token: 401';

my $tag = substr(bl_uuid(), 0, 8);
($res, $data) = cm_req($owner, POST => '/communities',
                       json => { name => "Brave Hearts $tag", description => 'Breast cancer support',
                                 type => 'support_group', cancer_type => 'Breast',
                                 privacy => 'public' });
is $res->code, 201, 'create: 201' or diag $res->content;
my $pub = $data->{data};
is $pub->{slug}, lc("brave-hearts-$tag"), 'slug made from the name';
is $pub->{my_role}, 'owner', 'the creator is owner';
is $pub->{member_count}, 1, 'one member';
is $res->header('Cache-Control'), 'no-store', 'no-store';
ok cm_documented(POST => '/communities', $res), 'as documented';

($res, $data) = cm_req($other, POST => '/communities',
                       json => { name => "brave hearts $tag" });
is $res->code, 409, 'same name (any case): 409';

($res, $data) = cm_req($other, POST => '/communities', json => { name => "Brave-Hearts $tag!" });
is $res->code, 201, 'a name giving the same slug: 201';
isnt $data->{data}{slug}, $pub->{slug}, 'and a different slug';
like $data->{data}{slug}, qr/^brave-hearts-\Q$tag\E-[0-9a-f]{8}$/, 'suffixed';

for my $bad ([{ description => 'x' }, 'name'],
             [{ name => 'x' }, 'name'],
             [{ name => '   ' }, 'name'],
             [{ name => 'y' x 101 }, 'name'],
             [{ name => "Ok $tag 2", description => 'd' x 5001 }, 'description'],
             [{ name => "Ok $tag 3", type => 'party' }, 'type'],
             [{ name => "Ok $tag 4", privacy => 'secret' }, 'privacy'],
             [{ name => "Ok $tag 5", colour => 'red' }, 'colour'],
             [{ name => 42 }, 'name']) {
    ($res, $data) = cm_req($other, POST => '/communities', json => $bad->[0]);
    is $res->code, 400, "invalid $bad->[1]: 400";
    is $data->{error}{details}, "field: $bad->[1]", "names $bad->[1]";
}
is bl_psql_value(q{SELECT count(*) FROM communities WHERE name LIKE $1}, "Ok $tag%"), 0,
   'nothing created by the refused bodies';

# ---------------------------------------------------------------- read
($res, $data) = cm_req($stranger, GET => "/communities/$pub->{id}");
is $res->code, 200, 'public community by id';
is $data->{data}{my_role}, undef, 'not a member';
($res, $data) = cm_req($stranger, GET => "/communities/$pub->{slug}");
is $data->{data}{id}, $pub->{id}, 'by slug';
for my $bad ('not-a-%20slug', 'UPPER', bl_uuid(), '12345678-1234-1234-1234-12345678901z') {
    ($res, $data) = cm_req($stranger, GET => "/communities/$bad");
    is $res->code, 404, "unknown or malformed id $bad: 404";
}

my $priv = cm_community($owner, name => "Quiet Room $tag", privacy => 'private',
                        type => 'caregivers', description => 'For caregivers only');
my $hidden = cm_community($owner, name => "Hidden Grove $tag", privacy => 'hidden',
                          type => 'survivors');
cm_member($_->{id}, $mod, 'moderator') for $pub, $priv, $hidden;
cm_member($_->{id}, $member, 'member') for $pub, $priv, $hidden;

# Search and filters.
($res, $data) = cm_req($stranger, GET => '/communities', query => { q => uc($tag), per_page => 100 });
is $res->code, 200, 'search';
my %found = map { $_->{id} => 1 } @{ $data->{data} };
ok $found{$pub->{id}} && $found{$priv->{id}}, 'public and private listed (case-insensitive)';
ok !$found{$hidden->{id}}, 'hidden not listed to a non-member';
($res, $data) = cm_req($member, GET => '/communities', query => { q => $tag, mine => 'true' });
%found = map { $_->{id} => 1 } @{ $data->{data} };
is scalar(keys %found), 3, 'mine=true: the three of the member, hidden included';
($res, $data) = cm_req($stranger, GET => '/communities', query => { q => $tag, type => 'caregivers' });
is_deeply [map { $_->{id} } @{ $data->{data} }], [$priv->{id}], 'type filter';
($res, $data) = cm_req($stranger, GET => '/communities', query => { q => 'breast', cancer_type => 'breast' });
ok((grep { $_->{id} eq $pub->{id} } @{ $data->{data} }), 'description and cancer_type match');
($res, $data) = cm_req($stranger, GET => '/communities', query => { q => '%' });
ok !(grep { $_->{id} eq $pub->{id} } @{ $data->{data} }), 'a % in q matches only a %';
is $data->{meta}{page}, 1, 'meta';
for my $q ({ type => 'x' }, { mine => 'yes' }, { sort => 'name' }, { per_page => 1000 },
           { q => 'x' x 101 }) {
    ($res) = cm_req($stranger, GET => '/communities', query => $q);
    is $res->code, 400, 'bad query ' . join(',', %$q) . ': 400';
}

# Private: the listing only. Hidden: 404 everywhere.
($res, $data) = cm_req($stranger, GET => "/communities/$priv->{id}");
is $res->code, 200, 'private listing readable';
is $data->{data}{description}, 'For caregivers only', 'with its description';
($res, $data) = cm_req($stranger, GET => "/communities/$priv->{id}/members");
is $res->code, 403, 'private members: 403 to a non-member';
for my $r (['GET', ''], ['GET', '/members'], ['POST', '/join'], ['DELETE', '/leave'],
           ['PUT', ''], ['DELETE', ''], ['GET', '/join-requests'],
           ['POST', '/invitations', { user_id => $other->{id} }]) {
    my ($m, $p, $j) = @$r;
    ($res, $data) = cm_req($stranger, $m => "/communities/$hidden->{id}$p",
                           ($j || $m eq 'PUT' ? (json => $j // { name => 'x y' }) : ()));
    is $res->code, 404, "hidden $m $p: 404 to a non-member";
}
($res) = cm_req($stranger, GET => "/communities/$hidden->{slug}");
is $res->code, 404, 'hidden by slug: 404';
($res, $data) = cm_req($member, GET => "/communities/$hidden->{id}/members");
is $res->code, 200, 'a member reads the hidden members';
is $data->{meta}{total}, 3, 'three members';
is $data->{data}[0]{role}, 'owner', 'owner first';
ok !exists $data->{data}[0]{user}{email}, 'no email in the member list';
ok cm_documented(GET => '/communities/{id}/members', $res), 'members as documented';

# ---------------------------------------------------------------- update
($res, $data) = cm_req($member, PUT => "/communities/$pub->{id}", json => { description => 'mine now' });
is $res->code, 403, 'a plain member cannot edit';
($res, $data) = cm_req($mod, PUT => "/communities/$pub->{id}", json => { description => 'Updated', cancer_type => undef });
is $res->code, 200, 'a moderator edits' or diag $res->content;
is $data->{data}{description}, 'Updated', 'description changed';
is $data->{data}{cancer_type}, undef, 'cancer_type cleared';
($res, $data) = cm_req($mod, PUT => "/communities/$pub->{id}", json => { privacy => 'hidden' });
is $res->code, 403, 'a moderator cannot change the privacy';
($res, $data) = cm_req($mod, PUT => "/communities/$pub->{id}", json => { name => undef });
is $res->code, 400, 'name cannot be cleared';
($res, $data) = cm_req($mod, PUT => "/communities/$pub->{id}", json => {});
is $res->code, 400, 'an empty change: 400';
is bl_psql_value(q{SELECT privacy FROM communities WHERE id = $1}, $pub->{id}), 'public',
   'privacy unchanged';

# ---------------------------------------------------------------- join: public
my $joiner = cm_user();
($res, $data) = cm_req($joiner, POST => "/communities/$pub->{id}/join");
is $res->code, 201, 'public: joined at once';
is $data->{data}{role}, 'member', 'as member';
($res, $data) = cm_req($joiner, POST => "/communities/$pub->{id}/join");
is $res->code, 409, 'twice: 409';

# ---------------------------------------------------------------- join: private
($res, $data) = cm_req($joiner, POST => "/communities/$priv->{id}/join");
is $res->code, 202, 'private: a pending request';
is $data->{data}{status}, 'pending', 'pending';
($res) = cm_req($joiner, POST => "/communities/$priv->{id}/join");
is $res->code, 202, 'asking again is the same request';
is scalar(cm_outbox($owner->{id}, 'community.join_request')), 1, 'the owner is notified once';
is scalar(cm_outbox($mod->{id}, 'community.join_request')), 1, 'and the moderator';
($res, $data) = cm_req($joiner, GET => "/communities/$priv->{id}/members");
is $res->code, 403, 'still no access while pending';
($res) = cm_req($member, GET => "/communities/$priv->{id}/join-requests");
is $res->code, 403, 'a plain member cannot see the requests';
($res) = cm_req($member, POST => "/communities/$priv->{id}/join-requests/$joiner->{id}/approve");
is $res->code, 403, 'nor approve';
($res, $data) = cm_req($mod, GET => "/communities/$priv->{id}/join-requests");
is $res->code, 200, 'the moderator sees the requests';
is_deeply [map { $_->{user}{id} } @{ $data->{data} }], [$joiner->{id}], 'the one request';
($res) = cm_req($mod, POST => "/communities/$priv->{id}/join-requests/not-a-uuid/approve");
is $res->code, 404, 'malformed user id: 404';
($res) = cm_req($mod, POST => "/communities/$priv->{id}/join-requests/$other->{id}/approve");
is $res->code, 404, 'no request from that user: 404';
($res, $data) = cm_req($mod, POST => "/communities/$priv->{id}/join-requests/$joiner->{id}/approve");
is $res->code, 200, 'approved' or diag $res->content;
is $data->{data}{role}, 'member', 'now a member';
is scalar(cm_outbox($joiner->{id}, 'community.join_approved')), 1, 'the user is notified';
($res) = cm_req($joiner, GET => "/communities/$priv->{id}/members");
is $res->code, 200, 'and reads the community';

my $rejected = cm_user();
cm_req($rejected, POST => "/communities/$priv->{id}/join");
($res) = cm_req($owner, POST => "/communities/$priv->{id}/join-requests/$rejected->{id}/reject");
is $res->code, 200, 'rejected';
is bl_psql_value(q{SELECT count(*) FROM community_members WHERE community_id = $1 AND user_id = $2},
                 $priv->{id}, $rejected->{id}), 0, 'not a member';

# ---------------------------------------------------------------- hidden: invitations
my $invitee = cm_user();
($res) = cm_req($invitee, POST => "/communities/$hidden->{id}/join");
is $res->code, 404, 'hidden without an invitation: 404';
($res) = cm_req($member, POST => "/communities/$hidden->{id}/invitations", json => { user_id => $invitee->{id} });
is $res->code, 403, 'a plain member cannot invite';
($res, $data) = cm_req($mod, POST => "/communities/$hidden->{id}/invitations", json => { user_id => 'nope' });
is $res->code, 400, 'malformed user_id: 400';
is $data->{error}{details}, 'field: user_id', 'names user_id';
($res) = cm_req($mod, POST => "/communities/$hidden->{id}/invitations", json => { user_id => bl_uuid() });
is $res->code, 404, 'unknown user: 404';
($res) = cm_req($mod, POST => "/communities/$hidden->{id}/invitations", json => { user_id => $member->{id} });
is $res->code, 409, 'a member already: 409';
($res) = cm_req($mod, POST => "/communities/$hidden->{id}/invitations", json => { user_id => $invitee->{id} });
is $res->code, 201, 'invited';
my @inv = cm_outbox($invitee->{id}, 'community.invitation');
is scalar(@inv), 1, 'the invitee is notified through the outbox';
is $inv[0]{data}{community_id}, $hidden->{id}, 'naming the community';
($res, $data) = cm_req($invitee, GET => "/communities/$hidden->{id}");
is $res->code, 200, 'the invitee sees the hidden community';
($res) = cm_req($invitee, GET => "/communities/$hidden->{id}/members");
is $res->code, 403, 'but does not read it yet';
($res, $data) = cm_req($invitee, POST => "/communities/$hidden->{id}/join");
is $res->code, 201, 'joins with the invitation';
is bl_psql_value(q{SELECT count(*) FROM community_invitations WHERE user_id = $1}, $invitee->{id}), 0,
   'invitation used up';

# ---------------------------------------------------------------- roles
($res) = cm_req($mod, PUT => "/communities/$pub->{id}/members/$owner->{id}", json => { role => 'member' });
is $res->code, 403, 'a moderator cannot touch an owner';
($res) = cm_req($mod, PUT => "/communities/$pub->{id}/members/$joiner->{id}", json => { role => 'owner' });
is $res->code, 403, 'nor make an owner';
($res) = cm_req($member, PUT => "/communities/$pub->{id}/members/$joiner->{id}", json => { role => 'moderator' });
is $res->code, 403, 'a plain member cannot promote';
($res, $data) = cm_req($mod, PUT => "/communities/$pub->{id}/members/$joiner->{id}", json => { role => 'king' });
is $res->code, 400, 'unknown role: 400';
($res, $data) = cm_req($mod, PUT => "/communities/$pub->{id}/members/$stranger->{id}", json => { role => 'moderator' });
is $res->code, 404, 'not a member: 404';
($res, $data) = cm_req($mod, PUT => "/communities/$pub->{id}/members/$joiner->{id}", json => { role => 'moderator' });
is $res->code, 200, 'a moderator promotes a member';
is $data->{data}{role}, 'moderator', 'to moderator';
($res, $data) = cm_req($owner, PUT => "/communities/$pub->{id}/members/$owner->{id}", json => { role => 'member' });
is $res->code, 409, 'the last owner cannot step down';
is $data->{error}{code}, 'LAST_OWNER', 'LAST_OWNER';

# ---------------------------------------------------------------- leave
($res, $data) = cm_req($owner, DELETE => "/communities/$pub->{id}/leave");
is $res->code, 409, 'the last owner cannot leave';
is cm_code($data), 'LAST_OWNER', 'LAST_OWNER';
($res) = cm_req($stranger, DELETE => "/communities/$pub->{id}/leave");
is $res->code, 404, 'a non-member has nothing to leave';
($res) = cm_req($owner, PUT => "/communities/$pub->{id}/members/$mod->{id}", json => { role => 'owner' });
is $res->code, 200, 'the owner makes another owner';
($res) = cm_req($owner, DELETE => "/communities/$pub->{id}/leave");
is $res->code, 204, 'then leaves';
is bl_psql_value(q{SELECT role FROM community_members WHERE community_id = $1 AND user_id = $2},
                 $pub->{id}, $mod->{id}), 'owner', 'the other owner stays';

# ---------------------------------------------------------------- remove and ban
my $troll = cm_user();
cm_req($troll, POST => "/communities/$pub->{id}/join");
($res) = cm_req($member, DELETE => "/communities/$pub->{id}/members/$troll->{id}");
is $res->code, 403, 'a plain member cannot remove';
($res) = cm_req($joiner, DELETE => "/communities/$pub->{id}/members/$mod->{id}");
is $res->code, 403, 'a moderator cannot remove an owner';
($res) = cm_req($joiner, DELETE => "/communities/$pub->{id}/members/$troll->{id}", query => { ban => 'maybe' });
is $res->code, 400, 'ban must be true or false';
($res) = cm_req($joiner, DELETE => "/communities/$pub->{id}/members/" . uc $troll->{id},
                query => { ban => 'true' });
is $res->code, 204, 'removed and banned (the id in capitals)';
($res) = cm_req($troll, POST => "/communities/$pub->{id}/join");
is $res->code, 403, 'a banned user cannot rejoin';
($res) = cm_req($mod, POST => "/communities/$pub->{id}/invitations", json => { user_id => $troll->{id} });
is $res->code, 409, 'nor be invited';
is bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE action = 'community.member_banned'
                   AND resource_id = $1 AND details->>'user_id' = $2
                   AND created_at > now() - interval '1 hour'}, $pub->{id}, $troll->{id}), 1,
   'the ban is audited, naming the user as the database writes ids';

# ---------------------------------------------------------------- delete
($res) = cm_req($member, DELETE => "/communities/$priv->{id}");
is $res->code, 403, 'a member cannot delete';
($res) = cm_req($mod, DELETE => "/communities/$priv->{id}");
is $res->code, 403, 'a moderator cannot delete';
is bl_psql_value(q{SELECT count(*) FROM communities WHERE id = $1}, $priv->{id}), 1, 'still there';
($res) = cm_req($owner, DELETE => "/communities/$priv->{id}");
is $res->code, 204, 'the owner deletes';
($res) = cm_req($owner, GET => "/communities/$priv->{id}");
is $res->code, 404, 'gone';
($res) = cm_req($admin, DELETE => "/communities/$hidden->{id}");
is $res->code, 204, 'an admin deletes any community';
is bl_psql_value(q{SELECT count(*) FROM audit_logs WHERE action = 'community.deleted'
                   AND resource_id IN ($1, $2) AND created_at > now() - interval '1 hour'},
                 $priv->{id}, $hidden->{id}), 2, 'deletions audited';

done_testing;

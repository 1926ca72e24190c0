# mod_beautiful_community, video sessions on the shared test server
# (no Google Calendar: links come from BeautifulVideoLinkTemplate). Who
# hosts, the link shown only to the host and the registered, lists that
# never carry it, 50 registrations at once for 10 places, edits and
# cancellation with their notices, and the reminder sent once however many
# scheduler passes race (the test-only /test/video-pass runs one).
use strict;
use warnings;
use FindBin;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use Time::HiRes qw(sleep time);
use BL::Test;
require "$FindBin::Bin/community_helpers.pl";

plan skip_all => 'mod_beautiful_community not loaded' unless community_loaded();

my ($owner, $member, $stranger, $patient) = cm_users(4);
my $doctor = cm_user(role => 'doctor');
my $admin = cm_user(role => 'admin');
my $circle = cm_community($owner, privacy => 'private');
cm_member($circle->{id}, $member);

sub at { my $min = shift;
         return bl_psql_value(qq{SELECT to_char((now() + interval '$min minutes') AT TIME ZONE 'UTC',
                                 'YYYY-MM-DD"T"HH24:MI:SS"Z"')}) }
sub session { my ($who, %f) = @_;
              return cm_req($who, POST => '/video-sessions',
                            json => { title => 'Living with fatigue', scheduled_at => at(120),
                                      duration_minutes => 45, %f }) }

# ---------------------------------------------------------------- hosts

my ($res, $data) = session($doctor, description => 'Questions welcome');
is $res->code, 201, 'a doctor hosts outside a community: 201' or diag $res->content;
my $open = $data->{data};
ok cm_documented(POST => '/video-sessions', $res), '... as documented';
like $open->{meet_link}, qr{^https://meet\.jit\.si/BeautifulLife-[0-9a-f]{32}$},
    'the host sees a template link with an unguessable room';
is $open->{link_source}, 'template', '... from the template';
is $open->{calendar}, 'none', '... Google Calendar not configured';
like $data->{message}, qr/template/, 'the host is told where the link came from';
($res) = session($patient);
is $res->code, 403, 'a patient outside a community: 403';
($res, $data) = session($owner, community_id => $circle->{id}, max_participants => 10);
is $res->code, 201, "the community's owner hosts in it: 201" or diag $res->content;
my $limited = $data->{data};
($res) = session($member, community_id => $circle->{id});
is $res->code, 403, 'a plain member: 403';
($res) = session($stranger, community_id => $circle->{id});
is $res->code, 404, 'a non-member: 404';

for my $case ([{ scheduled_at => at(-5) }, 'in the past'],
              [{ scheduled_at => 'tomorrow' }, 'not a date-time'],
              [{ duration_minutes => 4 }, 'too short'],
              [{ duration_minutes => 481 }, 'too long'],
              [{ max_participants => 1 }, 'one place'],
              [{ title => '' }, 'no title'],
              [{ room => 'x' }, 'an unknown field']) {
    ($res) = session($doctor, %{ $case->[0] });
    is $res->code, 400, "a session $case->[1]: 400";
}

# ---------------------------------------------------------------- the link

($res, $data) = cm_req($patient, GET => "/video-sessions/$open->{id}");
is $res->code, 200, 'anyone signed in sees an open session';
ok cm_documented(GET => '/video-sessions/{id}', $res), '... as documented';
ok $data->{data}{has_link}, '... that it has a link';
ok !defined $data->{data}{meet_link}, '... but not the link before registering';
ok !defined $data->{data}{link_source}, '... nor where it came from';
($res) = cm_req($stranger, GET => "/video-sessions/$limited->{id}");
is $res->code, 404, "a private community's session to a non-member: 404";
($res) = cm_req($stranger, GET => '/video-sessions/' . bl_uuid());
is $res->code, 404, 'an unknown session: 404';

($res, $data) = cm_req($patient, POST => "/video-sessions/$open->{id}/join");
is $res->code, 201, 'register: 201';
is $data->{data}{meet_link}, $open->{meet_link}, '... and now the link shows';
ok $data->{data}{is_registered}, '... registered';
($res) = cm_req($patient, POST => "/video-sessions/$open->{id}/join");
is $res->code, 200, 'again: 200';
($res) = cm_req($doctor, POST => "/video-sessions/$open->{id}/join");
is $res->code, 409, 'the host registering: 409';

($res, $data) = cm_req($patient, GET => '/video-sessions');
is $res->code, 200, 'list: 200';
ok cm_documented(GET => '/video-sessions', $res), '... as documented';
my ($listed) = grep { $_->{id} eq $open->{id} } @{ $data->{data} };
ok $listed && $listed->{has_link}, 'listed with has_link';
ok $listed && !exists $listed->{meet_link}, '... never the link itself';
ok !grep({ $_->{id} eq $limited->{id} } @{ $data->{data} }), "... not a private community's";
($res, $data) = cm_req($patient, GET => '/video-sessions', query => { mine => 'true' });
is_deeply [map { $_->{id} } @{ $data->{data} }], [$open->{id}], 'mine=true: my registrations';
($res, $data) = cm_req($member, GET => "/communities/$circle->{id}/video-sessions");
is $res->code, 200, "a member lists the community's sessions";
is_deeply [map { $_->{id} } @{ $data->{data} }], [$limited->{id}], '... its one session';
($res) = cm_req($stranger, GET => "/communities/$circle->{id}/video-sessions");
is $res->code, 404, '... a non-member of the private community: 404';
($res, $data) = cm_req($patient, GET => '/video-sessions',
                       query => { from => at(60), to => at(180) });
ok grep({ $_->{id} eq $open->{id} } @{ $data->{data} }), 'from/to: within the window';
($res, $data) = cm_req($patient, GET => '/video-sessions', query => { from => at(200) });
ok !grep({ $_->{id} eq $open->{id} } @{ $data->{data} }), 'from after it: not listed';
($res) = cm_req($patient, GET => '/video-sessions', query => { from => 'soon' });
is $res->code, 400, 'from not a date-time: 400';
($res) = cm_req($patient, GET => '/video-sessions', query => { mine => 'yes' });
is $res->code, 400, 'mine not a boolean: 400';

($res, $data) = cm_req($doctor, GET => "/video-sessions/$open->{id}/participants");
is $res->code, 200, 'the host sees who registered';
ok cm_documented(GET => '/video-sessions/{id}/participants', $res), '... as documented';
is_deeply [map { $_->{user}{id} } @{ $data->{data} }], [$patient->{id}], '... the patient';
($res) = cm_req($patient, GET => "/video-sessions/$open->{id}/participants");
is $res->code, 403, 'a participant does not: 403';

($res) = cm_req($patient, DELETE => "/video-sessions/$open->{id}/join");
is $res->code, 204, 'unregister: 204';
($res, $data) = cm_req($patient, GET => "/video-sessions/$open->{id}");
ok !defined $data->{data}{meet_link}, '... the link is hidden again';
($res) = cm_req($patient, DELETE => "/video-sessions/$open->{id}/join");
is $res->code, 404, 'unregister again: 404';

# ---------------------------------------------------------------- the race

my @crowd = cm_users(50);
cm_member($circle->{id}, $_) for @crowd;
my @pids;
for my $i (0 .. $#crowd) {
    my $pid = fork() // die "fork: $!";
    if (!$pid) {
        my ($r) = cm_req($crowd[$i], POST => "/video-sessions/$limited->{id}/join", timeout => 60);
        exit($r->code == 201 ? 0 : $r->code == 409 ? 1 : 2);
    }
    push @pids, $pid;
}
my %codes;
for my $pid (@pids) { waitpid($pid, 0); $codes{$? >> 8}++ }
is $codes{0} // 0, 10, '50 registrations at once for 10 places: 10 succeed';
is $codes{1} // 0, 40, '... 40 are told it is full (409)';
is bl_psql_value(q{SELECT count(*) FROM video_session_participants WHERE session_id = $1},
                 $limited->{id}), 10, '... and 10 rows';

# ---------------------------------------------------------------- edits

my @registered = map { $_->[0] } bl_psql(
    q{SELECT user_id FROM video_session_participants WHERE session_id = $1}, $limited->{id});
($res) = cm_req($member, PUT => "/video-sessions/$limited->{id}", json => { title => 'Mine' });
is $res->code, 403, 'a member editing: 403';
($res) = cm_req($owner, PUT => "/video-sessions/$limited->{id}", json => { max_participants => 5 });
is $res->code, 409, 'fewer places than registrations: 409';
my $moved = at(150);
($res, $data) = cm_req($owner, PUT => "/video-sessions/$limited->{id}",
                       json => { scheduled_at => $moved, description => undef });
is $res->code, 200, 'the host moves the session: 200' or diag $res->content;
is $data->{data}{scheduled_at}, $moved, '... the new time';
my @changed = cm_outbox($registered[0], 'video.changed');
is scalar @changed, 2, 'each participant gets a change notice (push and in-app)';
like $changed[0]{body}, qr/now starts/, '... saying it moved';
($res) = cm_req($admin, PUT => "/video-sessions/$limited->{id}", json => { title => 'Renamed' });
is $res->code, 200, 'an admin edits too';

($res) = cm_req($member, DELETE => "/video-sessions/$limited->{id}");
is $res->code, 403, 'a member cancelling: 403';
($res) = cm_req($owner, DELETE => "/video-sessions/$limited->{id}");
is $res->code, 204, 'the host cancels: 204';
is scalar(cm_outbox($registered[0], 'video.cancelled')), 2, 'participants are told';
($res, $data) = cm_req($owner, GET => "/video-sessions/$limited->{id}");
is $data->{data}{status}, 'cancelled', 'status cancelled';
($res) = cm_req($crowd[-1], POST => "/video-sessions/$limited->{id}/join");
is $res->code, 409, 'registering for a cancelled session: 409';
($res) = cm_req($owner, PUT => "/video-sessions/$limited->{id}", json => { title => 'Back' });
is $res->code, 409, 'editing a cancelled session: 409';

# ---------------------------------------------------------------- reminders

($res, $data) = session($doctor, scheduled_at => at(10), title => 'Soon');
my $soon = $data->{data};
($res, $data) = session($doctor, scheduled_at => at(40), title => 'Later');
my $later = $data->{data};
my @people = cm_users(3);
for my $p (@people) {
    cm_req($p, POST => "/video-sessions/$_->{id}/join") for $soon, $later;
}
# Two passes at once, as two hosts' schedulers would (the server's own
# task runs every second as well).
my @pass;
for (1 .. 2) {
    my $pid = fork() // die;
    if (!$pid) { my $r = bl_request(POST => '/test/video-pass'); exit($r->code == 200 ? 0 : 1) }
    push @pass, $pid;
}
my $ok = 0;
for (@pass) { waitpid($_, 0); $ok++ if $? == 0 }
is $ok, 2, 'two scheduler passes ran';
bl_request(POST => '/test/video-pass');
sleep 1.2;
for my $p (@people) {
    my @r = grep { $_->{data}{session_id} eq $soon->{id} } cm_outbox($p->{id}, 'video.reminder');
    is scalar @r, 2, 'one reminder per channel for the session starting soon';
}
like((cm_outbox($people[0]{id}, 'video.reminder'))[0]{title}, qr/Soon/, '... naming it');
is scalar(grep { $_->{data}{session_id} eq $later->{id} }
          map { cm_outbox($_->{id}, 'video.reminder') } @people), 0,
    'none yet for the session in 40 minutes';

# ---------------------------------------------------------------- bans

# A ban shuts the user out of a public community's sessions as privacy
# shuts out a non-member: not listed, not found, no registration, and the
# registrations they held (which showed them the Meet link) go with it.
my $square = cm_community($owner, privacy => 'public');
my $troll = cm_user();
cm_member($square->{id}, $troll);
($res, $data) = session($owner, community_id => $square->{id});
is $res->code, 201, 'a session in a public community' or diag $res->content;
my $public_session = $data->{data};
my $other_session = (session($owner, community_id => $square->{id}))[1]{data};
($res) = cm_req($troll, POST => "/video-sessions/$public_session->{id}/join");
is $res->code, 201, 'a member registers before the ban';
($res, $data) = cm_req($troll, GET => "/communities/$square->{id}/video-sessions");
is $res->code, 200, '... and sees the community\'s sessions';
($res) = cm_req($owner, DELETE => "/communities/$square->{id}/members/$troll->{id}",
                query => { ban => 'true' });
is $res->code, 204, 'the owner bans them' or diag $res->content;
is bl_psql_value(q{SELECT count(*) FROM video_session_participants WHERE user_id = $1}, $troll->{id}),
    0, 'their registration went with the ban';
($res, $data) = cm_req($troll, GET => "/communities/$square->{id}/video-sessions");
is $res->code, 404, "the banned user: the community's sessions 404";
is $data->{error}{code}, 'NOT_FOUND', '... NOT_FOUND';
($res, $data) = cm_req($troll, GET => "/video-sessions/$public_session->{id}");
is $res->code, 404, '... a session of it 404';
unlike $res->content, qr/meet/i, '... and no link';
($res, $data) = cm_req($troll, GET => '/video-sessions', query => { community_id => $square->{id} });
ok !grep({ $_->{id} eq $public_session->{id} } @{ $data->{data} // [] }),
    '... not in the upcoming list';
($res) = cm_req($troll, POST => "/video-sessions/$other_session->{id}/join");
is $res->code, 404, '... registering: 404';
is bl_psql_value(q{SELECT count(*) FROM video_session_participants WHERE user_id = $1}, $troll->{id}),
    0, '... and nothing registered';
($res) = cm_req($stranger, GET => "/video-sessions/$public_session->{id}");
is $res->code, 200, 'a non-member who is not banned still sees a public session';

done_testing();

# mod_beautiful_community: the feed's keyset cursor walks a 1,000-post feed
# (pinned posts first, many posts sharing a timestamp) with no duplicate
# and no gap while new posts keep arriving at the top.
use strict;
use warnings;
use FindBin;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use BL::Test;
require "$FindBin::Bin/community_helpers.pl";

plan skip_all => 'mod_beautiful_community not loaded' unless community_loaded();

my ($owner, $reader) = cm_users(2);
my $c = cm_community($owner, privacy => 'public');
cm_member($c->{id}, $reader);

# 1,000 posts, three to a timestamp, so ties are broken by id.
bl_psql(q{INSERT INTO community_posts (community_id, author_id, content, created_at)
          SELECT $1, $2, 'post ' || g, now() - interval '1 hour' - (g / 3) * interval '1 second'
          FROM generate_series(1, 1000) g}, $c->{id}, $owner->{id});
bl_psql(q{UPDATE community_posts SET is_pinned = true WHERE id IN (
          SELECT id FROM community_posts WHERE community_id = $1 ORDER BY content LIMIT 2)}, $c->{id});
my %original = map { $_->[0] => 1 }
    bl_psql(q{SELECT id FROM community_posts WHERE community_id = $1}, $c->{id});
is scalar(keys %original), 1000, '1,000 posts';

my (@seen, %count, $cursor, $pages, $bad_order);
my $last;
for ($pages = 0; $pages < 100; $pages++) {
    my ($res, $data) = cm_req($reader, GET => "/communities/$c->{id}/posts",
                              query => { per_page => 37, (defined $cursor ? (before => $cursor) : ()) });
    die 'feed: ' . $res->code . ' ' . $res->content unless $res->code == 200;
    for my $p (@{ $data->{data} }) {
        push @seen, $p->{id};
        $count{$p->{id}}++;
        if ($last) {
            my $k1 = [$last->{is_pinned} ? 1 : 0, $last->{created_at}];
            my $k2 = [$p->{is_pinned} ? 1 : 0, $p->{created_at}];
            $bad_order++ if $k2->[0] > $k1->[0] || ($k2->[0] == $k1->[0] && $k2->[1] gt $k1->[1]);
        }
        $last = $p;
    }
    # Someone posts between every two pages.
    my ($r) = cm_req($owner, POST => "/communities/$c->{id}/posts", json => { content => "new $pages" });
    die 'post: ' . $r->code unless $r->code == 201;
    $cursor = $data->{meta}{next_cursor};
    last unless defined $cursor;
}
is scalar(@seen), 1000, 'the walk saw 1,000 posts';
is scalar(grep { $count{$_} > 1 } keys %count), 0, 'no duplicate';
is scalar(grep { !$count{$_} } keys %original), 0, 'no gap';
is scalar(grep { !$original{$_} } @seen), 0, 'the posts written meanwhile are not in the walk';
ok !$bad_order, 'pinned first, then newest, all the way';
is $pages, 27, '28 pages of 37 (the last short)';
ok $original{$seen[0]} && $original{$seen[1]}, 'the two pinned posts open the walk';

my ($res, $data) = cm_req($reader, GET => "/communities/$c->{id}/posts", query => { per_page => 100 });
is $data->{meta}{total}, 1000 + $pages + 1, 'total counts every post';
is $data->{data}[0]{is_pinned}, JSON::PP::true, 'a fresh page 1 still starts with the pinned posts';
is $data->{data}[2]{content}, 'new ' . $pages, 'then the newest';

done_testing;

# GET /admin/analytics: every figure checked against rows this suite made
# on dates in the past that nothing else touches (2025-03-10 .. 2025-03-12,
# UTC), and the refusals: no token, not an admin, bad and reversed dates, a
# range over 366 days, an unknown parameter.
use strict;
use warnings FATAL => 'all';

use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use FindBin ();
use BL::Test;

require "$FindBin::Bin/auth_helpers.pl";

plan skip_all => 'mod_beautiful_auth not loaded' unless auth_loaded();
plan tests => 22;

my $URL = '/api/v1/admin/analytics';
my $admin = new_user(admin => 1);
my $plain = new_user();
my @people = map { new_user() } 1 .. 3;
my ($a1, $a2, $a3) = map { $_->{id} } @people;

# Sign-ups: two on the 10th, one on the 12th; activity for DAU/WAU/MAU
# counted back from the end of the 12th.
bl_psql(q{UPDATE users SET created_at = '2025-03-10 09:00Z', last_active_at = '2025-03-12 08:00Z' WHERE id = $1}, $a1);
bl_psql(q{UPDATE users SET created_at = '2025-03-10 23:59Z', last_active_at = '2025-03-12 23:30Z' WHERE id = $1}, $a2);
bl_psql(q{UPDATE users SET created_at = '2025-03-12 00:00Z', last_active_at = '2025-03-08 12:00Z' WHERE id = $1}, $a3);

# Posts and comments: two posts on the 11th (a third, deleted, does not count),
# one comment on the 12th.
my ($community) = map { $_->[0] } bl_psql(
    q{INSERT INTO communities (name, slug) VALUES ($1, $1) RETURNING id}, 'analytics-' . bl_uuid());
my @posts = map { $_->[0] } map { bl_psql(
    q{INSERT INTO community_posts (community_id, author_id, content, created_at, deleted_at)
      VALUES ($1, $2, 'x', $3, $4) RETURNING id}, $community, $a1, @$_) }
    (['2025-03-11 10:00Z', undef], ['2025-03-11 20:00Z', undef], ['2025-03-11 21:00Z', '2025-03-11 22:00Z']);
bl_psql(q{INSERT INTO post_comments (post_id, author_id, content, created_at)
          VALUES ($1, $2, 'y', '2025-03-12 07:00Z')}, $posts[0], $a2);

# A record uploaded on the 10th (deleted since: it still was uploaded).
bl_psql(q{INSERT INTO medical_records (owner_id, title, storage_key, content_type, size_bytes,
          sha256, key_version, nonce_prefix, created_at, deleted_at)
          VALUES ($1, 'scan', 'gone', 'application/pdf', 1, decode(repeat('00', 32), 'hex'), 1,
                  decode('00000000', 'hex'),
                  '2025-03-10 12:00Z', '2025-03-10 13:00Z')}, $a1);

# Doses on the 11th: fired, taken, missed are due (one taken); skipped is not.
my ($reminder) = map { $_->[0] } bl_psql(
    q{INSERT INTO reminders (user_id, type, title, starts_at, is_active)
      VALUES ($1, 'medication', 'pill', '2025-03-01Z', false) RETURNING id}, $a1);
my $h = 6;
for my $status (qw(fired taken missed skipped)) {
    bl_psql(q{INSERT INTO reminder_logs (reminder_id, scheduled_for, status)
              VALUES ($1, $2, $3::reminder_log_status)}, $reminder, sprintf('2025-03-11 %02d:00Z', $h++), $status);
}

# Revenue on the 12th: two captured premium_month payments; a failed one does not count.
for my $p (['captured', 49900], ['captured', 49900], ['failed', 49900]) {
    my $ref = substr(bl_uuid(), 0, 8);
    bl_psql(q{INSERT INTO payments (user_id, razorpay_order_id, razorpay_payment_id, amount_paise,
              currency, status, plan, paid_at)
              VALUES ($1, $2, $3, $4, 'INR', $5::payment_status, 'premium_month', '2025-03-12 15:00Z')},
            $a2, "order_$ref", "pay_$ref", $p->[1], $p->[0]);
}

my ($res, $data) = bl_request(GET => $URL, token => $admin->{access},
                              query => { from => '2025-03-10', to => '2025-03-12' });
is $res->code, 200, 'an admin gets the figures';
my $d = $data->{data} // {};
is_deeply [ @$d{qw(from to)} ], ['2025-03-10', '2025-03-12'], 'for the range asked';
is_deeply $d->{totals}, { signups => 3, posts => 2, comments => 1, records_uploaded => 1,
                          reminders_due => 3, reminders_taken => 1 }, 'totals match the rows';
is scalar(@{ $d->{days} // [] }), 3, 'one entry per day';
my %day = map { $_->{date} => $_ } @{ $d->{days} // [] };
is $day{'2025-03-10'}{signups}, 2, 'two sign-ups on the 10th (23:59 UTC still the 10th)';
is $day{'2025-03-12'}{signups}, 1, 'one on the 12th (00:00 UTC)';
is $day{'2025-03-11'}{posts}, 2, 'two live posts on the 11th';
is $day{'2025-03-12'}{comments}, 1, 'the comment on the 12th';
is $day{'2025-03-10'}{records_uploaded}, 1, 'the record on the 10th';
is_deeply [ @{ $day{'2025-03-11'} }{qw(reminders_due reminders_taken)} ], [3, 1], 'doses on the 11th';
is_deeply $d->{active_users}, { daily => 2, weekly => 3, monthly => 3 },
    'active users counted back from the end of the 12th';
is_deeply $d->{revenue}, [ { plan => 'premium_month', currency => 'INR', payments => 2,
                             amount_paise => 99800 } ], 'revenue by plan, captured only';
is $res->header('Cache-Control'), 'no-store', 'not cached';

($res, $data) = bl_request(GET => $URL, token => $admin->{access}, query => { to => '2025-03-12' });
is scalar(@{ $data->{data}{days} // [] }), 30, 'without from: the 30 days up to to';
is $data->{data}{totals}{signups}, 3, '... which hold the same sign-ups';

($res) = bl_request(GET => $URL);
is $res->code, 401, 'no token: 401';
($res) = bl_request(GET => $URL, token => $plain->{access});
is $res->code, 403, 'not an admin: 403';
($res, $data) = bl_request(GET => $URL, token => $admin->{access}, query => { from => '2025-13-01' });
is $data->{error}{details}, 'field: from', 'a bad date: 400 naming the field';
($res, $data) = bl_request(GET => $URL, token => $admin->{access},
                           query => { from => '2025-03-12', to => '2025-03-10' });
is $res->code, 400, 'from after to: 400';
($res, $data) = bl_request(GET => $URL, token => $admin->{access},
                           query => { from => '2024-01-01', to => '2025-03-10' });
like $data->{error}{message} // '', qr/at most 366 days/, 'a range over 366 days: 400';
($res, $data) = bl_request(GET => $URL, token => $admin->{access}, query => { since => '2025-01-01' });
is $data->{error}{details}, 'field: since', 'an unknown parameter: 400';
($res) = bl_request(GET => $URL, token => $admin->{access},
                    query => { from => '2025-01-01', to => '2026-01-01' });
is $res->code, 200, 'a full 366-day range is allowed';

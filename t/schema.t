#!/usr/bin/perl
# t/schema.t — the data model's constraints, ON DELETE rules, partitions and
# the idempotence of scripts/migrate, checked against a real PostgreSQL.
#
# Connection: the standard libpq environment (PGHOST, PGPORT, PGDATABASE,
# PGUSER), with the migrations already applied. SQL runs through
# `psql -XAtq` (no DBI). Every row this test writes carries a per-run
# suffix and is removed at the end.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempfile);
use FindBin qw($Bin);

my $migrate = "$Bin/../scripts/migrate";
my $sfx     = sprintf('%d-%d-%04d', $$, time, int(rand(10000)));
my $reqid   = "schema-t-$sfx";

# Runs SQL with ON_ERROR_STOP; returns (exit status, stdout, stderr).
sub psql {
    my ($sql) = @_;
    my ($fh, $file) = tempfile(UNLINK => 1, SUFFIX => '.sql');
    print $fh $sql;
    close $fh;
    my (undef, $errfile) = tempfile(UNLINK => 1);
    my $out = qx{psql -XAtq -v ON_ERROR_STOP=1 -f '$file' 2>'$errfile'};
    my $rc  = $? >> 8;
    open my $eh, '<', $errfile or die "$errfile: $!";
    my $err = do { local $/; <$eh> };
    close $eh;
    chomp $out;
    return ($rc, $out, $err // '');
}

# The value the SQL returns; the test fails (with psql's error) if it errs.
sub value {
    my ($name, $sql) = @_;
    my ($rc, $out, $err) = psql($sql);
    is($rc, 0, "$name: runs") or diag($err);
    return $out;
}

# The SQL must be refused, and refused for the stated reason.
sub refused {
    my ($name, $sql, $reason) = @_;
    my ($rc, $out, $err) = psql($sql);
    isnt($rc, 0, "$name: refused");
    like($err, $reason, "$name: refused because of $reason");
}

# Users for this run.
my $email = "schema-$sfx\@example.org";
my $uid = value('create a user',
    "INSERT INTO users (email, password_hash) VALUES ('$email', 'x') RETURNING id");
like($uid, qr/^[0-9a-f-]{36}$/, 'a new user gets a uuid');
my $other = value('create a second user',
    "INSERT INTO users (email, password_hash) VALUES ('other-$email', 'x') RETURNING id");

# ---- email uniqueness, case-insensitive
refused('same email again',
    "INSERT INTO users (email, password_hash) VALUES ('$email', 'y')",
    qr/users_email_lower_key/);
refused('same email differing only in case',
    "INSERT INTO users (email, password_hash) VALUES ('" . uc($email) . "', 'y')",
    qr/users_email_normalised|users_email_lower_key/);
refused('email with surrounding blanks',
    "INSERT INTO users (email, password_hash) VALUES (' $email', 'y')",
    qr/users_email_normalised/);
is(value('email index definition',
         "SELECT indexdef FROM pg_indexes WHERE indexname = 'users_email_lower_key'"),
   'CREATE UNIQUE INDEX users_email_lower_key ON public.users USING btree (lower(email))',
   'the email index is unique on lower(email)');

# ---- one membership per user and community
my $slug = "schema-t-$sfx";
my $cid = value('create a community',
    "INSERT INTO communities (name, slug) VALUES ('Schema test $sfx', '$slug') RETURNING id");
value('join the community',
    "INSERT INTO community_members (community_id, user_id) VALUES ('$cid', '$uid')");
refused('a second membership',
    "INSERT INTO community_members (community_id, user_id, role) VALUES ('$cid', '$uid', 'moderator')",
    qr/community_members_pkey/);

# ---- one like per user and post
my $pid = value('create a post',
    "INSERT INTO community_posts (community_id, author_id, content) VALUES ('$cid', '$uid', 'hello') RETURNING id");
value('like the post', "INSERT INTO post_likes (post_id, user_id) VALUES ('$pid', '$other')");
refused('a second like',
    "INSERT INTO post_likes (post_id, user_id) VALUES ('$pid', '$other')",
    qr/post_likes_pkey/);
is(value('like counter', "SELECT like_count FROM community_posts WHERE id = '$pid'"), '1',
   'the like counter counts the one like');

# ---- payment amounts
for my $amount (0, -100) {
    refused("payment of $amount paise",
        "INSERT INTO payments (user_id, razorpay_order_id, amount_paise) VALUES ('$uid', 'order_${sfx}_$amount', $amount)",
        qr/payments_amount_positive/);
}
value('payment of 49900 paise',
    "INSERT INTO payments (user_id, razorpay_order_id, amount_paise) VALUES ('$uid', 'order_${sfx}_ok', 49900)");
refused('the same razorpay order twice',
    "INSERT INTO payments (user_id, razorpay_order_id, amount_paise) VALUES ('$uid', 'order_${sfx}_ok', 100)",
    qr/payments_razorpay_order_id_key/);

# ---- audit_logs partitions
# The first call creates whatever months are missing (a long-lived database
# may have crossed a month since it was migrated); a second creates nothing.
value('ensure partitions',
      "SELECT create_monthly_partitions('audit_logs', 3) + create_monthly_partitions('chat_messages', 3)");
is(value('partitions already there',
         "SELECT create_monthly_partitions('audit_logs', 3) + create_monthly_partitions('chat_messages', 3)"),
   '0', 'create_monthly_partitions is idempotent');
is(value('audit row now',
         "INSERT INTO audit_logs (user_id, action, outcome, request_id) VALUES ('$uid', 'schema.test', 'success', '$reqid') "
       . "RETURNING tableoid::regclass::text = 'audit_logs_' || to_char(now() AT TIME ZONE 'UTC', 'YYYY_MM')"),
   't', "an audit row of this month lands in this month's partition");
is(value('audit row in two months',
         "INSERT INTO audit_logs (action, outcome, request_id, created_at) "
       . "VALUES ('schema.test', 'success', '$reqid', date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '2 months 1 day') "
       . "RETURNING tableoid::regclass::text = 'audit_logs_' || to_char(now() AT TIME ZONE 'UTC' + interval '2 months', 'YYYY_MM')"),
   't', 'an audit row two months ahead lands in that month\'s partition');
is(value('audit row far ahead',
         "INSERT INTO audit_logs (action, outcome, request_id, created_at) "
       . "VALUES ('schema.test', 'success', '$reqid', '2999-06-15T12:00:00Z') RETURNING tableoid::regclass"),
   'audit_logs_default', 'a far-future audit row lands in the default partition');
refused('deleting an audit row',
    "DELETE FROM audit_logs WHERE request_id = '$reqid'",
    qr/append-only/);

# ---- deleting a user
value('notification for the user',
    "INSERT INTO notifications (user_id, channel, type, title, body) VALUES ('$uid', 'in_app', 'schema.test', 't', 'b')");
my $before = value('rows before',
    "SELECT (SELECT count(*) FROM community_posts WHERE author_id = '$uid') || ',' ||"
  . " (SELECT count(*) FROM community_members WHERE user_id = '$uid') || ',' ||"
  . " (SELECT count(*) FROM notifications WHERE user_id = '$uid') || ',' ||"
  . " (SELECT count(*) FROM audit_logs WHERE user_id = '$uid')");
is($before, '1,1,1,1', 'the user has a post, a membership, a notification and an audit row');
value('delete the user', "DELETE FROM users WHERE id = '$uid'");
is(value('rows after',
         "SELECT (SELECT count(*) FROM community_posts WHERE author_id = '$uid') || ',' ||"
       . " (SELECT count(*) FROM community_members WHERE user_id = '$uid') || ',' ||"
       . " (SELECT count(*) FROM notifications WHERE user_id = '$uid') || ',' ||"
       . " (SELECT count(*) FROM community_posts WHERE id = '$pid' AND author_id IS NULL)"),
   '0,0,0,1', 'memberships and notifications went with the user; the post stays, detached');
is(value('audit kept',
         "SELECT count(*) || ',' || count(user_id) FROM audit_logs "
       . "WHERE request_id = '$reqid' AND created_at < now() + interval '1 minute'"),
   '1,0', 'the audit row stays, with user_id NULL');
is(value('payment kept',
         "SELECT count(*) || ',' || count(user_id) FROM payments WHERE razorpay_order_id = 'order_${sfx}_ok'"),
   '1,0', 'the payment stays for accounting, detached from the user');

# ---- migrate again changes nothing
my $count = value('migrations recorded', 'SELECT count(*) FROM schema_migrations');
cmp_ok($count, '>=', 1, 'schema_migrations has the applied migrations');
my $out = qx{'$migrate' 2>&1};
is($? >> 8, 0, 'scripts/migrate run again exits 0') or diag($out);
unlike($out, qr/^applied /m, 'scripts/migrate run again applies nothing');
is(value('migrations recorded again', 'SELECT count(*) FROM schema_migrations'), $count,
   'schema_migrations is unchanged');

# ---- clean up what this run wrote (audit rows only through maintenance)
value('clean up',
    "DELETE FROM users WHERE id = '$other';\n"
  . "DELETE FROM communities WHERE slug = '$slug';\n"
  . "DELETE FROM payments WHERE razorpay_order_id LIKE 'order_${sfx}_%';\n"
  . "SET bl.partition_maintenance = 'on';\n"
  . "DELETE FROM audit_logs WHERE request_id = '$reqid';\n");

done_testing();

# The partition task (a mod_watchdog singleton in core): it keeps the
# monthly partitions of audit_logs and chat_messages ahead of time, here
# every 2 seconds (BeautifulPartitionInterval in t/conf/test.d/core.conf).
use strict;
use warnings;
use Apache::Test qw(-withtestmore);
use Test::More import => ['!plan'];
use BL::Test;

plan skip_all => 'mod_beautiful_core not loaded'
    unless (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / core /;

my $mark = bl_error_log_mark();

# The partition for the 3rd month ahead, named as create_monthly_partitions
# names it: <table>_YYYY_MM of the UTC month.
my $part = bl_psql_value(q{SELECT 'audit_logs_' || to_char(date_trunc('month', now() AT TIME ZONE 'UTC')}
                       . q{ + interval '3 months', 'YYYY_MM')});
like $part, qr/^audit_logs_\d{4}_\d\d$/, "3rd month ahead is $part";

sub attached {
    return bl_psql_value('SELECT count(*) FROM pg_inherits WHERE inhrelid = to_regclass($1) '
                       . q{AND inhparent = 'audit_logs'::regclass}, $part);
}
is attached(), 1, "$part exists as a partition of audit_logs";
my $rows = bl_psql_value("SELECT count(*) FROM $part");
is $rows, 0, "$part is empty";
if ($rows) {    # never drop rows: the test needs an empty month
    done_testing();
    exit 0;
}

# DROP is not refused by the append-only trigger (sql/README.md), so no
# bl.partition_maintenance is needed for an empty partition.
# Dropped and looked at in one transaction: the task (every 2 s here) may
# create the month again right after, and that is what is tested next.
is bl_psql_value("DROP TABLE $part; SELECT count(*) FROM pg_inherits "
                 . "WHERE inhrelid = to_regclass('$part') AND inhparent = 'audit_logs'::regclass"),
    0, "$part dropped";

my $deadline = time + 20;
sleep 1 while attached() == 0 && time < $deadline;
is attached(), 1, "the watchdog recreated $part";

# and it goes on working after the first pass: the interval, not once only
bl_psql("DROP TABLE $part");
$deadline = time + 20;
sleep 1 while attached() == 0 && time < $deadline;
is attached(), 1, "recreated again on a later pass";

is_deeply [bl_error_log_crashes($mark)], [], 'no httpd child crashed';
unlike bl_error_log_since($mark), qr/monthly partitions not maintained/,
    'no partition maintenance failure logged';

done_testing();

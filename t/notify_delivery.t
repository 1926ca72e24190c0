# mod_beautiful_notify: the outbox delivery worker with the file transport
# (the test server's configuration: conf/mods-available/beautiful_notify.conf
# and t/conf/test.d/notify.conf). Rows are written with psql as another
# module's transaction would; the worker runs on its own in the server.
use strict;
use warnings FATAL => 'all';

use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use Time::HiRes qw(sleep time);
use BL::Test;

plan skip_all => 'mod_beautiful_notify not loaded'
    unless " $ENV{BL_LOADED_MODULES} " =~ / notify /;
plan tests => 30;

my $mark = bl_error_log_mark();

sub new_user {
    my (%opt) = @_;
    my $email = $opt{email} // 'notify-' . bl_uuid() . '@example.org';
    my $id = bl_psql_value(
        q{INSERT INTO users (email, password_hash, deleted_at)
          VALUES ($1, 'x', CASE WHEN $2 = '1' THEN now() END) RETURNING id},
        $email, $opt{deleted} ? 1 : 0);
    return ($id, $email);
}

sub add_notification {
    my (%n) = @_;
    return bl_psql_value(
        q{INSERT INTO notifications (user_id, channel, type, title, body)
          VALUES ($1, $2::notification_channel, 'test.notify', $3, $4) RETURNING id},
        $n{user}, $n{channel} // 'email', $n{title}, $n{body});
}

sub row {
    my $id = shift;
    my ($r) = bl_psql(
        q{SELECT status, attempts, last_error, sent_at IS NOT NULL
          FROM notifications WHERE id = $1}, $id);
    return { status => $r->[0], attempts => $r->[1], last_error => $r->[2],
             sent => $r->[3] eq 't' };
}

# Polls (bounded) until the row leaves pending/sending.
sub wait_settled {
    my ($id, $secs) = @_;
    my $until = time + ($secs // 15);
    while (time < $until) {
        my $r = row($id);
        return $r if $r->{status} eq 'sent' || $r->{status} eq 'failed';
        sleep 0.2;
    }
    return row($id);
}

sub message_for {
    my $id = shift;
    my ($m) = grep { $_->{name} eq "$id.eml" } bl_mail_messages();
    return $m;
}

# Header fields of a raw message, in order: [name, value] with folded
# lines unfolded.
sub headers {
    my $raw = shift;
    my ($head) = split /\r\n\r\n/, $raw, 2;
    $head =~ s/\r\n[ \t]+/ /g;
    return map { [ split /:\s*/, $_, 2 ] } split /\r\n/, $head;
}

sub body_of {
    my $raw = shift;
    my (undef, $body) = split /\r\n\r\n/, $raw, 2;
    return $body;
}

# ---------------------------------------------------------------- delivered
my ($uid, $email) = new_user();
my $body = "Hello,\nplease confirm your address:\nhttps://example.org/verify?t=abc=def\n.\nThank you";
my $nid = add_notification(user => $uid, title => 'Verify your email', body => $body);
my $r = wait_settled($nid);
is $r->{status}, 'sent', 'pending email notification is sent';
is $r->{attempts}, 1, 'in one attempt';
ok $r->{sent}, 'sent_at is set';
ok !defined $r->{last_error}, 'no last_error';

my $m = message_for($nid);
ok $m, 'the message is in the mail sink as <id>.eml';
my @h = headers($m ? $m->{content} : '');
my %h = map { lc $_->[0] => $_->[1] } @h;
is $h{to}, $email, 'To is the user\'s address';
is $h{subject}, 'Verify your email', 'Subject is the title';
like $h{from}, qr/<no-reply\@beautiful-life\.test>$/, 'From from BeautifulMailFrom';
is $h{'message-id'}, "<$nid\@beautiful-life.test>", 'Message-ID names the notification';
like $h{date}, qr/^\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000$/, 'RFC 5322 Date';
like $h{'content-type'}, qr{^text/plain; charset=utf-8$}i, 'text/plain UTF-8';
(my $crlf_body = $body) =~ s/\n/\r\n/g;
is body_of($m ? $m->{content} : ''), "$crlf_body\r\n", 'body as written, CRLF line ends';
is $m ? sprintf('%04o', (stat $m->{file})[2] & 07777) : undef, '0640', 'file mode 0640';
opendir(my $dh, $ENV{BL_MAIL_DIR}) or die "$ENV{BL_MAIL_DIR}: $!";
ok !grep({ /^\.\Q$nid\E\./ } readdir $dh), 'no temporary file left';
closedir $dh;

# ---------------------------------------------------------------- non-ASCII
my $nid_utf8 = add_notification(user => $uid, title => "Rappel : votre séance — 明日",
                                body => "Bonne journée ☀");
$r = wait_settled($nid_utf8);
is $r->{status}, 'sent', 'non-ASCII title and body sent';
$m = message_for($nid_utf8);
%h = map { lc $_->[0] => $_->[1] } headers($m ? $m->{content} : '');
like $h{subject}, qr/^=\?UTF-8\?B\?/, 'non-ASCII Subject is RFC 2047 encoded';
my $decoded = join '', map { require MIME::Base64; MIME::Base64::decode_base64($_) }
    ($h{subject} // '') =~ /=\?UTF-8\?B\?([^?]*)\?=/g;
is $decoded, "Rappel : votre s\xc3\xa9ance \xe2\x80\x94 \xe6\x98\x8e\xe6\x97\xa5",
    'and decodes to the title';

# ---------------------------------------------------------------- header injection
my $nid_inj = add_notification(user => $uid,
    title => "Hello\r\nBcc: attacker\@example.net\r\n\r\nInjected body",
    body => 'real body');
$r = wait_settled($nid_inj);
is $r->{status}, 'sent', 'title with CR/LF is still delivered';
$m = message_for($nid_inj);
@h = headers($m ? $m->{content} : '');
is_deeply [ map { lc $_->[0] } @h ],
    [qw(date from to subject message-id mime-version content-type content-transfer-encoding)],
    'no extra header fields';
is +(grep { lc $_->[0] eq 'subject' } @h)[0][1],
    'Hello Bcc: attacker@example.net Injected body', 'CR/LF folded into spaces in Subject';
is body_of($m ? $m->{content} : ''), "real body\r\n", 'body untouched by the title';

# ---------------------------------------------------------------- other channels
# Their own channels take them (t/notify_channels.t); never the mail sink.
my $nid_sms = add_notification(user => $uid, channel => 'sms', title => 'sms', body => 'sms');
my $nid_in_app = add_notification(user => $uid, channel => 'in_app', title => 'app', body => 'app');
# One more email after them: once it is sent, the worker has passed over them.
my $nid_after = add_notification(user => $uid, title => 'after', body => 'after');
is wait_settled($nid_after)->{status}, 'sent', 'a later email is sent';
# (The sms channel comes after email in a pass: wait for it.)
my $until_sms = time + 10;
sleep 0.1 while row($nid_sms)->{status} =~ /^(pending|sending)$/ && time < $until_sms;
is_deeply [ @{ row($nid_sms) }{qw(status attempts)} ], ['skipped', 1],
    'sms row: skipped by the sms channel (no phone), not mailed';
is_deeply [ @{ row($nid_in_app) }{qw(status attempts)} ], ['sent', 1],
    'in_app row: delivered by being stored, not mailed';
ok !message_for($nid_sms) && !message_for($nid_in_app), 'no message for them';

# ---------------------------------------------------------------- deleted user
my ($gone_uid, $gone_email) = new_user(deleted => 1);
my $nid_gone = add_notification(user => $gone_uid, title => 'to a deleted user', body => 'x');
$r = wait_settled($nid_gone);
is $r->{status}, 'failed', 'notification to a deleted user fails at once';
ok defined $r->{last_error} && index($r->{last_error}, $gone_email) < 0,
    'last_error says why, without the address';

# ---------------------------------------------------------------- interrupted delivery
# A worker that claimed this row and died: 'sending' with an expired lease.
my $nid_crash = bl_psql_value(
    q{INSERT INTO notifications (user_id, channel, type, title, body, status,
                                 attempts, next_attempt_at)
      VALUES ($1, 'email', 'test.notify', 'interrupted', 'x', 'sending', 1,
              now() - interval '1 minute') RETURNING id}, $uid);
$r = wait_settled($nid_crash, 20);
is_deeply [ @{$r}{qw(status attempts)} ], ['sent', 2],
    'an interrupted delivery is reclaimed and sent on the next attempt';

# ---------------------------------------------------------------- logs
my $log = bl_error_log_since($mark);
ok index($log, $email) < 0 && index($log, 'Verify your email') < 0,
    'no address or title in the error log';
is_deeply [ bl_error_log_crashes($mark) ], [], 'no httpd child crashed';

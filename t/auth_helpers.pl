# Shared helpers of the t/auth_*.t suites (mod_beautiful_auth), loaded with
#   require "$FindBin::Bin/auth_helpers.pl";
use strict;
use warnings;
use Time::HiRes qw(sleep time);
use BL::Test;

our $PASSWORD = 'correct horse battery staple 42';

sub auth_loaded {
    return (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / auth /;
}

sub new_email { return 'user-' . bl_uuid() . '@example.test' }

# Registers a user; returns ($res, $data, $email).
sub register_user {
    my (%opt) = @_;
    my $email = $opt{email} // new_email();
    my %body = (email => $email, password => $opt{password} // $PASSWORD);
    $body{role} = $opt{role} if $opt{role};
    $body{profile} = $opt{profile} if $opt{profile};
    my ($res, $data) = bl_request(POST => '/api/v1/auth/register', json => \%body);
    return ($res, $data, $email);
}

sub login {
    my ($email, $password) = @_;
    return bl_request(POST => '/api/v1/auth/login',
                      json => { email => $email, password => $password // $PASSWORD });
}

# A registered, logged-in user: { id, email, access, refresh }.
sub new_user {
    my (%opt) = @_;
    my ($res, $data, $email) = register_user(%opt);
    die "register: " . $res->code . ' ' . $res->content unless $res->code == 201;
    my $id = $data->{data}{id};
    if ($opt{admin}) {
        bl_psql(q{UPDATE users SET role = 'admin' WHERE id = $1}, $id);
    }
    if ($opt{public}) {
        bl_psql(q{UPDATE users SET is_public = true WHERE id = $1}, $id);
    }
    my ($lres, $ldata) = login($email, $opt{password});
    die "login: " . $lres->code . ' ' . $lres->content unless $lres->code == 200;
    return { id => $id, email => $email, access => $ldata->{data}{access_token},
             refresh => $ldata->{data}{refresh_token}, session => undef };
}

# The email to $to of notification type $type: from the file sink when
# mod_beautiful_notify delivers it, else the outbox row. Returns the text.
sub mail_for {
    my ($to, $subject_re, $secs) = @_;
    my $notify = (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / notify /;
    my $until = time + ($secs // 15);
    while (time < $until) {
        if ($notify) {
            for my $m (reverse bl_mail_messages()) {
                my $c = $m->{content};
                next unless $c =~ /^To:.*\Q$to\E/mi;
                next if $subject_re && $c !~ /^Subject:.*$subject_re/mi;
                return $c;
            }
        } else {
            my $body = bl_psql_value(
                q{SELECT n.body FROM notifications n JOIN users u ON u.id = n.user_id
                  WHERE u.email = $1 ORDER BY n.created_at DESC LIMIT 1}, $to);
            return $body if defined $body;
        }
        sleep 0.2;
    }
    return undef;
}

# The messages to $to (subject matching $re) in the file sink, as
# { name => content }.
sub mails_to {
    my ($to, $re) = @_;
    my %m;
    for my $m (bl_mail_messages()) {
        my $c = $m->{content};
        next unless $c =~ /^To:.*\Q$to\E/mi;
        next if $re && $c !~ /^Subject:.*$re/mi;
        $m{ $m->{name} } = $c;
    }
    return \%m;
}

# Waits for a message to $to that is not in $seen (from mails_to); returns
# its text or undef.
sub new_mail_to {
    my ($to, $re, $seen, $secs) = @_;
    my $until = time + ($secs // 15);
    while (time < $until) {
        my $now = mails_to($to, $re);
        my @new = grep { !exists $seen->{$_} } keys %$now;
        return $now->{ $new[0] } if @new == 1;
        sleep 0.2;
    }
    return undef;
}

# The token of the first link "...#token=..." in a message (quoted-printable
# soft breaks undone). Links carry it in the fragment, never the query.
sub token_from_mail {
    my ($text) = @_;
    return undef unless defined $text;
    $text =~ s/=\r?\n//g;
    $text =~ s/=3D/=/g;
    return $text =~ /#token=([A-Za-z0-9_-]+)/ ? $1 : undef;
}

# Set-Cookie headers of a response as { name => { value, attrs } }.
sub cookies_of {
    my ($res) = @_;
    my %c;
    for my $h ($res->header('Set-Cookie')) {
        my ($pair, @attrs) = split /;\s*/, $h;
        my ($name, $value) = split /=/, $pair, 2;
        $c{$name} = { value => $value, attrs => [@attrs], raw => $h };
    }
    return \%c;
}

1;

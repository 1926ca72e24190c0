# Shared helpers of the t/medical_*.t suites (mod_beautiful_medical), loaded with
#   require "$FindBin::Bin/medical_helpers.pl";
use strict;
use warnings;
use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(sleep time);
use BL::Test;

sub medical_loaded {
    return (' ' . ($ENV{BL_LOADED_MODULES} // '') . ' ') =~ / medical /;
}

# A user made straight in the database with a live session (no argon2, no
# login round trip): { id, email, role, token }.
sub med_user {
    my (%opt) = @_;
    my $role = $opt{role} // 'patient';
    my $email = 'med-' . bl_uuid() . '@example.test';
    my ($id) = map { $_->[0] } bl_psql(
        q{INSERT INTO users (email, password_hash, role, first_name, last_name, email_verified_at)
          VALUES ($1, 'x', $2::user_role, $3, 'Tester', now()) RETURNING id},
        $email, $role, $opt{first_name} // ucfirst $role);
    my $sid = bl_uuid();
    bl_session_create($sid, $id, 3600) or die 'session';
    my ($token) = bl_mint_jwt(sub => $id, role => $role, sid => $sid);
    return { id => $id, email => $email, role => $role, token => $token };
}

sub med_storage_dir { return "$ENV{BL_UPLOAD_DIR}/medical" }

sub med_blob_path {
    my ($record_id) = @_;
    my $key = bl_psql_value('SELECT storage_key FROM medical_records WHERE id = $1', $record_id);
    return med_storage_dir() . "/$key.enc";
}

sub med_read_file {
    my ($path) = @_;
    open my $fh, '<:raw', $path or return undef;
    local $/;
    my $d = <$fh>;
    close $fh;
    return $d;
}

sub med_write_file {
    my ($path, $data) = @_;
    open my $fh, '>:raw', $path or die "$path: $!";
    print $fh $data;
    close $fh;
}

# Names of the files in the storage directory (blobs and leftovers).
sub med_storage_files {
    opendir my $d, med_storage_dir() or return ();
    my @f = sort grep { !/^\./ } readdir $d;
    closedir $d;
    return @f;
}

# A multipart/form-data body as a browser sends it.
sub med_multipart {
    my (%opt) = @_;
    my $b = '----BLFormBoundary' . int(rand(1e9));
    my $body = '';
    for my $k (sort keys %{ $opt{fields} || {} }) {
        $body .= "--$b\r\nContent-Disposition: form-data; name=\"$k\"\r\n\r\n$opt{fields}{$k}\r\n";
    }
    if (defined $opt{file}) {
        my $name = $opt{filename} // 'scan.pdf';
        utf8::encode($name);
        $body .= "--$b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"$name\"\r\n"
               . "Content-Type: " . ($opt{part_type} // 'application/octet-stream') . "\r\n\r\n"
               . $opt{file} . "\r\n";
    }
    $body .= "--$b--\r\n";
    return ($body, "multipart/form-data; boundary=$b");
}

# Uploads $data as $user, by multipart (default) or raw body.
sub med_upload {
    my ($user, $data, %opt) = @_;
    my %fields = (title => $opt{title} // 'Blood test', %{ $opt{fields} || {} });
    my $filename = $opt{filename};
    utf8::encode($filename) if defined $filename;
    if ($opt{raw}) {
        return bl_request(POST => ($opt{base} // '') . '/api/v1/medical-records', token => $user->{token},
                          body => $data, content_type => 'application/octet-stream',
                          query => { %fields, (defined $filename ? (filename => $filename) : ()) },
                          timeout => 120);
    }
    my ($body, $ct) = med_multipart(fields => \%fields, file => $data, filename => $opt{filename});
    return bl_request(POST => ($opt{base} // '') . '/api/v1/medical-records', token => $user->{token},
                      body => $body, content_type => $ct, timeout => 120);
}

# A PDF-looking document of exactly $len bytes (at least 9) with a
# plaintext canary inside.
sub med_pdf {
    my ($len, $canary) = @_;
    my $head = "%PDF-1.7\n";
    my $fill = $canary x (int(($len - length $head) / length($canary)) + 1);
    return substr($head . $fill, 0, $len);
}

1;

# The API documentation as a person sees it: Debian's chromium, driven by
# playwright-core (t/tools/docs_browser.js), opens /docs, waits for Swagger
# UI to render the spec, finds the operations of every loaded module, runs
# "Try it out" on GET /health and saves a screenshot in t/logs.
use strict;
use warnings FATAL => 'all';

use Test::More import => ['!plan'];
use Apache::Test qw(-withtestmore);
use File::Temp qw(tempdir);
use JSON::PP ();
use BL::Test;

plan tests => 10;

my $npm = $ENV{BL_NPM_DIR} or die 'BL_NPM_DIR is not set (scripts/check sets it)';
my $chromium = $ENV{BL_CHROMIUM} // '/usr/bin/chromium';
die "$chromium not found (Debian package chromium)" unless -x $chromium;
my $out = Apache::Test::vars('serverroot') . '/logs';
my $base = 'http://' . Apache::Test::vars('servername') . ':' . Apache::Test::vars('port');

# Which spec tags belong to which loaded module (the tags' x-module).
my ($res) = bl_request(GET => '/api/v1/openapi.json');
is $res->code, 200, 'the spec is served as JSON';
my $spec = JSON::PP->new->decode($res->content);
my %groups;
for my $tag (@{ $spec->{tags} }) {
    my $m = $tag->{'x-module'} // next;
    push @{ $groups{$m} }, $tag->{name};
}
my @loaded = split ' ', $ENV{BL_LOADED_MODULES} // '';
my %wanted = map { $_ => $groups{$_} // [] } @loaded;

my $tmp = tempdir(CLEANUP => 1);
local $ENV{HOME} = $tmp;
local $ENV{XDG_CONFIG_HOME} = "$tmp/config";
local $ENV{XDG_CACHE_HOME} = "$tmp/cache";
local $ENV{NODE_PATH} = "$npm/node_modules";
my $script = "$ENV{BL_SRC_DIR}/t/tools/docs_browser.js";
my $json = JSON::PP->new->canonical->encode(\%wanted);
my $seen_text = `node '$script' '$base' '$out' '$json' 2>&1`;
is $?, 0, 'the browser drove the page' or diag $seen_text;
my ($line) = grep { /^\{/ } split /\n/, $seen_text;
my $seen = eval { JSON::PP->new->decode($line // '{}') } // {};

is $seen->{status}, 200, '/docs answers 200';
like $seen->{csp} // '', qr/script-src 'self'(;|$)/, 'a Content-Security-Policy with scripts from the site only';
unlike $seen->{csp} // '', qr/script-src[^;]*unsafe/, 'no unsafe script sources';
is_deeply $seen->{csp_violations} // ['none seen'], [], 'the page runs without a CSP violation';
is_deeply $seen->{page_errors} // ['none seen'], [], 'and without a script error';
my @missing = grep { !($seen->{modules}{$_} // 0) } @loaded;
is_deeply \@missing, [], 'operations of every loaded module are listed (' . join(' ', @loaded) . ')';
is $seen->{try_it_out_status}, '200', '"Try it out" on GET /health gets 200';
ok -s "$out/docs.png" && -s "$out/docs.png" > 1000, 'a screenshot was saved in t/logs';

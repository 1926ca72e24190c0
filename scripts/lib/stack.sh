# scripts/lib/stack.sh — the local stack (PostgreSQL, Redis, dev keys) under
# one state directory. Sourced by scripts/serve, scripts/check, scripts/stack
# and bench/run; also reached from tests through $BL_STACK.
#
# Everything lives under $BL_STATE_DIR; ports derive from $BL_PORT_BASE:
#   httpd = base, PostgreSQL = base+1, Redis = base+2, fakes = base+10..28,
#   the test TLS virtual host (scripts/check) = base+29.
# PostgreSQL and Redis never run as root: when the caller is root they run
# as $BL_RUN_USER (default "beautiful") through runuser.

BL_RUN_USER=${BL_RUN_USER:-beautiful}
BL_PG_BIN=${BL_PG_BIN:-}

bl_log() { printf '%s: %s\n' "${BL_PROG:-stack}" "$*" >&2; }
bl_die() { bl_log "error: $*"; exit 1; }

bl_is_root() { [ "$(id -u)" = 0 ]; }

# Finds the PostgreSQL server binaries (Debian keeps them out of PATH).
bl_pg_bin() {
    if [ -n "$BL_PG_BIN" ] && [ -x "$BL_PG_BIN/pg_ctl" ]; then
        printf '%s\n' "$BL_PG_BIN"; return 0
    fi
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$d/pg_ctl" ] && { printf '%s\n' "$d"; return 0; }
    done
    d=$(command -v pg_ctl 2>/dev/null) && { dirname "$d"; return 0; }
    return 1
}

# Sets every path and port variable from BL_STATE_DIR and BL_PORT_BASE, and
# exports what httpd's config (Define ... "${VAR}") and the tests read.
bl_stack_vars() {
    : "${BL_STATE_DIR:?BL_STATE_DIR is not set}"
    BL_PORT_BASE=${BL_PORT_BASE:-18500}
    BL_HTTP_PORT=${BL_HTTP_PORT:-$BL_PORT_BASE}
    BL_PG_PORT=${BL_PG_PORT:-$((BL_PORT_BASE + 1))}
    BL_REDIS_PORT=${BL_REDIS_PORT:-$((BL_PORT_BASE + 2))}
    BL_FAKE_PORT_BASE=${BL_FAKE_PORT_BASE:-$((BL_PORT_BASE + 10))}
    # The AI suites' loopback model (fakes +8) and model-less virtual host (+9).
    BL_AI_FAKE_PORT=$((BL_FAKE_PORT_BASE + 8))
    BL_AI_TEST_PORT=$((BL_FAKE_PORT_BASE + 9))
    BL_REDIS_HOST=127.0.0.1
    BL_PG_DATA=$BL_STATE_DIR/pg/data
    BL_PG_SOCKET_DIR=$BL_STATE_DIR/pg/run
    BL_REDIS_DIR=$BL_STATE_DIR/redis
    BL_LOG_DIR=$BL_STATE_DIR/logs
    BL_MAIL_DIR=$BL_STATE_DIR/mail
    BL_UPLOAD_DIR=$BL_STATE_DIR/uploads
    BL_KEY_DIR=$BL_STATE_DIR/keys
    BL_JWT_KEY=$BL_KEY_DIR/jwt.pem
    BL_JWT_PUBLIC_KEY=$BL_KEY_DIR/jwt.pub.pem
    BL_STORAGE_KEY=$BL_KEY_DIR/storage.key
    BL_TLS_CERT=$BL_KEY_DIR/tls.crt
    BL_TLS_KEY=$BL_KEY_DIR/tls.key
    BL_DATA_DIR=$BL_STATE_DIR/data
    BL_JWT_ISSUER=${BL_JWT_ISSUER:-http://127.0.0.1:$BL_HTTP_PORT}
    BL_JWT_AUDIENCE=${BL_JWT_AUDIENCE:-beautiful-life-api}
    BL_PUBLIC_URL=${BL_PUBLIC_URL:-http://127.0.0.1:$BL_HTTP_PORT}
    BL_CORS_ORIGINS=${BL_CORS_ORIGINS:-http://localhost:3000}
    BL_DB_PARAMS="host=$BL_PG_SOCKET_DIR port=$BL_PG_PORT dbname=beautiful user=beautiful"
    PGHOST=$BL_PG_SOCKET_DIR PGPORT=$BL_PG_PORT PGDATABASE=beautiful PGUSER=beautiful
    # Payments: the test stack's loopback Razorpay (t/tools/razorpay_fake.py).
    BL_RAZORPAY_FAKE_PORT=$((BL_FAKE_PORT_BASE + 6))
    export BL_RAZORPAY_FAKE_PORT
    export BL_STATE_DIR BL_PORT_BASE BL_HTTP_PORT BL_PG_PORT BL_REDIS_PORT \
        BL_REDIS_HOST BL_FAKE_PORT_BASE BL_AI_FAKE_PORT BL_AI_TEST_PORT BL_MAIL_DIR BL_UPLOAD_DIR BL_LOG_DIR \
        BL_JWT_KEY BL_JWT_PUBLIC_KEY BL_STORAGE_KEY BL_TLS_CERT BL_TLS_KEY \
        BL_DATA_DIR BL_JWT_ISSUER \
        BL_JWT_AUDIENCE BL_PUBLIC_URL BL_CORS_ORIGINS BL_DB_PARAMS \
        PGHOST PGPORT PGDATABASE PGUSER
}

# The state directory ready for services: variables, directories, the
# stack.env later `scripts/stack` calls read, and the dev keys.
bl_stack_setup() {
    bl_stack_vars
    bl_stack_dirs
    bl_stack_save_env
    bl_stack_keys
}

# Copies the modules a build made into DIR, in place of those there before.
#   bl_stage_modules BUILDDIR DIR
bl_stage_modules() {
    local so
    rm -f "$2"/mod_beautiful_*.so
    for so in "$1"/modules/*/.libs/mod_beautiful_*.so; do
        [ -f "$so" ] && cp "$so" "$2/"
    done
    return 0
}

# Copies the files httpd serves or reads from the data directory
# ($(datadir)/beautiful-life when installed): data/*, docs/openapi.yaml and
# what the build made in BUILDDIR/site (openapi.json, the /docs page).
#   bl_stage_data SRCDIR [BUILDDIR]
bl_stage_data() {
    rm -rf "$BL_DATA_DIR"
    cp -R "$1/data" "$BL_DATA_DIR"
    cp "$1/docs/openapi.yaml" "$BL_DATA_DIR/"
    # What the build made for /docs: openapi.json and the Swagger UI page.
    if [ -n "${2:-}" ] && [ -d "$2/site" ]; then
        cp -R "$2/site/." "$BL_DATA_DIR/"
        rm -f "$BL_DATA_DIR/docs/.built"
    fi
}

# Writes the settings a later `scripts/stack` call (from a test, say) needs.
bl_stack_save_env() {
    local v
    {
        for v in BL_PORT_BASE BL_HTTP_PORT BL_PG_PORT BL_REDIS_PORT \
                 BL_FAKE_PORT_BASE BL_JWT_ISSUER BL_JWT_AUDIENCE BL_PUBLIC_URL \
                 BL_CORS_ORIGINS BL_REDIS_SAVE BL_PG_FAST BL_RUN_USER; do
            [ -n "${!v:-}" ] && printf '%s=%q\n' "$v" "${!v}"
        done
    } >"$BL_STATE_DIR/stack.env"
}

# Reads what bl_stack_save_env wrote, then derives the rest.
bl_stack_load_env() {
    : "${BL_STATE_DIR:?BL_STATE_DIR is not set}"
    # shellcheck disable=SC1091
    [ -r "$BL_STATE_DIR/stack.env" ] && . "$BL_STATE_DIR/stack.env"
    bl_stack_vars
}

# Runs a command as the unprivileged stack user when we are root.
bl_as_user() {
    if bl_is_root; then
        # From a directory the user can enter (the caller's may be closed).
        ( if [ ! -x "$PWD" ] || ! runuser -u "$BL_RUN_USER" -- test -x "$PWD"; then
              cd "$BL_STATE_DIR"
          fi
          exec runuser -u "$BL_RUN_USER" -- env HOME="$BL_STATE_DIR/home" \
              PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin "$@" )
    else
        "$@"
    fi
}

bl_ensure_user() {
    bl_is_root || return 0
    if ! getent passwd "$BL_RUN_USER" >/dev/null; then
        useradd --system --no-create-home --shell /usr/sbin/nologin \
            --user-group "$BL_RUN_USER" 2>/dev/null ||
            useradd --system --no-create-home --shell /usr/sbin/nologin "$BL_RUN_USER"
    fi
}

# Creates the directory layout (idempotent) and hands it to the stack user.
bl_stack_dirs() {
    mkdir -p "$BL_STATE_DIR" "$BL_PG_SOCKET_DIR" "$BL_REDIS_DIR" \
        "$BL_LOG_DIR" "$BL_MAIL_DIR" "$BL_UPLOAD_DIR" "$BL_KEY_DIR" \
        "$BL_STATE_DIR/home" "$BL_STATE_DIR/run"
    chmod 700 "$BL_KEY_DIR"
    if bl_is_root; then
        chown "$BL_RUN_USER:" "$BL_STATE_DIR"
        chown -R "$BL_RUN_USER:" "$BL_STATE_DIR/pg" "$BL_REDIS_DIR" \
            "$BL_LOG_DIR" "$BL_MAIL_DIR" "$BL_UPLOAD_DIR" "$BL_KEY_DIR" \
            "$BL_STATE_DIR/home" "$BL_STATE_DIR/run"
        if ! runuser -u "$BL_RUN_USER" -- test -w "$BL_STATE_DIR/run"; then
            bl_die "user '$BL_RUN_USER' cannot reach $BL_STATE_DIR (a parent directory is closed to it, e.g. mode 700 under /root); choose another, e.g. STATE_DIR=/var/lib/beautiful-dev scripts/serve"
        fi
    fi
}

# Dev keys, generated once: JWT RS256 key pair and the storage master key;
# and a throw-away self-signed TLS certificate for 127.0.0.1 (the test TLS
# virtual host), made again when absent or about to expire.
bl_stack_keys() {
    if [ ! -s "$BL_JWT_KEY" ]; then
        ( umask 077; openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 \
            -out "$BL_JWT_KEY" 2>/dev/null ) || bl_die "cannot generate $BL_JWT_KEY"
        rm -f "$BL_JWT_PUBLIC_KEY"
    fi
    [ -s "$BL_JWT_PUBLIC_KEY" ] ||
        openssl pkey -in "$BL_JWT_KEY" -pubout -out "$BL_JWT_PUBLIC_KEY" 2>/dev/null
    if [ ! -s "$BL_STORAGE_KEY" ]; then
        ( umask 077; head -c 32 /dev/urandom >"$BL_STORAGE_KEY" )
    fi
    if [ ! -s "$BL_TLS_KEY" ] || [ ! -s "$BL_TLS_CERT" ] ||
       ! openssl x509 -in "$BL_TLS_CERT" -noout -checkend 3600 >/dev/null 2>&1; then
        ( umask 077; openssl req -x509 -newkey rsa:2048 -nodes -days 2 \
            -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
            -keyout "$BL_TLS_KEY" -out "$BL_TLS_CERT" >/dev/null 2>&1 ) ||
            bl_die "cannot generate $BL_TLS_CERT"
    fi
    chmod 600 "$BL_JWT_KEY" "$BL_STORAGE_KEY" "$BL_TLS_KEY"
    chmod 644 "$BL_JWT_PUBLIC_KEY" "$BL_TLS_CERT"
    if bl_is_root; then chown -R "$BL_RUN_USER:" "$BL_KEY_DIR"; fi
}

# ------------------------------------------------------------------ postgres

bl_pg_running() {
    local bin; bin=$(bl_pg_bin) || return 1
    [ -f "$BL_PG_DATA/PG_VERSION" ] || return 1
    bl_as_user "$bin/pg_ctl" -D "$BL_PG_DATA" status >/dev/null 2>&1
}

bl_pg_init() {
    local bin; bin=$(bl_pg_bin) || bl_die "PostgreSQL server binaries not found (Debian package postgresql-15)"
    [ -f "$BL_PG_DATA/PG_VERSION" ] && return 0
    bl_log "initdb $BL_PG_DATA"
    bl_as_user mkdir -p "$BL_PG_DATA"
    bl_as_user "$bin/initdb" -D "$BL_PG_DATA" -U postgres -A trust -E UTF8 \
        --locale=C.UTF-8 >"$BL_LOG_DIR/initdb.log" 2>&1 ||
        { cat "$BL_LOG_DIR/initdb.log" >&2; bl_die "initdb failed"; }
    bl_pg_start
    # The application role owns its database; it is not a superuser.
    bl_as_user "$bin/psql" -X -q -h "$BL_PG_SOCKET_DIR" -p "$BL_PG_PORT" -U postgres -d postgres \
        -v ON_ERROR_STOP=1 -c "CREATE ROLE beautiful LOGIN" \
        -c "CREATE DATABASE beautiful OWNER beautiful ENCODING 'UTF8' TEMPLATE template0" \
        >/dev/null || bl_die "cannot create role and database"
}

bl_pg_start() {
    local bin; bin=$(bl_pg_bin) || bl_die "PostgreSQL server binaries not found"
    bl_pg_running && return 0
    local opts="-p $BL_PG_PORT -k $BL_PG_SOCKET_DIR -c listen_addresses=127.0.0.1"
    if [ "${BL_PG_FAST:-0}" = 1 ]; then
        opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    fi
    bl_as_user "$bin/pg_ctl" -D "$BL_PG_DATA" -l "$BL_LOG_DIR/postgresql.log" \
        -o "$opts" -w -t 60 start >/dev/null ||
        { tail -n 20 "$BL_LOG_DIR/postgresql.log" >&2 || true; bl_die "PostgreSQL did not start"; }
}

bl_pg_stop() {
    local bin; bin=$(bl_pg_bin) || return 0
    bl_pg_running || return 0
    bl_as_user "$bin/pg_ctl" -D "$BL_PG_DATA" -m fast -w -t 60 stop >/dev/null
}

# Applies sql/migrations through scripts/migrate (when present) as the app role.
bl_pg_migrate() {
    local src=${1:?source dir}
    if [ -x "$src/scripts/migrate" ]; then
        bl_log "migrate"
        ( cd "$BL_STATE_DIR" && bl_as_user env PGHOST="$PGHOST" PGPORT="$PGPORT" \
            PGDATABASE="$PGDATABASE" PGUSER="$PGUSER" "$src/scripts/migrate" ) ||
            bl_die "migrations failed"
    else
        bl_log "scripts/migrate not present: no migrations applied"
    fi
}

# ------------------------------------------------------------------ redis

bl_redis_running() {
    [ "$(redis-cli -h 127.0.0.1 -p "$BL_REDIS_PORT" ping 2>/dev/null)" = PONG ]
}

# The pid of the Redis this state dir started, if it is alive.
bl_redis_pid() {
    local pid
    [ -r "$BL_REDIS_DIR/redis.pid" ] || return 1
    pid=$(cat "$BL_REDIS_DIR/redis.pid" 2>/dev/null) || return 1
    [ -n "$pid" ] && [ -d "/proc/$pid" ] || return 1
    printf '%s\n' "$pid"
}

bl_redis_start() {
    if bl_redis_running; then
        bl_redis_pid >/dev/null && return 0
        bl_die "port $BL_REDIS_PORT is taken by another Redis: choose another BL_PORT_BASE"
    fi
    local save=${BL_REDIS_SAVE:-}
    bl_as_user redis-server --daemonize yes --port "$BL_REDIS_PORT" \
        --bind 127.0.0.1 --protected-mode yes --dir "$BL_REDIS_DIR" \
        --pidfile "$BL_REDIS_DIR/redis.pid" --logfile "$BL_LOG_DIR/redis.log" \
        --save "$save" --appendonly no >/dev/null ||
        bl_die "redis-server did not start"
    local i
    for i in $(seq 1 100); do
        bl_redis_running && return 0
        sleep 0.1
    done
    tail -n 20 "$BL_LOG_DIR/redis.log" >&2 || true
    bl_die "Redis did not answer on port $BL_REDIS_PORT"
}

bl_redis_stop() {
    local pid
    # Only ever stop the Redis this state dir started.
    pid=$(bl_redis_pid) || return 0
    if [ -n "${BL_REDIS_SAVE:-}" ]; then
        redis-cli -h 127.0.0.1 -p "$BL_REDIS_PORT" shutdown >/dev/null 2>&1 || true
    else
        redis-cli -h 127.0.0.1 -p "$BL_REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
    fi
    local i
    for i in $(seq 1 100); do
        [ -d "/proc/$pid" ] || return 0
        sleep 0.1
    done
    bl_log "Redis on port $BL_REDIS_PORT did not stop"
    return 1
}

bl_stack_status() {
    local rc=0
    if bl_pg_running; then echo "postgresql: running (port $BL_PG_PORT, socket dir $BL_PG_SOCKET_DIR)"
    else echo "postgresql: stopped"; rc=1; fi
    if bl_redis_running && bl_redis_pid >/dev/null; then echo "redis: running (port $BL_REDIS_PORT)"
    else echo "redis: stopped"; rc=1; fi
    return $rc
}

# ------------------------------------------------------------------ httpd

bl_httpd_bin() {
    local apxs sbindir prog
    apxs=$(command -v apxs || command -v apxs2 || true)
    if [ -n "$apxs" ]; then
        sbindir=$("$apxs" -q SBINDIR 2>/dev/null) prog=$("$apxs" -q PROGNAME 2>/dev/null)
        [ -x "$sbindir/$prog" ] && { printf '%s\n' "$sbindir/$prog"; return 0; }
    fi
    [ -x /usr/sbin/apache2 ] && { echo /usr/sbin/apache2; return 0; }
    return 1
}

# What conf/dev/httpd.conf needs beyond bl_stack_vars (scripts/serve,
# bench/): sets BL_HTTPD (the binary) and BL_HTTPD_DEFINES (its -D
# arguments: as root the children run as $BL_RUN_USER) and exports the
# variables the file reads. BL_MODULES_CONF must be set.
bl_dev_httpd() {
    BL_HTTPD=$(bl_httpd_bin) || bl_die "httpd not found (Debian package apache2)"
    BL_HTTPD_MODDIR=$(bl_httpd_moddir)
    BL_HTTPD_DEFINES=()
    if bl_is_root; then
        BL_RUN_GROUP=$(id -gn "$BL_RUN_USER")
        export BL_RUN_GROUP
        BL_HTTPD_DEFINES+=(-D BL_DROP_PRIVILEGES)
    fi
    # Outside services (notify): defined when configured, read from the
    # environment by conf/mods-available/beautiful_notify.conf.
    if [ -n "${BL_TWILIO_URL:-}" ]; then
        BL_HTTPD_DEFINES+=(-D BL_TWILIO)
        export BL_TWILIO_URL BL_TWILIO_ACCOUNT_SID BL_TWILIO_AUTH_TOKEN BL_TWILIO_FROM
    fi
    if [ -n "${BL_FCM_URL:-}" ]; then
        BL_HTTPD_DEFINES+=(-D BL_FCM)
        export BL_FCM_URL BL_FCM_CREDENTIALS
    fi
    # Video sessions (community): Google Calendar + Meet when a service
    # account is given, and the template of fallback links.
    if [ -n "${BL_GOOGLE_CREDENTIALS:-}" ]; then
        BL_HTTPD_DEFINES+=(-D BL_GOOGLE)
        BL_GOOGLE_CALENDAR_URL=${BL_GOOGLE_CALENDAR_URL:-https://www.googleapis.com}
        BL_GOOGLE_CALENDAR_ID=${BL_GOOGLE_CALENDAR_ID:-primary}
        export BL_GOOGLE_CALENDAR_URL BL_GOOGLE_CREDENTIALS BL_GOOGLE_CALENDAR_ID
    fi
    if [ -n "${BL_VIDEO_LINK_TEMPLATE:-}" ]; then
        BL_HTTPD_DEFINES+=(-D BL_VIDEO_TEMPLATE)
        export BL_VIDEO_LINK_TEMPLATE
    fi
    # Payments, the AI provider and object storage (DESIGN.md section 9):
    # each BL_RAZORPAY_*, BL_AI_* and BL_S3_* that is set becomes a Define
    # of that name whose value the module's conf reads from the environment
    # (so no secret shows in the process list); unset, the payment routes
    # answer 503 PAYMENTS_NOT_CONFIGURED, the model routes 503
    # AI_NOT_CONFIGURED, and medical records stay in local storage.
    local v
    for v in BL_RAZORPAY_URL BL_RAZORPAY_KEY_ID BL_RAZORPAY_KEY_SECRET BL_RAZORPAY_WEBHOOK_SECRET \
             BL_AI_URL BL_AI_API_KEY BL_AI_MODEL \
             BL_S3_ENDPOINT BL_S3_REGION BL_S3_BUCKET BL_S3_ACCESS_KEY_ID BL_S3_SECRET_ACCESS_KEY; do
        if [ -n "${!v:-}" ]; then
            export "${v?}"
            BL_HTTPD_DEFINES+=(-D "$v")
        fi
    done
    export BL_MODULES_CONF BL_HTTPD_MODDIR BL_RUN_USER
}

bl_httpd_moddir() {
    local apxs; apxs=$(command -v apxs || command -v apxs2 || true)
    [ -n "$apxs" ] && "$apxs" -q LIBEXECDIR 2>/dev/null && return 0
    echo /usr/lib/apache2/modules
}

# Writes the LoadModule + Include lines for our modules: mod_dbd and the
# httpd modules their .load files name ("# Depends:"), core,
# then every other module built (a .so without its module symbol, i.e. not
# yet written, is skipped with a warning), then the mods-available confs of
# the loaded modules, core's first. Optional extra include dir (test.d):
# its <module>.conf files are included for loaded modules and for names that
# are not modules at all.
#   bl_write_modules_conf OUT SO_DIR CONF_DIR [TESTD_DIR] [SRC_MODULES_DIR]
bl_write_modules_conf() {
    local out=$1 sodir=$2 confdir=$3 testd=${4:-} srcmods=${5:-}
    local moddir; moddir=$(bl_httpd_moddir)
    local loaded="" so name dep deps="dbd" syms
    for so in "$sodir/mod_beautiful_core.so" $(ls "$sodir"/mod_beautiful_*.so 2>/dev/null | grep -v '/mod_beautiful_core\.so$' | sort); do
        [ -f "$so" ] || continue
        name=$(basename "$so" .so); name=${name#mod_beautiful_}
        # Read nm's whole output first: with pipefail, grep -q quitting early
        # would let SIGPIPE fail the pipeline on a large symbol table.
        syms=$(nm -D --defined-only "$so" 2>/dev/null || true)
        if ! grep -q " beautiful_${name}_module$" <<<"$syms"; then
            bl_log "warning: $so has no beautiful_${name}_module symbol: not loaded"
            continue
        fi
        if [ -n "${BL_MODULES_ONLY:-}" ] && [[ " $BL_MODULES_ONLY " != *" $name "* ]]; then
            bl_log "$so not loaded: not in BL_MODULES_ONLY"
            continue
        fi
        if [ "$name" != core ] && [[ " $loaded " != *" core "* ]]; then
            bl_log "warning: $so not loaded: it needs mod_beautiful_core, which did not build"
            continue
        fi
        loaded="$loaded $name"
        # httpd modules it needs, a2enmod style: "# Depends: dbd authz_user"
        for dep in $(sed -n 's/^# *Depends: *//p' "$confdir/beautiful_$name.load" 2>/dev/null | tr ',' ' '); do
            case $dep in beautiful_*) continue ;; esac
            [[ " $deps " == *" $dep "* ]] || deps="$deps $dep"
        done
    done
    {
        echo "# Generated by scripts/lib/stack.sh: our modules, core first."
        for dep in $deps; do
            [ -f "$moddir/mod_$dep.so" ] || continue
            echo "<IfModule !${dep}_module>"
            echo "    LoadModule ${dep}_module $moddir/mod_$dep.so"
            echo "</IfModule>"
        done
        for name in $loaded; do
            echo "LoadModule beautiful_${name}_module $sodir/mod_beautiful_$name.so"
        done
        for name in $loaded; do
            [ -f "$confdir/beautiful_$name.conf" ] &&
                echo "Include $confdir/beautiful_$name.conf"
        done
        if [ -n "$testd" ] && [ -d "$testd" ]; then
            local f base
            for f in "$testd"/*.conf; do
                [ -f "$f" ] || continue
                # test.d/<module>.conf or <module>_<anything>.conf
                base=$(basename "$f" .conf); base=${base%%_*}
                if [[ " $loaded " == *" $base "* ]] ||
                   { [ -n "$srcmods" ] && [ ! -d "$srcmods/$base" ]; }; then
                    echo "Include $f"
                fi
            done
        fi
    } >"$out"
    BL_LOADED_MODULES=${loaded# }
    export BL_LOADED_MODULES
}

# bench/lib.sh — what bench/run and bench/auth_run share: a stack of their
# own (PostgreSQL, Redis, httpd with conf/dev/httpd.conf) in a temporary
# state directory, stopped and removed on exit, and wrk's requests/s.
# Sourced with srcdir and BL_PORT_BASE set; reads BUILD_DIR, DURATION
# (default 10s) and CONNECTIONS (default 64).

# shellcheck source=../scripts/lib/stack.sh
. "$srcdir/scripts/lib/stack.sh"
# shellcheck source=../scripts/lib/setup.sh
. "$srcdir/scripts/lib/setup.sh"

duration=${DURATION:-10s}
conns=${CONNECTIONS:-64}

state="" conf=""
bench_cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    set +e
    if [ -n "$conf" ] && [ -r "$BL_STATE_DIR/run/httpd.pid" ]; then
        "$BL_HTTPD" -f "$conf" "${BL_HTTPD_DEFINES[@]}" -k stop 2>/dev/null
        for _ in $(seq 1 50); do [ -e "$BL_STATE_DIR/run/httpd.pid" ] || break; sleep 0.1; done
    fi
    if [ -n "$state" ]; then
        bl_redis_stop; bl_pg_stop
        rm -rf "$state"
    fi
    bl_setup_cleanup
    exit "$rc"
}
trap bench_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Builds in $build, then PostgreSQL (migrated) and Redis in a new state
# directory $state, with the modules staged and conf/local.d/ for the
# caller's settings; dies unless each named module loaded.
#   bench_stack MODULE...
bench_stack() {
    local m
    bl_install_packages
    bl_ensure_user
    command -v wrk >/dev/null || bl_die "wrk not found (Debian package wrk)"
    build=${BUILD_DIR:-build}
    case $build in /*) ;; *) build=$srcdir/$build ;; esac
    bl_build "$srcdir" "$build" >/dev/null || bl_die "build failed"

    state=$(mktemp -d /tmp/bl-bench.XXXXXX)
    chmod 755 "$state"
    BL_STATE_DIR=$state
    BL_PG_FAST=1
    export BL_PG_FAST
    bl_stack_setup
    mkdir -p "$state/modules" "$state/conf/local.d" "$state/htdocs"
    bl_stage_data "$srcdir" "$build"
    bl_stage_modules "$build" "$state/modules"
    BL_MODULES_CONF=$state/conf/modules.conf
    bl_write_modules_conf "$BL_MODULES_CONF" "$state/modules" \
        "$srcdir/conf/mods-available" "" "$srcdir/modules"
    for m in "$@"; do
        [[ " $BL_LOADED_MODULES " == *" $m "* ]] || bl_die "mod_beautiful_$m did not build"
    done
    bl_pg_init >/dev/null
    bl_redis_start
    bl_pg_migrate "$srcdir" >/dev/null
}

# "pid:VmRSS " of every httpd child.
children_rss() {
    local ppid pid
    ppid=$(cat "$BL_STATE_DIR/run/httpd.pid")
    for pid in $(pgrep -P "$ppid" | sort -n); do
        printf '%s:%s ' "$pid" "$(awk '/^VmRSS/ {print $2 $3}' "/proc/$pid/status" 2>/dev/null)"
    done
}

# Starts httpd with conf/dev/httpd.conf and waits for /health at $base.
bench_httpd_start() {
    if bl_is_root; then chown -R "$BL_RUN_USER:" "$state/htdocs" "$state/conf" "$state/modules"; fi
    bl_dev_httpd
    conf=$srcdir/conf/dev/httpd.conf
    "$BL_HTTPD" -f "$conf" "${BL_HTTPD_DEFINES[@]}" -k start
    base=http://127.0.0.1:$BL_HTTP_PORT
    for _ in $(seq 1 50); do
        curl -fsS -o /dev/null "$base/health" 2>/dev/null && break
        sleep 0.1
    done
}

# The requests/s wrk measures on URL over $duration with $conns connections;
# warns when some answers were not 2xx.
#   bench_rps URL [HEADER]
bench_rps() {
    local out
    out=$(wrk -t2 -c"$conns" -d"$duration" ${2:+-H "$2"} "$1" 2>&1)
    printf '%s\n' "$out" >>"$BL_LOG_DIR/wrk.log"
    grep -q 'Non-2xx' <<<"$out" && bl_log "warning: non-2xx answers from $1"
    awk '/^Requests\/sec:/ {print $2}' <<<"$out" | grep . ||
        { printf '%s\n' "$out" >&2; bl_die "wrk failed on $1"; }
}

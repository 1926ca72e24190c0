# bench/lib.sh — what the bench scripts share: a stack of their own
# (PostgreSQL, Redis, httpd with conf/dev/httpd.conf) in a temporary state
# directory, stopped and removed on exit, wrk's requests/s, and CPU time
# per request by process with what it allows.
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

# CPU time per request by process, and context switches per request of the
# httpd children: ab sends a fixed number of requests at the same
# concurrency, and /proc says how much CPU each side used for them. Unlike
# requests/s, these hardly move with what else runs on the machine.
cpu_ticks() {   # PID...: utime + stime of those processes, in clock ticks
    local p t=0 f
    for p in "$@"; do
        f=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        f=${f##*) }
        # shellcheck disable=SC2086
        set -- $f
        t=$((t + ${12} + ${13}))
    done
    echo "$t"
}
pg_ticks() {   # PostgreSQL's CPU, backends that have exited included
    local pg f
    pg=$(head -1 "$BL_PG_DATA/postmaster.pid")
    f=$(cat "/proc/$pg/stat")
    f=${f##*) }
    # shellcheck disable=SC2086
    set -- $f
    # shellcheck disable=SC2046
    echo $(( ${14} + ${15} + $(cpu_ticks "$pg" $(pgrep -P "$pg")) ))
}
ctx_switches() {   # PID...: voluntary + involuntary switches of all their threads
    local p
    for p in "$@"; do cat /proc/"$p"/task/*/status 2>/dev/null; done |
        awk '/ctxt_switches/ {s += $2} END {print s + 0}'
}
cpu_per_request() {   # ROUTE HEADER N: prints "httpd postgres redis ab switches"
    local route=$1 header=$2 n=$3 hp rp h0 p0 r0 c0 ab_cpu TIMEFORMAT='%U %S'
    hp=$(pgrep -P "$(cat "$BL_STATE_DIR/run/httpd.pid")" | tr '\n' ' ')
    rp=$(bl_redis_pid)
    # shellcheck disable=SC2086
    { h0=$(cpu_ticks $hp); p0=$(pg_ticks); r0=$(cpu_ticks $rp); c0=$(ctx_switches $hp); }
    ab_cpu=$( { time ab -q -k -c "$conns" -n "$n" ${header:+-H "$header"} "$base$route" \
                  >"$BL_LOG_DIR/ab.cpu.log" 2>&1; } 2>&1 )
    # shellcheck disable=SC2086
    awk -v n="$n" -v k="$(getconf CLK_TCK)" -v h=$(($(cpu_ticks $hp) - h0)) \
        -v p=$(($(pg_ticks) - p0)) -v r=$(($(cpu_ticks $rp) - r0)) \
        -v c=$(($(ctx_switches $hp) - c0)) -v a="$ab_cpu" 'BEGIN {
        u = 1e6 / k / n; split(a, t, " ")
        printf "%.0f %.0f %.0f %.0f %.1f\n", h * u, p * u, r * u, (t[1] + t[2]) * 1e6 / n, c / n }'
}

# What CPU per request allows, whatever the scheduling: requests/s cannot
# pass cores / CPU per request, and with every connection always busy the
# mean latency is then at least connections / that (Little's law).
#   cpu_ceiling LABEL TOTAL_US
cpu_ceiling() {
    awk -v n="$1" -v t="$2" -v c="$(nproc)" -v k="$conns" 'BEGIN {
        printf "  %-22s at most %6.0f req/s, mean latency at least %5.1f ms\n", n, c * 1e6 / t,
            k * t / c / 1000 }'
}

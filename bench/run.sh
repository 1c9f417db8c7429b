#!/usr/bin/env bash
# bench/run.sh - spawnd side by side with its peers, on this machine, now.
#
#   bench/run.sh            full run: 3 rounds, 5 s per wrk run, 256 MiB stream,
#                           1000 sleepers, 4000 held jobs, fork exchanges
#                           (about 11 minutes)
#   bench/run.sh --smoke    1 round, 1 s wrk runs, 8 MiB stream, 50 sleepers,
#                           100 held jobs (well under a minute; meant for CI)
#   bench/run.sh -r 5       five rounds
#   bench/run.sh --rev HEAD build that commit (git archive into BENCH_DIR/src-SHA)
#                           instead of the working tree, e.g. while it is mid-change
#
# It builds spawnd in release mode into build-bench/ (BENCH_DIR), installs what
# it needs through apt-get when missing (wrk, webhook, nginx-light, nodejs, ...),
# starts spawnd, node_peer.js, webhook and nginx on free loopback ports, builds
# the raw spawn loop (spawn_rate.c, nop.c), and measures the contenders
# interleaved round by round (the order rotates every round), then prints the
# medians, the ratios and the targets. Everything it starts is stopped on exit.
# Temporary files (logs, the stream file, nginx's config) live in BENCH_DIR.
#
# Environment:
#   SPAWND_SHARED   the shared folder holding peers/ (default: ../shared next
#                   to the repository)
#   BENCH_DIR       build and scratch folder (default: <repo>/build-bench)
#   ROUNDS, WRK_S, STREAM_MIB, SLEEPERS, FORK_N, HOLD_JOBS   override the mode's sizes
#   HEALTHZ_S       length of the /healthz latency run while the jobs are held (default 3)
#
# Exit status: 0 when everything ran (missed targets are reported, not fatal),
# 1 when a contender could not be started or a measurement failed outright.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(git -C "$here" rev-parse --show-toplevel 2>/dev/null || (cd "$here/.." && pwd))
shared=${SPAWND_SHARED:-$root/../shared}
peers=$shared/peers
bench=${BENCH_DIR:-$root/build-bench}

mode=full
rounds_opt=""
rev=""
while [ $# -gt 0 ]; do
    case "$1" in
    --smoke) mode=smoke ;;
    -r) rounds_opt=$2; shift ;;
    --rev) rev=$2; shift ;;
    --rev=*) rev=${1#--rev=} ;;
    -r*) rounds_opt=${1#-r} ;;
    -h|--help) awk 'NR > 1 && /^#/ {sub(/^# ?/, ""); print; next} NR > 1 {exit}' "$0"; exit 0 ;;
    *) echo "usage: $0 [--smoke] [-r ROUNDS] [--rev REV]" >&2; exit 2 ;;
    esac
    shift
done
if [ $mode = smoke ]; then
    : "${ROUNDS:=1}" "${WRK_S:=1}" "${STREAM_MIB:=8}" "${SLEEPERS:=50}" "${FORK_N:=200}" "${HOLD_JOBS:=100}"
else
    : "${ROUNDS:=3}" "${WRK_S:=5}" "${STREAM_MIB:=256}" "${SLEEPERS:=1000}" "${FORK_N:=10000}" "${HOLD_JOBS:=4000}"
fi
: "${HEALTHZ_S:=3}"
HOLD_TARGET=4000 # the issue's target: concurrent sleeping jobs held, /healthz p99 under 50 ms
[ -n "$rounds_opt" ] && ROUNDS=$rounds_opt
case "$HOLD_JOBS$HEALTHZ_S" in *[!0-9]*) echo "$0: HOLD_JOBS and HEALTHZ_S are whole numbers" >&2; exit 2 ;; esac
SLEEP_S=60 # each sleeper's sleep; they are ended long before by closing the connections

log() { printf '%s\n' "$*" >&2; }
trap 'log "bench: failed at line $LINENO: $BASH_COMMAND"' ERR
die() { log "bench: $*"; exit 1; }

[ -f "$peers/node_peer.js" ] || die "peers not found in $peers (set SPAWND_SHARED)"

# --- tools ------------------------------------------------------------------
need=()
have_cmd() { command -v "$1" >/dev/null 2>&1; }
have_cmd wrk || need+=(wrk)
have_cmd webhook || need+=(webhook)
have_cmd nginx || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
have_cmd node || need+=(nodejs)
have_cmd curl || need+=(curl)
have_cmd socat || need+=(socat)
have_cmd pgrep || need+=(procps)
have_cmd cmake || need+=(cmake)
have_cmd gcc || need+=(gcc libc6-dev)
have_cmd pkg-config || need+=(pkg-config)
pkg-config --exists libmicrohttpd 2>/dev/null || need+=(libmicrohttpd-dev)
pkg-config --exists json-c 2>/dev/null || need+=(libjson-c-dev)
[ -e /usr/lib/x86_64-linux-gnu/libc.a ] || ls /usr/lib/*/libc.a >/dev/null 2>&1 || need+=(libc6-dev)
if [ ${#need[@]} -gt 0 ]; then
    log "bench: installing ${need[*]}"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

# --- build --------------------------------------------------------------------
mkdir -p "$bench"
src=$root
build=$bench
built_from="working tree"
if [ -n "$rev" ]; then
    sha=$(git -C "$root" rev-parse --short "$rev^{commit}") || die "no such revision: $rev"
    src=$bench/src-$sha
    build=$bench/build-$sha
    built_from="commit $sha"
    if [ ! -f "$src/CMakeLists.txt" ]; then
        rm -rf "$src"
        mkdir -p "$src"
        git -C "$root" archive --format=tar "$sha" | tar -x -C "$src"
    fi
fi
log "bench: building spawnd (Release) from the $built_from in $build"
cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=Release -DSPAWND_TESTS=OFF >"$bench/cmake.log" 2>&1 ||
    { cat "$bench/cmake.log" >&2; die "cmake failed"; }
cmake --build "$build" -j"$(nproc)" >>"$bench/cmake.log" 2>&1 || {
    tail -30 "$bench/cmake.log" >&2
    die "build failed${rev:+ }${rev:-; if the working tree is in the middle of a change, try --rev HEAD}"
}
gcc -O2 -static -o "$bench/nop" "$peers/limits/nop.c"
gcc -O2 -o "$bench/spawn_rate" "$peers/limits/spawn_rate.c"

# Many connections, each with a child holding two pipes: raise the descriptor limit.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
nofile=$(ulimit -n)

# --- processes we start, stopped on exit --------------------------------------
pids=()
wrk_pid=""  # the sleepers' wrk while it runs
hold_pid="" # hold_jobs.js while it runs
holding=""  # set while spawnd holds the HOLD_JOBS background jobs
cleanup() {
    local p
    if [ -n "$wrk_pid" ]; then kill -TERM "$wrk_pid" 2>/dev/null || true; fi
    if [ -n "$hold_pid" ]; then kill -TERM "$hold_pid" 2>/dev/null || true; fi
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    local alive=()
    # spawnd ends its jobs first (SIGTERM to each job's process group); give
    # everything 3 s, 10 s while it holds thousands of background jobs
    for _ in $(seq "$([ -n "$holding" ] && echo 100 || echo 30)"); do
        alive=()
        for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive+=("$p"); done
        [ ${#alive[@]} = 0 ] && break
        sleep 0.1
    done
    for p in "${alive[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP
trap 'exit 141' PIPE

free_port() {
    node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}
port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() { # port pid name
    for _ in $(seq 100); do
        port_open "$1" && return 0
        kill -0 "$2" 2>/dev/null || die "$3 exited at start (see $bench/$3.log)"
        sleep 0.05
    done
    die "$3 does not listen on port $1"
}
port_from_log() { # file pid name: the port printed as "listening on http://HOST:PORT"
    for _ in $(seq 100); do
        local p
        p=$(sed -n 's/.*listening on http:\/\/[^ ]*:\([0-9][0-9]*\).*/\1/p' "$1" | head -1)
        [ -n "$p" ] && { echo "$p"; return 0; }
        kill -0 "$2" 2>/dev/null || die "$3 exited at start (see $1)"
        sleep 0.05
    done
    die "$3 printed no address"
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }

# spawnd: --max-jobs above the number of sleepers and of held jobs (the
# default, 256, would answer 429 to the memory test): 4096, or HOLD_JOBS + 96
# when more are asked for. Its log (one line per request and per job start and
# end) goes to a file, as in a deployment.
# The caller's SPAWND_* settings (a token, limits) are not the benchmark's.
max_jobs=$((HOLD_JOBS + 96 > 4096 ? HOLD_JOBS + 96 : 4096))
spawnd_unset=()
for v in $(compgen -e | grep '^SPAWND_' || true); do spawnd_unset+=(-u "$v"); done
env "${spawnd_unset[@]}" "$build/spawnd" --listen 127.0.0.1:0 --max-jobs "$max_jobs" 2>"$bench/spawnd.log" &
spawnd_pid=$!
pids+=($spawnd_pid)
spawnd_port=$(port_from_log "$bench/spawnd.log" $spawnd_pid spawnd)

node "$peers/node_peer.js" 0 2>"$bench/node_peer.log" >/dev/null &
node_pid=$!
pids+=($node_pid)
node_port=$(port_from_log "$bench/node_peer.log" $node_pid node_peer)

# The bare relay for the fork exchange: socat runs the echo child per
# connection with its channel on the socket (NODE_CHANNEL_FD=0) and copies
# bytes both ways; no HTTP, no checks. The limit of a three-process path.
relay_port=$(free_port)
NODE_CHANNEL_FD=0 NODE_CHANNEL_SERIALIZATION_MODE=json \
    socat -b 65536 "TCP-LISTEN:$relay_port,bind=127.0.0.1,reuseaddr,fork" \
    EXEC:"node $here/fork_echo.js" >"$bench/relay.log" 2>&1 &
relay_pid=$!
pids+=($relay_pid)
wait_port "$relay_port" $relay_pid relay

webhook_port=$(free_port)
webhook -hooks "$peers/webhook/hooks.json" -ip 127.0.0.1 -port "$webhook_port" -nopanic \
    >"$bench/webhook.log" 2>&1 &
webhook_pid=$!
pids+=($webhook_pid)
wait_port "$webhook_port" $webhook_pid webhook

# The stream: ASCII text (base64 of random bytes, 76 columns), exactly STREAM_MIB MiB.
stream_bytes=$((STREAM_MIB * 1048576))
mkdir -p "$bench/www"
stream_file=$bench/www/stream-${STREAM_MIB}M.txt
if [ "$(stat -c %s "$stream_file" 2>/dev/null || echo 0)" != "$stream_bytes" ]; then
    log "bench: writing a ${STREAM_MIB} MiB text file"
    head -c $((stream_bytes * 3 / 4 + 65536)) /dev/urandom | base64 -w 76 >"$stream_file.tmp"
    truncate -s "$stream_bytes" "$stream_file.tmp"
    mv "$stream_file.tmp" "$stream_file"
fi

nginx_port=$(free_port)
mkdir -p "$bench/nginx/tmp"
user_line=""
[ "$(id -u)" -eq 0 ] && user_line="user root root;"
cat >"$bench/nginx/nginx.conf" <<EOF
# written by bench/run.sh: nginx as the HTTP byte-stream ceiling
$user_line
daemon off;
worker_processes 1;
pid $bench/nginx/nginx.pid;
error_log $bench/nginx/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    client_body_temp_path $bench/nginx/tmp/body;
    proxy_temp_path $bench/nginx/tmp/proxy;
    fastcgi_temp_path $bench/nginx/tmp/fastcgi;
    uwsgi_temp_path $bench/nginx/tmp/uwsgi;
    scgi_temp_path $bench/nginx/tmp/scgi;
    server {
        listen 127.0.0.1:$nginx_port;
        root $bench/www;
    }
}
EOF
"$nginx_bin" -p "$bench/nginx" -c "$bench/nginx/nginx.conf" 2>"$bench/nginx/stderr.log" &
nginx_pid=$!
pids+=($nginx_pid)
wait_port "$nginx_port" $nginx_pid nginx

base_spawnd=http://127.0.0.1:$spawnd_port
base_node=http://127.0.0.1:$node_port
base_webhook=http://127.0.0.1:$webhook_port
base_nginx=http://127.0.0.1:$nginx_port
log "bench: spawnd :$spawnd_port  node_peer :$node_port  webhook :$webhook_port  nginx :$nginx_port  (nofile $nofile)"

# Each answers once before anything is measured.
json_post() { curl -sS -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -d "$2" "$1"; }
[ "$(json_post "$base_spawnd/v1/execFile" '{"file":"/bin/true","args":[]}')" = 200 ] || die "spawnd execFile does not answer 200"
[ "$(json_post "$base_node/v1/execFile" '{"file":"/bin/true","args":[]}')" = 200 ] || die "node_peer execFile does not answer 200"
[ "$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base_webhook/hooks/true")" = 200 ] || die "webhook /hooks/true does not answer 200"
[ "$(curl -s -o /dev/null -w '%{http_code}' "$base_nginx/${stream_file##*/}")" = 200 ] || die "nginx does not serve the stream file"

# --- results ----------------------------------------------------------------
declare -A res     # key -> space-separated values, one per round
declare -A notes   # key -> problems seen (errors, short downloads)
add() { res[$1]="${res[$1]:-} $2"; }
note() { notes[$1]="${notes[$1]:-} $2"; }
median() { # values...
    printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {if (NR==0) exit; if (NR%2) print v[(NR+1)/2]; else print (v[NR/2]+v[NR/2+1])/2}'
}
med() { if [ -n "${res[$1]:-}" ]; then median ${res[$1]}; fi; }

# wrk --latency: logs its output, prints "REQS_PER_S P50_US P99_US ERRORS"
# (0 for a figure wrk did not print)
wrk_latency() { # conns seconds url [extra wrk args]
    local c=$1 secs=$2 url=$3 out
    shift 3
    out=$(wrk -t1 -c"$c" -d"${secs}s" --timeout 10s --latency "$@" "$url" 2>&1) || true
    printf '%s\n' "$out" >>"$bench/wrk.log"
    printf '%s\n' "$out" | awk '
        function us(v) { if (v ~ /us$/) return v + 0; if (v ~ /ms$/) return v * 1000; if (v ~ /m$/) return v * 60e6; return v * 1e6 }
        /^ *50%/ { p50 = us($2) }
        /^ *99%/ { p99 = us($2) }
        /Requests\/sec:/ { rps = $2 }
        /Non-2xx or 3xx responses:/ { err += $NF }
        /Socket errors:/ { gsub(",", ""); err += $4 + $6 + $8 + $10 }
        END { printf "%s %s %s %d\n", rps + 0, p50 + 0, p99 + 0, err }'
}
# prints "REQS_PER_S P50_US ERRORS"
wrk_run() { # conns script url (script "": a plain GET)
    wrk_latency "$1" "$WRK_S" "$3" ${2:+-s "$2"} | awk '{print $1, $2, $4}'
}

lua_exec=$peers/load/exec.lua
lua_webhook=$here/webhook_post.lua
lua_sleep=$peers/load/sleep_many.lua

# The raw loop: n is sized from a short calibration so one run lasts about WRK_S.
spawn_rate_run() { # k n: prints "CHILDREN_PER_S US_PER_CHILD"
    "$bench/spawn_rate" -p "$bench/nop" -n "$2" -k "$1" -r 1 pipes:true | awk '$1 == "pipes:true" {print $3, $6}'
}
calib() { # k
    local r
    r=$(spawn_rate_run "$1" 300 | awk '{print int($1)}')
    [ "${r:-0}" -gt 0 ] || die "spawn_rate failed"
    echo $((r * WRK_S > 200 ? r * WRK_S : 200))
}
n_k8=$(calib 8)
n_k1=$(calib 1)

m_exec() { # contender conns
    local r
    case $1 in
    spawnd) r=$(wrk_run "$2" "$lua_exec" "$base_spawnd/") ;;
    node) r=$(wrk_run "$2" "$lua_exec" "$base_node/") ;;
    webhook) r=$(wrk_run "$2" "$lua_webhook" "$base_webhook/") ;;
    healthz) r=$(wrk_run "$2" "" "$base_spawnd/healthz") ;; # the HTTP round trip alone
    raw)
        r=$(spawn_rate_run "$2" "$([ "$2" = 1 ] && echo "$n_k1" || echo "$n_k8")")
        add "raw.k$2.rate" "${r% *}"
        add "raw.k$2.us" "${r#* }"
        return
        ;;
    esac
    set -- "$1" "$2" $r
    add "$1.c$2.rate" "$3"
    add "$1.c$2.p50" "$4"
    [ "$5" -gt 0 ] && note "$1.c$2.rate" "round$round:$5-errors"
    return 0
}

m_stream() { # contender: MB/s of payload (the file's bytes) over curl's total time
    local url body out size t
    case $1 in
    ndjson) url=$base_spawnd/v1/spawn ;;
    raw) url="$base_spawnd/v1/spawn?format=raw" ;;
    node) url=$base_node/v1/spawn ;;
    nginx) url=$base_nginx/${stream_file##*/} ;;
    esac
    body="{\"command\":\"cat\",\"args\":[\"$stream_file\"]}"
    if [ "$1" = nginx ]; then
        out=$(curl -s -o /dev/null -w '%{size_download} %{time_total}' "$url")
    else
        out=$(curl -s -o /dev/null -w '%{size_download} %{time_total}' -H 'Content-Type: application/json' -d "$body" "$url")
    fi
    size=${out% *}
    t=${out#* }
    if [ "${size:-0}" -lt "$stream_bytes" ]; then
        note "stream.$1" "round$round:short-download($size)"
        return
    fi
    add "stream.$1" "$(awk -v b="$stream_bytes" -v t="$t" 'BEGIN {printf "%.0f", b / t / 1e6}')"
    add "stream.$1.bytes" "$size"
}

count_children() { # pid: processes whose parent is pid
    pgrep -c -P "$1" || true
}

m_sleepers() { # contender: RSS in the middle of SLEEPERS held children
    local pid base wpid n=0 i samples=()
    case $1 in
    spawnd) pid=$spawnd_pid; base=$base_spawnd ;;
    node) pid=$node_pid; base=$base_node ;;
    esac
    SLEEP_S=$SLEEP_S wrk -t1 -c"$SLEEPERS" -d"$((SLEEP_S - 5))s" --timeout "$((SLEEP_S + 10))s" \
        -s "$lua_sleep" "$base/" >>"$bench/wrk.log" 2>&1 &
    wpid=$!
    wrk_pid=$wpid
    # wait until every connection holds its child (at most 30 s)
    for i in $(seq 300); do
        n=$(count_children "$pid")
        [ "$n" -ge "$SLEEPERS" ] && break
        sleep 0.1
    done
    sleep 0.5
    for i in 1 2 3 4 5; do samples+=("$(rss_kb "$pid")"); sleep 0.2; done
    n=$(count_children "$pid")
    add "rss.load.$1" "$(median "${samples[@]}")"
    add "rss.load.$1.children" "$n"
    [ "$n" -lt "$SLEEPERS" ] && note "rss.load.$1" "round$round:only-$n-children"
    kill -TERM "$wpid" 2>/dev/null || true
    wait "$wpid" 2>/dev/null || true
    wrk_pid=""
    # the servers end the children when their connections close
    for i in $(seq 100); do
        [ "$(count_children "$pid")" -eq 0 ] && break
        sleep 0.1
    done
}

hold_out=""
hold_client() { # hold_jobs.js arguments: runs it where cleanup can stop it; its line in hold_out
    node "$here/hold_jobs.js" "$@" >"$bench/hold.out" 2>>"$bench/hold.log" &
    hold_pid=$!
    local rc=0
    wait "$hold_pid" || rc=$?
    hold_pid=""
    [ $rc = 0 ] || die "hold_jobs.js $1 failed (see $bench/hold.log)"
    hold_out=$(cat "$bench/hold.out")
}

# HOLD_JOBS background jobs, each /bin/sleep SLEEP_S, started through POST
# /v1/jobs and all held at once; meanwhile RSS and GET /healthz latency. Then
# every job is deleted and the script waits until spawnd has reaped them all.
m_hold() {
    local accepted secs statuses n i samples=() r
    log "bench: holding $HOLD_JOBS background jobs (sleep $SLEEP_S)"
    holding=1
    hold_client create "$base_spawnd" "$HOLD_JOBS" "$bench/hold_ids.txt" "$SLEEP_S"
    read -r accepted secs statuses <<<"$hold_out"
    log "bench: $accepted of $HOLD_JOBS jobs accepted in ${secs}s ($statuses)"
    add hold.accepted "$accepted"
    add hold.create_s "$secs"
    [ "$accepted" -lt "$HOLD_JOBS" ] && note hold.held "only-$accepted-accepted($statuses)"
    # 201 is answered once the child runs; wait (at most 10 s) until all are there
    for i in $(seq 100); do
        n=$(count_children "$spawnd_pid")
        [ "$n" -ge "$accepted" ] && break
        sleep 0.1
    done
    for i in 1 2 3 4 5; do samples+=("$(rss_kb "$spawnd_pid")"); sleep 0.2; done
    add rss.hold.spawnd "$(median "${samples[@]}")"
    add hold.fds "$(ls "/proc/$spawnd_pid/fd" | wc -l)"
    # wrk --latency against GET /healthz, one connection
    set -- $(wrk_latency 1 "$HEALTHZ_S" "$base_spawnd/healthz")
    [ "$3" != 0 ] && add hold.healthz.p99 "$(awk -v u="$3" 'BEGIN {printf "%.3f", u / 1000}')"
    add hold.healthz.rate "$1"
    [ "$4" -gt 0 ] && note hold.healthz.p99 "$4-errors"
    # held: the sleeping children still there after the /healthz run
    n=$(count_children "$spawnd_pid")
    add hold.held "$n"
    [ "$n" -lt "$accepted" ] && note hold.held "only-$n-of-$accepted-running"
    hold_client delete "$base_spawnd" "$bench/hold_ids.txt"
    read -r n secs statuses <<<"$hold_out"
    log "bench: $n jobs deleted in ${secs}s ($statuses)"
    add hold.delete_s "$secs"
    [ "$n" -lt "$accepted" ] && note hold.held "only-$n-deleted($statuses)"
    # spawnd kills each deleted job's process group; wait (at most 30 s) until
    # it has reaped them all, so section 5 starts clean
    for i in $(seq 300); do
        n=$(count_children "$spawnd_pid")
        [ "$n" -eq 0 ] && break
        sleep 0.1
    done
    [ "$n" -eq 0 ] || die "$n children of spawnd still there 30 s after the held jobs were deleted"
    holding=""
}

# Idle RSS: after start and one execFile each, before any load.
add rss.idle.spawnd "$(rss_kb $spawnd_pid)"
add rss.idle.node "$(rss_kb $node_pid)"

# jobs/fork: measured only once they exist.
jobs_status=$(json_post "$base_spawnd/v1/jobs" '{"kind":"execFile","file":"/bin/true","args":[]}' || true)
# (the fork probe's child exits at once: an empty module)
: >"$bench/empty.js"
fork_status=$(json_post "$base_spawnd/v1/fork" "{\"module\":\"$bench/empty.js\"}" || true)

rotate() { # round items...: the items, rotated by round
    local r=$1
    shift
    local a=("$@") n=$#
    for ((i = 0; i < n; i++)); do printf '%s\n' "${a[$(((i + r) % n))]}"; done
}

: >"$bench/wrk.log"
log "bench: $mode mode, $ROUNDS round(s), wrk ${WRK_S}s, stream ${STREAM_MIB} MiB, $SLEEPERS sleepers, $HOLD_JOBS held jobs"
for ((round = 1; round <= ROUNDS; round++)); do
    log "bench: round $round/$ROUNDS"
    for c in $(rotate "$round" spawnd node webhook raw); do m_exec "$c" 8; done
    for c in $(rotate "$round" spawnd node webhook); do m_exec "$c" 32; done
    for c in $(rotate "$round" spawnd raw healthz); do m_exec "$c" 1; done
    for c in $(rotate "$round" ndjson raw node nginx); do m_stream "$c"; done
    for c in $(rotate "$round" spawnd node); do m_sleepers "$c"; done
done

# 4, continued: the held background jobs, once (too slow to repeat every round),
# after the rounds so the memory spawnd keeps from them (freed, not returned to
# the system) does not weigh on the sleepers' figures.
[ "$HOLD_JOBS" -gt 0 ] && m_hold

# 5. background jobs and fork, once they exist; after the rounds above, so the
# ended jobs spawnd retains (up to its limit) do not weigh on their memory figures.
implemented() { [ -n "$1" ] && [ "$1" != 404 ] && [ "$1" != 000 ]; }
for ((round = 1; round <= ROUNDS; round++)); do
    if implemented "$jobs_status"; then
        # starts per second: POST /v1/jobs answers 201 as soon as the child runs
        r=$(wrk_run 8 "$here/jobs_post.lua" "$base_spawnd/")
        set -- $r
        add jobs.c8.rate "$1"
        [ "$3" -gt 0 ] && note jobs.c8.rate "round$round:$3-errors"
    fi
    if implemented "$fork_status"; then
        # one message at a time (W=1) and 16 in flight; spawnd per-message
        # POSTs ("post") or one streamed NDJSON POST ("stream")
        for c in $(rotate "$round" post stream local relay stream16 local16 relay16); do
            case $c in
            post) args=("$base_spawnd" "$FORK_N" 1) ;;
            stream) args=("$base_spawnd" "$FORK_N" 1 stream) ;;
            local) args=(local "$FORK_N" 1) ;;
            stream16) args=("$base_spawnd" "$((FORK_N * 4))" 16 stream) ;;
            local16) args=(local "$((FORK_N * 4))" 16) ;;
            relay) args=("tcp:$relay_port" "$FORK_N" 1) ;;
            relay16) args=("tcp:$relay_port" "$((FORK_N * 4))" 16) ;;
            esac
            r=$(node "$here/fork_rtt.js" "${args[@]}") || { note "fork.$c" "round$round:failed"; continue; }
            set -- $r
            add "fork.$c" "$1"
            add "fork.$c.p99" "$2"
            add "fork.$c.rate" "$4"
        done
    fi
done

# --- the table ------------------------------------------------------------------
fmt() { # value decimals
    [ -z "$1" ] && { echo "-"; return; }
    awk -v v="$1" -v d="${2:-0}" 'BEGIN {printf "%.*f", d, v}'
}
spread() { # key: "min-max" over the rounds
    [ -z "${res[$1]:-}" ] && return
    [ "$ROUNDS" -gt 1 ] || return
    printf '%s\n' ${res[$1]} | sort -g | awk '{v[NR]=$1} END {printf "(%.0f-%.0f)", v[1], v[NR]}'
}
row() { # label key unit decimals
    local m
    m=$(med "$2")
    printf '  %-44s %12s %-8s %s%s\n' "$1" "$(fmt "$m" "${4:-0}")" "$3" "$(spread "$2")" "${notes[$2]:+  !${notes[$2]}}"
}
verdicts_missed=0
ratio() { # label numerator-key denominator-key op target (no op: shown, not judged)
    local a b v ok
    a=$(med "$2")
    b=$(med "$3")
    if [ -z "$a" ] || [ -z "$b" ] || [ "$(awk -v b="$b" 'BEGIN {print (b == 0)}')" = 1 ]; then
        printf '  %-44s %8s   %-8s %s\n' "$1" "-" "$4 $5" "n/a"
        return
    fi
    v=$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.2f", a / b}')
    if [ -z "$4" ]; then
        printf '  %-44s %8s\n' "$1" "${v}x"
        return
    fi
    ok=$(awk -v v="$v" -v t="$5" -v op="$4" 'BEGIN {print ((op == ">=" && v >= t) || (op == "<=" && v <= t)) ? "ok" : "MISSED"}')
    [ "$ok" = MISSED ] && verdicts_missed=$((verdicts_missed + 1))
    printf '  %-44s %8s   %-8s %s\n' "$1" "${v}x" "$4 $5" "$ok"
}
reference() { ratio "$1" "$2" "$3" "" ""; }
target() { # label key op target unit: an absolute target on one median
    local v ok
    v=$(med "$2")
    if [ -z "$v" ]; then
        printf '  %-44s %8s   %-8s %s\n' "$1" "-" "$3 $4" "n/a"
        return
    fi
    ok=$(awk -v v="$v" -v t="$4" -v op="$3" 'BEGIN {print ((op == ">=" && v >= t) || (op == "<" && v < t)) ? "ok" : "MISSED"}')
    [ "$ok" = MISSED ] && verdicts_missed=$((verdicts_missed + 1))
    printf '  %-44s %8s   %-8s %s\n' "$1" "$(fmt "$v" "$([ -n "$5" ] && echo 2 || echo 0)")$5" "$3 $4$5" "$ok"
}

{
    echo
    echo "spawnd benchmark  $(date -u +%Y-%m-%dT%H:%MZ)  $(nproc) CPUs  $(uname -r)  spawnd from the $built_from"
    echo "mode $mode: medians of $ROUNDS round(s), contenders interleaved; wrk -t1 -d${WRK_S}s; (min-max) over rounds"
    echo
    echo "1. POST /v1/execFile /bin/true (webhook: POST /hooks/true; raw: spawn_rate pipes:true)"
    row "spawnd        -c8  req/s" spawnd.c8.rate "/s"
    row "node_peer     -c8  req/s" node.c8.rate "/s"
    row "webhook       -c8  req/s" webhook.c8.rate "/s"
    row "raw loop      -k8  children/s" raw.k8.rate "/s"
    row "spawnd        -c32 req/s" spawnd.c32.rate "/s"
    row "node_peer     -c32 req/s" node.c32.rate "/s"
    row "webhook       -c32 req/s" webhook.c32.rate "/s"
    echo
    echo "2. latency, one at a time"
    row "spawnd        -c1  median latency" spawnd.c1.p50 "us"
    row "spawnd        -c1  req/s" spawnd.c1.rate "/s"
    row "raw loop      -k1  time per child" raw.k1.us "us" 1
    row "spawnd GET /healthz -c1 median (HTTP alone)" healthz.c1.p50 "us"
    floor=$(awk -v r="$(med raw.k1.us)" -v h="$(med healthz.c1.p50)" 'BEGIN {if (r > 0 && h > 0) printf "%.2fx", (r + h) / r; else print "-"}')
    printf '  %-44s %12s\n' "floor: (raw per child + HTTP alone) / raw" "$floor"
    echo
    echo "3. streaming ${STREAM_MIB} MiB of text through 'cat' (payload MB/s, curl)"
    row "spawnd /v1/spawn NDJSON" stream.ndjson "MB/s"
    row "spawnd /v1/spawn?format=raw" stream.raw "MB/s"
    row "node_peer /v1/spawn NDJSON" stream.node "MB/s"
    row "nginx static file (ceiling)" stream.nginx "MB/s"
    echo
    echo "4. memory (VmRSS)"
    row "spawnd    idle" rss.idle.spawnd "KiB"
    row "node_peer idle" rss.idle.node "KiB"
    row "spawnd    with $SLEEPERS sleeping children" rss.load.spawnd "KiB"
    row "node_peer with $SLEEPERS sleeping children" rss.load.node "KiB"
    if [ "$HOLD_JOBS" -gt 0 ]; then
        row "spawnd concurrent sleeping jobs held" hold.held "jobs"
        row "/healthz p99 while holding them" hold.healthz.p99 "ms" 2
        row "spawnd    with them held" rss.hold.spawnd "KiB"
    fi
    echo
    echo "5. background jobs and fork"
    if implemented "$jobs_status"; then
        row "spawnd POST /v1/jobs execFile -c8 starts/s" jobs.c8.rate "/s"
    else
        echo "  POST /v1/jobs: not implemented (answers ${jobs_status:-nothing}), skipped"
    fi
    if implemented "$fork_status"; then
        row "fork round trip, one POST per message, median" fork.post "us" 1
        row "fork round trip, one POST per message, p99" fork.post.p99 "us" 1
        row "fork round trip, streamed NDJSON POST, median" fork.stream "us" 1
        row "fork round trip, streamed NDJSON POST, p99" fork.stream.p99 "us" 1
        row "node child_process.fork round trip, median" fork.local "us" 1
        row "bare relay (socat, no HTTP) round trip, median" fork.relay "us" 1
        row "round trips/s one at a time: POST per message" fork.post.rate "/s"
        row "round trips/s one at a time: streamed" fork.stream.rate "/s"
        row "round trips/s one at a time: node's own fork" fork.local.rate "/s"
        row "round trips/s one at a time: bare relay" fork.relay.rate "/s"
        row "round trips/s, 16 in flight: streamed" fork.stream16.rate "/s"
        row "round trips/s, 16 in flight: node's own fork" fork.local16.rate "/s"
        row "round trips/s, 16 in flight: bare relay" fork.relay16.rate "/s"
    else
        echo "  POST /v1/fork: not implemented (answers ${fork_status:-nothing}), skipped"
    fi
    echo
    echo "ratios (of the medians) vs targets"
    ratio "execFile -c8  spawnd / node_peer" spawnd.c8.rate node.c8.rate ">=" 3
    ratio "execFile -c8  spawnd / webhook" spawnd.c8.rate webhook.c8.rate ">=" 1.0
    ratio "execFile -c8  spawnd / raw loop -k8" spawnd.c8.rate raw.k8.rate ">=" 0.9
    ratio "execFile -c32 spawnd / node_peer" spawnd.c32.rate node.c32.rate ">=" 3
    ratio "execFile -c32 spawnd / webhook" spawnd.c32.rate webhook.c32.rate ">=" 1.0
    ratio "-c1 latency   spawnd p50 / raw per child" spawnd.c1.p50 raw.k1.us "<=" 1.15
    ratio "stream        NDJSON / node_peer" stream.ndjson stream.node ">=" 2
    ratio "stream        raw / nginx" stream.raw stream.nginx ">=" 0.6
    ratio "RSS idle      spawnd / node_peer" rss.idle.spawnd rss.idle.node "<=" 0.125
    ratio "RSS sleepers  spawnd / node_peer" rss.load.spawnd rss.load.node "<=" 0.25
    if [ "$HOLD_JOBS" -gt 0 ]; then
        if [ "$HOLD_JOBS" -ge "$HOLD_TARGET" ]; then
            target "background jobs held at once" hold.held ">=" "$HOLD_TARGET" ""
        else
            printf '  %-44s %8s   %-8s %s\n' "background jobs held at once" "$(med hold.held)" ">= $HOLD_TARGET" "n/a (only $HOLD_JOBS asked for)"
        fi
        target "/healthz p99 while holding them" hold.healthz.p99 "<" 50 ms
    fi
    if implemented "$fork_status"; then
        ratio "fork 1 at a time  streamed / node's rate" fork.stream.rate fork.local.rate ">=" 0.5
        ratio "fork 16 in flight streamed / node's rate" fork.stream16.rate fork.local16.rate ">=" 0.5
        ratio "fork 1 at a time  POST each / node's rate" fork.post.rate fork.local.rate ">=" 0.5
        echo "  for reference, the bare three-process path (socat in spawnd's place):"
        reference "fork 1 at a time  bare relay / node's rate" fork.relay.rate fork.local.rate
        reference "fork 16 in flight bare relay / node's rate" fork.relay16.rate fork.local16.rate
        reference "fork 1 at a time  streamed / bare relay" fork.stream.rate fork.relay.rate
        reference "fork 16 in flight streamed / bare relay" fork.stream16.rate fork.relay16.rate
    fi
    echo
    echo "targets missed: $verdicts_missed    (per-round values: $bench/results.txt; wrk output: $bench/wrk.log)"
} | tee "$bench/table.txt"

{
    for k in $(printf '%s\n' "${!res[@]}" | sort); do echo "$k:${res[$k]}${notes[$k]:+  notes:${notes[$k]}}"; done
} >"$bench/results.txt"
exit 0

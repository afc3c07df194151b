#!/usr/bin/env bash
# Run a command inside a throw-away network namespace with no route out, next to a private etcd
# (and optionally a private dockerd), then remove everything again.
#
# Why: outside traffic from our machines is intercepted - a connect to ANY non-local address,
# cluster IPs included, appears to succeed and leaves the machine. Inside this namespace only
# loopback (and dockerd's own bridge) exist, so such a connect fails at once with "Network is
# unreachable". The namespace is entered with nsenter --net, not `ip netns exec`, because the
# latter remounts /sys and hides the cgroup mounts dockerd needs (see DESIGN.md).
#
# Usage: tools/sandbox.sh [--docker] [--dockerd-arg ARG]... [--keep-logs] -- COMMAND [ARG]...
#
# The command sees:
#   CAPSTAN_TEST_ETCD_ENDPOINTS=127.0.0.1:2379   a fresh single-member etcd
#   CAPSTAN_SANDBOX=<namespace name>             tests that send traffic check they are inside
#   CAPSTAN_SANDBOX_DIR=<temp dir>               scratch space, removed afterwards
#   DOCKER_HOST=unix://<temp dir>/docker.sock    with --docker only
# The exit status is the command's. Requires root (network namespaces).
set -euo pipefail

# shellcheck source=tools/lib/docker.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/docker.sh"

usage() {
    sed -n '/^# Usage:/,/^# The exit/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

WITH_DOCKER=0
KEEP_LOGS=0
DOCKERD_ARGS=()
while (($#)); do
    case "$1" in
        --docker) WITH_DOCKER=1 ;;
        --dockerd-arg) DOCKERD_ARGS+=("${2:?--dockerd-arg needs a value}"); shift ;;
        --dockerd-arg=*) DOCKERD_ARGS+=("${1#*=}") ;;
        --keep-logs) KEEP_LOGS=1 ;;
        --) shift; break ;;
        -h | --help) usage ;;
        *) echo "sandbox: unknown option $1" >&2; usage ;;
    esac
    shift
done
(($#)) || usage
((EUID == 0)) || { echo "sandbox: must run as root (network namespaces)" >&2; exit 1; }

NETNS="capstan-test-$$-$RANDOM"
NETNS_PATH="/var/run/netns/$NETNS"
CREATED_NETNS=0
SANDBOX_DIR=""
ETCD_PID=""
CONTAINERD_PID=""
DOCKERD_PID=""

log() { printf 'sandbox: %s\n' "$*" >&2; }

# Daemons are started with a direct `nsenter ... &` rather than through this function so that $!
# is the daemon itself (nsenter execs it), not a subshell around it.
in_netns() { nsenter --net="$NETNS_PATH" -- "$@"; }

# stop_pid PID NAME [GRACE_SECONDS]: SIGTERM, wait, then SIGKILL. Only ever called with a PID this
# script started (or found inside its own namespace), never with a name pattern.
stop_pid() {
    local pid="$1" name="$2" grace="${3:-10}" i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < grace * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
        sleep 0.1
    done
    log "$name (pid $pid) did not stop within ${grace}s, killing it"
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

cleanup() {
    local status=$?
    trap - EXIT INT TERM HUP
    # Best effort from here on: one failed step must not skip the rest of the teardown.
    set +e
    if [[ -n "$DOCKERD_PID" ]]; then
        # Containers the command left behind die at once here.
        remove_all_containers "$DOCKER_HOST"
        stop_pid "$DOCKERD_PID" dockerd 30
    fi
    [[ -n "$CONTAINERD_PID" ]] && stop_pid "$CONTAINERD_PID" containerd 10
    [[ -n "$ETCD_PID" ]] && stop_pid "$ETCD_PID" etcd 10
    if ((CREATED_NETNS)); then
        # Anything still inside our private namespace was started by this run (a daemon the
        # command forked and forgot, a container shim): stop it before the namespace goes.
        local pid
        for pid in $(ip netns pids "$NETNS" 2>/dev/null); do
            log "stopping leftover process $pid ($(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null))"
            stop_pid "$pid" leftover 5
        done
        ip netns delete "$NETNS" 2>/dev/null || log "could not delete namespace $NETNS"
    fi
    if [[ -n "$SANDBOX_DIR" && -d "$SANDBOX_DIR" ]]; then
        unmount_under "$SANDBOX_DIR"
        if ((KEEP_LOGS)); then
            find "$SANDBOX_DIR" -mindepth 1 -maxdepth 1 ! -name '*.log' \
                -exec rm -rf --one-file-system {} +
            log "logs kept in $SANDBOX_DIR"
        else
            rm -rf --one-file-system "$SANDBOX_DIR"
        fi
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

fail_with_log() {
    log "$1"
    [[ -f "$2" ]] && tail -n 30 "$2" | sed 's/^/    /' >&2
    exit 1
}

ip netns add "$NETNS"
CREATED_NETNS=1
ip -n "$NETNS" link set lo up
SANDBOX_DIR="$(mktemp -d "${TMPDIR:-/tmp}/capstan-sandbox.XXXXXX")"

# Safety pre-flight: the whole point of the sandbox. Abort unless a connect to a cluster IP fails
# immediately with ENETUNREACH.
in_netns python3 - <<'EOF' || { log "pre-flight failed: namespace has a route out"; exit 1; }
import errno, socket, sys
s = socket.socket()
s.settimeout(2)
try:
    s.connect(("10.96.0.10", 80))
except OSError as e:
    sys.exit(0 if e.errno == errno.ENETUNREACH else f"connect failed with {e!r}, not ENETUNREACH")
sys.exit("connect to 10.96.0.10:80 succeeded")
EOF

start_etcd() {
    local url_c="http://127.0.0.1:2379" url_p="http://127.0.0.1:2380" log_file="$SANDBOX_DIR/etcd.log"
    nsenter --net="$NETNS_PATH" -- etcd --name sandbox --data-dir "$SANDBOX_DIR/etcd" \
        --listen-client-urls "$url_c" --advertise-client-urls "$url_c" \
        --listen-peer-urls "$url_p" --initial-advertise-peer-urls "$url_p" \
        --initial-cluster "sandbox=$url_p" --log-level warn \
        </dev/null >"$log_file" 2>&1 &
    ETCD_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$ETCD_PID" 2>/dev/null || fail_with_log "etcd exited" "$log_file"
        if in_netns etcdctl --endpoints 127.0.0.1:2379 --command-timeout=1s endpoint health \
            >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    fail_with_log "etcd not healthy after 20s" "$log_file"
}

# Our own containerd, always (see tools/lib/docker.sh).
start_containerd() {
    local log_file="$SANDBOX_DIR/containerd.log"
    containerd_command "$SANDBOX_DIR/docker"
    nsenter --net="$NETNS_PATH" -- "${CONTAINERD_CMD[@]}" </dev/null >"$log_file" 2>&1 &
    CONTAINERD_PID=$!
    local i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$CONTAINERD_PID" 2>/dev/null || fail_with_log "containerd exited" "$log_file"
        [[ -S "$CONTAINERD_SOCK" ]] && return 0
        sleep 0.1
    done
    fail_with_log "containerd not ready after 10s" "$log_file"
}

start_dockerd() {
    local log_file="$SANDBOX_DIR/dockerd.log"
    export DOCKER_HOST="unix://$SANDBOX_DIR/docker.sock"
    dockerd_command "$SANDBOX_DIR/docker" "$DOCKER_HOST" "$NETNS" "${DOCKERD_ARGS[@]}"
    nsenter --net="$NETNS_PATH" -- "${DOCKERD_CMD[@]}" </dev/null >"$log_file" 2>&1 &
    DOCKERD_PID=$!
    local i
    for ((i = 0; i < 300; i++)); do
        kill -0 "$DOCKERD_PID" 2>/dev/null || fail_with_log "dockerd exited" "$log_file"
        docker info >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    fail_with_log "dockerd not ready after 30s" "$log_file"
}

start_etcd
if ((WITH_DOCKER)); then
    start_containerd
    start_dockerd
fi

export CAPSTAN_TEST_ETCD_ENDPOINTS=127.0.0.1:2379
export CAPSTAN_SANDBOX="$NETNS"
export CAPSTAN_SANDBOX_DIR="$SANDBOX_DIR"
set +e
in_netns "$@"
status=$?
set -e
exit "$status"

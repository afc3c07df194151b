# shellcheck shell=bash
# A private containerd + dockerd for one network namespace, shared by tools/sandbox.sh and
# tools/cluster (sourced, not run).
#
# Why private, both of them: dockerd uses a system containerd whenever
# /run/containerd/containerd.sock exists, and that one runs in the host's network namespace,
# where a --network=host container would land. Every path (-H, --data-root, --exec-root,
# --pidfile, containerd's root/state/socket) lives under one directory so that several of these
# pairs (one per sandbox, one per cluster node) never collide, and with --iptables=false and
# --ip-masq=false dockerd adds no rules that compete with the proxy's (DESIGN.md).

DOCKERD_SAFE_ARGS=(--iptables=false --ip-masq=false)

# containerd_command DIR: write DIR/containerd/config.toml and set CONTAINERD_CMD (its command
# line) and CONTAINERD_SOCK. The CRI plugin is off: nothing here talks CRI.
containerd_command() {
    local dir="$1/containerd"
    mkdir -p "$dir"
    cat >"$dir/config.toml" <<TOML
version = 2
root = "$dir/root"
state = "$dir/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$dir/containerd.sock"
TOML
    CONTAINERD_SOCK="$dir/containerd.sock"
    CONTAINERD_CMD=(containerd --config "$dir/config.toml")
}

# dockerd_command DIR HOST NAMESPACE [ARG]...: set DOCKERD_CMD, a dockerd serving HOST
# (unix://...) with its state under DIR, on the containerd of containerd_command DIR, keeping its
# containers in containerd namespace NAMESPACE. ARGs follow the safe defaults (so they can add
# --bip and the like).
dockerd_command() {
    local dir="$1" host="$2" namespace="$3"
    shift 3
    mkdir -p "$dir/data" "$dir/exec"
    DOCKERD_CMD=(dockerd -H "$host" --data-root "$dir/data" --exec-root "$dir/exec"
        --pidfile "$dir/docker.pid"
        --containerd "$dir/containerd/containerd.sock" --containerd-namespace "$namespace"
        --containerd-plugins-namespace "$namespace-plugins"
        "${DOCKERD_SAFE_ARGS[@]}" "$@")
}

# remove_all_containers HOST: docker rm -f every container of the dockerd at HOST. Before that
# dockerd stops: on shutdown it would give each container its full stop timeout.
remove_all_containers() {
    local leftover
    leftover="$(timeout 10 docker -H "$1" ps -aq 2>/dev/null || true)"
    # shellcheck disable=SC2086 # one container ID per word
    [[ -z "$leftover" ]] || timeout 30 docker -H "$1" rm -f $leftover >/dev/null 2>&1 || true
}

# unmount_under DIR: unmount anything left mounted below DIR (dockerd's overlay and netns mounts
# when it was killed, a kubelet's tmpfs volumes), deepest first, so that removing DIR can never
# reach through a mount into other files.
unmount_under() {
    local dir="${1%/}" mnt
    awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r |
        while read -r mnt; do umount -l "$mnt" 2>/dev/null || true; done
}

#!/usr/bin/env bash
# Idempotent set-up of a development or CI machine (Debian 12): system packages, the venv at
# .venv and the editable install of capstan with its dev extras.
#
# Every step checks before it acts so that a second run costs well under a second: apt runs only
# for packages dpkg does not know as installed, and pip runs only when pyproject.toml changed
# since the last successful install (its hash is kept in .venv/.capstan-setup-stamp).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMP="$VENV/.capstan-setup-stamp"

# etcd and etcdctl for the store, Docker for the kubelet, iptables for the proxy, busybox-static
# for the FROM-scratch test images, iproute2 for the sandbox's network namespaces, docker-registry
# for the local registry that serves real (authenticated) pulls in the kubelet's e2e tests.
APT_PACKAGES=(etcd-server etcd-client docker.io iptables busybox-static iproute2 docker-registry)

log() { printf 'setup: %s\n' "$*" >&2; }

is_installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

install_apt_packages() {
    local missing=() pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        is_installed "$pkg" || missing+=("$pkg")
    done
    # A python3 outside Debian's packaging (pyenv, a container image) brings its own venv support.
    if ! python3 -c 'import ensurepip' 2>/dev/null && ! is_installed python3-venv; then
        missing+=(python3-venv)
    fi
    ((${#missing[@]} == 0)) && return 0
    local sudo=()
    if ((EUID != 0)); then
        command -v sudo >/dev/null || { log "missing packages ${missing[*]} and not root"; exit 1; }
        sudo=(sudo)
    fi
    log "installing ${missing[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends \
        "${missing[@]}" >/dev/null
}

install_python_packages() {
    if [[ ! -x "$VENV/bin/python" ]]; then
        log "creating $VENV"
        python3 -m venv "$VENV"
    fi
    local want
    want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1) $("$VENV/bin/python" -V 2>&1)"
    if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$want" ]]; then
        return 0
    fi
    log "pip install -e '.[dev]'"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[dev]"
    printf '%s\n' "$want" >"$STAMP"
}

install_apt_packages
install_python_packages

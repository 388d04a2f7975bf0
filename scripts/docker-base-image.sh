#!/usr/bin/env bash
# Build a local stand-in for the `python:3.11-slim` base image when no container
# registry can be reached.
#
#   bash scripts/docker-base-image.sh            # build (or refresh) the stand-in
#   FORCE=1 bash scripts/docker-base-image.sh    # rebuild the root filesystem too
#
# What it does:
#   1. debootstrap a minimal Debian bookworm (the host's own apt mirror) with
#      Debian's python3.11, python3.11-venv and python3-pip, make
#      /usr/local/bin/python{,3} and pip{,3} resolve to them (so a Dockerfile
#      written for the real python:3.11-slim works unchanged), and drop Debian's
#      EXTERNALLY-MANAGED marker (the real image lets `pip install` run system-wide).
#      The finished root filesystem is cached as a tarball under $CACHE_DIR, so a
#      rerun on the same machine skips debootstrap.
#   2. `docker import` it as $ROOTFS_IMAGE.
#   3. Add a thin layer on top, tagged $IMAGE_TAG, that trusts the host's extra CA
#      certificates (/usr/local/share/ca-certificates) and carries a pip.conf
#      pointing pip at the system bundle (and at the host's index, if the host
#      uses a non-default http(s) one), so `pip install` inside `docker build`
#      reaches PyPI the way the host does. This layer is cheap and is redone
#      whenever the host's certificates change (the hash is kept in a label).
#
# Idempotent: when $IMAGE_TAG already is an up-to-date stand-in, it does nothing.
# It never touches an image that is not its own stand-in (e.g. a pulled
# python:3.11-slim), unless FORCE=1.
set -euo pipefail

IMAGE_TAG=${IMAGE_TAG:-python:3.11-slim}
ROOTFS_IMAGE=${ROOTFS_IMAGE:-sagabank/bookworm-python3.11-rootfs:1}
CACHE_DIR=${CACHE_DIR:-/var/cache/sagabank-docker}
SUITE=${SUITE:-bookworm}
STANDIN_VERSION=1
PACKAGES=python3.11,python3.11-venv,python3-pip,ca-certificates
ROOTFS_TAR="$CACHE_DIR/rootfs-$SUITE-python3.11-v$STANDIN_VERSION.tar"
HOST_CA_DIR=/usr/local/share/ca-certificates
FORCE=${FORCE:-0}

log() { printf '[docker-base-image] %s\n' "$*"; }
die() { printf '[docker-base-image] ERROR: %s\n' "$*" >&2; exit 1; }

# The Debian mirror the host's apt uses (deb822 .sources first, then one-line lists).
host_mirror() {
    local uri=""
    if compgen -G '/etc/apt/sources.list.d/*.sources' >/dev/null; then
        uri=$(awk '
            /^URIs:/ { for (i = 2; i <= NF; i++) if ($i ~ /\/debian\/?$/) { print $i; exit } }
        ' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)
    fi
    if [[ -z "$uri" && -f /etc/apt/sources.list ]]; then
        uri=$(awk '$1 == "deb" && $0 !~ /security/ {
                  for (i = 2; i <= NF; i++) if ($i ~ /^https?:\/\//) { print $i; exit } }' \
              /etc/apt/sources.list | head -n1)
    fi
    printf '%s\n' "${uri:-http://deb.debian.org/debian}"
}
MIRROR=${MIRROR:-$(host_mirror)}

# Hash of the host's extra CA certificates (names and contents), so the top layer
# is rebuilt when they change.
ca_hash() {
    {
        if [[ -d "$HOST_CA_DIR" ]]; then
            find "$HOST_CA_DIR" -type f -name '*.crt' -print0 | sort -z |
                xargs -0r sha256sum
        fi
        pip_index_url
    } | sha256sum | cut -d' ' -f1
}

# A non-default http(s) package index the host's pip uses, if any.
pip_index_url() {
    local url=${PIP_INDEX_URL:-}
    if [[ -z "$url" ]] && command -v pip >/dev/null 2>&1; then
        url=$(pip config get global.index-url 2>/dev/null || true)
    fi
    case "$url" in
        http://* | https://*) printf '%s\n' "$url" ;;
        *) ;;
    esac
}

label_of() {
    docker image inspect --format "{{ index .Config.Labels \"$2\" }}" "$1" 2>/dev/null || true
}

command -v docker >/dev/null || die "docker client not found"
docker info >/dev/null 2>&1 || die "docker daemon is not answering (start dockerd first)"

WANT_HASH=$(ca_hash)
if docker image inspect "$IMAGE_TAG" >/dev/null 2>&1 && [[ "$FORCE" != 1 ]]; then
    if [[ -z "$(label_of "$IMAGE_TAG" sagabank.standin)" ]]; then
        log "$IMAGE_TAG exists and is not a stand-in: leaving it alone"
        exit 0
    fi
    if [[ "$(label_of "$IMAGE_TAG" sagabank.standin.ca-sha256)" == "$WANT_HASH" ]]; then
        log "$IMAGE_TAG stand-in is up to date"
        exit 0
    fi
    log "$IMAGE_TAG stand-in is out of date (host CA certificates or pip index changed)"
fi

# ---- 1. root filesystem (cached) -------------------------------------------------
if [[ "$FORCE" == 1 || ! -s "$ROOTFS_TAR" ]]; then
    if ! command -v debootstrap >/dev/null; then
        log "installing debootstrap"
        DEBIAN_FRONTEND=noninteractive timeout 300 apt-get install -y -qq debootstrap >/dev/null ||
            { timeout 300 apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
                timeout 300 apt-get install -y -qq debootstrap >/dev/null; } ||
            die "could not install debootstrap"
    fi
    mkdir -p "$CACHE_DIR"
    WORK=$(mktemp -d "$CACHE_DIR/work.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    ROOT="$WORK/rootfs"
    log "debootstrap $SUITE (minbase + $PACKAGES) from $MIRROR"
    if ! timeout 1200 debootstrap --variant=minbase --include="$PACKAGES" \
        "$SUITE" "$ROOT" "$MIRROR" >"$WORK/debootstrap.log" 2>&1; then
        tail -n 30 "$WORK/debootstrap.log" >&2 || true
        die "debootstrap failed"
    fi

    log "configuring the root filesystem"
    cat >"$ROOT/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
EOF
    # python:3.11-slim has its interpreter and pip in /usr/local/bin.
    mkdir -p "$ROOT/usr/local/bin"
    ln -sf /usr/bin/python3.11 "$ROOT/usr/local/bin/python"
    ln -sf /usr/bin/python3.11 "$ROOT/usr/local/bin/python3"
    ln -sf /usr/bin/python3.11 "$ROOT/usr/local/bin/python3.11"
    ln -sf /usr/bin/pip3 "$ROOT/usr/local/bin/pip"
    ln -sf /usr/bin/pip3 "$ROOT/usr/local/bin/pip3"
    # ... and lets pip install system-wide (no PEP 668 marker).
    rm -f "$ROOT"/usr/lib/python3*/EXTERNALLY-MANAGED
    # Slim it down like the official image: no apt lists, docs, manuals, caches.
    rm -rf "$ROOT"/var/lib/apt/lists/* "$ROOT"/var/cache/apt/* "$ROOT"/var/cache/debconf/*-old \
        "$ROOT"/usr/share/doc/* "$ROOT"/usr/share/man/* "$ROOT"/usr/share/info/* \
        "$ROOT"/var/log/* "$ROOT"/tmp/* "$ROOT"/root/.cache
    find "$ROOT/usr/lib" -name '__pycache__' -type d -prune -exec rm -rf {} + 2>/dev/null || true
    # The chroot may have mounted these during debootstrap; make sure none is left.
    for m in proc sys dev/pts dev; do
        if mountpoint -q "$ROOT/$m"; then umount -l "$ROOT/$m" || true; fi
    done
    chroot "$ROOT" /usr/local/bin/python -c 'import ssl, venv, ensurepip' ||
        die "python3.11 does not run in the new root filesystem"

    log "caching the root filesystem at $ROOTFS_TAR"
    tar --numeric-owner --xattrs -C "$ROOT" -cf "$ROOTFS_TAR.tmp" .
    mv "$ROOTFS_TAR.tmp" "$ROOTFS_TAR"
    rm -rf "$WORK"
    trap - EXIT
    docker image rm -f "$ROOTFS_IMAGE" >/dev/null 2>&1 || true
else
    log "reusing cached root filesystem $ROOTFS_TAR"
fi

# ---- 2. import ---------------------------------------------------------------------
if [[ "$FORCE" == 1 ]] || ! docker image inspect "$ROOTFS_IMAGE" >/dev/null 2>&1; then
    log "docker import -> $ROOTFS_IMAGE"
    docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' \
        "$ROOTFS_TAR" "$ROOTFS_IMAGE" >/dev/null
fi

# ---- 3. host trust + pip configuration layer ---------------------------------------
CTX=$(mktemp -d)
trap 'rm -rf "$CTX"' EXIT
mkdir -p "$CTX/certs"
if [[ -d "$HOST_CA_DIR" ]]; then
    # Flatten into one folder; update-ca-certificates only reads *.crt.
    find "$HOST_CA_DIR" -type f -name '*.crt' -exec cp {} "$CTX/certs/" \;
fi
{
    echo '[global]'
    echo 'cert = /etc/ssl/certs/ca-certificates.crt'
    INDEX_URL=$(pip_index_url)
    if [[ -n "$INDEX_URL" ]]; then
        echo "index-url = $INDEX_URL"
    fi
} >"$CTX/pip.conf"
cat >"$CTX/Dockerfile" <<EOF
FROM $ROOTFS_IMAGE
COPY certs/ /usr/local/share/ca-certificates/
COPY pip.conf /etc/pip.conf
RUN update-ca-certificates >/dev/null && python3 --version
LABEL sagabank.standin="debian-$SUITE-python3.11" \\
      sagabank.standin.version="$STANDIN_VERSION" \\
      sagabank.standin.ca-sha256="$WANT_HASH"
CMD ["python3"]
EOF
log "building $IMAGE_TAG (trusts $(find "$CTX/certs" -name '*.crt' | wc -l) host CA certificate(s))"
DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE_TAG" "$CTX" >/dev/null 2>"$CTX/build.err" || {
    cat "$CTX/build.err" >&2
    die "building $IMAGE_TAG failed"
}
log "done: $IMAGE_TAG ($(docker image inspect --format '{{.Size}}' "$IMAGE_TAG" | awk '{printf "%.0f MB", $1/1e6}'))"

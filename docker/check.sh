#!/usr/bin/env bash
# Builds the CPU and GPU images and puts the compose stack through a real run, end to end:
#   1. base images: local ones from Debian's archive and npm (docker/local-bases.sh), or the public
#      ones with CHECK_BASES=public
#   2. builds sso-trainer and sso-trainer-gpu; the GPU image is started once (no GPU needed)
#   3. compose up on an internal network (nothing leaves the machine, no host port is taken); the API
#      must turn healthy
#   4. through the API (a client container on the same network): a queries dataset and an sso run on
#      the tiny model, followed over the WebSocket until it succeeds
#   5. workers scaled to 2; a second run is followed until it trains with a checkpoint behind it, its
#      worker container is killed (SIGKILL), and the run must resume on the other worker and succeed
#   6. no process in any container runs as root
#   7. compose stop (graceful exit codes), compose down (no container, network or volume left)
# Prints one JSON line per result on stdout (logs on stderr); exits non-zero on the first failure.
# Needs a running Docker daemon and Compose (v2 `docker compose` or v1.29 `docker-compose`).
set -euo pipefail
cd "$(dirname "$0")/.."

PROJECT="${CHECK_PROJECT:-ssocheck}"
CLIENT_TIMEOUT_S="${CHECK_CLIENT_TIMEOUT_S:-600}"
log() { echo "docker-check: $*" >&2; }
fail() { log "FAILED: $*"; exit 1; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose=(docker-compose)
else
  fail "neither docker compose (v2) nor docker-compose (v1) is installed"
fi
log "compose $("${compose[@]}" version --short), docker $(docker version -f '{{.Server.Version}}')"
compose+=(-p "$PROJECT" -f docker/compose.yaml -f docker/compose.check.yaml)
stack() { docker ps -q "$@" --filter "label=com.docker.compose.project=$PROJECT"; }

down() { "${compose[@]}" down --volumes --remove-orphans --timeout 30 >&2 2>&1; }
cleanup() {
  local rc=$?
  if [ "$rc" != 0 ]; then
    "${compose[@]}" logs --no-color --tail 40 >&2 2>&1 || true
    down || true
  fi
}
trap cleanup EXIT
down >/dev/null 2>&1 || true # leftovers of an interrupted check

# 1. Bases.
if [ "${CHECK_BASES:-local}" = public ]; then
  export NODE_IMAGE=node:24-bookworm-slim POSTGRES_IMAGE=postgres:17-bookworm \
    GPU_BASE_IMAGE=nvidia/cuda:12.6.3-cudnn-runtime-ubuntu24.04
else
  t=$(now)
  while IFS='=' read -r name value; do export "$name=$value"; done < <(docker/local-bases.sh)
  log "local bases ready in $(secs "$t" "$(now)") s"
fi

# 2. Images. Builds use the host network (npm registry, apt mirror) as the machine reaches them.
image_line() {
  local bytes
  bytes=$(docker image inspect -f '{{.Size}}' "$1")
  printf '{"check":"image","image":"%s","base":"%s","size_mb":%s,"build_s":%s}\n' \
    "$1" "$2" "$(awk -v b="$bytes" 'BEGIN { printf "%.0f", b / 1e6 }')" "$3"
}
t=$(now)
docker build --network host -q -f docker/Dockerfile --build-arg NODE_IMAGE="$NODE_IMAGE" -t sso-trainer . >/dev/null
image_line sso-trainer "$NODE_IMAGE" "$(secs "$t" "$(now)")"
t=$(now)
docker build --network host -q -f docker/Dockerfile.gpu --build-arg NODE_IMAGE="$NODE_IMAGE" \
  --build-arg GPU_BASE_IMAGE="$GPU_BASE_IMAGE" -t sso-trainer-gpu . >/dev/null
image_line sso-trainer-gpu "$GPU_BASE_IMAGE" "$(secs "$t" "$(now)")"

# The GPU image starts its CLI as the non-root user, with the Vulkan loader WebGPU needs.
gpu_uid=$(docker run --rm --network none --entrypoint id sso-trainer-gpu -u)
gpu_vulkan=$(docker run --rm --network none --entrypoint sh sso-trainer-gpu -c "ldconfig -p | grep -c 'libvulkan\.so\.1 '")
docker run --rm --network none sso-trainer-gpu --help >/dev/null || fail "the GPU image's CLI does not start"
[ "$gpu_uid" != 0 ] && [ "$gpu_vulkan" -ge 1 ] || fail "GPU image: uid $gpu_uid, libvulkan.so.1 entries $gpu_vulkan"
printf '{"check":"gpu_image","uid":%s,"vulkan_loader":true,"cli_starts":true}\n' "$gpu_uid"

# 3. Compose up. `up` returns once the API is healthy (the workers wait for it).
export BOOTSTRAP_ADMIN_KEY SSO_PORT=127.0.0.1:0
BOOTSTRAP_ADMIN_KEY=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
t_up=$(now)
"${compose[@]}" up -d --no-build >&2 2>&1 || fail "compose up"
up_s=$(secs "$t_up" "$(now)")
container_of() { "${compose[@]}" ps -q "$1"; }
healthy_at() { # end time of the first passing health probe, as seconds since the epoch
  docker inspect -f '{{range .State.Health.Log}}{{if eq .ExitCode 0}}{{.End}}{{"\n"}}{{end}}{{end}}' "$1" |
    head -1 | sed 's/ [A-Z]*$//' | xargs -r -I{} date -d {} +%s.%N # "… +0000 UTC": date takes no zone name
}
api=$(container_of api)
api_at=$(healthy_at "$api")
api_started=$(date -d "$(docker inspect -f '{{.State.StartedAt}}' "$api")" +%s.%N)
[ -n "$api_at" ] || fail "the API container has no passing health check"
printf '{"check":"startup","api_started_s":%s,"api_healthy_s":%s,"compose_up_s":%s}\n' \
  "$(secs "$t_up" "$api_started")" "$(secs "$t_up" "$api_at")" "$up_s"

# 4. A client container on the stack's network, running this repository's client with the image's Node.
client() {
  timeout "$CLIENT_TIMEOUT_S" docker run --rm --network "${PROJECT}_default" \
    -e SSO_URL=http://api:3000 -e SSO_API_KEY="$BOOTSTRAP_ADMIN_KEY" \
    -v "$PWD/docker/check-run.ts:/app/docker/check-run.ts:ro" \
    --entrypoint node sso-trainer --import tsx docker/check-run.ts "$@"
}
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^\",}]*\).*/\1/p"; }

client workers 1 >/dev/null || fail "no worker registered"
t=$(now)
run1=$(client start | field run_id)
result=$(client watch "$run1" until=succeeded) || fail "run $run1 did not succeed"
printf '{"check":"run","workers":1,"run_s":%s,"result":%s}\n' "$(secs "$t" "$(now)")" "$result"

# 5. Two workers; kill the one training the second run.
"${compose[@]}" up -d --no-build --no-recreate --scale worker=2 >&2 2>&1 || fail "scale workers to 2"
client workers 2 >/dev/null || fail "the second worker did not register"
t=$(now)
run2=$(client start | field run_id)
mid=$(client watch "$run2" until=checkpoint) || fail "run $run2 never trained with a checkpoint"
victim=$(echo "$mid" | field worker_hostname)
since=$(echo "$mid" | field last_seq)
stack --filter label=com.docker.compose.service=worker |
  grep -qx "$victim" || fail "run $run2 is held by '$victim', not a worker container of this stack"
docker kill "$victim" >/dev/null
log "killed worker container $victim while run $run2 was training (seq $since)"
result=$(client watch "$run2" until=succeeded since_seq="$since") || fail "run $run2 did not resume and succeed"
attempt=$(echo "$result" | field attempt)
[ "$attempt" -ge 2 ] || fail "run $run2 succeeded without a second attempt: $result"
printf '{"check":"worker_killed","killed":"%s","resumed_from_seq":%s,"run_s":%s,"result":%s}\n' \
  "$victim" "$since" "$(secs "$t" "$(now)")" "$result"

# 6. Every process of every running container of the stack, by user id.
root_procs=0
users=()
for c in $(stack); do
  name=$(docker inspect -f '{{.Name}}' "$c")
  uids=$(docker top "$c" -eo pid,uid | awk 'NR > 1 { print $2 }' | sort -u | tr '\n' ' ')
  users+=("\"${name#/}\":\"${uids% }\"")
  for uid in $uids; do [ "$uid" != 0 ] || root_procs=$((root_procs + 1)); done
done
printf '{"check":"non_root","root_processes":%s,"uids":{%s}}\n' "$root_procs" "$(IFS=,; echo "${users[*]}")"
[ "$root_procs" = 0 ] || fail "processes running as root"

# 7. Graceful stop (SIGTERM; Postgres SIGINT), then down.
"${compose[@]}" stop --timeout 60 >&2 2>&1 || fail "compose stop"
codes=()
bad=0
for c in $(stack -a); do
  [ "$c" != "$victim" ] || continue
  name=$(docker inspect -f '{{.Name}}' "$c")
  code=$(docker inspect -f '{{.State.ExitCode}}' "$c")
  codes+=("\"${name#/}\":$code")
  [ "$code" = 0 ] || bad=$((bad + 1))
done
t=$(now)
down || fail "compose down"
left=$(stack -a | wc -l)
nets=$(docker network ls -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
vols=$(docker volume ls -q --filter "label=com.docker.compose.project=$PROJECT" | wc -l)
printf '{"check":"down","exit_codes":{%s},"down_s":%s,"containers_left":%s,"networks_left":%s,"volumes_left":%s}\n' \
  "$(IFS=,; echo "${codes[*]}")" "$(secs "$t" "$(now)")" "$left" "$nets" "$vols"
[ "$bad" = 0 ] && [ "$left" = 0 ] && [ "$nets" = 0 ] && [ "$vols" = 0 ] || fail "unclean stop or leftovers"
log "passed"

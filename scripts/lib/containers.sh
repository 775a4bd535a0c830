# Shared by the container tests (scripts/container-test.sh,
# scripts/federation-test.sh); sourced, not run. The caller sets $work (a
# temporary directory) and $tag (the image tag) first.

# ct_require: the tools every container test needs.
ct_require() {
  local c
  for c in docker docker-compose go; do
    command -v "$c" >/dev/null || { echo "$(basename "$0"): $c not found"; exit 1; }
  done
}

# ct_build SCENARIO_PKG: builds the static vaxel binary into $work/ctx/vaxel,
# the image $tag from it (Dockerfile, FROM scratch; nothing is pulled) and
# the scenario driver into $work/scenario.
ct_build() {
  local t0=$SECONDS version
  mkdir -p "$work/ctx/data"
  version=$(git describe --always --dirty 2>/dev/null || echo devel)
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/vaxel/vaxel/node.Version=$version" \
    -o "$work/ctx/vaxel" ./cmd/vaxel
  # Same flags as the image's binary, so the two builds share the build cache.
  CGO_ENABLED=0 go build -trimpath -o "$work/scenario" "$1"
  # The classic builder (no buildx here; a FROM scratch COPY needs nothing more).
  if ! DOCKER_BUILDKIT=0 docker build -f Dockerfile -t "$tag" "$work/ctx" >"$work/build.log" 2>&1; then
    cat "$work/build.log"; exit 1
  fi
  echo "built $version in $((SECONDS - t0)) s: image $(docker image inspect -f '{{.Size}}' "$tag") bytes"
}

# ct_project PREFIX WORKDIR: a compose project name unique per run, also
# between jobs sharing one Docker engine (a PID alone is not): PREFIX, the
# PID and WORKDIR's random mktemp suffix, lower-cased as compose requires.
ct_project() {
  printf '%s%s%s\n' "$1" "$$" "$(basename "$2" | sed 's/.*\.//' | tr 'A-Z' 'a-z' | tr -cd 'a-z0-9')"
}

# free_port VAR: a TCP port on 127.0.0.1 nobody listens on, below the
# kernel's ephemeral range (outgoing connections take ports from that range
# without listening, so a port there can be taken between the check and
# docker's bind), different from those picked.
ct_eph_low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
ct_picked=" "
free_port() {
  local p
  while :; do
    p=$((ct_eph_low - 12000 + RANDOM % 12000))
    case "$ct_picked" in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      ct_picked="$ct_picked$p "
      export "$1=$p"
      return
    fi
  done
}

# ct_teardown RC LOG_LINES KEEP HOW_TO_TEAR_DOWN: the container tests' exit
# trap. On failure it shows the last LOG_LINES lines of every service's log;
# with KEEP set it leaves everything running and says how to tear it down;
# otherwise it removes the project's containers, volumes and network, the
# image and $work. Exits with RC. Uses the caller's dc (docker-compose of
# the project), $project, $tag and $work.
ct_teardown() {
  local rc=$1 lines=$2 keep=$3 how=$4
  if [ "$rc" -ne 0 ]; then
    echo "== container logs (last $lines lines per service)"
    dc logs --no-color --tail="$lines" 2>&1 || true
  fi
  if [ -n "$keep" ]; then
    echo "== kept: project $project, image $tag, files in $work"
    echo "   tear down: $how"
    exit "$rc"
  fi
  echo "== teardown"
  dc down -v --remove-orphans -t 5 >/dev/null 2>&1 || true
  docker rmi -f "$tag" >/dev/null 2>&1 || true
  rm -rf "$work"
  exit "$rc"
}

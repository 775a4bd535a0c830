#!/usr/bin/env bash
# The container test: builds the vaxel image (Dockerfile, FROM scratch), starts
# the three-node platform of test/container/docker-compose.yml with a fresh
# test PKI, and runs test/container/scenario against it: calls and orders
# flowing while the leader's container is killed and started again, then all
# nodes restarted. Prints the measured figures; exits non-zero if an
# acceptance criterion fails. Always tears everything down.
#
# Needs Go, a Docker engine and docker-compose (v1). No image is pulled.
# Run by scripts/test.sh (pass "container"); alone: scripts/container-test.sh
# Environment: VAXEL_CT_FLAGS adds flags to the scenario (go run
# ./test/container/scenario -h lists them, e.g. "-cycles 5");
# VAXEL_CT_KEEP=1 leaves the platform running afterwards, for a look.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

. scripts/lib/containers.sh
ct_require

work=$(mktemp -d "${TMPDIR:-/tmp}/vaxel-ct.XXXXXX")
project=$(ct_project vaxelct "$work")
tag="vaxel-ct:$project"
compose_file="$root/test/container/docker-compose.yml"
# The compose file insists on VAXEL_IMAGE and VAXEL_CT_ETC, also for "down".
dc() { VAXEL_IMAGE="${VAXEL_IMAGE:-$tag}" VAXEL_CT_ETC="${VAXEL_CT_ETC:-$work/etc}" docker-compose -p "$project" -f "$compose_file" "$@"; }

cleanup() {
  rc=$?
  trap - EXIT INT TERM
  ct_teardown "$rc" 60 "${VAXEL_CT_KEEP:-}" "VAXEL_IMAGE=$tag VAXEL_CT_ETC=$work/etc docker-compose -p $project -f $compose_file down -v; docker rmi $tag; rm -rf $work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== build (static binary, image $tag)"
ct_build ./test/container/scenario

echo "== PKI and configuration"
vaxel="$work/ctx/vaxel"
pki="$work/pki"
"$vaxel" cert ca -dir "$pki" -name "vaxel container test CA" >/dev/null
for n in node1 node2 node3; do
  "$vaxel" cert issue -dir "$pki" -name "$n" -hosts "$n,localhost,127.0.0.1" -days 2 >/dev/null
done
"$vaxel" cert issue -dir "$pki" -name admin -hsa-id ADMIN -hosts localhost -days 2 >/dev/null
"$vaxel" cert issue -dir "$pki" -name consumer -hsa-id SE0000000001-CT -hosts localhost -days 2 >/dev/null
# What the containers see (read-only): the configuration, the CA certificate
# and the node certificates. The nodes run as uid 65532, so the throwaway
# test keys are made readable; the CA key stays out.
etc="$work/etc"
mkdir -p "$etc/pki"
cp test/container/vaxel.yaml "$etc/vaxel.yaml"
cp "$pki/ca.crt" "$pki"/node?.crt "$pki"/node?.key "$etc/pki/"
chmod 755 "$etc" "$etc/pki"
chmod 644 "$etc/vaxel.yaml" "$etc"/pki/*

export VAXEL_IMAGE="$tag" VAXEL_CT_ETC="$etc"
echo "== start the platform (project $project)"
for attempt in 1 2 3; do
  for v in VAXEL_CT_R1 VAXEL_CT_R2 VAXEL_CT_R3 VAXEL_CT_A1 VAXEL_CT_A2 VAXEL_CT_A3; do
    free_port "$v"
  done
  if dc up -d --no-build >"$work/up.log" 2>&1; then
    break
  fi
  cat "$work/up.log"
  # Another program took one of the ports meanwhile: pick others.
  if [ "$attempt" -eq 3 ] || ! grep -q "address already in use" "$work/up.log"; then
    exit 1
  fi
  echo "(a port was taken meanwhile; trying other ports)"
  dc down -v -t 1 >/dev/null 2>&1 || true
done
echo "== scenario"
timeout 600 "$work/scenario" \
  -pki "$pki" -compose-file "$compose_file" -project "$project" \
  -nodes "node1=$VAXEL_CT_R1:$VAXEL_CT_A1,node2=$VAXEL_CT_R2:$VAXEL_CT_A2,node3=$VAXEL_CT_R3:$VAXEL_CT_A3" \
  ${VAXEL_CT_FLAGS:-}

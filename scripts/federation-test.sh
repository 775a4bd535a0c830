#!/usr/bin/env bash
# The federation container test: builds the vaxel image (Dockerfile, FROM
# scratch), starts the three federated platforms of
# test/federation/docker-compose.yml (region A with 3 nodes, the national
# platform with 3, region B with 1, and region B's producer) with a fresh
# test PKI and fresh gossip keys, and runs test/federation/scenario against
# them: a consumer in A calls the producer behind B through the national
# platform; the national node in use is killed while 200 calls/s flow;
# region B is cut off from the network and reconnected; the chain is traced.
# Prints the measured figures; exits non-zero if an acceptance criterion
# fails. Always tears everything down.
#
# Needs Go, a Docker engine and docker-compose (v1). No image is pulled.
# Run by scripts/test.sh (pass "federation"); alone: scripts/federation-test.sh
# Environment: VAXEL_FT_FLAGS adds flags to the scenario (go run
# ./test/federation/scenario -h lists them); VAXEL_FT_KEEP=1 leaves the
# federation running afterwards, for a look.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

. scripts/lib/containers.sh
ct_require

work=$(mktemp -d "${TMPDIR:-/tmp}/vaxel-ft.XXXXXX")
project=$(ct_project vaxelft "$work")
tag="vaxel-ft:$project"
compose_file="$root/test/federation/docker-compose.yml"
nodes="a1 a2 a3 n1 n2 n3 b1"
# The compose file insists on these, also for "down"; fill them with
# placeholders until the real values are chosen.
export VAXEL_IMAGE="$tag" VAXEL_FT_ETC="$work/etc" VAXEL_FT_NET=10.0.0 VAXEL_FT_SUBNET=10.0.0.0/24
for v in VAXEL_FT_RA1 VAXEL_FT_RA2 VAXEL_FT_RA3; do export "$v=1"; done
for n in $nodes; do export "VAXEL_FT_A_$n=1"; done
dc() { docker-compose -p "$project" -f "$compose_file" "$@"; }

cleanup() {
  rc=$?
  trap - EXIT INT TERM
  ct_teardown "$rc" 40 "${VAXEL_FT_KEEP:-}" "docker-compose -p $project -f $compose_file down -v (with the VAXEL_FT_* variables set); docker rmi $tag; rm -rf $work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

echo "== build (static binary, image $tag)"
ct_build ./test/federation/scenario

echo "== PKI, keys and configuration"
vaxel="$work/ctx/vaxel"
pki="$work/pki"
etc="$work/etc"
mkdir -p "$etc/pki"
"$vaxel" cert ca -dir "$pki" -name "vaxel federation test CA" >/dev/null
"$vaxel" cert issue -dir "$pki" -name admin -hsa-id ADMIN -hosts localhost -days 2 >/dev/null
"$vaxel" cert issue -dir "$pki" -name consumer -hsa-id SE-FT-CONSUMER -hosts localhost -days 2 >/dev/null
for p in region-a national region-b; do
  "$vaxel" cert gossip-key >"$etc/pki/gossip-$p.key"
done
"$vaxel" cert gossip-key >"$etc/pki/federation.key"
cp test/federation/vaxel.yaml "$etc/vaxel.yaml"

# The network: a /24 in 10.200-254.x that no other network on this host
# uses (compose refuses an overlapping one; then another is picked).
pick_net() {
  export VAXEL_FT_NET="10.$((200 + RANDOM % 55)).$((RANDOM % 256))"
  export VAXEL_FT_SUBNET="$VAXEL_FT_NET.0/24"
}
ip_of() {
  case "$1" in
  a1) echo "$VAXEL_FT_NET.11" ;; a2) echo "$VAXEL_FT_NET.12" ;; a3) echo "$VAXEL_FT_NET.13" ;;
  n1) echo "$VAXEL_FT_NET.21" ;; n2) echo "$VAXEL_FT_NET.22" ;; n3) echo "$VAXEL_FT_NET.23" ;;
  b1) echo "$VAXEL_FT_NET.31" ;;
  esac
}
hsa_of() {
  case "$1" in a*) echo SE-REGION-A ;; n*) echo SE-NATIONAL ;; b*) echo SE-REGION-B ;; esac
}

echo "== start the federation (project $project)"
for attempt in 1 2 3 4; do
  pick_net
  # Node certificates name the node's fixed address: the platforms call
  # each other's routers by the address gossip advertises.
  for n in $nodes; do
    "$vaxel" cert issue -dir "$pki" -name "$n" -hsa-id "$(hsa_of "$n")" -hosts "$n,$(ip_of "$n"),localhost,127.0.0.1" -days 2 >/dev/null
    cp "$pki/$n.crt" "$pki/$n.key" "$etc/pki/"
  done
  cp "$pki/ca.crt" "$etc/pki/"
  # The nodes run as uid 65532, so the throwaway test keys are made
  # readable; the CA key stays out.
  chmod 755 "$etc" "$etc/pki"
  chmod 644 "$etc/vaxel.yaml" "$etc"/pki/*
  for v in VAXEL_FT_RA1 VAXEL_FT_RA2 VAXEL_FT_RA3; do free_port "$v"; done
  for n in $nodes; do free_port "VAXEL_FT_A_$n"; done
  if dc up -d --no-build >"$work/up.log" 2>&1; then
    break
  fi
  cat "$work/up.log"
  if [ "$attempt" -eq 4 ] || ! grep -qiE "address already in use|overlap" "$work/up.log"; then
    exit 1
  fi
  echo "(a port or the subnet was taken meanwhile; trying others)"
  dc down -v -t 1 >/dev/null 2>&1 || true
done

admins=""
for n in $nodes; do
  v="VAXEL_FT_A_$n"
  admins="$admins${admins:+,}$n=${!v}"
done
echo "== scenario (network $VAXEL_FT_SUBNET)"
timeout 600 "$work/scenario" \
  -pki "$pki" -compose-file "$compose_file" -project "$project" \
  -routers "a1=$VAXEL_FT_RA1,a2=$VAXEL_FT_RA2,a3=$VAXEL_FT_RA3" -admins "$admins" \
  -net "$VAXEL_FT_NET" \
  ${VAXEL_FT_FLAGS:-}

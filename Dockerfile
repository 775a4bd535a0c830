# The vaxel image: the static binary and nothing else.
#
# No base or builder image is pulled (the platform's build hosts reach no
# registry), so the binary is built on the host first and this file only
# packs it. scripts/container-test.sh does exactly this:
#
#   ctx=$(mktemp -d) && mkdir "$ctx/data"
#   CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/vaxel/vaxel/node.Version=$(git describe --always --dirty)" -o "$ctx/vaxel" ./cmd/vaxel
#   docker build -f Dockerfile -t vaxel:dev "$ctx"
#
# The binary needs no libc, CA bundle or zone files: TLS uses the platform's
# own CAs named in the configuration, and the zone database is compiled in
# (time/tzdata, imported by package tak).
#
# Run a node with a configuration mounted read-only and /data on a volume:
#   docker run -v /path/to/etc:/etc/vaxel:ro -v vaxel-data:/data vaxel:dev \
#       run -config /etc/vaxel/vaxel.yaml
# with node.data_dir: /data and admin.addr / router.https_addr / raft.bind on
# 0.0.0.0 (or ":port"); set raft.advertise to the name or IP other nodes dial.
# test/container/ has a complete three-node platform.
FROM scratch
COPY vaxel /vaxel
# An empty /data owned by the runtime user: a new named volume mounted there
# takes this ownership, so the node can write its Raft log and snapshots.
COPY --chown=65532:65532 data /data
USER 65532:65532
VOLUME ["/data"]
# router (mTLS), Raft (mTLS), admin API (HTTPS)
EXPOSE 20000 7301 7443
ENTRYPOINT ["/vaxel"]
CMD ["run", "-config", "/etc/vaxel/vaxel.yaml"]

# cinder-csi: one image for both modes.
#   controller (Deployment): runs as the image's non-root user (uid 10001), read-only root fs.
#   node (DaemonSet): the manifests run it as root, privileged, with the host's /dev, /sys, iSCSI
#   and kubelet directories; it uses the host tools installed below (iscsiadm, rbd, multipath, mkfs).
#
# BASE_IMAGE must be a Debian bookworm image with Node.js 24 (node and npm in /usr/local/bin), like
# the official node:24-bookworm-slim. test/image/build.sh builds a local equivalent and passes it.
ARG BASE_IMAGE=docker.io/library/node:24-bookworm-slim

# ---- build: typecheck-compile TypeScript, then bundle the program with its dependencies ----
FROM ${BASE_IMAGE} AS build
WORKDIR /src
ENV npm_config_update_notifier=false npm_config_fund=false npm_config_audit=false
COPY package.json package-lock.json ./
# --ignore-scripts: no dependency needs an install script to work (protobufjs' postinstall only
# checks versions); this keeps the build free of arbitrary code from the registry.
# NPM_CI_FALLBACK=1 (test/image/build.sh): when `npm ci` refuses the lockfile because the registry
# in use lacks other platforms' optional packages (a partial mirror), install from the same
# lockfile with `npm install --no-save` instead. Release builds leave it at 0: exact `npm ci`.
ARG NPM_CI_FALLBACK=0
RUN npm ci --ignore-scripts --no-audit --no-fund \
 || { [ "$NPM_CI_FALLBACK" = 1 ] && echo "npm ci refused the lockfile; NPM_CI_FALLBACK=1: npm install --no-save" \
      && npm install --no-save --ignore-scripts --no-audit --no-fund; }
COPY tsconfig.json tsconfig.build.json ./
COPY proto ./proto
COPY src ./src
COPY scripts/bundle.sh scripts/snapshot-prelude.js scripts/build-snapshot.sh ./scripts/
COPY bin ./bin
# The runtime needs no node_modules: scripts/bundle.sh puts the program and its dependencies into
# dist/bundle (main.js and one chunk per lazily loaded part; bench/README.md says what it saves).
RUN npm run build \
 && npm run bundle \
 && test -f dist/bundle/main.js

# ---- runtime-base: the OS part of the runtime (host tools, user); changes rarely ----
FROM ${BASE_IMAGE} AS runtime-base
# Host tools of the node service. open-iscsi: iscsiadm; ceph-common: rbd; rbd-nbd: rbd without
# the kernel client; multipath-tools: multipath/multipathd client; e2fsprogs/xfsprogs/btrfs-progs:
# mkfs, fsck and resize; util-linux: mount, umount, blkid, findmnt, lsblk, blockdev; udev: udevadm
# settle/trigger so /dev/disk/by-* links exist before the driver looks for a device.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      ca-certificates open-iscsi ceph-common rbd-nbd multipath-tools \
      e2fsprogs xfsprogs btrfs-progs util-linux mount udev kmod \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log \
 # npm is a build tool; the runtime only needs node.
 && rm -rf /usr/local/lib/node_modules/npm /usr/local/bin/npm /usr/local/bin/npx \
 && groupadd --system --gid 10001 cinder-csi \
 && useradd --system --uid 10001 --gid 10001 --home-dir /nonexistent --no-create-home \
      --shell /usr/sbin/nologin cinder-csi

# ---- runtime ----
FROM runtime-base AS runtime
ARG BASE_IMAGE
ARG VERSION=0.0.0-dev
ARG VCS_REF=
ARG CREATED=1970-01-01T00:00:00Z
LABEL org.opencontainers.image.title="cinder-csi" \
      org.opencontainers.image.description="Kubernetes CSI driver for OpenStack Cinder (attachments API, iSCSI and RBD on the node)" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${VCS_REF}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.base.name="${BASE_IMAGE}"

WORKDIR /opt/cinder-csi
COPY --from=build /src/package.json ./package.json
COPY --from=build /src/dist/bundle ./dist/bundle
# bin/cinder-csi: `node` with the V8 flags measured in bench/README.md, running dist/bundle/main.js.
COPY --from=build /src/bin/cinder-csi ./bin/cinder-csi
# The startup snapshot (bench/README.md, startup.ts: less CPU to ready and less memory than the
# bundle): made here, by the runtime's own node, because a blob only works with the node that made
# it; bin/cinder-csi starts from dist/bundle/snapshot.blob when it is there.
COPY --from=build /src/scripts/build-snapshot.sh /tmp/build-snapshot.sh
RUN sh /tmp/build-snapshot.sh /opt/cinder-csi && rm /tmp/build-snapshot.sh
ENV PATH=/opt/cinder-csi/bin:$PATH

ENV NODE_ENV=production CINDER_CSI_GIT_COMMIT=${VCS_REF}
# Non-root by default (controller); the node DaemonSet sets runAsUser: 0 and privileged.
USER 10001:10001
ENTRYPOINT ["/opt/cinder-csi/bin/cinder-csi"]
CMD ["--help"]

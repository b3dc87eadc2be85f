#!/usr/bin/env bash
# Build the two local images envd's tests and examples run (no registry is
# reachable here, so nothing is pulled):
#
#   envd-local/busybox:latest   FROM scratch + Debian's static busybox, every
#                               applet symlinked into /bin (~2 MB: sh, httpd,
#                               nc, wget, sleep, ...)
#   envd-local/debian:bookworm  a minbase Debian rootfs with postgresql-15,
#                               redis-server, python3 and procps
#
# Idempotent: an image that already exists is left alone. The Debian rootfs
# tarball is cached under ${XDG_CACHE_HOME:-~/.cache}/envd/, so re-creating the
# image after `docker rmi` only costs a `docker import` (seconds, no network).
#
# Options: --force     rebuild both images and the cached rootfs
#          --verify    run the smoke checks even for images that already exist
# Environment: ENVD_DEBIAN_MIRROR   mirror URL (default: the one apt uses here)
#              ENVD_ROOTFS_TOOL     mmdebstrap | debootstrap (default: mmdebstrap
#                                   if installed: one dpkg run instead of one per
#                                   package, and it writes the tarball directly;
#                                   measured here 30-50 s vs 45-55 s cold)
set -euo pipefail

readonly BUSYBOX_IMAGE="envd-local/busybox:latest"
readonly DEBIAN_IMAGE="envd-local/debian:bookworm"
readonly SUITE="bookworm"
readonly INCLUDE="postgresql-15,redis-server,python3,procps"
# Bump when the recipe below changes in a way that must invalidate the cache.
readonly RECIPE_VERSION="1"
readonly CACHE_DIR="${XDG_CACHE_HOME:-${HOME}/.cache}/envd"

force=0
verify_always=0
for arg in "$@"; do
  case "${arg}" in
    --force) force=1 ;;
    --verify) verify_always=1 ;;
    -h | --help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) printf 'build-test-images: unknown option %s (see --help)\n' "${arg}" >&2; exit 2 ;;
  esac
done

log() { printf 'build-test-images: %s\n' "$*" >&2; }
die() { printf 'build-test-images: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

docker info >/dev/null 2>&1 \
  || die "no Docker engine answers; run scripts/ensure-docker.sh first."

# One build at a time: concurrent runs would bootstrap the same rootfs twice.
exec 9>>"${TMPDIR:-/tmp}/envd-build-test-images.lock"
flock 9

total_start="$(now)"
WORK=""
cleanup() {
  [[ -n "${WORK}" && -d "${WORK}" ]] || return 0
  # A failed debootstrap can leave /proc, /sys, ... mounted inside its target:
  # unmount them (deepest first) before deleting, never delete through a mount.
  awk -v root="${WORK}/" 'index($2, root) == 1 { print $2 }' /proc/self/mounts \
    | sort -r | while read -r mnt; do umount -l "${mnt}" 2>/dev/null || true; done
  rm -rf --one-file-system "${WORK}"
}
trap cleanup EXIT
mkdir -p "${CACHE_DIR}"
WORK="$(mktemp -d "${CACHE_DIR}/work.XXXXXX")"

# --- envd-local/busybox:latest ------------------------------------------
verify_busybox() {
  docker run --rm "${BUSYBOX_IMAGE}" sh -c \
    'for a in sh httpd nc wget sleep; do command -v "$a" >/dev/null || { echo "no $a"; exit 1; }; done' \
    || die "${BUSYBOX_IMAGE} does not run sh/httpd/nc/wget/sleep."
}

build_busybox() {
  local start bb root applet
  start="$(now)"
  bb="$(dpkg -L busybox-static 2>/dev/null | grep -m1 '/bin/busybox$' || true)"
  [[ -n "${bb}" && -x "${bb}" ]] \
    || die "busybox-static is not installed; run scripts/ensure-docker.sh first."
  root="${WORK}/busybox"
  mkdir -p "${root}/bin" "${root}/etc" "${root}/root" "${root}/tmp" "${root}/usr" \
    "${root}/var/www"
  chmod 1777 "${root}/tmp"
  cp "${bb}" "${root}/bin/busybox"
  # What `busybox --install -s /bin` does inside the image, done from outside.
  while read -r applet; do
    [[ "${applet}" == busybox ]] || ln -sf /bin/busybox "${root}/bin/${applet}"
  done < <("${bb}" --list)
  # One bin directory serves every usual path (so `#!/usr/bin/env sh` works).
  ln -s bin "${root}/sbin"
  ln -s ../bin "${root}/usr/bin"
  ln -s ../bin "${root}/usr/sbin"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' \
    >"${root}/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"${root}/etc/group"
  tar -C "${root}" --numeric-owner --owner=0 --group=0 --sort=name -cf - . \
    | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'CMD ["sh"]' - "${BUSYBOX_IMAGE}" >/dev/null
  log "${BUSYBOX_IMAGE}: built in $(since "${start}")"
}

# --- envd-local/debian:bookworm -----------------------------------------
# The first http(s) mirror apt already uses for the suite; ENVD_DEBIAN_MIRROR wins.
detect_mirror() {
  if [[ -n "${ENVD_DEBIAN_MIRROR:-}" ]]; then
    printf '%s\n' "${ENVD_DEBIAN_MIRROR}"
    return
  fi
  local f found=""
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
           /etc/apt/sources.list.d/*.sources; do
    [[ -f "${f}" && -z "${found}" ]] || continue
    if [[ "${f}" == *.sources ]]; then
      # deb822 stanzas (Types / URIs / Suites / Enabled), blank-line separated.
      found="$(awk -v suite="${SUITE}" '
        function flush(   n, i, u) {
          if (!done && !off && types ~ /[[:space:]]deb([[:space:]]|$)/ \
              && (" " suites " ") ~ ("[[:space:]]" suite "[[:space:]]")) {
            n = split(uris, u, /[[:space:]]+/)
            for (i = 2; i <= n; i++) if (u[i] ~ /^https?:\/\//) { print u[i]; done = 1; exit }
          }
          types = uris = suites = ""; off = 0
        }
        /^[[:space:]]*$/ { flush(); next }
        tolower($1) == "types:" { types = $0 }
        tolower($1) == "uris:" { uris = $0 }
        tolower($1) == "suites:" { suites = $0 }
        tolower($1) == "enabled:" && tolower($2) == "no" { off = 1 }
        END { flush() }' "${f}" 2>/dev/null || true)"
    else
      # one-line format: deb [options] URI suite components...
      found="$(awk -v suite="${SUITE}" '$1 == "deb" {
          i = 2; if ($2 ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
          if ($(i + 1) == suite && $i ~ /^https?:\/\//) { print $i; exit }
        }' "${f}" 2>/dev/null || true)"
    fi
  done
  printf '%s\n' "${found:-http://deb.debian.org/debian}"
}

verify_debian() {
  # Postgres started as the postgres user, redis answering, python3 running.
  # shellcheck disable=SC2016  # expanded by the container's bash, not here
  docker run --rm "${DEBIAN_IMAGE}" bash -euc '
    exec 3>&2 2>/tmp/check.log >&2; set -x
    trap "[ \$? = 0 ] || cat /tmp/check.log >&3" EXIT
    bin=/usr/lib/postgresql/15/bin
    su postgres -c "$bin/initdb -D /tmp/pg && $bin/pg_ctl -D /tmp/pg -w -l /tmp/pg.log start"
    [[ "$(su postgres -c "psql -tAc \"select 1\"")" == 1 ]]
    redis-server --daemonize yes --save ""
    for _ in $(seq 100); do
      [[ "$(redis-cli ping)" == PONG ]] && break
      sleep 0.05
    done
    [[ "$(redis-cli ping)" == PONG ]]
    python3 -c "import sqlite3, json, ssl, venv"
  ' || die "${DEBIAN_IMAGE} failed its smoke check (postgres/redis/python3; output above)."
}

bootstrap_rootfs() {  # $1: output tarball
  local out="$1" mirror tool start target
  mirror="$(detect_mirror)"
  tool="${ENVD_ROOTFS_TOOL:-}"
  if [[ -z "${tool}" ]]; then
    if command -v mmdebstrap >/dev/null 2>&1; then tool=mmdebstrap; else tool=debootstrap; fi
  fi
  command -v "${tool}" >/dev/null 2>&1 \
    || die "${tool} is not installed; run scripts/ensure-docker.sh first."
  log "bootstrapping ${SUITE} with ${tool} from ${mirror} (about a minute)"
  start="$(now)"
  case "${tool}" in
    mmdebstrap)
      # cleanup/run is skipped so that /run/postgresql (made by the hook) stays.
      # shellcheck disable=SC2016  # "$1" is expanded by mmdebstrap's hook
      mmdebstrap --quiet --variant=minbase --include="${INCLUDE}" \
        --dpkgopt=force-unsafe-io \
        --dpkgopt='path-exclude=/usr/share/man/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' \
        --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --skip=cleanup/run \
        --customize-hook='chroot "$1" install -d -m 2775 -o postgres -g postgres /run/postgresql' \
        "${SUITE}" "${out}" "${mirror}" >"${WORK}/bootstrap.log" 2>&1 \
        || { tail -n 30 "${WORK}/bootstrap.log" >&2; die "mmdebstrap failed (log above)."; }
      ;;
    debootstrap)
      target="${WORK}/rootfs"
      mkdir -p "${CACHE_DIR}/debs"
      debootstrap --variant=minbase --include="${INCLUDE}" --cache-dir="${CACHE_DIR}/debs" \
        "${SUITE}" "${target}" "${mirror}" >"${WORK}/bootstrap.log" 2>&1 \
        || { tail -n 30 "${WORK}/bootstrap.log" >&2; die "debootstrap failed (log above)."; }
      rm -rf "${target}"/var/cache/apt/archives/*.deb "${target}"/var/lib/apt/lists/*_*
      install -d -m 2775 "${target}/run/postgresql"
      chroot "${target}" chown postgres:postgres /run/postgresql
      log "  ${tool}: $(since "${start}")"
      start="$(now)"
      tar -C "${target}" --numeric-owner -cf "${out}" .
      ;;
    *) die "ENVD_ROOTFS_TOOL must be mmdebstrap or debootstrap, not ${tool}." ;;
  esac
  log "  ${tool} -> $(basename "${out}"): $(since "${start}")"
}

build_debian() {
  local key tarball start
  key="$(printf '%s\n' "${RECIPE_VERSION}" "${SUITE}" minbase "${INCLUDE}" | sha256sum | cut -c1-12)"
  tarball="${CACHE_DIR}/debian-${SUITE}-rootfs-${key}.tar"
  if [[ ${force} -eq 1 || ! -s "${tarball}" ]]; then
    bootstrap_rootfs "${WORK}/rootfs.tar"
    mv -f "${WORK}/rootfs.tar" "${tarball}"   # atomic: a killed run leaves no half tarball
  else
    log "reusing cached rootfs ${tarball}"
  fi
  start="$(now)"
  docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' "${tarball}" "${DEBIAN_IMAGE}" >/dev/null
  log "  docker import: $(since "${start}")"
}

# --- main -----------------------------------------------------------------
for spec in "busybox:${BUSYBOX_IMAGE}" "debian:${DEBIAN_IMAGE}"; do
  kind="${spec%%:*}"
  image="${spec#*:}"
  if [[ ${force} -eq 0 ]] && image_exists "${image}"; then
    log "${image}: present"
    if [[ ${verify_always} -eq 1 ]]; then "verify_${kind}"; fi
    continue
  fi
  start="$(now)"
  "build_${kind}"
  vstart="$(now)"
  if ! ( "verify_${kind}" ); then
    # A broken image (or cached rootfs) must not satisfy the next run.
    docker image rm -f "${image}" >/dev/null 2>&1 || true
    [[ "${kind}" == debian ]] && rm -f "${CACHE_DIR}"/debian-"${SUITE}"-rootfs-*.tar
    exit 1
  fi
  log "${image}: smoke check passed in $(since "${vstart}")"
  log "${image}: ready in $(since "${start}") ($(docker image inspect -f '{{.Size}}' "${image}" \
    | awk '{ printf "%.0f MB", $1 / 1e6 }'))"
done
log "done in $(since "${total_start}")"

#!/usr/bin/env bash
# Make sure Podman serves its Docker-compatible API on envd's test socket,
# installing and starting it if needed, and that the local test images are in
# Podman's store. Idempotent: a no-op (well under a second) when the service
# answers and the images are there.
#
#  * installs Debian's podman (apt-get update at most once, only if missing);
#    never podman-docker: the `docker` command and /var/run/docker.sock stay
#    the Docker engine's;
#  * starts `podman system service --time=0` (rootful) on
#    unix:///run/envd-podman/podman.sock (log: /var/log/envd-podman.log);
#  * copies the test images from the Docker engine: `docker save | podman load`.
#
# Tests select Podman with DOCKER_HOST=unix:///run/envd-podman/podman.sock.
# Environment: ENVD_PODMAN_SOCKET (default /run/envd-podman/podman.sock),
#              ENVD_PODMAN_TIMEOUT (seconds to wait for the service, default 30).
set -euo pipefail

readonly SOCKET="${ENVD_PODMAN_SOCKET:-/run/envd-podman/podman.sock}"
readonly TIMEOUT="${ENVD_PODMAN_TIMEOUT:-30}"
readonly LOG_FILE="${ENVD_PODMAN_LOG:-/var/log/envd-podman.log}"
readonly IMAGES=(envd-local/busybox:latest envd-local/debian:bookworm)

log() { printf 'ensure-podman: %s\n' "$*" >&2; }
die() { printf 'ensure-podman: error: %s\n' "$*" >&2; exit 1; }

[[ ${EUID} -eq 0 ]] || die "the rootful Podman service needs root"
case "${SOCKET}" in
  /var/run/docker.sock | /run/docker.sock) die "refusing to put Podman on the Docker engine's socket" ;;
esac

exec 9>>"${TMPDIR:-/tmp}/envd-ensure-podman.lock"
flock 9

# catatonit: Podman's init (`init = true`, envd's default) is not a dependency
# of Debian's podman package; without it every container create fails.
if ! command -v podman >/dev/null 2>&1 || [[ ! -x /usr/libexec/podman/catatonit ]]; then
  log "installing podman and catatonit"
  export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l
  apt_log="$(mktemp "${TMPDIR:-/tmp}/envd-apt.XXXXXX")"
  if ! { apt-get update -q && apt-get install -y -q podman catatonit; } >"${apt_log}" 2>&1; then
    tail -n 30 "${apt_log}" >&2
    die "apt-get install podman failed; full output in ${apt_log}."
  fi
  rm -f "${apt_log}"
fi

answers() { curl -fsS --max-time 5 --unix-socket "${SOCKET}" http://podman/_ping >/dev/null 2>&1; }

if ! answers; then
  mkdir -p "$(dirname "${SOCKET}")"
  rm -f "${SOCKET}"
  # Rootful Podman raises each container's open-files and process limits to
  # 1048576; without CAP_SYS_RESOURCE (containers, CI sandboxes) every start
  # then fails with "error setting rlimit type 7" (or 6). The service gets its
  # own containers.conf (CONTAINERS_CONF, not /etc) capping them at our hard
  # limits; nproc at most 32768, the limit the podman process itself runs with.
  conf="$(dirname "${SOCKET}")/containers.conf"
  nofile="$(ulimit -Hn)"
  nproc="$(ulimit -Hu)"
  [[ "${nofile}" == unlimited || "${nofile}" -gt 1048576 ]] && nofile=1048576
  [[ "${nproc}" == unlimited || "${nproc}" -gt 32768 ]] && nproc=32768
  printf '[containers]\ndefault_ulimits = ["nofile=%s:%s", "nproc=%s:%s"]\n' \
    "${nofile}" "${nofile}" "${nproc}" "${nproc}" >"${conf}"
  export CONTAINERS_CONF="${conf}"
  log "starting podman system service on unix://${SOCKET}"
  # setsid: the service must outlive this script and the CI step that ran it.
  # 9>&-: the service must not hold this script's lock for ever.
  setsid podman system service --time=0 "unix://${SOCKET}" >>"${LOG_FILE}" 2>&1 </dev/null 9>&- &
  deadline=$((SECONDS + TIMEOUT))
  until answers; do
    if ((SECONDS >= deadline)); then
      tail -n 20 "${LOG_FILE}" >&2 || true
      die "podman system service did not answer on ${SOCKET} within ${TIMEOUT} s"
    fi
    sleep 0.2
  done
fi

for image in "${IMAGES[@]}"; do
  if podman image exists "${image}"; then
    continue
  fi
  docker image inspect "${image}" >/dev/null 2>&1 \
    || die "${image} is not in the Docker engine; run scripts/build-test-images.sh first"
  log "loading ${image} into Podman"
  docker save "${image}" | podman load -q >/dev/null
done

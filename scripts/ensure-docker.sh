#!/usr/bin/env bash
# Make sure a Docker engine answers on this machine, installing and starting
# one if needed. Idempotent: safe to run twice, and a no-op (well under a
# second) when the packages are present and `docker info` already works.
#
#  * installs the Debian packages envd's tests need, skipping those present
#    (apt-get update runs at most once, and only if something is missing);
#  * starts dockerd in the background (log: /var/log/envd-dockerd.log) when no
#    engine answers, and waits for it with a deadline.
#
# Environment: ENVD_DOCKERD_TIMEOUT (seconds to wait for the engine, default 60),
#              ENVD_DOCKERD_LOG (default /var/log/envd-dockerd.log).
set -euo pipefail

readonly PACKAGES=(
  docker.io docker-compose busybox-static debootstrap tini dumb-init
  util-linux iproute2 procps mmdebstrap docker-registry
  chromium
)
readonly TIMEOUT="${ENVD_DOCKERD_TIMEOUT:-60}"
readonly DOCKERD_LOG="${ENVD_DOCKERD_LOG:-/var/log/envd-dockerd.log}"

log() { printf 'ensure-docker: %s\n' "$*" >&2; }
die() { printf 'ensure-docker: error: %s\n' "$*" >&2; exit 1; }

# Root for apt and dockerd; fall back to non-interactive sudo when not root.
SUDO=()
if [[ ${EUID} -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO=(sudo -n)
  fi
fi
as_root() {
  if [[ ${EUID} -ne 0 && ${#SUDO[@]} -eq 0 ]]; then
    die "this step needs root (or passwordless sudo): $*"
  fi
  "${SUDO[@]}" "$@"
}

engine_up() { timeout 10 docker info >/dev/null 2>&1; }

# One run at a time (two concurrent runs would race on apt and dockerd).
LOCK_FILE="${TMPDIR:-/tmp}/envd-ensure-docker.lock"
exec 9>>"${LOCK_FILE}"
flock 9

# --- 1. packages ----------------------------------------------------------
wanted=("${PACKAGES[@]}")
# A kernel with AppArmor enabled needs apparmor_parser, or every container fails.
if [[ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null || true)" == Y* ]]; then
  wanted+=(apparmor)
fi
missing=()
for pkg in "${wanted[@]}"; do
  status="$(dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null || true)"
  if [[ "${status}" != "install ok installed" ]]; then
    missing+=("${pkg}")
  fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
  command -v apt-get >/dev/null 2>&1 \
    || die "missing packages (${missing[*]}) and no apt-get to install them; install them by hand."
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive NEEDRESTART_MODE=l
  started=${SECONDS}
  apt_log="$(mktemp "${TMPDIR:-/tmp}/envd-apt.XXXXXX")"
  if ! as_root apt-get update -q >"${apt_log}" 2>&1; then
    tail -n 20 "${apt_log}" >&2
    die "apt-get update failed; check the apt sources in /etc/apt/sources.list*."
  fi
  if ! as_root apt-get install -y -q --no-install-recommends \
      -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
      "${missing[@]}" >>"${apt_log}" 2>&1; then
    tail -n 30 "${apt_log}" >&2
    die "apt-get install ${missing[*]} failed; full output in ${apt_log}."
  fi
  rm -f "${apt_log}"
  log "packages installed in $((SECONDS - started)) s"
fi

# --- 2. the engine --------------------------------------------------------
if engine_up; then
  exit 0
fi

if [[ -n "${DOCKER_HOST:-}" && "${DOCKER_HOST}" != unix:///var/run/docker.sock \
      && "${DOCKER_HOST}" != unix:///run/docker.sock ]]; then
  die "DOCKER_HOST=${DOCKER_HOST} does not answer; start that engine or unset DOCKER_HOST."
fi

if pgrep -x dockerd >/dev/null 2>&1; then
  log "dockerd is running but not answering yet; waiting"
elif [[ -d /run/systemd/system ]] && command -v systemctl >/dev/null 2>&1 \
      && as_root systemctl start docker.service 2>/dev/null; then
  log "started docker.service with systemd"
else
  # Pid files left by a dockerd (or its containerd) that died make the next one
  # refuse to start or wait for a containerd that is not there: dockerd only
  # checks that *some* process has that pid.
  for pid_file in /var/run/docker.pid:dockerd /var/run/docker/containerd/containerd.pid:containerd; do
    comm="${pid_file##*:}"
    pid_file="${pid_file%:*}"
    [[ -f "${pid_file}" ]] || continue
    stale_pid="$(cat "${pid_file}" 2>/dev/null || true)"
    if [[ "$(cat "/proc/${stale_pid:-0}/comm" 2>/dev/null || true)" != "${comm}" ]]; then
      as_root rm -f "${pid_file}"
    fi
  done
  log "starting dockerd (log: ${DOCKERD_LOG})"
  as_root mkdir -p "$(dirname "${DOCKERD_LOG}")"
  # setsid -f: dockerd runs in its own session, re-parented to init, so it
  # outlives this script and its terminal/CI step, and no waiting parent of
  # it keeps the caller's stdout/stderr open (a caller reading them through a
  # pipe would otherwise wait for as long as dockerd runs).
  # 9>&-: dockerd must not inherit (and so hold forever) this script's lock.
  # shellcheck disable=SC2016  # "$1" is expanded by the inner sh
  as_root setsid -f sh -c 'exec nohup dockerd >>"$1" 2>&1' sh "${DOCKERD_LOG}" \
    </dev/null >/dev/null 2>&1 9>&-
fi

deadline=$((SECONDS + TIMEOUT))
while ! engine_up; do
  if ! pgrep -x dockerd >/dev/null 2>&1; then
    # Give a just-exec'd dockerd a moment to show up before calling it dead.
    sleep 1
    if ! pgrep -x dockerd >/dev/null 2>&1 && ! engine_up; then
      tail -n 20 "${DOCKERD_LOG}" >&2 2>/dev/null || true
      die "dockerd exited while starting; see ${DOCKERD_LOG}."
    fi
  fi
  if ((SECONDS >= deadline)); then
    tail -n 20 "${DOCKERD_LOG}" >&2 2>/dev/null || true
    die "the Docker engine did not answer within ${TIMEOUT} s; see ${DOCKERD_LOG}."
  fi
  sleep 0.5
done
log "Docker engine is up ($(docker version --format '{{.Server.Version}}' 2>/dev/null || echo '?'))"

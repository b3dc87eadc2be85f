#!/usr/bin/env bash
# Build the envd container image (Dockerfile) without network access from
# inside the build, and tag it envd-local/envd:dev.
#
#   scripts/build-envd-image.sh [--force] [--base IMAGE] [--tag TAG]
#
# On the host, pip downloads every dependency, pip itself and the build
# backend as wheels for the base image's Python and platform (asked of the
# base) into a cached wheelhouse, pinned to the versions installed in the
# Python that runs this script (so the image runs what the tests ran). The
# build context (a temporary directory: Dockerfile, .dockerignore, docker/,
# pyproject.toml, README.md, envd/ and wheelhouse/) then builds offline.
#
# Idempotent: the image carries a label with a digest of every input (the
# files above, the base image id, the pinned versions); when the existing
# image has the same digest nothing is built. --force builds anyway.
#
# Options:     --force        rebuild even when the inputs did not change
#              --base IMAGE   base image (default: $ENVD_IMAGE_BASE, else
#                             envd-local/debian:bookworm, built by
#                             scripts/build-test-images.sh if missing)
#              --tag TAG      image tag (default: envd-local/envd:dev)
# Environment: PYTHON         the Python whose pip downloads and whose installed
#                             versions are pinned (default: python3)
#              XDG_CACHE_HOME the wheelhouse is cached under .../envd/wheelhouse-*
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO
readonly INPUTS_LABEL="dev.envd.image.inputs"
readonly CACHE_DIR="${XDG_CACHE_HOME:-${HOME}/.cache}/envd"
PY="${PYTHON:-python3}"

force=0
base="${ENVD_IMAGE_BASE:-envd-local/debian:bookworm}"
tag="envd-local/envd:dev"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --force) force=1 ;;
    --base) base="${2:?--base needs an image}"; shift ;;
    --tag) tag="${2:?--tag needs a tag}"; shift ;;
    -h | --help) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) printf 'build-envd-image: unknown option %s (see --help)\n' "$1" >&2; exit 2 ;;
  esac
  shift
done

log() { printf 'build-envd-image: %s\n' "$*" >&2; }
die() { printf 'build-envd-image: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f s", b - a }'; }
image_id() { docker image inspect -f '{{.Id}}' "$1" 2>/dev/null || true; }

docker info >/dev/null 2>&1 || die "no Docker engine answers; run scripts/ensure-docker.sh first."

# One build at a time (the tests of several sessions may ask at once).
mkdir -p "${CACHE_DIR}"
exec 9>>"${CACHE_DIR}/build-envd-image.lock"
flock 9

start="$(now)"
if [[ -z "$(image_id "${base}")" ]]; then
  if [[ "${base}" == envd-local/debian:bookworm ]]; then
    bash "${REPO}/scripts/build-test-images.sh"
  else
    die "base image ${base} is not present (pull it first; this script never pulls)."
  fi
fi
base_id="$(image_id "${base}")"

# The dependency versions to pin: what the Python running envd's tests has
# (the first of a name on sys.path, as import finds it; not envd itself, and
# not the packaging tools, which the wheelhouse brings in their own versions).
constraints="$("${PY}" - <<'PYEOF'
import importlib.metadata as metadata
skip = {"pip", "setuptools", "wheel", "distribute", "envd-reconciler"}
pins = {}
for dist in metadata.distributions():
    name = (dist.metadata["Name"] or "").lower().replace("_", "-").replace(".", "-")
    if name and name not in skip:
        pins.setdefault(name, f"{name}=={dist.version}")
print("\n".join(sorted(pins.values())))
PYEOF
)"

# Digest of every input of the image; the same digest means the same image.
inputs_digest() {
  (
    cd "${REPO}"
    printf 'base %s\n' "${base_id}"
    printf '%s\n' "${constraints}" | sha256sum
    find Dockerfile .dockerignore docker pyproject.toml README.md envd -type f \
      ! -path '*/__pycache__/*' ! -name '*.py[co]' -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  ) | sha256sum | cut -c1-32
}
digest="$(inputs_digest)"
if [[ ${force} -eq 0 && -n "$(image_id "${tag}")" ]] \
  && [[ "$(docker image inspect -f "{{index .Config.Labels \"${INPUTS_LABEL}\"}}" "${tag}")" == "${digest}" ]]; then
  log "${tag}: up to date (inputs ${digest})"
  exit 0
fi

# --- the wheelhouse: wheels for the base image's Python and platform --------
read -r pyver glibc machine < <(docker run --rm --network none --entrypoint python3 "${base}" -c '
import platform, sys
libc, ver = platform.libc_ver()
print(f"{sys.version_info[0]}.{sys.version_info[1]}", ver if libc == "glibc" else "0.0", platform.machine())
') || die "the base image ${base} has no working python3."
[[ "${pyver}" =~ ^3\.(1[1-9]|[2-9][0-9])$ ]] || die "the base image has Python ${pyver}; envd's image needs 3.11 or later."
[[ "${glibc}" != 0.0 ]] || die "the base image is not glibc-based; manylinux wheels need glibc."
abi="cp${pyver/./}"
glibc_minor="${glibc#2.}"
glibc_minor="${glibc_minor%%.*}"
platforms=()
for ((m = glibc_minor; m >= 17; m--)); do platforms+=(--platform "manylinux_2_${m}_${machine}"); done
platforms+=(--platform "manylinux2014_${machine}" --platform any)

mapfile -t requirements < <("${PY}" - "${REPO}/pyproject.toml" <<'PYEOF'
import sys, tomllib
meta = tomllib.load(open(sys.argv[1], "rb"))
for r in [*meta["project"]["dependencies"], *meta["build-system"]["requires"], "pip"]:
    print(r)
PYEOF
)
wh_key="$(printf '%s\n' "${pyver}" "${abi}" "${platforms[*]}" "${requirements[@]}" "${constraints}" \
  | sha256sum | cut -c1-16)"
wheelhouse="${CACHE_DIR}/wheelhouse-${wh_key}"
if [[ ! -d "${wheelhouse}" ]]; then
  t="$(now)"
  tmp_wh="$(mktemp -d "${CACHE_DIR}/wheelhouse.XXXXXX")"
  printf '%s\n' "${constraints}" >"${tmp_wh}.constraints"
  if ! "${PY}" -m pip download --quiet --disable-pip-version-check \
      --only-binary=:all: --implementation cp --python-version "${pyver}" \
      --abi "${abi}" --abi abi3 --abi none "${platforms[@]}" \
      --constraint "${tmp_wh}.constraints" --dest "${tmp_wh}" "${requirements[@]}" 2> >(grep -v "^WARNING: Location" >&2); then
    rm -rf "${tmp_wh}" "${tmp_wh}.constraints"
    die "pip could not download the wheels (is PyPI reachable from the host?)."
  fi
  rm -f "${tmp_wh}.constraints"
  mv "${tmp_wh}" "${wheelhouse}"   # atomic: a killed run leaves no half wheelhouse
  log "wheelhouse for Python ${pyver} ${machine} (glibc ${glibc}): $(find "${wheelhouse}" -name "*.whl" | wc -l) wheels in $(since "${t}")"
fi

# --- the build context: only what the Dockerfile copies ---------------------
ctx="$(mktemp -d "${TMPDIR:-/tmp}/envd-image-ctx.XXXXXX")"
trap 'rm -rf "${ctx}"' EXIT
tar -C "${REPO}" --exclude=__pycache__ --exclude='*.py[co]' -cf - \
  Dockerfile .dockerignore docker pyproject.toml README.md envd | tar -C "${ctx}" -xf -
cp -r "${wheelhouse}" "${ctx}/wheelhouse"

# --- build -------------------------------------------------------------------
# The build stage is tagged too (TAG-build), so that its dependency layer stays
# cached for the next build instead of lingering as a dangling image; images
# these tags pointed at before are removed once the new ones exist.
build_tag="${tag}-build"
old_ids=("$(image_id "${tag}")" "$(image_id "${build_tag}")")
t="$(now)"
out="$(mktemp "${TMPDIR:-/tmp}/envd-image-build.XXXXXX")"
trap 'rm -rf "${ctx}" "${out}"' EXIT
for target in build final; do
  args=(--build-arg "BASE=${base}" --label "${INPUTS_LABEL}=${digest}")
  if [[ "${target}" == build ]]; then args+=(--target build -t "${build_tag}"); else args+=(-t "${tag}"); fi
  if ! DOCKER_BUILDKIT=0 docker build --network none --rm --force-rm "${args[@]}" "${ctx}" >"${out}" 2>&1; then
    tail -n 40 "${out}" >&2
    die "docker build failed (output above)."
  fi
done
for old in "${old_ids[@]}"; do
  if [[ -n "${old}" && "${old}" != "$(image_id "${tag}")" && "${old}" != "$(image_id "${build_tag}")" ]]; then
    docker image rm "${old}" >/dev/null 2>&1 || true   # still used by a container: leave it
  fi
done
size="$(docker image inspect -f '{{.Size}}' "${tag}" | awk '{ printf "%.0f MB", $1 / 1e6 }')"
log "${tag}: built in $(since "${t}") (${size}; base ${base}); total $(since "${start}")"

#!/usr/bin/env bash
# Set up the machine (scripts/setup.sh) and bring up examples/quickstart once:
# a busybox web server on http://127.0.0.1:8080 and a worker that polls it.
# Extra arguments go to `envd up` (e.g. --timeout 120).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO
cd "${REPO}"

bash scripts/setup.sh

readonly ENVD=".venv/bin/envd"
readonly EXAMPLE="examples/quickstart"
printf '\n$ %s -C %s up --once %s\n' "${ENVD}" "${EXAMPLE}" "$*"
if ! "${ENVD}" -C "${EXAMPLE}" up --once "$@"; then
  printf '\nquickstart: envd up failed; see the message above and try:\n' >&2
  printf '  %s -C %s status\n  %s -C %s logs\n' "${ENVD}" "${EXAMPLE}" "${ENVD}" "${EXAMPLE}" >&2
  exit 1
fi

printf '\nThe quickstart is up. Try:\n\n'
hint() { printf '  %-46s # %s\n' "$1" "$2"; }
hint "curl http://127.0.0.1:8080/" "the web service (or open it in a browser)"
hint "${ENVD} -C ${EXAMPLE} status" "desired vs actual, health"
hint "${ENVD} -C ${EXAMPLE} logs -f" "follow both services' logs"
hint "${ENVD} -C ${EXAMPLE} down" "stop and remove it all"
printf '\n(or run: source .venv/bin/activate; then just: envd ...)\n'

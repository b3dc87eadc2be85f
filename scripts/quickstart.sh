#!/usr/bin/env bash
# Set up the machine (scripts/setup.sh) and bring up examples/quickstart: a
# busybox web server on http://127.0.0.1:8080 and a worker that polls it, kept
# converged by the project's envd daemon until `envd down`.
# Extra arguments go to `envd up` (e.g. --timeout 120, or --once for no daemon).
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
readonly REPO
cd "${REPO}"

bash scripts/setup.sh

readonly ENVD=".venv/bin/envd"
readonly EXAMPLE="examples/quickstart"
printf '\n$ %s -C %s up %s\n' "${ENVD}" "${EXAMPLE}" "$*"
if ! "${ENVD}" -C "${EXAMPLE}" up "$@"; then
  printf '\nquickstart: envd up failed; see the message above and try:\n' >&2
  printf '  %s -C %s status\n  %s -C %s logs\n' "${ENVD}" "${EXAMPLE}" "${ENVD}" "${EXAMPLE}" >&2
  exit 1
fi

printf '\nThe quickstart is up. Try:\n\n'
hint() { printf '  %-46s # %s\n' "$1" "$2"; }
hint "curl http://127.0.0.1:8080/" "the web service (or open it in a browser)"
hint "${ENVD} -C ${EXAMPLE} status" "desired vs actual, health"
hint "${ENVD} -C ${EXAMPLE} logs -f" "follow both services' logs"
hint "${ENVD} -C ${EXAMPLE} events" "what the daemon sees and does"
hint "docker rm -f quickstart-web-1" "drift: the daemon recreates it"
hint "edit ${EXAMPLE}/envd.toml" "hot reload: only the changed service restarts"
hint "${ENVD} -C ${EXAMPLE} down" "stop and remove it all"
printf '\n(or run: source .venv/bin/activate; then just: envd ...)\n'

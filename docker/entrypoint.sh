#!/bin/sh
# `envd` in the envd image: pick the user envd runs as, then exec the real envd.
#
# Started as root (the image's default), it runs envd as
#   1. ENVD_USER (`root`, `UID` or `UID:GID`) when that is set;
#   2. else the owner of the project directory (the working directory) when
#      that is not root: envd reads and writes the project exactly as that
#      user does on the host (secret files, .envd/, envd.lock keep their owner);
#   3. else the image's user `envd` (uid 10001). It gets a `.envd/` it owns in
#      a project it cannot write to, so `envd daemon` can keep its state there.
# with the Docker socket's group added, so that user may use the socket. When
# the socket's group may not read and write it (mode 0600), envd stays root.
# Started as another user (`docker run --user`), it changes nothing: give that
# user the socket's group with `--group-add`.
#
# It execs, so envd keeps PID 1 (and puts its init in front of itself there).
set -eu

ENVD=/opt/envd/bin/envd
ENVD_UID=10001

say() { printf 'envd-entrypoint: %s\n' "$*" >&2; }

if [ "$(id -u)" != 0 ] || [ "${ENVD_USER:-}" = root ]; then
  exec "$ENVD" "$@"
fi

# The Docker socket envd will use (DOCKER_HOST may name another one, or TCP).
groups=""
case "${DOCKER_HOST:-unix:///var/run/docker.sock}" in
  unix://*)
    sock="${DOCKER_HOST:-unix:///var/run/docker.sock}"
    sock="${sock#unix://}"
    if [ -S "$sock" ]; then
      case "$(stat -L -c %A "$sock")" in
        ????rw????) groups="$(stat -L -c %g "$sock")" ;;
        *)
          say "$sock is not group-writable ($(stat -L -c '%A %U:%G' "$sock")); envd runs as root"
          exec "$ENVD" "$@"
          ;;
      esac
    fi
    ;;
esac

if [ -n "${ENVD_USER:-}" ]; then
  uid="${ENVD_USER%%:*}"
  case "$ENVD_USER" in *:*) gid="${ENVD_USER#*:}" ;; *) gid="$uid" ;; esac
else
  uid="$(stat -c %u .)"
  gid="$(stat -c %g .)"
  if [ "$uid" = 0 ]; then
    uid=$ENVD_UID
    gid=$ENVD_UID
    if [ "$(stat -c %u .envd 2>/dev/null)" != "$uid" ] && [ ! -L .envd ] \
      && ! setpriv --reuid="$uid" --regid="$gid" --clear-groups test -w . 2>/dev/null; then
      # A root-owned project (a CI checkout made by root): only envd's own
      # runtime state directory is handed over, nothing else in the project.
      { mkdir -p .envd && chown -R "$uid:$gid" .envd && chmod 0700 .envd; } 2>/dev/null \
        || say "cannot prepare $(pwd)/.envd for uid $uid; \`envd daemon\` may fail"
    fi
  fi
fi

case "$uid:$gid" in
  :* | *: | *[!0-9:]* | *:*:*) say "ENVD_USER must be root, UID or UID:GID (got '${ENVD_USER:-}')"; exit 2 ;;
esac
# envd keeps a per-user key under $HOME (XDG_STATE_HOME): give every user one it can write.
case "$uid" in
  "$ENVD_UID") export HOME=/home/envd USER=envd ;;
  0) ;;
  *) export HOME="/tmp/envd-home-$uid" ;;
esac
if [ -n "$groups" ]; then
  set -- --groups="$groups" -- "$ENVD" "$@"
else
  set -- --clear-groups -- "$ENVD" "$@"
fi
exec setpriv --reuid="$uid" --regid="$gid" --inh-caps=-all "$@"

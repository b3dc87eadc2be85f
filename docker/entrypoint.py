#!/opt/envd/bin/python
"""``envd`` in the envd image: choose the user envd runs as, then run envd.

Started as root (the image's default), envd runs as

1. ``ENVD_USER`` when that is set: ``root``, ``UID`` or ``UID:GID``;
2. else the owner of the project directory (the working directory) when that
   is not root: envd reads and writes the project exactly as that user does on
   the host (secret files, ``.envd/``, ``envd.lock`` keep their owner);
3. else the image's user ``envd`` (uid 10001). In a project it cannot write
   to (a root-owned CI checkout) it is handed ``.envd/``, its runtime state,
   so that ``envd daemon`` can work; nothing else in the project changes.

with the Docker socket's group added, so that user may use the socket. When
the socket's group may not read and write it (mode 0600), envd stays root.
Started as another user (``docker run --user``), nothing changes: give that
user the socket's group with ``--group-add``.

Privileges are dropped in this process (``setgroups``/``setgid``/``setuid``:
no capabilities remain), which then runs envd itself: no second interpreter
start, and envd keeps PID 1 (where it puts its init in front of itself).
Standard library only, and nothing from envd until the user is settled.
"""

from __future__ import annotations

import os
import stat
import sys

ENVD_UID = 10001
ENVD_HOME = "/home/envd"
DEFAULT_HOST = "unix:///var/run/docker.sock"


def say(message: str) -> None:
    print(f"envd-entrypoint: {message}", file=sys.stderr)


def socket_groups() -> list[int] | None:
    """The socket's group (as a list), [] without a local socket, None: stay root."""
    host = os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    if not host.startswith("unix://"):
        return []  # TCP/SSH: no file permission is involved
    path = host[len("unix://") :]
    try:
        st = os.stat(path)
    except OSError:
        return []  # envd will say that the engine is unreachable
    if not stat.S_ISSOCK(st.st_mode):
        return []
    if st.st_mode & 0o060 != 0o060:
        mode = stat.filemode(st.st_mode)
        say(f"{path} is not group-writable ({mode} {st.st_uid}:{st.st_gid}); envd runs as root")
        return None
    return [st.st_gid]


def may_write(st: os.stat_result, uid: int, gids: set[int]) -> bool:
    """Whether ``uid`` (with groups ``gids``) may write a directory, from its mode bits."""
    if st.st_uid == uid:
        return bool(st.st_mode & stat.S_IWUSR)
    if st.st_gid in gids:
        return bool(st.st_mode & stat.S_IWGRP)
    return bool(st.st_mode & stat.S_IWOTH)


def hand_over_state_dir(uid: int, gid: int, groups: list[int]) -> None:
    """Give ``uid`` the project's ``.envd/`` when it may not create it itself."""
    state = ".envd"
    try:
        if os.path.islink(state) or (os.path.exists(state) and os.stat(state).st_uid == uid):
            return
        if may_write(os.stat("."), uid, {gid, *groups}):
            return
        os.makedirs(state, mode=0o700, exist_ok=True)
        for root, dirs, files in os.walk(state):
            for name in (root, *(os.path.join(root, n) for n in dirs + files)):
                os.lchown(name, uid, gid)
        os.chmod(state, 0o700)
    except OSError as exc:
        say(
            f"cannot prepare {os.path.abspath(state)} for uid {uid} ({exc}); `envd daemon` may fail"
        )


def parse_user(text: str) -> tuple[int, int]:
    uid, _, gid = text.partition(":")
    if not uid.isdigit() or not (gid.isdigit() or gid == ""):
        say(f"ENVD_USER must be root, UID or UID:GID (got {text!r})")
        sys.exit(2)
    return int(uid), int(gid or uid)


def drop_privileges() -> None:
    if os.getuid() != 0 or os.environ.get("ENVD_USER") == "root":
        return
    groups = socket_groups()
    if groups is None:
        return
    if os.environ.get("ENVD_USER"):
        uid, gid = parse_user(os.environ["ENVD_USER"])
    else:
        st = os.stat(".")
        uid, gid = st.st_uid, st.st_gid
        if uid == 0:
            uid = gid = ENVD_UID
            hand_over_state_dir(uid, gid, groups)
    if uid == 0:
        return
    os.setgroups(groups)
    os.setgid(gid)
    os.setuid(uid)
    # envd keeps a per-user key under $HOME (XDG_STATE_HOME): give the user one it can write.
    if uid == ENVD_UID:
        os.environ.update(HOME=ENVD_HOME, USER="envd")
    else:
        os.environ["HOME"] = f"/tmp/envd-home-{uid}"


def main() -> None:
    drop_privileges()
    from envd.__main__ import main as envd_main

    envd_main()


if __name__ == "__main__":
    main()

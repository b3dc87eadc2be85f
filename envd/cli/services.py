"""One service at a time: restart, stop, start (as Compose users expect), and
the dashboard's address (``envd ui``).

With a daemon running, each request goes to it (the dashboard's buttons do
the same): it runs inside the daemon's next pass, under the converge lock,
as events, and a stopped service stays stopped, drift repair included, until
``envd start`` (or ``envd up``). Without a daemon, envd acts on the engine
itself under the converge lock, as ``docker compose stop`` would: the next
``envd up`` starts the service again.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from typing import Any

import click

from envd.cli._common import Ctx, _json_opt, _project_opts, engine, holding, lock_opt
from envd.values.errors import EnvdError, UsageError


def _act(obj: Ctx, action: str, services: tuple[str, ...], lock_timeout: float | None) -> None:
    from envd.daemon import process
    from envd.run.project_lock import timeout_from

    loaded = obj.load()
    active = loaded.active_services()
    for name in services:
        if name not in active:
            raise UsageError(f"no active service {name!r} in project {loaded.project!r}")
    client = process.running(loaded.project_dir, loaded.environment)
    if client is not None:
        _through_daemon(client, action, services)
        return
    eng = engine()
    with holding(loaded.project, f"envd {action}", timeout_from(lock_timeout)):
        by_service: dict[str, list[Any]] = {}
        for c in eng.list_containers(loaded.project):
            by_service.setdefault(c.service, []).append(c)
        for name in services:
            grace = int(active[name].stop_grace_period)
            for c in by_service.get(name, []):
                if action in ("stop", "restart") and c.status == "running":
                    eng.stop_container(c.id, grace)
                if action in ("start", "restart"):
                    eng.start_container(c.id)
            click.echo(f"{action}: {name} ({len(by_service.get(name, []))} container(s))", err=True)


def _through_daemon(client: Any, action: str, services: tuple[str, ...]) -> None:
    generation, seq = 0, None
    for name in services:
        reply = client.act(action, name)
        generation = max(generation, reply[0])
        seq = reply[1] if seq is None else seq
    failed = False
    for ev in client.events(since=seq):
        if ev.get("kind") == "pass-done" and int(ev.get("generation", 0)) >= generation:
            break
        if ev.get("service") in services and ev.get("phase") in ("done", "error"):
            failed |= ev.get("phase") == "error"
            click.echo(f"{ev.get('kind')}: {ev.get('service')}: {ev.get('message')}", err=True)
    if failed:
        raise EnvdError("the daemon could not do all of it; see above and `envd events`")


@click.command()
@click.argument("services", nargs=-1, required=True)
@lock_opt
@_project_opts()
@click.pass_obj
def restart(obj: Ctx, services: tuple[str, ...], lock_timeout: float | None) -> None:
    """Restart services' containers (stop with their grace period, start)."""
    _act(obj, "restart", services, lock_timeout)


@click.command()
@click.argument("services", nargs=-1, required=True)
@lock_opt
@_project_opts()
@click.pass_obj
def stop(obj: Ctx, services: tuple[str, ...], lock_timeout: float | None) -> None:
    """Stop services; the daemon keeps them stopped until `envd start` or `envd up`."""
    _act(obj, "stop", services, lock_timeout)


@click.command()
@click.argument("services", nargs=-1, required=True)
@lock_opt
@_project_opts()
@click.pass_obj
def start(obj: Ctx, services: tuple[str, ...], lock_timeout: float | None) -> None:
    """Start services stopped with `envd stop`."""
    _act(obj, "start", services, lock_timeout)


@click.command()
@click.option("--no-browser", is_flag=True, help="Print the URL only.")
@_json_opt
@_project_opts()
@click.pass_obj
def ui(obj: Ctx, no_browser: bool, as_json: bool) -> None:
    """Print the dashboard's URL (and open it in a browser when one is available)."""
    from envd.daemon import process

    loaded = obj.load()
    client = process.running(loaded.project_dir, loaded.environment)
    if client is None:
        raise UsageError(
            f"no daemon runs for project {loaded.project!r}; `envd up` starts one and its dashboard"
        )
    url = client.ui_url()
    if as_json:
        click.echo(json.dumps({"url": url}))
        return
    click.echo(url)
    if not no_browser:
        _open(url)


def _open(url: str) -> None:
    """Hand the URL to the desktop's opener when there is one; never wait for it."""
    import os

    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return
    opener = shutil.which("xdg-open")
    if opener:
        subprocess.Popen(
            [opener, url],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )


COMMANDS = [restart, stop, start, ui]

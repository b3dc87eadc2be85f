"""What ``envd up`` needs beyond converging: following a daemon's pass and
saying why services failed. Imported only when ``up`` gets that far, so
``envd status --help`` does not pay for it.
"""

from __future__ import annotations

import json
import os
from typing import Any

import click

from envd.cli._common import (
    Ctx,
    err,
)
from envd.values.errors import (
    EnvdError,
    EnvironmentFailed,
    SpecError,
)


def up_with_daemon(
    obj: Ctx,
    project_dir: Any,
    desired: Any,
    eng: Any,
    timeout: float | None,
    as_json: bool,
    commands: Any,
    rerun: tuple[str, ...] = (),
) -> None:
    from envd.cli.progress import make_progress
    from envd.daemon import process
    from envd.values.events import Event

    client = process.running(project_dir, desired.environment)
    started = client is None
    if client is None:
        client = process.start(obj.target(), project_dir, desired.environment)
    # The daemon reads the spec with this shell's environment from now on
    # (variables, `env` secrets), as `up --once` would: only the names the spec
    # can read go over the peer-checked socket. The command secrets ran here,
    # in this shell; the daemon gets what they printed and runs none.
    from envd.spec.paths import resolve_paths

    spec_file, base = resolve_paths(obj.target().project_dir, obj.target().file)
    generation, seq, environ_applied = client.reload(
        wait_timeout=timeout,
        restart_exited=True,
        environ=process.spec_environ(spec_file, base, os.environ),
        commands=commands,
        rerun=rerun,
    )
    if not environ_applied:
        click.echo(
            "envd: warning: the running daemon (an older envd) ignored this shell's"
            " environment and keeps its own; run `envd down` then `envd up` to use it",
            err=True,
        )
    progress = make_progress(as_json)
    final: dict[str, Any] | None = None
    try:
        for ev in client.events(since=seq):
            if ev.get("kind") == "pass-done" and int(ev.get("generation", 0)) >= generation:
                final = ev
                break
            if ev.get("kind") in ("reconcile", "pass-done"):
                continue
            progress(
                Event(
                    str(ev.get("kind", "")),
                    str(ev.get("resource", "")),
                    str(ev.get("message", "")),
                    ev.get("phase", "info"),
                    str(ev.get("service", "")),
                )
            )
    finally:
        progress.close()
    status = client.status()
    pid = status.get("daemon", {}).get("pid")
    result = (final or {}).get("result", "failed")
    if result == "ok":
        verb = "started" if started else "reused"
        if as_json:
            out = {"result": "ok", "project": desired.project, "daemon_pid": pid}
            click.echo(json.dumps({**out, "dashboard": _dashboard_url(client)}))
        else:
            click.echo(
                f"Project {desired.project} is up; daemon (pid {pid}, {verb}) keeps it converged."
                " See `envd status`, `envd events`; stop with `envd down`.",
                err=True,
            )
            url = _dashboard_url(client)
            if url:
                click.echo(f"Dashboard: {url}", err=True)
        return
    message = str((final or {}).get("message", "the daemon's event stream ended"))
    if result == "invalid-spec":
        raise SpecError(message)
    if result == "engine-unavailable":
        from envd.values.errors import EngineUnavailable

        raise EngineUnavailable(message)
    failures = failures_from_status(status)
    if not failures:
        from envd.values.errors import ServiceFailure

        failures = [ServiceFailure("-", message)]
    exc = EnvironmentFailed(failures)
    report_failures(eng, exc, as_json)
    raise exc


def _dashboard_url(client: Any) -> str | None:
    try:
        return str(client.ui_url())
    except EnvdError:  # an older daemon, or ENVD_UI=off
        return None


def failures_from_status(status: dict[str, Any]) -> list[Any]:
    from envd.values.errors import ServiceFailure

    out = []
    for s in status.get("services", []):
        bad = [
            c
            for c in s["containers"]
            if c["status"] not in ("running",)
            and not (c["status"] == "exited" and c["exit_code"] == 0)
        ]
        unhealthy = [c for c in s["containers"] if c.get("health") in ("unhealthy", "starting")]
        for c in bad or unhealthy:
            detail = c["status"] + (
                f" with code {c['exit_code']}" if c["status"] == "exited" else ""
            )
            if c.get("health"):
                detail += f", health {c['health']}"
            out.append(ServiceFailure(s["name"], f"is not ready ({detail})", c["id"]))
            break
        if not s["containers"] and s["desired_replicas"]:
            out.append(ServiceFailure(s["name"], "has no container"))
    return out


def report_failures(eng: Any, exc: EnvironmentFailed, as_json: bool) -> None:
    for f in exc.failures:
        lines: list[str] = []
        if f.container:
            try:
                lines = eng.container_logs(f.container, tail=20)
            except EnvdError:
                lines = []
        f.log_tail = lines
        if as_json:
            continue
        err(f"service {f.service!r} {f.reason}")
        if lines:
            click.echo(f"--- last {len(lines)} log lines of {f.service} ---", err=True)
            for line in lines:
                click.echo(f"  {f.service} | {line}", err=True)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "result": "failed",
                    "failures": [
                        {"service": f.service, "reason": f.reason, "logs": f.log_tail}
                        for f in exc.failures
                    ],
                }
            )
        )

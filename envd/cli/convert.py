"""`envd export` and `envd import`: the spec to and from other formats.

Compose, swarm stack files and Kubernetes manifests (docs/formats.md).
Imported by ``envd.cli.app`` only when one of them runs or all commands are listed.
"""

from __future__ import annotations

import os

import click

from envd.cli._common import Ctx, _project_opts, _rel, err
from envd.values.errors import UsageError


@click.command(name="export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["compose", "swarm", "k8s"]),
    required=True,
    help="compose: a Compose file; swarm: a stack file for `docker stack deploy`;"
    " k8s: Kubernetes manifests.",
)
@click.option("-o", "--output", "output", metavar="FILE", help="Write here instead of stdout.")
@click.option(
    "--secret-values",
    is_flag=True,
    help="k8s: put the secrets' values in the Secret manifests (default: none).",
)
@click.option(
    "--endpoint-mode",
    type=click.Choice(["vip", "dnsrr"]),
    default=None,
    help="swarm: vip (default) publishes ports on the routing mesh; dnsrr (kernels without"
    " IPVS) resolves names to the tasks and publishes ports in host mode, as"
    " `envd deploy --target swarm --endpoint-mode dnsrr` does.",
)
@_project_opts()
@click.pass_obj
def export_(
    obj: Ctx, fmt: str, output: str | None, secret_values: bool, endpoint_mode: str | None
) -> None:
    """Convert the spec to another format; what it cannot express is reported on stderr."""
    from envd.interop.export import export
    from envd.interop.render import render_yaml

    if endpoint_mode is not None and fmt != "swarm":
        raise UsageError("--endpoint-mode applies to --format swarm only")
    loaded = obj.load()
    values: dict[str, bytes] | None = None
    if secret_values:
        if fmt != "k8s":
            raise UsageError("--secret-values applies to --format k8s only")
        from envd.inputs.secrets import read_secrets

        names = {s.source for svc in loaded.active_services().values() for s in svc.secrets}
        # export runs no host command: a command source's value stays out.
        values = read_secrets(names, loaded.spec.secrets, loaded.project_dir, os.environ)
        for name in sorted(names - set(values)):
            err(f"note: secrets.{name}: its command source was not run (export runs none)")
    result = export(loaded, fmt, values, endpoint_mode or "vip")
    text = render_yaml(result, output)
    if output:
        # Secret values go into a file only its owner can read.
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if values else 0o666)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        if values:
            os.chmod(output, 0o600)
    else:
        click.echo(text, nl=False)
    for note in result.notes:
        err(f"note: {note}")
    if output:
        from pathlib import Path

        if fmt != "k8s" and Path(output).resolve().parent != loaded.project_dir.resolve():
            err(
                f"note: relative paths in {output} are relative to the project directory"
                f" {_rel(loaded.project_dir)}; Compose reads them relative to the file"
            )
        click.echo(f"wrote {output} ({fmt}; {len(result.notes)} note(s))", err=True)


@click.command(name="import")
@click.argument("compose_file", metavar="[FILE]", required=False)
@click.option(
    "-f",
    "--file",
    "files",
    metavar="FILE",
    multiple=True,
    help="A Compose file; repeat to merge several in order, as `docker compose -f` does"
    " (default: COMPOSE_FILE, else compose.yaml and its compose.override.yaml).",
)
@click.option(
    "--env-file",
    "env_files",
    metavar="FILE",
    multiple=True,
    help="Read variables from this file instead of the project's .env (values are written"
    " into the spec).",
)
@click.option(
    "-o",
    "--output",
    "output",
    metavar="FILE",
    help="Write the spec here (default: stdout; '-' for stdout).",
)
@click.option("--force", is_flag=True, help="Overwrite FILE given with -o if it exists.")
def import_(
    compose_file: str | None,
    files: tuple[str, ...],
    env_files: tuple[str, ...],
    output: str | None,
    force: bool,
) -> None:
    """Convert Compose files to envd.toml; what envd cannot express is reported on stderr."""
    from pathlib import Path

    from envd.interop.compose_import import import_files

    chosen = ([compose_file] if compose_file else []) + list(files)
    result = import_files(chosen, env_files)
    if output and output != "-":
        out = Path(output)
        if out.exists() and not force:
            raise UsageError(f"{output} exists; pass --force to overwrite it")
        out.write_text(result.toml, encoding="utf-8")
    else:
        click.echo(result.toml, nl=False)
    for note in result.notes:
        err(f"note: {note}")
    if output and output != "-":
        click.echo(
            f"wrote {output}: {result.services} service(s), {len(result.notes)} note(s)",
            err=True,
        )


COMMANDS = (export_, import_)

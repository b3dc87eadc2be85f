"""``envd allow``: approve what a spec reaches outside its project, for this user.

Modelled on ``direnv allow``: the approval is this user's, kept outside the
project (``envd.inputs.approvals``), for exactly the items shown; a spec that
changes one of them needs a new approval. CI approves with ``envd allow --yes``
or, for one run, ``ENVD_ALLOW=1``.
"""

from __future__ import annotations

import json
import sys

import click

from envd.cli._common import Ctx, _json_opt, _project_opts, _rel
from envd.values.errors import UsageError


@click.command()
@click.option("--yes", "-y", is_flag=True, help="Approve without asking (CI).")
@click.option("--list", "list_", is_flag=True, help="List this user's approvals.")
@click.option("--revoke", is_flag=True, help="Remove the approval of this spec.")
@_json_opt
@_project_opts()
@click.pass_obj
def allow(obj: Ctx, yes: bool, list_: bool, revoke: bool, as_json: bool) -> None:
    """Approve the host commands, host paths and engine access a spec uses, for this user."""
    from envd.inputs import approvals
    from envd.inputs.consent import reach

    if list_ and revoke:
        raise UsageError("--list and --revoke cannot be combined")
    if list_:
        _list(approvals.listing(), as_json)
        return
    loaded = obj.load()  # validation only: nothing in the spec runs here
    if revoke:
        removed = approvals.revoke(approvals.key_of(loaded))
        if as_json:
            click.echo(json.dumps({"revoked": removed}))
        else:
            click.echo(
                f"Approval of {_rel(loaded.file)} revoked."
                if removed
                else f"{_rel(loaded.file)} had no approval."
            )
        return
    items = reach(loaded)
    if as_json and not yes and items:
        raise UsageError("--json needs --yes (there is no one to ask)")
    if not as_json:
        if items:
            click.echo(f"{_rel(loaded.file)} reaches outside its project:")
            for item in items:
                click.echo(f"  {item.describe()}")
        else:
            click.echo(f"{_rel(loaded.file)} reaches nothing outside its project.")
    if items and not yes:
        if not _on_terminal():
            raise UsageError("not a terminal: read the list above, then run `envd allow --yes`")
        if not click.confirm("Allow these, for this user and this spec?", default=False):
            raise UsageError("nothing approved")
    approvals.approve(loaded, items)
    if as_json:
        click.echo(json.dumps({"approved": [i.to_json() for i in items]}))
    else:
        click.echo(f"Approved {len(items)} item(s) of {_rel(loaded.file)}.")


def _on_terminal() -> bool:
    return sys.stdin.isatty()


def _list(entries: list[dict[str, object]], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        click.echo("No approvals.")
        return
    for entry in entries:
        env = f" (environment {entry['environment']})" if entry.get("environment") else ""
        click.echo(f"{entry.get('file')}{env}, approved {entry.get('approved_at')}:")
        items = entry.get("items")
        for item in items if isinstance(items, list) else []:
            click.echo(f"  {item.get('description', '')}" if isinstance(item, dict) else "")


COMMANDS = (allow,)

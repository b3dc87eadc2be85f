"""Broken specs never touch a running project.

One valid project is brought up; then, row by row, its ``envd.toml`` is
replaced by a broken variant and ``envd up --once`` runs against it. Each row
must exit 2 with a message on stderr naming the file (and line), the field or
the service, print no traceback, and leave the running containers exactly as
they were: same ids, still running, same StartedAt.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import BUSYBOX, describe, project_cleanup, run_envd

pytestmark = pytest.mark.usefixtures("busybox_image")

UNSET = "ENVD_E2E_SURELY_UNSET_VARIABLE"


def spec(
    *,
    web: str = "",
    worker: str = "",
    top: str = "",
    image: str = f'"{BUSYBOX}"',
    web_table: str = "[services.web]",
) -> str:
    """The valid spec, with extra lines spliced into a service or the top level."""
    return f"""\
{web_table}
image = {image}
command = ["sleep", "100000"]
volumes = ["data:/data"]
stop_signal = "SIGKILL"
{web}

[services.worker]
image = "{BUSYBOX}"
command = ["sleep", "100000"]
depends_on = {{ web = "started" }}
stop_signal = "SIGKILL"
{worker}

[volumes.data]

[secrets.token]
file = "./token.txt"
{top}
"""


@dataclass(frozen=True)
class Case:
    id: str
    text: str
    expect: tuple[str, ...]  # substrings of stderr
    line: bool = True  # stderr names envd.toml:LINE:COL
    args: tuple[str, ...] = ()


CASES = [
    Case(
        "unknown-field",
        spec(web='imgae = "typo"'),
        ("services.web.imgae", "unknown field 'imgae'", "did you mean 'image'"),
    ),
    Case(
        "compose-spelling",
        spec(web='environment = { A = "1" }'),
        ("services.web.environment", "did you mean 'env'"),
    ),
    Case(
        "bad-enum",
        spec(web='restart = "sometimes"'),
        ("services.web.restart", "'sometimes'", "unless-stopped"),
    ),
    Case(
        "bad-condition",
        spec(worker='depends_on = { web = "ready" }').replace(
            'depends_on = { web = "started" }\n', "", 1
        ),
        ("services.worker.depends_on", "'ready'"),
    ),
    Case(
        "unknown-dependency",
        spec(web='depends_on = { dbb = "started" }'),
        ("service 'web' depends on unknown service 'dbb'",),
    ),
    Case(
        "dependency-cycle",
        spec(web='depends_on = { worker = "healthy" }'),
        ("dependency cycle", "web", "worker"),
    ),
    Case(
        "undefined-volume",
        spec().replace('"data:/data"', '"nodata:/data"'),
        ("services.web.volumes[0]", "undefined volume 'nodata'"),
    ),
    Case(
        "missing-env-file",
        spec(web='env_file = ["missing.env"]'),
        ("services.web.env_file", "'missing.env'", "does not exist"),
    ),
    Case(
        "missing-secret-file",
        spec(web='secrets = ["token"]').replace('"./token.txt"', '"./no-such-token.txt"'),
        ("secrets.token", "no-such-token.txt"),
    ),
    Case(
        "undefined-secret",
        spec(web='secrets = ["nosuch"]'),
        ("services.web.secrets[0]", "undefined secret 'nosuch'"),
    ),
    Case(
        "toml-syntax",
        spec(web='labels = { team = "core" '),
        ("invalid TOML",),
    ),
    Case(
        "duplicate-key",
        spec(web='command = ["true"]'),
        ("invalid TOML",),
    ),
    Case(
        "port-out-of-range",
        spec(web='ports = ["127.0.0.1:99999:80"]'),
        ("services.web.ports[0]", "65535"),
    ),
    Case(
        "port-not-a-number",
        spec(web='ports = ["http:80"]'),
        ("services.web.ports", "invalid port 'http'"),
    ),
    Case(
        "neither-image-nor-build",
        spec(top='[services.extra]\ncommand = ["true"]'),
        ("services.extra", "needs an 'image' or a 'build'"),
    ),
    Case(
        "missing-build-context",
        spec(top='[services.extra]\nbuild = "./no-such-dir"'),
        ("services.extra.build", "no-such-dir"),
    ),
    Case(
        "bad-duration",
        spec(web='healthcheck = { test = ["CMD", "true"], interval = "soon" }'),
        ("services.web.healthcheck.interval", "invalid duration 'soon'"),
    ),
    Case(
        "wrong-type",
        spec(web="replicas = -1"),
        ("services.web.replicas",),
    ),
    Case(
        "reserved-label",
        spec(web='labels = { "dev.envd.project" = "other" }'),
        ("services.web.labels", "reserved prefix 'dev.envd.'"),
    ),
    Case(
        "interpolation-required",
        spec(image=f'"${{{UNSET}:?set the busybox image}}"'),
        ("services.web.image", UNSET, "set the busybox image"),
    ),
    Case(
        "unknown-environment",
        spec(),
        ("envd.toml", "unknown environment 'nosuch'"),
        line=False,
        args=("--env", "nosuch"),
    ),
    Case(
        "unknown-top-level-table",
        spec(top='[servics.extra]\nimage = "x"'),
        ("servics", "did you mean 'services'"),
    ),
]


def snapshot(client: Any, project: str) -> dict[str, tuple[str, str, str]]:
    """name → (id, status, StartedAt) of every container, plus networks and volumes."""
    flt = {"label": f"dev.envd.project={project}"}
    out: dict[str, tuple[str, str, str]] = {}
    for c in client.api.containers(all=True, filters=flt):
        state = client.api.inspect_container(c["Id"])["State"]
        out[c["Names"][0].lstrip("/")] = (c["Id"], state["Status"], state["StartedAt"])
    for n in client.api.networks(filters=flt):
        out[f"network {n['Name']}"] = (n["Id"], "", "")
    for v in client.api.volumes(filters=flt).get("Volumes") or []:
        out[f"volume {v['Name']}"] = (v["Name"], "", v.get("CreatedAt", ""))
    return out


@dataclass
class Running:
    directory: Path
    project: str
    before: dict[str, tuple[str, str, str]]


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[Running]:
    """The valid project, up and running, with its state recorded."""
    name = f"t-{secrets.token_hex(4)}"
    directory = tmp_path_factory.mktemp("bad") / name
    directory.mkdir()
    (directory / "token.txt").write_text("not-a-real-token\n")
    (directory / "envd.toml").write_text(spec())
    with project_cleanup(name, lambda: docker_client):
        proc = run_envd(["up", "--once", "--timeout", "60"], cwd=directory)
        assert proc.returncode == 0, describe(proc)
        before = snapshot(docker_client, name)
        assert sum(1 for s in before.values() if s[1] == "running") == 2, before
        yield Running(directory, name, before)


def test_the_table_is_big_enough_and_every_row_is_broken_differently() -> None:
    """The table keeps at least twelve distinct broken specs."""
    assert len(CASES) >= 12
    assert len({c.id for c in CASES}) == len(CASES)
    assert len({(c.text, c.args) for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_broken_spec_exits_2_names_the_problem_and_touches_nothing(
    case: Case, running: Running, docker_client: Any
) -> None:
    """A broken spec makes `up --once` exit 2 with a located message, no traceback, and no change."""
    spec_file = running.directory / "envd.toml"
    good = spec_file.read_text()
    spec_file.write_text(case.text)
    try:
        proc = run_envd([*case.args, "up", "--once", "--timeout", "30"], cwd=running.directory)
    finally:
        spec_file.write_text(good)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, describe(proc)
    assert "Traceback" not in output, describe(proc)
    assert proc.stderr.strip(), describe(proc)
    for expected in case.expect:
        assert expected in proc.stderr, f"{expected!r} not in stderr\n{describe(proc)}"
    if case.line:
        assert re.search(r"envd\.toml:\d+:\d+: ", proc.stderr), describe(proc)
    assert snapshot(docker_client, running.project) == running.before


def test_the_project_still_converges_after_the_broken_specs(
    running: Running, docker_client: Any
) -> None:
    """After every broken spec was refused, the good spec still plans no change at all."""
    proc = run_envd(["plan", "--json"], cwd=running.directory)
    assert proc.returncode == 0, describe(proc)
    assert '"changes": 0' in proc.stdout, describe(proc)
    assert snapshot(docker_client, running.project) == running.before


# --------------------------------------------------------------------------- bytes, emptiness, unset variables
#
# These run in a fresh directory each: nothing may be created, except by the
# one `up` that the unset-variable case is allowed to make (and cleans up).


def refused(proc: Any, *expected: str) -> None:
    """Exit 2, no traceback, and every expected piece on stderr."""
    assert proc.returncode == 2, describe(proc)
    assert "Traceback" not in proc.stdout + proc.stderr, describe(proc)
    assert "internal error" not in proc.stderr, describe(proc)
    for piece in expected:
        assert piece in proc.stderr, f"{piece!r} not in stderr\n{describe(proc)}"


@pytest.mark.parametrize(
    ("files", "where"),
    [
        (
            {"envd.toml": f'[services.web]\nimage = "{BUSYBOX}"\nlabels = {{ a = "caf\xe9" }}\n'},
            "envd.toml:3:",
        ),
        ({".env": "A=1\nB=caf\xe9\n"}, ".env:2:6: "),
        ({"web.env": "X=\xe9\n", "envd.toml": "+env_file"}, "web.env:1:3: "),
    ],
    ids=["envd.toml", "dotenv", "env_file"],
)
def test_latin1_bytes_exit_2_naming_the_file_and_byte(
    tmp_path: Path, files: dict[str, str], where: str
) -> None:
    """Bytes that are not UTF-8 in the spec, .env or an env_file: exit 2 with file:line:col and the byte offset (exit 1 "internal error: UnicodeDecodeError" before)."""
    base = f'[services.web]\nimage = "{BUSYBOX}"\ncommand = ["true"]\n'
    for name, text in {"envd.toml": base, **files}.items():
        if text == "+env_file":
            text = base + 'env_file = ["web.env"]\n'
        (tmp_path / name).write_bytes(text.encode("latin-1"))
    for args in (["validate"], ["up", "--once", "--timeout", "30"]):
        refused(run_envd(args, cwd=tmp_path), where, "not valid UTF-8: byte ")


@pytest.mark.parametrize(
    ("text", "args", "expected"),
    [
        ("", (), "defines no services"),
        ('[project]\nname = "empty"\n', (), "defines no services"),
        (
            f'[services.web]\nimage = "{BUSYBOX}"\nprofiles = ["debug"]\n',
            (),
            "no service selected",
        ),
    ],
    ids=["empty-file", "project-only", "no-active-profile"],
)
def test_nothing_to_run_exits_2(
    tmp_path: Path, text: str, args: tuple[str, ...], expected: str
) -> None:
    """An empty spec, or one whose services all wait for a profile, is refused by `up` (it converged "0 service(s)" with exit 0 before)."""
    (tmp_path / "envd.toml").write_text(text)
    refused(run_envd([*args, "up", "--once", "--timeout", "30"], cwd=tmp_path), expected)
    proc = run_envd(["--profile", "debug", "plan"], cwd=tmp_path)
    assert (proc.returncode == 0) == (expected == "no service selected"), describe(proc)


def test_unset_variables_are_warned_about_and_strict_refuses_them(
    tmp_path: Path, docker_client: Any
) -> None:
    """$D unset: validate, plan and up warn with file:line:col and "$$"; --strict and strict_variables exit 2 (it became "" silently before)."""
    name = f"t-{secrets.token_hex(4)}"
    directory = tmp_path / name
    directory.mkdir()
    spec_text = (
        f'[services.web]\nimage = "{BUSYBOX}"\n'
        f'command = ["sh", "-c", "echo ${UNSET}; sleep 100000"]\nstop_signal = "SIGKILL"\n'
    )
    (directory / "envd.toml").write_text(spec_text)
    warning = f'envd.toml:3:30: warning: services.web.command[2]: the variable "{UNSET}" is not set'
    for args in (["validate", "--strict"], ["plan", "--strict"], ["up", "--once", "--strict"]):
        refused(
            run_envd(args, cwd=directory),
            f'envd.toml:3:30: services.web.command[2]: the variable "{UNSET}" is not set',
        )
    with project_cleanup(name, lambda: docker_client):
        for args in (["validate"], ["plan"], ["up", "--once", "--timeout", "60"]):
            proc = run_envd(args, cwd=directory)
            assert proc.returncode == 0, describe(proc)
            assert warning in proc.stderr and "use $$ for a literal $" in proc.stderr, describe(
                proc
            )
        for args in (["validate", "--json"], ["plan", "--json"]):
            proc = run_envd(args, cwd=directory)
            assert proc.returncode == 0, describe(proc)
            [found] = json.loads(proc.stdout)["warnings"]
            assert (found["line"], found["column"], found["path"]) == (
                3,
                30,
                "services.web.command[2]",
            )
        proc = run_envd(["validate"], cwd=directory, env={UNSET: "1"})
        assert proc.returncode == 0 and "warning" not in proc.stderr, describe(proc)
    (directory / "envd.toml").write_text("[project]\nstrict_variables = true\n" + spec_text)
    refused(run_envd(["validate"], cwd=directory), "envd.toml:5:30: ", f'"{UNSET}" is not set')

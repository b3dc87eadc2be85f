"""envd's Compose path checked against Docker Compose v2's own resolved view (``config --format json``).

Integration tests: they run the Compose v2 Go binary by its fixed path (never
the Debian Compose v1 on PATH). Two checks:

* a project split over several files (``compose.yaml`` + ``compose.override.yml``,
  ``extends`` from the same file and from another directory, ``include`` with its
  own ``.env`` and ``env_file``) imported by envd gives the same desired state as
  Compose v2's resolved view of the same files imported;
* a property test: a generated envd spec, exported with ``export --format compose``,
  resolved by Compose v2 and imported again, gives back the same desired state.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from envd.core.desired import desire
from envd.core.hashing import plain_deep
from envd.interop.compose_export import to_compose
from envd.interop.compose_import import import_compose, import_files
from envd.interop.render import render_yaml
from envd.interop.toml_writer import dump_toml
from envd.spec.load import load
from envd.values.errors import SpecError
from envd.values.keys import Keys

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

COMPOSE_V2 = Path(os.environ.get("ENVD_COMPOSE_V2", "/opt/envd-bench/compose-v2/docker-compose"))
KEYS = Keys(b"compose-v2-round-trip")


def compose_config(directory: Path, *files: str, project: str = "") -> str:
    """Compose v2's resolved view of ``files`` in ``directory`` (JSON, which is YAML)."""
    args = [str(COMPOSE_V2), *(["-p", project] if project else [])]
    for f in files:
        args += ["-f", f]
    proc = subprocess.run(
        [*args, "config", "--format", "json"],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")},
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def desired_of(directory: Path, toml: str) -> Any:
    """The desired state envd builds from ``toml`` as ``directory/envd.toml``, as plain data."""
    (directory / "envd.toml").write_text(toml)
    return plain_deep(desire(load(directory, environ={}), {}, keys=KEYS))


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def test_compose_v2_tool_is_present() -> None:
    """The integration host has the Compose v2 binary these checks compare with."""
    assert COMPOSE_V2.is_file(), f"Compose v2 is missing at {COMPOSE_V2}"


def test_several_files_with_extends_and_include_match_compose_v2(tmp_path: Path) -> None:
    """compose.yaml + override + extends (same file and file:) + include: same desired state as Compose v2's view."""
    write(
        tmp_path / "compose.yaml",
        """\
        include:
          - path: db/compose.yaml
            env_file: db/db.env
          - cache/compose.yaml
        services:
          base:
            image: busybox
            environment: {TZ: utc}
            labels: [team=core]
          web:
            extends: {file: common/base.yml, service: app}
            command: ["serve", "--verbose"]
            ports: ["8080:80", "9000:9000"]
            volumes: ["./data:/data:z,ro", "${LOGS:-./logs}:/logs"]
            environment: {A: "1"}
            depends_on: [db]
          worker:
            extends: base
            command: ["sh", "-c", "echo $${HOME}"]
            healthcheck: {test: ["CMD", "true"], retries: $RETRIES, interval: 3s}
        """,
    )
    write(
        tmp_path / "compose.override.yml",
        """\
        services:
          web:
            command: ["serve"]
            ports: ["8081:81"]
            volumes: ["./data2:/data:ro,rslave"]
            environment: [B=2]
            depends_on:
              db: {condition: service_healthy, restart: true}
          worker:
            labels: !reset []
            environment: {EXTRA: "x"}
          base:
            healthcheck: {disable: false}
        """,
    )
    write(
        tmp_path / "common" / "base.yml",
        """\
        services:
          app:
            image: nginx
            env_file: app.env
            volumes: ["./static:/static"]
        """,
    )
    write(tmp_path / "common" / "app.env", "APPVAR=1\n")
    write(
        tmp_path / "db" / "compose.yaml",
        """\
        services:
          db:
            image: "postgres:${PGVER}"
            volumes: ["./init:/docker-entrypoint-initdb.d:ro"]
            healthcheck: {test: "pg_isready -d $${POSTGRES_DB}", interval: 2s}
        """,
    )
    write(tmp_path / "db" / "db.env", "PGVER=16\n")
    write(tmp_path / "cache" / "compose.yaml", "services:\n  cache:\n    image: 'redis:${REDIS}'\n")
    write(tmp_path / "cache" / ".env", "REDIS=7\n")
    write(tmp_path / ".env", "RETRIES=4\n")
    for d in ("data", "data2", "logs", "common/static", "db/init"):
        (tmp_path / d).mkdir(parents=True, exist_ok=True)

    ours = import_files([], environ={}, cwd=tmp_path)
    theirs = import_compose(compose_config(tmp_path), "config.json")
    assert set(tomllib.loads(ours.toml)["services"]) == {"base", "web", "worker", "db", "cache"}
    assert desired_of(tmp_path, ours.toml) == desired_of(tmp_path, theirs.toml)


# --- the property test ----------------------------------------------------------

WORD = st.text(alphabet="abxyz09$-_{}/=. ", min_size=1, max_size=8)
ENV_KEY = st.from_regex(r"[A-Z][A-Z0-9_]{0,5}", fullmatch=True)
DURATION = st.sampled_from(["1s", "2s", "500ms", "1m30s"])


@st.composite
def services(draw: st.DrawFn, name: str, earlier: list[str], index: int) -> dict[str, Any]:
    svc: dict[str, Any] = {"image": draw(st.sampled_from(["busybox", "nginx:1.27", "redis:7"]))}
    if draw(st.booleans()):
        svc["command"] = draw(st.lists(WORD, min_size=1, max_size=3))
    if draw(st.booleans()):
        svc["entrypoint"] = draw(st.lists(WORD, min_size=1, max_size=2))
    env = draw(st.dictionaries(ENV_KEY, WORD, max_size=3))
    if env:
        svc["env"] = env
    targets = draw(st.lists(st.integers(1, 65535), max_size=2, unique=True))
    if targets:
        svc["ports"] = [f"{8000 + index * 10 + i}:{t}" for i, t in enumerate(targets)]
    volumes = []
    if draw(st.booleans()):
        volumes.append(f"data:/data{index}" + draw(st.sampled_from(["", ":ro"])))
    if draw(st.booleans()):
        modes = draw(st.permutations(["ro", "z", "rslave"]).map(lambda m: m[: len(m)]))
        keep = draw(st.integers(0, 3))
        volumes.append(f"./bind:/bind{index}" + (":" + ",".join(modes[:keep]) if keep else ""))
    if volumes:
        svc["volumes"] = volumes
    if draw(st.booleans()):
        test = draw(
            st.one_of(
                st.lists(WORD, min_size=1, max_size=2).map(lambda w: ["CMD", *w]),
                WORD.map(lambda w: ["CMD-SHELL", w]),
            )
        )
        svc["healthcheck"] = {
            "test": test,
            "interval": draw(DURATION),
            "timeout": draw(DURATION),
            "retries": draw(st.integers(1, 10)),
        }
    deps = draw(st.lists(st.sampled_from(earlier), unique=True, max_size=2)) if earlier else []
    if deps:
        svc["depends_on"] = {
            d: {
                "condition": draw(st.sampled_from(["started", "completed"])),
                "restart": draw(st.booleans()),
            }
            for d in deps
        }
    svc["restart"] = draw(st.sampled_from(["no", "always", "on-failure", "unless-stopped"]))
    svc["init"] = draw(st.booleans())
    if draw(st.booleans()):
        svc["labels"] = draw(
            st.dictionaries(st.from_regex(r"[a-z]{1,5}", fullmatch=True), WORD, max_size=2)
        )
    if draw(st.booleans()):
        svc["cap_add"] = draw(
            st.lists(st.sampled_from(["NET_ADMIN", "SYS_TIME"]), unique=True, min_size=1)
        )
    for key, values in (
        ("working_dir", ["/app", "/srv/x"]),
        ("user", ["1000", "nobody"]),
        ("stop_signal", ["SIGINT", "SIGQUIT"]),
        ("stop_grace_period", ["5s", "1m"]),
    ):
        if draw(st.booleans()):
            svc[key] = draw(st.sampled_from(values))
    if draw(st.booleans()):
        svc["read_only"] = True
    if draw(st.booleans()):
        svc["tmpfs"] = ["/run"]
    return svc


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    names = draw(st.lists(st.sampled_from(["web", "db", "api", "worker"]), min_size=1, unique=True))
    out: dict[str, Any] = {"project": {"name": "roundtrip"}, "services": {}}
    for i, name in enumerate(names):
        out["services"][name] = draw(services(name, names[:i], i))
    if any("data:" in v for svc in out["services"].values() for v in svc.get("volumes", [])):
        # Compose leaves out a volume no service uses; envd would create it.
        out["volumes"] = {"data": {}}
    return out


@settings(
    max_examples=int(os.environ.get("ENVD_ROUND_TRIP_EXAMPLES", "60")),
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(specs())
def test_export_compose_v2_config_import_keeps_the_desired_state(
    tmp_path: Path, spec: dict[str, Any]
) -> None:
    """export --format compose, resolved by Compose v2, imported again: the same desired state."""
    (tmp_path / "bind").mkdir(exist_ok=True)
    toml = dump_toml(spec)
    try:
        before = desired_of(tmp_path, toml)
    except SpecError:
        assume(False)
        return
    exported = render_yaml(to_compose(load(tmp_path, environ={})))
    (tmp_path / "compose.yaml").write_text(exported)
    # As the export's header says: `docker compose -p PROJECT`.
    resolved = compose_config(tmp_path, "compose.yaml", project="roundtrip")
    again = import_compose(resolved, "config.json")
    after = desired_of(tmp_path, again.toml)
    assert after == before, json.dumps({"exported": exported, "imported": again.toml})


# --- merge details, each against Compose v2 ----------------------------------------

MERGES: dict[str, dict[str, str]] = {
    "ports-by-key-and-env-forms": {
        "compose.yaml": """\
            services:
              web:
                image: nginx
                ports: ["8080:80", {target: 81, published: "8081"}]
                environment: [A=1, B=2]
            """,
        "compose.override.yaml": """\
            services:
              web:
                ports: ["8080:80", "9090:90"]
                environment: {B: "3", C: "4"}
            """,
    },
    "build-networks-depends-on-forms": {
        "compose.yaml": """\
            services:
              db: {image: postgres}
              web:
                build: ./app
                networks: [front]
                depends_on: [db]
            networks: {front: {}, back: {}}
            """,
        "compose.override.yaml": """\
            services:
              web:
                build: {dockerfile: Dockerfile.dev, args: [MODE=dev]}
                networks: {back: {aliases: [w]}}
                depends_on: {db: {condition: service_started, required: false}}
            """,
    },
    "override-and-reset-tags": {
        "compose.yaml": """\
            services:
              web:
                image: nginx
                environment: {A: "1", B: "2"}
                volumes: ["./a:/a", "./b:/b"]
                healthcheck: {test: ["CMD", "a"], interval: 5s}
            """,
        "compose.override.yaml": """\
            services:
              web:
                environment: !override {C: "3"}
                volumes: !reset []
                healthcheck: {test: ["CMD", "b"]}
            """,
    },
    "extends-chain-and-include-conflict": {
        "compose.yaml": """\
            include: [inc/compose.yaml]
            services:
              base: {image: busybox, environment: {X: "1"}, labels: [a=1]}
              mid: {extends: base, user: "1000", labels: [b=2]}
              top: {extends: mid, command: ["run"], environment: {Y: "2"}}
            """,
        "inc/compose.yaml": """\
            services:
              extra: {image: redis, volumes: ["./data:/data"]}
            """,
    },
}


@pytest.mark.parametrize("case", sorted(MERGES))
def test_merge_details_match_compose_v2(tmp_path: Path, case: str) -> None:
    """Each merge rule gives the desired state Compose v2's own merge gives."""
    for name, text in MERGES[case].items():
        write(tmp_path / name, text)
    for d in ("a", "b", "app", "inc/data"):
        (tmp_path / d).mkdir(parents=True, exist_ok=True)
    (tmp_path / "app" / "Dockerfile.dev").write_text("FROM scratch\n")
    ours = import_files([], environ={}, cwd=tmp_path)
    theirs = import_compose(compose_config(tmp_path), "config.json")
    assert desired_of(tmp_path, ours.toml) == desired_of(tmp_path, theirs.toml), (
        ours.toml + "\n----\n" + theirs.toml
    )

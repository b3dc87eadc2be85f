"""Desired state: what each container looks like, and a config hash that changes exactly when
a recreate is needed."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from envd import __version__
from envd.core.desired import (
    DesiredProject,
    canonical,
    config_hash,
    container_for,
    desire,
    desired_hash,
)
from envd.core.hashing import changed_fields
from envd.spec.load import load
from envd.values import labels
from envd.values.keys import Keys
from envd.values.types import ContainerCreate

SECRET = b"s3cr3t-Value-that-must-not-leak-42"
IMAGE_ID = "sha256:" + "a" * 64

BASE = """\
[project]
name = "shop"

[services.db]
image = "postgres:16"

[services.api]
image = "api:1"
command = ["serve", "--port", "8000"]
entrypoint = ["/bin/entry"]
env = { A = "1", B = "2" }
env_file = [".env.api"]
ports = ["127.0.0.1::8000"]
volumes = ["data:/data", "./site:/www:ro"]
networks = ["front", "back"]
healthcheck = { test = ["CMD", "true"], interval = "2s", retries = 3 }
restart = "unless-stopped"
init = true
stop_signal = "SIGTERM"
stop_grace_period = "10s"
labels = { team = "core" }
secrets = ["pw"]
user = "1000"
working_dir = "/app"
read_only = false
cap_drop = ["ALL"]
tmpfs = ["/var/run/app"]
replicas = 2
depends_on = { db = "started" }
pull = "missing"
watch = [{ path = "src", action = "restart" }]

[volumes.data]

[networks.front]
[networks.back]

[secrets.pw]
env = "PW"
"""


# Secret digests use a fixed key, never the user's key file.
KEYS = Keys(b"unit-test-hash-key")


def desired_from(
    root: Path,
    spec: str,
    *,
    secret: bytes = SECRET,
    env_file: str = "E=1\n",
    environment: str | None = None,
    profiles: frozenset[str] = frozenset(),
) -> DesiredProject:
    (root / "envd.toml").write_text(spec)
    (root / ".env.api").write_text(env_file)
    (root / "site").mkdir(exist_ok=True)
    (root / "src").mkdir(exist_ok=True)
    loaded = load(root, environment=environment, environ={}, profiles=profiles)
    return desire(loaded, {"pw": secret}, keys=KEYS)


def api_container(
    desired: DesiredProject, image_id: str = IMAGE_ID, replica: int = 1
) -> ContainerCreate:
    return container_for(desired, desired.services["api"], replica, image_id)


@dataclass(frozen=True)
class Change:
    """One edit to the base spec (or its inputs) and the recreate it must cause."""

    id: str
    old: str = ""
    new: str = ""
    fields: tuple[str, ...] = ()  # changed_fields; () means the hash must not change
    image_id: str = IMAGE_ID
    secret: bytes = SECRET
    env_file: str = "E=1\n"
    extra: Mapping[str, str] = field(default_factory=dict)


CHANGES: list[Change] = [
    # --- changes that need a recreate
    Change("image-id", image_id="sha256:" + "b" * 64, fields=("image",)),
    Change("command", '"--port", "8000"]', '"--port", "8001"]', ("command",)),
    Change("command-unset", 'command = ["serve", "--port", "8000"]\n', "", ("command",)),
    Change("entrypoint", '"/bin/entry"', '"/bin/other"', ("entrypoint",)),
    Change("env-value", 'B = "2"', 'B = "3"', ("env",)),
    Change("env-added", 'B = "2"', 'B = "2", C = "3"', ("env",)),
    Change("env-file-content", env_file="E=2\n", fields=("env",)),
    Change("ports", "127.0.0.1::8000", "127.0.0.1::8001", ("ports",)),
    Change("ports-host-ip", "127.0.0.1::8000", "0.0.0.0::8000", ("ports",)),
    Change("mounts-read-only", '"data:/data"', '"data:/data:ro"', ("mounts",)),
    Change("mounts-target", '"./site:/www:ro"', '"./site:/srv:ro"', ("mounts",)),
    Change("networks", 'networks = ["front", "back"]', 'networks = ["front"]', ("networks",)),
    Change("healthcheck-interval", 'interval = "2s"', 'interval = "3s"', ("healthcheck",)),
    Change("healthcheck-test", '["CMD", "true"]', '["CMD-SHELL", "true"]', ("healthcheck",)),
    Change("restart", '"unless-stopped"', '"always"', ("restart",)),
    Change("init", "init = true", "init = false", ("init",)),
    Change("stop-signal", '"SIGTERM"', '"SIGINT"', ("stop_signal",)),
    Change("stop-grace-period", '"10s"', '"30s"', ("stop_timeout",)),
    Change("labels", 'team = "core"', 'team = "edge"', ("labels",)),
    Change("secret-value", secret=b"another value", fields=("secrets",)),
    Change(
        "secret-mode",
        'secrets = ["pw"]',
        'secrets = [{ source = "pw", mode = 0o440 }]',
        ("secrets",),
    ),
    Change("user", 'user = "1000"', 'user = "1001"', ("user",)),
    Change("working-dir", '"/app"', '"/srv"', ("working_dir",)),
    Change("read-only", "read_only = false", "read_only = true", ("read_only",)),
    Change("cap-drop", 'cap_drop = ["ALL"]', 'cap_drop = ["NET_RAW"]', ("cap_drop",)),
    Change("tmpfs", '["/var/run/app"]', '["/var/run/app", "/tmp"]', ("tmpfs",)),
    Change(
        "two-fields",
        'restart = "unless-stopped"\ninit = true',
        'restart = "no"\ninit = false',
        ("init", "restart"),
    ),
    # --- changes that must NOT recreate
    Change("replicas", "replicas = 2", "replicas = 5"),
    Change("depends-on", 'depends_on = { db = "started" }', 'depends_on = { db = "healthy" }'),
    Change("depends-on-removed", 'depends_on = { db = "started" }\n', ""),
    Change("profiles", "replicas = 2", 'replicas = 2\nprofiles = ["web"]'),
    Change("watch", 'action = "restart"', 'action = "sync", target = "/app/src"'),
    Change("pull-policy", 'pull = "missing"', 'pull = "always"'),
    Change("env-order", 'env = { A = "1", B = "2" }', 'env = { B = "2", A = "1" }'),
    Change("stop-grace-same-seconds", '"10s"', '"10000ms"'),
    Change("image-tag-same-id", 'image = "api:1"', 'image = "api:latest"'),
    Change("other-service", 'image = "postgres:16"', 'image = "postgres:17"'),
    Change("healthcheck-same-duration", 'interval = "2s"', 'interval = "2000ms"'),
    Change(
        "command-string-form",
        'command = ["serve", "--port", "8000"]',
        'command = "serve --port 8000"',
    ),
]


@pytest.mark.parametrize("change", CHANGES, ids=[c.id for c in CHANGES])
def test_config_hash_changes_exactly_when_a_recreate_is_needed(
    tmp_path: Path, change: Change
) -> None:
    """The config hash moves for fields that need a new container, and only for those."""
    assert change.old in BASE, f"row {change.id} does not edit the base spec"
    before = api_container(desired_from(tmp_path, BASE))
    spec = BASE.replace(change.old, change.new, 1) if change.old else BASE
    profiles = frozenset({"web"})
    after_desired = desired_from(
        tmp_path, spec, secret=change.secret, env_file=change.env_file, profiles=profiles
    )
    after = api_container(after_desired, change.image_id)
    old_hash, new_hash = before.labels[labels.CONFIG_HASH], after.labels[labels.CONFIG_HASH]
    fields = changed_fields(before.labels[labels.FIELD_HASHES], after.labels[labels.FIELD_HASHES])
    if change.fields:
        assert old_hash != new_hash
        assert tuple(fields) == change.fields
    else:
        assert old_hash == new_hash
        assert fields == []


def test_hash_is_deterministic(tmp_path: Path) -> None:
    """Two independent loads of one spec give byte-identical hashes."""
    a = api_container(desired_from(tmp_path, BASE))
    b = api_container(desired_from(tmp_path, BASE))
    assert a.labels[labels.CONFIG_HASH] == b.labels[labels.CONFIG_HASH]
    assert a.labels[labels.FIELD_HASHES] == b.labels[labels.FIELD_HASHES]
    assert len(a.labels[labels.CONFIG_HASH]) == 64


@pytest.mark.parametrize("image_id", ["sha256:" + "a" * 64, "sha256:" + "b" * 64])
def test_planning_fast_path_matches_the_label(tmp_path: Path, image_id: str) -> None:
    """desired_hash (what plan compares) equals the config-hash label a create stamps."""
    desired = desired_from(tmp_path, BASE)
    for service in desired.services.values():
        want = container_for(desired, service, 1, image_id)
        assert desired_hash(service, image_id) == want.labels[labels.CONFIG_HASH]


def test_replicas_share_one_hash(tmp_path: Path) -> None:
    """Every replica of a service carries the same config hash; only name and replica differ."""
    desired = desired_from(tmp_path, BASE)
    one, two = api_container(desired, replica=1), api_container(desired, replica=2)
    assert one.labels[labels.CONFIG_HASH] == two.labels[labels.CONFIG_HASH]
    assert (one.name, two.name) == ("shop-api-1", "shop-api-2")
    assert (one.labels[labels.REPLICA], two.labels[labels.REPLICA]) == ("1", "2")


def test_envd_version_and_environment_are_not_hashed(tmp_path: Path) -> None:
    """Upgrading envd does not recreate containers: its version label is outside the hash."""
    desired = desired_from(tmp_path, BASE)
    container = api_container(desired)
    again = container_for(
        replace(desired, environment="other"), desired.services["api"], 1, IMAGE_ID
    )
    assert container.labels[labels.VERSION] == __version__
    assert again.labels[labels.CONFIG_HASH] == container.labels[labels.CONFIG_HASH]
    assert again.labels[labels.ENVIRONMENT] == "other"


def test_container_labels(tmp_path: Path) -> None:
    """A container carries the contract's labels next to the user's own."""
    spec = BASE + "\n[environments.ci]\n"
    container = api_container(desired_from(tmp_path, spec, environment="ci"))
    assert container.name == "shop-ci-api-1"
    assert container.image == "api:1"  # created from the reference, hashed by id
    assert container.labels["team"] == "core"
    assert container.labels[labels.PROJECT] == "shop-ci"
    assert container.labels[labels.SERVICE] == "api"
    assert container.labels[labels.ENVIRONMENT] == "ci"
    assert container.labels[labels.VERSION] == __version__
    assert set(container.labels) >= {labels.CONFIG_HASH, labels.FIELD_HASHES, labels.REPLICA}


def test_desired_container_shape(tmp_path: Path) -> None:
    """Spec fields map onto the create request: env merged, paths absolute, names scoped."""
    desired = desired_from(tmp_path, BASE)
    api = desired.services["api"]
    t = api.template
    assert dict(t.env) == {"A": "1", "B": "2", "E": "1"}
    assert [(m.type, m.target, m.source, m.read_only) for m in t.mounts] == [
        ("volume", "/data", "shop_data", False),
        ("bind", "/www", str(tmp_path / "site"), True),
    ]
    assert [(n.network, n.aliases) for n in t.networks] == [
        ("shop_front", ("api",)),
        ("shop_back", ("api",)),
    ]
    assert [(p.container_port, p.host_ip, p.host_port) for p in t.ports] == [
        (8000, "127.0.0.1", None)
    ]
    assert t.stop_timeout == 10
    assert t.tmpfs == (("/var/run/app", ""),)
    assert t.secrets[0].target == "/run/secrets/pw" and t.secrets[0].mode == 0o400
    assert api.replicas == 2
    assert set(desired.networks) == {"front", "back", "default"}
    assert desired.volumes["data"].name == "shop_data"
    assert desired.networks["front"].labels[labels.PROJECT] == "shop"
    assert desired.services["db"].template.networks[0].network == "shop_default"


def test_levels_follow_dependencies(tmp_path: Path) -> None:
    """Services are grouped so each group depends only on earlier ones."""
    spec = """\
[services.web]
image = "i"
depends_on = ["api"]
[services.api]
image = "i"
depends_on = { db = "healthy", cache = "started" }
[services.db]
image = "i"
[services.cache]
image = "i"
[services.lone]
image = "i"
"""
    (tmp_path / "envd.toml").write_text(spec)
    desired = desire(load(tmp_path, environ={}), {}, keys=KEYS)
    assert desired.levels() == [["cache", "db", "lone"], ["api"], ["web"]]


def test_inactive_profiles_are_not_desired(tmp_path: Path) -> None:
    """Services whose profiles are off have no desired containers."""
    spec = BASE.replace("replicas = 2", 'replicas = 2\nprofiles = ["web"]')
    assert set(desired_from(tmp_path, spec).services) == {"db"}
    assert set(desired_from(tmp_path, spec, profiles=frozenset({"web"})).services) == {"db", "api"}


def test_image_override_pins_reference(tmp_path: Path) -> None:
    """A lock-file override replaces the image reference a service runs."""
    (tmp_path / "envd.toml").write_text('[services.s]\nimage = "app:latest"\n')
    pinned = "app@sha256:" + "c" * 64
    desired = desire(load(tmp_path, environ={}), {}, image_overrides={"s": pinned}, keys=KEYS)
    assert desired.services["s"].image_ref == pinned
    assert desired.services["s"].template.image == pinned


# --------------------------------------------------------------------------- secrets stay secret


def test_secret_value_never_in_labels_or_canonical(tmp_path: Path) -> None:
    """A secret's value (and its plain sha256) appears in no label and not in canonical()."""
    desired = desired_from(tmp_path, BASE)
    container = api_container(desired)
    plain_digest = hashlib.sha256(SECRET).hexdigest()
    digests = desired.services["api"].secret_digests
    blob = json.dumps(canonical(replace(container, image=IMAGE_ID), digests), sort_keys=True)
    label_text = json.dumps(dict(container.labels))
    for text in (blob, label_text, repr(container), repr(desired)):
        assert SECRET.decode() not in text
        assert plain_digest not in text
    # The value does reach the create request, for the engine to write as a file.
    assert container.secrets[0].value == SECRET


def test_canonical_secret_entry_is_a_keyed_digest(tmp_path: Path) -> None:
    """canonical() lists a secret by target, owner, mode and the HMAC desire() made of its value."""
    service = desired_from(tmp_path, BASE).services["api"]
    (entry,) = canonical(service.template, service.secret_digests)["secrets"]
    assert set(entry) == {"target", "uid", "gid", "mode", "digest"}
    assert entry["digest"] == KEYS.digest(SECRET)
    assert entry["digest"] != hashlib.sha256(SECRET).hexdigest()
    assert entry["digest"] != Keys(b"another user's key").digest(SECRET)


def test_canonical_refuses_a_secret_without_its_digest() -> None:
    """A container with a secret but no digest for it cannot be hashed (no silent empty digest)."""
    from envd.values.types import SecretFile

    spec = ContainerCreate(
        name="x", image="i", labels={}, secrets=(SecretFile("/run/secrets/a", value=SECRET),)
    )
    with pytest.raises(ValueError):
        canonical(spec)


def test_canonical_is_json_and_covers_the_hashed_fields() -> None:
    """canonical() is plain JSON over the fields that force a recreate, and nothing else."""
    data = canonical(ContainerCreate(name="n", image="i", labels={"a": "b"}))
    json.dumps(data)  # must not raise
    assert "name" not in data  # the name is derived, not configuration
    assert "auto_remove" not in data and "tty" not in data
    assert {"image", "command", "env", "ports", "mounts", "networks", "healthcheck"} <= set(data)


# --------------------------------------------------------------------------- changed_fields


@pytest.mark.parametrize(
    ("old", "new", "fields"),
    [
        ("a=1,b=2", "a=1,b=2", []),
        ("a=1,b=2", "a=1,b=3", ["b"]),
        ("a=1,b=2", "a=9,b=3", ["a", "b"]),
        ("a=1", "a=1,c=2", ["c"]),  # a field added by a newer envd
        ("a=1,c=2", "a=1", ["c"]),
        ("", "a=1", []),  # no field hashes on the old container: cannot tell
    ],
)
def test_changed_fields(old: str, new: str, fields: list[str]) -> None:
    """changed_fields names the fields whose short hashes differ, sorted."""
    assert changed_fields(old, new) == fields


def test_field_hashes_label_names_every_hashed_field() -> None:
    """The field-hashes label has one short digest per hashed field."""
    _, fields = config_hash(ContainerCreate(name="n", image="i", labels={}))
    names = [part.split("=")[0] for part in fields.split(",")]
    assert names == sorted(canonical(ContainerCreate(name="n", image="i", labels={})))
    assert all(len(part.split("=")[1]) == 8 for part in fields.split(","))


def test_config_hash_is_sha256_of_canonical_json(tmp_path: Path) -> None:
    """The config-hash label is the sha256 of canonical() as compact, key-sorted JSON."""
    desired = desired_from(tmp_path, BASE)
    spec = replace(desired.services["api"].template, image=IMAGE_ID)
    digests = desired.services["api"].secret_digests
    data = canonical(spec, digests)
    document = json.dumps(data, sort_keys=True, separators=(",", ":"), default=list)
    full, short = config_hash(spec, digests)
    assert full == hashlib.sha256(document.encode()).hexdigest()
    for part in short.split(","):
        name, digest = part.split("=")
        blob = json.dumps(data[name], sort_keys=True, separators=(",", ":"), default=list)
        assert digest == hashlib.sha256(blob.encode()).hexdigest()[:8]


def test_hashes_are_byte_identical_to_earlier_envd(tmp_path: Path) -> None:
    """Config hashes (secret digests included) match what envd computed before the key moved
    out of the core: an upgrade must not recreate every container."""
    desired = desired_from(tmp_path, BASE)
    db = container_for(desired, desired.services["db"], 1, IMAGE_ID)
    assert db.labels[labels.CONFIG_HASH] == (
        "8b0dbb2e4f4d17f522ab93a715392cdc7440d58b78fe927b7b1ff418aee57a81"
    )
    fields = dict(
        p.split("=") for p in api_container(desired).labels[labels.FIELD_HASHES].split(",")
    )
    assert fields["secrets"] == "d47ff181"
    assert desired.volumes["data"].labels[labels.CONFIG_HASH] == (
        "a43ed8ec942429241e7e3fcaee124a804407530f56e478ffe29af8dcbcfb52bf"
    )


def test_a_field_added_later_joins_the_hash_only_when_set(tmp_path: Path) -> None:
    """A field envd learned after the first hashes (here a bind's SELinux relabel) leaves
    the hash as it was while unset, and changes it once set: upgrading recreates nothing."""
    from dataclasses import replace

    from envd.values.types import Mount

    desired = desired_from(tmp_path, BASE)
    db = container_for(desired, desired.services["db"], 1, IMAGE_ID)
    bind = Mount("bind", "/src", "/host/src")
    plain_bind = replace(db, mounts=(*db.mounts, bind))
    relabelled = replace(db, mounts=(*db.mounts, replace(bind, selinux="z")))
    view = canonical(plain_bind)["mounts"][-1]
    assert view == {"type": "bind", "target": "/src", "source": "/host/src", "read_only": False}
    assert config_hash(plain_bind)[0] != config_hash(relabelled)[0]
    assert canonical(relabelled)["mounts"][-1]["selinux"] == "z"

"""What ``down`` relies on from the engine's list, the same on the fake and the real engine:
each container's volumes are named there, so removing it needs no inspect."""

from __future__ import annotations

from envd.values.types import Mount, SecretFile

from .conftest import World


def test_the_list_names_each_containers_volumes_and_removing_by_it_keeps_the_rules(
    world: World,
) -> None:
    """The list names the volumes a container mounts; removing with that answer takes a secret
    volume always, an anonymous one only with ``volumes``, and never a named one."""
    eng = world.engine
    named = world.name("keep")
    eng.create_volume(named, world.labels())
    anon = world.spec("anon", mounts=(Mount("volume", "/data"), Mount("volume", "/keep", named)))
    kept_id = eng.create_container(anon)
    gone_id = eng.create_container(
        world.spec("anon2", mounts=(Mount("volume", "/data"), Mount("volume", "/keep", named)))
    )
    secret_id = eng.create_container(
        world.spec("ro", read_only=True, secrets=(SecretFile("/run/secrets/pw", value=b"x"),))
    )
    plain_id = eng.create_container(world.spec("plain"))
    mounts = {cid: eng.container_mounts(cid) for cid in (kept_id, gone_id, secret_id)}
    kept_anon = next(m.source for m in mounts[kept_id] if m.target == "/data")
    gone_anon = next(m.source for m in mounts[gone_id] if m.target == "/data")
    [secret_vol] = [m.source for m in mounts[secret_id]]
    try:
        listed = {c.id: c for c in eng.list_containers(world.project)}
        if not world.podman:  # Podman's list is not used for this: its removes inspect
            assert sorted(listed[kept_id].volumes or ()) == sorted([kept_anon, named])
            assert listed[secret_id].volumes == (secret_vol,)
            assert listed[plain_id].volumes == ()
        for cid in (plain_id, secret_id, kept_id):
            eng.remove_container(cid, mounted=listed[cid].volumes)
        eng.remove_container(gone_id, volumes=True, mounted=listed[gone_id].volumes)
        assert eng.list_containers(world.project) == []
        assert not eng.volume_exists(secret_vol), "a secret volume outlived its container"
        assert eng.volume_exists(kept_anon), "an anonymous volume went without volumes=True"
        assert not eng.volume_exists(gone_anon), "volumes=True left an anonymous volume"
        assert eng.volume_exists(named), "a named volume went with a container"
    finally:
        # The anonymous volumes carry no project label for the world's cleanup to find.
        for c in eng.list_containers(world.project):
            eng.remove_container(c.id, volumes=True)
        for vol in (kept_anon, gone_anon):
            if eng.volume_exists(vol):
                eng.remove_volume(vol)

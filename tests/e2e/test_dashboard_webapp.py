"""The dashboard over the bundled ``examples/webapp`` stack (PostgreSQL, Redis, a built
API), in Debian's chromium: every service with its health, a container removed by hand
turning its row red and green again without a reload, restart touching exactly one
container, 403 without the token, and a spec broken on disk shown over the last good state."""

from __future__ import annotations

import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser import chromium
from tests.helpers import (
    describe,
    free_tcp_port,
    project_cleanup,
    remove_by_hand,
    run_envd,
    wait_for,
)

# The page's green is "healthy": the example's services must run their healthchecks.
pytestmark = [pytest.mark.usefixtures("debian_image"), pytest.mark.needs_engine_healthchecks]

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "webapp"

# Records, in the page itself, every class the row's state cell takes (a repair can
# come and go between two polls from the test).
RECORD = """
(service) => {
  window.__seen = [];
  window.__marker = 'no reload';
  const cell = () => document.querySelector(`#services tr[data-service="${service}"] td.state`);
  const tick = () => {
    const c = cell();
    const cls = c ? c.className : '';
    if (window.__seen[window.__seen.length - 1] !== cls) window.__seen.push(cls);
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}
"""


class Webapp:
    def __init__(self, directory: Path, project: str, client: Any) -> None:
        self.directory, self.project, self.client = directory, project, client
        self.port = free_tcp_port()
        self.url = ""

    def envd(self, *args: str) -> Any:
        return run_envd(
            list(args), cwd=self.directory, env={"API_PORT": str(self.port)}, timeout=240
        )

    def identity(self) -> dict[str, tuple[str, str]]:
        """service → (container id, StartedAt)."""
        out = {}
        flt = {"label": f"dev.envd.project={self.project}"}
        for c in self.client.api.containers(all=True, filters=flt):
            info = self.client.api.inspect_container(c["Id"])
            out[c["Labels"]["dev.envd.service"]] = (info["Id"], info["State"]["StartedAt"])
        return out


@pytest.fixture(scope="module")
def webapp(tmp_path_factory: pytest.TempPathFactory, docker_client: Any) -> Iterator[Webapp]:
    """examples/webapp under a fresh project name, up with its daemon."""
    name = f"t-{secrets.token_hex(4)}"
    directory = tmp_path_factory.mktemp("webui") / name
    shutil.copytree(EXAMPLE, directory, ignore=shutil.ignore_patterns(".envd", "__pycache__"))
    app = Webapp(directory, name, docker_client)
    with project_cleanup(name, lambda: docker_client):
        try:
            up = app.envd("up", "--timeout", "180")
            assert up.returncode == 0, describe(up)
            [line] = [ln for ln in up.stderr.splitlines() if ln.startswith("Dashboard: ")]
            app.url = line.removeprefix("Dashboard: ")
            yield app
        finally:
            app.envd("down")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


def _state(page: Any, service: str) -> str:
    return str(page.inner_text(f'#services tr[data-service="{service}"] td.state'))


def test_every_service_shows_its_health(webapp: Webapp, browser: Any) -> None:
    """db, cache and api are listed, each healthy, with the api's port linked."""
    page = browser.new_page()
    page.goto(webapp.url)
    for service in ("db", "cache", "api"):
        page.wait_for_selector(f'#services tr[data-service="{service}"]')
        wait_for(lambda s=service: _state(page, s) == "healthy", timeout=60, message=service)
    link = page.locator('#services tr[data-service="api"] a').first
    assert link.get_attribute("href") == f"http://127.0.0.1:{webapp.port}/"


def test_a_container_removed_by_hand_turns_red_then_green_without_a_reload(
    webapp: Webapp, browser: Any
) -> None:
    """Removing cache's container turns its row red; the daemon's repair turns it green
    again, on the same page (no reload)."""
    page = browser.new_page()
    page.goto(webapp.url)
    wait_for(lambda: _state(page, "cache") == "healthy", timeout=60, message="cache healthy")
    page.evaluate(RECORD, "cache")
    remove_by_hand(webapp.client, f"{webapp.project}-cache-1")
    wait_for(
        lambda: any("st-err" in c for c in page.evaluate("window.__seen")),
        timeout=20,
        message="the row turns red",
    )
    # Green is healthy *and* in sync: the text can read "healthy" a moment before.
    wait_for(
        lambda: (
            _state(page, "cache") == "healthy"
            and "st-ok" in (page.evaluate("window.__seen") or [""])[-1]
        ),
        timeout=60,
        message="cache green again",
    )
    seen = page.evaluate("window.__seen")
    red = next(i for i, c in enumerate(seen) if "st-err" in c)
    assert "st-ok" in seen[-1] and red < len(seen) - 1, seen
    assert page.evaluate("window.__marker") == "no reload"


def test_restart_restarts_exactly_that_container(webapp: Webapp, browser: Any) -> None:
    """Restart (confirmed) stops and starts cache's own container: its start time changes,
    its id stays (as `docker compose restart`); no other container's id or start changes."""
    page = browser.new_page()
    page.goto(webapp.url)
    for service in ("db", "cache", "api"):
        wait_for(lambda s=service: _state(page, s) == "healthy", timeout=60, message=service)
    before = webapp.identity()
    page.once("dialog", lambda d: d.accept())
    page.click('#services tr[data-service="cache"] button[data-action="restart"]')
    wait_for(
        lambda: webapp.identity()["cache"][1] != before["cache"][1],
        timeout=30,
        message="cache restarted",
    )
    after = webapp.identity()
    assert after["cache"][0] == before["cache"][0]
    assert {s: v for s, v in after.items() if s != "cache"} == {
        s: v for s, v in before.items() if s != "cache"
    }


def test_a_wrong_or_missing_token_gets_403(webapp: Webapp, browser: Any) -> None:
    """Without the token, or with another, the page is refused."""
    base = webapp.url.split("/?")[0]
    page = browser.new_page()
    for url in (base + "/", base + "/?token=not-the-token", base + "/api/state"):
        response = page.goto(url)
        assert response is not None and response.status == 403, url


def test_a_spec_broken_on_disk_shows_its_error_over_the_last_good_state(
    webapp: Webapp, browser: Any
) -> None:
    """A broken envd.toml puts file:line across the top; the services stay listed; fixing it
    clears the banner."""
    page = browser.new_page()
    page.goto(webapp.url)
    page.wait_for_selector('#services tr[data-service="api"]')
    spec = webapp.directory / "envd.toml"
    good = spec.read_text()
    spec.write_text(good + "\n[services.api\n")
    try:
        page.wait_for_selector("#spec-error:not([hidden])", timeout=20000)
        assert "envd.toml:" in page.inner_text("#spec-error")
        assert page.locator("#services tbody tr").count() == 3
    finally:
        spec.write_text(good)
    page.wait_for_selector("#spec-error[hidden]", state="attached", timeout=20000)

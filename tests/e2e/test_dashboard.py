"""The dashboard in a real browser (Debian's chromium driven by Playwright, headless)
over a real daemon on the real engine: what it shows, how fast it follows the engine,
what its buttons do, and that another page or a missing token gets nothing."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser import chromium
from tests.helpers import BUSYBOX, describe, free_tcp_port, remove_by_hand, run_envd, wait_for

pytestmark = pytest.mark.usefixtures("busybox_image")

SPEC = """
[services.db]
image = "{image}"
command = ["sh", "-c", "printf 'db \\\\033[31mred alert\\\\033[0m ready\\\\n'; exec sleep 100000"]
stop_signal = "SIGKILL"

[services.web]
image = "{image}"
command = ["sh", "-c", "echo web up; exec httpd -f -p 8080"]
ports = ["127.0.0.1:{port}:8080"]
depends_on = {{ db = "started" }}
stop_signal = "SIGKILL"
"""


@pytest.fixture
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def dashboard(project_dir: Any, project_name: str) -> str:
    """An `envd up` of the two-service project; the dashboard URL it printed."""
    project_dir.write(SPEC.format(image=BUSYBOX, port=free_tcp_port()))
    up = run_envd(["up", "--timeout", "60"], cwd=project_dir, timeout=120)
    assert up.returncode == 0, describe(up)
    lines = [ln for ln in up.stderr.splitlines() if ln.startswith("Dashboard: ")]
    assert lines, describe(up)
    url: str = lines[0].removeprefix("Dashboard: ")
    assert url.startswith("http://127.0.0.1:") and "token=" in url
    ui = run_envd(["ui", "--no-browser"], cwd=project_dir)
    assert ui.returncode == 0 and ui.stdout.strip() == url, describe(ui)
    return url


def _row_state(page: Any, service: str) -> str:
    return str(page.inner_text(f'#services tr[data-service="{service}"] td.state'))


def test_the_page_shows_services_graph_logs_plan_and_events(browser: Any, dashboard: str) -> None:
    """Both services with containers and a port link, the graph with its labelled edge,
    coloured log lines with search, the plan and the timeline; the token leaves the URL."""
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(dashboard)
    assert "token=" not in page.url
    page.wait_for_selector('#services tr[data-service="web"]')
    wait_for(lambda: _row_state(page, "web") == "running", timeout=10, message="web running")
    assert page.locator('#services tr[data-service="web"] a').first.get_attribute(
        "href", timeout=5000
    )
    assert page.locator("#graph .node").count() == 2
    edge = page.locator('#graph .edge[data-from="web"][data-to="db"]')
    assert edge.text_content() == "started"
    page.wait_for_selector("#logs .line >> text=red alert", timeout=10000)
    assert page.locator("#logs .ansi-31").first.inner_text() == "red alert"
    page.fill("#log-search", "web up")
    wait_for(
        lambda: (
            page.locator("#logs .line:not(.hidden)").count() >= 1
            and all(
                "web up" in t for t in page.locator("#logs .line:not(.hidden)").all_inner_texts()
            )
        ),
        timeout=5,
        message="search filters the log",
    )
    page.wait_for_selector("#plan >> text=Nothing to do", timeout=10000)
    assert page.locator("#timeline li").count() > 0
    assert page.inner_text("#live") == "live"
    assert errors == []


def test_the_page_follows_the_engine(
    browser: Any, dashboard: str, docker_client: Any, project_name: str
) -> None:
    """A container removed by hand shows on the page's timeline, then the repair: the row
    lists the new container, running (how fast: bench/bench_dashboard.py, not a timing
    assertion here)."""
    page = browser.new_page()
    page.goto(dashboard)
    row = '#services tr[data-service="db"]'
    page.wait_for_selector(f"{row} code")
    wait_for(lambda: _row_state(page, "db") == "running", timeout=10, message="db running")
    old = docker_client.containers.get(f"{project_name}-db-1").id
    assert page.inner_text(f"{row} code") == old[:12]
    before = page.locator("#timeline li").count()
    remove_by_hand(docker_client, f"{project_name}-db-1")
    wait_for(
        lambda: page.locator("#timeline li").count() > before,
        timeout=10,
        message="an event reaches the page",
    )
    new = wait_for(
        lambda: _running_id(docker_client, f"{project_name}-db-1"),
        timeout=15,
        message="the daemon recreates db",
    )
    assert new != old
    wait_for(
        lambda: page.inner_text(f"{row} code") == new[:12] and _row_state(page, "db") == "running",
        timeout=10,
        message="the row shows the new container running",
    )


def _running_id(client: Any, name: str) -> str | None:
    import docker

    try:
        c = client.containers.get(name)
    except docker.errors.NotFound:
        return None
    return str(c.id) if c.status == "running" else None


def test_stop_and_start_from_the_page_are_confirmed_and_respected(
    browser: Any, dashboard: str, docker_client: Any, project_name: str, engine_is_podman: bool
) -> None:
    """Stop asks first (declined: nothing happens), then stops; drift repair leaves the
    service stopped through a reconcile; start runs it again."""
    page = browser.new_page()
    page.goto(dashboard)
    row = '#services tr[data-service="web"]'
    page.wait_for_selector(row)
    wait_for(lambda: _row_state(page, "web") == "running", timeout=10, message="web running")

    page.once("dialog", lambda d: d.dismiss())
    page.click(f'{row} button[data-action="stop"]')
    assert docker_client.containers.get(f"{project_name}-web-1").status == "running"

    page.once("dialog", lambda d: d.accept())
    page.click(f'{row} button[data-action="stop"]')
    wait_for(lambda: _row_state(page, "web") == "stopped", timeout=15, message="web stopped")
    # The row says "stopped" once no container of web runs (before, "stopping"). Podman
    # says "stopped" until its cleanup has run, then "exited" (docs/compatibility.md).
    exited = {"exited", "stopped"} if engine_is_podman else {"exited"}
    assert docker_client.containers.get(f"{project_name}-web-1").status in exited

    page.once("dialog", lambda d: d.accept())
    page.click("#reconcile")
    wait_for(
        lambda: (
            page.locator("#timeline li[data-kind=pass-done]").count() >= 1
            and "reconcile requested" in page.inner_text("#timeline")
        ),
        timeout=15,
        message="the reconcile pass",
    )
    assert docker_client.containers.get(f"{project_name}-web-1").status in exited

    page.once("dialog", lambda d: d.accept())
    page.click(f'{row} button[data-action="start"]')
    wait_for(lambda: _row_state(page, "web") == "running", timeout=15, message="web started")


def test_a_broken_spec_is_shown_over_the_last_good_state(
    browser: Any, dashboard: str, project_dir: Any
) -> None:
    """A spec that stops loading puts file:line:col across the top; the services stay shown."""
    page = browser.new_page()
    page.goto(dashboard)
    page.wait_for_selector('#services tr[data-service="web"]')
    (project_dir / "envd.toml").write_text(
        (project_dir / "envd.toml").read_text() + "\n[services.web\n"
    )
    page.wait_for_selector("#spec-error:not([hidden])", timeout=15000)
    assert "envd.toml:" in page.inner_text("#spec-error")
    assert page.locator('#services tr[data-service="web"]').count() == 1


def test_another_page_or_no_token_gets_nothing(browser: Any, dashboard: str) -> None:
    """A browser without the token gets 403 on the page; a page of another origin cannot
    read the state or post an action, even in a browser that holds the cookie."""
    base = dashboard.split("/?")[0]
    stranger = browser.new_page()
    response = stranger.goto(base + "/")
    assert response is not None and response.status == 403

    ctx = browser.new_context()
    owner = ctx.new_page()
    owner.goto(dashboard)
    owner.wait_for_selector("#services tr")
    other = ctx.new_page()
    other.goto("about:blank")
    result = other.evaluate(
        """async (base) => {
            const out = [];
            try { const r = await fetch(base + '/api/state', {credentials: 'include'}); out.push(r.status); }
            catch (e) { out.push('blocked'); }
            try { const r = await fetch(base + '/api/action', {method: 'POST', credentials: 'include',
                  headers: {'Content-Type': 'text/plain'}, body: '{"action":"stop","service":"web"}'});
                  out.push(r.status); }
            catch (e) { out.push('blocked'); }
            return out;
        }""",
        base,
    )
    assert all(r in ("blocked", 403) for r in result), result
    assert owner.locator('#services tr[data-service="web"] td.state').inner_text() == "running"

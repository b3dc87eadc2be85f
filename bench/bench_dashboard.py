"""How fast the dashboard follows the engine (issue 16: "a state change in the
engine reaches the page within 1 s").

One throw-away project (busybox ``web``) is brought up with ``envd up``; Debian's chromium (Playwright,
headless) opens the URL ``up`` printed. Then ``--rounds`` times:

* ``docker rm -f`` of the ``web`` container; the clock starts just before the
  call. **seen**: the page's timeline gains an entry (the daemon's first event
  about it, pushed over server-sent events); **repair**: the row shows a
  running container with a new id (the daemon recreated it and the page
  re-fetched its state).

Polling runs in the page itself (``requestAnimationFrame``), so the figures
are the page's, not Playwright's round trips. Medians, p95 and max are
printed as a markdown table. Compose v2 has no dashboard to compare with.

``--first-paint`` measures the page's load instead (issue 16: "first
contentful paint of the dashboard at 50 services <= 300 ms"): ``--services``
busybox services (default 50) are brought up, then ``--rounds`` times a fresh
browser context (no cache, no cookie) opens the URL ``up`` printed, token
and its redirect included. Per round: the browser's own
``first-contentful-paint`` entry, and the time until the services table shows
every row (polled in the page from its first script, deadline 30 s), both
from the navigation's start; beside them the page's response end and the
``/api/state`` fetch as the browser timed them. The first round (a browser
just started) is reported apart from the warm ones. The server's share is
timed from outside too (page, assets and ``/api/state`` over plain HTTP,
with their sizes).

    python bench/bench_dashboard.py --rounds 10
    python bench/bench_dashboard.py --first-paint --services 50 --rounds 7
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
IMAGE = "envd-local/busybox:latest"

SPEC = f"""
[services.web]
image = "{IMAGE}"
command = ["sleep", "100000"]
stop_signal = "SIGKILL"
"""

# Sets window.__bench to [ms until the timeline grew, ms until the row shows a
# running container with another id]; returns at once, so the removal happens
# while the page watches.
WATCH = """
([before, oldId]) => {
  window.__bench = undefined;
  const t0 = performance.now();
  let seen = null;
  const tick = () => {
    const now = performance.now();
    if (seen === null && document.querySelectorAll('#timeline li').length > before) seen = now - t0;
    const row = document.querySelector('#services tr[data-service="web"]');
    const state = row && row.querySelector('td.state').textContent;
    const code = row && row.querySelector('code');
    if (seen !== null && state === 'running' && code && code.textContent !== oldId) {
      window.__bench = [seen, now - t0];
      return;
    }
    if (now - t0 > 20000) { window.__bench = [seen, null]; return; }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}
"""


# Installed before any of the page's scripts: records, against the navigation's
# start, when the services table first holds every row.
ROWS_PROBE = """
(() => {
  const want = %d;
  const tick = () => {
    const now = performance.now();
    if (document.querySelectorAll('#services tbody tr[data-service]').length >= want) {
      window.__rows = now;
      return;
    }
    if (now > 30000) { window.__rows = null; return; }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();
"""

# What the browser itself timed for this load, in ms from the navigation's start.
PAINT_READ = """
() => {
  const fcp = performance.getEntriesByName('first-contentful-paint')[0];
  const nav = performance.getEntriesByType('navigation')[0];
  const api = performance.getEntriesByType('resource').find((r) => r.name.includes('/api/state'));
  return {
    fcp: fcp ? fcp.startTime : null,
    rows: window.__rows,
    html: nav ? nav.responseEnd : null,
    dcl: nav ? nav.domContentLoadedEventEnd : null,
    apiStart: api ? api.startTime : null,
    apiEnd: api ? api.responseEnd : null,
  };
}
"""


def multi_spec(services: int) -> str:
    return "".join(
        f'[services.s{i:03d}]\nimage = "{IMAGE}"\ncommand = ["sleep", "100000"]\n'
        'stop_signal = "SIGKILL"\n\n'
        for i in range(services)
    )


def server_side(url: str, repeat: int = 7) -> list[str]:
    """The server's share of a load, timed over plain HTTP: the page, its
    assets and the state the script fetches first (median of *repeat*)."""
    import http.cookiejar
    import urllib.request

    opener = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    opener.open(url, timeout=30).read()  # token -> cookie
    base = url.split("?", 1)[0].rstrip("/")
    lines = []
    for path in ("/", "/assets/app.js", "/assets/app.css", "/api/state"):
        times: list[float] = []
        size = 0
        for _ in range(repeat):
            t0 = time.perf_counter()
            size = len(opener.open(base + path, timeout=30).read())
            times.append((time.perf_counter() - t0) * 1000)
        lines.append(
            f"| `GET {path}` | {size / 1024:.1f} KiB | {statistics.median(times):.1f} ms"
            f" | {min(times):.1f}–{max(times):.1f} ms |"
        )
    return lines


def first_paint(args: argparse.Namespace, pdir: Path) -> int:
    from playwright.sync_api import sync_playwright

    pdir.joinpath("envd.toml").write_text(multi_spec(args.services))
    url = up_dashboard(pdir, 120)
    if url is None:
        return 1
    loads: list[tuple[float, dict[str, float | None]]] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=args.chromium,
            headless=True,
            args=["--no-sandbox", "--disable-background-networking"],
        )
        try:
            for _ in range(args.rounds):
                # no cache, no cookie; the probes below are evaluated strings
                context = browser.new_context(bypass_csp=True)
                context.add_init_script(ROWS_PROBE % args.services)
                page = context.new_page()
                page.goto(url)
                page.wait_for_function("window.__rows !== undefined", timeout=40000)
                page.wait_for_function(
                    "performance.getEntriesByName('first-contentful-paint').length > 0",
                    timeout=10000,
                )
                loads.append((os.getloadavg()[0], page.evaluate(PAINT_READ)))
                context.close()
        finally:
            browser.close()
    server = server_side(url)

    def fmt(values: list[float]) -> str:
        if not values:
            return "–"
        if len(values) == 1:
            return f"{values[0]:.0f} ms"
        return f"{statistics.median(values):.0f} ms ({min(values):.0f}–{max(values):.0f})"

    print(f"first paint, {args.services} services, {args.rounds} rounds")
    print("| measure | cold (round 1) | warm: median (min–max) |")
    print("|---|---|---|")
    for key, name in (
        ("fcp", "first contentful paint"),
        ("rows", f"services table shows all {args.services} rows"),
        ("html", "page's response end"),
        ("dcl", "DOMContentLoaded end"),
        ("apiStart", "`/api/state` fetch start"),
        ("apiEnd", "`/api/state` response end"),
    ):
        values = [float(v) for _, r in loads if (v := r.get(key)) is not None]
        cold = loads[0][1].get(key) if loads else None
        warm = [float(v) for _, r in loads[1:] if (v := r.get(key)) is not None]
        missing = len(loads) - len(values)
        print(
            f"| {name} | {fmt([float(cold)] if cold is not None else [])}"
            f" | {fmt(warm)}{f' ({missing} missing)' if missing else ''} |"
        )
    loadavgs = [la for la, _ in loads]
    print(f"load average during the rounds: {min(loadavgs):.2f}–{max(loadavgs):.2f}")
    print()
    print("| server, plain HTTP (7×) | size | median | min–max |")
    print("|---|---|---|---|")
    print("\n".join(server))
    return 0


def envd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("envd", path=str(REPO / ".venv" / "bin")) or "envd"
    return subprocess.run(
        [exe, *args], cwd=cwd, capture_output=True, text=True, timeout=180, check=False
    )


def up_dashboard(pdir: Path, timeout: int) -> str | None:
    """``envd up`` in ``pdir`` (its daemon serves the dashboard): the dashboard's URL, or
    None after printing why the up failed."""
    up = envd("up", "--timeout", str(timeout), cwd=pdir)
    if up.returncode != 0:
        print(up.stderr, file=sys.stderr)
        return None
    found = re.search(r"Dashboard: (\S+)", up.stderr)
    assert found, up.stderr
    return found.group(1)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    parser.add_argument(
        "--first-paint", action="store_true", help="measure the page's load (see above)"
    )
    parser.add_argument("--services", type=int, default=50, help="with --first-paint")
    parser.add_argument("--prefix", default="benchui", help="start of the project's name")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    import docker

    client = docker.from_env()
    root = Path(tempfile.mkdtemp(prefix="envd-bench-ui-"))
    project = f"{args.prefix}-{secrets.token_hex(3)}"
    pdir = root / project
    pdir.mkdir()
    (pdir / "envd.toml").write_text(SPEC)
    print(
        f"bench_dashboard: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())},"
        f" {platform.machine()}, {os.cpu_count()} CPU(s), load {os.getloadavg()[0]:.2f},"
        f" Docker {client.version()['Version']}",
        file=sys.stderr,
    )
    seen: list[float] = []
    row: list[float] = []
    if args.first_paint:
        try:
            return first_paint(args, pdir)
        finally:
            envd("down", cwd=pdir)
            shutil.rmtree(root, ignore_errors=True)
    try:
        url = up_dashboard(pdir, 60)
        if url is None:
            return 1
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=args.chromium, headless=True, args=["--no-sandbox"]
            )
            page = browser.new_page(bypass_csp=True)  # the probes below are evaluated strings
            page.goto(url)
            page.wait_for_selector('#services tr[data-service="web"] code')
            page.wait_for_selector("#live.live")
            for _ in range(args.rounds):
                page.wait_for_function(
                    "document.querySelector('#services tr[data-service=\"web\"] td.state')"
                    ".textContent === 'running'"
                )
                before = page.locator("#timeline li").count()
                old = page.inner_text('#services tr[data-service="web"] code')
                container = client.containers.get(f"{project}-web-1")
                page.evaluate(WATCH, [before, old])
                container.remove(force=True)
                page.wait_for_function("window.__bench !== undefined", timeout=30000)
                a, b = page.evaluate("window.__bench")
                if a is not None:
                    seen.append(float(a) / 1000)
                if b is not None:
                    row.append(float(b) / 1000)
            browser.close()
    finally:
        envd("down", cwd=pdir)
        shutil.rmtree(root, ignore_errors=True)
    print("| measure | median | p95 | max | rounds |")
    print("|---|---|---|---|---|")
    for name, values in (
        ("engine change → event on the page", seen),
        ("engine change → repaired container shown running", row),
    ):
        if values:
            print(
                f"| {name} | {statistics.median(values):.3f} s | {pct(values, 0.95):.3f} s"
                f" | {max(values):.3f} s | {len(values)}/{args.rounds} |"
            )
        else:
            print(f"| {name} | – | – | – | 0/{args.rounds} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

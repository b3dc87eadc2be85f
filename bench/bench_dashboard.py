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

    python bench/bench_dashboard.py --rounds 10
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


def envd(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("envd", path=str(REPO / ".venv" / "bin")) or "envd"
    return subprocess.run(
        [exe, *args], cwd=cwd, capture_output=True, text=True, timeout=180, check=False
    )


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    import docker

    client = docker.from_env()
    root = Path(tempfile.mkdtemp(prefix="envd-bench-ui-"))
    project = f"benchui-{secrets.token_hex(3)}"
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
    try:
        up = envd("up", "--timeout", "60", cwd=pdir)
        if up.returncode != 0:
            print(up.stderr, file=sys.stderr)
            return 1
        url = re.search(r"Dashboard: (\S+)", up.stderr)
        assert url, up.stderr
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=args.chromium, headless=True, args=["--no-sandbox"]
            )
            page = browser.new_page(bypass_csp=True)  # the probes below are evaluated strings
            page.goto(url.group(1))
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

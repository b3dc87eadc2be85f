#!/opt/envd/bin/python
"""HEALTHCHECK of the envd image.

Healthy when ``envd status --json``, run in the container's working directory
(the project), answers and reports the project converged: every service in
sync with the spec, none unhealthy, no orphans. Unhealthy when the spec is
invalid, the engine is unreachable, the daemon (if one runs) does not answer,
or the project drifted and is not repaired yet. One line of output says why;
Docker keeps it in ``docker inspect`` (State.Health.Log).
"""

import json
import subprocess
import sys


def main() -> int:
    proc = subprocess.run(["envd", "status", "--json"], stdout=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        print(f"envd status exited {proc.returncode}")
        return 1
    report = json.loads(proc.stdout)
    bad = [
        f"{s['name']}: " + ("; ".join(s["drift"]) or f"health {s['health']}")
        for s in report.get("services", [])
        if not s["in_sync"] or s["health"] == "unhealthy"
    ]
    bad += [f"orphan {o['name']}" for o in report.get("orphans", [])]
    if report.get("engine_error"):
        bad.append(report["engine_error"])
    if bad:
        print("not converged: " + " | ".join(bad))
        return 1
    n = len(report.get("services", []))
    print(f"converged: {n} service(s) of project {report.get('project')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

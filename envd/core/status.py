"""``envd status``: desired vs actual per service, from one observation."""

from __future__ import annotations

from typing import Any

from envd.core.desired import DesiredProject
from envd.core.observed import Observed
from envd.core.plan import Plan


def project_status(desired: DesiredProject, observed: Observed, plan: Plan) -> dict[str, Any]:
    by_service = observed.by_service()
    services: list[dict[str, Any]] = []
    for name in sorted(desired.services):
        svc = desired.services[name]
        containers = sorted(by_service.get(name, []), key=lambda c: c.replica)
        running = [c for c in containers if c.status == "running"]
        healths = {c.health for c in running if c.health}
        health = (
            "unhealthy"
            if "unhealthy" in healths
            else "starting"
            if "starting" in healths
            else "healthy"
            if healths
            else None
        )
        drift = [
            f"{a.kind}: {a.reason}"
            for a in plan.for_service(name)
            if a.mutating or a.kind == "pending"
        ]
        actual = f"{len(running)} running"
        exited = [c for c in containers if c.status == "exited"]
        if exited:
            codes = ",".join(str(c.exit_code) for c in exited)
            actual += f", {len(exited)} exited ({codes})"
        services.append(
            {
                "name": name,
                "desired_replicas": svc.replicas,
                "actual": actual,
                "running": len(running),
                "health": health,
                "image": svc.image_ref,
                "containers": [
                    {
                        "id": c.id[:12],
                        "name": c.name,
                        "status": c.status,
                        "health": c.health,
                        "exit_code": c.exit_code,
                        "replica": c.replica,
                    }
                    for c in containers
                ],
                "drift": drift,
                "in_sync": not drift,
            }
        )
    orphans = [
        {"id": c.id[:12], "name": c.name, "service": c.service, "status": c.status}
        for c in observed.containers
        if c.service not in desired.services
    ]
    return {
        "project": desired.project,
        "environment": desired.environment,
        "services": services,
        "orphans": orphans,
        "in_sync": all(s["in_sync"] for s in services) and not orphans,
    }

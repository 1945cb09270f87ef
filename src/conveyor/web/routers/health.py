"""Probes and metrics, without authentication: ``/health``, ``/ready``, ``/metrics``."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from conveyor import intake
from conveyor.web.dependencies import BlobsDep, EngineDep, ReadSessionDep, StateDep
from conveyor.web.metrics import CONTENT_TYPE
from conveyor.web.schemas import HealthOut, ReadyOut

router = APIRouter(tags=["health"])


@router.get("/health")
async def health() -> HealthOut:
    """The process is up (it answers); says nothing about the database."""
    return HealthOut(status="ok")


@router.get(
    "/ready",
    response_model=ReadyOut,
    responses={503: {"description": "A dependency is down; `checks` says which."}},
)
def ready(engine: EngineDep, blobs: BlobsDep) -> Response:
    """Database reachable, migrations at head, blob store reachable."""
    readiness = intake.check_readiness(engine=engine, blobs=blobs)
    if readiness.is_ready:
        return JSONResponse(ReadyOut(status="ready", checks=readiness.checks).model_dump())
    failing = ", ".join(f"{name}: {state}" for name, state in readiness.checks.items() if state != "ok")
    return JSONResponse(
        {
            "error": {"code": "not_ready", "message": failing},
            "status": "not ready",
            "checks": readiness.checks,
        },
        status_code=503,
    )


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE: {}}}})
def metrics(state: StateDep, session: ReadSessionDep) -> Response:
    """Prometheus text format: jobs by status, queue depth, HTTP requests by route."""
    state.metrics.observe_queue(intake.queue_stats(session))
    return Response(state.metrics.render(), media_type=CONTENT_TYPE)

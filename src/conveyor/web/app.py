"""The FastAPI application factory: engine, blob store, routers, error handlers, metrics."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

import conveyor
from conveyor.batching.links import batch_links
from conveyor.settings import Settings
from conveyor.store import migrate
from conveyor.store.blobs import blob_store_for
from conveyor.store.database import create_database_engine, read_session_factory, session_factory
from conveyor.web import errors
from conveyor.web.dependencies import AppState
from conveyor.web.metrics import Metrics, MetricsMiddleware
from conveyor.web.routers import (
    batches,
    documents,
    events,
    health,
    jobs,
    keys,
    queue,
    reports,
    review,
    uploads,
)
from conveyor.web.routers import settings as settings_routes

DESCRIPTION = """Document intake: upload files, follow their jobs, read records and findings.

Authenticate with `Authorization: Bearer <api key>`. Roles, each allowed what the previous ones are:
viewer (read), submitter (submit, cancel, retry), reviewer (review), admin (settings, keys, delete,
legal hold, cleanup). Errors are `{"error": {"code", "message"}}`.
"""


def create_app(settings: Settings) -> FastAPI:
    """Build the app. Nothing connects until startup, which migrates the database to head."""
    engine = create_database_engine(settings.resolved_database_url)
    blobs = blob_store_for(settings)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(migrate.upgrade, engine)
        try:
            yield
        finally:
            await run_in_threadpool(engine.dispose)

    app = FastAPI(
        title="Conveyor",
        version=conveyor.__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.conveyor = AppState(
        settings=settings,
        engine=engine,
        sessions=session_factory(engine),
        read_sessions=read_session_factory(engine),
        blobs=blobs,
        metrics=metrics,
        links=functools.cache(lambda: batch_links(session_factory(engine), settings)),
    )
    errors.install(app)
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    for router in (
        uploads.router,
        jobs.router,
        reports.router,
        documents.router,
        queue.router,
        review.router,
        settings_routes.router,
        keys.router,
        batches.router,
        events.router,
        health.router,
    ):
        app.include_router(router)
    return app


def app_from_environment() -> FastAPI:
    """For ``uvicorn --factory conveyor.web.app:app_from_environment`` (settings from CONVEYOR_*)."""
    return create_app(Settings())

"""create_app: the one place the server is wired together."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse
from starlette.requests import Request

from models.settings import EngineSettings
from server.accounts.deps import ANY_USER, RequireRoles
from server.accounts.tables import Role
from server.accounts.throttle import ThrottlePolicy
from server.audit import service as audit
from server.audit.refusals import RefusalCounter, write_summary
from server.checks.evidence import CropEncoder, CropLimits, KeyFrameLimits
from server.db import WriteGate, make_engine, upgrade
from server.devices.deps import get_current_device, write_refusal_summary
from server.devices.service import RateLimiter
from server.errors import install_error_handlers
from server.http import HttpGuard
from server.places import service as place_service
from server.settings import ServerSettings

# Routes reachable without a user or device credential; everything else declares one (tested).
PUBLIC_ROUTE_NAMES = frozenset({"health", "sign_in", "pair", "console_sign_in_form", "console_sign_in",
                                "root", "bedside_root", "bedside_shell", "bedside_service_worker", "bedside_manifest"})
# The API description maps every route and parameter: for administrators, except in the demo.
ADMINS = RequireRoles(Role.ADMIN)
log = logging.getLogger("uvicorn.error")  # the logger uvicorn shows at its default level


def create_app(settings: ServerSettings | None = None, engine_settings: EngineSettings | None = None,
               *, migrate: bool = True) -> FastAPI:
    settings = settings or ServerSettings()
    engine = make_engine(settings.resolved_database_url)
    audit.use_key(engine, settings.audit_secret)
    if migrate:
        upgrade(engine)

    engine_settings = engine_settings or EngineSettings.load()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from server.scheduler import checkpoint_job, release_leadership, start_scheduler

        log.warning(settings.startup_message())
        started = (start_scheduler(engine, settings, engine_settings, app.state.write_gate)
                   if settings.run_scheduler else None)
        yield
        counts = app.state.refusals.flush()
        if counts:
            write_refusal_summary(engine, app.state.write_gate, counts)
        counts = app.state.sign_in_refusals.flush()
        if counts:
            write_summary(engine, app.state.write_gate, counts, actor="system", action="sign_in.refused")
        if started is not None:
            scheduler, lock = started
            scheduler.shutdown(wait=True)
            checkpoint_job(engine, settings)  # the head at shutdown, so a later truncation shows
            release_leadership(lock)
        engine.dispose()

    app = FastAPI(title="bedcheck", version="0.1.0", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.settings = settings
    app.state.engine_settings = engine_settings
    app.state.engine = engine
    app.state.write_gate = WriteGate(engine)
    app.state.rate_limiter = RateLimiter(settings.device_rate_per_s, settings.device_rate_burst)
    app.state.refusals = RefusalCounter()
    app.state.sign_in_policy = ThrottlePolicy.from_settings(settings)
    app.state.sign_in_refusals = RefusalCounter(settings.sign_in_audit_interval_s)
    app.state.crop_encoder = CropEncoder(
        engine_settings, CropLimits(settings.max_crop_bytes, settings.max_crop_side_px),
        accept_synthetic=settings.accepts_synthetic_embeddings,
        scene_limits=place_service.scene_limits(settings, engine_settings),
        key_frame_limits=KeyFrameLimits(settings.key_frame_max_bytes, settings.key_frame_max_side_px))
    # Body size counted as it streams (chunked too) and time bounded; no-store on every answer.
    app.add_middleware(HttpGuard, max_bytes=settings.max_body_bytes, body_timeout_s=settings.body_timeout_s)
    if settings.trusted_proxies.strip():
        # uvicorn's own middleware, with our list instead of its default (127.0.0.1, i.e. anyone on the host);
        # uvicorn_config turns its built-in copy off.
        from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=[
            h.strip() for h in settings.trusted_proxies.split(",") if h.strip()])
    install_error_handlers(app)
    _mount(app)
    _mount_docs(app, public=settings.environment == "demo")
    return app


def create_app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory`: settings from the environment (BEDCHECK_*)."""
    return create_app(ServerSettings())


def _mount(app: FastAPI) -> None:
    from enrollment.routes import router as enrollment_router
    from server.accounts.routes import router as auth_router
    from server.admissions.leave_routes import router as leave_router
    from server.admissions.routes import registry_router
    from server.admissions.routes import router as roster_router
    from server.bedside.routes import device_router as bedside_device_router
    from server.bedside.routes import inspections_router, mount_bedside
    from server.campaigns.routes import router as campaigns_router
    from server.checks.routes import router as checks_router
    from server.console.mount import mount_console
    from server.devices.routes import admin_router, device_router, pairing_router
    from server.flags.routes import router as flags_router
    from server.hospitals.routes import router as beds_router
    from server.places.routes import admin_router as places_admin_router
    from server.places.routes import device_router as places_device_router
    from server.reports.routes import router as reports_router

    user = [Depends(ANY_USER)]
    app.include_router(auth_router)
    app.include_router(pairing_router)
    device = [Depends(get_current_device)]
    app.include_router(device_router, dependencies=device)
    app.include_router(checks_router, dependencies=device)
    app.include_router(places_device_router, dependencies=device)
    app.include_router(bedside_device_router, dependencies=device)
    app.include_router(admin_router, dependencies=user)
    app.include_router(places_admin_router, dependencies=user)
    app.include_router(campaigns_router, dependencies=user)
    app.include_router(flags_router, dependencies=user)
    app.include_router(roster_router, dependencies=user)
    app.include_router(registry_router, dependencies=user)
    app.include_router(leave_router, dependencies=user)
    app.include_router(reports_router, dependencies=user)
    app.include_router(inspections_router, dependencies=user)
    app.include_router(beds_router, dependencies=user)
    app.include_router(enrollment_router, dependencies=user)
    mount_console(app)
    mount_bedside(app)

    @app.get("/health", tags=["health"])
    def health() -> dict[str, str]:
        return {"status": "ok"}


def _mount_docs(app: FastAPI, *, public: bool) -> None:
    docs_access = [] if public else [Depends(ADMINS)]

    @app.get("/openapi.json", include_in_schema=False, dependencies=docs_access)
    def openapi_schema() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=docs_access)
    def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="bedcheck API")

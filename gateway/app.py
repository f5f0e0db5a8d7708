"""The HTTP API (`backdrop gateway`): upload, submit, watch, cancel, download.

Every route is a thin layer over jobstore.TrustedClient: the gateway only writes
a JobRequest and enqueues it, as a Python producer does.
"""

from typing import Any

from fastapi import FastAPI

from gateway import metrics
from gateway.dependencies import Services
from gateway.errors import HANDLERS
from gateway.probe_port import ProbePortHealthOnly
from gateway.routes import jobs, page, styles, uploads
from gateway.security_headers import SecurityHeaders
from gateway.settings import GatewaySettings, get_settings


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    """The app for these settings (the environment's by default); tests make
    their own and call it in-process or over HTTP."""
    settings = settings or get_settings()
    # /docs and /redoc load Swagger UI and ReDoc from a CDN: not in production.
    # The OpenAPI document itself (/openapi.json) is served always.
    docs: dict[str, Any] = {"docs_url": None, "redoc_url": None}
    app = FastAPI(title="Backdrop", version="1", description=__doc__,
                  **(docs if settings.environment == "production" else {}))  # fmt: skip
    services = Services(settings)
    app.state.services = services
    for exception, handler in HANDLERS.items():
        app.add_exception_handler(exception, handler)
    for routes in (page, uploads, jobs, styles):
        app.include_router(routes.router)
    page.mount_static(app)
    metrics.install(app, lambda: services.client.redis, settings.gateway.metrics_token)
    app.add_middleware(SecurityHeaders, settings=settings)
    app.add_middleware(ProbePortHealthOnly, port=settings.gateway.probe_port)
    return app


app = create_app()

"""What the routes are given (FastAPI `Depends`): the app's settings, its
TrustedClient and the caller's tenant. They hang off `app.state`, so a test
builds an app with its own settings and calls it in-process or over HTTP."""

from collections import Counter
from collections.abc import Callable
from functools import cached_property
from typing import Annotated

from fastapi import Depends, Header, Request
from fastapi.concurrency import run_in_threadpool

from api_contracts.errors import BackdropError, ErrorCode
from gateway.settings import GatewaySettings
from jobstore.tenants import Tenants
from jobstore.trusted_client import TrustedClient


class Services:
    """One per app. The client is made on first use: rendering the OpenAPI
    document needs no credentials."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.settings = settings
        part = settings.gateway
        self.streams = TenantSlots(part.events_per_tenant, "open event streams",
                                   "poll GET /v1/jobs/{job_id} or give a callback_url",
                                   total=part.events_total)  # fmt: skip
        self.uploading = TenantSlots(part.uploads_in_flight_per_tenant, "uploads at once",
                                     "wait for one to finish")  # fmt: skip
        self.json_bodies = TenantSlots(part.json_bodies_per_tenant, "requests being read at once",
                                       "wait for one to finish")  # fmt: skip
        self.body_bytes = BodyBytes(part.body_bytes_in_flight)

    @cached_property
    def client(self) -> TrustedClient:
        return TrustedClient(self.settings.client_config())

    def authenticate(self, api_key: str | None) -> str:
        """The key's tenant; 401 without a known key, 403 for a revoked one."""
        return Tenants(self.client.redis).authenticate(api_key).name


class TenantSlots:
    """What one tenant holds at once in this process (open event streams,
    uploads being read): taken by a route and given back when its stream or
    request ends, both on the event loop's thread."""

    def __init__(self, per_tenant: int, what: str, instead: str, total: int | None = None) -> None:
        self.per_tenant, self.what, self.instead, self.total = per_tenant, what, instead, total
        self.open: Counter[str] = Counter()

    def take(self, tenant: str) -> Callable[[], None]:
        """A slot, or 429 (the tenant's) or 503 (the gateway's, `total`); the returned
        call gives it back (once, however often called)."""
        if self.open[tenant] >= self.per_tenant:
            raise BackdropError(
                ErrorCode.QUOTA_EXCEEDED,
                f"at most {self.per_tenant} {self.what} per tenant: {self.instead}",
                retry_after=5,
            )
        if self.total is not None and self.open.total() >= self.total:  # many keys together
            raise BackdropError(
                ErrorCode.SERVICE_BUSY,
                f"at most {self.total} {self.what} on this gateway: {self.instead}",
                retry_after=5,
            )
        self.open[tenant] += 1

        def give_back() -> None:
            self.open[tenant] -= 1
            if self.open[tenant] <= 0:
                del self.open[tenant]

        return once(give_back)


class BodyBytes:
    """Request bodies this process holds at once, all tenants together: the
    per-tenant slots bound one key, this bounds many keys' stalled bodies
    (each up to its limit) to the process's memory. On the event loop's thread."""

    def __init__(self, total: int) -> None:
        self.total, self.held = total, 0

    def take(self, size: int) -> Callable[[], None]:
        """Room for `size` bytes, or 503; the returned call gives it back (once)."""
        if self.held + size > self.total:
            raise BackdropError(ErrorCode.SERVICE_BUSY,
                                "the gateway is reading as many request bodies as it holds: "
                                "try again in a few seconds", retry_after=5)  # fmt: skip
        self.held += size

        def give_back() -> None:
            self.held -= size

        return once(give_back)


def once(give_back: Callable[[], None]) -> Callable[[], None]:
    """`give_back` that acts on its first call only, however often it is called."""
    held = [True]

    def first_only() -> None:
        if held:
            held.clear()
            give_back()

    return first_only


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def api_key(authorization: str | None, x_api_key: str | None) -> str | None:
    """From `Authorization: Bearer <key>`, else `X-API-Key`."""
    if authorization and authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    return x_api_key


def trusted_client(services: Annotated[Services, Depends(services_of)]) -> TrustedClient:
    return services.client


def gateway_settings(services: Annotated[Services, Depends(services_of)]) -> GatewaySettings:
    return services.settings


async def tenant(
    request: Request,
    services: Annotated[Services, Depends(services_of)],
    authorization: Annotated[str | None, Header()] = None,
    x_api_key: Annotated[str | None, Header()] = None,
) -> str:
    """The caller's tenant. Routes with a body were checked before their body
    was read (gateway.guard); the others are checked here."""
    known: str | None = getattr(request.state, "tenant", None)
    if known is not None:
        return known
    return await run_in_threadpool(services.authenticate, api_key(authorization, x_api_key))


Caller = Annotated[str, Depends(tenant)]
Client = Annotated[TrustedClient, Depends(trusted_client)]
Settings = Annotated[GatewaySettings, Depends(gateway_settings)]

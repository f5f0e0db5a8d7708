"""Headers on every answer, the page's and the API's: a Content-Security-Policy
that runs only the gateway's own scripts (the page has no inline script or
handler) and shows images only from itself, the browser's own blobs (the
picked photo) and the object store (thumbnails and results, presigned);
no framing (clickjacking); no MIME sniffing; no referrer beyond the origin.
The API's answers are never stored by a cache: a status carries presigned
URLs, and a shared cache does not take X-API-Key for authentication, so it
could serve one tenant's answer to anyone asking the same address."""

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.settings import GatewaySettings

# Swagger UI (/docs, development only) loads its script and style from this CDN.
DOCS_CDN = "https://cdn.jsdelivr.net"
DOCS_PATHS = ("/docs", "/redoc")


def storage_origin(settings: GatewaySettings) -> str:
    """Where presigned URLs point: the address browsers reach the store at."""
    storage = settings.storage
    scheme = "https" if storage.secure else "http"
    return f"{scheme}://{storage.public_endpoint or storage.endpoint}"


def policy(images_from: str, docs: bool = False) -> str:
    scripts = f"'self' {DOCS_CDN} 'unsafe-inline'" if docs else "'self'"
    styles = f"'self' {DOCS_CDN}" if docs else "'self'"
    return "; ".join([
        "default-src 'none'", f"script-src {scripts}", f"style-src {styles}",
        f"img-src 'self' blob: {'data: ' if docs else ''}{images_from}",
        "connect-src 'self'", "font-src 'self'", "base-uri 'none'", "form-action 'none'",
        "frame-ancestors 'none'",
    ])  # fmt: skip


class SecurityHeaders:
    def __init__(self, app: ASGIApp, settings: GatewaySettings) -> None:
        self.app = app
        origin = storage_origin(settings)
        self.headers = {
            "Content-Security-Policy": policy(origin),
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",  # frame-ancestors for browsers without CSP 2
            "Referrer-Policy": "strict-origin-when-cross-origin",
        }
        # Swagger UI's page is one inline script: only there, only in development.
        self.docs_policy = policy(origin, docs=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        docs = scope["path"] in DOCS_PATHS
        api = scope["path"].startswith("/v1/")

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
                if docs:
                    headers["Content-Security-Policy"] = self.docs_policy
                if api:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, with_headers)

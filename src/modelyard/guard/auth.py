"""Authentication and authorization of HTTP requests.

Every route that is not a health probe declares the access it needs with
``requires(...)``; the key comes from ``Authorization: Bearer`` (or ``api-key``), or from
the console's session cookie.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request
from fastapi.params import Depends as DependsParam

from modelyard.errors import ModelyardError
from modelyard.guard.keyring import AuthenticationFailed, KeyRing, Principal
from modelyard.guard.roles import Access, allows
from modelyard.guard.sessions import COOKIE, SessionSigner

REQUIRED_ACCESS = "modelyard_required_access"


class Forbidden(ModelyardError):
    status = 403
    code = "permission_denied"

    def __init__(self, message: str) -> None:
        super().__init__(message)


class LoginRequired(AuthenticationFailed):
    """A console page was asked for without a session: the console redirects to login."""


def presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header:
        scheme, _, value = header.partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    return request.headers.get("api-key") or None


def authenticate(
    request: Request, ring: KeyRing, signer: SessionSigner, *, page: bool = False
) -> Principal:
    """The principal of a request, or AuthenticationFailed (LoginRequired for pages)."""
    now = datetime.now(UTC)
    key = presented_key(request)
    if key is not None:
        return ring.authenticate(key, now)
    cookie = request.cookies.get(COOKIE)
    if cookie:
        key_id = signer.key_id_of(cookie)
        record = ring.record(key_id) if key_id else None
        if record is not None and signer.verify(cookie, record, now):
            return ring.principal(record, now)
    if page:
        raise LoginRequired("Log in with an API key to use the console.", code="login_required")
    raise AuthenticationFailed(
        "You didn't provide an API key. Send it as 'Authorization: Bearer my_…' "
        "(an admin creates keys with `modelyard keys create`).",
        code="missing_api_key",
    )


def _context(request: Request) -> tuple[KeyRing, SessionSigner]:
    guard = request.app.state.services.guard
    return guard.keyring, guard.signer


def requires(*accesses: Access, page: bool = False) -> DependsParam:
    """A dependency admitting keys whose role holds any of ``accesses``; the principal is
    left on ``request.state.principal``."""
    needed = frozenset(accesses)

    async def dependency(request: Request) -> Principal:
        return authorize(request, needed, page=page)

    setattr(dependency, REQUIRED_ACCESS, needed)
    return DependsParam(dependency)


def authorize(request: Request, needed: frozenset[Access], *, page: bool = False) -> Principal:
    """The principal of a request whose key's role holds one of ``needed`` (Forbidden
    otherwise), left on ``request.state.principal``: what ``requires`` checks, callable
    from handlers that bypass FastAPI's dependencies (the serving fast path)."""
    ring, signer = _context(request)
    principal = authenticate(request, ring, signer, page=page)
    # Set before the role check: a refused but authenticated request is still logged.
    request.state.principal = principal
    if not allows(principal.role, needed):
        raise Forbidden(
            f"This API key's role ({principal.role}) may not do this; it needs "
            f"{' or '.join(sorted(needed))} access."
        )
    return principal


def actor_of(principal: Principal) -> str:
    """How the audit trail and histories name the caller."""
    return f"key:{principal.key_id} ({principal.name})"


def principal_of(request: Request) -> Principal:
    principal: Principal = request.state.principal
    return principal

"""Every failure as ``{"error": {"status", "message"}}`` with its HTTP status, never a traceback.

Clients (the web page, scripts, the fuzzer) get one shape for all errors: FastAPI's validation errors, Starlette's
404/405, rsvlm's own one-line ``RsvlmError`` (the request asked for something impossible: 422), the server's
``ApiError`` with a chosen status, and anything unexpected as a generic 500 whose traceback goes to the server
log only (Starlette re-raises it there).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from rsvlm.errors import RsvlmError

if TYPE_CHECKING:
    from fastapi import FastAPI, Request
    from starlette.responses import JSONResponse

log = logging.getLogger("rsvlm.serve")

STATUS_TEXT = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    405: "method not allowed",
    413: "request too large",
    415: "unsupported file type",
    422: "invalid request",
    429: "too many jobs queued",
    500: "internal server error",
    503: "not available",
}


class ApiError(Exception):
    """A refusal with its HTTP status and a one-line message naming the thing and the fix."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error_body(status: int, message: str) -> dict[str, Any]:
    return {"error": {"status": status, "message": message}}


def error_response(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    from starlette.responses import JSONResponse

    return JSONResponse(error_body(status, message), status_code=status, headers=headers)


def validation_message(errors: Any) -> str:
    """FastAPI's list of validation errors as one line: ``labels: field required; top: …``."""
    parts = []
    for error in list(errors)[:5]:
        loc = [str(p) for p in error.get("loc", ()) if p not in ("body", "query", "path", "header", "cookie")]
        where = ".".join(loc) or "request"
        parts.append(f"{where}: {str(error.get('msg', 'invalid')).lower()}")
    return "; ".join(parts) or "invalid request (see /openapi.json for the fields)"


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the one JSON shape."""
    from fastapi.exceptions import RequestValidationError
    from starlette.exceptions import HTTPException

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        status = exc.status_code
        if status == 404 and exc.detail == "Not Found":
            message = f"no such route: {request.method} {request.url.path} (see /openapi.json for the routes)"
        elif status == 405:
            message = f"{request.method} is not allowed on {request.url.path} (see /openapi.json for the methods)"
        else:
            message = str(exc.detail) if exc.detail else STATUS_TEXT.get(status, "error")
        return error_response(status, message, headers=dict(exc.headers or {}))

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(422, validation_message(exc.errors()))

    async def on_api(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.message)

    async def on_rsvlm(request: Request, exc: Exception) -> JSONResponse:
        return error_response(422, str(exc).splitlines()[0] if str(exc) else "invalid request")

    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
        return error_response(500, "internal server error (the server log has the details)")

    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(ApiError, on_api)
    app.add_exception_handler(RsvlmError, on_rsvlm)
    app.add_exception_handler(Exception, on_crash)

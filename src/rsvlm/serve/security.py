"""What stands between a request and the machine: token, origin, body size, file type, pixel count, paths.

- ``Guard`` (ASGI middleware, outermost of ours) answers before any route runs: the token on every path when one is
  configured, a loopback ``Host`` when none is (a web page cannot reach a token-less server through DNS rebinding),
  no cross-origin requests (a foreign page cannot post forms to it), and the request-body limit, from
  ``Content-Length`` at once and by counting streamed bytes.
- Uploads are typed by their first bytes, never by name or ``Content-Type`` (JPEG, PNG, TIFF, JPEG 2000 only), and
  an image read whole is refused from its header when it holds too many pixels, before anything is decoded.
- A path in a request names a file under the configured roots, checked after every symlink and ``..`` is resolved.
"""

from __future__ import annotations

import hmac
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO
from urllib.parse import parse_qs, urlsplit

from rsvlm.serve.config import ServeConfig, is_loopback
from rsvlm.serve.errors import ApiError, error_body

if TYPE_CHECKING:
    from starlette.datastructures import Headers
    from starlette.types import ASGIApp, Message, Receive, Scope, Send

COOKIE = "rsvlm_token"
PAGE_PATHS = frozenset({"/"})

SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", ".jpg"),
    (b"\x89PNG\r\n\x1a\n", ".png"),
    (b"II*\x00", ".tif"),
    (b"MM\x00*", ".tif"),
    (b"II+\x00", ".tif"),  # BigTIFF
    (b"MM\x00+", ".tif"),
    (b"\x00\x00\x00\x0cjP  \r\n\x87\n", ".jp2"),
    (b"\xff\x4f\xff\x51", ".j2k"),  # a bare JPEG 2000 codestream
)
"""Magic numbers of the accepted image types and the suffix each is stored under (which picks the reader)."""

HARDENING = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; object-src 'none'; base-uri 'none'; form-action 'self'; "
        b"frame-ancestors 'none'",
    ),
]
"""Headers on every response, refusals included: no type guessing, no framing by other sites, no leaked URLs, and
a content security policy under which the browser itself loads nothing from another host (the web app ships every
asset) and runs no inline script."""

UNAUTHORIZED_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>rsvlm serve: token needed</title></head>
<body><h1>This rsvlm server needs its token</h1>
<p>Open <code>/?token=YOUR_TOKEN</code> once (the page then keeps it in a cookie), or send the header
<code>Authorization: Bearer YOUR_TOKEN</code>. The token is the one given to <code>rsvlm serve --token</code>
(or the <code>RSVLM_TOKEN</code> environment variable).</p></body></html>
"""


def sniff(head: bytes) -> str | None:
    """The suffix of the image type ``head`` (the first bytes of a file) starts with, or None."""
    for magic, suffix in SIGNATURES:
        if head.startswith(magic):
            return suffix
    return None


def token_matches(supplied: str | None, token: str) -> bool:
    return supplied is not None and hmac.compare_digest(supplied.encode("utf-8"), token.encode("utf-8"))


def _host_name(host: str) -> str:
    """``127.0.0.1:8000`` → ``127.0.0.1``, ``[::1]:8000`` → ``::1``."""
    if host.startswith("["):
        return host[1:].split("]", 1)[0]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def too_large(limit: int) -> str:
    return (
        f"request body over the {limit / 1024**2:g} MiB limit (send a smaller file, or start the server with a "
        "larger --max-upload-mb)"
    )


class Guard:
    """ASGI middleware: host, origin, token and body-size checks on every HTTP request, before any route."""

    def __init__(self, app: ASGIApp, config: ServeConfig) -> None:
        self.app = app
        self.config = config

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        from starlette.datastructures import Headers
        from starlette.exceptions import HTTPException

        async def hardened(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HARDENING]
            await send(message)

        headers = Headers(scope=scope)
        refusal = self._refusal(scope, headers)
        if refusal is not None:
            await refusal(scope, receive, hardened)
            return
        limit = self.config.limits.max_body_bytes
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            from starlette.responses import JSONResponse

            response = JSONResponse(error_body(413, too_large(limit)), 413, headers={"Connection": "close"})
            await response(scope, receive, hardened)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, too_large(limit))  # a chunked body without Content-Length (FastAPI passes
                # an HTTPException raised while it reads the body through to the handlers)
            return message

        await self.app(scope, counted, hardened)

    def _refusal(self, scope: Scope, headers: Headers) -> ASGIApp | None:
        """The response that refuses this request, or None to let it through."""
        from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse

        token = self.config.token
        host = headers.get("host", "")
        if token is None and host and not is_loopback(_host_name(host)):
            message = f"Host {host!r} refused: this token-less server answers only to 127.0.0.1 or localhost"
            return JSONResponse(error_body(403, message), 403)
        origin = headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != host:
            message = f"cross-origin request from {origin!r} refused (use the page this server serves)"
            return JSONResponse(error_body(403, message), 403)
        if token is None:
            return None
        path = scope["path"]
        page = path in PAGE_PATHS
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        if page and "token" in query and scope["method"] == "GET":
            if not token_matches(query["token"][0], token):
                return HTMLResponse(UNAUTHORIZED_PAGE, 401, headers={"WWW-Authenticate": "Bearer"})
            redirect = RedirectResponse("/", status_code=303)
            redirect.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/")
            return redirect
        auth = headers.get("authorization", "")
        scheme, _, supplied = auth.partition(" ")
        bearer = supplied.strip() if scheme.lower() == "bearer" else None
        cookie = _cookie(headers.get("cookie", ""))
        if token_matches(bearer, token) or token_matches(cookie, token):
            return None
        if page:
            return HTMLResponse(UNAUTHORIZED_PAGE, 401, headers={"WWW-Authenticate": "Bearer"})
        what = "wrong token" if bearer is not None or cookie is not None else "token missing"
        message = f"{what}: send the header 'Authorization: Bearer TOKEN' (the token given to rsvlm serve --token)"
        return JSONResponse(error_body(401, message), 401, headers={"WWW-Authenticate": "Bearer"})


def _cookie(header: str) -> str | None:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE:
            return value
    return None


def display_name(filename: str | None, fallback: str = "upload") -> str:
    """A client's file name for display only (never a path): its last component, printable, at most 100 chars."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in name if c.isprintable()).strip()[:100]
    return name or fallback


def store_upload(source: BinaryIO, folder: Path, stem: str | None = None) -> Path:
    """Copy an uploaded file into ``folder`` under a fresh name with the suffix its content says (415 otherwise)."""
    head = source.read(16)
    suffix = sniff(head)
    if suffix is None:
        raise ApiError(415, "the upload is not a JPEG, PNG, TIFF or JPEG 2000 image (checked by its content)")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem or secrets.token_hex(8)}{suffix}"
    with path.open("wb") as out:
        out.write(head)
        shutil.copyfileobj(source, out, 1024**2)
    return path


def check_pixels(path: Path, max_pixels: int) -> tuple[int, int]:
    """Width and height from the image's header; 413 over ``max_pixels``, 422 when the header is unreadable."""
    width, height = _header_size(path)
    if width * height > max_pixels:
        raise ApiError(
            413,
            f"the image is {width}x{height} = {width * height:,} pixels, over the {max_pixels:,}-pixel limit "
            "(send a smaller image, or start the server with a larger limit)",
        )
    return width, height


def _header_size(path: Path) -> tuple[int, int]:
    if path.suffix in (".jpg", ".png"):
        import warnings

        from PIL import Image

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as img:
                    return img.width, img.height
        except Image.DecompressionBombError:
            return 2**31, 2**31  # Pillow's own bomb guard: far over any pixel limit
        except (OSError, SyntaxError, ValueError) as exc:
            raise ApiError(422, f"the image cannot be read ({type(exc).__name__}): send a complete file") from None
    import rasterio
    from rasterio.errors import RasterioError

    try:
        with rasterio.open(path) as src:
            return int(src.width), int(src.height)
    except RasterioError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ApiError(422, f"the image cannot be read ({reason[:200]}): send a complete file") from None


def confine(text: str, roots: tuple[Path, ...]) -> Path:
    """The image file ``text`` names under one of ``roots`` (relative paths are tried under each, in order).

    403 when it resolves outside every root (``..``, absolute paths, symlinks pointing out), 404 when it is inside
    but missing, 415 when it is not an image. The check runs on the fully resolved path, which is what is opened.
    """
    if not roots:
        raise ApiError(403, "path: this server reads no files by path (upload the raster, or restart with --root DIR)")
    if not text or "\x00" in text or len(text) > 4096:
        raise ApiError(422, "path: give a file path under one of the server's --root folders")
    given = Path(text)
    candidates = [given] if given.is_absolute() else [root / given for root in roots]
    inside: Path | None = None
    for candidate in candidates:
        try:
            resolved = candidate.resolve()
        except (OSError, RuntimeError):  # a symlink loop, a name too long
            continue
        if any(resolved.is_relative_to(root) for root in roots):
            if resolved.is_file():
                inside = resolved
                break
            inside = inside or resolved
    if inside is None:
        raise ApiError(403, f"path {text!r} is outside the server's --root folders")
    if not inside.is_file():
        raise ApiError(404, f"path {text!r}: no such file under the server's --root folders")
    try:
        with inside.open("rb") as f:
            head = f.read(16)
    except OSError:
        raise ApiError(403, f"path {text!r} cannot be read by the server") from None
    if sniff(head) is None:
        raise ApiError(415, f"path {text!r} is not a JPEG, PNG, TIFF or JPEG 2000 image (checked by its content)")
    return inside

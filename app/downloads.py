"""Results (and the page's previews of the upload and the result) handed to the browser straight from disk, in
chunks, by the web server's own route.

    >>> token = offer(Path("/tmp/segment-ui-x/result-1.mov"), "dance_transparent.mov", "video/quicktime")
    >>> url(token)                      # the page links to it; GET streams the file (HTTP ranges too)
    '/download/...'
    >>> withdraw(token)                 # the result was replaced or removed: the link answers 404

Streamlit's `st.download_button` holds the whole file in the server's memory (bytes, a file object and a
callable's return value are all read in full into its media store), and a ProRes 4444 MOV or a ZIP of PNGs of a
long clip is gigabytes. So the page serves results itself: `app/ui.py` mounts `routes()` on Streamlit's server
(`st.App`), and links to `url(token)` (a download link, or a <video>/<img> source). A token is 192 random bits,
offered to the one session that made (or uploaded) the file and withdrawn with it; the route serves nothing else,
and nothing by name or path.
"""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

PREFIX = "/download"
CHUNK = 1 << 20   # bytes read and sent at a time


@dataclass(frozen=True)
class Offer:
    path: Path
    file_name: str      # the name the browser saves it under
    mime: str


_offers: dict[str, Offer] = {}
_lock = threading.Lock()


def offer(path: Path, file_name: str, mime: str) -> str:
    """Make `path` downloadable as `file_name`; returns the token of its link."""
    token = secrets.token_urlsafe(24)
    with _lock:
        for stale in [t for t, o in _offers.items() if not o.path.is_file()]:   # files swept with idle sessions
            del _offers[stale]
        _offers[token] = Offer(Path(path), file_name, mime)
    return token


def withdraw(token: str | None) -> None:
    with _lock:
        _offers.pop(token, None)


def lookup(token: str) -> Offer | None:
    with _lock:
        found = _offers.get(token)
    return found if found is not None and found.path.is_file() else None


def url(token: str, base_path: str = "") -> str:
    """The link's path on this server (under Streamlit's server.baseUrlPath when one is set)."""
    base = "/" + base_path.strip("/") if base_path.strip("/") else ""
    return f"{base}{PREFIX}/{token}"


def routes(base_path: str = "") -> list:
    """The Starlette route serving offered files: GET and HEAD, ranges, `Content-Disposition: attachment`."""
    from starlette.responses import FileResponse, Response
    from starlette.routing import Route

    async def download(request) -> Response:
        found = lookup(request.path_params["token"])
        if found is None:
            return Response("This download has expired: run the clip again.", status_code=404,
                            media_type="text/plain")
        response = FileResponse(found.path, media_type=found.mime, filename=found.file_name,
                                content_disposition_type="attachment")
        response.chunk_size = CHUNK
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    return [Route(url("{token}", base_path), download, methods=["GET", "HEAD"])]

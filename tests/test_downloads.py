"""The download route (app.downloads) as the web server mounts it, driven as ASGI: an offered file is streamed from
disk in bounded chunks (never read whole), ranges work, and nothing else is served."""

from __future__ import annotations

import asyncio
import os
import tracemalloc

import pytest
from starlette.applications import Starlette

from app import downloads


def fetch(app, path: str, *, method: str = "GET", headers: dict[str, str] | None = None, keep: bool = True):
    """One request through the ASGI app: (status, headers, body chunks), or the chunks' sizes when not `keep`."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method, "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
             "server": ("127.0.0.1", 8501), "client": ("127.0.0.1", 5000)}
    start: dict = {}
    chunks: list = []

    requested = []

    async def receive():   # the request once, then (as a live client does) nothing until the response is done
        if requested:
            await asyncio.Event().wait()
        requested.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            start.update(message)
        elif message.get("body"):
            chunks.append(message["body"] if keep else len(message["body"]))

    asyncio.run(app(scope, receive, send))
    return start["status"], {k.decode(): v.decode() for k, v in start["headers"]}, chunks


@pytest.fixture
def server():
    return Starlette(routes=downloads.routes())


def test_an_offered_file_streams_in_chunks_with_its_name(server, tmp_path):
    data = os.urandom(5 * downloads.CHUNK + 123)
    path = tmp_path / "result-1234.mov"
    path.write_bytes(data)
    token = downloads.offer(path, "dance_transparent.mov", "video/quicktime")
    url = downloads.url(token)
    assert url == f"/download/{token}" and len(token) >= 32

    status, head, chunks = fetch(server, url)
    assert status == 200 and b"".join(chunks) == data
    assert len(chunks) == 6 and max(map(len, chunks)) <= downloads.CHUNK, "sent piece by piece from disk"
    assert head["content-type"] == "video/quicktime" and head["content-length"] == str(len(data))
    assert head["content-disposition"] == 'attachment; filename="dance_transparent.mov"'
    assert head["cache-control"] == "no-store"

    status, head, chunks = fetch(server, url, headers={"Range": "bytes=100-199"})   # a resumed download
    assert status == 206 and b"".join(chunks) == data[100:200]
    status, head, chunks = fetch(server, url, method="HEAD")
    assert status == 200 and head["content-length"] == str(len(data)) and not chunks


def test_serving_a_large_file_does_not_hold_it_in_memory(server, tmp_path):
    path = tmp_path / "big.zip"
    with open(path, "wb") as f:          # 64 MB, written sparse
        f.truncate(64 * 2**20)
    token = downloads.offer(path, "big.zip", "application/zip")
    tracemalloc.start()
    try:
        status, _, sizes = fetch(server, downloads.url(token), keep=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert status == 200 and len(sizes) == 64 and sum(sizes) == 64 * 2**20
    assert peak < 8 * 2**20, f"peak {peak / 2**20:.1f} MB of Python memory while sending 64 MB"


def test_withdrawn_missing_and_unknown_files_are_not_served(server, tmp_path):
    kept, gone = tmp_path / "a.mp4", tmp_path / "b.mp4"
    kept.write_bytes(b"a")
    gone.write_bytes(b"b")
    withdrawn = downloads.offer(kept, "a.mp4", "video/mp4")
    downloads.withdraw(withdrawn)
    swept = downloads.offer(gone, "b.mp4", "video/mp4")
    gone.unlink()                         # an idle session's folder was swept
    for path in (downloads.url(withdrawn), downloads.url(swept), "/download/not-a-token", "/download/..%2Fa.mp4"):
        status, head, body = fetch(server, path)
        assert status == 404 and b"".join(body) == b"This download has expired: run the clip again.", path
    assert downloads.lookup(swept) is None
    downloads.offer(kept, "a.mp4", "video/mp4")
    assert swept not in downloads._offers, "offers of files that are gone are dropped"


def test_the_route_follows_the_base_url_path():
    assert downloads.url("abc", "/tools/cutout/") == "/tools/cutout/download/abc"
    [route] = downloads.routes("tools/cutout")
    assert route.path == "/tools/cutout/download/{token}"


def test_streamlit_serves_the_page_as_an_app_with_the_download_route():
    """`streamlit run app/ui.py` (the Dockerfile's command) finds the st.App, so the route is mounted."""
    from pathlib import Path

    from streamlit.web.server.app_discovery import discover_asgi_app

    found = discover_asgi_app(Path(__file__).resolve().parents[1] / "app" / "ui.py")
    assert found.is_asgi_app and found.import_string == "ui:streamlit_app"

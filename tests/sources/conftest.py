"""Fixtures of the sources tests: a loopback web site (web_*) and hand-written PDFs (doc_*)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from llm.outbound import AllowList, parse_allow_list

# status, headers, body
Route = tuple[int, dict[str, str], bytes]


@dataclass
class WebSite:
    """A loopback HTTP server answering `routes` by path; `requested` logs every path asked for."""

    base: str
    routes: dict[str, Route]
    requested: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return self.base + path


def _handler(site: WebSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            site.requested.append(self.path)
            status, headers, body = site.routes.get(self.path, (404, {"Content-Type": "text/plain"}, b"not found"))
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            if "Content-Length" not in headers and "X-No-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def web_serve() -> Iterator[Callable[[dict[str, Route]], WebSite]]:
    """Starts loopback web sites (127.0.0.1, a free port, a thread each); all stop at the end."""
    servers: list[ThreadingHTTPServer] = []

    def serve(routes: dict[str, Route]) -> WebSite:
        site = WebSite(base="", routes=routes)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(site))
        site.base = f"http://127.0.0.1:{server.server_address[1]}"
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return site

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def web_loopback() -> AllowList:
    return parse_allow_list(["127.0.0.0/8", "::1"])


def _web_html(title: str, article: str) -> bytes:
    """A page with a navigation menu and footer around an article, as sites are built."""
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>{title}</title></head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/shop">Shop menu entry</a></li>
<li><a href="/about">About us menu entry</a></li></ul></nav>
<main><article><h1>{title}</h1>{article}</article></main>
<footer><p>Copyright footer text, all rights reserved.</p></footer></body></html>""".encode()


def _pdf_string(text: str) -> str:
    return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")


def _pdf_bytes(pages: list[list[str]], *, title: str | None = None) -> bytes:
    """A minimal PDF written by hand: one page per item, each line a Helvetica text line, and
    a correct cross-reference table; `title` goes into the information dictionary."""
    objects: list[str] = []
    page_ids = [4 + 2 * i for i in range(len(pages))]
    objects.append("<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{n} 0 R" for n in page_ids)
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>")
    objects.append("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    for index, lines in enumerate(pages):
        content_id = page_ids[index] + 1
        objects.append(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 3 0 R >> >> /Contents {content_id} 0 R >>"
        )
        shown = " ".join(f"({_pdf_string(line)}) Tj 0 -16 Td" for line in lines)
        stream = f"BT /F1 12 Tf 72 712 Td {shown} ET"
        objects.append(f"<< /Length {len(stream.encode('latin-1'))} >>\nstream\n{stream}\nendstream")
    info_id = None
    if title is not None:
        objects.append(f"<< /Title ({_pdf_string(title)}) >>")
        info_id = len(objects)
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for offset in offsets:
        out += f"{offset:010d} 00000 n \n".encode()
    info = f" /Info {info_id} 0 R" if info_id else ""
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R{info} >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


@pytest.fixture
def web_html() -> Callable[[str, str], bytes]:
    return _web_html


@pytest.fixture
def doc_pdf() -> Callable[..., bytes]:
    return _pdf_bytes

"""Web pages an admin listed (or a sitemap names), fetched politely, with their main text.

An admin's list of URLs reaches the network from inside the worker, so every request is held
to the same rules as a model connection and to a crawler's manners:

- Every connection goes through the outbound guard (`llm.outbound_http.checked_client`, with the
  operator's allow-list): a host that resolves to a private, loopback or metadata address the
  operator has not allowed is refused before any packet reaches it. Redirects are followed here,
  at most `MAX_REDIRECTS`, and each hop goes through the guard and robots.txt again.
- robots.txt is read once per site through the same client and obeyed for our user agent; a
  site without one (4xx) may be read, a site whose robots.txt fails (5xx, timeout) is not, since
  we cannot know what it forbids.
- At most one request per `delay_seconds` to each host; a body is read in chunks and dropped
  past `max_bytes`; only HTML and plain text are taken.

A page that cannot be taken becomes a `Refusal` with the reason in words, never an exception,
so one bad URL in a list of two hundred costs only itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from urllib import robotparser
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
from defusedxml import ElementTree
from defusedxml.common import DefusedXmlException
from django.utils.translation import gettext as _

from curation.connections.outbound import allow_list
from curation.sources.documents import html_text, normalise
from llm.outbound import AllowList, OutboundRefused, vetted_addresses
from llm.outbound_http import checked_client

MAX_REDIRECTS = 5
ROBOTS_MAX_BYTES = 500_000  # RFC 9309 asks crawlers to read at least 500 KiB
TEXT_TYPES = ("text/html", "application/xhtml+xml", "text/plain")
_REDIRECTS = (301, 302, 303, 307, 308)
_XML_ERRORS = (ElementTree.ParseError, DefusedXmlException, ValueError)


@dataclass
class Page:
    url: str
    final_url: str
    title: str
    text: str
    content_type: str


@dataclass
class Refusal:
    url: str
    reason: str


@dataclass
class FetchReport:
    pages: list[Page] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)


class _Refused(Exception):
    """A page cannot be taken; args[0] is the reason in words."""


@dataclass
class _Body:
    final_url: str
    content_type: str
    charset: str | None
    data: bytes


def url_list_clean(text: str, *, limit: int = 1000) -> list[str]:
    """The http(s) URLs of `text`, one per line (blank lines skipped, repeats dropped, fragments
    removed); ValueError naming the line of the first that is not one, or the limit when there
    are more than `limit`."""
    urls: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line:
            continue
        url = _clean_url(line)
        if url is None:
            raise ValueError(
                _("Line %(line)d: %(text)s is not an http:// or https:// address with a host.")
                % {"line": number, "text": line[:200]}
            )
        if url not in urls:
            urls.append(url)
        if len(urls) > limit:
            raise ValueError(
                _("Line %(line)d: more than %(limit)d addresses; list at most %(limit)d.")
                % {"line": number, "limit": limit}
            )
    return urls


def _clean_url(text: str) -> str | None:
    """`text` as an http(s) URL without its fragment, or None when it is not one (no host, other
    scheme, spaces, a user name or password, a port that is not a number)."""
    if any(c.isspace() for c in text) or len(text) > 2000:
        return None
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - raises ValueError on a port that is not a number
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    return urlunsplit((parts.scheme.lower(), parts.netloc, parts.path or "/", parts.query, ""))


def fetch_pages(
    urls: list[str],
    *,
    sitemap: str | None = None,
    max_pages: int = 200,
    max_bytes: int = 2_000_000,
    delay_seconds: float = 1.0,
    timeout: float = 20.0,
    user_agent: str = "ShikomiBot/1.0",
    allow: AllowList | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> FetchReport:
    """Fetch `urls` and the pages `sitemap` lists (at most `max_pages` in all) and extract each
    page's main text; what could not be taken is in `refused` with the reason. `progress(done,
    total)` is called after each page; `should_stop()` before each, ending the run early."""
    report = FetchReport()
    allowed = allow if allow is not None else allow_list()
    with checked_client(allowed, timeout=timeout, max_connections=4) as client:
        fetcher = _Fetcher(client, allowed, user_agent=user_agent, delay_seconds=delay_seconds, timeout=timeout)
        targets = _targets(urls, sitemap, max_pages, max_bytes, fetcher, report)
        for done, url in enumerate(targets, start=1):
            if should_stop is not None and should_stop():
                break
            try:
                report.pages.append(_page(url, fetcher.get(url, max_bytes=max_bytes)))
            except _Refused as refusal:
                report.refused.append(Refusal(url=url, reason=str(refusal.args[0])))
            if progress is not None:
                progress(done, len(targets))
    return report


def _targets(
    urls: list[str], sitemap: str | None, max_pages: int, max_bytes: int, fetcher: _Fetcher, report: FetchReport
) -> list[str]:
    """The URLs to fetch: `urls`, then the sitemap's, without repeats, at most `max_pages`; listed
    URLs past the limit are reported, sitemap ones past it are left out."""
    targets: list[str] = []
    for url in urls:
        if url in targets:
            continue
        if len(targets) >= max_pages:
            report.refused.append(
                Refusal(url=url, reason=_("over the limit of %(limit)d pages") % {"limit": max_pages})
            )
        else:
            targets.append(url)
    if sitemap is not None and len(targets) < max_pages:
        try:
            for url in _sitemap_urls(sitemap, fetcher, max_bytes, report.refused):
                if len(targets) >= max_pages:
                    break
                if url not in targets:
                    targets.append(url)
        except _Refused as refusal:
            report.refused.append(Refusal(url=sitemap, reason=str(refusal.args[0])))
    return targets


def _page(url: str, body: _Body) -> Page:
    if body.content_type == "text/plain":
        title, text = "", normalise(_decoded(body), collapse_spaces=False)
    else:
        title, text = html_text(_decoded(body) if body.charset else body.data)
    if not text:
        raise _Refused(_("no text could be extracted from it"))
    return Page(url=url, final_url=body.final_url, title=title, text=text, content_type=body.content_type)


def _decoded(body: _Body) -> str:
    try:
        return body.data.decode(body.charset or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        return body.data.decode("utf-8", errors="replace")


# A sitemap's tags carry its namespace ({http://www.sitemaps.org/schemas/sitemap/0.9}loc).
def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _sitemap_urls(sitemap: str, fetcher: _Fetcher, max_bytes: int, refused: list[Refusal]) -> Iterator[str]:
    """The page URLs of a sitemap (urlset), or of the sitemaps a sitemap index lists (one level);
    a listed sitemap that cannot be read goes to `refused`."""
    kind, locations = _sitemap_read(sitemap, fetcher, max_bytes)
    if kind == "urlset":
        yield from locations
        return
    for child in locations:
        try:
            child_kind, child_locations = _sitemap_read(child, fetcher, max_bytes)
        except _Refused as refusal:
            refused.append(Refusal(url=child, reason=str(refusal.args[0])))
            continue
        if child_kind == "urlset":
            yield from child_locations


def _sitemap_read(url: str, fetcher: _Fetcher, max_bytes: int) -> tuple[str, list[str]]:
    body = fetcher.get(url, max_bytes=max_bytes, any_type=True)
    try:
        root = ElementTree.fromstring(body.data, forbid_dtd=True)
    except _XML_ERRORS as error:
        raise _Refused(_("the sitemap is not valid XML (%(error)s)") % {"error": error}) from None
    kind = _local(root.tag)
    if kind not in ("urlset", "sitemapindex"):
        raise _Refused(_("not a sitemap: its root element is <%(tag)s>") % {"tag": kind})
    locations = []
    for element in root.iter():
        if _local(element.tag) == "loc" and element.text and (found := _clean_url(element.text.strip())):
            locations.append(found)
    return kind, locations


class _Fetcher:
    """GET requests through the guarded client, with redirects, robots.txt and the per-host delay."""

    def __init__(
        self, client: httpx.Client, allowed: AllowList, *, user_agent: str, delay_seconds: float, timeout: float
    ) -> None:
        self.client = client
        self.allowed = allowed
        self.user_agent = user_agent
        self.delay_seconds = delay_seconds
        self.timeout = timeout
        self.robots: dict[str, robotparser.RobotFileParser | str] = {}
        self.last_request: dict[str, float] = {}

    def get(self, url: str, *, max_bytes: int, any_type: bool = False) -> _Body:
        """The body of `url` after its redirects; _Refused when robots.txt forbids a hop, the guard
        refuses one, the answer is an error, too large, or (unless `any_type`) not text."""
        for hop in range(MAX_REDIRECTS + 1):
            # The guard also checks each connection; asking it first names the address that is
            # refused, instead of the robots.txt that could not be read there.
            self._check_address(url, redirected=hop > 0)
            self._check_robots(url, redirected=hop > 0)
            with closing(self._stream(url, redirected=hop > 0)) as response:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location:
                    url = self._next_hop(url, location)
                    continue
                if response.status_code >= 400:
                    raise _Refused(_("HTTP %(status)d") % {"status": response.status_code})
                content_type, charset = _content_type(response.headers.get("content-type", ""))
                if not any_type and content_type not in TEXT_TYPES:
                    raise _Refused(_("not a web page or text (content type %(type)s)") % {"type": content_type or "-"})
                return _Body(str(response.url), content_type, charset, self._read(response, max_bytes))
        raise _Refused(_("more than %(count)d redirects") % {"count": MAX_REDIRECTS})

    def _next_hop(self, url: str, location: str) -> str:
        target = _clean_url(urljoin(url, location))
        if target is None:
            raise _Refused(_("redirects to %(url)s, which is not an http(s) address") % {"url": location[:200]})
        return target

    def _check_address(self, url: str, *, redirected: bool) -> None:
        try:
            vetted_addresses(url, self.allowed)
        except OutboundRefused as error:
            raise _address_refused(url, error, redirected=redirected) from None

    def _stream(self, url: str, *, redirected: bool) -> httpx.Response:
        self._wait(url)
        try:
            return _opened(self.client, url, self.user_agent)
        except OutboundRefused as error:
            raise _address_refused(url, error, redirected=redirected) from None
        except httpx.TimeoutException:
            raise _Refused(_("no answer within %(seconds)g seconds") % {"seconds": self.timeout}) from None
        except httpx.HTTPError as error:
            raise _Refused(_("could not connect (%(error)s)") % {"error": error}) from None
        finally:
            self.last_request[_host(url)] = time.monotonic()

    def _read(self, response: httpx.Response, max_bytes: int) -> bytes:
        """The body, read in chunks (decompressed) and refused past `max_bytes` or the deadline."""
        limit = _("over the size limit of %(size)s") % {"size": _size(max_bytes)}
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise _Refused(limit)
        deadline = time.monotonic() + self.timeout * 3
        chunks: list[bytes] = []
        total = 0
        try:
            for chunk in response.iter_bytes():
                total += len(chunk)
                if total > max_bytes:
                    raise _Refused(limit)
                if time.monotonic() > deadline:
                    raise _Refused(_("took longer than %(seconds)g seconds to arrive") % {"seconds": self.timeout * 3})
                chunks.append(chunk)
        except httpx.HTTPError as error:
            raise _Refused(_("the answer broke off (%(error)s)") % {"error": error}) from None
        return b"".join(chunks)

    def _wait(self, url: str) -> None:
        last = self.last_request.get(_host(url))
        if last is not None and self.delay_seconds > 0:
            time.sleep(max(0.0, last + self.delay_seconds - time.monotonic()))

    def _check_robots(self, url: str, *, redirected: bool) -> None:
        parts = urlsplit(url)
        site = f"{parts.scheme}://{parts.netloc}"
        if site not in self.robots:
            self.robots[site] = self._robots(site)
        rules = self.robots[site]
        if isinstance(rules, str):
            raise _Refused(rules)
        if not rules.can_fetch(self.user_agent, url):
            if redirected:
                raise _Refused(_("redirects to %(url)s, which robots.txt forbids") % {"url": url})
            raise _Refused(_("robots.txt forbids it"))

    def _robots(self, site: str) -> robotparser.RobotFileParser | str:
        """The site's robots.txt rules, or the reason (in words) the site must not be read."""
        rules = robotparser.RobotFileParser()
        url = f"{site}/robots.txt"
        try:
            body = self._robots_body(url)
        except _Refused as refusal:
            return _("robots.txt could not be read (%(reason)s), so the site was not fetched") % {
                "reason": refusal.args[0]
            }
        if body is None:
            rules.parse([])  # no robots.txt: everything is allowed
        else:
            rules.parse(body.decode("utf-8", errors="replace").splitlines())
        return rules

    def _robots_body(self, url: str) -> bytes | None:
        """robots.txt's bytes after its redirects; None when the site has none (4xx); _Refused when
        it could not be read (5xx, timeout, refused address)."""
        for _hop in range(MAX_REDIRECTS + 1):
            with closing(self._stream(url, redirected=False)) as response:
                location = response.headers.get("location")
                if response.status_code in _REDIRECTS and location:
                    url = self._next_hop(url, location)
                    continue
                if 400 <= response.status_code < 500:
                    return None
                if response.status_code >= 500:
                    raise _Refused(_("HTTP %(status)d") % {"status": response.status_code})
                return self._read(response, ROBOTS_MAX_BYTES)
        return None  # RFC 9309: a robots.txt past five redirects counts as missing


def _opened(client: httpx.Client, url: str, user_agent: str) -> httpx.Response:
    """A streamed GET (the caller closes it); the guard's OutboundRefused comes through as is."""
    request = client.build_request(
        "GET",
        url,
        headers={"User-Agent": user_agent, "Accept": "text/html,application/xhtml+xml,text/plain;q=0.9,*/*;q=0.5"},
    )
    return client.send(request, stream=True)


def _address_refused(url: str, error: OutboundRefused, *, redirected: bool) -> _Refused:
    if redirected:
        return _Refused(_("redirects to %(url)s: %(error)s") % {"url": url, "error": error})
    return _Refused(str(error))


def _host(url: str) -> str:
    return urlsplit(url).netloc.lower()


def _content_type(header: str) -> tuple[str, str | None]:
    """The media type of a Content-Type header and its charset, if it names one."""
    media, _sep, rest = header.partition(";")
    charset = None
    for parameter in rest.split(";"):
        name, _eq, value = parameter.partition("=")
        if name.strip().lower() == "charset" and value.strip():
            charset = value.strip().strip("\"'")
    return media.strip().lower(), charset


def _size(count: int) -> str:
    if count >= 1_000_000:
        return _("%(count)g MB") % {"count": count / 1_000_000}
    if count >= 1_000:
        return _("%(count)g kB") % {"count": count / 1_000}
    return _("%(count)d bytes") % {"count": count}

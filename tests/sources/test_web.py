"""Fetching web pages from a real loopback site: the main text is taken, and everything a polite,
guarded crawler must not take is refused with the reason, without being requested."""

from __future__ import annotations

import pytest

from curation.sources.web import fetch_pages, url_list_clean

HTML = {"Content-Type": "text/html; charset=utf-8"}
SAKE = (
    "<p>Sake is brewed from polished rice, water, yeast and koji mould. The polishing ratio changes "
    "the flavour a great deal, and brewers measure it carefully.</p><p>Fermentation takes several "
    "weeks at a low temperature before the mash is pressed.</p>"
)
MISO = (
    "<p>Miso is soybeans fermented with salt and koji for months or years. Longer ageing gives a darker "
    "paste and a deeper, saltier taste.</p><p>White miso ages for weeks only and tastes sweet.</p>"
)


@pytest.fixture
def web_site(web_serve, web_html):
    return web_serve(
        {
            "/robots.txt": (200, {"Content-Type": "text/plain"}, b"User-agent: *\nDisallow: /private/\n"),
            "/sake": (200, HTML, web_html("Brewing sake", SAKE)),
            "/miso": (200, HTML, web_html("Making miso", MISO)),
            "/private/secret": (200, HTML, web_html("Secret", SAKE)),
            "/notes.txt": (200, {"Content-Type": "text/plain"}, b"Rice:   polished\r\n\r\n\r\nWater: soft\r\n"),
            "/big": (200, HTML, web_html("Big", "<p>rice</p>" * 2000)),
            "/big-unannounced": (200, {**HTML, "X-No-Length": "1"}, web_html("Big", "<p>rice</p>" * 2000)),
            "/report.pdf": (200, {"Content-Type": "application/pdf"}, b"%PDF-1.4 ..."),
            "/empty": (200, HTML, b"<html><head><title>Gallery</title></head><body><img src='/a.png'></body></html>"),
            "/moved": (301, {"Location": "/miso"}, b""),
            "/to-private": (302, {"Location": "http://10.255.255.1/"}, b""),
            "/to-secret": (302, {"Location": "/private/secret"}, b""),
            "/loop": (302, {"Location": "/loop"}, b""),
        }
    )


def _fetch(urls, web_loopback, **options):
    options = {"delay_seconds": 0, "allow": web_loopback, **options}
    return fetch_pages(urls, **options)


def _reasons(report):
    return {refusal.url: refusal.reason for refusal in report.refused}


def test_it_takes_the_article_text_and_leaves_out_the_navigation(web_site, web_loopback) -> None:
    report = _fetch([web_site.url("/sake"), web_site.url("/miso")], web_loopback)

    assert report.refused == []
    sake, miso = report.pages
    assert (sake.url, sake.final_url, sake.title, sake.content_type) == (
        web_site.url("/sake"),
        web_site.url("/sake"),
        "Brewing sake",
        "text/html",
    )
    assert "The polishing ratio changes the flavour a great deal" in sake.text
    assert "White miso ages for weeks only" in miso.text
    for page in report.pages:
        assert "menu entry" not in page.text
        assert "Copyright" not in page.text


def test_a_plain_text_page_is_taken_as_it_is(web_site, web_loopback) -> None:
    (page,) = _fetch([web_site.url("/notes.txt")], web_loopback).pages

    assert page.text == "Rice:   polished\n\nWater: soft"
    assert page.content_type == "text/plain"


def test_robots_txt_forbids_a_path_and_it_is_never_requested(web_site, web_loopback) -> None:
    report = _fetch([web_site.url("/private/secret"), web_site.url("/to-secret"), web_site.url("/sake")], web_loopback)

    assert [page.url for page in report.pages] == [web_site.url("/sake")]
    reasons = _reasons(report)
    assert reasons[web_site.url("/private/secret")] == "robots.txt forbids it"
    assert "robots.txt forbids" in reasons[web_site.url("/to-secret")]
    assert "/private/secret" not in web_site.requested
    # robots.txt is read once for the site, not once per page.
    assert web_site.requested.count("/robots.txt") == 1


def test_a_page_over_the_size_limit_is_refused_naming_the_limit(web_site, web_loopback) -> None:
    report = _fetch([web_site.url("/big"), web_site.url("/big-unannounced")], web_loopback, max_bytes=5_000)

    assert report.pages == []
    assert _reasons(report) == {
        web_site.url("/big"): "over the size limit of 5 kB",
        web_site.url("/big-unannounced"): "over the size limit of 5 kB",
    }


def test_a_redirect_to_a_private_address_is_refused(web_site, web_loopback) -> None:
    report = _fetch([web_site.url("/to-private")], web_loopback)

    assert report.pages == []
    reason = _reasons(report)[web_site.url("/to-private")]
    assert reason.startswith("redirects to http://10.255.255.1/: ")
    assert "10.255.255.1" in reason and "private or internal address" in reason


def test_a_redirect_is_followed_to_the_page(web_site, web_loopback) -> None:
    (page,) = _fetch([web_site.url("/moved")], web_loopback).pages

    assert page.url == web_site.url("/moved")
    assert page.final_url == web_site.url("/miso")
    assert page.title == "Making miso"


def test_errors_other_types_empty_pages_and_redirect_loops_are_refused(web_site, web_loopback) -> None:
    urls = [web_site.url(path) for path in ("/nowhere", "/report.pdf", "/empty", "/loop")]

    report = _fetch(urls, web_loopback)

    assert report.pages == []
    assert _reasons(report) == {
        urls[0]: "HTTP 404",
        urls[1]: "not a web page or text (content type application/pdf)",
        urls[2]: "no text could be extracted from it",
        urls[3]: "more than 5 redirects",
    }


def test_a_sitemap_adds_its_pages_up_to_the_limit(web_site, web_loopback) -> None:
    urlset = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<url><loc>{web_site.url('/sake')}</loc></url><url><loc>{web_site.url('/miso')}</loc></url>"
        f"<url><loc>{web_site.url('/notes.txt')}</loc></url></urlset>"
    )
    index = (
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
        f"<sitemap><loc>{web_site.url('/gone.xml')}</loc></sitemap>"
        f"<sitemap><loc>{web_site.url('/sitemap.xml')}</loc></sitemap></sitemapindex>"
    )
    web_site.routes["/sitemap.xml"] = (200, {"Content-Type": "application/xml"}, urlset.encode())
    web_site.routes["/sitemap-index.xml"] = (200, {"Content-Type": "application/xml"}, index.encode())

    direct = _fetch([web_site.url("/miso")], web_loopback, sitemap=web_site.url("/sitemap.xml"))
    through_index = _fetch([], web_loopback, sitemap=web_site.url("/sitemap-index.xml"), max_pages=2)

    assert [page.url for page in direct.pages] == [web_site.url(p) for p in ("/miso", "/sake", "/notes.txt")]
    assert [page.title for page in through_index.pages] == ["Brewing sake", "Making miso"]
    assert _reasons(through_index) == {web_site.url("/gone.xml"): "HTTP 404"}
    assert "/notes.txt" not in web_site.requested[-3:]


def test_a_sitemap_that_is_not_xml_is_reported(web_site, web_loopback) -> None:
    report = _fetch([web_site.url("/sake")], web_loopback, sitemap=web_site.url("/notes.txt"))

    assert [page.url for page in report.pages] == [web_site.url("/sake")]
    assert _reasons(report)[web_site.url("/notes.txt")].startswith("the sitemap is not valid XML")


def test_a_site_whose_robots_txt_fails_is_not_fetched(web_serve, web_html, web_loopback) -> None:
    site = web_serve({"/robots.txt": (503, {}, b"busy"), "/sake": (200, HTML, web_html("Brewing sake", SAKE))})

    report = _fetch([site.url("/sake")], web_loopback)

    assert report.pages == []
    assert _reasons(report)[site.url("/sake")] == "robots.txt could not be read (HTTP 503), so the site was not fetched"
    assert site.requested == ["/robots.txt"]


def test_a_site_without_robots_txt_may_be_fetched(web_serve, web_html, web_loopback) -> None:
    site = web_serve({"/sake": (200, HTML, web_html("Brewing sake", SAKE))})

    assert [page.title for page in _fetch([site.url("/sake")], web_loopback).pages] == ["Brewing sake"]


def test_loopback_is_refused_unless_the_operator_allows_it(web_site, settings) -> None:
    settings.SHIKOMI_OUTBOUND_ALLOW = []

    report = fetch_pages([web_site.url("/sake")], delay_seconds=0)

    assert report.pages == []
    assert "loopback address" in _reasons(report)[web_site.url("/sake")]
    assert web_site.requested == []


def test_progress_is_reported_and_a_stop_request_ends_the_run(web_site, web_loopback) -> None:
    seen: list[tuple[int, int]] = []
    urls = [web_site.url("/sake"), web_site.url("/miso"), web_site.url("/notes.txt")]

    report = _fetch(
        urls, web_loopback, progress=lambda done, total: seen.append((done, total)), should_stop=lambda: len(seen) >= 2
    )

    assert seen == [(1, 3), (2, 3)]
    assert [page.url for page in report.pages] == urls[:2]


def test_listed_urls_past_the_page_limit_are_refused(web_site, web_loopback) -> None:
    report = _fetch([web_site.url("/sake"), web_site.url("/miso")], web_loopback, max_pages=1)

    assert [page.url for page in report.pages] == [web_site.url("/sake")]
    assert _reasons(report) == {web_site.url("/miso"): "over the limit of 1 pages"}
    assert "/miso" not in web_site.requested


def test_url_list_clean_takes_one_url_per_line() -> None:
    text = "https://example.com/a#top\n\n  http://Example.com:8080/b?x=1  \nhttps://example.com/a\nHTTPS://example.org"

    assert url_list_clean(text) == [
        "https://example.com/a",
        "http://Example.com:8080/b?x=1",
        "https://example.org/",
    ]


@pytest.mark.parametrize(
    "line",
    [
        "ftp://example.com/file",
        "file:///etc/passwd",
        "example.com/page",
        "https://",
        "https://user:pw@example.com/",
        "https://example.com:port/",
        "https://exa mple.com/",
    ],
)
def test_url_list_clean_names_the_line_of_a_bad_url(line: str) -> None:
    with pytest.raises(ValueError, match=r"^Line 2: "):
        url_list_clean(f"https://example.com/\n{line}\n")


def test_url_list_clean_refuses_more_than_the_limit() -> None:
    with pytest.raises(ValueError, match=r"^Line 3: more than 2 addresses"):
        url_list_clean("https://a.example/\nhttps://b.example/\nhttps://c.example/\n", limit=2)

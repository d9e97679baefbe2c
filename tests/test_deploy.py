"""Deployment settings: the production environment passes `check --deploy`, the single-machine
setup still works over plain http, and every response carries the Content-Security-Policy
and the other headers the settings promise.

The settings are read from environment variables when config.settings is imported, so each
setup is a real process with its own environment: `manage.py check` and `manage.py runserver`.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What docs/deployment.md tells an operator to set behind a TLS-terminating proxy.
PRODUCTION = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "shikomi.example.org,127.0.0.1",
    "CSRF_TRUSTED_ORIGINS": "https://shikomi.example.org",
    "SHIKOMI_HTTPS": "true",
    "SHIKOMI_TRUST_X_FORWARDED_PROTO": "true",
    "SECURE_HSTS_PRELOAD": "true",
}


def environment(tmp_path: Path, **variables: str) -> dict[str, str]:
    """A clean environment: none of the test process's settings (SECRET_KEY, SHIKOMI_*) leak in."""
    env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG", "TMPDIR") if key in os.environ}
    data = tmp_path / f"data-{secrets.token_hex(4)}"
    env |= {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "SHIKOMI_DATA_DIR": str(data),
        "SECRET_KEY_FILE": str(data / "secret_key"),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    data.mkdir()
    return env | variables


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_check_deploy_is_clean_under_the_production_environment(tmp_path):
    env = environment(tmp_path, SECRET_KEY=secrets.token_urlsafe(64), **PRODUCTION)

    result = check_deploy(env)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_check_deploy_names_what_the_single_machine_defaults_leave_off(tmp_path):
    result = check_deploy(environment(tmp_path))

    assert result.returncode != 0
    warnings = set(re.findall(r"\(security\.W\d+\)", result.stdout + result.stderr))
    # HSTS, the redirect to https and secure cookies: exactly what SHIKOMI_HTTPS turns on.
    assert warnings == {f"(security.{w})" for w in ("W004", "W008", "W012", "W016")}


def test_without_preload_consent_the_only_warning_is_the_preload_list(tmp_path):
    env = environment(tmp_path, SECRET_KEY=secrets.token_urlsafe(64), **PRODUCTION)
    env["SECURE_HSTS_PRELOAD"] = "false"

    result = check_deploy(env)

    assert set(re.findall(r"\(\w+\.[WE]\d+\)", result.stdout + result.stderr)) == {"(security.W021)"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def server(env: dict[str, str]) -> Iterator[str]:
    """`manage.py runserver` (what `make run` starts) in its own process, with `env`."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "runserver", "--noreload", "--skip-checks", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(process.communicate()[0]) from None
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, list[str]], str]:
    """Status, headers (every value of each) and body of one GET; redirects are not followed."""
    opener = urllib.request.build_opener(_NoRedirects)
    try:
        response = opener.open(urllib.request.Request(url, headers=headers or {}), timeout=30)
    except urllib.error.HTTPError as exc:
        response = exc
    values: dict[str, list[str]] = {}
    for name, value in response.headers.items():
        values.setdefault(name.lower(), []).append(value)
    return response.status, values, response.read().decode("utf-8", "replace")


def test_the_single_machine_setup_serves_the_sign_in_page_over_plain_http(tmp_path):
    with server(environment(tmp_path)) as base:
        status, headers, body = fetch(f"{base}/accounts/login/")

    assert status == 200 and 'name="password"' in body
    assert "strict-transport-security" not in headers
    csrf_cookie = next(c for c in headers["set-cookie"] if c.startswith("csrftoken="))
    assert "HttpOnly" in csrf_cookie and "Secure" not in csrf_cookie
    assert headers["x-frame-options"] == ["DENY"]
    assert headers["x-content-type-options"] == ["nosniff"]
    assert headers["referrer-policy"] == ["same-origin"]
    policy = headers["content-security-policy"][0]
    # django-csp writes the directives in no fixed order: compare them as a mapping.
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if part.strip())
    assert directives["script-src"] == "'self'" and "unsafe-eval" not in policy
    assert directives["object-src"] == "'none'" and directives["frame-ancestors"] == "'none'"


def test_behind_the_proxy_https_is_served_and_plain_http_is_redirected_once(tmp_path):
    env = environment(tmp_path, SECRET_KEY=secrets.token_urlsafe(64), **PRODUCTION)
    with server(env) as base:
        status, headers, body = fetch(f"{base}/accounts/login/", {"X-Forwarded-Proto": "https"})
        plain_status, plain_headers, _ = fetch(f"{base}/accounts/login/")

    assert status == 200 and 'name="password"' in body  # not redirected again: no loop
    assert headers["strict-transport-security"] == ["max-age=31536000; includeSubDomains; preload"]
    csrf_cookie = next(c for c in headers["set-cookie"] if c.startswith("csrftoken="))
    assert "Secure" in csrf_cookie and "HttpOnly" in csrf_cookie
    assert "upgrade-insecure-requests" in headers["content-security-policy"][0]
    assert plain_status == 301
    assert plain_headers["location"] == [f"https://{base.removeprefix('http://')}/accounts/login/"]


def test_a_client_cannot_claim_https_unless_the_operator_trusts_the_proxy(tmp_path):
    env = environment(tmp_path, SECRET_KEY=secrets.token_urlsafe(64), **PRODUCTION)
    del env["SHIKOMI_TRUST_X_FORWARDED_PROTO"]
    with server(env) as base:
        status, headers, _ = fetch(f"{base}/accounts/login/", {"X-Forwarded-Proto": "https"})

    assert status == 301 and headers["location"][0].startswith("https://")


TEMPLATES = ROOT / "templates"
# What the Content-Security-Policy refuses (no 'unsafe-inline' scripts, no eval, no <style>):
# inline script, event-handler attributes, javascript: URLs, htmx's eval features.
INLINE = re.compile(
    r"<script(?![^>]*\bsrc=)[^>]*>|<style\b|\son[a-z]+\s*=|javascript:|hx-on|hx-vars|js:", re.IGNORECASE
)
COMMENT = re.compile(r"{#.*?#}|{% comment %}.*?{% endcomment %}", re.DOTALL)


@pytest.mark.parametrize("path", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES)))
def test_no_template_needs_what_the_content_security_policy_refuses(path):
    found = [m.group(0) for m in INLINE.finditer(COMMENT.sub("", path.read_text("utf-8")))]

    assert not found, f"{path.relative_to(ROOT)}: {found}; move it to static/js or static/css"

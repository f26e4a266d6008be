"""Security headers (portal/security_headers.py): the CSP with a per-response nonce and no inline
script anywhere in the templates, the other headers on every kind of response, HSTS only over
TLS (directly or through a trusted proxy)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import make_response, render_template_string

from portal import create_app
from portal.config import TestConfig
from portal.security_headers import NON_HTML_POLICY, add_security_headers, content_security_policy

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
STATIC_JS = Path(__file__).resolve().parents[2] / "static" / "js"


@pytest.fixture
def web(app):
    """A client for requests that neither read nor write the database (no truncation after)."""
    return app.test_client()


def policy(response) -> dict[str, list[str]]:
    header = response.headers["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def test_html_page_has_a_strict_csp_with_a_fresh_nonce(web):
    first, second = web.get("/auth/login"), web.get("/auth/login")
    csp = policy(first)
    nonce = [v for v in csp["script-src"] if v.startswith("'nonce-")]
    assert len(nonce) == 1 and len(nonce[0]) > len("'nonce-'") + 16
    assert csp["script-src"] == ["'self'", nonce[0]]
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in str(csp)
    assert csp["object-src"] == ["'none'"]
    assert csp["base-uri"] == ["'self'"]
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["form-action"] == ["'self'"]
    assert csp["default-src"] == ["'self'"] and csp["connect-src"] == ["'self'"]
    # style attributes only: a <style> element needs the nonce
    assert csp["style-src-attr"] == ["'unsafe-inline'"]
    assert csp["style-src-elem"] == ["'self'", nonce[0]]
    assert policy(second)["script-src"][1] != nonce[0]


def test_error_pages_and_fragments_carry_the_csp_too(client, login_as):
    assert "script-src" in client.get("/no-such-page").headers["Content-Security-Policy"]
    login_as("agent")
    fragment = client.get("/notifications/unread-count", headers={"HX-Request": "true"})
    assert fragment.mimetype == "text/html"
    assert "'nonce-" in fragment.headers["Content-Security-Policy"]


def test_the_nonce_is_exposed_to_templates_and_matches_the_header(app):
    with app.test_request_context("/"):
        rendered = render_template_string('<script nonce="{{ csp_nonce() }}"></script>')
        response = add_security_headers(make_response(rendered))
    nonce = re.search(r'nonce="([^"]+)"', rendered).group(1)
    assert f"'nonce-{nonce}'" in response.headers["Content-Security-Policy"].split(";")[1]


def test_non_html_responses_get_a_policy_that_allows_nothing(web):
    for path in ("/healthz", "/static/js/app.js", "/api/v1/me"):
        response = web.get(path)
        response.close()  # a static file is streamed from disk
        assert response.mimetype != "text/html", path
        assert response.headers["Content-Security-Policy"] == NON_HTML_POLICY, path


def test_every_response_has_the_other_headers(web):
    for path in ("/auth/login", "/healthz", "/static/css/app.css", "/api/v1/me",
                 "/no-such-page"):
        response = web.get(path)
        response.close()
        headers = response.headers
        assert headers["X-Frame-Options"] == "DENY", path
        assert headers["X-Content-Type-Options"] == "nosniff", path
        assert headers["Referrer-Policy"] == "same-origin", path
        permissions = headers["Permissions-Policy"]
        assert "camera=()" in permissions and "microphone=()" in permissions, path
        assert "geolocation=(self)" in permissions  # the field agent's check-in
        assert "Strict-Transport-Security" not in headers  # plain http


def test_hsts_only_over_tls(web):
    assert "Strict-Transport-Security" not in web.get("/auth/login").headers
    secure = web.get("/auth/login", base_url="https://crm.bank.example")
    assert secure.headers["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    # a forwarded scheme is not trusted without a configured proxy
    spoofed = web.get("/auth/login", headers={"X-Forwarded-Proto": "https"})
    assert "Strict-Transport-Security" not in spoofed.headers


def test_hsts_behind_a_trusted_proxy(app):
    proxied = create_app(TestConfig, {
        "SQLALCHEMY_DATABASE_URI": app.config["SQLALCHEMY_DATABASE_URI"],
        "REDIS_URL": app.config["REDIS_URL"],
        # the limiter is one object: keep its storage the flushed test Redis
        "RATELIMIT_STORAGE_URI": app.config["RATELIMIT_STORAGE_URI"],
        "PROXY_FIX_HOPS": 1,
    })
    client = proxied.test_client()
    behind_tls = client.get("/auth/login", headers={"X-Forwarded-Proto": "https"})
    assert "max-age=" in behind_tls.headers["Strict-Transport-Security"]
    plain = client.get("/auth/login", headers={"X-Forwarded-Proto": "http"})
    assert "Strict-Transport-Security" not in plain.headers


@pytest.mark.parametrize(("tile_url", "expected"), [
    ("https://tile.openstreetmap.org/{z}/{x}/{y}.png", "https://tile.openstreetmap.org"),
    ("https://{s}.tiles.bank.internal:8443/{z}/{x}/{y}.png", "https://*.tiles.bank.internal:8443"),
    ("/tiles/{z}/{x}/{y}.png", None),
    ("", None),
])
def test_img_src_allows_the_configured_tile_server_only(tile_url, expected):
    directives = dict(d.split(" ", 1) for d in content_security_policy("n", tile_url).split("; "))
    sources = directives["img-src"].split()
    assert sources[:2] == ["'self'", "data:"]
    assert sources[2:] == ([expected] if expected else [])


# --- no inline script in any template or script file ----------------------------------------

INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
STYLE_ELEMENT = re.compile(r"<style\b", re.I)  # style-src-elem: stylesheets from static/css
INLINE_HANDLER = re.compile(r"\s(on[a-z]+|hx-on(?::[\w:-]+)?|hx-on-[\w-]+)\s*=", re.I)
# htmx evaluates these with Function(): refused without 'unsafe-eval' (allowEval is off)
EVAL_ATTRIBUTES = re.compile(
    r"""hx-trigger="[^"]*\[|hx-(?:vals|vars|headers)=['"](?:js|javascript):|hx-vars=|javascript:""",
    re.I)


def test_no_template_has_an_inline_script_style_element_handler_or_evaluated_attribute():
    offenders = []
    for path in sorted(TEMPLATES.rglob("*.html")):
        text = path.read_text(encoding="utf-8")
        for pattern in (INLINE_SCRIPT, STYLE_ELEMENT, INLINE_HANDLER, EVAL_ATTRIBUTES):
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                offenders.append(f"{path.relative_to(TEMPLATES)}:{line}: {match.group(0)}")
    assert offenders == []


def test_htmx_is_configured_for_the_csp():
    base = (TEMPLATES / "base.html").read_text(encoding="utf-8")
    assert '"includeIndicatorStyles": false' in base and '"allowEval": false' in base
    for path in STATIC_JS.glob("*.js"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"\beval\(|new Function\(|\.innerHTML\s*=.*<script", text), path

"""Security headers on every response, in one place (docs/security.md).

- HTML pages get a Content-Security-Policy with a fresh nonce per response: scripts only from
  this origin or carrying the nonce (no inline handler, no ``eval``); templates read the nonce
  with ``csp_nonce()`` for the rare inline script that must exist. Any other response gets a
  policy that allows nothing (a JSON body or an SVG opened directly runs nothing).
- X-Frame-Options, X-Content-Type-Options, Referrer-Policy and Permissions-Policy everywhere.
- Strict-Transport-Security only on a request that came over TLS: directly, through gunicorn's
  trusted ``X-Forwarded-Proto`` (FORWARDED_ALLOW_IPS), or through ProxyFix when
  ``PROXY_FIX_HOPS`` says how many proxies in front are trusted.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from flask import Flask, current_app, g, request
from flask_login import current_user
from werkzeug.middleware.proxy_fix import ProxyFix

NONCE_BYTES = 16

# Features the portal uses: the field agent's check-in reads the position (static/js/field_map.js)
# and copy buttons write to the clipboard; everything else is off.
PERMISSIONS_POLICY = ", ".join((
    "geolocation=(self)", "clipboard-write=(self)", "camera=()", "microphone=()",
    "payment=()", "usb=()", "serial=()", "hid=()", "midi=()", "magnetometer=()",
    "gyroscope=()", "accelerometer=()", "display-capture=()",
))

NON_HTML_POLICY = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


def init_security_headers(app: Flask) -> None:
    """Trust the configured proxies, expose ``csp_nonce()`` to templates and add the headers
    after every request."""
    hops = int(app.config.get("PROXY_FIX_HOPS") or 0)
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops,
                                x_port=hops)
    app.jinja_env.globals["csp_nonce"] = csp_nonce
    app.after_request(add_security_headers)
    app.teardown_request(_forget_nonce)


def csp_nonce() -> str:
    """This response's CSP nonce (created on first use; one per request)."""
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(NONCE_BYTES)
    return nonce


def _forget_nonce(exc=None) -> None:
    # an app context pushed around several requests (tests, CLI) must not share one nonce
    g.pop("csp_nonce", None)


def tile_source(tile_url: str | None) -> str | None:
    """The CSP source of the map tile server (``MAP_TILE_URL``): its scheme and host, with a
    ``{s}`` subdomain placeholder as a wildcard; None for no tiles or a same-origin path."""
    if not tile_url:
        return None
    parts = urlsplit(tile_url)
    if not parts.scheme or not parts.netloc:
        return None
    host = parts.netloc.replace("{s}", "*")
    return f"{parts.scheme}://{host}"


def content_security_policy(nonce: str, tile_url: str | None = None) -> str:
    images = ["'self'", "data:"]
    tiles = tile_source(tile_url)
    if tiles:
        images.append(tiles)
    directives = {
        "default-src": ["'self'"],
        "script-src": ["'self'", f"'nonce-{nonce}'"],
        # stylesheets only from here; style="" attributes stay allowed (many templates set a
        # computed width or colour) but never a <style> element: see docs/security.md
        "style-src": ["'self'", "'unsafe-inline'"],
        "style-src-elem": ["'self'", f"'nonce-{nonce}'"],
        "style-src-attr": ["'unsafe-inline'"],
        "img-src": images,
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
    return "; ".join(f"{name} {' '.join(values)}" for name, values in directives.items())


def add_security_headers(response):
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", PERMISSIONS_POLICY)
    if request.is_secure:
        max_age = int(current_app.config.get("HSTS_SECONDS") or 0)
        if max_age > 0:
            headers.setdefault("Strict-Transport-Security",
                               f"max-age={max_age}; includeSubDomains")
    if response.mimetype == "text/html":
        headers["Content-Security-Policy"] = content_security_policy(
            csp_nonce(), current_app.config.get("MAP_TILE_URL"))
        # the same URL answers a whole page or a fragment depending on these headers
        response.vary.add("HX-Request")
        response.vary.add("HX-Boosted")
        if current_user.is_authenticated:
            headers.setdefault("Cache-Control", "no-store")
    else:
        headers.setdefault("Content-Security-Policy", NON_HTML_POLICY)
    return response

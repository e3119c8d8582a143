"""Serves apps/chat/index.html with a Content-Security-Policy that allows exactly its own
inline script and style (by hash), so the page needs no 'unsafe-inline' and no other origin."""
from __future__ import annotations

import base64
import hashlib
import re

from aiohttp import web

_BLOCK = {"script": re.compile(r"<script>(.*?)</script>", re.S), "style": re.compile(r"<style>(.*?)</style>", re.S)}


def _hashes(html: str, tag: str) -> str:
    return " ".join("'sha256-" + base64.b64encode(hashlib.sha256(body.encode()).digest()).decode() + "'"
                    for body in _BLOCK[tag].findall(html))


def chat_page(path: str) -> web.Response:
    try:
        with open(path, encoding="utf-8") as handle:
            html = handle.read()
    except OSError:
        return web.Response(text=f"chat page not found at {path} (config chat_page)\n", status=404)
    csp = (f"default-src 'none'; script-src {_hashes(html, 'script')}; style-src {_hashes(html, 'style')}; "
           "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return web.Response(text=html, content_type="text/html", headers={
        "Content-Security-Policy": csp, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-cache"})

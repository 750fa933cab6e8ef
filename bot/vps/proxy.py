"""The proxy the environment asks for on the way to VPS.org.

httpx reads HTTP_PROXY / HTTPS_PROXY / ALL_PROXY / NO_PROXY itself only when it builds its own transport; the bot
hands it one (bot/vps/observed_transport.py counts every call), so the choice is made here, with the standard
library's reading of the same variables, and given to that transport.

Rules kept here:
- The proxy is chosen for the API URL's scheme (`https` → HTTPS_PROXY, …), falling back to ALL_PROXY.
- A host NO_PROXY names gets no proxy.
- Nothing set: None, a direct connection (as before).
"""

from __future__ import annotations

import urllib.request

import httpx


def environment_proxy(api_url: str) -> str | None:
    url = httpx.URL(api_url)
    proxies = urllib.request.getproxies_environment()
    chosen = proxies.get(url.scheme) or proxies.get("all")
    if not chosen:
        return None
    # In CPython's urllib.request since 3.0, undocumented, so typeshed leaves it out.
    if urllib.request.proxy_bypass_environment(url.host, proxies):  # type: ignore[attr-defined]
        return None
    return chosen

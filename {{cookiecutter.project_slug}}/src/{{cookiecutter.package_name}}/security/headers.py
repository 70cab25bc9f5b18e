"""The security headers every response carries, computed once from the settings.

The values are the OWASP Secure Headers Project's recommendations (its ci/headers_add.json), with
two departures: API responses get a stricter Content-Security-Policy (nothing may load or frame
them), and Clear-Site-Data is left out, as it wipes the caller's cookies and storage: it belongs
on a sign-out response only. The docs pages get a policy of their own that lets them run only
the service's own scripts and styles.
"""

from ..settings import Settings

Headers = list[tuple[bytes, bytes]]

API_POLICY = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI and ReDoc: scripts and style sheets from the service only, never inline; their own
# inline style attributes, data: images and ReDoc's search worker (a blob:) are allowed.
DOCS_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; font-src 'self'; connect-src 'self'; worker-src blob:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
PERMISSIONS_POLICY = (
    "accelerometer=(), autoplay=(), camera=(), cross-origin-isolated=(), display-capture=(), "
    "encrypted-media=(), fullscreen=(), geolocation=(), gyroscope=(), keyboard-map=(), "
    "magnetometer=(), microphone=(), midi=(), payment=(), picture-in-picture=(), "
    "publickey-credentials-get=(), screen-wake-lock=(), sync-xhr=(self), usb=(), web-share=(), "
    "xr-spatial-tracking=(), clipboard-read=(), clipboard-write=(), gamepad=(), hid=(), "
    "idle-detection=(), interest-cohort=(), serial=(), unload=()"
)
NO_CACHE = "no-store, max-age=0"
COMMON = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "permissions-policy": PERMISSIONS_POLICY,
    "cross-origin-opener-policy": "same-origin",
    "cross-origin-resource-policy": "same-origin",
    "cross-origin-embedder-policy": "require-corp",
    "x-permitted-cross-domain-policies": "none",
}


def encode(headers: dict[str, str]) -> Headers:
    return [(name.encode(), value.encode()) for name, value in headers.items()]


def common_headers(settings: Settings) -> dict[str, str]:
    headers = dict(COMMON)
    # Browsers ignore HSTS over plain HTTP, which is what development usually is; every other
    # environment is served over HTTPS, staging included.
    if settings.environment != "development" and settings.hsts_max_age_seconds:
        headers["strict-transport-security"] = (
            f"max-age={settings.hsts_max_age_seconds}; includeSubDomains"
        )
    return headers


def api_headers(settings: Settings) -> Headers:
    return encode(
        {
            **common_headers(settings),
            "content-security-policy": API_POLICY,
            "cache-control": NO_CACHE,
        }
    )


def docs_headers(settings: Settings, cache_control: str) -> Headers:
    return encode(
        {
            **common_headers(settings),
            "content-security-policy": DOCS_POLICY,
            "cache-control": cache_control,
        }
    )

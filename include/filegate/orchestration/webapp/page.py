"""The Filegate page shown inside the Airflow UI (an iframe from the nav entry) and its static files.

The page is a static shell; its script reads the REST API with the UI's `_token` cookie and builds the DOM
with textContent only, so nothing from the store (file names, error messages) can become markup.
"""

from __future__ import annotations

from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from filegate.orchestration.webapp import links
from filegate.orchestration.webapp.auth import CurrentUser, optional_user

STATIC_TYPES = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8",
                "docs.js": "text/javascript; charset=utf-8"}
# Same-origin only: the page talks to its own API and loads nothing from elsewhere.
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'")
# Swagger UI sets style attributes from its markup; everything it loads still comes from here.
DOCS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
            "connect-src 'self'; frame-ancestors 'self'; base-uri 'none'; form-action 'self'")
# Swagger UI's files come from the `fastapi-offline` wheel (requirements.txt): nothing is fetched from a CDN, so
# the API docs work where the api-server (or the operator's browser) has no way out to the internet.
SWAGGER_PACKAGE = "fastapi_offline"
SWAGGER_FILES = {"swagger-ui-bundle.js": "text/javascript; charset=utf-8", "swagger-ui.css": "text/css; charset=utf-8",
                 "favicon.png": "image/png"}
DOCS_HTML = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Filegate API</title>
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="icon" type="image/png" href="static/swagger/favicon.png">
  <link rel="stylesheet" href="static/swagger/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="openapi.json"></div>
<script src="static/swagger/swagger-ui-bundle.js"></script>
<script src="static/docs.js"></script>
</body>
</html>
"""
router = APIRouter()


def _static(name: str) -> str:
    return (resources.files("filegate.orchestration.webapp") / "static" / name).read_text(encoding="utf-8")


def docs_page() -> HTMLResponse:
    """The OpenAPI viewer (Swagger UI), every file of it served by this app."""
    return HTMLResponse(DOCS_HTML, headers={"Content-Security-Policy": DOCS_CSP, "X-Content-Type-Options": "nosniff",
                                            "Cache-Control": "no-store"})


@router.get("/", include_in_schema=False)
def root() -> RedirectResponse:
    return RedirectResponse("page", status_code=status.HTTP_307_TEMPORARY_REDIRECT)


@router.get("/page", response_class=HTMLResponse, summary="The Filegate page (HTML)")
def page(request: Request, user: Annotated[Any, Depends(optional_user)]) -> Response:
    if user is None:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(links.login_url(here), status_code=status.HTTP_307_TEMPORARY_REDIRECT)
    return HTMLResponse(_static("index.html"), headers={"Content-Security-Policy": PAGE_CSP,
                                                        "X-Content-Type-Options": "nosniff",
                                                        "Cache-Control": "no-store"})


@router.get("/static/swagger/{name}", include_in_schema=False)
def swagger_static(name: Annotated[str, Path(pattern=r"^[a-z-]+\.(js|css|png)$")], user: CurrentUser) -> Response:
    if name not in SWAGGER_FILES:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    body = (resources.files(SWAGGER_PACKAGE) / "static" / name).read_bytes()
    # The files change only with the pinned package: the browser may keep them for a day.
    return Response(body, media_type=SWAGGER_FILES[name], headers={"X-Content-Type-Options": "nosniff",
                                                                   "Cache-Control": "private, max-age=86400"})


@router.get("/static/{name}", include_in_schema=False)
def static(name: Annotated[str, Path(pattern=r"^(app|docs)\.(js|css)$")], user: CurrentUser) -> Response:
    if name not in STATIC_TYPES:
        raise HTTPException(status.HTTP_404_NOT_FOUND)
    return Response(_static(name), media_type=STATIC_TYPES[name], headers={"X-Content-Type-Options": "nosniff"})

"""The Filegate FastAPI app, mounted by plugins/filegate_plugin.py under PREFIX on the Airflow api-server."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, JSONResponse

from filegate.orchestration.webapp import api, ask_api, links, page, transactions_api
from filegate.orchestration.webapp.auth import CurrentUser

PREFIX = links.PLUGIN_PREFIX
DESCRIPTION = """
Files, statuses, history, API calls, quality, downloads, feed summaries, daily series and aggregates,
failures, daily reports, uploads and reprocessing, and the transactions API (the marketplace's sales with
typed filters), and questions in plain language (`POST /api/ask`). Every endpoint needs an Airflow user: send
`Authorization: Bearer <token>` (from `POST /auth/token`) or the `_token` cookie the Airflow UI sets.
Anonymous: 401; a bad token: 403.

What you see follows the Airflow permissions of each feed's DAG: a feed's files, history, API calls, quality,
downloads, errors, counts, series, summary and aggregates need read permission on the DAG `process_<feed>`
(lists and totals count only such feeds; `feed=` naming another one, a summary or aggregates of another one:
403; a file of another one: 404, as if it did not exist). Daily reports cover every feed: they need read
permission on `daily_report` and on every feed's DAG. Uploading needs permission to trigger `process_<feed>`;
reprocessing files needs permission to trigger `reprocess_files` (and read permission on each file's feed).

Lists are newest first; pass a page's `next_cursor` as `cursor` to get the next one.
"""


def create_app() -> FastAPI:
    # Airflow's api-server does not guard plugin apps: the docs get the same auth as every route.
    app = FastAPI(title="Filegate", version="1", description=DESCRIPTION, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.include_router(api.router)
    app.include_router(transactions_api.router)
    app.include_router(ask_api.router)
    app.include_router(page.router)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi(user: CurrentUser) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False)
    def docs(user: CurrentUser) -> HTMLResponse:
        return page.docs_page()  # Swagger UI from the installed package, never from a CDN

    return app


app: Any = create_app()

"""Headless Chromium (Debian's `chromium` package, driven by Playwright; no browser download) against a full
local stack with Airflow: log in, open Filegate from the UI's navigation, see the overview's charts, the processed
sample files and one file's detail, download its raw copy, rejected rows and reason, reprocess a quarantined file
from the page until it is final again, follow a step's link to its task log, and read the API docs with every
request beyond 127.0.0.1 refused. Screenshots go to tests/artifacts/; with FILEGATE_SCREENSHOTS=1 (`make
screenshots`) the overview, a file page and the docs page are also written to docs/images/.

Skips only when chromium is missing and CI is not set; in CI a missing browser is a failure (.ci/run installs it).
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
DOC_IMAGES = ROOT / "docs" / "images"
WRITE_DOC_IMAGES = os.environ.get("FILEGATE_SCREENSHOTS") == "1"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        pytest.fail(f"CI needs Debian's chromium at {CHROMIUM} (.ci/run installs it with apt-get)", pytrace=False)
    pytest.skip("Debian's `chromium` package is not installed (apt-get install chromium); in CI this test runs",
                allow_module_level=True)


SAMPLES = {"orders_2026-11-20.csv": "processed", "orders_wrong_columns.csv": "quarantined"}
TERMINAL = {"processed", "failed", "quarantined", "duplicate"}
PROCESSING_TIMEOUT_S = 480


def drop_samples(env: dict[str, str]) -> dict[str, dict]:
    """Drops two order files into raw/ (the S3 event starts process_orders) and waits for their final status."""
    import boto3

    from filegate.status.store import StatusStore
    from filegate.storage import keys

    s3 = boto3.client("s3", endpoint_url=env["AWS_ENDPOINT_URL"], region_name=env["AWS_DEFAULT_REGION"],
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    wanted = {keys.raw_key("orders", datetime.now(UTC).date(), name): name for name in SAMPLES}
    for key, name in wanted.items():
        s3.upload_file(str(ROOT / "include" / "samples" / "orders" / name), env["FILEGATE_BUCKET"], key)
    store = StatusStore.connect(env["FILEGATE_DB_URL"])
    deadline = time.monotonic() + PROCESSING_TIMEOUT_S
    while True:
        rows = store.reads.find_by_raw_keys(list(wanted))
        if all(k in rows and rows[k]["status"] in TERMINAL for k in wanted):
            return {wanted[k]: row for k, row in rows.items()}
        assert time.monotonic() < deadline, f"not processed within {PROCESSING_TIMEOUT_S} s: {rows}"
        time.sleep(2)


@pytest.fixture(scope="module")
def stack() -> Iterator[dict[str, str]]:
    from filegate_stack.config import Ports, StackConfig
    from filegate_stack.stack import Stack

    home = Path(tempfile.mkdtemp(prefix="fg-e2e-browser-"))
    # Only the DAGs this test looks at, so scheduled DAGs of other kinds do not compete for the two cores.
    dags = home / "dags"
    dags.mkdir()
    for dag_file in ("process_feeds.py", "daily_report.py", "reprocess_files.py"):
        shutil.copy(ROOT / "dags" / dag_file, dags / dag_file)
    # One day of reports to catch up on instead of every day since the team's start date.
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FILEGATE_REPORT_START_DATE", yesterday)
        mp.setenv("FILEGATE_HOME", str(home))
        # Free ports: another checkout (a CI run of a fresh clone) may run this test on the same machine.
        running = Stack(home, Ports.free(), StackConfig(db_url=None, airflow_db_url=None, stub_api_token=None,
                                                          dags_folder=dags, startup_timeout=180))
        try:
            running.start()
            files = drop_samples(running.env())
            assert {name: row["status"] for name, row in files.items()} == SAMPLES
            yield {"url": f"http://127.0.0.1:{running.ports.airflow}", "user": running.ctx.config.airflow_user,
                   "password": running.ctx.config.airflow_password, "db_url": running.env()["FILEGATE_DB_URL"],
                   "ids": {name: row["id"] for name, row in files.items()}}
        finally:
            leftovers = running.stop()
            # The stack's logs (api-server, scheduler, task logs) stay as artifacts for a failed run.
            shutil.rmtree(ARTIFACTS / "stack-logs", ignore_errors=True)
            shutil.copytree(home / "stack" / "logs", ARTIFACTS / "stack-logs", dirs_exist_ok=True)
            shutil.rmtree(home, ignore_errors=True)
            assert not leftovers, f"processes left behind: {leftovers}"


@pytest.fixture(scope="module")
def browser_page(stack):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            tempfile.mkdtemp(prefix="fg-chromium-"), executable_path=CHROMIUM, headless=True,
            viewport={"width": 1500, "height": 1000}, args=CHROMIUM_ARGS, accept_downloads=True)
        try:
            yield context.new_page()
        finally:
            context.close()


def test_login_navigate_and_inspect_a_file(stack, browser_page) -> None:
    page = browser_page
    try:
        walk_through(stack, page)
    except Exception:
        page.screenshot(path=str(ARTIFACTS / "failure.png"), full_page=True)
        raise


def sign_in(stack: dict[str, str], page, screenshot: bool = False) -> None:
    page.goto(stack["url"] + "/")
    page.wait_for_url(re.compile(r".*/auth/login.*"))
    page.fill("input[name=username]", stack["user"])
    page.fill("input[name=password]", stack["password"])
    if screenshot:
        page.screenshot(path=str(ARTIFACTS / "01_login.png"))
    page.click("button[type=submit]")
    page.get_by_role("heading", name="Welcome").wait_for()


def walk_through(stack: dict[str, str], page) -> None:
    from playwright.sync_api import expect

    # Two shared cores and a whole Airflow: be patient, but every wait still ends in a failure.
    page.set_default_timeout(120_000)
    expect.set_options(timeout=120_000)
    sign_in(stack, page, screenshot=True)
    page.wait_for_load_state("networkidle")
    page.get_by_role("heading", name="Welcome").wait_for()  # the translated heading, once the UI is ready
    page.screenshot(path=str(ARTIFACTS / "02_home.png"))

    # A lone plugin view sits in the nav itself; with several, Airflow groups them under a "Plugins" menu.
    nav_entry = page.locator("a[href='/plugin/filegate']")
    page.locator("a[href='/plugin/filegate'], button:has-text('Plugins')").first.wait_for()
    if not nav_entry.count():
        page.get_by_role("button", name="Plugins").click()
    nav_entry.first.click()
    page.wait_for_url(re.compile(r".*/plugin/filegate$"))
    frame = page.frame_locator("iframe[title='Filegate']")
    expect(frame.locator("#who")).to_contain_text("signed in as admin")
    expect(frame.locator("#counts table")).to_contain_text("orders")
    expect(frame.locator("#tiles")).to_contain_text("processed")
    expect(frame.locator("#feed-stats table")).to_contain_text("orders")  # per-feed numbers loaded
    # The charts, drawn as SVG from /api/series: today's bar stacks both statuses, orders' rejected share is
    # 3 of 15 rows, and today has a latency point for each percentile.
    today = datetime.now(UTC).date().isoformat()
    expect(frame.locator(f"#chart-files rect[data-day='{today}']")).to_have_count(2)
    expect(frame.locator("#chart-files title", has_text=f"{today}: 1 quarantined")).to_have_count(1)
    expect(frame.locator("#chart-rejected rect[data-feed='orders'] title")).to_have_text(
        "orders: 3 of 15 rows rejected")
    expect(frame.locator("#chart-latency circle.p50")).to_have_count(1)
    expect(frame.locator("#chart-latency circle.p95")).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "03_overview.png"))
    if WRITE_DOC_IMAGES:
        page.screenshot(path=str(DOC_IMAGES / "overview.png"))

    frame.get_by_role("tab", name="Files").click()
    table = frame.locator("#file-table table")
    for name in SAMPLES:
        expect(table).to_contain_text(name)
    expect(table).to_contain_text("missing column(s) order_id")
    page.screenshot(path=str(ARTIFACTS / "04_files.png"))

    frame.locator("#file-table tr", has_text="orders_2026-11-20.csv").click()
    detail = frame.locator("#detail")
    expect(detail.locator("h2")).to_contain_text("orders_2026-11-20.csv")
    expect(detail).to_contain_text("12 valid, 3 rejected")
    expect(detail).to_contain_text("deliver_records log")
    expect(detail.locator("table").nth(1)).to_contain_text("processed")  # history ends processed
    expect(detail).to_contain_text("s3://filegate-local/processed/orders/")
    detail.screenshot(path=str(ARTIFACTS / "05_file_detail.png"))
    page.screenshot(path=str(ARTIFACTS / "05_file_detail_page.png"), full_page=True)
    # Downloads come from S3 through the API, under the names of their keys.
    raw = download(page, frame, "raw copy")
    assert raw.name == "orders_2026-11-20.csv"
    assert raw.content == (ROOT / "include" / "samples" / "orders" / "orders_2026-11-20.csv").read_bytes()
    rejected = download(page, frame, "rejected rows (CSV)")
    assert rejected.name.endswith(".rejected.csv")
    assert len(list(csv.reader(io.StringIO(rejected.content.decode())))) == 1 + 3  # a header and the 3 rejected rows
    expect(detail.get_by_role("link", name="reason (JSON)")).to_have_count(0)  # processed: a summary, no reason

    reprocess_from_the_page(stack, page, frame)

    frame.get_by_role("tab", name="Failures").click()
    expect(frame.locator("#failure-table")).to_contain_text("orders_wrong_columns.csv")
    page.screenshot(path=str(ARTIFACTS / "06_failures.png"))

    # The stack's daily_report catches up on yesterday (FILEGATE_REPORT_START_DATE) right after it starts.
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    for _ in range(60):
        frame.get_by_role("tab", name="Daily reports").click()
        if frame.locator("#report-list table", has_text=yesterday).count():
            break
        page.wait_for_timeout(3000)
    frame.get_by_role("link", name=yesterday).click()
    expect(frame.frame_locator("#report-frame").locator("h1")).to_contain_text(f"Filegate daily report — {yesterday}")
    page.screenshot(path=str(ARTIFACTS / "07_daily_report.png"))

    frame.get_by_role("tab", name="Files").click()
    frame.locator("#file-table tr", has_text="orders_2026-11-20.csv").click()
    expect(frame.locator("#detail h2")).to_contain_text("orders_2026-11-20.csv")  # not the file shown before
    frame.get_by_role("link", name="process_files log").click()
    # The link asks the Airflow UI around the iframe to open the task instance (its log tab).
    page.wait_for_url(re.compile(r".*/dags/process_orders/runs/.+/tasks/process_files.*"))
    expect(page.locator("iframe[title='Filegate']")).to_have_count(0)
    expect(page.get_by_text("Done. Returned value was").first).to_be_visible()  # the task's log is shown
    page.screenshot(path=str(ARTIFACTS / "08_task_log.png"))


class Downloaded:
    def __init__(self, name: str, content: bytes) -> None:
        self.name = name
        self.content = content


def download(page, frame, label: str) -> Downloaded:
    with page.expect_download() as started:
        frame.locator("#detail").get_by_role("link", name=label).click()
    done = started.value
    path = done.path()
    assert done.failure() is None and path is not None, done.failure()
    return Downloaded(done.suggested_filename, Path(path).read_bytes())


def reprocess_from_the_page(stack: dict[str, str], page, frame) -> None:
    """Select the quarantined file on the Failures tab, reprocess it, confirm; the reprocess_files run takes it
    back to a final status, and its history names the user who asked, with the run."""
    from playwright.sync_api import expect

    from filegate.status.store import StatusStore

    file_id = stack["ids"]["orders_wrong_columns.csv"]
    frame.get_by_role("tab", name="Failures").click()
    row = frame.locator("#failure-table tr", has_text="orders_wrong_columns.csv")
    row.get_by_role("checkbox").check()
    frame.locator("#failures .actions").get_by_role("button", name="Reprocess selected (1)").click()
    expect(frame.locator("#confirm")).to_contain_text("Reprocess 1 file(s)")
    frame.get_by_role("button", name="Confirm").click()
    expect(frame.locator("#notice")).to_contain_text(f"Reprocessing #{file_id} requested by {stack['user']}")
    run_id = frame.locator("#notice a").inner_text()
    assert run_id.startswith("manual__"), run_id

    reads = StatusStore.connect(stack["db_url"], migrate=False).reads
    deadline = time.monotonic() + PROCESSING_TIMEOUT_S
    while True:
        history = reads.history(file_id)
        last = history[-1]  # the request's own entry is final too (the status it left alone): wait for a task's
        if last["run_id"] == run_id and last["task_id"] and last["to_status"] in TERMINAL:
            break
        assert time.monotonic() < deadline, f"not reprocessed within {PROCESSING_TIMEOUT_S} s: {history[-3:]}"
        time.sleep(2)
    requested = [e for e in history if e["message"] == f"reprocess requested by {stack['user']} (run {run_id})"]
    assert len(requested) == 1 and requested[0]["dag_id"] == "reprocess_files"
    assert [e["task_id"] for e in history[-3:]] == ["requeue_files", "requeue_files", "process_files"]

    row.click()  # the file's page shows the new history and the reason to download
    detail = frame.locator("#detail")
    expect(detail.locator("h2")).to_contain_text("orders_wrong_columns.csv")
    expect(detail).to_contain_text(f"reprocess requested by {stack['user']} (run {run_id})")
    expect(detail.locator("table", has_text="reprocess requested")).to_contain_text("reprocess_files.process_files")
    reason = download(page, frame, "reason (JSON)")
    assert reason.name.endswith(".reason.json") and b"missing column(s) order_id" in reason.content
    page.screenshot(path=str(ARTIFACTS / "06b_reprocessed.png"), full_page=True)
    if WRITE_DOC_IMAGES:
        detail.locator("h2").scroll_into_view_if_needed()
        page.screenshot(path=str(DOC_IMAGES / "file.png"))  # the viewport: the UI around the file's page


def test_api_docs_render_with_no_outside_network(stack, browser_page) -> None:
    """Swagger UI comes from the api-server (the fastapi-offline package), not from a CDN: with every request
    beyond 127.0.0.1 refused, the docs still list the operations."""
    from playwright.sync_api import expect

    page = browser_page.context.new_page()  # the signed-in browser: the docs need the UI's cookie
    refused: list[str] = []

    def only_local(route) -> None:
        if urlsplit(route.request.url).hostname in ("127.0.0.1", "localhost"):
            route.continue_()
        else:
            refused.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)
    try:
        page.goto(stack["url"] + "/filegate/docs")
        if "/auth/login" in page.url or page.locator("input[name=username]").count():  # run on its own
            sign_in(stack, page)
            page.goto(stack["url"] + "/filegate/docs")
        expect(page.locator(".opblock-summary-path", has_text="/api/reprocess")).to_be_visible(timeout=60_000)
        expect(page.locator(".opblock-summary-path", has_text="/api/files/{file_id}/download/{kind}")).to_be_visible()
        assert page.locator(".opblock").count() >= 15
        assert refused == [], refused
        page.screenshot(path=str(ARTIFACTS / "09_api_docs.png"))
        if WRITE_DOC_IMAGES:
            page.screenshot(path=str(DOC_IMAGES / "api-docs.png"))
    finally:
        page.close()


def test_anonymous_visitor_gets_the_login_page(stack, browser_page) -> None:
    context = browser_page.context
    context.clear_cookies()  # signed out: the same browser, without the UI's `_token` cookie
    page = context.new_page()
    page.goto(stack["url"] + "/filegate/page")
    page.wait_for_url(re.compile(r".*/auth/login.*"))
    api = page.request.get(stack["url"] + "/filegate/api/files")
    assert api.status == 401 and api.headers["content-type"].startswith("application/json")

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


def seed_delivery_slots(db_url: str) -> dict[str, str]:
    """stock_levels (its contract expects a closing count every business day): yesterday's slot missed, today's
    late with its file. The stack here runs no watch_deliveries, so the rows stay as seeded."""
    import uuid

    from filegate.status.store import Actor, StatusStore

    store = StatusStore.connect(db_url)
    today = datetime.now(UTC).replace(hour=5, minute=0, second=0, microsecond=0)
    slots = {"missed": today - timedelta(days=1), "late": today}
    rows = {state: {"feed": "stock_levels", "expected_at": at, "deadline_at": at + timedelta(hours=1),
                    "local_day": at.date(), "pattern": f"stock_{at:%Y-%m-%d}_close.tsv", "files_expected": 1}
            for state, at in slots.items()}
    store.slots.add(list(rows.values()))
    name = f"stock_{today:%Y-%m-%d}_close.tsv"
    late = store.register(feed="stock_levels", source="s3", raw_key=f"raw/stock_levels/{today:%Y/%m/%d}/{name}",
                          name=name, sha256=uuid.uuid4().hex * 2, size_bytes=10, actor=Actor(task_id="e2e"))
    store.slots.attach(rows["late"], late.file_id, today + timedelta(hours=3))
    for slot in store.slots.open_slots("stock_levels"):
        state = next((s for s, at in slots.items() if at == slot["expected_at"]), None)
        if state is not None:
            store.slots.set_state(slot["id"], state, delay_seconds=10_800 if state == "late" else None,
                                  satisfied_at=today + timedelta(hours=3) if state == "late" else None)
    return {state: at.date().isoformat() for state, at in slots.items()} | {"file": name}


def test_delivery_calendar_colours_each_days_slots(stack, browser_page) -> None:
    """The Deliveries tab: a row per feed with `expect:`, a cell per day coloured by its slots' state; a click
    lists the slots with their files."""
    from playwright.sync_api import expect

    seeded = seed_delivery_slots(stack["db_url"])
    page = browser_page.context.new_page()
    try:
        page.goto(stack["url"] + "/filegate/page?tab=deliveries")
        if "/auth/login" in page.url or page.locator("input[name=username]").count():  # run on its own
            sign_in(stack, page)
            page.goto(stack["url"] + "/filegate/page?tab=deliveries")
        row = page.locator("#delivery-calendar tr[data-feed='stock_levels']")
        expect(row.locator(f"td[data-day='{seeded['missed']}']")).to_have_class(re.compile(r"\bd-missed\b"),
                                                                                timeout=60_000)
        late = row.locator(f"td[data-day='{seeded['late']}']")
        expect(late).to_have_class(re.compile(r"\bd-late\b"))
        late.click()
        detail = page.locator("#delivery-detail")
        expect(detail).to_contain_text(seeded["file"])
        expect(detail).to_contain_text("3 h 00 min")
        page.screenshot(path=str(ARTIFACTS / "10_deliveries.png"), full_page=True)
        if WRITE_DOC_IMAGES:
            page.locator("#deliveries").screenshot(path=str(DOC_IMAGES / "deliveries.png"))
    finally:
        page.close()


def reordered_orders() -> tuple[str, bytes]:
    """Orders whose sku and customer_email columns swapped places: the feed's schema version 1 (from
    orders_2026-11-20.csv) no longer matches, and orders keeps the default policy, warn."""
    header = "order_id,order_date,sku,customer_email,quantity,unit_price,currency"
    rows = [f"{5000 + n},2026-11-21,ABC-{1000 + n},buyer{n}@example.com,{n + 1},9.99,EUR" for n in range(6)]
    return f"orders_2026-11-21_reordered_{int(time.time())}.csv", ("\n".join([header, *rows]) + "\n").encode()


def test_a_files_page_shows_its_schema_drift(stack, browser_page) -> None:
    """A file uploaded with its columns in another order is processed (schema_drift: warn) and its page shows
    the drift against the feed's version: the kind of change, the columns and what the policy did."""
    from playwright.sync_api import expect

    from filegate.status.store import StatusStore

    page = browser_page.context.new_page()
    try:
        page.goto(stack["url"] + "/filegate/page?tab=files")
        if "/auth/login" in page.url or page.locator("input[name=username]").count():  # run on its own
            sign_in(stack, page)
            page.goto(stack["url"] + "/filegate/page?tab=files")
        name, body = reordered_orders()
        uploaded = page.request.post(stack["url"] + "/filegate/api/feeds/orders/files",
                                     multipart={"file": {"name": name, "mimeType": "text/csv", "buffer": body}})
        assert uploaded.status == 201, uploaded.text()
        store = StatusStore.connect(stack["db_url"])
        deadline = time.monotonic() + PROCESSING_TIMEOUT_S
        while not (row := next((r for r in store.reads.recent_files(feed="orders") if r["name"] == name), None)) \
                or row["status"] not in TERMINAL:
            assert time.monotonic() < deadline, f"{name} not final within {PROCESSING_TIMEOUT_S} s: {row}"
            time.sleep(2)
        assert row["status"] == "processed", row["error"]

        page.reload()
        page.locator("#file-table tr", has_text=name).click()
        drift = page.locator("#detail #schema-drift")
        expect(drift).to_contain_text("Against version 1 → version 2: accepted as a new schema version, with an "
                                      "alert (schema_drift: warn).", timeout=30_000)
        expect(drift.locator("tr.drift-reordered")).to_have_count(1)
        expect(drift.locator("tr.drift-reordered")).to_contain_text("columns reordered")
        expect(drift).to_contain_text("order_id int, order_date date, sku string, customer_email string")
        page.locator("#detail").screenshot(path=str(ARTIFACTS / "11_schema_drift.png"))
        if WRITE_DOC_IMAGES:  # the file's heading down to its drift section
            top, end = page.locator("#detail").bounding_box(), drift.bounding_box()
            scrolled = page.evaluate("window.scrollY")  # bounding boxes are in the viewport, the clip in the page
            page.screenshot(path=str(DOC_IMAGES / "schema-drift.png"), full_page=True,
                            clip={"x": top["x"], "y": top["y"] + scrolled, "width": top["width"],
                                  "height": end["y"] + end["height"] + 12 - top["y"]})
    finally:
        page.close()


def test_a_files_page_shows_its_lineage(stack, browser_page) -> None:
    """The processed sample's view: its raw object → the job filegate.orders → its Parquet keys, the API endpoint
    and its rejected rows, with row counts and the failed assertions; the stack's lineage receiver got the file's
    START and COMPLETE through the OpenLineage provider's HTTP transport."""
    from playwright.sync_api import expect

    page = browser_page.context.new_page()
    try:
        page.goto(stack["url"] + "/filegate/page?tab=files")
        if "/auth/login" in page.url or page.locator("input[name=username]").count():  # run on its own
            sign_in(stack, page)
            page.goto(stack["url"] + "/filegate/page?tab=files")
        page.locator(f"#file-table tr[data-id='{stack['ids']['orders_2026-11-20.csv']}']").click()
        lineage = page.locator("#detail #lineage")
        expect(lineage).to_contain_text("filegate-local/filegate.orders", timeout=30_000)
        expect(lineage).to_contain_text("15 in · 12 valid · 3 rejected")
        expect(lineage).to_contain_text("/v1/orders")
        expect(lineage.locator(".lineage-failed").first).to_contain_text("failed")
        expect(lineage).to_contain_text("received by the lineage backend: START, COMPLETE", timeout=30_000)
        lineage.screenshot(path=str(ARTIFACTS / "12_lineage.png"))
    finally:
        page.close()


def test_the_ask_box_answers_with_rows_and_the_sql(stack, browser_page) -> None:
    """The Ask tab: a question in words → what was understood, the SQL that ran, a chart and the rows; a question
    outside the grammar → the refusal with examples."""
    import psycopg
    from playwright.sync_api import expect

    page = browser_page.context.new_page()
    try:
        page.goto(stack["url"] + "/filegate/page?tab=ask")
        if "/auth/login" in page.url or page.locator("input[name=username]").count():  # run on its own
            sign_in(stack, page)
            page.goto(stack["url"] + "/filegate/page?tab=ask")
        page.fill("#ask-question", "files per status of the orders feed today")
        page.click("#ask-form button[type=submit]")
        expect(page.locator("#ask-sql")).to_contain_text("FROM ask.files", timeout=30_000)
        expect(page.locator("#ask-sql")).to_contain_text("feed = 'orders'")
        answer = page.locator("#ask-answer")
        with psycopg.connect(stack["db_url"]) as conn:  # other tests of this module add orders files too
            statuses = [r[0] for r in conn.execute(
                "SELECT status FROM file WHERE feed = 'orders' AND coalesce(arrived_on, (created_at AT TIME ZONE "
                "'UTC')::date) = (now() AT TIME ZONE 'UTC')::date GROUP BY status").fetchall()]
        assert "quarantined" in statuses or "processed" in statuses
        expect(answer.locator("tbody tr")).to_have_count(len(statuses))
        for status in statuses:
            expect(answer.locator("tbody")).to_contain_text(status)
        if len(statuses) > 1:
            expect(answer.locator("svg.chart-svg rect.bar")).to_have_count(len(statuses))
        page.screenshot(path=str(ARTIFACTS / "11_ask.png"), full_page=True)
        page.locator("#ask-examples a.ask-example", has_text="files per status today").click()  # an example asks itself
        expect(page.locator("#ask-question")).to_have_value("files per status today")
        expect(page.locator("#ask-sql")).not_to_contain_text("feed = 'orders'")
        page.fill("#ask-question", "what is the weather tomorrow")
        page.click("#ask-form button[type=submit]")
        expect(page.locator("#ask-refusal")).to_contain_text("Questions I understand look like")
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

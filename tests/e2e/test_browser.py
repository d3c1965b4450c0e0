"""Headless Chromium (Debian's `chromium` package, driven by Playwright; no browser download) against a full
local stack with Airflow: log in, open Filegate from the UI's navigation, see the processed sample files and one
file's detail, follow a step's link to its task log. Screenshots go to tests/artifacts/.

Skips only when chromium is missing and CI is not set; in CI a missing browser is a failure (.ci/run installs it).
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# The port block this test owns (moto, lambda, ftp, stub API, Airflow; FTP passive range).
PORTS = {"moto": 5510, "lambda_": 5511, "ftp": 5512, "stub_api": 5513, "airflow": 5514, "ftp_passive": (5520, 5529)}
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
    for dag_file in ("process_feeds.py", "daily_report.py"):
        shutil.copy(ROOT / "dags" / dag_file, dags / dag_file)
    # One day of reports to catch up on instead of every day since the team's start date.
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("FILEGATE_REPORT_START_DATE", yesterday)
        mp.setenv("FILEGATE_HOME", str(home))
        running = Stack(home, Ports(**PORTS), StackConfig(db_url=None, airflow_db_url=None, stub_api_token=None,
                                                          dags_folder=dags, startup_timeout=180))
        try:
            running.start()
            files = drop_samples(running.env())
            assert {name: row["status"] for name, row in files.items()} == SAMPLES
            yield {"url": f"http://127.0.0.1:{PORTS['airflow']}", "user": running.ctx.config.airflow_user,
                   "password": running.ctx.config.airflow_password}
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
            viewport={"width": 1500, "height": 1000}, args=CHROMIUM_ARGS)
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


def walk_through(stack: dict[str, str], page) -> None:
    from playwright.sync_api import expect

    # Two shared cores and a whole Airflow: be patient, but every wait still ends in a failure.
    page.set_default_timeout(120_000)
    expect.set_options(timeout=120_000)
    page.goto(stack["url"] + "/")
    page.wait_for_url(re.compile(r".*/auth/login.*"))
    page.fill("input[name=username]", stack["user"])
    page.fill("input[name=password]", stack["password"])
    page.screenshot(path=str(ARTIFACTS / "01_login.png"))
    page.click("button[type=submit]")
    page.get_by_role("heading", name="Welcome").wait_for()
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
    page.screenshot(path=str(ARTIFACTS / "03_overview.png"))

    frame.get_by_role("tab", name="Files").click()
    table = frame.locator("#file-table table")
    for name in SAMPLES:
        expect(table).to_contain_text(name)
    expect(table).to_contain_text("missing column(s) order_id")
    page.screenshot(path=str(ARTIFACTS / "04_files.png"))

    frame.locator("#file-table tr", has_text="orders_2026-11-20.csv").click()
    detail = frame.locator("#detail")
    expect(detail).to_contain_text("File #")
    expect(detail).to_contain_text("12 valid, 3 rejected")
    expect(detail).to_contain_text("deliver_records log")
    expect(detail.locator("table").nth(1)).to_contain_text("processed")  # history ends processed
    expect(detail).to_contain_text("s3://filegate-local/processed/orders/")
    detail.screenshot(path=str(ARTIFACTS / "05_file_detail.png"))
    page.screenshot(path=str(ARTIFACTS / "05_file_detail_page.png"), full_page=True)

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
    frame.get_by_role("link", name="process_files log").click()
    # The link asks the Airflow UI around the iframe to open the task instance (its log tab).
    page.wait_for_url(re.compile(r".*/dags/process_orders/runs/.+/tasks/process_files.*"))
    expect(page.locator("iframe[title='Filegate']")).to_have_count(0)
    expect(page.get_by_text("Done. Returned value was").first).to_be_visible()  # the task's log is shown
    page.screenshot(path=str(ARTIFACTS / "08_task_log.png"))


def test_anonymous_visitor_gets_the_login_page(stack, browser_page) -> None:
    context = browser_page.context
    context.clear_cookies()  # signed out: the same browser, without the UI's `_token` cookie
    page = context.new_page()
    page.goto(stack["url"] + "/filegate/page")
    page.wait_for_url(re.compile(r".*/auth/login.*"))
    api = page.request.get(stack["url"] + "/filegate/api/files")
    assert api.status == 401 and api.headers["content-type"].startswith("application/json")

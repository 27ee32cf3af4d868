"""`choreo ui` in a real browser (Debian's chromium, headless, driven by selenium) on a real saga run:
the live saga list, a completed and a compensated saga's timeline, and a service's page.

`make test` installs chromium and chromium-driver with apt-get when they are missing. Set
CHOREO_UI_SCREENSHOTS to a folder (docs/images) to keep the screenshots docs/operator-tools.md shows.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement

from choreo.kafka import clients
from choreo.kafka.partitioner import partition_for
from choreo.stack.ports import free_port
from harness.env import child_env
from harness.processes import CHOREO, ChildProcess, wait_until
from harness.stack import StackEndpoints
from harness.topics import unique_prefix
from producers import commands, seed
from tests.support.saga_run import SagaRun

pytestmark = pytest.mark.e2e

_BROWSER = ("chromium", "chromium-browser")
_DRIVER = "chromedriver"


def _now() -> datetime:
    return datetime.now(UTC)


class Ui:
    """A finished saga run with `choreo ui` serving it, and the orders by path."""

    def __init__(self, saga: SagaRun, server: ChildProcess, url: str, orders: dict[str, Any]) -> None:
        self.saga = saga
        self.server = server
        self.url = url
        self.orders = orders

    def trace(self, order_id: str) -> dict[str, Any]:
        out = self.saga.choreo("trace", order_id, "--json")
        assert out.returncode == 0, out.stderr
        return dict(json.loads(out.stdout))


@pytest.fixture(scope="module")
def ui(stack: StackEndpoints, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ui]:
    tmp = tmp_path_factory.mktemp("ui")
    saga = SagaRun(stack.bootstrap_servers, stack.schema_registry_url, unique_prefix(), tmp)
    server = None
    try:
        saga.seed(_now())
        saga.start_all()
        hub = "hub-north"
        sku, address = seed.stocked_skus(hub)[0], seed.deliverable_addresses(hub)[0]
        orders = {
            "completed": commands.place_order(hub, sku, 1, address, _now()),
            "compensated": commands.place_order(hub, sku, 1, seed.UNKNOWN_ADDRESSES[0], _now()),
            "out_of_stock": commands.place_order(hub, seed.UNSTOCKED_SKU, 1, address, _now()),
        }
        saga.send(orders.values())
        saga.wait_for_ends([o.order_id for o in orders.values()])
        # The drone and the stock of the compensated saga come back just after orders' verdict.
        returned = {"DroneReleased", "StockReleased"}
        wait_until(lambda: returned <= set(saga.saga(orders["compensated"].order_id)),
                   60, "the compensations of the failed delivery")
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = ChildProcess("ui", [*CHOREO, "ui", "--port", str(port)], child_env(saga.settings),
                              tmp / "ui.log")

        def answers() -> bool:
            assert server is not None and server.alive(), f"choreo ui ended:\n{server and server.log()}"
            try:
                return httpx.get(url + "/", timeout=2).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(answers, 60, "choreo ui to answer")
        yield Ui(saga, server, url, orders)
    finally:
        if server is not None:
            server.stop(10)
        saga.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    binary = next((shutil.which(b) for b in _BROWSER if shutil.which(b)), None)
    driver_path = shutil.which(_DRIVER)
    if binary is None or driver_path is None:
        pytest.fail("the browser test needs Debian's chromium and chromium-driver: run `make test` (it "
                    "installs them with apt-get) or `apt-get install chromium chromium-driver`")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1500,1000"):
        options.add_argument(arg)
    try:
        driver = webdriver.Chrome(options=options, service=DriverService(executable_path=driver_path))
    except WebDriverException as e:
        pytest.fail(f"chromium did not start under chromedriver: {e.msg}")
    try:
        yield driver
    finally:
        driver.quit()


def _screenshot(driver: webdriver.Chrome, name: str, tmp: Path) -> None:
    driver.save_screenshot(str(tmp / name))
    keep = os.environ.get("CHOREO_UI_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(tmp / name, Path(keep) / name)


def _rows(driver: webdriver.Chrome) -> dict[str, str]:
    """saga id -> outcome, as the list shows them now."""
    # Read in one script: the live list may replace the rows between two WebDriver calls.
    pairs = driver.execute_script(
        "return Array.from(document.querySelectorAll('#saga-rows tr.saga'))"
        ".map(function (r) { return [r.dataset.saga, r.dataset.outcome]; });")
    return {saga: outcome for saga, outcome in pairs}


def test_the_saga_list_shows_every_saga_with_its_outcome_and_updates_live(
    ui: Ui, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    browser.get(ui.url + "/")
    want = {ui.orders["completed"].order_id: "completed", ui.orders["compensated"].order_id: "compensated",
            ui.orders["out_of_stock"].order_id: "compensated"}
    wait_until(lambda: want.items() <= _rows(browser).items(), 60, f"the list to show {want}")
    wait_until(lambda: browser.find_element(By.ID, "live-state").text != "connecting", 30,
               "the live list to connect")
    # A saga placed while the page is open appears without a reload (server-sent events).
    hub = "hub-south"
    late = commands.place_order(hub, seed.stocked_skus(hub)[0], 1, seed.deliverable_addresses(hub)[0], _now())
    ui.saga.send([late])
    wait_until(lambda: _rows(browser).get(late.order_id) == "completed", 90,
               "the new saga to appear, completed, in the open list")
    _screenshot(browser, "ui-saga-list.png", tmp_path)

    browser.get(ui.url + "/?outcome=compensated&reason=OUT_OF_STOCK")
    assert set(_rows(browser)) == {ui.orders["out_of_stock"].order_id}
    browser.get(ui.url + "/?key=hub-south")
    assert set(_rows(browser)) == {late.order_id}
    browser.get(ui.url + "/?since=2000-01-01T00:00&until=2000-01-02T00:00")
    assert _rows(browser) == {}


def _open_saga(ui: Ui, browser: webdriver.Chrome, order_id: str) -> None:
    browser.get(ui.url + "/")
    wait_until(lambda: order_id in _rows(browser), 60, f"saga {order_id} in the list")
    # Followed by script: the live list may replace the row between finding and clicking it.
    browser.execute_script("document.querySelector(arguments[0]).click();", f'tr[data-saga="{order_id}"] a')
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, "svg.timeline"), 60, "the timeline")


def _check_timeline(browser: webdriver.Chrome, trace: dict[str, Any]) -> dict[str, WebElement]:
    """The drawing matches `choreo trace`: a lane per emitter, an event per step, an arrow per cause."""
    steps = trace["steps"]
    lanes = [g.get_attribute("data-lane") or ""
             for g in browser.find_elements(By.CSS_SELECTOR, "svg.timeline g.lane")]
    assert sorted(lanes) == sorted({s["emitter"] for s in steps})
    events = {g.get_attribute("data-step") or "": g
              for g in browser.find_elements(By.CSS_SELECTOR, "svg.timeline g.event")}
    assert set(events) == {str(s["step"]) for s in steps}
    for s in steps:
        g = events[str(s["step"])]
        assert g.get_attribute("data-type") == s["type"].rsplit(".", 1)[1]
        assert g.get_attribute("data-lane") == s["emitter"]
        assert g.get_attribute("data-role") == (s["role"] or "step")
        title = g.find_element(By.TAG_NAME, "title").get_attribute("textContent") or ""
        assert s["event"]["event_id"] in title  # the details on hover
    arrows = {(p.get_attribute("data-from"), p.get_attribute("data-to"))
              for p in browser.find_elements(By.CSS_SELECTOR, "svg.timeline path.cause")}
    assert arrows == {(str(s["caused_by"]), str(s["step"])) for s in steps if s["caused_by"] is not None}
    assert len(arrows) == len(steps) - 1  # every event but the command has its cause in the saga
    return events


def test_a_completed_saga_has_a_lane_per_service_and_an_arrow_per_cause(
    ui: Ui, browser: webdriver.Chrome
) -> None:
    order_id = ui.orders["completed"].order_id
    _open_saga(ui, browser, order_id)
    trace = ui.trace(order_id)
    events = _check_timeline(browser, trace)
    assert {s["emitter"] for s in trace["steps"]} == {"edge", "orders", "packaging", "drones", "delivery"}
    assert browser.find_element(By.ID, "saga-outcome").text == "completed"
    assert not browser.find_elements(By.CSS_SELECTOR, "svg.timeline g.event.compensation")
    assert not browser.find_elements(By.CSS_SELECTOR, "svg.timeline g.event.failure")
    end = [g.get_attribute("data-type") for g in events.values() if g.get_attribute("data-role") == "end"]
    assert end == ["OrderCompleted"]
    # Clicking an event leads to its row of details.
    events["2"].click()
    assert browser.current_url.endswith("#step-2")
    assert "OrderPlaced" in browser.find_element(By.ID, "step-2").text


def test_a_compensated_saga_marks_its_failures_and_compensations(
    ui: Ui, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    order_id = ui.orders["compensated"].order_id
    _open_saga(ui, browser, order_id)
    trace = ui.trace(order_id)
    _check_timeline(browser, trace)
    assert browser.find_element(By.ID, "saga-outcome").text == "compensated"

    def marked(role: str) -> list[str]:
        return sorted(g.get_attribute("data-type") or "" for g in
                      browser.find_elements(By.CSS_SELECTOR, f"svg.timeline g.event.{role}"))

    assert marked("failure") == ["DeliveryFailed", "OrderFailed"]
    assert marked("compensation") == ["DroneReleased", "StockReleased"]
    assert marked("end") == ["OrderCompensated"]
    _screenshot(browser, "ui-saga-timeline.png", tmp_path)


def test_a_service_page_shows_rate_lag_dead_letters_and_state(ui: Ui, browser: webdriver.Chrome) -> None:
    browser.get(ui.url + "/services/packaging")
    wait_until(lambda: browser.find_elements(By.ID, "lag"), 60, "the packaging page's lag")
    assert int(browser.find_element(By.ID, "lag").text) >= 0
    assert float(browser.find_element(By.ID, "rate").text) >= 0
    assert "Dead letters" in browser.page_source
    tables = {t.get_attribute("data-table") for t in browser.find_elements(By.CSS_SELECTOR, "table.state")}
    assert tables, "no state table on the packaging page"
    stock = browser.find_element(By.CSS_SELECTOR, "table.state").text
    assert "hub-north" in stock


def _dead_letter_rows(browser: webdriver.Chrome) -> list[str]:
    return [r.text for r in browser.find_elements(By.CSS_SELECTOR, "tr.dead-letter")]


def test_a_dead_letter_is_listed_with_its_reason_and_retried_only_after_a_confirmation(
    ui: Ui, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    # Bytes that are no Avro record: the orders worker dead-letters them as undecodable.
    producer = clients.plain_producer(ui.saga.settings)
    producer.produce(ui.saga.topic("orders.commands"), key=b"hub-north", value=b"not a record",
                     partition=partition_for(b"hub-north", 4))
    assert producer.flush(30) == 0

    def listed() -> list[str]:
        browser.get(ui.url + "/services/orders")
        return _dead_letter_rows(browser)

    wait_until(lambda: len(listed()) == 1, 90, "the dead letter on the orders page")
    (row,) = _dead_letter_rows(browser)
    assert "DecodeError" in row and row.endswith("retry…"), row  # its error, and not retried yet
    _screenshot(browser, "ui-service.png", tmp_path)
    browser.find_element(By.LINK_TEXT, "retry…").click()
    wait_until(lambda: browser.find_elements(By.ID, "confirm-retry"), 30, "the confirmation page")
    assert _dead_letter_count(ui) == 1  # asking is not retrying
    browser.find_element(By.ID, "confirm-retry").click()
    wait_until(lambda: browser.find_elements(By.ID, "retried"), 60, "the retry's report")
    assert browser.find_element(By.ID, "retried").text.startswith("1 dead letter(s) sent back")
    # Sent back, the same bytes fail again: a second dead letter, and the first is marked retried.
    wait_until(lambda: len(listed()) == 2, 90, "the resent record's own dead letter")
    first, second = _dead_letter_rows(browser)
    assert first.endswith("retried") and second.endswith("retry…")


def _dead_letter_count(ui: Ui) -> int:
    out = ui.saga.choreo("dlq", "list", "orders", "--json")
    assert out.returncode == 0, out.stderr
    return len(out.stdout.splitlines())


def test_the_graph_page_draws_every_service(ui: Ui, browser: webdriver.Chrome) -> None:
    browser.get(ui.url + "/graph")
    drawn = browser.find_elements(By.CSS_SELECTOR, "div.graph svg")
    # SVG when graphviz is installed, else the Mermaid text.
    text = drawn[0].text if drawn else browser.find_element(By.CSS_SELECTOR, "pre.mermaid").text
    for service in ("orders", "packaging", "drones", "delivery"):
        assert service in text

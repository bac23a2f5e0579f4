"""The dashboard in headless Chromium during a short live run: charts and the user box fill in,
and a new event for the shown user changes its recommendations on the page.

Needs Debian's ``chromium`` and ``chromium-driver`` (``make test`` installs them where it can);
driven with Selenium through the system chromedriver (nothing downloaded). The screenshot is
saved in the test's temporary directory (``STREAMREC_DASHBOARD_SCREENSHOT`` names another path).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from infra.local_redis import delete_prefix, unique_prefix
from infra.settings import Settings
from models.worker import running
from streamrec.wiring import pipeline, recommender_app
from tests.e2e.test_freshness import produce, view

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)
PAGE_DEADLINE_SECONDS = 30.0


@pytest.fixture
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1400"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER or ""), options=options)
    try:
        yield driver
    finally:
        driver.quit()


async def until(what: str, condition: Callable[[], Any]) -> Any:
    """Poll ``condition`` (run in a thread: Selenium blocks) until truthy, under a deadline."""
    deadline = time.monotonic() + PAGE_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        value = await asyncio.to_thread(condition)
        if value:
            return value
        await asyncio.sleep(0.2)  # a poll interval, under the deadline
    raise AssertionError(f"not within {PAGE_DEADLINE_SECONDS}s: {what}")


def texts(driver: Any, selector: str) -> list[str]:
    """The ``data-item`` of every element ``selector`` finds, read in one script: the page
    redraws its lists every second, so elements found in one call may be gone in the next."""
    script = "return [...document.querySelectorAll(arguments[0])].map(e => e.dataset.item ?? '');"
    return list(driver.execute_script(script, selector))


def attribute(driver: Any, element_id: str, name: str) -> str | None:
    """An attribute of the element with ``element_id``, read in one script."""
    script = (
        "const e = document.getElementById(arguments[0]); return e && e.getAttribute(arguments[1]);"
    )
    return driver.execute_script(script, element_id, name)


async def trickle(settings: Settings, now: int) -> None:
    """Other users' events, a few a second, while the page is looked at."""
    for n in itertools.count(1_000):
        await asyncio.to_thread(produce, settings, [view(n, f"t{n % 7}", f"i{n % 12}", now + n)])
        await asyncio.sleep(0.3)  # the trickle's pace


async def check_page(
    browser: Any, url: str, http: httpx.AsyncClient, settings: Settings, now: int, tmp: Path
) -> None:
    """What a person looking at the page would check, in that order."""
    await asyncio.to_thread(browser.get, f"{url}/dashboard/?user=u")
    await until("the page is live", lambda: "live" in (attribute(browser, "status", "class") or ""))
    await until("popular items", lambda: texts(browser, "#popular li"))
    await until("trending items", lambda: texts(browser, "#trending li"))
    await until("the shards table", lambda: texts(browser, "#shards tbody tr"))
    await until(
        "the rate chart shows events flowing",
        lambda: float(attribute(browser, "rate-chart", "data-max") or 0) > 0,
    )
    await until(
        "the freshness histogram counts events",
        lambda: int(attribute(browser, "freshness-chart", "data-total") or 0) > 0,
    )
    await until("the user's recent items", lambda: "i0" in texts(browser, "#recent li"))
    before = await until("recommendations", lambda: texts(browser, "#recommendations li"))
    top = before[0]
    produce(settings, [view(100, "u", top, now)])
    after = await until(
        "the new event changes the recommendations on the page",
        lambda: (r := texts(browser, "#recommendations li")) and top not in r and r,
    )
    # the page draws the user's recent items after its recommendations, a request later
    await until(
        "the new event in the user's recent items", lambda: top in texts(browser, "#recent li")
    )
    api = (await http.get("/recommendations/u", params={"k": 10})).json()
    served = [r["item_id"] for r in api["recommendations"]]
    assert top not in served  # the page shows what the API serves (the trickle may move the rest)
    assert len(after) == len(served) == 10
    shot = Path(os.environ.get("STREAMREC_DASHBOARD_SCREENSHOT", tmp / "dashboard.png"))
    assert await asyncio.to_thread(browser.save_screenshot, str(shot))
    assert shot.stat().st_size > 10_000


async def test_the_dashboard_shows_the_pipeline_live(
    applied: Settings, redis_url: str, browser: Any, tmp_path: Path
) -> None:
    prefix = unique_prefix("dash")
    settings = applied.model_copy(
        update={"redis_url": redis_url, "cache_prefix": prefix, "idle_interval": 0.2}
    )
    now = int(time.time() * 1000)
    seed = [view(n, f"o{n % 5}", f"i{(n // 5 + n % 5) % 12}", now - 60_000 + n) for n in range(40)]
    produce(settings, [*seed, view(99, "u", "i0", now - 1_000)])
    try:
        async with pipeline(settings) as p:
            stop = asyncio.Event()
            consuming = asyncio.create_task(p.runner.run(stop=stop))
            try:
                async with (
                    recommender_app(settings, p.online, dynamodb=p.clients.dynamodb) as app,
                    running(app) as url,
                    httpx.AsyncClient(base_url=url) as http,
                ):
                    background = asyncio.create_task(trickle(settings, now))
                    try:
                        await check_page(browser, url, http, settings, now, tmp_path)
                    finally:
                        background.cancel()
            finally:
                stop.set()
                await consuming
    finally:
        delete_prefix(redis_url, prefix)

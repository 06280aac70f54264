"""The browser the page tests drive: Debian's chromium through Debian's chromium-driver and Selenium,
headless, against the app served on a local port; axe-core from a local copy of its npm package (which
`.ci/run` installs); screenshots in the test's output folder. The browser's calls block, so they run in
a thread while the served app goes on in the test's event loop. Test modules import the fixtures."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import IN_CI, Api
from tests.smtp import Mailbox

ROOT = Path(__file__).resolve().parent.parent
AXE = Path(os.environ.get("PARTNERS_TEST_AXE", ROOT / ".ci" / "axe" / "node_modules" / "axe-core" / "axe.min.js"))
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
GOOD = "violet kettle drums at dawn"


def needs(what: str) -> None:
    if IN_CI:
        pytest.fail(f"{what} is missing: .ci/run installs it", pytrace=False)
    pytest.skip(f"{what} is not installed here (.ci/run installs it)")


@pytest.fixture
def live_settings_overrides() -> dict[str, Any]:
    return {"worker": "on", "worker_poll_seconds": 0.02}


class Browser:
    """Chromium, headless, one page at a time; each call runs in a thread."""

    def __init__(self, base: str, shots: Path) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM or ""
        for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
            options.add_argument(argument)
        self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        self.base, self.shots, self.count = base, shots, 0

    async def run(self, work: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.to_thread(work, *args)

    async def open(self, path: str) -> None:
        await self.run(self.driver.get, path if path.startswith("http") else self.base + path)

    async def fill(self, fields: dict[str, str]) -> None:
        from selenium.webdriver.common.by import By

        def typing() -> None:
            for name, value in fields.items():
                box = self.driver.find_element(By.NAME, name)
                box.clear()
                box.send_keys(value)

        await self.run(typing)

    async def press(self, text: str) -> None:
        """Press the button that says `text` (by the keyboard: focus, then Enter)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        def pressing() -> None:
            from selenium.common.exceptions import WebDriverException
            from selenium.webdriver.support.ui import WebDriverWait

            def gone(element: Any) -> bool:
                """The element's document replaced (chromium says so as stale, or as a node of no document)."""
                try:
                    element.is_enabled()
                except WebDriverException:
                    return True
                return False

            loaded = WebDriverWait(self.driver, 30)
            loaded.until(lambda d: d.execute_script("return document.readyState") == "complete")
            page = self.driver.find_element(By.TAG_NAME, "html")
            [button] = [b for b in self.driver.find_elements(By.TAG_NAME, "button") if b.text == text]
            button.send_keys(Keys.ENTER)
            loaded.until(lambda _: gone(page))  # the answer's page
            loaded.until(lambda d: d.execute_script("return document.readyState") == "complete")

        await self.run(pressing)

    async def text(self) -> str:
        from selenium.webdriver.common.by import By

        return str(await self.run(lambda: self.driver.find_element(By.TAG_NAME, "main").text))

    async def path(self) -> str:
        url = str(await self.run(lambda: self.driver.current_url))
        return url.removeprefix(self.base)

    async def look(self, name: str) -> list[str]:
        """A screenshot of the page (and of it on a phone's width), and axe-core's violations on it."""
        self.count += 1

        def looking() -> list[str]:
            self.driver.save_screenshot(str(self.shots / f"{self.count:02d}-{name}.png"))
            self.driver.execute_script(AXE.read_text())
            violations = self.driver.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "axe.run(document).then(r => done(r.violations.map(v => v.id + ': ' + v.help + ' ' +"
                " v.nodes.map(n => n.target.join(' ')).join(', '))));"
            )
            self.driver.set_window_size(375, 800)
            self.driver.save_screenshot(str(self.shots / f"{self.count:02d}-{name}-phone.png"))
            wide = self.driver.execute_script(
                "return document.documentElement.scrollWidth > document.documentElement.clientWidth"
            )
            self.driver.set_window_size(1280, 900)
            return [*violations, *(["the page is wider than a phone's screen"] if wide else [])]

        return list(await self.run(looking))

    def quit(self) -> None:
        self.driver.quit()


@pytest.fixture
async def browser(live_api: Api, tmp_path: Path) -> AsyncIterator[Browser]:
    if not (CHROMIUM and CHROMEDRIVER):
        needs("Debian's chromium and chromium-driver")
    if not AXE.is_file():  # noqa: ASYNC240 - a stat at set-up
        needs(f"axe-core ({AXE})")
    opened = await asyncio.to_thread(Browser, str(live_api.client.base_url).rstrip("/"), tmp_path)
    try:
        yield opened
    finally:
        await asyncio.to_thread(opened.quit)


async def mail_to(box: Mailbox, address: str, count: int = 1) -> Any:
    """The `count`-th message to `address`, once the served app's worker has sent it (bounded wait for
    another process's work: the clock is not what it waits on)."""
    deadline = time.monotonic() + 60
    while len(box.to(address)) < count:
        assert time.monotonic() < deadline, f"no message {count} to {address}"
        await asyncio.sleep(0.05)
    return box.to(address)[count - 1]


def link_in(box: Mailbox, message: Any) -> str:
    return next(word for word in box.text(message).split() if "?token=" in word)

"""The web view in a real headless Chromium (Debian's chromium + chromedriver, driven by
Selenium; never a downloaded browser). Each test saves a screenshot under tests/artifacts/.

CI installs the browser (apt-get install chromium chromium-driver); these tests are not
skipped when it is missing: they fail, naming what to install.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import uvicorn
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait
from sqlalchemy import Engine
from web_world import TODAY, Built

from sync.config import Config, WebConfig
from sync.web.app import create_app
from sync.web.auth import check_bind

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
TOKEN = "browser-test-token-5d1e"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    def __init__(self, engine: Engine, config: Config, host: str) -> None:
        check_bind(host, config.web)
        self.port = _free_port()
        app = create_app(engine, config, clock=lambda: TODAY)
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=self.port,
                                                    log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        while not self.server.started:
            assert self.thread.is_alive(), "the web server did not start"
            self.thread.join(0.02)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture
def browser() -> Iterator[tuple[WebDriver, Path]]:
    for binary, package in ((CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")):
        assert Path(binary).exists(), f"{binary} missing: apt-get install {package}"
    profile = Path(tempfile.mkdtemp(prefix="ecosync-chromium-"))
    downloads = profile / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--window-size=1400,1000",
                 f"--user-data-dir={profile / 'data'}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads), "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver, downloads
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def served(world: tuple[Engine, Built]) -> Iterator[Served]:
    s = Served(world[0], Config(), "127.0.0.1")
    yield s
    s.stop()


def _shot(driver: WebDriver, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    height = driver.execute_script("return document.body.scrollHeight")
    driver.set_window_size(1400, max(900, min(int(height) + 40, 4000)))
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


def _no_csp_violations(driver: WebDriver) -> None:
    problems = [e["message"] for e in driver.get_log("browser")
                if "Content Security Policy" in e["message"] or e["level"] == "SEVERE"]
    assert problems == [], problems


def _wait(driver: WebDriver) -> WebDriverWait:  # type: ignore[type-arg]
    return WebDriverWait(driver, 20)


def test_matrix_to_cosell_cell_to_account_to_why_it_matched(
        browser: tuple[WebDriver, Path], served: Served) -> None:
    driver, _ = browser
    driver.get(f"{served.url}/matrix")
    cell = driver.find_element(By.ID, "cosell-cell")
    assert "co-sell" in cell.text.lower() and cell.value_of_css_property("outline-style") == "solid"
    _shot(driver, "matrix")
    cell.find_element(By.TAG_NAME, "a").click()
    _wait(driver).until(ec.presence_of_element_located((By.ID, "table-accounts")))
    _shot(driver, "matrix-cell")
    driver.find_element(By.LINK_TEXT, "Foxtrot AB").click()
    why = _wait(driver).until(ec.presence_of_element_located((By.ID, "table-matches")))
    assert "Why did this match?" in why.text
    assert "same domain foxtrot.se" in why.text and "Namewise" in why.text
    contacts = driver.find_element(By.ID, "table-contacts").text
    assert "Full Owner" in contacts or "Nothing to show" in contacts
    _shot(driver, "account")
    _no_csp_violations(driver)


def test_partner_chart_renders_with_data_points(browser: tuple[WebDriver, Path],
                                                served: Served) -> None:
    driver, _ = browser
    driver.get(f"{served.url}/partners/p-full")
    _wait(driver).until(ec.presence_of_element_located(
        (By.CSS_SELECTOR, "#chart-overlaps[data-rendered='true']")))
    points = driver.find_elements(By.CSS_SELECTOR, "#chart-overlaps svg .scatterlayer .point")
    assert len(points) >= 12
    lines = driver.find_elements(By.CSS_SELECTOR, "#chart-overlaps svg .scatterlayer .js-line")
    assert len(lines) == 3
    assert "a rolodex" in driver.find_element(By.CSS_SELECTOR, "ul.summary").text
    _shot(driver, "partner")
    driver.get(f"{served.url}/network")
    _wait(driver).until(ec.presence_of_element_located(
        (By.CSS_SELECTOR, "#chart-revenue[data-rendered='true']")))
    assert driver.find_elements(By.CSS_SELECTOR, "#chart-revenue svg .barlayer .point path")
    _shot(driver, "network")
    _no_csp_violations(driver)


def test_csv_download(browser: tuple[WebDriver, Path], served: Served) -> None:
    driver, downloads = browser
    driver.get(f"{served.url}/accounts")
    _shot(driver, "accounts")
    driver.find_element(By.CSS_SELECTOR, "#table-accounts a.csv").click()
    target = downloads / "accounts.csv"
    _wait(driver).until(lambda _: target.exists() and target.stat().st_size > 0)
    text = target.read_text(encoding="utf-8")
    assert text.splitlines()[0].startswith("rank,name,domain")
    assert "Acme Corp" in text
    driver.get(f"{served.url}/operations")
    _shot(driver, "operations")
    _no_csp_violations(driver)


def test_off_loopback_asks_for_the_token(browser: tuple[WebDriver, Path],
                                         world: tuple[Engine, Built]) -> None:
    driver, _ = browser
    config = Config(web=WebConfig(host="0.0.0.0", token=TOKEN))  # noqa: S104
    s = Served(world[0], config, "0.0.0.0")  # noqa: S104 - what is tested
    try:
        assert requests.get(f"{s.url}/api/v1/matrix", timeout=10).status_code == 401
        assert requests.get(f"{s.url}/matrix", headers={"Accept": "text/html"},
                            timeout=10).status_code == 401
        driver.get(f"{s.url}/accounts")
        assert driver.find_element(By.TAG_NAME, "h1").text == "Sign in"
        assert "Acme" not in driver.page_source
        _shot(driver, "login-401")
        driver.find_element(By.NAME, "token").send_keys(TOKEN)
        driver.find_element(By.CSS_SELECTOR, "form.login button").click()
        _wait(driver).until(ec.presence_of_element_located((By.ID, "table-accounts")))
        assert "Acme Corp" in driver.page_source
        assert driver.current_url.endswith("/accounts")
    finally:
        s.stop()

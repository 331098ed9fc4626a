"""The web page in a real browser: Debian's chromium, headless, driven by Selenium through chromedriver.

Two near-duplicate images and a corrupt one are uploaded through the page; the test follows them to done
and failed, opens a job (metadata tree, near-duplicates, stripped download), runs a small uniquify and
downloads its zip, and checks the browser logged no error. Each view's screenshot is saved in the test's
directory; with MEDIALANE_UPDATE_SCREENSHOTS=1 they also replace docs/screenshots/ (the README's).
"""

from __future__ import annotations

import asyncio
import io
import os
import shutil
import time
import zipfile
from pathlib import Path

from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

from conftest import SAMPLES
from test_uniquify_pipeline import corrupt_png

ROOT = Path(__file__).resolve().parents[1]
S40 = SAMPLES / "exif-samples" / "jpg" / "Canon_PowerShot_S40.jpg"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1200,900")  # fmt: skip
PATIENCE = 90


def chromium(profile: Path, downloads: Path) -> webdriver.Chrome:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})  # fmt: skip
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # Debian's chromedriver, named: Selenium Manager would otherwise try to download one.
    return webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))


def inputs(tmp_path: Path) -> list[Path]:
    """The sample, a slightly smaller copy of it (a near-duplicate), and a PNG whose pixels do not decode."""
    original = tmp_path / "s40.jpg"
    shutil.copy(S40, original)
    resized = tmp_path / "s40-resized.jpg"
    with Image.open(S40) as image:
        image.resize((432, 324)).save(resized, "JPEG", quality=90)
    broken = tmp_path / "broken.png"
    broken.write_bytes(corrupt_png())
    return [original, resized, broken]


class Page:
    def __init__(self, driver: webdriver.Chrome, shots: Path) -> None:
        self.driver = driver
        self.shots = shots

    def wait(self, condition, what: str):
        return WebDriverWait(self.driver, PATIENCE).until(lambda _: condition(), message=what)

    def find(self, css: str):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def attach(self, css: str, *files: Path) -> None:
        """Files chosen in a file input, as a person's picker would (the page hides the bare input)."""
        element = self.find(css)
        self.driver.execute_script("arguments[0].hidden = false", element)
        element.send_keys("\n".join(str(path) for path in files))
        self.driver.execute_script("arguments[0].hidden = true", element)

    def shoot(self, name: str) -> None:
        self.driver.save_screenshot(str(self.shots / f"{name}.png"))


def downloaded(folder: Path, suffix: str) -> Path:
    """The one finished download ending in ``suffix`` (Chromium writes .crdownload until it is done)."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        done = [path for path in folder.iterdir() if path.name.endswith(suffix)]
        if done:
            return done[0]
        time.sleep(0.2)
    raise TimeoutError(f"no {suffix} download in {sorted(p.name for p in folder.iterdir())}")


def rows(page: Page) -> dict[str, tuple[str, str]]:
    return {row.find_element(By.CSS_SELECTOR, "td").text: (
        row.find_element(By.CSS_SELECTOR, ".status").get_attribute("data-status") or "",
        row.find_element(By.CSS_SELECTOR, ".status").text,
    ) for row in page.all("#rows tbody tr")}  # fmt: skip


def use_the_page(base: str, api_key: str, tmp_path: Path, shots: Path) -> list[dict]:
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = chromium(tmp_path / "profile", downloads)
    page = Page(driver, shots)
    try:
        driver.get(base + "/")
        page.shoot("key")
        page.find("#key-input").send_keys(api_key)
        page.find("#key-form button").click()
        page.wait(lambda: page.find("#view-upload").is_displayed(), "the upload view after the key")
        assert api_key not in driver.current_url

        page.find("#ops input[value=strip]").click()
        original, resized, broken = inputs(tmp_path)
        page.attach("#pick-files", original, resized, broken)
        # The corrupt PNG's header still reads: its metadata is done, its pixels' ops fail.
        page.wait(lambda: [status for status, _ in rows(page).values()] == ["completed", "completed", "partial"],
                  "two done and one failed")  # fmt: skip
        assert rows(page)[original.name][1] == "done"
        assert rows(page)[broken.name][1].startswith("failed phash, strip: "), rows(page)
        assert "(corrupt_media); done metadata" in rows(page)[broken.name][1], rows(page)
        page.shoot("upload")

        row = next(r for r in page.all("#rows tbody tr") if r.find_element(By.CSS_SELECTOR, "td").text == original.name)
        row.find_element(By.LINK_TEXT, "open").click()
        page.wait(lambda: page.all("#tree .tag"), "the metadata tree")
        page.find("#tree-filter").send_keys("Model")
        shown = [tag.text for tag in page.all("#tree .tag") if tag.is_displayed()]
        assert any(text.startswith("Model") and "Canon PowerShot S40" in text for text in shown), shown
        assert all("model" in text.lower() for text in shown), shown
        page.wait(lambda: any(resized.name in card.text for card in page.all("#job-similar .card")), "the near-duplicate")
        page.wait(lambda: page.all("#job-preview img") and page.all("#job-similar .card img"), "the previews")
        page.shoot("job")
        page.find("#strip-link").click()
        stripped = downloaded(downloads, ".jpg")
        with Image.open(stripped) as image:
            assert image.size == (480, 360) and 0x0110 not in image.getexif()

        driver.get(base + "/#/uniquify")
        page.attach("#uniquify-form input[name=images]", original)
        copies = page.find("#uniquify-form input[name=copies]")
        copies.clear()
        copies.send_keys("2")
        page.find("#uniquify-form button[type=submit]").click()
        page.wait(lambda: page.all("#zip-link"), "the uniquify zip")
        assert page.find("#uniquify-progress progress").get_attribute("value") == "100"
        assert len(page.all("#uniquify-progress .manifest tbody tr")) == 2
        page.shoot("uniquify")
        page.find("#zip-link").click()
        archive = zipfile.ZipFile(downloaded(downloads, ".zip"))
        assert sorted(name.endswith(".jpg") for name in archive.namelist()) == [False, True, True]

        driver.get(base + "/#/jobs")
        page.wait(lambda: len(page.all("#jobs tbody tr")) >= 4, "the key's jobs")
        Select(page.find("#filter-status")).select_by_visible_text("partial")
        visible = [row.text for row in page.all("#jobs tbody tr") if row.is_displayed()]
        assert any(broken.name in text for text in visible), visible
        assert all("failed phash" in text for text in visible), visible
        page.shoot("jobs")
        return driver.get_log("browser")
    finally:
        driver.quit()


def small_copies(shots: Path, into: Path) -> None:
    """The screenshots as 64-colour PNGs: a few dozen KB each, for the repository."""
    into.mkdir(parents=True, exist_ok=True)
    for shot in sorted(shots.glob("*.png")):
        with Image.open(shot) as image:
            image.convert("RGB").quantize(64).save(into / shot.name, optimize=True)


async def test_a_person_uploads_follows_opens_and_uniquifies_in_the_browser(ingest, api_key, tmp_path):
    shots = tmp_path / "screenshots"
    shots.mkdir()
    base = str(ingest.make_url("")).rstrip("/")
    # Selenium blocks: it runs in a thread while this loop serves the page and the API.
    log = await asyncio.to_thread(use_the_page, base, api_key, tmp_path, shots)

    assert sorted(path.stem for path in shots.glob("*.png")) == ["job", "jobs", "key", "uniquify", "upload"]
    errors = [entry for entry in log if entry["level"] == "SEVERE"]
    assert not errors, errors
    if os.environ.get("MEDIALANE_UPDATE_SCREENSHOTS") == "1":
        small_copies(shots, ROOT / "docs" / "screenshots")

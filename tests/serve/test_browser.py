"""The page as a person uses it: headless Chromium (Debian's ``chromium`` + ``chromium-driver``, driven by
Selenium) uploads an image, draws on the canvas, reads the predicted label, and opens the dashboard.

Skipped when Chromium, its driver or Selenium is missing (``.ci/run`` installs them). In the slow tier
(``pytest -m slow``, which CI runs): starting Chromium and the two page visits took 68 s on the 2-core
development machine under load ~13 (52 s of it in the fixtures, Chromium's start included). Set ``CNNKIT_SCREENSHOTS=DIR`` to keep screenshots of both pages.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from .serve_helpers import png_bytes

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
pytest.importorskip("python_multipart")
webdriver = pytest.importorskip("selenium.webdriver")

from cnnkit.serve import create_app, load_served_models  # noqa: E402

from .live_server import live_server  # noqa: E402

_CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_DRIVER = shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (_CHROMIUM and _DRIVER), reason="needs chromium and chromium-driver (apt-get install chromium chromium-driver)"),
]


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = _CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1100,820",
                "--disable-extensions", "--no-first-run"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(_DRIVER), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _wait(driver, condition, timeout: float = 30.0):  # type: ignore[no-untyped-def]
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: condition(d))


def _shot(driver, name: str) -> None:  # type: ignore[no-untyped-def]
    folder = os.environ.get("CNNKIT_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / name))


@pytest.fixture(scope="module")
def server(runs_root: Path, run_a: Path, run_b: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    # The dashboard's folder: the two test runs and one whose summary holds markup, which must stay text.
    root = tmp_path_factory.mktemp("browser-runs")
    for name in ("tiny-a", "tiny-b"):
        shutil.copytree(runs_root / name, root / name)
    (root / "tiny-b" / "summary.json").write_text(
        '{"model": "<img src=x id=injected onerror=alert(1)>", "test_accuracy": 0.5, "epochs": 4}', encoding="utf-8")
    app = create_app(load_served_models([run_a, run_b]), runs_dir=root)
    with live_server(app) as url:
        yield url


def test_upload_draw_and_read_the_label(browser, server: str, run_a: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from cnnkit.evaluate import predict

    browser.get(server + "/")
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    assert browser.find_element(By.ID, "model").get_attribute("value") == "tiny-a"
    # Upload: the label on the page is cnnkit predict's top-1 for the same file.
    from sklearn.datasets import load_digits

    digit = (load_digits().images[7] * (255 / 16)).round().astype(np.uint8)
    path = tmp_path / "seven.png"
    path.write_bytes(png_bytes(digit))
    want = predict(run_a, [path], top_k=5)[0]["top"]
    browser.find_element(By.ID, "tab-upload").click()
    browser.find_element(By.ID, "file").send_keys(str(path))
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-predictions") == "1")
    assert browser.find_element(By.ID, "label").text == want[0]["name"]
    bars = browser.find_elements(By.CSS_SELECTOR, "#bars .bar-row")
    assert [b.get_attribute("data-index") for b in bars] == [str(t["class"]) for t in want]
    cam = browser.find_element(By.ID, "gradcam")
    _wait(browser, lambda d: cam.is_displayed() and cam.get_attribute("src").startswith("data:image/png;base64,"))
    assert browser.execute_script("return arguments[0].naturalWidth", cam) == 192
    # Draw: a stroke on the canvas is predicted when the pen lifts.
    browser.find_element(By.ID, "tab-draw").click()
    canvas = browser.find_element(By.ID, "canvas")
    chain = ActionChains(browser).move_to_element_with_offset(canvas, 10, -90).click_and_hold()
    for dy in range(-70, 100, 20):
        chain = chain.move_to_element_with_offset(canvas, 10 - dy // 10, dy)
    chain.release().perform()
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-predictions") == "2")
    label = browser.find_element(By.ID, "label").text
    assert label in [str(i) for i in range(10)]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#bars .bar-row")) == 5
    assert browser.find_element(By.ID, "error").text == ""
    _shot(browser, "predict.png")
    # Switch models: the same drawing is predicted again by the other one.
    from selenium.webdriver.support.select import Select

    menu = Select(browser.find_element(By.ID, "model"))
    assert [o.text for o in menu.options] == ["tiny-a", "tiny-b"]
    menu.select_by_visible_text("tiny-b")
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-predictions") == "3")
    assert browser.find_element(By.ID, "label").text in [str(i) for i in range(10)]


def test_dashboard_renders_curves_and_keeps_markup_as_text(browser, server: str) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    browser.get(server + "/dashboard")
    _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
    rows = browser.find_elements(By.CSS_SELECTOR, "#runs tbody tr")
    assert sorted(r.get_attribute("data-id") for r in rows) == ["tiny-a", "tiny-b"]
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chart svg polyline")) == 1)
    points = browser.find_element(By.CSS_SELECTOR, "#chart svg polyline").get_attribute("points").split()
    assert len(points) == 4  # one point per epoch of metrics.jsonl
    # Compare: tick both runs, two curves overlaid.
    for box in browser.find_elements(By.CSS_SELECTOR, "#runs tbody input[type=checkbox]"):
        box.click()
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#chart svg polyline")) == 2)
    assert len(browser.find_elements(By.CSS_SELECTOR, "#legend .legend-item")) == 2
    # The confusion matrix and the mistakes of the selected run, computed on demand.
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#confusion tr")) == 11, timeout=60)
    assert "accuracy" in browser.find_element(By.ID, "errors-status").text
    # The run whose summary holds an <img onerror> shows it as text; no element was made from it.
    time.sleep(0.2)
    assert browser.find_elements(By.ID, "injected") == []
    assert any("<img src=x" in c.text for c in browser.find_elements(By.CSS_SELECTOR, "#runs tbody td"))
    _shot(browser, "dashboard.png")


def test_a_text_model_gets_a_text_box(browser, text_run: Path, run_a: Path) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.select import Select

    from cnnkit.evaluate import predict

    sentence = "a good and superb film"
    want = predict(text_run, [], texts=[sentence], top_k=2)[0]["top"]
    with live_server(create_app(load_served_models([text_run, run_a]))) as url:
        browser.get(url + "/")
        _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "1")
        # The text model comes first: only the text box shows, and Grad-CAM is off.
        assert browser.find_element(By.ID, "text-pane").is_displayed()
        assert not browser.find_element(By.ID, "tab-draw").is_displayed()
        assert not browser.find_element(By.ID, "explain").is_enabled()
        browser.find_element(By.ID, "text").send_keys(sentence)
        browser.find_element(By.ID, "send-text").click()
        _wait(browser, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-predictions") == "1")
        assert browser.find_element(By.ID, "label").text == want[0]["name"]
        assert browser.find_element(By.ID, "error").text == ""
        # Switching to the image model brings the drawing tabs back and hides the text box.
        Select(browser.find_element(By.ID, "model")).select_by_visible_text("tiny-a")
        _wait(browser, lambda d: d.find_element(By.ID, "tab-draw").is_displayed())
        assert not browser.find_element(By.ID, "text-pane").is_displayed()
        assert browser.find_element(By.ID, "label").text == "\u2013"  # the text's prediction is cleared

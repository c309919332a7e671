"""The HTML report in a real browser: rendered, screenshotted and read back.

Debian's chromium (apt-get install -y chromium; .ci/run installs it), driven headless by Playwright's
Python client with executable_path (Playwright's own browser download is not used). Every request other
than the report file itself is refused and recorded, so a report that reached for the network fails.
Skips with the reason printed when playwright or chromium is missing; OTEDI_REQUIRE_CHROMIUM=1 makes that
a failure (CI)."""

import os
from pathlib import Path

import pytest

from otedi.analytics import work_queue, write_html_report
from tests.test_reconcile import TODAY, finance  # noqa: F401 - finance is a fixture

CHROMIUM = os.environ.get("OTEDI_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-background-networking", "--disable-gpu"]
WIDTH = 1280


def _missing() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright (Python client) is not installed: pip install playwright (it drives Debian's chromium)"
    if not Path(CHROMIUM).exists():
        return f"no chromium at {CHROMIUM}: apt-get install -y chromium (or set OTEDI_CHROMIUM)"
    return None


@pytest.fixture
def browser():
    reason = _missing()
    if reason:
        if os.environ.get("OTEDI_REQUIRE_CHROMIUM") == "1":
            pytest.fail(reason)
        print(f"\nSKIP report screenshot: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _ink(image, box=None) -> float:
    """Share of pixels that are not (near) white."""
    gray = (image.crop(box) if box else image).convert("L")
    histogram = gray.histogram()
    return 1 - sum(histogram[245:]) / max(sum(histogram), 1)


@pytest.mark.parametrize("warehouse", ["sqlite"], indirect=True)  # one browser run is enough
def test_the_report_renders_in_chromium_with_its_charts_and_figures_visible(finance, browser, tmp_path):
    from PIL import Image

    report = write_html_report(tmp_path / "report.html", today=TODAY)
    page = browser.new_page(viewport={"width": WIDTH, "height": 900})
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort())
    page.goto(report.as_uri(), wait_until="load")
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    print(f"\nreport screenshot: {shot}")

    assert requests == [report.as_uri()]  # the file itself, nothing else: no font, image, script or stylesheet
    assert page.evaluate("document.documentElement.scrollWidth") <= WIDTH  # nothing spills off the page sideways

    image = Image.open(shot).convert("RGB")
    assert image.width == WIDTH and image.height > 3000
    assert _ink(image) > 0.05 and _ink(image, (0, 0, WIDTH, 900)) > 0.05  # not blank, at the top either
    assert len(image.getcolors(maxcolors=1 << 16) or range(1 << 16)) > 100  # text, tiles and charts in colour
    navy = sum(n for n, (r, g, b) in image.getcolors(maxcolors=1 << 20) if abs(r - 31) + abs(g - 78) + abs(b - 121)
               < 12)
    assert navy > 5000  # the charts' bars (#1f4e79) were painted

    charts = page.locator("svg.chart")
    assert charts.count() == 6
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box["width"] > 600 and box["height"] > 100, i
    assert page.locator("svg.chart text", has_text="$1,000").first.is_visible()  # a rounded axis tick

    text = page.inner_text("body")  # as drawn: tile labels are upper case (CSS)
    for visible in ("Finance report", "Dates of service: 23 Feb 2026 – 9 Mar 2026", "INSURANCE AR", "$485.00",
                    "CLEAN-CLAIM RATE", "87.5%", "Bright Hands Occupational Therapy PLLC", "CGS MEDICARE PART B OHIO",
                    "Anna Smith, OT", "Denied dollars by root cause", "Bundling / NCCI",
                    "Denial trend by month of first adjudication", "Mar 2026", "Work queue", "Next step"):
        assert visible in text, visible
    for claim_id in work_queue(today=TODAY)["claim_id"]:
        assert claim_id in text  # the work queue's items themselves
    assert "JANE" not in text and "1EG4TE5MK73" not in text

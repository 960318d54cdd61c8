"""The workbench in a real browser: Debian's chromium driven by Playwright (no browser download).

Opens the app, goes through every view, trains a tiny model on a small region and sees it
finish and impute, while a second session works beside it; the browser console must stay free
of errors (offline: a request to a CDN would fail and show up here). Screenshots of each view go
to ``$STIMPUTE_SCREENSHOT_DIR`` (the README's come from there) or the test's temporary folder.

No fixed sleeps: each step waits (with a timeout) for what it needs: a tab's own text, its first
plot laid out and still, a caption that changes.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

TABS = (
    "Data & region",
    "Sparsity",
    "Model",
    "Imputed fields",
    "Validation (TxSON)",
    "Land cover",
    "Attention",
    "Export",
)
#: A 12 x 12 km box around the dense 9 km cluster of stations in the built-in scenario.
SMALL_REGION = {"West (°)": -98.86, "East (°)": -98.74, "South (°)": 30.31, "North (°)": 30.41}
#: What only each tab's own content shows: it is in the page once the tab is built.
TAB_MARK = {
    "Data & region": lambda page: page.get_by_text(re.compile(r"Selection: W")),
    "Sparsity": lambda page: page.get_by_text(re.compile(r"of cell-days missing")),
    "Model": lambda page: page.get_by_text("Train an ST-Transformer on the selection"),
    "Imputed fields": lambda page: page.get_by_text(re.compile(r"Cell: row \d+, col \d+")),
    "Validation (TxSON)": lambda page: page.get_by_text("Click a station on the map"),
    "Land cover": lambda page: page.get_by_role("button", name="observations", exact=True),
    "Attention": lambda page: page.get_by_text(re.compile(r"Pick the cell on the")),
    "Export": lambda page: page.get_by_role("button", name="Imputed cube (NetCDF)"),
}
#: Tabs that draw no plot.
NO_PLOT = {"Export"}
#: Resolves true when an element has a size and kept its box over two animation frames.
STILL_JS = """el => new Promise(resolve => {
    const a = el.getBoundingClientRect();
    requestAnimationFrame(() => requestAnimationFrame(() => {
        const b = el.getBoundingClientRect();
        resolve(a.width > 0 && a.height > 0 && a.x === b.x && a.y === b.y
                && a.width === b.width && a.height === b.height);
    }));
})"""
#: Resolves true when a plot whose title starts with ``arg`` is drawn in the page (Bokeh's views).
PLOT_DRAWN_JS = """prefix => [...Bokeh.index.query(v => {
    const title = v.model && v.model.title;
    return title != null && typeof title.text === "string" && title.text.startsWith(prefix);
})].some(v => { const r = v.el.getBoundingClientRect(); return r.width > 0 && r.height > 0; })"""
#: Resolves true when a shaded band (HoloViews draws an Area as a Patch) with values is drawn.
BAND_DRAWN_JS = """() => [...Bokeh.index.query(v => v.model && v.model.glyph
        && v.model.glyph.type === "Patch")].some(v => {
    const r = v.parent.el.getBoundingClientRect();
    return r.width > 0 && Array.from(v.model.data_source.data.y).some(Number.isFinite);
})"""
#: A reference with intervals, compared by default (so no training is needed to see them).
WITH_INTERVALS = "regression-conformal"
TIMEOUT_MS = 120_000
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]


def _browser_or_skip():
    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    if chromium and sync_playwright:
        return chromium, sync_playwright
    why = "needs Debian's chromium and the playwright package (./dev test installs both)"
    if os.environ.get("STIMPUTE_REQUIRE_BROWSER"):
        pytest.fail(why)
    pytest.skip(why)


def _tab(page, name: str):
    return page.locator(".bk-tab").filter(has_text=name).first


def _plot_box(page) -> dict:
    """Bounding box of the first visible plot of the current tab, once it is laid out."""
    canvas = page.locator("canvas").filter(visible=True).first
    canvas.wait_for(state="visible", timeout=TIMEOUT_MS)
    page.wait_for_function(STILL_JS, arg=canvas.element_handle(), timeout=TIMEOUT_MS)
    return canvas.bounding_box()


def _show(page, name: str) -> None:
    """Open a tab and wait until its content is in the page (and its first plot laid out)."""
    _tab(page, name).click()
    TAB_MARK[name](page).first.wait_for(state="visible", timeout=TIMEOUT_MS)
    if name not in NO_PLOT:
        _plot_box(page)


def _click_in(page, fx: float, fy: float) -> None:
    page.locator("canvas").filter(visible=True).first.scroll_into_view_if_needed()
    box = _plot_box(page)
    page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])


def _drag_in(page, start: tuple[float, float], end: tuple[float, float]) -> None:
    page.locator("canvas").filter(visible=True).first.scroll_into_view_if_needed()
    box = _plot_box(page)
    x0, y0 = box["x"] + start[0] * box["width"], box["y"] + start[1] * box["height"]
    x1, y1 = box["x"] + end[0] * box["width"], box["y"] + end[1] * box["height"]
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move(x1, y1, steps=10)
    page.mouse.up()


def _watch(page, problems: list[str]) -> None:
    page.on(
        "console",
        lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None,
    )
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))


@pytest.mark.slow
def test_workbench_in_a_browser(tmp_path, app_server):
    chromium, sync_playwright = _browser_or_skip()
    from playwright.sync_api import expect

    shots = Path(os.environ.get("STIMPUTE_SCREENSHOT_DIR") or tmp_path / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        STIMPUTE_CACHE_DIR=str(tmp_path / "cache"),
        STIMPUTE_MODELS_DIR=str(tmp_path / "models"),
        STIMPUTE_DATA_DIR=str(tmp_path / "data"),
    )
    env.pop("STIMPUTE_DATA", None)
    problems: list[str] = []
    with (
        app_server(env) as (url, log),
        sync_playwright() as pw,
    ):
        browser = pw.chromium.launch(executable_path=chromium, args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            _watch(page, problems)
            page.goto(url, timeout=180_000)
            _tab(page, "Sparsity").wait_for(timeout=180_000)
            # The shipped checkpoint is loaded and the default selection imputed on load.
            _tab(page, "Imputed fields").click()
            page.get_by_text(re.compile(r"Imputed with st-transformer \(shipped")).wait_for(
                timeout=180_000
            )

            for name in TABS:
                _show(page, name)
                slug = name.split()[0].lower()
                page.screenshot(path=str(shots / f"{slug}.png"), full_page=True)

            # A model with intervals shown: the uncertainty map, the bands and the calibration.
            shown = page.locator(".bk-input-group").filter(has_text="Model shown")
            shown.locator("select").first.select_option(WITH_INTERVALS)
            _show(page, "Imputed fields")
            page.get_by_text(
                f"Uncertainty: the width of the 90 % interval of {WITH_INTERVALS}"
            ).first.wait_for(timeout=TIMEOUT_MS)
            page.wait_for_function(
                PLOT_DRAWN_JS, arg=f"90 % interval: {WITH_INTERVALS}", timeout=TIMEOUT_MS
            )
            page.wait_for_function(BAND_DRAWN_JS, timeout=TIMEOUT_MS)  # the cell's band
            page.screenshot(path=str(shots / "uncertainty.png"), full_page=True)
            _show(page, "Validation (TxSON)")
            page.get_by_text(f"Shaded: the 5–95 % band of {WITH_INTERVALS}").first.wait_for(
                timeout=TIMEOUT_MS
            )
            page.wait_for_function(BAND_DRAWN_JS, timeout=TIMEOUT_MS)  # the station's band
            _show(page, "Model")
            calibration = page.get_by_text("Calibration: the stated coverage").first
            calibration.wait_for(timeout=TIMEOUT_MS)
            page.wait_for_function(
                PLOT_DRAWN_JS, arg="Calibration on the held-out entries", timeout=TIMEOUT_MS
            )
            calibration.scroll_into_view_if_needed()
            page.screenshot(path=str(shots / "calibration.png"))

            # Clicking a cell on a map picks it (the caption and the series follow).
            _show(page, "Imputed fields")
            caption = page.get_by_text(re.compile(r"Cell: row \d+, col \d+")).first
            before = caption.inner_text()
            _click_in(page, 0.3, 0.3)
            expect(caption).not_to_have_text(before, timeout=60_000)

            # Dragging a box on the data map selects a region.
            _show(page, "Data & region")
            summary = page.get_by_text(re.compile(r"Selection: W")).first
            before = summary.inner_text()
            _drag_in(page, (0.3, 0.3), (0.5, 0.5))
            expect(summary).not_to_have_text(before, timeout=60_000)

            # A small region, typed into the sidebar and applied.
            for label, value in SMALL_REGION.items():
                box = page.locator(".bk-input-group").filter(has_text=label).locator("input")
                box.first.fill(str(value))
                box.first.press("Enter")
            page.get_by_role("button", name="Apply region").click()
            page.get_by_text(re.compile(r"W -98\.8\d+, S 30\.3[01]")).wait_for(
                state="attached", timeout=60_000
            )

            # Train a tiny model in the background; a second session works meanwhile.
            _tab(page, "Model").click()
            page.get_by_role("button", name="tiny").click()
            page.get_by_role("button", name="Train", exact=True).click()
            page.get_by_text(re.compile(r"training: running")).first.wait_for(timeout=60_000)
            other = browser.new_page()
            _watch(other, problems)
            other.goto(url, timeout=180_000)
            _tab(other, "Model").wait_for(timeout=180_000)
            _tab(other, "Model").click()
            assert not other.get_by_text(re.compile(r"training:")).count()  # not its job
            # Done: the model is named in the Model tab and the bar reached the end.
            page.get_by_text(re.compile(r"ST-Transformer: session-")).wait_for(timeout=300_000)
            expect(page.locator("progress").first).to_have_attribute("value", "100", timeout=60_000)
            page.screenshot(path=str(shots / "training.png"), full_page=True)

            # The new model imputes the small region; the map of the imputation appears.
            _tab(page, "Imputed fields").click()
            page.get_by_text(re.compile(r"Imputed with st-transformer \(session-")).wait_for(
                timeout=300_000
            )
            page.screenshot(path=str(shots / "imputed_small.png"), full_page=True)
            other.close()
        finally:
            browser.close()
    # Tornado logs a write to a page the browser just closed ("Task exception was never
    # retrieved ... WebSocketClosedError"): the client left; nothing failed on the server.
    text = re.sub(
        r"Task exception was never retrieved.*?tornado\.websocket\.WebSocketClosedError",
        "",
        "".join(log),
        flags=re.S,
    )
    server_errors = [line for line in text.splitlines() if "Traceback" in line or "ERROR" in line]
    assert not server_errors, "".join(log)
    assert not problems, "\n".join(problems)
    assert any((tmp_path / "models").glob("session-*/config.json"))  # the model stays available

"""JupyterLab, driven by headless chromium, running the kernel named by ``TRIO_KERNEL_NAME``.

A person's view of the kernel: a notebook runs top-level ``await``, the
interrupt button stops a blocking cell, a widget renders, and a restart gives
a fresh namespace.  ``TRIO_KERNEL_NAME=python3`` runs the same steps against
ipykernel (with asyncio instead of trio), which is how this test is checked.

The notebook is written with all its cells before it is opened, so no step
types code into CodeMirror (whose auto-closing brackets make typing fragile).
Each test runs one or more of those cells and waits, with a deadline, for
what they print.  Every step waits for something the page shows; none sleeps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import Lab
    from playwright.sync_api import BrowserContext, Locator, Page

expect = pytest.importorskip("playwright.sync_api", reason="playwright is needed; run e2e/setup.sh").expect

NOTEBOOK = "e2e.ipynb"
SCREENSHOT = Path(__file__).parent / "artifacts" / "jupyterlab.png"
PAGE_TIMEOUT_MS = 60_000
KERNEL_READY_TIMEOUT_MS = 60_000
OUTPUT_TIMEOUT_MS = 30_000

# Cell order in the notebook; tests refer to cells by these names.
HELLO, SLEEP, SLIDER, MARK, FRESH = range(5)


def await_then_print(kernel_name: str) -> str:
    """Return a cell that awaits at top level in the kernel's own event loop, then prints.

    ipykernel runs top-level ``await`` on asyncio, the trio kernel on trio.
    """
    if kernel_name == "python3":
        return 'import asyncio; await asyncio.sleep(0.5); print("hi")'
    return 'import trio; await trio.sleep(0.5); print("hi")'


def cell_sources(kernel_name: str) -> list[str]:
    """Return the notebook's cells, in the order of the HELLO..FRESH indices.

    The blocking cell prints before it sleeps so that the test interrupts a
    cell that is known to be running, not one that is still queued.
    """
    return [
        await_then_print(kernel_name),
        'import time; print("sleeping", flush=True); time.sleep(60)',
        "import ipywidgets; ipywidgets.IntSlider(5)",
        'restart_marker = 1; print("marked")',
        'print("stale" if "restart_marker" in globals() else "fresh")',
    ]


def notebook_json(kernel_name: str, display_name: str) -> str:
    """Return an nbformat 4.5 notebook whose metadata selects ``kernel_name``."""
    cells = [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": f"cell-{index}",
            "metadata": {},
            "outputs": [],
            "source": source,
        }
        for index, source in enumerate(cell_sources(kernel_name))
    ]
    metadata = {
        "kernelspec": {"name": kernel_name, "display_name": display_name, "language": "python"},
    }
    return json.dumps({"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5})


def wait_kernel_idle(page: Page, display_name: str) -> None:
    """Wait until the status bar shows the kernel under test, idle.

    The status bar is the signal because it names the kernel: the toolbar's
    execution indicator already says "idle" while the notebook has no kernel
    yet, and a cell run then is silently not executed.
    """
    status = page.locator("#jp-main-statusbar").get_by_text(f"{display_name} | Idle", exact=True)
    expect(status).to_be_visible(timeout=KERNEL_READY_TIMEOUT_MS)


def cell(page: Page, index: int) -> Locator:
    """Return the notebook cell at ``index``."""
    return page.locator(".jp-Notebook .jp-Cell").nth(index)


def run_cell(page: Page, index: int) -> Locator:
    """Select the cell by clicking its prompt, press the toolbar's Run button, return the cell."""
    target = cell(page, index)
    target.locator(".jp-InputPrompt").click()
    page.locator('jp-button[data-command="notebook:run-cell-and-select-next"]').click()
    return target


def expect_output(target: Locator, text: str) -> None:
    """Wait until the cell's output area shows ``text``."""
    output = target.locator(".jp-OutputArea-output")
    expect(output.last).to_contain_text(text, timeout=OUTPUT_TIMEOUT_MS)


def kernel_menu(page: Page, item: str) -> None:
    """Open the Kernel menu of the menu bar and choose ``item``."""
    page.locator(".lm-MenuBar-item", has_text="Kernel").click()
    page.locator(".lm-Menu").get_by_text(item, exact=True).click()


@pytest.fixture(scope="module")
def page(lab: Lab, browser: BrowserContext, kernel_name: str, kernel_display_name: str) -> Iterator[Page]:
    """Yield the notebook, open and with its kernel idle; screenshot the page at the end.

    The screenshot is taken whether the tests passed or not: it is the first
    thing to look at when one did not.
    """
    (lab.root_dir / NOTEBOOK).write_text(notebook_json(kernel_name, kernel_display_name))
    tab = browser.new_page()
    tab.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        tab.goto(lab.url(f"lab/tree/{NOTEBOOK}"))
        expect(cell(tab, FRESH)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        wait_kernel_idle(tab, kernel_display_name)
        yield tab
    finally:
        SCREENSHOT.parent.mkdir(exist_ok=True)
        tab.screenshot(path=SCREENSHOT, full_page=True)
        tab.close()


def test_top_level_await_prints(page: Page, kernel_display_name: str) -> None:
    """A cell awaiting in the kernel's event loop runs and its print reaches the page."""
    expect_output(run_cell(page, HELLO), "hi")
    wait_kernel_idle(page, kernel_display_name)


def test_interrupt_stops_blocking_cell(page: Page, kernel_display_name: str) -> None:
    """Kernel → Interrupt Kernel ends a cell blocked in ``time.sleep`` with KeyboardInterrupt."""
    target = run_cell(page, SLEEP)
    expect_output(target, "sleeping")
    kernel_menu(page, "Interrupt Kernel")
    expect_output(target, "KeyboardInterrupt")
    wait_kernel_idle(page, kernel_display_name)


def test_slider_widget_renders(page: Page, kernel_display_name: str) -> None:
    """An ipywidgets slider is rendered as a slider showing its value, not as text."""
    target = run_cell(page, SLIDER)
    slider = target.locator(".jp-OutputArea-output .widget-slider")
    expect(slider).to_be_visible(timeout=OUTPUT_TIMEOUT_MS)
    expect(target.locator(".widget-readout")).to_have_text("5", timeout=OUTPUT_TIMEOUT_MS)
    wait_kernel_idle(page, kernel_display_name)


def test_restart_gives_fresh_namespace(page: Page, kernel_display_name: str) -> None:
    """After Kernel → Restart Kernel… and the confirm dialog, cells run in a fresh namespace."""
    expect_output(run_cell(page, MARK), "marked")
    wait_kernel_idle(page, kernel_display_name)
    kernel_menu(page, "Restart Kernel…")
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text("Restart", timeout=OUTPUT_TIMEOUT_MS)
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    expect(dialog).to_be_hidden(timeout=OUTPUT_TIMEOUT_MS)
    wait_kernel_idle(page, kernel_display_name)
    expect_output(run_cell(page, FRESH), "fresh")
    wait_kernel_idle(page, kernel_display_name)

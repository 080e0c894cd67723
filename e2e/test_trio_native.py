"""Trio-native notebooks in JupyterLab: what a person sees of background tasks and asyncio.

Same set-up as ``test_jupyterlab.py`` (``conftest`` fixtures, ``ui`` helpers); a notebook and
workspace of its own.
The trio kernel only (``background`` is ours): skipped for ``TRIO_KERNEL_NAME=python3``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from ui import OUTPUT_TIMEOUT_MS, PAGE_TIMEOUT_MS, expect, lab_path
from ui import wait_lab_kernel_idle as wait_kernel_idle

if TYPE_CHECKING:
    from conftest import Server
    from playwright.sync_api import BrowserContext, Locator, Page

NOTEBOOK = "trio_native_e2e.ipynb"
READY_ATTEMPT_MS = 5_000
SCREENSHOT = Path(__file__).parent / "artifacts" / "trio_native.png"

READY, STARTS, RELEASES, MIXED = range(4)
SOURCES = [
    "print('kernel ready')",
    "import trio\n"
    "release = trio.Event()\n"
    "handle = display('step 0', display_id=True)\n"
    "async def later():\n"
    "    await release.wait()\n"
    "    handle.update('step 1 (updated in place)')\n"
    "    print('printed by the task after its cell finished')\n"
    "background.start_soon(later)",
    "release.set()\nprint('released')",
    "import asyncio\n"
    "async def double(x):\n"
    "    await asyncio.sleep(0.05)\n"
    "    return 2 * x\n"
    "print('gathered', await asyncio.gather(double(1), double(2)))\n"
    "await trio.sleep(0.05)",
]


def cell(page: Page, index: int) -> Locator:
    """The cell at ``index`` of the notebook on show (JupyterLab may have restored the other
    test's notebook in a hidden tab, so page-wide locators could find its cells)."""
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(index)


def run_cell(page: Page, index: int) -> Locator:
    """Select the cell by its prompt and press the Run button of its notebook's toolbar."""
    target = cell(page, index)
    target.locator(".jp-InputPrompt").click()
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)").locator(
        'jp-button[data-command="notebook:run-cell-and-select-next"]').click()
    return target


def wait_until_cells_run(page: Page) -> None:
    """Run the READY cell until it prints: JupyterLab may have restored the other test's
    notebook, whose kernel has the same name, so the status bar's "Idle" can be that one's,
    and a cell run before this notebook's kernel is connected is silently dropped."""
    for _ in range(PAGE_TIMEOUT_MS // READY_ATTEMPT_MS):
        try:
            expect(run_cell(page, READY).locator(".jp-OutputArea-output").last).to_contain_text(
                "kernel ready", timeout=READY_ATTEMPT_MS)
            return
        except AssertionError:
            continue
    raise AssertionError("this notebook's kernel never ran a cell")


@pytest.fixture(scope="module")
def page(lab: Server, browser: BrowserContext, kernel_name: str, kernel_display_name: str) -> Iterator[Page]:
    if kernel_name != "trio":
        pytest.skip("background tasks are the trio kernel's")
    cells = [{"cell_type": "code", "execution_count": None, "id": f"cell-{i}", "metadata": {},
              "outputs": [], "source": source} for i, source in enumerate(SOURCES)]
    metadata = {"kernelspec": {"name": kernel_name, "display_name": kernel_display_name, "language": "python"}}
    (lab.root_dir / NOTEBOOK).write_text(json.dumps({"cells": cells, "metadata": metadata,
                                                     "nbformat": 4, "nbformat_minor": 5}))
    tab = browser.new_page()
    tab.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        tab.goto(lab.url(lab_path("trio-native", NOTEBOOK)))
        expect(cell(tab, MIXED)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        wait_kernel_idle(tab, kernel_display_name)
        wait_until_cells_run(tab)
        yield tab
    finally:
        SCREENSHOT.parent.mkdir(exist_ok=True)
        tab.screenshot(path=SCREENSHOT, full_page=True)
        tab.close()


def test_background_task_updates_its_display_in_place(page: Page, kernel_display_name: str) -> None:
    starter = run_cell(page, STARTS)
    expect(starter.locator(".jp-OutputArea-output").first).to_contain_text("step 0", timeout=OUTPUT_TIMEOUT_MS)
    wait_kernel_idle(page, kernel_display_name)  # the cell finished although its task waits
    expect(run_cell(page, RELEASES).locator(".jp-OutputArea-output").last).to_contain_text(
        "released", timeout=OUTPUT_TIMEOUT_MS)
    expect(starter.locator(".jp-OutputArea-output").first).to_contain_text(
        "step 1 (updated in place)", timeout=OUTPUT_TIMEOUT_MS)
    # JupyterLab also shows output that arrives after the cell finished, in that cell.
    expect(starter.locator(".jp-OutputArea-output").last).to_contain_text(
        "printed by the task after its cell finished", timeout=OUTPUT_TIMEOUT_MS)


def test_asyncio_and_trio_in_one_cell(page: Page) -> None:
    mixed = run_cell(page, MIXED)
    expect(mixed.locator(".jp-OutputArea-output").last).to_contain_text("gathered [2, 4]", timeout=OUTPUT_TIMEOUT_MS)

"""Notebook 7 (``jupyter notebook``), driven by headless chromium, on the kernel under test.

Open a notebook, run a cell with top-level ``await``, stop a blocking cell with the
toolbar's interrupt button, restart from the toolbar and see a fresh namespace.
``TRIO_KERNEL_NAME=python3`` runs the same steps against ipykernel.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from ui import (
    KERNEL_READY_TIMEOUT_MS,
    PAGE_TIMEOUT_MS,
    accept_dialog,
    await_then_print,
    cell,
    expect,
    expect_output,
    notebook,
    notebook_json,
    run_cell,
    screenshot,
    toolbar_button,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import Server
    from playwright.sync_api import BrowserContext, Page

NOTEBOOK = "notebook7.ipynb"
HELLO, SLEEP, MARK, FRESH = range(4)


def cell_sources(kernel_name: str) -> list[str]:
    return [
        await_then_print(kernel_name),
        'import time; print("sleeping", flush=True); time.sleep(60)',
        'restart_marker = 1; print("marked")',
        'print("stale" if "restart_marker" in globals() else "fresh")',
    ]


def wait_kernel_idle(page: Page, display_name: str) -> None:
    """Wait until the toolbar names the kernel under test and its indicator says idle.

    Notebook 7 has no status bar; its toolbar indicator starts as "connecting", so
    "idle" there means a kernel is attached and waiting.
    """
    toolbar = notebook(page).locator(".jp-NotebookPanel-toolbar")
    expect(toolbar.locator(".jp-Toolbar-kernelName")).to_have_text(display_name, timeout=KERNEL_READY_TIMEOUT_MS)
    indicator = toolbar.locator(".jp-Notebook-ExecutionIndicator")
    expect(indicator).to_have_attribute("data-status", "idle", timeout=KERNEL_READY_TIMEOUT_MS)


@pytest.fixture(scope="module")
def page(notebook7: Server, browser: BrowserContext, kernel_name: str, kernel_display_name: str) -> Iterator[Page]:
    """Yield the notebook open in Notebook 7 with its kernel idle; screenshot it at the end."""
    (notebook7.root_dir / NOTEBOOK).write_text(notebook_json(cell_sources(kernel_name), kernel_name,
                                                             kernel_display_name))
    tab = browser.new_page()
    tab.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        tab.goto(notebook7.url(f"notebooks/{NOTEBOOK}"))
        expect(cell(tab, FRESH)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        wait_kernel_idle(tab, kernel_display_name)
        yield tab
    finally:
        screenshot(tab, "notebook7")
        tab.close()


def test_top_level_await_prints(page: Page, kernel_display_name: str) -> None:
    expect_output(run_cell(page, HELLO), "hi")
    wait_kernel_idle(page, kernel_display_name)


def test_interrupt_button_stops_blocking_cell(page: Page, kernel_display_name: str) -> None:
    target = run_cell(page, SLEEP)
    expect_output(target, "sleeping")
    toolbar_button(page, "notebook:interrupt-kernel").click()
    expect_output(target, "KeyboardInterrupt")
    wait_kernel_idle(page, kernel_display_name)


def test_restart_button_gives_fresh_namespace(page: Page, kernel_display_name: str) -> None:
    expect_output(run_cell(page, MARK), "marked")
    wait_kernel_idle(page, kernel_display_name)
    toolbar_button(page, "notebook:restart-kernel").click()
    accept_dialog(page, "Restart")
    wait_kernel_idle(page, kernel_display_name)
    expect_output(run_cell(page, FRESH), "fresh")
    wait_kernel_idle(page, kernel_display_name)

"""JupyterLab, driven by headless chromium, running the kernel named by ``TRIO_KERNEL_NAME``.

A person's view of the kernel: a notebook runs top-level ``await``, the
interrupt button stops a blocking cell, a widget renders, jupyter-resource-usage's
kernel usage panel shows the kernel's CPU and memory, and a restart gives a fresh
namespace.  ``TRIO_KERNEL_NAME=python3`` runs the same steps against ipykernel
(with asyncio instead of trio), which is how this test is checked.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import pytest
from ui import (
    PAGE_TIMEOUT_MS,
    accept_dialog,
    await_then_print,
    cell,
    expect,
    expect_output,
    lab_path,
    menu,
    notebook_json,
    run_cell,
    screenshot,
    wait_lab_kernel_idle,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import Server
    from playwright.sync_api import BrowserContext, Page

NOTEBOOK = "e2e.ipynb"
USAGE_TIMEOUT_MS = 60_000
"""The usage panel asks every 5 s, and its first CPU reading is always 0 (psutil)."""

# Cell order in the notebook; tests refer to cells by these names.
HELLO, SLEEP, SLIDER, PID, BURN, MARK, FRESH = range(7)


def cell_sources(kernel_name: str) -> list[str]:
    """Return the notebook's cells, in the order of the HELLO..FRESH indices.

    The blocking cells print before they block so that the test interrupts a
    cell that is known to be running, not one that is still queued.
    """
    return [
        await_then_print(kernel_name),
        'import time; print("sleeping", flush=True); time.sleep(60)',
        "import ipywidgets; ipywidgets.IntSlider(5)",
        'import os; print("pid", os.getpid())',
        'import time; print("burning", flush=True)\nwhile True: pass',
        'restart_marker = 1; print("marked")',
        'print("stale" if "restart_marker" in globals() else "fresh")',
    ]


@pytest.fixture(scope="module")
def page(lab: Server, browser: BrowserContext, kernel_name: str, kernel_display_name: str) -> Iterator[Page]:
    """Yield the notebook, open and with its kernel idle; screenshot the page at the end.

    The screenshot is taken whether the tests passed or not: it is the first
    thing to look at when one did not.
    """
    (lab.root_dir / NOTEBOOK).write_text(notebook_json(cell_sources(kernel_name), kernel_name, kernel_display_name))
    tab = browser.new_page()
    tab.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        tab.goto(lab.url(lab_path("kernel", NOTEBOOK)))
        expect(cell(tab, FRESH)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        wait_lab_kernel_idle(tab, kernel_display_name)
        yield tab
    finally:
        screenshot(tab, "jupyterlab")
        tab.close()


def test_top_level_await_prints(page: Page, kernel_name: str, kernel_display_name: str) -> None:
    """A cell awaiting in the kernel's event loop runs and its print reaches the page."""
    expect_output(run_cell(page, HELLO), "hi")
    wait_lab_kernel_idle(page, kernel_display_name)


def test_interrupt_stops_blocking_cell(page: Page, kernel_display_name: str) -> None:
    """Kernel → Interrupt Kernel ends a cell blocked in ``time.sleep`` with KeyboardInterrupt."""
    target = run_cell(page, SLEEP)
    expect_output(target, "sleeping")
    menu(page, "Kernel", "Interrupt Kernel")
    expect_output(target, "KeyboardInterrupt")
    wait_lab_kernel_idle(page, kernel_display_name)


def test_slider_widget_renders(page: Page, kernel_display_name: str) -> None:
    """An ipywidgets slider is rendered as a slider showing its value, not as text."""
    target = run_cell(page, SLIDER)
    slider = target.locator(".jp-OutputArea-output .widget-slider")
    expect(slider).to_be_visible(timeout=PAGE_TIMEOUT_MS)
    expect(target.locator(".widget-readout")).to_have_text("5", timeout=PAGE_TIMEOUT_MS)
    wait_lab_kernel_idle(page, kernel_display_name)


def test_kernel_usage_panel_shows_cpu_and_memory(page: Page, kernel_display_name: str) -> None:
    """jupyter-resource-usage's Kernel Usage panel (right sidebar) asks the kernel for
    ``usage_request`` on control: it names the kernel's process, shows its memory, and its
    CPU climbs above 20 % while a cell spins, though that cell holds the kernel's main thread
    (a spinning cell reads about 100 alone, 50-60 on a machine that is busy with other work).
    """
    pid_cell = run_cell(page, PID)
    expect_output(pid_cell, "pid ")
    pid = pid_cell.locator(".jp-OutputArea-output").last.inner_text().split()[-1]
    page.locator('.jp-SideBar.jp-mod-right .lm-TabBar-tab[data-id="kernelusage-panel-id"]').click()
    panel = page.locator(".jp-KernelUsage-content")
    expect(panel).to_contain_text(f"Process ID: {pid}", timeout=USAGE_TIMEOUT_MS)
    expect(panel).to_contain_text(re.compile(r"Memory: \d+(\.\d+)? MB"), timeout=USAGE_TIMEOUT_MS)
    spinning = run_cell(page, BURN)
    expect_output(spinning, "burning")
    expect(panel).to_contain_text(re.compile(r"CPU: ([2-9]\d|\d{3,})"), timeout=USAGE_TIMEOUT_MS)
    screenshot(page, "kernel-usage")
    menu(page, "Kernel", "Interrupt Kernel")
    expect_output(spinning, "KeyboardInterrupt")
    wait_lab_kernel_idle(page, kernel_display_name)


def test_restart_gives_fresh_namespace(page: Page, kernel_display_name: str) -> None:
    """After Kernel → Restart Kernel… and the confirm dialog, cells run in a fresh namespace."""
    expect_output(run_cell(page, MARK), "marked")
    wait_lab_kernel_idle(page, kernel_display_name)
    menu(page, "Kernel", "Restart Kernel…")
    accept_dialog(page, "Restart")
    wait_lab_kernel_idle(page, kernel_display_name)
    expect_output(run_cell(page, FRESH), "fresh")
    wait_lab_kernel_idle(page, kernel_display_name)

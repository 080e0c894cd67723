"""JupyterLab's visual debugger, used the way a person does, on the kernel under test.

Switch the debugger on with the notebook toolbar's bug icon, click a cell's gutter to set
a breakpoint, run the cell, see it stop (call stack and variables filled, a local's value
shown), step over, continue, and the cell finishes. Then the same in a ``# thread`` cell,
while another cell runs beside the stopped one. Screenshots of the stopped states go to
``e2e/artifacts/``.

With ``TRIO_KERNEL_NAME=python3`` the first test runs against ipykernel, which is how
the test itself is checked (ipykernel has no thread cells, so the second is skipped).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from ui import (
    OUTPUT_TIMEOUT_MS,
    PAGE_TIMEOUT_MS,
    cell,
    expect,
    expect_output,
    lab_path,
    notebook,
    notebook_json,
    run_cell,
    screenshot,
    wait_lab_kernel_idle,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

    from conftest import Server
    from playwright.sync_api import BrowserContext, Locator, Page

NOTEBOOK = "debug.ipynb"
DEBUGGER_START_TIMEOUT_MS = 60_000
"""Switching the debugger on starts debugpy's adapter process: seconds on a busy machine."""

BODY = """\
def add(a, b):
    total = a + b
    return total

x = 40
y = add(x, 2)
print("result", y)
"""
BREAK_LINE = 3
"""``return total``: stopped there, ``total`` is a local of ``add``."""

# Cell order in the notebook.
QUEUED, THREADED, BESIDE = range(3)
SOURCES = [BODY, "# thread\n" + BODY, 'print("ran beside")']
LINE_OFFSET = {QUEUED: 0, THREADED: 1}
"""The thread cell's header line moves its code down by one."""


@pytest.fixture(scope="module")
def page(lab: Server, browser: BrowserContext, kernel_name: str, kernel_display_name: str) -> Iterator[Page]:
    """Yield the notebook, open, idle, with the debugger switched on and its sidebar showing."""
    (lab.root_dir / NOTEBOOK).write_text(notebook_json(SOURCES, kernel_name, kernel_display_name))
    tab = browser.new_page()
    tab.set_default_timeout(PAGE_TIMEOUT_MS)
    try:
        tab.goto(lab.url(lab_path("debugger", NOTEBOOK)))
        expect(cell(tab, BESIDE)).to_be_visible(timeout=PAGE_TIMEOUT_MS)
        wait_lab_kernel_idle(tab, kernel_display_name)
        switch_debugger_on(tab)
        yield tab
    finally:
        screenshot(tab, "debugger-final")
        tab.close()


def sidebar(page: Page) -> Locator:
    return page.locator("#jp-debugger-sidebar")


def frames(page: Page) -> Locator:
    """The call stack panel's rows, innermost frame first."""
    return sidebar(page).locator(".jp-DebuggerCallstackFrame")


def switch_debugger_on(page: Page) -> None:
    """Click the toolbar's bug icon; the debugger is on once cells grow a breakpoint gutter.

    JupyterLab opens the debugger sidebar by itself when debugpy reports ``initialized``.
    """
    bug = notebook(page).locator(".jp-NotebookPanel-toolbar .jp-DebuggerBugButton")
    # Enabled once the kernel's kernel_info said it has a debugger (a custom element:
    # Playwright's to_be_enabled does not see its state, aria-disabled does).
    expect(bug).to_have_attribute("aria-disabled", "false", timeout=PAGE_TIMEOUT_MS)
    bug.click()
    expect(bug).to_have_attribute("aria-pressed", "true", timeout=DEBUGGER_START_TIMEOUT_MS)
    expect(cell(page, QUEUED).locator(".cm-gutter.cm-breakpoint-gutter")).to_be_visible(
        timeout=DEBUGGER_START_TIMEOUT_MS)
    expect(sidebar(page)).to_be_visible(timeout=DEBUGGER_START_TIMEOUT_MS)


def click_gutter(page: Page, index: int, line: int) -> None:
    """Click the breakpoint gutter beside ``line`` (1-based) of cell ``index``, as a person does.

    The gutter has one element per line after a hidden spacer; clicking the element (not
    a point computed from a bounding box) lets Playwright wait until the cell stops moving.
    """
    gutter = cell(page, index).locator(".cm-gutter.cm-breakpoint-gutter .cm-gutterElement")
    gutter.nth(line).click()
    expect(gutter.nth(line).locator(".cm-breakpoint-icon")).to_be_visible(timeout=OUTPUT_TIMEOUT_MS)
    # The breakpoint is set once it is listed in the sidebar's Breakpoints panel, by cell.
    listed = sidebar(page).locator(".jp-DebuggerBreakpoint", has_text=str(line))
    expect(listed).to_be_visible(timeout=OUTPUT_TIMEOUT_MS)


def expect_stopped(page: Page, index: int) -> None:
    """Wait for the stop at the breakpoint: call stack ``add`` over ``<module>``, both named as
    the running cell (not as a temporary file), and ``total`` = 42 among the locals."""
    line = BREAK_LINE + LINE_OFFSET[index]
    expect(frames(page)).to_have_count(2, timeout=OUTPUT_TIMEOUT_MS)
    expect(frames(page).nth(0)).to_contain_text("add", timeout=OUTPUT_TIMEOUT_MS)
    expect(frames(page).nth(0)).to_contain_text(f"Cell [*]:{line}", timeout=OUTPUT_TIMEOUT_MS)
    expect(frames(page).nth(1)).to_contain_text("<module>", timeout=OUTPUT_TIMEOUT_MS)
    # The variables panel opens on Globals; a person picks Locals to see the frame's own.
    sidebar(page).locator('select[aria-label="Scope"]').select_option("Locals")
    expect_variable(page, "total", "42")
    expect(cell(page, index).locator(".jp-DebuggerEditor-highlight")).to_contain_text("return total")


def expect_variable(page: Page, name: str, value: str) -> None:
    """Wait until the variables panel lists ``name`` with ``value``."""
    rows = sidebar(page).locator(".jp-DebuggerVariables-body").first.locator("jp-tree-item")
    row = rows.filter(has=page.locator(".jp-DebuggerVariables-name", has_text=name))
    expect(row.locator(".jp-DebuggerVariables-detail")).to_have_text(value, timeout=OUTPUT_TIMEOUT_MS)


def step_over_then_continue(page: Page, index: int) -> Locator:
    """Next (F10) leaves ``add`` for the cell's own frame; Continue (F9) lets the cell finish.

    Continue is pressed once the variables panel shows the new frame (``y`` = 42), as a
    person reads it first. (Pressing it earlier works too: the kernel keeps the panel's
    requests and the resume apart, see ``kernel/_debugger/gate.py``.)
    """
    sidebar(page).locator('jp-button[data-command="debugger:next"]').click()
    expect(frames(page)).to_have_count(1, timeout=OUTPUT_TIMEOUT_MS)
    expect(frames(page).nth(0)).to_contain_text("<module>", timeout=OUTPUT_TIMEOUT_MS)
    expect_variable(page, "y", "42")
    sidebar(page).locator('jp-button[data-command="debugger:continue"]').click()
    target = cell(page, index)
    expect_output(target, "result 42")
    expect(frames(page)).to_have_count(0, timeout=OUTPUT_TIMEOUT_MS)
    # JupyterLab hides its "Paused in Debugger" overlay (which blocks clicks on the
    # notebook) when the kernel reports the thread ``continued``.
    expect(notebook(page).get_by_text("Paused in Debugger")).to_be_hidden(timeout=OUTPUT_TIMEOUT_MS)
    return target


def test_breakpoint_stop_step_continue(page: Page, kernel_display_name: str) -> None:
    """A queued cell stops at a gutter breakpoint, shows its frames and locals, steps, finishes."""
    click_gutter(page, QUEUED, BREAK_LINE)
    run_cell(page, QUEUED)
    expect_stopped(page, QUEUED)
    screenshot(page, "debugger-stopped")
    step_over_then_continue(page, QUEUED)
    wait_lab_kernel_idle(page, kernel_display_name)
    screenshot(page, "debugger-finished")


def test_breakpoint_in_thread_cell(page: Page, kernel_name: str, kernel_display_name: str) -> None:
    """A ``# thread`` cell stops in its worker thread; another cell runs and prints while it
    is stopped; then it steps and finishes like a queued one."""
    if kernel_name == "python3":
        pytest.skip("ipykernel has no thread cells")
    click_gutter(page, THREADED, BREAK_LINE + LINE_OFFSET[THREADED])
    run_cell(page, THREADED)
    expect_stopped(page, THREADED)
    expect_output(run_cell(page, BESIDE), "ran beside")
    screenshot(page, "debugger-thread-stopped")
    step_over_then_continue(page, THREADED)
    wait_lab_kernel_idle(page, kernel_display_name)

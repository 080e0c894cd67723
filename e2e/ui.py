"""What the end-to-end tests do on a page, as a person would: shared by JupyterLab and Notebook 7.

Notebook 7 is built from JupyterLab's components, so a cell, its prompt, its output area,
the toolbar's Run button and the restart dialog are found the same way in both. Notebooks
are written with all their cells before they are opened, so no step types code into
CodeMirror (whose auto-closing brackets make typing fragile). Every helper waits, with a
deadline, for something the page shows; none sleeps.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page

expect = pytest.importorskip("playwright.sync_api", reason="playwright is needed; run e2e/setup.sh").expect

ARTIFACTS = Path(__file__).parent / "artifacts"
"""Screenshots (ignored by git); conftest writes failures' there too."""
PAGE_TIMEOUT_MS = 60_000
KERNEL_READY_TIMEOUT_MS = 60_000
OUTPUT_TIMEOUT_MS = 30_000


def await_then_print(kernel_name: str, text: str = "hi") -> str:
    """Return a cell that awaits at top level in the kernel's own event loop, then prints.

    ipykernel runs top-level ``await`` on asyncio, the trio kernel on trio.
    """
    if kernel_name == "python3":
        return f'import asyncio; await asyncio.sleep(0.5); print("{text}")'
    return f'import trio; await trio.sleep(0.5); print("{text}")'


def notebook_json(sources: list[str], kernel_name: str, display_name: str) -> str:
    """Return an nbformat 4.5 notebook of code cells whose metadata selects ``kernel_name``."""
    cells = [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": f"cell-{index}",
            "metadata": {},
            "outputs": [],
            "source": source,
        }
        for index, source in enumerate(sources)
    ]
    metadata = {
        "kernelspec": {"name": kernel_name, "display_name": display_name, "language": "python"},
    }
    return json.dumps({"cells": cells, "metadata": metadata, "nbformat": 4, "nbformat_minor": 5})


def lab_path(workspace: str, notebook_name: str) -> str:
    """Return the JupyterLab URL path opening ``notebook_name`` in a workspace of its own.

    Each test module names its own workspace, so a page does not reopen the documents
    another module's page left open (JupyterLab restores a workspace's layout).
    """
    return f"lab/workspaces/{workspace}/tree/{notebook_name}"


def wait_lab_kernel_idle(page: Page, display_name: str) -> None:
    """Wait until JupyterLab's status bar shows the kernel under test, idle.

    The status bar is the signal because it names the kernel: the toolbar's
    execution indicator already says "idle" while the notebook has no kernel
    yet, and a cell run then is silently not executed.
    """
    status = page.locator("#jp-main-statusbar").get_by_text(f"{display_name} | Idle", exact=True)
    expect(status).to_be_visible(timeout=KERNEL_READY_TIMEOUT_MS)


def notebook(page: Page) -> Locator:
    """Return the notebook panel on show (JupyterLab keeps other open documents, hidden)."""
    return page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")


def cell(page: Page, index: int) -> Locator:
    """Return the shown notebook's cell at ``index``."""
    return notebook(page).locator(".jp-Notebook .jp-Cell").nth(index)


def select_cell(page: Page, index: int) -> Locator:
    """Select the cell by clicking its prompt (command mode, no editor focus); return it."""
    target = cell(page, index)
    target.locator(".jp-InputPrompt").click()
    return target


def run_cell(page: Page, index: int) -> Locator:
    """Select the cell, press the toolbar's Run button, return the cell."""
    target = select_cell(page, index)
    toolbar_button(page, "notebook:run-cell-and-select-next").click()
    return target


def toolbar_button(page: Page, command: str) -> Locator:
    """Return the notebook toolbar's button for ``command`` (e.g. ``notebook:interrupt-kernel``)."""
    return notebook(page).locator(f'.jp-NotebookPanel-toolbar jp-button[data-command="{command}"]')


def expect_output(target: Locator, text: str) -> None:
    """Wait until the cell's output area shows ``text``."""
    output = target.locator(".jp-OutputArea-output")
    expect(output.last).to_contain_text(text, timeout=OUTPUT_TIMEOUT_MS)


def menu(page: Page, title: str, item: str) -> None:
    """Open the menu bar's ``title`` menu and choose ``item``."""
    page.locator(".lm-MenuBar-item", has_text=title).click()
    page.locator(".lm-Menu").get_by_text(item, exact=True).click()


def accept_dialog(page: Page, expected: str) -> None:
    """Wait for a dialog mentioning ``expected``, press its accept button, wait for it to close."""
    dialog = page.locator(".jp-Dialog")
    expect(dialog).to_contain_text(expected, timeout=OUTPUT_TIMEOUT_MS)
    dialog.locator(".jp-Dialog-button.jp-mod-accept").click()
    expect(dialog).to_be_hidden(timeout=OUTPUT_TIMEOUT_MS)


def screenshot(page: Page, name: str) -> None:
    """Save the whole page as ``e2e/artifacts/<name>.png`` (ignored by git)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / f"{name}.png", full_page=True)

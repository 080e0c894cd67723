"""Regenerate the example notebooks kept in ``examples/`` (their source of truth is here)."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).parent
KERNELSPEC = {"name": "trio", "display_name": "Python 3 (trio)", "language": "python"}


def demo() -> nbformat.NotebookNode:
    return new_notebook(
        metadata={"kernelspec": KERNELSPEC},
        cells=[
            new_markdown_cell("# trio-kernel demo\nCells run on a trio loop: `await` works at top level."),
            new_code_cell("import trio\nawait trio.sleep(0.1)\nprint('slept 0.1 s on the kernel\\'s trio loop')"),
            new_code_cell(
                "results = []\n\nasync def worker(n):\n    await trio.sleep(0.05 * n)\n    results.append(n)\n\n"
                "async with trio.open_nursery() as nursery:\n    for n in (3, 1, 2):\n"
                "        nursery.start_soon(worker, n)\nresults"
            ),
            new_code_cell("from IPython.display import HTML, Markdown, display\n"
                          "display(Markdown('**rich** output'))\nHTML('<b>bold</b> html')"),
            new_code_cell("with trio.move_on_after(0.1) as scope:\n    await trio.sleep(10)\n"
                          "print('cancelled by its own scope:', scope.cancelled_caught)"),
            new_code_cell("1 / 0", metadata={"tags": ["raises-exception"]}),
        ],
    )


def concurrency() -> nbformat.NotebookNode:
    return new_notebook(
        metadata={"kernelspec": KERNELSPEC},
        cells=[
            new_markdown_cell(
                "# Run modes\nA first-line header comment picks how a cell runs: `# queue` (default), "
                "`# task`, `# thread`, `# blocking`; options such as `timeout=5` may follow."
            ),
            new_code_cell("import threading, time, trio\nevents = []"),
            new_code_cell("# task\nawait trio.sleep(0.3)\nevents.append('task cell done')\nprint('task finished')"),
            new_code_cell("# queue\nevents.append('queued cell ran while the task slept')\nprint(events)"),
            new_code_cell("# thread\nprint('runs in', threading.current_thread().name)\n"
                          "time.sleep(0.1)  # blocks only this worker thread\nawait trio.sleep(0.1)"),
            new_code_cell("# blocking\nprint('nothing else on this shell starts until I end')"),
            new_code_cell("# queue timeout=0.2\nawait trio.sleep(5)", metadata={"tags": ["raises-exception"]}),
            new_code_cell("await trio.sleep(0.4)\nprint(events)"),
        ],
    )


def main() -> None:
    for name, build in (("demo", demo), ("concurrency", concurrency)):
        nbformat.write(build(), HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main()

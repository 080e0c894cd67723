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


def trio_native() -> nbformat.NotebookNode:
    return new_notebook(
        metadata={"kernelspec": KERNELSPEC},
        cells=[
            new_markdown_cell(
                "# Trio-native notebooks\n"
                "`background` runs trio tasks that outlive their cell; cells can `await` asyncio and "
                "trio side by side. (`%gui qt` and `%matplotlib qt` keep Qt windows alive between "
                "cells; not run here, as this notebook also runs headless in `make test`.)"
            ),
            new_markdown_cell(
                "## A background task that updates a display\n"
                "The cell ends at once and the kernel goes idle; the task goes on and updates the "
                "output in place through its display handle (this works in every frontend)."
            ),
            new_code_cell(
                "import trio\n\n"
                "ticker_done = trio.Event()\n\n"
                "async def ticker(n, handle):\n"
                "    for i in range(1, n + 1):\n"
                "        await trio.sleep(0.05)\n"
                "        handle.update(f'tick {i}/{n}')\n"
                "    ticker_done.set()\n\n"
                "handle = display('tick 0', display_id=True)\n"
                "background.start_soon(ticker, 5, handle, name='ticker')"
            ),
            new_code_cell("%tasks"),
            new_markdown_cell(
                "## A server in the background\n"
                "`await background.start(...)` waits until the task says it is ready "
                "(`task_status.started(...)`) and returns what it passed: here trio's listeners."
            ),
            new_code_cell(
                "async def shout(stream):\n"
                "    async for data in stream:\n"
                "        await stream.send_all(data.upper())\n\n"
                "listeners = await background.start(trio.serve_tcp, shout, 0, name='shout server')\n"
                "port = listeners[0].socket.getsockname()[1]\n"
                "print('serving on a free port')"
            ),
            new_markdown_cell(
                "## asyncio and trio in one cell\n"
                "asyncio's streams talk to the trio server; `asyncio.gather` and `trio.sleep` mix freely."
            ),
            new_code_cell(
                "import asyncio\n\n"
                "async def ask(text):\n"
                "    reader, writer = await asyncio.open_connection('127.0.0.1', port)\n"
                "    writer.write(text.encode() + b'\\n')\n"
                "    await writer.drain()\n"
                "    answer = await reader.readline()\n"
                "    writer.close()\n"
                "    await writer.wait_closed()\n"
                "    return answer.decode().strip()\n\n"
                "answers = await asyncio.gather(ask('hello'), ask('from asyncio'))\n"
                "await trio.sleep(0.01)\n"
                "print(answers)"
            ),
            new_code_cell("await ticker_done.wait()\n%tasks"),
            new_code_cell("%tasks cancel all"),
        ],
    )


def main() -> None:
    for name, build in (("demo", demo), ("concurrency", concurrency), ("trio_native", trio_native)):
        nbformat.write(build(), HERE / f"{name}.ipynb")


if __name__ == "__main__":
    main()

"""Payloads (pager, ``exit``, ``set_next_input``) belong to the cell that wrote them.

IPython keeps one list per shell, read and cleared when a cell ends; with several cells
running at once (tasks, threads, subshells) one cell's pager output could end up in
another's reply. This manager writes into the current cell's own list instead.
"""

from __future__ import annotations

from typing import Any

from IPython.core.payload import PayloadManager

from .._shell.cell import cell_for_output


class CellPayloads(PayloadManager):
    """``shell.payload_manager``: writes go to the current cell (runs on the cell's thread)."""

    def write_payload(self, data: dict[str, Any], single: bool = True) -> None:
        cell = cell_for_output()
        if cell is None:  # no cell to answer: nobody would read it
            return
        if not isinstance(data, dict):
            raise TypeError(f"each payload write must be a dict, got: {data!r}")
        if single and "source" in data:
            for i, existing in enumerate(cell.payload):
                if existing.get("source") == data["source"]:
                    cell.payload[i] = data
                    return
        cell.payload.append(data)

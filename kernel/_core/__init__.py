"""The sans-I/O core: wire format and signing, the run-mode table, cell options, reply contents.

No sockets, threads or trio here: pure functions and frozen data, tested exhaustively.
"""

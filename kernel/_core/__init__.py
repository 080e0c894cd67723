"""The sans-I/O core: wire format and signing, the dispatch table, the shell policy, cell
options, reply contents.

No sockets, threads or trio here: pure functions and frozen data, tested exhaustively.
"""

"""The I/O thread's side: dispatch, control requests, interrupt, SIGINT, subshells, reader requests.

Nothing here runs user cells; it answers while a cell holds the shell thread.
"""

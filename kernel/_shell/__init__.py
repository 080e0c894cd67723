"""The shell side: the runner that executes requests, the IPython shell, output streams, stdin, comms."""

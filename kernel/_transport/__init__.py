"""The transport: connection files, one trio task per zmq socket, the iopub outbox, status, heartbeat."""

"""The application layer: ``open_kernel``, the command line and the kernelspec."""

"""The JupyterLab debugger: debug_request bridged to debugpy over DAP."""

"""Net Designer's engine: everything that is not Qt.

Graph document, layer library, analysis, compile, export, project files and CLI.
This package never imports Qt, pyqtgraph or ``designer``.
"""

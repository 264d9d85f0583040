"""BlockProp's desktop interface (PySide6 + pyqtgraph): a view of engine.Graph."""

"""Live validation: re-run ``engine.analyze`` once per burst of Graph events.

Every Graph event marks the analysis stale and starts a zero-delay timer, so a paste of fifty
blocks or an undo of a whole macro costs one analysis, run when control returns to the event
loop. Code that needs fresh results now (the connection check) calls ``flush()``.

With the Training dock's settings (``set_training``) the analysis also checks that the graph
fits the chosen data (``engine.data_fit``): the data set's shapes come from a ``DataProbe``,
and its problems join the graph's own.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from engine.analysis import Analysis, Problem, analyze
from engine.data_fit import DataShape, fit_problems
from engine.graph import Graph
from engine.graph_events import GraphEvent, NodeMoved
from gui.data_probe import DataProbe


class LiveAnalysis(QObject):
    """Holds the latest ``Analysis`` of ``graph``; emits ``changed(analysis)`` after each run."""

    changed = Signal(object)

    def __init__(self, graph: Graph, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.graph = graph
        self.runs = 0  # how many times analyze ran (tests check the coalescing)
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self.flush)
        self._stale = True
        self.batch_size: int | None = None  # the Training dock's (None: the graph's own)
        self.analysis: Analysis = Analysis()
        self.check_data = True  # check the graph against the data (tests may turn it off)
        self.training: dict | None = None  # the dock's settings (None: no data check)
        self._data: dict | None = None  # its data set, file paths resolved
        self.probe = DataProbe(self)
        self.probe.ready.connect(self._restale)
        graph.subscribe(self._on_graph_event)
        self.flush()

    def _on_graph_event(self, event: GraphEvent) -> None:
        if isinstance(event, NodeMoved):
            return  # positions do not change shapes or problems
        self._stale = True
        if not self._timer.isActive():
            self._timer.start()

    def set_batch_size(self, batch_size: int | None) -> None:
        """Check memory at ``batch_size`` from now on (re-run if it changed)."""
        if batch_size == self.batch_size:
            return
        self.batch_size = batch_size
        self._stale = True
        if not self._timer.isActive():
            self._timer.start()

    def set_training(self, training: dict | None, dataset: dict | None = None) -> None:
        """Check the graph against these training settings from now on; ``dataset`` is their
        data set with its file paths resolved (default: as given)."""
        if training == self.training and dataset == self._data:
            return
        self.training = training
        self._data = dataset if dataset is not None else (training or {}).get("dataset")
        if isinstance(self._data, str):
            self._data = {"name": self._data}
        self._restale()

    def _restale(self) -> None:
        self._stale = True
        if not self._timer.isActive():
            self._timer.start()

    def _data_problems(self, a: Analysis) -> list[Problem]:
        if self.training is None or not self.check_data:
            return []
        data = self.probe.shape(self._data)
        if isinstance(data, str):
            return [Problem(None, f"the data cannot be loaded: {data}")]
        if isinstance(data, DataShape):
            return fit_problems(self.graph, a, data, self.training)
        return []

    def detach(self) -> None:
        self.graph.unsubscribe(self._on_graph_event)
        self._timer.stop()

    def flush(self) -> Analysis:
        """Run the analysis now if the graph changed since the last run; return it."""
        self._timer.stop()
        if self._stale:
            self._stale = False
            self.analysis = analyze(self.graph, batch_size=self.batch_size)
            self.analysis.problems += self._data_problems(self.analysis)
            self.runs += 1
            self.changed.emit(self.analysis)
        return self.analysis

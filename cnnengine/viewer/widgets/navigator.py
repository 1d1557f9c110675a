"""Layer navigator: every layer in execution order with op, output shape,
params, MACs and measured time; keyboard stepping."""
import numpy as np
from PyQt6.QtCore import QAbstractTableModel, QModelIndex, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont
from PyQt6.QtWidgets import QAbstractItemView, QHeaderView, QTableView

from ..style import op_color

NAV_KEYS = {Qt.Key.Key_Up: -1, Qt.Key.Key_Left: -1, Qt.Key.Key_Down: 1, Qt.Key.Key_Right: 1,
            Qt.Key.Key_PageUp: -10, Qt.Key.Key_PageDown: 10,
            Qt.Key.Key_Home: "home", Qt.Key.Key_End: "end"}


COLUMN_WIDTHS = {"#": 30, "Op": 76, "Output": 88, "Params": 62, "MACs": 52, "Time": 70}
SHORT_OPS = {"BatchNormalization": "BatchNorm", "GlobalAveragePool": "GlobalAvgPool", "GlobalMaxPool": "GlobalMax",
             "LayerNormalization": "LayerNorm", "ConvTranspose": "ConvT", "AveragePool": "AvgPool"}


def human(n):
    n = float(n)
    for unit in ("", "K", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.0f}{unit}" if unit == "" else f"{n:.3g}{unit}"
        n /= 1000
    return f"{n:.3g}P"


def fmt_seconds(t):
    if t < 1e-4:
        return f"{t * 1e6:.0f} µs"
    return f"{t * 1e3:.2f} ms" if t < 0.01 else f"{t * 1e3:.1f} ms" if t < 0.1 else f"{t * 1e3:.0f} ms"


class LayerTable(QAbstractTableModel):
    COLUMNS = ("#", "Layer", "Op", "Output", "Params", "MACs", "Time")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.layers = []
        self.times = {}
        self.spread = {}
        self.total_macs = 0
        self.merges = set()

    def set_layers(self, layers, merges=()):
        self.beginResetModel()
        self.layers = list(layers)
        self.times = {}
        self.spread, self.rate = {}, None
        self.merges = set(merges)
        self.total_macs = sum(l.macs for l in self.layers) or 1
        self.endResetModel()

    def set_times(self, times, spread=None):
        """times: layer -> seconds (or the step it is fused into); spread: layer ->
        (lowest, highest, repeats) of the medians behind it, to mark noisy ones."""
        self.times = dict(times)
        self.spread = dict(spread or {})
        self.set_rate()
        if self.layers:
            col = self.COLUMNS.index("Time")
            self.dataChanged.emit(self.index(0, col), self.index(len(self.layers) - 1, col))

    def rowCount(self, parent=QModelIndex()):
        return 0 if parent.isValid() else len(self.layers)

    def columnCount(self, parent=QModelIndex()):
        return len(self.COLUMNS)

    def headerData(self, section, orientation, role=Qt.ItemDataRole.DisplayRole):
        if orientation == Qt.Orientation.Horizontal:
            if role == Qt.ItemDataRole.DisplayRole:
                return self.COLUMNS[section]
            if role == Qt.ItemDataRole.ToolTipRole and self.COLUMNS[section] == "Time":
                return ("Median time of the engine's step over 3 × 3 runs of Model.profile(); layers the "
                        "engine fused into the previous step show 'fused'.\n'~' marks a noisy time (the runs "
                        "disagree by more than half: a busy machine); hover for the range.\n"
                        "Before profiling finishes: share of the MACs.")
        return None

    def set_rate(self):
        """The model's fast seconds per MAC (the 10th percentile over the timed layers with real work)."""
        rates = [self.times[l.name] / l.macs for l in self.layers
                 if l.macs >= 10000 and isinstance(self.times.get(l.name), float)]
        self.rate = float(np.percentile(rates, 10, method="lower")) if rates else None

    def noisy(self, layer):
        """Why the layer's time should not be trusted ("" when it can be): the
        repeated medians disagree by more than half (and 20 µs), or it took over
        a millisecond and 30 times longer than its MACs take at the model's fast rate
        (a depthwise conv is slower per MAC than a dense one, but not that much)."""
        t = self.times.get(layer.name)
        if not isinstance(t, float):
            return ""
        lo, hi, n = self.spread.get(layer.name, (t, t, 1))
        if n > 1 and hi - lo > max(0.5 * t, 2e-5):
            return f"the {n} profiles disagree ({fmt_seconds(lo)}–{fmt_seconds(hi)})"
        rate = getattr(self, "rate", None)
        if rate and t > 1e-3 and t > 30 * max(layer.macs, 1) * rate:
            return (f"{t / (max(layer.macs, 1) * rate):.0f}× longer than its {human(layer.macs)} MACs take at "
                    f"the model's fast rate")
        return ""

    def time_tip(self, layer):
        t = self.times.get(layer.name)
        if not isinstance(t, float) or layer.name not in self.spread:
            return ""
        lo, hi, n = self.spread[layer.name]
        why = self.noisy(layer)
        return (f"\ntime: median {fmt_seconds(t)} of {n} profiles (range {fmt_seconds(lo)}–{fmt_seconds(hi)})"
                + (f"\nnoisy: {why}: a busy machine or the timer's resolution, not the op's cost" if why else ""))

    def time_text(self, layer):
        t = self.times.get(layer.name, "?")
        if t == "?":
            return f"{100 * layer.macs / self.total_macs:.1f}%" if layer.macs else ""
        if t is None:
            return "—"
        if isinstance(t, str):
            return "fused"
        return ("~" if self.noisy(layer) else "") + fmt_seconds(t)

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        l, col = self.layers[index.row()], self.COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            if col == "#":
                return str(index.row())
            if col == "Layer":
                return l.name
            if col == "Op":
                return SHORT_OPS.get(l.op, l.op)
            if col == "Output":
                return "×".join(str(d) for d in l.output_shape[1:]) if len(l.output_shape) > 1 else \
                    "×".join(str(d) for d in l.output_shape)
            if col == "Params":
                return human(l.params) if l.params else ""
            if col == "MACs":
                return human(l.macs) if l.macs else ""
            if col == "Time":
                return self.time_text(l)
        if role == Qt.ItemDataRole.TextAlignmentRole and col in ("#", "Params", "MACs", "Time"):
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == Qt.ItemDataRole.ForegroundRole:
            if col == "Op":
                return QColor(op_color(l.op))
            if col == "Time" and not isinstance(self.times.get(l.name, 0.0), float):
                return QColor("#7d8590")
            if col == "Time" and self.noisy(l):
                return QColor("#d29922")
            if col == "#":
                return QColor("#7d8590")
        if role == Qt.ItemDataRole.ToolTipRole:
            rf = l.receptive_field
            ins = ", ".join("×".join(str(d) for d in s) for s in l.input_shapes)
            return (f"{l.name}  ({l.op})\ninputs: {ins}\noutput: {'×'.join(map(str, l.output_shape))}\n"
                    f"params: {l.params:,}\nMACs: {l.macs:,}\n"
                    f"receptive field: {rf['size'][0]}×{rf['size'][1]} px, jump {rf['jump'][0]}, "
                    f"start {rf['start'][0]}" + ("\nmerges branches" if index.row() in self.merges else "")
                    + self.time_tip(l))
        if role == Qt.ItemDataRole.FontRole and col == "Layer" and index.row() in self.merges:
            f = QFont()
            f.setBold(True)
            return f
        return None


class Navigator(QTableView):
    """Emits layerSelected(row). Arrows, Page Up/Down, Home/End step through layers."""
    layerSelected = pyqtSignal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = LayerTable(self)
        self.setModel(self.table)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setShowGrid(False)
        self.setWordWrap(False)
        self.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.verticalHeader().setVisible(False)
        self.verticalHeader().setDefaultSectionSize(22)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        h = self.horizontalHeader()
        h.setStretchLastSection(False)
        h.setHighlightSections(False)
        h.setMinimumSectionSize(24)
        for i, col in enumerate(LayerTable.COLUMNS):
            if col == "Layer":
                h.setSectionResizeMode(i, QHeaderView.ResizeMode.Stretch)
            else:
                h.setSectionResizeMode(i, QHeaderView.ResizeMode.Interactive)
                h.resizeSection(i, COLUMN_WIDTHS[col])
        self.selectionModel().currentRowChanged.connect(lambda cur, _: self.layerSelected.emit(cur.row())
                                                        if cur.isValid() else None)

    def set_layers(self, layers, merges=()):
        self.table.set_layers(layers, merges)

    NAME_MIN = 110                                  # px the layer names keep in a narrow list
    HIDE_ORDER = ("MACs", "Params", "#", "Output", "Op", "Time")   # given up in this order (all in the tooltip)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        room = self.viewport().width() - self.NAME_MIN
        fixed = sum(COLUMN_WIDTHS[c] for c in LayerTable.COLUMNS if c != "Layer")
        for col in self.HIDE_ORDER:
            hide = fixed > room
            self.setColumnHidden(LayerTable.COLUMNS.index(col), hide)
            if hide:
                fixed -= COLUMN_WIDTHS[col]

    def current(self):
        idx = self.currentIndex()
        return idx.row() if idx.isValid() else -1

    def select(self, row):
        n = self.table.rowCount()
        if n == 0:
            return
        row = max(0, min(n - 1, row))
        if row != self.current():
            self.setCurrentIndex(self.table.index(row, 1))
        self.scrollTo(self.table.index(row, 1), QAbstractItemView.ScrollHint.EnsureVisible)

    def step(self, how):
        n = self.table.rowCount()
        if not n:
            return
        if how == "home":
            self.select(0)
        elif how == "end":
            self.select(n - 1)
        else:
            self.select(max(self.current(), 0) + how if self.current() >= 0 else 0)

    def keyPressEvent(self, event):
        how = NAV_KEYS.get(event.key())
        if how is not None and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            self.step(how)
            event.accept()
            return
        super().keyPressEvent(event)

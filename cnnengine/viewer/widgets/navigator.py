"""Layer navigator: every layer in execution order, grouped by block (a
collapsible tree built from the layer names, viewer.grouping), with op,
output shape, params, MACs and measured time; keyboard stepping in execution
order. Names are shortened from the front (the full name is the tooltip)."""
import numpy as np
from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QStandardItem, QStandardItemModel
from PyQt6.QtWidgets import QAbstractItemView, QHeaderView, QTreeView

from ..grouping import Group, group_rows, leaf_depth, short_name
from ..style import op_color

NAV_KEYS = {Qt.Key.Key_Up: -1, Qt.Key.Key_Left: -1, Qt.Key.Key_Down: 1, Qt.Key.Key_Right: 1,
            Qt.Key.Key_PageUp: -10, Qt.Key.Key_PageDown: 10,
            Qt.Key.Key_Home: "home", Qt.Key.Key_End: "end"}


COLUMN_WIDTHS = {"#": 30, "Op": 76, "Output": 88, "Params": 68, "MACs": 52, "Time": 70}
SHORT_OPS = {"BatchNormalization": "BatchNorm", "GlobalAveragePool": "GlobalAvgPool", "GlobalMaxPool": "GlobalMax",
             "LayerNormalization": "LayerNorm", "ConvTranspose": "ConvT", "AveragePool": "AvgPool"}
ROW_ROLE = Qt.ItemDataRole.UserRole + 1      # the layer's row in execution order (-1 on a block)
GREY = QColor("#7d8590")
RIGHT = Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter


def human(n):
    n = float(n)
    for unit in ("", "K", "M", "G", "T"):
        if abs(n) < 1000:
            return f"{n:.0f}{unit}" if unit == "" else f"{n:.3g}{unit}"
        n /= 1000
    return f"{n:.3g}P"


def shape_text(shape):
    return "×".join(str(d) for d in shape[1:]) if len(shape) > 1 else "×".join(str(d) for d in shape)


class LayerTable(QStandardItemModel):
    """The layers as a tree of blocks; `layers` stays the flat execution-order list."""
    COLUMNS = ("Layer", "#", "Op", "Output", "Params", "MACs", "Time")

    def __init__(self, parent=None):
        super().__init__(parent)
        self.layers = []
        self.times = {}
        self.spread, self.rate = {}, None
        self.total_macs = 0
        self.merges = set()
        self.items = []              # row -> the Layer-column item
        self.groups = []             # block items, in tree order
        self.setHorizontalHeaderLabels(self.COLUMNS)

    def layer_count(self):
        return len(self.layers)

    def set_layers(self, layers, merges=()):
        self.clear()
        self.setHorizontalHeaderLabels(self.COLUMNS)
        self.layers = list(layers)
        self.times = {}
        self.spread, self.rate = {}, None
        self.merges = set(merges)
        self.total_macs = sum(l.macs for l in self.layers) or 1
        self.items = [None] * len(self.layers)
        self.groups = []
        tree = group_rows([l.name for l in self.layers])
        self._depth = leaf_depth(tree)
        self._fill(self.invisibleRootItem(), tree)
        self.setHeaderData(self.COLUMNS.index("Time"), Qt.Orientation.Horizontal,
                           "Median time of the engine's step over 3 × 3 runs of Model.profile(); layers the "
                           "engine fused into the previous step show 'fused'.\n'~' marks a noisy time (the runs "
                           "disagree by more than half: a busy machine); hover for the range.\n"
                           "Before profiling finishes: share of the MACs.",
                           Qt.ItemDataRole.ToolTipRole)

    def _fill(self, parent, entries):
        for e in entries:
            if isinstance(e, Group):
                cells = self._group_cells(e)
                parent.appendRow(cells)
                self.groups.append(cells[0])
                self._fill(cells[0], e.children)
            else:
                cells = self._layer_cells(e)
                parent.appendRow(cells)
                self.items[e] = cells[0]

    @staticmethod
    def _cell(text="", tip=None, color=None, align=None, row=-1):
        it = QStandardItem(text)
        it.setEditable(False)
        it.setData(row, ROW_ROLE)
        if tip:
            it.setToolTip(tip)
        if color is not None:
            it.setForeground(QColor(color))
        if align is not None:
            it.setTextAlignment(align)
        return it

    def _layer_cells(self, row):
        l = self.layers[row]
        tip = self.tooltip(row)
        name = self._cell(short_name(l.name, depth=self._depth.get(row, 0), op=l.op), tip, row=row)
        if row in self.merges:
            f = QFont()
            f.setBold(True)
            name.setFont(f)
        return [name, self._cell(str(row), tip, GREY, RIGHT, row),
                self._cell(SHORT_OPS.get(l.op, l.op), tip, op_color(l.op), row=row),
                self._cell(shape_text(l.output_shape), tip, row=row),
                self._cell(human(l.params) if l.params else "", tip, align=RIGHT, row=row),
                self._cell(human(l.macs) if l.macs else "", tip, align=RIGHT, row=row),
                self._cell(self.time_text(l), tip, GREY, RIGHT, row)]

    def time_color(self, layer):
        t = self.times.get(layer.name)
        return QColor("#d29922") if self.noisy(layer) else QColor("#d6dae0") if isinstance(t, float) else GREY

    def _group_cells(self, g):
        rows = g.rows()
        ls = [self.layers[r] for r in rows]
        tip = f"{g.label}: layers {rows[0]}–{rows[-1]} ({len(rows)})"
        name = self._cell(g.label, tip, "#c9d1d9")
        f = QFont()
        f.setItalic(True)
        name.setFont(f)
        params, macs = sum(l.params for l in ls), sum(l.macs for l in ls)
        return [name, self._cell(f"{rows[0]}", tip, GREY, RIGHT), self._cell(f"{len(rows)} layers", tip, GREY),
                self._cell(shape_text(ls[-1].output_shape), tip, GREY),
                self._cell(human(params) if params else "", tip, GREY, RIGHT),
                self._cell(human(macs) if macs else "", tip, GREY, RIGHT), self._cell("", tip, GREY, RIGHT)]

    def tooltip(self, row):
        l = self.layers[row]
        rf = l.receptive_field
        ins = ", ".join("×".join(str(d) for d in s) for s in l.input_shapes)
        return (f"{row}: {l.name}  ({l.op})\ninputs: {ins}\noutput: {'×'.join(map(str, l.output_shape))}\n"
                f"params: {l.params:,}\nMACs: {l.macs:,}\n"
                f"receptive field: {rf['size'][0]}×{rf['size'][1]} px, jump {rf['jump'][0]}, "
                f"start {rf['start'][0]}" + ("\nmerges branches" if row in self.merges else "")
                + self.time_tip(l))

    def set_times(self, times, spread=None):
        """times: layer -> seconds (or the step it is fused into); spread: layer ->
        (lowest, highest, repeats) of the medians behind it, to mark noisy ones."""
        self.times = dict(times)
        self.spread = dict(spread or {})
        self.set_rate()
        col = self.COLUMNS.index("Time")
        for row, item in enumerate(self.items):
            l = self.layers[row]
            cell = self.itemFromIndex(item.index().siblingAtColumn(col))
            cell.setText(self.time_text(l))
            cell.setForeground(self.time_color(l))
            tip = self.tooltip(row)                      # the time's range joins every cell's tooltip
            for c in range(len(self.COLUMNS)):
                self.itemFromIndex(item.index().siblingAtColumn(c)).setToolTip(tip)
        for g in self.groups:
            ts = [self.times.get(self.layers[r].name) for r in self._rows_under(g)]
            secs = sum(t for t in ts if isinstance(t, float))
            self.itemFromIndex(g.index().siblingAtColumn(col)).setText(fmt_seconds(secs) if secs else "")

    def _rows_under(self, item):
        out = []
        for k in range(item.rowCount()):
            child = item.child(k)
            r = child.data(ROW_ROLE)
            out.extend([r] if r is not None and r >= 0 else self._rows_under(child))
        return out

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
        rate = self.rate
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


def fmt_seconds(t):
    if t < 1e-4:
        return f"{t * 1e6:.0f} µs"
    return f"{t * 1e3:.2f} ms" if t < 0.01 else f"{t * 1e3:.1f} ms" if t < 0.1 else f"{t * 1e3:.0f} ms"


class Navigator(QTreeView):
    """Emits layerSelected(row). Arrows, Page Up/Down, Home/End step through
    layers in execution order, opening the blocks they enter."""
    layerSelected = pyqtSignal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = LayerTable(self)
        self.setModel(self.table)
        self.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setAlternatingRowColors(True)
        self.setUniformRowHeights(True)
        self.setWordWrap(False)
        self.setIndentation(12)
        self.setTextElideMode(Qt.TextElideMode.ElideLeft)     # keep the tail: block number and role
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        h = self.header()
        h.setStretchLastSection(False)
        h.setHighlightSections(False)
        h.setMinimumSectionSize(24)
        self._set_up_columns()
        self.selectionModel().currentRowChanged.connect(self._current_changed)
        self._last = -1               # the last layer selected (a block row may be current now)

    def _current_changed(self, cur, _):
        row = cur.siblingAtColumn(0).data(ROW_ROLE) if cur.isValid() else None
        if row is not None and row >= 0:
            self._last = row
            self.layerSelected.emit(row)

    def set_layers(self, layers, merges=()):
        self._last = -1
        self.table.set_layers(layers, merges)
        self._set_up_columns()            # clear() forgets the header's widths and resize modes
        self._hide_columns()

    def _set_up_columns(self):
        """The names take the room the other columns leave; those keep fixed widths."""
        h = self.header()
        for i, col in enumerate(LayerTable.COLUMNS):
            if col == "Layer":
                h.setSectionResizeMode(i, QHeaderView.ResizeMode.Stretch)
            else:
                h.setSectionResizeMode(i, QHeaderView.ResizeMode.Interactive)
                h.resizeSection(i, COLUMN_WIDTHS[col])

    NAME_MIN = 110                                  # px the layer names keep in a narrow list
    HIDE_ORDER = ("MACs", "Params", "#", "Output", "Op", "Time")   # given up in this order (all in the tooltip)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._hide_columns()

    def _hide_columns(self):
        room = self.viewport().width() - self.NAME_MIN
        fixed = sum(COLUMN_WIDTHS[c] for c in LayerTable.COLUMNS if c != "Layer")
        for col in self.HIDE_ORDER:
            hide = fixed > room
            self.setColumnHidden(LayerTable.COLUMNS.index(col), hide)
            if hide:
                fixed -= COLUMN_WIDTHS[col]

    def current(self):
        idx = self.currentIndex()
        row = idx.siblingAtColumn(0).data(ROW_ROLE) if idx.isValid() else None
        return row if row is not None else -1

    def index_of(self, row):
        return self.table.items[row].index()

    def select(self, row):
        n = self.table.layer_count()
        if n == 0:
            return
        row = max(0, min(n - 1, row))
        idx = self.index_of(row)
        parent = idx.parent()
        while parent.isValid():
            self.expand(parent)
            parent = parent.parent()
        if row != self.current():
            self.setCurrentIndex(idx)
        self.scrollTo(idx, QAbstractItemView.ScrollHint.EnsureVisible)

    def step(self, how):
        n = self.table.layer_count()
        if not n:
            return
        if how == "home":
            self.select(0)
        elif how == "end":
            self.select(n - 1)
        else:
            base = self.current() if self.current() >= 0 else self._last
            self.select(base + how if base >= 0 else 0)

    def keyPressEvent(self, event):
        how = NAV_KEYS.get(event.key())
        if how is not None and not event.modifiers() & ~Qt.KeyboardModifier.KeypadModifier:
            self.step(how)
            event.accept()
            return
        super().keyPressEvent(event)

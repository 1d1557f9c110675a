"""Colours, colour maps and the dark theme shared by the panels."""
import numpy as np

OP_COLORS = {
    "conv": "#58a6ff", "pool": "#3fb950", "act": "#d29922", "merge": "#f778ba",
    "dense": "#a371f7", "norm": "#e5534b", "shape": "#8b949e", "other": "#8b949e",
}
_ACTS = ("Relu", "Clip", "Sigmoid", "HardSwish", "HardSigmoid", "Tanh", "LeakyRelu", "Elu", "PRelu",
         "Softmax", "Gelu", "Erf", "cnn.Silu")


def op_kind(op):
    if op in ("Conv", "ConvTranspose"):
        return "conv"
    if "Pool" in op:
        return "pool"
    if op in _ACTS:
        return "act"
    if op in ("Add", "Sum", "Concat", "Mul", "Sub", "Div"):
        return "merge"
    if op in ("Gemm", "MatMul"):
        return "dense"
    if "Norm" in op or op == "LRN":
        return "norm"
    if op in ("Reshape", "Flatten", "Transpose", "Squeeze", "Unsqueeze", "Slice", "Split", "Pad", "Resize"):
        return "shape"
    return "other"


def op_color(op):
    return OP_COLORS[op_kind(op)]


COLORMAPS = ["viridis", "inferno", "magma", "plasma", "cividis", "turbo", "gray", "coolwarm"]


def lut(name, n=256):
    """(n, 4) uint8 RGBA lookup table for one of COLORMAPS."""
    from . import atlas
    if name == "gray":
        return atlas.lut_from([(0, 0, 0), (255, 255, 255)], n)
    if name == "coolwarm":
        return atlas.lut_from([(59, 76, 192), (141, 176, 254), (221, 221, 221), (244, 154, 123),
                               (180, 4, 38)], n)
    import pyqtgraph as pg
    table = pg.colormap.get(name).getLookupTable(nPts=n, alpha=False)
    return np.concatenate([table, np.full((n, 1), 255, np.uint8)], axis=1)


def elastic(label):
    """Let a label's text be cut rather than widen its panel (long hover texts
    would otherwise push the splitter around)."""
    from PyQt6.QtWidgets import QSizePolicy
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    label.setMinimumWidth(10)
    return label


def labelled_line(items):
    """One settings line: (label text or None, widget) pairs, left-aligned
    (the tabs wrap their settings over such lines to fit 1,000 px)."""
    from PyQt6.QtWidgets import QHBoxLayout, QLabel
    line = QHBoxLayout()
    line.setContentsMargins(0, 0, 0, 0)
    for text, w in items:
        if text:
            line.addWidget(QLabel(text))
        line.addWidget(w)
    line.addStretch(1)
    return line


_previous_handler = [None]


def _message_filter(kind, context, message):
    if "propagateSizeHints" in message:
        return
    prev = _previous_handler[0]
    if prev is not None:
        prev(kind, context, message)
    else:
        import sys
        print(message, file=sys.stderr)


def install_message_filter():
    """Drop the offscreen platform's "does not support propagateSizeHints()"
    warning (printed on every window shown headless); other messages go on to
    the handler installed before (pytest-qt's, say) or to stderr."""
    from PyQt6.QtCore import qInstallMessageHandler

    prev = qInstallMessageHandler(_message_filter)
    if prev is not _message_filter:
        _previous_handler[0] = prev


def colormap(name):
    """A pyqtgraph ColorMap for colour bars."""
    import pyqtgraph as pg
    table = lut(name)
    return pg.ColorMap(np.linspace(0, 1, len(table)), table)


STYLESHEET = """
QWidget { background: #15171b; color: #d6dae0; font-size: 10pt; }
QMainWindow::separator { background: #2a2e35; width: 4px; height: 4px; }
QSplitter::handle { background: #22262c; }
QTableView, QTreeView { font-size: 9pt; background: #181a1f; alternate-background-color: #1c1f25; border: 1px solid #2a2e35;
             selection-background-color: #2f4a6e; selection-color: #ffffff; gridline-color: #2a2e35; }
QHeaderView::section { background: #1f2329; color: #9aa4b2; border: none; border-bottom: 1px solid #2a2e35;
                       padding: 3px 6px; font-weight: 600; }
QTabWidget::pane { border: 1px solid #2a2e35; top: -1px; }
QTabBar::tab { background: #1b1e23; color: #9aa4b2; padding: 4px 7px; border: 1px solid #2a2e35;
               border-bottom: none; margin-right: 2px; }
QTabBar::tab:selected { background: #15171b; color: #e6edf3; }
QComboBox, QPushButton, QToolButton { background: #22262c; border: 1px solid #343a42; border-radius: 4px;
                         padding: 3px 8px; min-height: 18px; }
QComboBox:hover, QPushButton:hover, QToolButton:hover { border-color: #58a6ff; }
QPushButton:pressed, QToolButton:pressed { background: #2f4a6e; }
QComboBox QAbstractItemView { background: #1f2329; selection-background-color: #2f4a6e; }
QToolBar { background: #1b1e23; border-bottom: 1px solid #2a2e35; spacing: 6px; padding: 3px; }
QStatusBar { background: #1b1e23; color: #9aa4b2; border-top: 1px solid #2a2e35; }
QStatusBar QLabel { background: transparent; }
QMenuBar { background: #1b1e23; }
QMenuBar::item:selected, QMenu::item:selected { background: #2f4a6e; }
QMenu { background: #1f2329; border: 1px solid #343a42; }
QLabel#panelTitle { color: #9aa4b2; font-weight: 600; font-size: 9pt; padding: 2px 2px; }
QLabel#info { color: #c9d1d9; font-family: "DejaVu Sans Mono", monospace; font-size: 9pt; }
QProgressBar { background: #22262c; border: 1px solid #343a42; border-radius: 3px; max-height: 10px; }
QProgressBar::chunk { background: #58a6ff; }
QScrollBar:horizontal, QScrollBar:vertical { background: #15171b; border: none; height: 10px; width: 10px; }
QScrollBar::handle { background: #343a42; border-radius: 4px; min-width: 20px; min-height: 20px; }
QScrollBar::add-line, QScrollBar::sub-line { width: 0; height: 0; }
"""

"""A dense layer after a Flatten, on only the inputs a patch changed (exact).

The Flatten of a (1, C, H, W) map makes column c*H*W + cell of the dense
layer's input; a patch changes only the cells of its window of that map.
So for each position

    y_occ = y_clean + alpha * (x_occ[cols] - x_clean[cols]) @ op(B)[cols, :]

with y_clean the clean image's output before any fused activation and cols
the changed cells' columns (every channel). The weights are kept once per
plan in cell-major order, (cells, N, C), so that a cell's columns are one
contiguous (N, C) block: each batch reads the blocks of the cells any of its
positions changed, once, and multiplies only the positions that changed
each cell. VGG-16's first dense layer (7x7x512 -> 4096, 411 MB) is memory-
bound: that is most of what incremental occlusion would otherwise stream.
"""
import dataclasses

import numpy as np

from .. import functional as F
from .. import ops

# the sparse product runs while the changed cells' weights are at most this
# share of the layer's; above it the batch runs whole (one stream of all the
# weights, with the kernel's full-row efficiency)
SPARSE_BELOW = 0.8
SMALL_MACS = 1 << 20     # per-cell products below this run on one thread


def flatten_map(plan, node):
    """(C, H, W) when step `node` flattens a (1, C, H, W) map to (1, C*H*W) in
    NCHW order (Flatten at axis 1, or a Reshape to that shape), else None."""
    if node.op not in ("Flatten", "Reshape") or not node.inputs or not node.inputs[0]:
        return None
    src, out = plan.shapes.get(node.inputs[0]), plan.shapes.get(node.outputs[0])
    if src is None or out is None or len(src) != 4 or src[0] != 1:
        return None
    if node.op == "Flatten" and ops.params_of(node).axis not in (1, -3):
        return None
    return tuple(src[1:]) if tuple(out) == (1, src[1] * src[2] * src[3]) else None


def sparse_dense(plan, node, changed):
    """Whether step `node` is a dense layer the sparse product can run: Gemm
    (op(A) = A) or MatMul of the changed 2-D value by plan weights, the only
    changed input being A. `changed`: the names of changed values."""
    if node.op not in ("Gemm", "MatMul") or len(node.outputs) != 1 or not node.inputs[0]:
        return False
    if any(name in changed for name in node.inputs[1:] if name):
        return False
    b = plan.static.get(node.inputs[1]) if len(node.inputs) > 1 else None
    if b is None or b.ndim != 2 or len(plan.shapes.get(node.inputs[0], ())) != 2:
        return False
    return node.op == "MatMul" or not ops.params_of(node).trans_a


class SparseDense:
    """One dense step's weights in cell-major order and the clean image's
    output before the activation; `run` makes the batch's outputs."""

    def __init__(self, plan, node, cmap):
        self.node, self.cmap = node, cmap
        c, h, w = cmap
        b = plan.static[node.inputs[1]].astype(np.float32, copy=False)
        p = ops.params_of(node) if node.op == "Gemm" else None
        trans_b = bool(p and p.trans_b)
        n = b.shape[0] if trans_b else b.shape[1]
        # (N, C, cells) or (C, cells, N) -> (cells, N, C): each cell's block contiguous
        blocks = b.reshape(n, c, h * w).transpose(2, 0, 1) if trans_b else b.reshape(c, h * w, n).transpose(1, 2, 0)
        self.blocks = np.ascontiguousarray(blocks)
        self.n, self.trans_b = n, trans_b
        self.alpha = 1.0 if p is None else float(p.alpha)
        self.act = None if p is None or not p.act else (p.act, p.act_alpha, p.act_beta)

    def clean_pre(self, plan, clean):
        """The clean image's output before the fused activation: (1, N)."""
        node = self.node
        if self.act is None:
            return clean[node.outputs[0]]
        p = dataclasses.replace(ops.params_of(node), act="", act_alpha=0.0, act_beta=0.0)
        c = plan.static.get(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
        return F.gemm(clean[node.inputs[0]], plan.static[node.inputs[1]], c, alpha=p.alpha,
                      beta=p.beta if c is not None else 0.0, trans_b=p.trans_b)

    def run(self, x_clean, y_clean, xs, cells, threads=None):
        """xs: (B, C*H*W) the positions' inputs; cells: per position the changed
        flat cells (h*W + w). Returns (B, N) outputs, activation applied."""
        c = self.cmap[0]
        count = xs.shape[0]
        xs = xs.reshape(count, c, -1)
        xc = x_clean.reshape(c, -1)
        y = np.repeat(y_clean.reshape(1, self.n).astype(np.float32), count, axis=0)
        members = {}
        for j, s in enumerate(cells):
            for cell in s:
                members.setdefault(cell, []).append(j)
        for cell in sorted(members):
            rows = members[cell]
            dx = xs[rows, :, cell] - xc[:, cell]
            if self.alpha != 1.0:
                dx *= np.float32(self.alpha)
            # a small product costs less than a thread team's fork and join
            t = 1 if len(rows) * c * self.n < SMALL_MACS else threads
            y[rows] += F.linear(np.ascontiguousarray(dx, dtype=np.float32), self.blocks[cell], threads=t)
        if self.act is not None:
            y = F.activation(y, self.act[0], self.act[1], self.act[2], threads=threads)
        return y


def union_share(cells_per_position, cmap):
    """The share of the whole layer's weights a batch reads: its changed cells' union."""
    cells = set()
    for s in cells_per_position:
        cells.update(s)
    return len(cells) / (cmap[1] * cmap[2])


def box_cells(box, cmap):
    """The flat cells (h*W + w) of a Box of a (C, H, W) map; box None: all."""
    _, h, w = cmap
    if box is None:
        return range(h * w)
    return [y * w + x for y in range(box.y0, box.y1) for x in range(box.x0, box.x1)]

"""Dense layers on only the inputs a patch changed (exact).

The Flatten of a (1, C, H, W) map makes column c*H*W + cell of the dense
layer's input; a patch changes only the cells of its window of that map.
So for each position

    y_occ = y_clean + alpha * (x_occ[cols] - x_clean[cols]) @ op(B)[cols, :]

with y_clean the clean image's output before any fused activation and cols
the changed cells' columns (every channel). A column outside a position's
changed window holds the clean value, so its difference is exactly zero,
as is every column where both images are zero (after a ReLU and max pool):
a batch multiplies only the columns some position changed, one kernel call
reading their weight rows in place (op(B) as (K, N), kept with the plan;
csrc/ops/rows_gemm.c).
VGG-16's first dense layer (7x7x512 -> 4096, 411 MB of weights) is what
incremental occlusion would otherwise stream whole for every batch. Any
Gemm or MatMul of a changed 2-D value by weights takes this route (the
later dense layers: where both images' ReLU outputs are zero); the MAC
bound counts it after a Flatten only (incremental.mac_bound).
"""
import dataclasses
import threading

import numpy as np

from .. import _kernels as K
from .. import functional as F
from .. import ops
from ..functional._common import resolve_threads

# the sparse product runs while the batch changed at most this share of the
# input columns; above it the batch runs whole (one stream of all the weights)
SPARSE_BELOW = 0.9


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
    (op(A) = A) or MatMul of a changed 2-D value A by plan weights, the only
    changed input being A. `changed`: the names of changed values."""
    if node.op not in ("Gemm", "MatMul") or len(node.outputs) != 1 or node.inputs[0] not in changed:
        return False
    if any(name in changed for name in node.inputs[1:] if name):
        return False
    b = plan.static.get(node.inputs[1]) if len(node.inputs) > 1 else None
    if b is None or b.ndim != 2 or len(plan.shapes.get(node.inputs[0], ())) != 2:
        return False
    return node.op == "MatMul" or not ops.params_of(node).trans_a


class SparseDense:
    """One dense step's weights as (K, N) rows and the clean image's output
    before the activation; `run` makes a batch's outputs from the columns
    its positions changed."""

    def __init__(self, plan, node):
        self.plan, self.node = plan, node
        b = plan.static[node.inputs[1]]
        p = ops.params_of(node) if node.op == "Gemm" else None
        self.trans_b = bool(p and p.trans_b)
        self.n = b.shape[0] if self.trans_b else b.shape[1]
        self.alpha = 1.0 if p is None else float(p.alpha)
        self.act = None if p is None or not p.act else (p.act, p.act_alpha, p.act_beta)
        self._rows = None
        self._lock = threading.Lock()     # batches run concurrently: one copy, made once

    def rows(self):
        """op(B) as (K, N), row k the weights of input column k (a transposed
        copy for transB, made on first use and kept with the plan)."""
        with self._lock:
            if self._rows is None:
                b = np.ascontiguousarray(self.plan.static[self.node.inputs[1]], dtype=np.float32)
                if self.trans_b:
                    rows = _aligned(b.shape[::-1])     # 64-byte rows: the kernel's loads never split lines
                    K.transpose(b, rows, resolve_threads(None))
                    b = rows
                self._rows = b
        return self._rows

    def clean_pre(self, clean):
        """The clean image's output before the fused activation: (1, N)."""
        node, plan = self.node, self.plan
        if self.act is None:
            return clean[node.outputs[0]]
        p = dataclasses.replace(ops.params_of(node), act="", act_alpha=0.0, act_beta=0.0)
        c = plan.static.get(node.inputs[2]) if len(node.inputs) > 2 and node.inputs[2] else None
        if p.trans_b and p.alpha == 1.0 and (c is None or (p.beta == 1.0 and c.size == self.n)):
            # x w^T + b streams the weights once (the GEMM would pack them all first)
            return F.linear(clean[node.inputs[0]], plan.static[node.inputs[1]], None if c is None else c.reshape(-1))
        return F.gemm(clean[node.inputs[0]], plan.static[node.inputs[1]], c, alpha=p.alpha,
                      beta=p.beta if c is not None else 0.0, trans_b=p.trans_b)

    def changed_columns(self, x_clean, xs):
        """(the columns any position changed, the batch's differences there)."""
        d = xs - x_clean.reshape(1, -1)
        cols = np.flatnonzero(d.any(axis=0))
        return cols, d

    def run(self, y_clean, cols, d, threads=None):
        """y_clean (1, N) plus alpha * d[:, cols] @ op(B)[cols], the weight rows
        read in place by one kernel call; the activation applied."""
        w = self.rows()
        count = d.shape[0]
        y = np.repeat(np.asarray(y_clean, np.float32).reshape(1, self.n), count, axis=0)
        K.rows_gemm(np.take(d, cols, axis=1), np.asarray(cols, np.int64), w, y, self.alpha, resolve_threads(threads))
        if self.act is not None:
            y = F.activation(y, self.act[0], self.act[1], self.act[2], threads=threads)
        return y


def _aligned(shape):
    """An empty float32 array of `shape` starting on a 64-byte line."""
    count = int(np.prod(shape))
    raw = np.empty(count + 16, np.float32)
    off = (-raw.ctypes.data % 64) // 4
    return raw[off:off + count].reshape(shape)


def box_cells(box, cmap):
    """The flat cells (h*W + w) of a Box of a (C, H, W) map; box None: all
    (mac_bound counts the dense layer over these cells' columns)."""
    _, h, w = cmap
    if box is None:
        return range(h * w)
    return [y * w + x for y in range(box.y0, box.y1) for x in range(box.x0, box.x1)]

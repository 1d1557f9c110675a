"""Class scores from a model's output row."""
import numpy as np


def probabilities(logits):
    """Softmax of a logits row (a row that already is a distribution is kept)."""
    v = logits.astype(np.float64).reshape(-1)
    if v.min() >= 0 and abs(v.sum() - 1.0) < 1e-3:
        return v
    e = np.exp(v - v.max())
    return e / e.sum()

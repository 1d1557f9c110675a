"""Layer names as a tree of blocks, and names shortened from the front.

Exported names carry the module path: "/layer1/layer1.0/conv1/Conv" (torch's
ONNX exporter), "_blocks.3._expand_conv" (dotted module names). Layers that
run one after another under the same prefix form a block; blocks nest two
levels deep, and deeper only where a block is long (a dense block's 144
layers split into its dense layers). The display name keeps the tail of the
name — block number and the layer's role — never its middle."""
from dataclasses import dataclass, field

SPLIT_DEPTH = 2      # always group by the first two levels of the name
SPLIT_ABOVE = 16     # a block longer than this is split by the next level too


def components(name):
    """'/layer1/layer1.0/conv1/Conv' -> ['layer1', 'layer1.0', 'conv1', 'Conv'];
    '_blocks.3._expand_conv' -> ['_blocks', '_blocks.3', '_expand_conv'] (an index joins its parent)."""
    if "/" in name:
        comps = [c for c in name.split("/") if c]
        return comps or [name]
    if "." in name:
        comps = []
        for tok in name.split("."):
            # an index names its parent's child: '_blocks', '3' -> '_blocks', '_blocks.3'
            comps.append(f"{comps[-1]}.{tok}" if comps and tok.isdigit() else tok)
        return comps
    return [name]


def _is_op_part(part, op):
    base = part.rsplit("_", 1)[0] if part.rsplit("_", 1)[-1].isdigit() else part
    return bool(op) and base.lower() == op.lower()


def short_name(name, limit=None, depth=0, op=None):
    """The name below `depth` levels, with levels that only repeat the next
    one's prefix dropped ('conv/conv.0/conv.0.0' -> 'conv.0.0') and the op's
    own name dropped when something else is left; cut from the front to `limit`."""
    comps = components(name)[depth:] or [name]
    kept = [c for c, nxt in zip(comps, comps[1:] + [None]) if not (nxt and nxt.startswith(c) and nxt != c)]
    if len(kept) > 1 and _is_op_part(kept[-1], op):
        kept = kept[:-1]
    text = "/".join(kept) if "/" in name else ".".join(kept)
    if limit and len(text) > limit:
        text = "…" + text[-(limit - 1):]
    return text


@dataclass
class Group:
    label: str
    depth: int                       # name levels consumed by this group and its parents
    children: list = field(default_factory=list)   # Group or int (a layer row)

    def rows(self):
        out = []
        for c in self.children:
            out.extend(c.rows() if isinstance(c, Group) else [c])
        return out


def group_rows(names):
    """The rows 0..n-1 of `names` (execution order) as a list of Group / row
    entries; a group is a run of consecutive layers sharing a name prefix, so
    the tree read top to bottom is the execution order."""
    comps = [components(n) for n in names]
    return _build(list(range(len(names))), comps, 0)


def _key(c, depth):
    return c[depth] if depth < len(c) - 1 else None


def _build(rows, comps, depth):
    out, i = [], 0
    while i < len(rows):
        key = _key(comps[rows[i]], depth)
        j = i + 1
        while j < len(rows) and key is not None and _key(comps[rows[j]], depth) == key:
            j += 1
        run = rows[i:j]
        if key is None or len(run) == 1:
            out.extend(run)
        else:
            deeper = depth + 1 < SPLIT_DEPTH or len(run) > SPLIT_ABOVE
            children = _build(run, comps, depth + 1) if deeper else run
            out.append(Group(key, depth + 1, children))
        i = j
    return out


def leaf_depth(tree):
    """row -> the name levels its group consumed (for its short name)."""
    out = {}

    def walk(entries, depth):
        for e in entries:
            if isinstance(e, Group):
                walk(e.children, e.depth)
            else:
                out[e] = depth
    walk(tree, 0)
    return out

"""Layered (Sugiyama) layout of a DAG, in pure Python, for the app's graph view.

1. layers by longest path from the sources, so every edge points downward;
2. an edge spanning k > 1 layers gets k - 1 dummy nodes, one per layer crossed;
3. the order within each layer: alternating down/up barycentric sweeps (each
   node moves to the mean position of its neighbours in the layer just swept),
   keeping the order with the fewest crossings seen;
4. x coordinates: nodes on one path are paired vertically (Brandes-Koepf's
   alignment step, see _align); alternating
   sweeps pull every node to its partner's x, or its neighbours' mean x, and
   the nearest order-preserving placement with the minimum gaps is a weighted
   isotonic regression (pool adjacent violators), so nodes never overlap and
   chains, main paths and long edges come out straight;
5. every edge is a polyline from the bottom of its source through its dummies
   to the top of its target.

Used once per model, in the app's worker thread; DenseNet-121 (372 layers,
907 edges, 23,000 dummies) takes a few seconds on a loaded 2-core machine.
"""
import bisect
from dataclasses import dataclass, field


BIG = 5000        # nodes and dummies: above this, fewer ordering sweeps


@dataclass
class Layout:
    pos: dict                  # node -> (x centre, y centre)
    size: dict                 # node -> (w, h)
    layer: dict                # node -> layer index (0 = top)
    order: list                # per layer: its nodes and dummies, left to right
    paths: dict                # (u, v) -> [(x, y), ...] from u's bottom to v's top
    width: float = 0.0
    height: float = 0.0
    reversed_edges: list = field(default_factory=list)   # edges turned around to break cycles
    down: dict = field(default_factory=dict, repr=False)  # node or dummy -> the ones below it

    def crossings(self):
        return total_crossings(self.order, self.down)


def layout(nodes, edges, sizes=None, layer_gap=44.0, node_gap=18.0, dummy_width=6.0, sweeps=12):
    """Lay out `nodes` (any hashable ids, in a preferred order, e.g. execution
    order) joined by `edges` [(u, v)]; `sizes` maps a node to (w, h)."""
    nodes = list(dict.fromkeys(nodes))
    known = set(nodes)
    sizes = {n: tuple((sizes or {}).get(n, (40.0, 20.0))) for n in nodes}
    edges = [(u, v) for u, v in dict.fromkeys(edges) if u in known and v in known and u != v]
    edges, flipped = _acyclic(nodes, edges)
    rank = _longest_path(nodes, edges)

    # dummy chains
    up, down = {n: [] for n in nodes}, {n: [] for n in nodes}
    chain = {}
    for i, (u, v) in enumerate(edges):
        prev = u
        chain[(u, v)] = []
        for r in range(rank[u] + 1, rank[v]):
            d = ("~dummy", i, r)
            rank[d] = r
            up[d], down[d] = [], []
            chain[(u, v)].append(d)
            down[prev].append(d)
            up[d].append(prev)
            prev = d
        down[prev].append(v)
        up[v].append(prev)
    depth = max(rank.values(), default=-1) + 1
    order = [[] for _ in range(depth)]
    for n in _initial_order(nodes, down):
        order[rank[n]].append(n)
    for n in sorted((d for d in rank if d not in known), key=lambda d: (d[1], d[2])):
        order[rank[n]].append(n)
    if len(rank) > BIG:                  # sweeps 5-12 win under 1% of the crossings on DenseNet-121
        sweeps = min(sweeps, 4)
    order = _reduce_crossings(order, up, down, sweeps)

    wide = {n: (sizes[n][0] if n in known else dummy_width) for n in rank}
    xs = _place_x(order, up, down, wide, node_gap, known)
    # y: each layer as tall as its tallest node
    ys, y = [], 0.0
    for row in order:
        h = max((sizes[n][1] for n in row if n in known), default=0.0)
        ys.append(y + h / 2)
        y += h + layer_gap
    height = max(0.0, y - layer_gap)
    left = min((xs[n] - wide[n] / 2 for n in xs), default=0.0)
    pos = {n: (xs[n] - left, ys[rank[n]]) for n in rank}
    width = max((pos[n][0] + wide[n] / 2 for n in pos), default=0.0)

    paths = {}
    for (u, v), dummies in chain.items():
        (xu, yu), (xv, yv) = pos[u], pos[v]
        pts = [(xu, yu + sizes[u][1] / 2)] + [pos[d] for d in dummies] + [(xv, yv - sizes[v][1] / 2)]
        if (u, v) in flipped:
            paths[(v, u)] = pts[::-1]
        else:
            paths[(u, v)] = pts
    return Layout({n: pos[n] for n in nodes}, sizes, {n: rank[n] for n in nodes}, order, paths, width, height,
                  sorted(((v, u) for u, v in flipped), key=str), down)


# ------------------------------------------------------------------ layering
def _acyclic(nodes, edges):
    """Turn around the edges that close a cycle (a DFS's back edges), so the rest is a DAG."""
    succ = {n: [] for n in nodes}
    for u, v in edges:
        succ[u].append(v)
    state, back = {}, set()
    for root in nodes:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            n, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[n] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                back.add((n, nxt))
            elif nxt not in state:
                state[nxt] = 1
                stack.append((nxt, iter(succ[nxt])))
    if not back:
        return edges, set()
    fixed = list(dict.fromkeys((v, u) if (u, v) in back else (u, v) for u, v in edges))
    return fixed, {(v, u) for u, v in back}


def _longest_path(nodes, edges):
    """Layer = length of the longest path from any source (Kahn's order)."""
    preds = {n: [] for n in nodes}
    indeg = {n: 0 for n in nodes}
    succ = {n: [] for n in nodes}
    for u, v in edges:
        preds[v].append(u)
        succ[u].append(v)
        indeg[v] += 1
    ready = [n for n in nodes if indeg[n] == 0]
    rank = {}
    i = 0
    while i < len(ready):
        n = ready[i]
        i += 1
        rank[n] = max((rank[p] + 1 for p in preds[n]), default=0)
        for s in succ[n]:
            indeg[s] -= 1
            if indeg[s] == 0:
                ready.append(s)
    return rank


def _initial_order(nodes, down):
    """Depth-first from the sources in the given order, so a branch's nodes start next to each other."""
    seen, out = set(), []
    for root in nodes:
        stack = [root]
        while stack:
            n = stack.pop()
            if n in seen:
                continue
            seen.add(n)
            if not isinstance(n, tuple) or n[:1] != ("~dummy",):
                out.append(n)
            stack.extend(reversed(down[n]))
    return out


# ------------------------------------------------------------------ ordering
def _reduce_crossings(order, up, down, sweeps):
    best = [list(r) for r in order]
    best_count = total_crossings(best, down)
    cur = [list(r) for r in order]
    for it in range(sweeps):
        if best_count == 0:
            break
        if it % 2 == 0:
            for i in range(1, len(cur)):
                cur[i] = _barycentre_sort(cur[i], cur[i - 1], up)
        else:
            for i in range(len(cur) - 2, -1, -1):
                cur[i] = _barycentre_sort(cur[i], cur[i + 1], down)
        count = total_crossings(cur, down)
        if count < best_count:
            best, best_count = [list(r) for r in cur], count
    return best


def _barycentre_sort(row, fixed, neighbours):
    where = {n: i for i, n in enumerate(fixed)}
    keys = []
    for i, n in enumerate(row):
        ps = [where[p] for p in neighbours[n] if p in where]
        # a node without neighbours there keeps its place
        keys.append((sum(ps) / len(ps) if ps else float(i) * len(fixed) / max(len(row), 1), i))
    return [row[i] for _, i in sorted((k, i) for i, k in enumerate(keys))]


def crossings_between(upper, lower, down):
    """Edge crossings between two adjacent layers: inversions of the lower
    ends once the edges are sorted by their upper ends (merge sort count)."""
    where = {n: i for i, n in enumerate(lower)}
    seq = []
    for u in upper:
        seq.extend(sorted(where[w] for w in down.get(u, ()) if w in where))
    return _inversions(seq)


def total_crossings(order, down):
    return sum(crossings_between(order[i], order[i + 1], down) for i in range(len(order) - 1))


def _inversions(seq):
    if len(seq) < 2:
        return 0
    # Fenwick tree over values
    n = max(seq) + 1
    tree = [0] * (n + 1)
    inv = 0
    for k, v in enumerate(seq):
        i, le = v + 1, 0
        while i > 0:
            le += tree[i]
            i -= i & -i
        inv += k - le          # earlier entries greater than v
        i = v + 1
        while i <= n:
            tree[i] += 1
            i += i & -i
    return inv


# ---------------------------------------------------------------- x placement
def _place_x(order, up, down, wide, gap, real, passes=8):
    xs = {}
    for row in order:
        x = 0.0
        for k, n in enumerate(row):
            if k:
                x += _sep(row[k - 1], n, wide, gap, real)
            xs[n] = x
        mid = x / 2
        for n in row:
            xs[n] -= mid
    above, below = _align(order, up, down, real)
    for p in range(passes):
        down_sweep = p % 2 == 0
        rng = range(1, len(order)) if down_sweep else range(len(order) - 2, -1, -1)
        for i in rng:
            _settle(order[i], xs, up if down_sweep else down, above if down_sweep else below, wide, gap, real)
    return xs


def _align(order, up, down, real):
    """Vertical partners: a node is paired with its upper neighbour when that is
    the only real node above it and it the only real node below that one (or,
    for dummies, with their one neighbour), pairs never crossing and each upper
    node used once (Brandes and Koepf's alignment step). Pairs on real paths
    are made first, so a residual block's main path or a dense block's spine
    stays straight and long edges bend around it; forks and merges of real
    branches are left free, to centre over and under their branches."""
    above, below = {}, {}
    for i in range(1, len(order)):
        where = {n: k for k, n in enumerate(order[i - 1])}
        first, second = [], []
        for k, n in enumerate(order[i]):
            ns = sorted((p for p in up[n] if p in where), key=where.get)
            reals = [p for p in ns if p in real]
            if len(reals) > 1 or not ns:
                continue
            u = (reals or ns)[(len(reals or ns) - 1) // 2]
            if n in real and sum(1 for m in down[u] if m in real) > 1:
                continue
            (first if n in real and u in real else second).append((k, where[u], n, u))
        lower, upper = [], []             # accepted pairs, sorted (they never cross)
        for k, pu, n, u in first + second:
            j = bisect.bisect_left(lower, k)
            if u in below or (j > 0 and upper[j - 1] >= pu) or (j < len(upper) and upper[j] <= pu):
                continue
            lower.insert(j, k)
            upper.insert(j, pu)
            above[n], below[u] = u, n
    return above, below


def _sep(a, b, wide, gap, real):
    g = gap if (a in real or b in real) else gap / 3
    return (wide[a] + wide[b]) / 2 + g


def _settle(row, xs, nbr, partner, wide, gap, real):
    """Move a layer's nodes as close as the gaps allow to their partner's x
    (or their neighbours' mean x), keeping the order."""
    if not row:
        return
    want, weight = [], []
    for n in row:
        if n in partner:             # heavy: a path bends only where the gaps force it; long edges first
            want.append(xs[partner[n]])
            weight.append(1000.0 if n in real else 30.0)
        elif nbr[n]:
            want.append(sum(xs[m] for m in nbr[n]) / len(nbr[n]))
            weight.append(1.0)
        else:
            want.append(xs[n])
            weight.append(0.25)
    offs = [0.0]
    for k in range(1, len(row)):
        offs.append(offs[-1] + _sep(row[k - 1], row[k], wide, gap, real))
    fit = _isotonic([w - o for w, o in zip(want, offs)], weight)
    for n, y, o in zip(row, fit, offs):
        xs[n] = y + o


def _isotonic(values, weights):
    """Non-decreasing least-squares fit (pool adjacent violators)."""
    blocks = []                      # [mean, weight, count]
    for v, w in zip(values, weights):
        blocks.append([v, w, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    out = []
    for m, _, c in blocks:
        out.extend([m] * c)
    return out

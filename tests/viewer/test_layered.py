"""The graph view's layered layout (pure Python): layering, crossings, placement, edge paths."""
import itertools

import pytest

from cnnengine.viewer import layered

SIZE = (60.0, 24.0)


def lay(nodes, edges, **kw):
    return layered.layout(nodes, edges, {n: SIZE for n in nodes}, **kw)


def check_geometry(L, edges):
    """Every edge runs downward through its polyline; no two boxes overlap."""
    for u, v in edges:
        pts = L.paths[(u, v)]
        assert pts[0][1] == pytest.approx(L.pos[u][1] + L.size[u][1] / 2)
        assert pts[-1][1] == pytest.approx(L.pos[v][1] - L.size[v][1] / 2)
        assert all(b[1] > a[1] for a, b in zip(pts, pts[1:])), (u, v, pts)
        assert L.layer[v] > L.layer[u]
    for a, b in itertools.combinations(L.pos, 2):
        (xa, ya), (xb, yb) = L.pos[a], L.pos[b]
        (wa, ha), (wb, hb) = L.size[a], L.size[b]
        assert abs(xa - xb) >= (wa + wb) / 2 - 1e-6 or abs(ya - yb) >= (ha + hb) / 2 - 1e-6, (a, b)
    assert all(0 <= x - L.size[n][0] / 2 + 1e-6 and x + L.size[n][0] / 2 <= L.width + 1e-6
               for n, (x, _) in L.pos.items())


def test_diamond_side_by_side_no_crossings():
    edges = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    L = lay("abcd", edges)
    assert [L.layer[n] for n in "abcd"] == [0, 1, 1, 2]
    assert L.crossings() == 0
    check_geometry(L, edges)
    # branches side by side on one row, the fork and the merge centred between them
    assert L.pos["b"][1] == L.pos["c"][1]
    assert abs(L.pos["b"][0] - L.pos["c"][0]) >= SIZE[0]
    mid = (L.pos["b"][0] + L.pos["c"][0]) / 2
    assert L.pos["a"][0] == pytest.approx(mid, abs=1) and L.pos["d"][0] == pytest.approx(mid, abs=1)


def test_chain_is_one_straight_column():
    nodes = list(range(6))
    edges = list(zip(nodes, nodes[1:]))
    L = lay(nodes, edges)
    assert [L.layer[n] for n in nodes] == nodes
    assert len({round(L.pos[n][0], 6) for n in nodes}) == 1
    check_geometry(L, edges)


def test_residual_long_edge_goes_through_dummies_beside_the_chain():
    # x -> conv1 -> relu -> conv2 -> add ; x -> add (identity shortcut)
    nodes = ["x", "conv1", "relu", "conv2", "add"]
    edges = [("x", "conv1"), ("conv1", "relu"), ("relu", "conv2"), ("conv2", "add"), ("x", "add")]
    L = lay(nodes, edges)
    assert L.layer["add"] == 4
    skip = L.paths[("x", "add")]
    assert len(skip) == 2 + 3          # one bend point per layer crossed
    chain_x = L.pos["relu"][0]
    assert all(abs(x - chain_x) >= SIZE[0] / 2 for x, _ in skip[1:-1])   # beside the chain, not through it
    assert L.crossings() == 0
    check_geometry(L, edges)
    # the main path is one straight column (to a fraction of a pixel)
    xs = [L.pos[n][0] for n in nodes]
    assert max(xs) - min(xs) < 0.5


def test_barycentre_sweeps_untangle_a_bad_order():
    # three layers listed so that every pair of edges between them crosses
    order = [["u0", "u1", "u2"], ["m2", "m1", "m0"], ["l0", "l1", "l2"]]
    down = {"u0": ["m0"], "u1": ["m1"], "u2": ["m2"], "m0": ["l0"], "m1": ["l1"], "m2": ["l2"]}
    up = {"m0": ["u0"], "m1": ["u1"], "m2": ["u2"], "l0": ["m0"], "l1": ["m1"], "l2": ["m2"],
          "u0": [], "u1": [], "u2": []}
    assert layered.total_crossings(order, down) == 6
    best = layered._reduce_crossings(order, up, down, sweeps=4)
    assert layered.total_crossings(best, down) == 0
    assert sorted(map(sorted, best)) == sorted(map(sorted, order))   # same nodes per layer


def test_two_crossing_links_cross_once():
    nodes = ["s", "a1", "b1", "b2", "a2", "a3", "b3", "t"]
    edges = [("s", "a1"), ("s", "b1"), ("a1", "a2"), ("b1", "b2"), ("a2", "a3"), ("b2", "b3"),
             ("a3", "t"), ("b3", "t"), ("a1", "b2"), ("b1", "a2")]
    L = lay(nodes, edges)
    assert L.crossings() == 1        # a1->b2 and b1->a2 must cross each other, nothing else
    check_geometry(L, edges)


def test_crossing_count_is_the_number_of_pairwise_crossings():
    upper, lower = ["u0", "u1", "u2"], ["l0", "l1", "l2"]
    down = {"u0": ["l2"], "u1": ["l0", "l1"], "u2": ["l0"]}
    # u0-l2 crosses all three others; u1-l1 crosses u2-l0; u1-l0 and u2-l0 share an end
    assert layered.crossings_between(upper, lower, down) == 4
    edges = [(u, l) for u, ls in down.items() for l in ls]
    brute = sum(1 for (a, b), (c, d) in itertools.combinations(edges, 2)
                if (upper.index(a) - upper.index(c)) * (lower.index(b) - lower.index(d)) < 0)
    assert brute == 4


def test_inception_like_fan_out_fan_in():
    branches = [["b1"], ["b2a", "b2b"], ["b3a", "b3b", "b3c"], ["pool", "b4"]]
    nodes, edges = ["in"], []
    for br in branches:
        nodes += br
        edges += [("in", br[0])] + list(zip(br, br[1:])) + [(br[-1], "cat")]
    nodes += ["cat", "out"]
    edges.append(("cat", "out"))
    L = lay(nodes, edges)
    assert L.layer["cat"] == 4 and L.crossings() == 0
    firsts = sorted(L.pos[br[0]][0] for br in branches)
    assert len({L.pos[br[0]][1] for br in branches}) == 1 and all(
        b - a >= SIZE[0] for a, b in zip(firsts, firsts[1:]))
    check_geometry(L, edges)


def test_cycle_is_broken_not_looped_forever():
    edges = [("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")]
    L = lay("abcd", edges)
    assert L.reversed_edges == [("c", "a")]
    for u, v in edges:
        pts = L.paths[(u, v)]
        # the turned-around edge runs upward from c to a; every other one downward
        ys = [p[1] for p in pts]
        assert ys == sorted(ys, reverse=(u, v) == ("c", "a"))


def test_unknown_and_self_edges_are_ignored_and_sizes_respected():
    L = layered.layout(["a", "b"], [("a", "a"), ("a", "b"), ("a", "zz")], {"a": (200, 50), "b": (20, 10)})
    assert set(L.paths) == {("a", "b")}
    assert L.size["a"] == (200, 50) and L.width == pytest.approx(200)
    assert L.pos["b"][1] - L.pos["a"][1] == pytest.approx(25 + 44 + 5)


def test_random_dags_keep_every_invariant():
    import random
    rnd = random.Random(3)
    for trial in range(20):
        n = rnd.randint(2, 30)
        nodes = list(range(n))
        edges = sorted({(a, b) for a in nodes for b in nodes if a < b and rnd.random() < 0.12})
        L = lay(nodes, edges)
        check_geometry(L, edges)
        for u, v in edges:
            assert L.layer[v] >= L.layer[u] + 1
        # longest path: a node with predecessors sits right below the lowest of them
        for v in nodes:
            ps = [u for u, w in edges if w == v]
            assert L.layer[v] == (max(L.layer[u] for u in ps) + 1 if ps else 0)

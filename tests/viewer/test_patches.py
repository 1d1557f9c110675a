"""Top activating patches (viewer/patches.py) against brute-force NumPy: the
streaming top-k per channel, the receptive field of one unit by the ops'
region rules against which input pixels really change it, the on-disk cache
and its key."""
import os

import numpy as np
import pytest

import cnnengine as ce
from cnnengine.errors import InputError
from cnnengine.viewer import atlas, patches, session

from .conftest import make_image


def brute_top(acts, k):
    """acts (N, C, H, W) -> per channel [(value, image, y, x)] by (-value, image), k of them."""
    n, c, h, w = acts.shape
    out = []
    for ch in range(c):
        rows = []
        for i in range(n):
            m = np.where(np.isnan(acts[i, ch]), -np.inf, acts[i, ch])
            p = int(np.argmax(m))
            rows.append((float(m.reshape(-1)[p]), i, p // w, p % w))
        rows.sort(key=lambda r: (-r[0], r[1]))
        out.append(rows[:k])
    return out


@pytest.mark.parametrize("n,k", [(23, 9), (4, 9), (9, 3)])
def test_topk_matches_brute_force(n, k):
    rng = np.random.default_rng(n)
    acts = rng.integers(-3, 4, size=(n, 7, 5, 6)).astype(np.float32)   # small integers: many ties
    acts[2, 1] = np.nan
    acts[3, 2, 1, 1] = np.nan
    t = patches.TopK(7, k)
    for i in range(n):
        t.update(i, acts[i])
    ref = brute_top(acts, k)
    for ch in range(7):
        assert t.entries(ch) == ref[ch], ch


def test_topk_of_all_equal_maps_keeps_the_first_images():
    t = patches.TopK(2, 3)
    for i in range(5):
        t.update(i, np.zeros((2, 2, 2), np.float32))
    assert t.entries(0) == [(0.0, 0, 0, 0), (0.0, 1, 0, 0), (0.0, 2, 0, 0)]


def rf_model(path, dil):
    """No activations (every input pixel in the field changes the unit):
    conv 3x3 s2 p1 -> maxpool 3x3 s2 p1 -> conv 3x3 dilation dil -> add <- 1x1 conv of the pool."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.standard_normal(s).astype(np.float32), n) for n, s in
             (("w1", (4, 3, 3, 3)), ("w2", (4, 4, 3, 3)), ("w3", (4, 4, 1, 1)))]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["a"], name="c1", kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1]),
             helper.make_node("MaxPool", ["a"], ["p"], name="pool", kernel_shape=[3, 3], strides=[2, 2],
                              pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["p", "w2"], ["b"], name="c2", kernel_shape=[3, 3], dilations=[dil, dil],
                              pads=[dil] * 4),
             helper.make_node("Conv", ["p", "w3"], ["s"], name="c3", kernel_shape=[1, 1]),
             helper.make_node("Add", ["b", "s"], ["y"], name="add")]
    graph = helper.make_graph(nodes, "rf", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 27, 29])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    onnx.save(m, str(path))
    return str(path)


@pytest.mark.parametrize("dil", [1, 2])
def test_receptive_field_matches_the_pixels_that_change_the_unit(tmp_path, dil):
    """The box is the bounding box of the pixels that change the unit; with a
    dilated conv a box rule also spans the gaps between the taps that sit
    in the padding, so there it may only be larger."""
    model = ce.load(rf_model(tmp_path / "rf.onnx", dil))
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 3, 27, 29)).astype(np.float32)
    _, acts = model.run(x, capture=True)
    rf = patches.ReceptiveField(model.graph, x.shape)
    layers = ["c1", "pool", "add"]
    changed = {}
    for sign in (1, -1):          # a max pool may ignore a pixel pushed one way only
        batch = np.repeat(x, 27 * 29, axis=0)
        ii, jj = np.divmod(np.arange(27 * 29), 29)
        batch[np.arange(27 * 29), :, ii, jj] += sign * 1000
        _, a = model.run(batch, capture=layers)
        for layer in layers:
            d = np.abs(a[layer] - acts[layer]).max(axis=1) > 1e-3          # (pixel, h, w)
            changed[layer] = changed.get(layer, False) | d.reshape(27, 29, *d.shape[1:])
    for layer in layers:
        h, w = acts[layer].shape[2:]
        for (y, xx) in [(0, 0), (h // 2, w // 2), (h - 1, w - 1), (1, w - 2)]:
            ys, xs = np.nonzero(changed[layer][:, :, y, xx])
            want = (ys.min(), xs.min(), ys.max() + 1, xs.max() + 1)
            got = rf.box(patches.layer_value(model, layer), y, xx)
            if dil == 1:
                assert got == want, (layer, y, xx)
            else:
                assert got[:2] <= want[:2] and got[2:] >= want[2:], (layer, y, xx)


def test_receptive_field_agrees_with_the_summary_on_the_tiny_model(tiny_files):
    model = ce.load(tiny_files[0])
    rf = patches.ReceptiveField(model.graph, (1, 3, 32, 32))
    for layer in model.summary():
        if len(layer.output_shape) != 4:
            assert rf.box(patches.layer_value(model, layer.name), 0, 0) == (0, 0, 32, 32)
            continue
        h, w = layer.output_shape[2:]
        for y, x in [(0, 0), (h // 2, w - 1), (h - 1, w // 3)]:
            want = tuple(int(v) for v in atlas.receptive_box(layer.receptive_field, y, x, (32, 32)))
            assert rf.box(patches.layer_value(model, layer.name), y, x) == want, (layer.name, y, x)


def make_folder(d, n=5):
    os.makedirs(d, exist_ok=True)
    rng = np.random.default_rng(3)
    from PIL import Image
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (30 + i, 40, 3), dtype=np.uint8)).save(os.path.join(d, f"im{i}.png"))
    open(os.path.join(d, "notes.txt"), "w").write("not an image")
    return str(d)


class Counting:
    """A model whose runs are counted (a cache hit must not run it)."""
    def __init__(self, model):
        self.model, self.runs = model, 0

    def run(self, x, capture=None):
        self.runs += 1
        return self.model.run(x, capture=capture)


def test_collect_matches_capturing_each_image(tmp_path, tiny_files, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = make_folder(tmp_path / "imgs")
    model = ce.load(tiny_files[0])
    pre = session.preprocess_for(model)
    files = patches.folder_images(folder)
    assert [os.path.basename(f) for f in files] == [f"im{i}.png" for i in range(5)]
    seen = []
    ps = patches.collect(model, files, pre, ["conv2", "fc"], k=3, progress=lambda d, t: seen.append((d, t)))
    assert seen == [(i, 5) for i in range(1, 6)]
    acts = np.stack([atlas.as_maps(model.run(session.open_image(f, pre).x, capture=["conv2", "fc"])[1]["conv2"])
                     for f in files])
    ref = brute_top(acts, 3)
    for ch in range(12):    # positions exactly, values to float tolerance (two runs of the engine)
        got = ps.layers["conv2"].entries(ch)
        assert [e[1:] for e in got] == [e[1:] for e in ref[ch]]
        np.testing.assert_allclose([e[0] for e in got], [e[0] for e in ref[ch]], rtol=1e-5, atol=1e-5)
    assert ps.displays.shape == (5, 32, 32, 3)
    # a crop is the display image cut to the unit's field
    rf = patches.ReceptiveField(model.graph, (1, 3, 32, 32))
    entry = ps.layers["conv2"].entries(4)[0]
    crop, box = ps.crop(rf, patches.layer_value(model, "conv2"), entry)
    t, l, b, r = box
    np.testing.assert_array_equal(crop, ps.displays[entry[1], t:b, l:r])
    assert (b - t, r - l) == (min(b, 32) - max(t, 0), min(r, 32) - max(l, 0)) and b - t <= 8


def test_cache_roundtrip_key_and_reopen(tmp_path, tiny_files, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert patches.cache_dir() == str(tmp_path / "cache" / "cnnengine" / "patches")
    folder = make_folder(tmp_path / "imgs")
    model = Counting(ce.load(tiny_files[0]))
    pre = session.preprocess_for(model.model)
    ps = patches.find_or_collect(model, tiny_files[0], folder, pre, ["conv1"])
    assert model.runs == 5 and not ps.from_cache
    again = patches.find_or_collect(model, tiny_files[0], folder, pre, ["conv1"])
    assert model.runs == 5 and again.from_cache
    for a, b in ((ps.layers["conv1"], again.layers["conv1"]),):
        for f in ("values", "images", "ys", "xs"):
            np.testing.assert_array_equal(getattr(a, f), getattr(b, f))
    np.testing.assert_array_equal(ps.displays, again.displays)
    assert again.files == ps.files
    # another layer: one more pass, merged into the same file
    both = patches.find_or_collect(model, tiny_files[0], folder, pre, ["conv1", "conv2"])
    assert model.runs == 10 and set(both.layers) == {"conv1", "conv2"}
    assert patches.find_or_collect(model, tiny_files[0], folder, pre, ["conv2"]).from_cache
    # the key moves with a file's mtime, the preprocessing and the folder
    files = patches.folder_images(folder)
    key = patches.cache_key(tiny_files[0], folder, files, pre)
    st = os.stat(files[0])
    os.utime(files[0], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert patches.cache_key(tiny_files[0], folder, files, pre) != key
    assert patches.cache_key(tiny_files[0], folder, files, dict(pre, mean=[0, 0, 0])) != \
        patches.cache_key(tiny_files[0], folder, files, pre)
    # a damaged cache file is ignored, not fatal
    path = patches.cache_path(patches.cache_key(tiny_files[0], folder, files, pre))
    open(path, "wb").write(b"garbage")
    assert patches.load_cached(patches.cache_key(tiny_files[0], folder, files, pre)) is None


def test_cancel_and_bad_folders(tmp_path, tiny_files):
    import threading
    model = ce.load(tiny_files[0])
    pre = session.preprocess_for(model)
    folder = make_folder(tmp_path / "imgs")
    stop = threading.Event()
    with pytest.raises(patches.Cancelled, match="after 2 of 5"):
        patches.collect(model, patches.folder_images(folder), pre, ["conv1"],
                        progress=lambda d, t: d == 2 and stop.set(), cancel=stop)
    with pytest.raises(InputError, match="no images"):
        patches.folder_images(tmp_path)
    with pytest.raises(InputError, match="is not a folder"):
        patches.folder_images(tmp_path / "nope")
    open(os.path.join(folder, "broken.png"), "wb").write(b"not a png")
    ps = patches.collect(model, patches.folder_images(folder), pre, ["conv1"])
    assert len(ps.files) == 5 and [os.path.basename(p) for p, _ in ps.skipped] == ["broken.png"]
    make_image(tmp_path / "only.png")
    os.makedirs(tmp_path / "bad")
    open(tmp_path / "bad" / "x.jpg", "wb").write(b"")
    with pytest.raises(InputError, match="none of the 1 images could be read"):
        patches.collect(model, patches.folder_images(tmp_path / "bad"), pre, ["conv1"])

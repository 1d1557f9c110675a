"""The command line: outputs, JSON shapes, and one-line errors with exit code 2."""
import json
import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

from cnnengine.cli import main

from ..runtime.onnx_builders import residual_net

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "cnnengine", "data")
CAT = os.path.join(DATA, "cat.jpg")


def run_cli(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "small.onnx"
    path.write_bytes(residual_net(np.random.default_rng(0), batch=1).SerializeToString())
    return str(path)


def test_run_default_classifies_bundled_photo(capsys):
    rc, out, err = run_cli(capsys, "run")
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert lines[0].startswith(os.path.abspath(CAT)) or "cat.jpg" in lines[0]
    assert len(lines) == 6
    assert "cat" in lines[1]


def test_run_json_shape(capsys):
    rc, out, _ = run_cli(capsys, "run", "efficientnet_lite0", CAT, os.path.join(DATA, "coffee.jpg"),
                         "--json", "--top", "3", "--threads", "1")
    assert rc == 0
    doc = json.loads(out)
    assert doc["model"] == "efficientnet_lite0" and doc["backend"] == "cpu" and doc["threads"] == 1
    assert [len(r["top"]) for r in doc["results"]] == [3, 3]
    cat, coffee = doc["results"]
    assert 281 <= cat["top"][0]["index"] <= 285
    assert coffee["top"][0]["label"] == "espresso"
    assert set(cat["top"][0]) == {"index", "label", "prob"} and isinstance(cat["ms"], float)
    probs = [t["prob"] for t in cat["top"]]
    assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 1.0001


def test_run_image_only_uses_default_model(capsys):
    rc, out, _ = run_cli(capsys, "run", CAT, "--json", "--top", "1")
    assert rc == 0 and json.loads(out)["model"] == "efficientnet_lite0"


def test_info_json_shape(capsys, small_onnx):
    rc, out, _ = run_cli(capsys, "info", small_onnx, "--json")
    assert rc == 0
    doc = json.loads(out)
    names = [l["name"] for l in doc["layers"]]
    assert names[:3] == ["conv1", "bn1", "relu1"]
    conv1 = doc["layers"][0]
    assert conv1["output_shape"] == [1, 8, 12, 12] and conv1["params"] == 8 * 27 + 8
    assert conv1["receptive_field"] == {"size": [3, 3], "jump": [1, 1], "start": [0, 0]}
    assert doc["total_params"] == sum(l["params"] for l in doc["layers"])
    assert doc["total_macs"] == sum(l["macs"] for l in doc["layers"]) > 0


def test_info_table(capsys):
    rc, out, _ = run_cli(capsys, "info", "lenet5")
    assert rc == 0
    assert "c1" in out and "156" in out and "48,120" in out and "total:" in out


def test_convert_round_trip(capsys, small_onnx, tmp_path):
    dst = str(tmp_path / "small.cnn")
    rc, out, _ = run_cli(capsys, "convert", small_onnx, dst, "--crop", "12", "--mean", "0.5", "--std", "0.5")
    assert rc == 0 and os.path.getsize(dst) > 0
    import cnnengine as ce
    a, b = ce.load(small_onnx), ce.load(dst)
    x = np.random.default_rng(1).standard_normal((2, 3, 12, 12)).astype(np.float32)
    np.testing.assert_array_equal(a.run(x), b.run(x))
    assert b.preprocess["crop"] == 12


def test_bench_json(capsys, small_onnx):
    rc, out, _ = run_cli(capsys, "bench", small_onnx, "--runs", "3", "--no-memory", "--json",
                         "--compare", "onnxruntime", "--threads", "1")
    if rc == 2:
        pytest.skip("onnxruntime not installed")
    doc = json.loads(out)
    assert doc["threads"] == 1 and doc["batch"] == 1 and doc["median_ms"] > 0
    assert doc["compare"]["name"] == "onnxruntime" and doc["compare"]["ratio"] > 0


def test_bench_layers_mark_what_runs_each_step(capsys, small_onnx):
    """--layers: each step's kernel (C, shape, numpy) as compile_step made it."""
    import cnnengine as ce
    rc, out, _ = run_cli(capsys, "bench", small_onnx, "--runs", "2", "--no-memory", "--json", "--layers",
                         "--threads", "1")
    assert rc == 0
    layers = json.loads(out)["layers"]
    plan = {n: k for n, _, k in ce.load(small_onnx).kernels()}
    assert layers and all(l["kernel"] == plan[l["name"]] for l in layers)
    assert {l["kernel"] for l in layers} <= {"C", "shape", "numpy"} and "C" in {l["kernel"] for l in layers}
    rc, out, _ = run_cli(capsys, "bench", small_onnx, "--runs", "2", "--no-memory", "--layers", "--threads", "1")
    assert rc == 0 and "kernel" in out and "steps outside C kernels" in out


class Evil:
    def __reduce__(self):
        return (os.system, ("touch /tmp/cnnengine_pwned",))


def hostile_files(tmp_path):
    files = {}
    files["truncated.onnx"] = residual_net(np.random.default_rng(0)).SerializeToString()[:300]
    files["random.onnx"] = np.random.default_rng(0).bytes(2000)
    files["evil.pth"] = pickle.dumps({"w": Evil()})
    files["empty.cnn"] = b""
    out = {}
    for name, data in files.items():
        p = tmp_path / name
        p.write_bytes(data)
        out[name] = str(p)
    out["missing.onnx"] = str(tmp_path / "nope.onnx")
    return out


def test_hostile_models_exit_2_one_line(capsys, tmp_path):
    for name, path in hostile_files(tmp_path).items():
        rc, out, err = run_cli(capsys, "info", path)
        assert rc == 2, name
        assert err.count("\n") == 1 and err.startswith("cnnengine: error:"), (name, err)
    assert not os.path.exists("/tmp/cnnengine_pwned")


def test_bad_image_exit_2(capsys, tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    rc, _, err = run_cli(capsys, "run", "lenet5", str(bad))
    assert rc == 2 and "bad.jpg" in err


def test_unknown_model_name(capsys):
    rc, _, err = run_cli(capsys, "run", "no_such_model", CAT)
    assert rc == 2 and "no_such_model" in err


def test_subprocess_exit_code_and_no_traceback(tmp_path):
    evil = tmp_path / "evil.pth"
    evil.write_bytes(pickle.dumps({"w": Evil()}))
    p = subprocess.run([sys.executable, "-m", "cnnengine", "run", str(evil), CAT], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr and p.stderr.count("\n") == 1
    assert not os.path.exists("/tmp/cnnengine_pwned")


def test_info_passes_lists_every_pass(capsys, small_onnx):
    rc, out, err = run_cli(capsys, "info", small_onnx, "--passes", "--json")
    assert rc == 0, err
    passes = json.loads(out)["passes"]
    names = [p["name"] for p in passes]
    assert names[0] == "fold_constants" and names[-1] == "layout (cpu)"
    assert any("BatchNormalization" in p["change"] for p in passes)
    rc, out, err = run_cli(capsys, "info", small_onnx, "--passes")
    assert rc == 0 and "fold_batchnorm" in out and "nodes" in out


def test_backend_flag(capsys, small_onnx):
    rc, out, err = run_cli(capsys, "run", small_onnx, CAT, "--backend", "reference", "--json")
    assert rc == 0, err
    doc = json.loads(out)
    assert doc["backend"] == "reference" and len(doc["results"]) == 1
    rc, out, err = run_cli(capsys, "run", small_onnx, CAT, "--backend", "cuda")
    assert rc == 2 and "backend 'cuda' is not available" in err and len(err.strip().splitlines()) == 1


def test_occlude_json_png_and_errors(capsys, small_onnx, tmp_path):
    out = tmp_path / "heat.png"
    rc, text, err = run_cli(capsys, "occlude", small_onnx, CAT, "--patch", "4", "--stride", "4",
                            "--mode", "naive", "--out", str(out), "--json")
    assert rc == 0, err
    doc = json.loads(text)
    assert set(doc) >= {"target", "baseline_prob", "heatmap", "patch", "stride", "mode", "seconds"}
    assert doc["mode"] == "naive" and len(doc["heatmap"]) == 3 and len(doc["heatmap"][0]) == 3
    from PIL import Image
    assert Image.open(out).size[0] > 12
    rc, text2, err = run_cli(capsys, "occlude", small_onnx, CAT, "--patch", "4", "--stride", "4", "--json")
    inc = json.loads(text2)
    assert inc["target"] == doc["target"]
    assert np.allclose(inc["heatmap"], doc["heatmap"], atol=1e-5)
    rc, text, err = run_cli(capsys, "occlude", small_onnx, CAT, "--patch", "4", "--stride", "2",
                            "--mode", "approximate", "--json")
    approx = json.loads(text)
    assert rc == 0 and approx["mode"] == "approximate" and approx["error"]["sampled_positions"] == 16
    assert approx["timings"]["approximate"]["scheme"]
    rc, text, err = run_cli(capsys, "occlude", small_onnx, CAT, "--patch", "4", "--stride", "2",
                            "--mode", "approximate")
    assert rc == 0 and "positions checked against naive" in text
    rc, text, err = run_cli(capsys, "occlude", small_onnx, CAT, "--target", "conv2:3", "--patch", "6")
    assert rc == 0 and "layer 'conv2' channel 3" in text
    for bad in (["--patch", "0"], ["--fill", "nan"], ["--target", "x:y"], ["--patch", "99"]):
        rc, _, err = run_cli(capsys, "occlude", small_onnx, CAT, *bad)
        assert rc == 2 and err.strip().startswith("cnnengine: error:") and len(err.strip().splitlines()) == 1, bad

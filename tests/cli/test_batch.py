"""Batch runs: ce.batch_run locally and on a Dask LocalCluster, `cnnengine run FOLDER`,
result files and resume, unreadable images, a worker killed mid-job, occlusion in bulk."""
import json
import os
import pickle
import signal
import time

import numpy as np
import pytest

import cnnengine as ce
from cnnengine.batch import expand_paths, resolve_preprocess
from cnnengine.batch_out import read_results
from cnnengine.cli import main
from cnnengine.preprocess import load_image

from ..runtime.onnx_builders import residual_net

N_IMAGES = 20


def run_cli(capsys, *argv):
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """20 images of a few sizes and modes in a folder and a subfolder, one
    corrupt JPEG, one text file and one hidden file (both ignored)."""
    from PIL import Image
    root = tmp_path_factory.mktemp("imgs")
    (root / "sub").mkdir()
    rng = np.random.default_rng(3)
    for i in range(N_IMAGES):
        d = root / "sub" if i % 4 == 0 else root
        arr = rng.integers(0, 256, (24 + 3 * i, 30 + (i % 5) * 7, 3), dtype=np.uint8)
        ext = ".png" if i % 3 else ".jpg"
        Image.fromarray(arr).convert("L" if i % 7 == 0 else "RGB").save(d / f"im{i:02d}{ext}")
    (root / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    (root / "notes.txt").write_text("not an image")
    (root / ".hidden.png").write_bytes(b"ignored")
    return str(root)


@pytest.fixture(scope="module")
def small_onnx(tmp_path_factory):
    path = tmp_path_factory.mktemp("m") / "small.onnx"
    path.write_bytes(residual_net(np.random.default_rng(0), batch="N").SerializeToString())
    return str(path)


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    import logging
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=":0", silence_logs=logging.CRITICAL)
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


def strip_ms(results):
    return [{k: v for k, v in r.items() if k != "ms"} for r in results]


def assert_same(a, b, tol=1e-6):
    """Same images, same order, same classes and labels; probabilities to `tol`
    (a worker process may run the kernels with another thread count)."""
    assert [r["image"] for r in a] == [r["image"] for r in b]
    for x, y in zip(a, b):
        assert ("error" in x) == ("error" in y), (x, y)
        if "error" in x:
            assert x["error"] == y["error"]
            continue
        assert [(t["index"], t["label"]) for t in x["top"]] == [(t["index"], t["label"]) for t in y["top"]]
        assert np.allclose([t["prob"] for t in x["top"]], [t["prob"] for t in y["top"]], atol=tol, rtol=0)


# ------------------------------------------------------------ the API
def test_expand_paths(folder):
    paths = expand_paths(folder)
    assert len(paths) == N_IMAGES + 1 and paths == sorted(paths)
    assert not any(p.endswith((".txt", ".hidden.png")) for p in paths)
    assert sum("/sub/" in p for p in paths) == 5
    globbed = expand_paths([os.path.join(folder, "**", "*.png"), os.path.join(folder, "im01.png")])
    assert len(globbed) == len(set(globbed)) == sum(p.endswith(".png") for p in paths)
    with pytest.raises(ce.InputError, match="matches no image"):
        expand_paths([os.path.join(folder, "*.webp")])
    with pytest.raises(ce.InputError, match="no such file"):
        expand_paths([os.path.join(folder, "missing.png")])


def test_model_pickles_as_its_source(small_onnx):
    assert len(pickle.dumps(ce.load("lenet5"))) < 200
    assert len(pickle.dumps(ce.load(small_onnx))) < 200 + len(small_onnx)


def test_local_batches_equal_one_image_at_a_time(folder):
    model = ce.load("lenet5")
    run = ce.batch_run(model, folder, batch=8, top=3)
    assert run.total == N_IMAGES + 1
    results = list(run)
    assert [r["image"] for r in results] == expand_paths(folder)
    bad = [r for r in results if "error" in r]
    assert len(bad) == 1 and bad[0]["image"].endswith("bad.jpg") and "bad.jpg" in bad[0]["error"]
    assert run.stats.images == N_IMAGES and run.stats.errors == 1
    assert run.stats.decode_s > 0 and run.stats.infer_s > 0
    pre = resolve_preprocess(model)
    for r in results:
        if "error" in r:
            continue
        y = model.run(load_image(r["image"], pre))[0]
        order = np.argsort(-y, kind="stable")[:3]
        assert [t["index"] for t in r["top"]] == order.tolist()
        assert r["top"][0]["label"] == model.labels[order[0]]
        probs = np.exp(y - y.max()) / np.exp(y - y.max()).sum() if y.min() < 0 or abs(y.sum() - 1) > 1e-3 else y
        assert np.allclose([t["prob"] for t in r["top"]], probs[order], atol=1e-5)
        assert r["ms"] > 0


def test_skip_and_errors(folder):
    paths = expand_paths(folder)
    run = ce.batch_run("lenet5", paths, batch=4, skip=paths[:5])
    assert run.total == len(paths) - 5 and run.skipped == 5
    assert [r["image"] for r in run] == paths[5:]
    with pytest.raises(ce.InputError, match="batch"):
        ce.batch_run("lenet5", paths, batch=0)
    with pytest.raises(ce.InputError, match="client"):
        list(ce.batch_run("lenet5", paths, client=object()))


def test_to_dataframe(folder):
    pd = pytest.importorskip("pandas")
    results = list(ce.batch_run("lenet5", folder, top=2))
    df = ce.to_dataframe(results)
    assert isinstance(df, pd.DataFrame) and len(df) == N_IMAGES + 1
    assert list(df.columns[:5]) == ["image", "ms", "error", "top1_index", "top1_label"]
    ok = df[df["error"].isna()]
    assert len(ok) == N_IMAGES and (ok["top1_prob"] >= ok["top2_prob"]).all()
    assert ok["top1_index"].tolist() == [r["top"][0]["index"] for r in results if "error" not in r]


# ------------------------------------------------------------ Dask
def test_local_and_cluster_identical(folder, client):
    local = list(ce.batch_run("lenet5", folder, batch=4, top=5))
    run = ce.batch_run("lenet5", folder, batch=4, top=5, client=client, partition_size=3)
    remote = list(run)
    assert_same(local, remote)
    assert run.stats.images == N_IMAGES and run.stats.errors == 1
    # built once per worker process, however many partitions (7) each ran
    assert 1 <= run.stats.model_loads <= len(client.scheduler_info()["workers"])
    again = ce.batch_run("lenet5", folder, batch=4, client=client, partition_size=3)
    list(again)
    assert again.stats.model_loads == 0


def test_occlusion_many_local_and_cluster(folder, small_onnx, client):
    paths = expand_paths(folder)[:6]
    kw = dict(patch=4, stride=4, mode="naive")
    local = list(ce.batch_occlusion(small_onnx, paths, **kw))
    remote = list(ce.batch_occlusion(small_onnx, paths, client=client, **kw))
    assert [r["image"] for r in local] == [r["image"] for r in remote] == paths
    assert paths[0].endswith("bad.jpg") and "bad.jpg" in local[0]["error"] and remote[0] == local[0]
    for a, b in zip(local[1:], remote[1:]):
        assert a["result"]["target"] == b["result"]["target"]
        assert np.allclose(a["result"]["heatmap"], b["result"]["heatmap"], atol=1e-5)
        assert b["png"].startswith(b"\x89PNG")


def test_killed_worker_loses_no_result(folder, client):
    """SIGKILL a worker process after the first partition arrives: the
    partitions it ran or held rerun elsewhere, each image comes back once."""
    local = list(ce.batch_run("lenet5", folder, batch=2, top=3))
    pids = client.run(os.getpid)
    run = ce.batch_run("lenet5", folder, batch=2, top=3, client=client, partition_size=2)
    results = [next(run)]
    processing, held = client.processing(), client.has_what()
    work = {a: len(processing.get(a, ())) + sum(not k.startswith("cnnengine-model") for k in held.get(a, ()))
            for a in pids}
    addr = max(work, key=work.get)
    assert work[addr] > 0          # the victim is running or holding partitions not yet gathered
    victim = pids[addr]
    os.kill(victim, signal.SIGKILL)
    results += list(run)
    assert_same(local, results)
    assert len({r["image"] for r in results}) == len(results) == N_IMAGES + 1
    deadline = time.time() + 30      # the nanny restarts the worker
    while time.time() < deadline and (len(client.scheduler_info()["workers"]) < 2 or
                                      victim in client.run(os.getpid).values()):
        time.sleep(0.2)
    assert victim not in client.run(os.getpid).values()


# ------------------------------------------------------------ the CLI
@pytest.mark.parametrize("ext", [".jsonl", ".csv", ".parquet"])
def test_cli_out_resume_and_round_trip(capsys, folder, tmp_path, ext):
    if ext == ".parquet":
        pytest.importorskip("pyarrow")
    out = str(tmp_path / f"results{ext}")
    first = os.path.join(folder, "im0*")
    rc, text, err = run_cli(capsys, "run", "lenet5", first, "--out", out, "--top", "3", "--json")
    assert rc == 0, err
    doc = json.loads(text)
    assert len(doc["results"]) == 7 and doc["resumed"] == 0 and doc["errors"] == []   # im00, 04, 08: in sub/
    assert read_results(out) == doc["results"]       # floats round-trip exactly
    first_results = doc["results"]
    rc, text, err = run_cli(capsys, "run", "lenet5", folder, "--out", out, "--top", "3", "--json", "--batch", "5")
    assert rc == 1
    doc = json.loads(text)
    assert doc["resumed"] == 7 and len(doc["results"]) == N_IMAGES - 7
    assert [e["image"] for e in doc["errors"]] == [os.path.join(folder, "bad.jpg")]
    lines = err.strip().splitlines()
    assert "bad.jpg" in lines[-2] and lines[-1].startswith("cnnengine: 1 of 21 images could not be read")
    rows = read_results(out)
    assert sorted(r["image"] for r in rows) == sorted(p for p in expand_paths(folder) if "bad" not in p)
    assert rows == first_results + doc["results"]
    rc, text, _ = run_cli(capsys, "run", "lenet5", folder, "--out", out, "--top", "3", "--json")
    assert rc == 1 and json.loads(text)["results"] == [] and json.loads(text)["resumed"] == N_IMAGES


def test_cli_resume_after_a_torn_line(capsys, folder, tmp_path):
    out = tmp_path / "r.jsonl"
    good = os.path.join(folder, "*.png")
    assert run_cli(capsys, "run", "lenet5", good, "--out", str(out))[0] == 0
    lines = out.read_text().splitlines(keepends=True)
    out.write_text("".join(lines[:4]) + lines[4][:17])   # killed while writing row 5
    rc, text, _ = run_cli(capsys, "run", "lenet5", good, "--out", str(out), "--json")
    assert rc == 0 and json.loads(text)["resumed"] == 4
    rows = read_results(str(out))
    assert len(rows) == len(lines) and len({r["image"] for r in rows}) == len(lines)


def test_cli_parquet_journal_survives_a_hard_kill(capsys, folder, tmp_path):
    pytest.importorskip("pyarrow")
    out = tmp_path / "r.parquet"
    good = os.path.join(folder, "*.png")
    assert run_cli(capsys, "run", "lenet5", good, "--out", str(out))[0] == 0
    rows = read_results(str(out))
    # a run killed before it could rewrite the file leaves its rows in the journal
    out.unlink()
    (tmp_path / "r.parquet.partial.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:3]))
    rc, text, _ = run_cli(capsys, "run", "lenet5", good, "--out", str(out), "--json")
    assert rc == 0 and json.loads(text)["resumed"] == 3
    assert not (tmp_path / "r.parquet.partial.jsonl").exists()
    assert strip_ms(read_results(str(out))[:3]) == strip_ms(rows[:3]) and len(read_results(str(out))) == len(rows)


def test_cli_folder_text_output_and_single_image_unchanged(capsys, folder):
    rc, out, err = run_cli(capsys, "run", "lenet5", os.path.join(folder, "sub"), "--top", "2")
    assert rc == 0, err
    lines = out.strip().splitlines()
    assert len(lines) == 5 * 3 and lines[0].startswith(os.path.join(folder, "sub", "im00"))
    assert "scored 5 images" in err.strip().splitlines()[-1]
    one = os.path.join(folder, "im01.png")
    rc, out, err = run_cli(capsys, "run", "lenet5", one, "--json")
    assert rc == 0 and err == "" and set(json.loads(out)) == {"model", "backend", "threads", "results"}


def test_cli_errors_exit_2_one_line(capsys, folder, tmp_path):
    for argv in (["run", "lenet5", os.path.join(folder, "*.webp")],
                 ["run", "lenet5", folder, "--out", str(tmp_path / "r.txt")],
                 ["run", "lenet5", folder, "--batch", "0"],
                 ["run", "lenet5", folder, "--dask", "local:x"],
                 ["occlude", "lenet5", folder],
                 ["occlude", "lenet5", folder, "--out", "x.png"]):
        rc, _, err = run_cli(capsys, *argv)
        assert rc == 2 and err.startswith("cnnengine: error:") and err.count("\n") == 1, (argv, err)
    notes = tmp_path / "r.csv"
    notes.write_text("name,size\na,1\n")
    rc, _, err = run_cli(capsys, "run", "lenet5", folder, "--out", str(notes))
    assert rc == 2 and "not a cnnengine results CSV" in err


def test_cli_dask_local_matches_one_process(capsys, folder):
    pytest.importorskip("distributed")
    rc, text, err = run_cli(capsys, "run", "lenet5", folder, "--json", "--dask", "local:2", "--batch", "4")
    assert rc == 1, err
    doc = json.loads(text)
    rc, text, _ = run_cli(capsys, "run", "lenet5", folder, "--json", "--batch", "4")
    base = json.loads(text)
    assert_same(base["results"], doc["results"])
    assert doc["errors"] == base["errors"] and len(doc["errors"]) == 1


def test_cli_occlude_folder(capsys, folder, small_onnx, tmp_path):
    out_dir = tmp_path / "heat"
    sub = os.path.join(folder, "sub")
    rc, text, err = run_cli(capsys, "occlude", small_onnx, sub, folder + "/bad.jpg", "--out-dir", str(out_dir),
                            "--patch", "4", "--stride", "4", "--json")
    assert rc == 1 and "bad.jpg" in err
    doc = json.loads(text)
    assert len(doc["results"]) == 5 and len(doc["errors"]) == 1
    for r in doc["results"]:
        saved = json.loads(open(r["json"]).read())
        assert saved["image"] == r["image"] and len(saved["heatmap"]) == 3
        assert open(r["png"], "rb").read(4) == b"\x89PNG"
    pngs = sorted(r["png"] for r in doc["results"])
    assert pngs[0] == str(out_dir) + os.path.abspath(os.path.join(sub, "im00.jpg")) + ".heat.png"
    rc, text, _ = run_cli(capsys, "occlude", small_onnx, sub, "--out-dir", str(out_dir), "--json",
                          "--patch", "4", "--stride", "4")
    assert rc == 0 and json.loads(text)["resumed"] == 5 and json.loads(text)["results"] == []

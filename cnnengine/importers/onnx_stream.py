"""An ONNX file's initializer bytes, located without parsing them into protobuf.

onnx.load parses the whole file into one protobuf message, so the weights
sit in memory twice while they are converted to arrays (the file's bytes
inside the message, then the arrays: VGG-16's 528 MB peaked at 1.1 GB).
strip() walks the protobuf wire format of the file (memory-mapped: only
the pages holding field headers are read) and returns the model without
the raw_data of its large initializers, plus where each of those lies in
the file; the importer parses the small remainder with onnx and reads each
weight from the file into its own array, which a plan may drop once packed
and read again (ir/weights.py FileTensor). Anything unexpected (a
malformed file, a second graph field, segments, external data, big-endian
hosts) answers None and the importer parses the file as a whole, which
also names the error.
"""
import mmap
import os
import sys

MIN_BYTES = 4096          # smaller initializers stay inside the protobuf
# TensorProto data types whose raw_data is plain little-endian values
DTYPES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
          9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64"}


class _Bad(Exception):
    pass


def _varint(buf, pos, end):
    value = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Bad
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7


def _encode_varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _fields(buf, start, end):
    """(field number, wire type, key start, key end, value start, value end) of each field."""
    pos = start
    while pos < end:
        key_start = pos
        key, pos = _varint(buf, pos, end)
        key_end = pos
        field, wt = key >> 3, key & 7
        if field == 0:
            raise _Bad
        if wt == 0:
            _, nxt = _varint(buf, pos, end)
        elif wt == 1:
            nxt = pos + 8
        elif wt == 5:
            nxt = pos + 4
        elif wt == 2:
            length, pos = _varint(buf, pos, end)
            nxt = pos + length
        else:
            raise _Bad
        if nxt > end:
            raise _Bad
        yield field, wt, key_start, key_end, pos, nxt
        pos = nxt


def _tensor(buf, start, end):
    """(the TensorProto without its raw_data, (offset, length, data type)) or (None, None) to keep it whole."""
    dtype, raw, location = None, None, 0
    for field, wt, _, _, vs, ve in _fields(buf, start, end):
        if field == 2 and wt == 0:
            dtype = _varint(buf, vs, ve)[0]
        elif field == 9 and wt == 2:
            if raw is not None:
                return None, None
            raw = (vs, ve - vs)
        elif field == 14 and wt == 0:
            location = _varint(buf, vs, ve)[0]
        elif field in (3, 13):      # segment, external_data
            return None, None
    if raw is None or raw[1] < MIN_BYTES or dtype not in DTYPES or location != 0:
        return None, None
    out = bytearray()
    for field, wt, ks, _, _, ve in _fields(buf, start, end):
        if not (field == 9 and wt == 2):
            out += buf[ks:ve]
    return bytes(out), (raw[0], raw[1], dtype)


def _graph(buf, start, end, found):
    out = bytearray()
    for field, wt, ks, ke, vs, ve in _fields(buf, start, end):
        if field == 5 and wt == 2:      # an initializer
            body, where = _tensor(buf, vs, ve)
            found.append(where)
            if body is not None:
                out += buf[ks:ke] + _encode_varint(len(body)) + body
                continue
        out += buf[ks:ve]
    return bytes(out)


def strip(path):
    """(model bytes without the large initializers' data, [(offset, length, data type) or None per
    initializer of the main graph]), or None (parse the file whole)."""
    if sys.byteorder != "little":
        return None
    try:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size == 0:
                return None
            buf = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    try:
        out, found, graphs = bytearray(), [], 0
        for field, wt, ks, ke, vs, ve in _fields(buf, 0, size):
            if field == 7 and wt == 2:  # ModelProto.graph
                graphs += 1
                body = _graph(buf, vs, ve, found)
                out += buf[ks:ke] + _encode_varint(len(body)) + body
            else:
                out += buf[ks:ve]
        if graphs != 1 or not any(found):
            return None
        return bytes(out), found
    except _Bad:
        return None
    finally:
        buf.close()

"""Reading an ONNX file and its external-data files as untrusted input.

``read_model`` parses the model (onnx's checker, local functions inlined) and fills its
external tensors. Regular files only (a FIFO or device is refused without being opened or
blocking), at most ``limit`` bytes read (a bigger file is
refused before any byte is parsed), and external data only from files inside the model's own
folder (no absolute paths, no "..", no symbolic link leading out). Every problem raises
``OnnxFileError`` naming the file; the opening is engine.safe_io's, as for every other file.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
from onnx import TensorProto

from engine.errors import BlockPropError
from engine.safe_io import open_regular

MAX_MODEL_BYTES = 512 * 2**20  # the .onnx file itself
MAX_TOTAL_BYTES = 1024 * 2**20  # the model and all its external data together


class OnnxFileError(BlockPropError):
    """An ONNX file (or one of its data files) cannot be read or used."""


def _mb(n: int) -> str:
    return f"{n / 2**20:,.0f} MB"


def read_regular(path: str | os.PathLike, limit: int, offset: int = 0, length: int = -1) -> bytes:
    """Up to ``limit`` bytes of the regular file ``path`` (from ``offset``; ``length`` bytes, or
    to the end with -1), opened by engine.safe_io.open_regular (never a device or FIFO). A
    larger read is refused before reading."""
    p = str(path)
    with open_regular(p, OnnxFileError, "file") as f:
        size = os.fstat(f.fileno()).st_size
        end = size if length < 0 else offset + length
        if offset < 0 or end > size:
            raise OnnxFileError(
                f"the model asks for bytes {offset} to {end} but the file has {size}", file=p
            )
        want = end - offset
        if want > limit:
            raise OnnxFileError(
                f"is {_mb(want)}; at most {_mb(limit)} is read (too large for this importer)",
                file=p,
            )
        try:
            f.seek(offset)
            data = f.read(want)
        except OSError as e:
            raise OnnxFileError(f"cannot read: {e.strerror or e}", file=p) from None
    if len(data) != want:  # the file shrank while being read
        raise OnnxFileError("changed while being read", file=p)
    return data


def data_file(folder: Path, location: str, model_file: str) -> Path:
    """The external-data file ``location`` named inside the model, checked to lie inside the
    model's own ``folder`` (resolved, so symbolic links cannot lead out)."""
    bad = OnnxFileError(
        f"external data {location!r} is not a file inside the model's folder", file=model_file
    )
    if not location or "\x00" in location or os.path.isabs(location) or ":" in location:
        raise bad
    parts = Path(location.replace("\\", "/")).parts
    if any(part in ("..", "") for part in parts) or Path(location).is_absolute():
        raise bad
    base = folder.resolve()
    target = (base / Path(*parts)).resolve()
    if target == base or base not in target.parents:
        raise bad
    return target


def _load_external(model: onnx.ModelProto, path: Path, budget: int) -> None:
    """Fill tensors stored in external files (inside the model's folder only)."""
    tensors = list(model.graph.initializer) + [
        a.t for nd in model.graph.node for a in nd.attribute if a.HasField("t")
    ]
    for t in tensors:
        if t.data_location != TensorProto.EXTERNAL:
            continue
        info = {e.key: e.value for e in t.external_data}
        target = data_file(path.parent, info.get("location", ""), str(path))
        try:
            offset, length = int(info.get("offset", 0)), int(info.get("length", -1))
        except ValueError:
            raise OnnxFileError(
                f"tensor {t.name!r}: bad offset or length", file=str(path)
            ) from None
        data = read_regular(target, budget, offset, length)
        budget -= len(data)
        t.raw_data = data
        del t.external_data[:]
        t.data_location = TensorProto.DEFAULT


def read_model(path: str | Path) -> onnx.ModelProto:
    """Parse the ONNX file ``path`` with the limits of ``files`` and onnx's checker."""
    p = Path(path)
    data = read_regular(p, MAX_MODEL_BYTES)
    m = onnx.ModelProto()
    try:
        m.ParseFromString(data)
    except Exception:  # protobuf's DecodeError and friends: not an ONNX file
        raise OnnxFileError("not an ONNX model (cannot parse it)", file=str(p)) from None
    if not m.HasField("graph"):
        raise OnnxFileError("not an ONNX model (no graph in it)", file=str(p))
    _load_external(m, p, MAX_TOTAL_BYTES - len(data))
    if m.functions:
        try:
            m = onnx.inliner.inline_local_functions(m)
        except Exception as e:
            raise OnnxFileError(f"cannot inline its functions: {e}", file=str(p)) from None
    try:
        onnx.checker.check_model(m)
    except onnx.checker.ValidationError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "invalid"
        raise OnnxFileError(f"not a valid ONNX model: {first[:300]}", file=str(p)) from None
    return m

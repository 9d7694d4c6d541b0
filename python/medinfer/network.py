"""Neural networks from ONNX files: tensors in, tensors out; images in, probabilities out."""
from __future__ import annotations

import ctypes
import os
import threading
from typing import Any, Mapping, Sequence

import numpy as np

from . import _native
from .errors import check as _check


_FLOAT32 = np.dtype(np.float32)


class Network:
    """An ONNX model. Immutable and shareable between threads; each thread runs it
    through its own session (created on first use), as the C API requires."""

    def __init__(self, handle: ctypes.c_void_p):
        """Wraps a loaded model handle and takes ownership of it (use load / from_bytes)."""
        self._lib = _native.library()
        self._handle = None  # owned only once it is known to be a network
        self._local = threading.local()
        lib, size = self._lib, ctypes.c_size_t()
        self.inputs: list[tuple[str, list[int | None]]] = []
        self.outputs: list[tuple[str, list[int | None]]] = []
        for count_fn, describe, target in ((lib.medinfer_network_input_count, lib.medinfer_network_input, self.inputs),
                                           (lib.medinfer_network_output_count, lib.medinfer_network_output, self.outputs)):
            _check(count_fn(handle, ctypes.byref(size)))
            for i in range(size.value):
                name = ctypes.c_char_p()
                dims = (ctypes.c_int64 * _native.MAX_RANK)()
                rank = ctypes.c_size_t()
                _check(describe(handle, i, ctypes.byref(name), dims, _native.MAX_RANK, ctypes.byref(rank)))
                target.append((name.value.decode(), [d if d >= 0 else None for d in dims[:rank.value]]))
        _check(lib.medinfer_model_class_count(handle, ctypes.byref(size)))
        self.labels: list[str] = []
        text = ctypes.c_char_p()
        for i in range(size.value):
            _check(lib.medinfer_model_class_label(handle, i, ctypes.byref(text)))
            self.labels.append(text.value.decode())
        self._handle = handle

    @classmethod
    def _adopt(cls, handle: ctypes.c_void_p) -> "Network":
        try:
            return cls(handle)
        except BaseException:
            _native.library().medinfer_model_free(handle)
            raise

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Network":
        """Loads an ONNX file (memory-mapped; weights are used in place)."""
        lib = _native.library()
        handle = ctypes.c_void_p()
        _check(lib.medinfer_model_load(os.fsencode(path), ctypes.byref(handle)))
        return cls._adopt(handle)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Network":
        lib = _native.library()
        handle = ctypes.c_void_p()
        _check(lib.medinfer_model_load_from_memory(data, len(data), ctypes.byref(handle)))
        return cls._adopt(handle)

    def _session(self) -> ctypes.c_void_p:
        session = getattr(self._local, "session", None)
        if session is None:
            session = ctypes.c_void_p()
            _check(self._lib.medinfer_session_create(self._handle, ctypes.byref(session)))
            self._local.session = session
            sessions = self.__dict__.setdefault("_sessions", [])
            sessions.append(session)
        return session

    def close(self) -> None:
        if "_lib" not in self.__dict__:
            return
        for session in self.__dict__.get("_sessions", []):
            self._lib.medinfer_session_free(session)
        self.__dict__["_sessions"] = []
        self._local = threading.local()
        if self._handle:
            self._lib.medinfer_model_free(self._handle)
            self._handle = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass

    def __enter__(self) -> "Network":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Network(inputs={self.inputs}, outputs={self.outputs}, labels={self.labels})"

    def run(self, inputs: Mapping[str, Any] | Sequence[Any] | np.ndarray,
            outputs: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Runs the network. `inputs` maps input names to arrays (or lists them in model
        order; a single array for a one-input model). Returns {output name: array}."""
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if isinstance(inputs, Mapping):
            items = list(inputs.items())
        else:
            items = [(name, value) for (name, _), value in zip(self.inputs, inputs)]
            if len(items) != len(list(inputs)):
                raise ValueError(f"the model has {len(self.inputs)} inputs, {len(list(inputs))} given")
        arrays = [value if type(value) is np.ndarray and value.dtype == _FLOAT32 and value.flags.c_contiguous
                  else np.require(value, dtype=np.float32, requirements="C") for _, value in items]
        wanted = list(outputs) if outputs is not None else [name for name, _ in self.outputs]
        # The argument structs depend only on the names and shapes: made once per shape set
        # (the first call also asks the library for the output shapes), then only the data
        # pointers change.
        key = (tuple((name, array.shape) for (name, _), array in zip(items, arrays)), tuple(wanted))
        cache = self._prepared_calls()
        prepared = cache.get(key)
        if prepared is None:
            prepared = self._prepare(items, arrays, wanted)
            if len(cache) > 64:
                cache.clear()
            cache[key] = prepared
        tensors, outs, shapes = prepared
        for tensor, array in zip(tensors, arrays):
            tensor.data = _native.address(array)
        results = {}
        for j, name in enumerate(wanted):
            buffer = np.empty(shapes[j], dtype=np.float32)
            outs[j].data = _native.address(buffer)
            results[name] = buffer
        _check(self._lib.medinfer_session_run(self._session(), tensors, len(items), outs, len(wanted)))
        return results

    def _prepare(self, items, arrays, wanted):
        """The input and output structs for one set of input names and shapes, and the
        output shapes (from a first call without buffers, which fills them in)."""
        tensors = (_native.InputTensor * max(len(items), 1))()
        for tensor, (name, _), array in zip(tensors, items, arrays):
            _native.describe_input(tensor, name, array)
        outs = (_native.OutputTensor * max(len(wanted), 1))()
        for j, name in enumerate(wanted):
            outs[j].name = name.encode()
        status = self._lib.medinfer_session_run(self._session(), tensors, len(items), outs, len(wanted))
        if status != _native.OK and status != 6:  # 6: buffer too small (shapes are filled)
            _check(status)
        shapes = [tuple(outs[j].shape[a] for a in range(outs[j].rank)) for j in range(len(wanted))]
        for j, shape in enumerate(shapes):
            outs[j].length = int(np.prod(shape, dtype=np.int64))
        return tensors, outs, shapes

    def _prepared_calls(self) -> dict:
        """Per-thread cache: (input names and shapes, outputs wanted) -> prepared structs."""
        cache = getattr(self._local, "prepared_calls", None)
        if cache is None:
            cache = self._local.prepared_calls = {}
        return cache

    def classify_image(self, image: np.ndarray, labels: Sequence[str] | None = None) -> dict[str, float] | np.ndarray:
        """Classifies an 8-bit image (H x W x 3 RGB, H x W x 4 RGBA, or H x W grey; any
        size). The library resizes and rescales as the model's training pipeline did
        (see medinfer_classify_image). Returns {label: probability} when labels are
        known (given, or stored in the model), else the probability array."""
        pixels = np.ascontiguousarray(image)
        if pixels.dtype != np.uint8:
            raise TypeError(f"images must be uint8, got {pixels.dtype}")
        if pixels.ndim == 2:
            fmt, channels = _native.PIXELS_GREY, 1
        elif pixels.ndim == 3 and pixels.shape[2] in (3, 4):
            fmt, channels = (_native.PIXELS_RGB, 3) if pixels.shape[2] == 3 else (_native.PIXELS_RGBA, 4)
        else:
            raise ValueError(f"expected an H x W, H x W x 3 or H x W x 4 image, got shape {pixels.shape}")
        height, width = pixels.shape[:2]
        img = _native.Image(ctypes.sizeof(_native.Image), pixels.ctypes.data, width, height,
                            pixels.strides[0], fmt, 0)
        count = ctypes.c_size_t()
        session = self._session()
        status = self._lib.medinfer_classify_image(session, ctypes.byref(img), None, 0, ctypes.byref(count))
        if status not in (_native.OK, 6):
            _check(status)
        out = np.empty(count.value, dtype=np.float32)
        _check(self._lib.medinfer_classify_image(session, ctypes.byref(img), out.ctypes.data, out.size,
                                                 ctypes.byref(count)))
        names = list(labels) if labels is not None else self.labels
        if names:
            if len(names) != out.size:
                raise ValueError(f"{len(names)} labels for {out.size} outputs")
            return {name: float(p) for name, p in zip(names, out)}
        return out

    # -- explanations (medinfer/explain.py) ------------------------------------------

    def explain_sequence(self, sequence: Any, static: Any = None, background: Any = None,
                         background_static: Any = None, *, method: str = "auto", budget: int = 1000,
                         seed: int = 0, time_windows: int = 1, window_steps: int = 0) -> Any:
        """Shapley values of a sequence model's output for one sequence [T, F]: one player
        per static column and per channel (per time window), against a background (reference
        sequences [B, T, F], one [T, F], or one sample [F]). Returns a
        medinfer.NetworkExplanation; see medinfer.explain.explain_sequence."""
        from .explain import explain_sequence
        return explain_sequence(self, sequence, static, background, background_static, method=method,
                                budget=budget, seed=seed, time_windows=time_windows, window_steps=window_steps)

    def explain_image(self, image: np.ndarray, *, grid: tuple[int, int] = (8, 8), segments: Any = None,
                      masker: str = "mean", blur_radius: int = 0, method: str = "auto", budget: int = 1000,
                      seed: int = 0) -> Any:
        """Shapley values of an image model's output over image segments (a grid, or the
        caller's labels), removed segments taking the mean colour or a blurred copy.
        Returns a medinfer.NetworkExplanation with per-pixel values; see
        medinfer.explain.explain_image."""
        from .explain import explain_image
        return explain_image(self, image, grid=grid, segments=segments, masker=masker, blur_radius=blur_radius,
                             method=method, budget=budget, seed=seed)

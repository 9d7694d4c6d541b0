"""ctypes declarations of libmedinfer's C API (include/medinfer.h).

The library is found, in order: $MEDINFER_LIBRARY; libmedinfer.so next to this package
(wheels ship it there); the repository's .build/release/libmedinfer.so. It is loaded once
per process, lazily, so that importing the package (e.g. on a Dask or Spark driver) costs
nothing and worker processes load their own copy.
"""
from __future__ import annotations

import ctypes
import os
import threading

ABI_VERSION = 1

OK = 0
STATUS_NAMES = {
    0: "MEDINFER_OK", 1: "MEDINFER_ERR_INVALID_ARGUMENT", 2: "MEDINFER_ERR_IO",
    3: "MEDINFER_ERR_PARSE", 4: "MEDINFER_ERR_UNSUPPORTED", 5: "MEDINFER_ERR_SHAPE_MISMATCH",
    6: "MEDINFER_ERR_BUFFER_TOO_SMALL", 7: "MEDINFER_ERR_OUT_OF_MEMORY", 8: "MEDINFER_ERR_INTERNAL",
}
OUTPUT_TRANSFORMED = 0
OUTPUT_RAW = 1


class PredictOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("output", ctypes.c_int32),
                ("reserved", ctypes.c_int32), ("iteration_limit", ctypes.c_uint64)]


class ExplainOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("iteration_limit", ctypes.c_uint64)]


MAX_RANK = 8
PIXELS_RGB, PIXELS_RGBA, PIXELS_GREY = 1, 2, 3


class InputTensor(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("data", ctypes.c_void_p), ("length", ctypes.c_size_t),
                ("rank", ctypes.c_size_t), ("shape", ctypes.c_int64 * MAX_RANK)]


class OutputTensor(ctypes.Structure):
    _fields_ = [("name", ctypes.c_char_p), ("data", ctypes.c_void_p), ("length", ctypes.c_size_t),
                ("rank", ctypes.c_size_t), ("shape", ctypes.c_int64 * MAX_RANK)]


class Image(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("pixels", ctypes.c_void_p), ("width", ctypes.c_size_t),
                ("height", ctypes.c_size_t), ("stride", ctypes.c_size_t), ("format", ctypes.c_int32),
                ("reserved", ctypes.c_int32)]


class SequenceBatch(ctypes.Structure):
    """medinfer_sequence_batch: sequences padded to max_steps, their lengths, static rows."""
    _fields_ = [("struct_size", ctypes.c_size_t), ("values", ctypes.c_void_p), ("batch", ctypes.c_size_t),
                ("max_steps", ctypes.c_size_t), ("features", ctypes.c_size_t), ("lengths", ctypes.c_void_p),
                ("static_inputs", ctypes.POINTER(InputTensor)), ("static_input_count", ctypes.c_size_t)]


STREAM_AUTO, STREAM_WINDOW = 0, 1


class StreamOptions(ctypes.Structure):
    _fields_ = [("struct_size", ctypes.c_size_t), ("mode", ctypes.c_int32), ("reserved", ctypes.c_int32),
                ("window", ctypes.c_size_t), ("explain_steps", ctypes.c_size_t)]


SHAPLEY_AUTO, SHAPLEY_EXACT, SHAPLEY_PERMUTATION = 0, 1, 2
MASK_MEAN, MASK_BLUR = 0, 1


class ShapleyOptions(ctypes.Structure):
    """medinfer_shapley_options."""
    _fields_ = [("struct_size", ctypes.c_size_t), ("method", ctypes.c_int32), ("reserved", ctypes.c_int32),
                ("budget", ctypes.c_size_t), ("seed", ctypes.c_uint64), ("time_windows", ctypes.c_size_t),
                ("window_steps", ctypes.c_size_t)]


class ImageExplainOptions(ctypes.Structure):
    """medinfer_image_explain_options."""
    _fields_ = [("struct_size", ctypes.c_size_t), ("grid_rows", ctypes.c_size_t), ("grid_cols", ctypes.c_size_t),
                ("segments", ctypes.c_void_p), ("segment_count", ctypes.c_size_t), ("masker", ctypes.c_int32),
                ("method", ctypes.c_int32), ("blur_radius", ctypes.c_size_t), ("budget", ctypes.c_size_t),
                ("seed", ctypes.c_uint64)]


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_path: str | None = None


def address(array) -> int | None:
    """The address of a C-contiguous array's first element (None when empty). A ctypes
    view of the buffer costs a third of `array.ctypes.data`; read-only arrays take the
    slower way."""
    if not array.size:
        return None
    try:
        return ctypes.addressof(ctypes.c_char.from_buffer(array))
    except (TypeError, ValueError, BufferError):
        return array.ctypes.data


def describe_input(tensor: InputTensor, name: str, array: "np.ndarray") -> None:
    """Points a medinfer_input_tensor at a C-contiguous float32 array (kept alive by the
    caller for the duration of the call)."""
    if array.ndim > MAX_RANK:
        raise ValueError(f"input {name!r} has rank {array.ndim}, above {MAX_RANK}")
    tensor.name = name.encode()
    tensor.data = address(array)
    tensor.length = array.size
    tensor.rank = array.ndim
    for axis, extent in enumerate(array.shape):
        tensor.shape[axis] = extent


class OwnedHandle:
    """A library object freed by close(), by leaving a `with` block, or when collected.
    Subclasses set `_handle` and name their free function in `_free_function`."""
    _free_function = ""
    _handle = None

    def close(self) -> None:
        """Frees the object now (it is also freed when garbage collected)."""
        if getattr(self, "_handle", None):
            getattr(library(), self._free_function)(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass


def _candidates() -> list[str]:
    # Strings and os.path, not pathlib: this runs in every fresh process's first call.
    found = []
    if os.environ.get("MEDINFER_LIBRARY"):
        found.append(os.environ["MEDINFER_LIBRARY"])
    here = os.path.dirname(os.path.realpath(__file__))
    found.append(os.path.join(here, "libmedinfer.so"))
    parent = os.path.dirname(here)
    while True:
        candidate = os.path.join(parent, ".build", "release", "libmedinfer.so")
        if os.path.exists(candidate):
            found.append(candidate)
            break
        if os.path.dirname(parent) == parent:
            break
        parent = os.path.dirname(parent)
    return found


class _Library(ctypes.CDLL):
    """The library, each function given its C signature when first used: declaring all
    of them up front took 0.6 ms of a fresh process's model load."""

    def __getattr__(self, name: str):
        function = super().__getattr__(name)  # looks the symbol up and caches it on self
        signature = _SIGNATURES.get(name)
        if signature is not None:
            function.argtypes, function.restype = signature
        return function


def _signatures() -> dict:
    p, size, i32, dbl = ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int32, ctypes.c_void_p
    signatures = {
        "medinfer_abi_version": ([], ctypes.c_int),
        "medinfer_version": ([], ctypes.c_char_p),
        "medinfer_last_error": ([], ctypes.c_char_p),
        "medinfer_status_name": ([ctypes.c_int], ctypes.c_char_p),
        "medinfer_model_load": ([ctypes.c_char_p, ctypes.POINTER(p)], ctypes.c_int),
        "medinfer_model_load_from_memory": ([ctypes.c_char_p, size, ctypes.POINTER(p)], ctypes.c_int),
        "medinfer_model_free": ([p], None),
        "medinfer_model_save": ([p, ctypes.c_char_p], ctypes.c_int),
        "medinfer_model_kind": ([p, ctypes.POINTER(ctypes.c_int)], ctypes.c_int),
        "medinfer_model_feature_count": ([p, ctypes.POINTER(size)], ctypes.c_int),
        "medinfer_model_feature_name": ([p, size, ctypes.POINTER(ctypes.c_char_p)], ctypes.c_int),
        "medinfer_model_class_count": ([p, ctypes.POINTER(size)], ctypes.c_int),
        "medinfer_model_objective": ([p, ctypes.POINTER(ctypes.c_char_p)], ctypes.c_int),
        "medinfer_model_tree_count": ([p, ctypes.POINTER(size)], ctypes.c_int),
        "medinfer_model_iteration_count": ([p, ctypes.POINTER(size)], ctypes.c_int),
        "medinfer_model_default_iteration_limit": ([p, ctypes.POINTER(size)], ctypes.c_int),
        "medinfer_model_output_count": ([p, i32, ctypes.POINTER(size)], ctypes.c_int),
        "medinfer_predict": ([p, p, size, size, p, dbl, size], ctypes.c_int),
        "medinfer_shap_values": ([p, p, size, size, p, dbl, size], ctypes.c_int),
        "medinfer_shap_interaction_values": ([p, p, size, size, p, dbl, size], ctypes.c_int),
        "medinfer_model_class_label": ([p, size, ctypes.POINTER(ctypes.c_char_p)], ctypes.c_int),
        "medinfer_network_input_count": ([p, ctypes.POINTER(size)], ctypes.c_int),
        "medinfer_network_output_count": ([p, ctypes.POINTER(size)], ctypes.c_int),
        "medinfer_network_input": ([p, size, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_int64), size,
                                    ctypes.POINTER(size)], ctypes.c_int),
        "medinfer_network_output": ([p, size, ctypes.POINTER(ctypes.c_char_p), ctypes.POINTER(ctypes.c_int64), size,
                                     ctypes.POINTER(size)], ctypes.c_int),
        "medinfer_session_create": ([p, ctypes.POINTER(p)], ctypes.c_int),
        "medinfer_session_free": ([p], None),
        "medinfer_session_run": ([p, ctypes.POINTER(InputTensor), size, ctypes.POINTER(OutputTensor), size],
                                 ctypes.c_int),
        "medinfer_classify_image": ([p, ctypes.POINTER(Image), p, size, ctypes.POINTER(size)], ctypes.c_int),
    }
    # The sequence-model calls (ABI 1, added later): a library built before them still
    # loads, and the binding says what is missing when they are used (see `require`).
    sequence_signatures = {
        "medinfer_sequence_batch_init": ([ctypes.POINTER(SequenceBatch)], None),
        "medinfer_sequence_run": ([p, ctypes.POINTER(SequenceBatch), p, size, ctypes.POINTER(size)], ctypes.c_int),
        "medinfer_stream_options_init": ([ctypes.POINTER(StreamOptions)], None),
        "medinfer_stream_create": ([p, ctypes.POINTER(StreamOptions), ctypes.POINTER(p)], ctypes.c_int),
        "medinfer_stream_free": ([p], None),
        "medinfer_stream_set_static": ([p, ctypes.c_char_p, p, size], ctypes.c_int),
        "medinfer_stream_push": ([p, p, p, size, p, size, ctypes.POINTER(size)], ctypes.c_int),
        "medinfer_stream_steps": ([p, ctypes.POINTER(ctypes.c_uint64)], ctypes.c_int),
        "medinfer_stream_reset": ([p], ctypes.c_int),
    }
    # The network explanations (added after the sequence calls), likewise optional.
    explain_signatures = {
        "medinfer_shapley_options_init": ([ctypes.POINTER(ShapleyOptions)], None),
        "medinfer_explain_sequence": ([p, ctypes.POINTER(SequenceBatch), ctypes.POINTER(SequenceBatch),
                                       ctypes.POINTER(ShapleyOptions), p, size, ctypes.POINTER(size),
                                       ctypes.POINTER(size)], ctypes.c_int),
        "medinfer_stream_explain": ([p, p, p, size, ctypes.POINTER(ShapleyOptions), p, size, ctypes.POINTER(size),
                                     ctypes.POINTER(size)], ctypes.c_int),
        "medinfer_image_explain_options_init": ([ctypes.POINTER(ImageExplainOptions)], None),
        "medinfer_explain_image": ([p, ctypes.POINTER(Image), ctypes.POINTER(ImageExplainOptions), p, size, p, size,
                                    ctypes.POINTER(size), ctypes.POINTER(size)], ctypes.c_int),
    }
    return {**signatures, **sequence_signatures, **explain_signatures}


_SIGNATURES = _signatures()


def require(name: str, api: str = "the sequence-model API"):
    """The library function `name`, or NotImplementedError naming the library that lacks it."""
    function = getattr(library(), name, None)
    if function is None:
        raise NotImplementedError(f"{library_path()} has no {name}(): it was built before {api}")
    return function


def library() -> ctypes.CDLL:
    """The loaded library (loaded on first use)."""
    global _lib, _path
    if _lib is not None:
        return _lib
    with _lock:
        if _lib is None:
            tried = []
            for candidate in _candidates():
                if os.path.exists(candidate):
                    lib = _Library(candidate)
                    version = lib.medinfer_abi_version()
                    if version != ABI_VERSION:
                        raise ImportError(f"{candidate} has ABI version {version}, this binding needs {ABI_VERSION}")
                    _path = candidate
                    _lib = lib
                    break
                tried.append(candidate)
            if _lib is None:
                raise ImportError("libmedinfer.so not found (run `make lib`, or set MEDINFER_LIBRARY); tried: "
                                  + ", ".join(tried))
    return _lib


def library_path() -> str:
    library()
    assert _path is not None
    return _path

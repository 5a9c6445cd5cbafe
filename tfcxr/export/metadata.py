"""TFLite Model Metadata: labels, normalization and score calibration for the Android Task Library.

Why our own writer and reader: the standard tooling (tflite-support's ``MetadataPopulator`` and
``MetadataDisplayer``) pins protobuf<4, which breaks TensorFlow 2.21, and its C extension needs
libusb. The metadata is a small flatbuffer, so it is built here with ``flatbuffers.Builder`` and
read back with ``flatbuffers.Table``, following ``metadata_schema.fbs`` (v1.5) field by
field; the tests check the result against the standard tooling.

How a model carries metadata (as ``MetadataPopulator`` does it): the TFLite model gets a
``metadata`` entry named ``TFLITE_METADATA`` that points at a new buffer holding the metadata
flatbuffer (file identifier ``M001``); the associated files (labels, score calibration) are a zip
archive appended after the model flatbuffer. The archive is uncompressed (``ZIP_STORED``): the
Task Library maps the files in place and rejects compressed entries.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

import flatbuffers
import numpy as np
from flatbuffers import encode
from flatbuffers import number_types as N

import tfcxr.backend  # noqa: F401  (sets up TensorFlow before its lite modules are imported)
from tensorflow.lite.python import schema_py_generated as schema_fb
from tensorflow.lite.tools import flatbuffer_utils
from tfcxr.errors import TfcxrError

METADATA_NAME = "TFLITE_METADATA"
FILE_IDENTIFIER = b"M001"
# Every table, field and enum value written here predates schema 1.0.1 (none carries an
# "Added in" note), so any metadata parser reads it in full. The tests check this value against
# the standard tooling's GetMinimumMetadataParserVersion.
MIN_PARSER_VERSION = "1.0.0"

# Field slots: declaration order in metadata_schema.fbs; a union field takes two (type, value).
(_M_NAME, _M_DESCRIPTION, _M_VERSION, _M_SUBGRAPHS, _M_AUTHOR, _M_LICENSE, _,
 _M_MIN_PARSER) = range(8)  # ModelMetadata
_S_INPUTS, _S_OUTPUTS = 2, 3  # SubGraphMetadata: name, description, inputs, outputs, ...
_T_NAME, _T_DESCRIPTION, _, _T_CONTENT, _T_PROCESS_UNITS, _T_STATS, _T_FILES = range(7)  # Tensor
_C_PROPERTIES_TYPE, _C_PROPERTIES = range(2)  # Content (then range: ValueRange)
_I_COLOR_SPACE, _I_DEFAULT_SIZE = range(2)  # ImageProperties
_SIZE_WIDTH, _SIZE_HEIGHT = range(2)  # ImageSize
_P_OPTIONS_TYPE, _P_OPTIONS = range(2)  # ProcessUnit
_N_MEAN, _N_STD = range(2)  # NormalizationOptions
_SC_TRANSFORMATION, _SC_DEFAULT_SCORE = range(2)  # ScoreCalibrationOptions
_ST_MAX, _ST_MIN = range(2)  # Stats
_F_NAME, _F_DESCRIPTION, _F_TYPE = range(3)  # AssociatedFile (then locale, version)

# Enum and union values, indexed by their value.
_FILE_TYPES = ("UNKNOWN", "DESCRIPTIONS", "TENSOR_AXIS_LABELS", "TENSOR_VALUE_LABELS",
               "TENSOR_AXIS_SCORE_CALIBRATION", "VOCABULARY", "SCANN_INDEX_FILE")
_COLOR_SPACES = ("UNKNOWN", "RGB", "GRAYSCALE")
_SCORE_TRANSFORMATIONS = ("IDENTITY", "LOG", "INVERSE_LOGISTIC")
_FEATURE_PROPERTIES, _IMAGE_PROPERTIES = 1, 2  # ContentProperties union
_NORMALIZATION_OPTIONS, _SCORE_CALIBRATION_OPTIONS = 1, 2  # ProcessUnitOptions union


@dataclass(frozen=True)
class TensorInfo:
    """Metadata of one input or output tensor.

    A tensor with ``image_size`` is described as an image (ImageProperties with ``color_space``),
    any other as a feature tensor.
    """

    name: str
    description: str
    # image input only:
    image_size: tuple[int, int] | None = None  # (height, width)
    color_space: str = "RGB"  # "RGB" | "GRAYSCALE"
    normalization: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # (mean, std)
    value_range: tuple[float, float] | None = None  # (min, max) after normalization
    # output only:
    label_file: str | None = None  # one label per line, TENSOR_AXIS_LABELS
    score_calibration_file: str | None = None  # see sigmoid_calibration_file
    extra_files: tuple[tuple[str, str], ...] = ()  # (file name, description), type UNKNOWN

    def __post_init__(self):
        if self.color_space not in ("RGB", "GRAYSCALE"):
            raise TfcxrError(f"tensor {self.name!r}: color_space must be RGB or GRAYSCALE, "
                             f"not {self.color_space!r}")
        if self.score_calibration_file and not self.label_file:
            raise TfcxrError(f"tensor {self.name!r}: score calibration needs a label_file "
                             "(the Task Library rejects it otherwise)")


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    description: str
    author: str
    license: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]


def sigmoid_calibration_file(num_labels: int) -> bytes:
    """A score calibration file that turns each label's logit into sigmoid(logit).

    One ``scale,slope,offset`` line per label: score = scale / (1 + exp(-(slope * x + offset))).
    No trailing newline: the Task Library splits on every newline and requires exactly one line
    per label (an empty line means "use the default score").
    """
    return "\n".join(["1.0,1.0,0.0"] * num_labels).encode()


def add_metadata(model: bytes, info: ModelInfo, files: dict[str, bytes]) -> bytes:
    """Return the model with TFLite metadata and ``files`` packed as associated files.

    Raises TfcxrError if the number of inputs or outputs differs from the model's subgraph 0, a
    file named in ``info`` is missing from ``files``, or the model already has metadata.
    """
    if _metadata_buffer(model) is not None or packed_files(model):
        raise TfcxrError("the model already has TFLite metadata or associated files; "
                         "add metadata to the model as converted")
    subgraph = schema_fb.Model.GetRootAs(model, 0).Subgraphs(0)
    for kind, tensors, count in (("inputs", info.inputs, subgraph.InputsLength()),
                                 ("outputs", info.outputs, subgraph.OutputsLength())):
        if len(tensors) != count:
            raise TfcxrError(f"the metadata describes {len(tensors)} {kind} but the model "
                             f"has {count}")
    named = {name for t in info.inputs + info.outputs for name, _, _ in _attached_files(t)}
    if missing := sorted(named - files.keys()):
        raise TfcxrError(f"associated file(s) {', '.join(missing)} named in the metadata "
                         "but missing from the files given")

    tflite = flatbuffer_utils.convert_bytearray_to_object(model)
    tflite.buffers.append(schema_fb.BufferT(data=np.frombuffer(_build(info), np.uint8)))
    tflite.metadata = [*(tflite.metadata or []),
                       schema_fb.MetadataT(name=METADATA_NAME, buffer=len(tflite.buffers) - 1)]
    out = io.BytesIO(flatbuffer_utils.convert_object_to_bytearray(tflite))
    if files:
        with zipfile.ZipFile(out, "a") as archive:  # appends an archive after the flatbuffer
            for name, data in files.items():
                entry = zipfile.ZipInfo(name)  # fixed date: the same inputs give the same bytes
                entry.external_attr = 0o644 << 16
                archive.writestr(entry, data, compress_type=zipfile.ZIP_STORED)
    return out.getvalue()


def read_metadata(model: bytes) -> dict:
    """The model's metadata as a JSON-able dict (the fields this module writes).

    Raises TfcxrError if the model has no metadata.
    """
    buf = _metadata_buffer(model)
    if buf is None:
        raise TfcxrError("the model has no TFLite metadata")
    if not flatbuffers.util.BufferHasIdentifier(buf, 0, FILE_IDENTIFIER):
        raise TfcxrError(f"the {METADATA_NAME} buffer is not TFLite metadata "
                         "(no M001 identifier)")
    root = _Table(buf, encode.Get(N.UOffsetTFlags.packer_type, buf, 0))
    subgraph = root.tables(_M_SUBGRAPHS)[0]  # TFLite metadata has exactly one
    return {
        "name": root.string(_M_NAME),
        "version": root.string(_M_VERSION),
        "description": root.string(_M_DESCRIPTION),
        "author": root.string(_M_AUTHOR),
        "license": root.string(_M_LICENSE),
        "min_parser_version": root.string(_M_MIN_PARSER),
        "inputs": [_read_tensor(t) for t in subgraph.tables(_S_INPUTS)],
        "outputs": [_read_tensor(t) for t in subgraph.tables(_S_OUTPUTS)],
    }


def packed_files(model: bytes) -> dict[str, bytes]:
    """The associated files packed in the model (the zip archive after the flatbuffer)."""
    try:
        with zipfile.ZipFile(io.BytesIO(model)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except zipfile.BadZipFile:  # no archive appended
        return {}


def _attached_files(t: TensorInfo) -> list[tuple[str, str, str]]:
    """(name, description, AssociatedFileType) of the files attached to a tensor."""
    files = []
    if t.label_file:
        files.append((t.label_file, "Labels, one per line.", "TENSOR_AXIS_LABELS"))
    if t.score_calibration_file:
        files.append((t.score_calibration_file, "Sigmoid calibration per label: "
                      "scale,slope,offset.", "TENSOR_AXIS_SCORE_CALIBRATION"))
    return files + [(name, description, "UNKNOWN") for name, description in t.extra_files]


def _metadata_buffer(model: bytes) -> bytes | None:
    tflite = schema_fb.Model.GetRootAs(model, 0)
    for i in range(tflite.MetadataLength()):
        entry = tflite.Metadata(i)
        if entry.Name().decode() == METADATA_NAME:
            return tflite.Buffers(entry.Buffer()).DataAsNumpy().tobytes()
    return None


# -- writing ---------------------------------------------------------------------------------
# flatbuffers are built bottom-up: every child (string, vector, table) is written before the
# table that points to it, so the helpers below take offsets of children already in the builder.

_OFFSET, _UINT8, _UINT32, _FLOAT32 = "UOffsetTRelative", "Uint8", "Uint32", "Float32"


def _table(b: flatbuffers.Builder, *fields: tuple[int, str, int | float | None]) -> int:
    """A table from (slot, type, value); None and default (zero) values are left out."""
    b.StartObject(max((slot for slot, _, _ in fields), default=-1) + 1)
    for slot, kind, value in fields:
        if value is not None:
            getattr(b, f"Prepend{kind}Slot")(slot, value, 0)
    return b.EndObject()


def _tables(b: flatbuffers.Builder, offsets: list[int]) -> int | None:
    if not offsets:
        return None
    b.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    return b.EndVector()


def _floats(b: flatbuffers.Builder, values) -> int:
    return b.CreateNumpyVector(np.asarray(values, np.float32))


def _build(info: ModelInfo) -> bytes:
    b = flatbuffers.Builder(1024)
    inputs = _tables(b, [_build_tensor(b, t) for t in info.inputs])
    outputs = _tables(b, [_build_tensor(b, t) for t in info.outputs])
    subgraph = _table(b, (_S_INPUTS, _OFFSET, inputs), (_S_OUTPUTS, _OFFSET, outputs))
    root = _table(b,
                  (_M_NAME, _OFFSET, b.CreateString(info.name)),
                  (_M_DESCRIPTION, _OFFSET, b.CreateString(info.description)),
                  (_M_VERSION, _OFFSET, b.CreateString(info.version)),
                  (_M_SUBGRAPHS, _OFFSET, _tables(b, [subgraph])),
                  (_M_AUTHOR, _OFFSET, b.CreateString(info.author)),
                  (_M_LICENSE, _OFFSET, b.CreateString(info.license)),
                  (_M_MIN_PARSER, _OFFSET, b.CreateString(MIN_PARSER_VERSION)))
    b.Finish(root, file_identifier=FILE_IDENTIFIER)
    return bytes(b.Output())


def _build_tensor(b: flatbuffers.Builder, t: TensorInfo) -> int:
    if t.image_size is None:
        content = _table(b, (_C_PROPERTIES_TYPE, _UINT8, _FEATURE_PROPERTIES),
                         (_C_PROPERTIES, _OFFSET, _table(b)))
    else:
        height, width = t.image_size
        size = _table(b, (_SIZE_WIDTH, _UINT32, width), (_SIZE_HEIGHT, _UINT32, height))
        image = _table(b, (_I_COLOR_SPACE, _UINT8, _COLOR_SPACES.index(t.color_space)),
                       (_I_DEFAULT_SIZE, _OFFSET, size))
        content = _table(b, (_C_PROPERTIES_TYPE, _UINT8, _IMAGE_PROPERTIES),
                         (_C_PROPERTIES, _OFFSET, image))
    units = []
    if t.normalization is not None:
        mean, std = t.normalization
        options = _table(b, (_N_MEAN, _OFFSET, _floats(b, mean)),
                         (_N_STD, _OFFSET, _floats(b, std)))
        units.append(_table(b, (_P_OPTIONS_TYPE, _UINT8, _NORMALIZATION_OPTIONS),
                            (_P_OPTIONS, _OFFSET, options)))
    if t.score_calibration_file:
        identity = _SCORE_TRANSFORMATIONS.index("IDENTITY")
        options = _table(b, (_SC_TRANSFORMATION, _UINT8, identity),
                         (_SC_DEFAULT_SCORE, _FLOAT32, 0.0))
        units.append(_table(b, (_P_OPTIONS_TYPE, _UINT8, _SCORE_CALIBRATION_OPTIONS),
                            (_P_OPTIONS, _OFFSET, options)))
    stats = None
    if t.value_range is not None:
        low, high = t.value_range
        stats = _table(b, (_ST_MAX, _OFFSET, _floats(b, [high])),
                       (_ST_MIN, _OFFSET, _floats(b, [low])))
    files = [_table(b, (_F_NAME, _OFFSET, b.CreateString(name)),
                    (_F_DESCRIPTION, _OFFSET, b.CreateString(description)),
                    (_F_TYPE, _UINT8, _FILE_TYPES.index(kind)))
             for name, description, kind in _attached_files(t)]
    return _table(b,
                  (_T_NAME, _OFFSET, b.CreateString(t.name)),
                  (_T_DESCRIPTION, _OFFSET, b.CreateString(t.description)),
                  (_T_CONTENT, _OFFSET, content),
                  (_T_PROCESS_UNITS, _OFFSET, _tables(b, units)),
                  (_T_STATS, _OFFSET, stats),
                  (_T_FILES, _OFFSET, _tables(b, files)))


# -- reading ---------------------------------------------------------------------------------

class _Table:
    """Field access by slot over flatbuffers' Table; absent fields read as None / default."""

    def __init__(self, buf: bytes, pos: int):
        self._tab = flatbuffers.Table(buf, pos)

    def _offset(self, slot: int) -> int:
        return self._tab.Offset(4 + 2 * slot)

    def string(self, slot: int) -> str | None:
        offset = self._offset(slot)
        return self._tab.String(self._tab.Pos + offset).decode() if offset else None

    def scalar(self, slot: int, flags, default=0):
        offset = self._offset(slot)
        return self._tab.Get(flags, self._tab.Pos + offset) if offset else default

    def table(self, slot: int) -> _Table | None:
        offset = self._offset(slot)
        if not offset:
            return None
        return _Table(self._tab.Bytes, self._tab.Indirect(self._tab.Pos + offset))

    def tables(self, slot: int) -> list[_Table]:
        offset = self._offset(slot)
        if not offset:
            return []
        start = self._tab.Vector(offset)
        return [_Table(self._tab.Bytes, self._tab.Indirect(start + 4 * i))
                for i in range(self._tab.VectorLen(offset))]

    def floats(self, slot: int) -> list[float] | None:
        """Shortest decimal of each float32, so 0.485 reads back as 0.485, not 0.48500001."""
        offset = self._offset(slot)
        if not offset:
            return None
        return [float(str(v)) for v in self._tab.GetVectorAsNumpy(N.Float32Flags, offset)]


def _read_tensor(t: _Table) -> dict:
    image_size = color_space = None
    content = t.table(_T_CONTENT)
    if content and content.scalar(_C_PROPERTIES_TYPE, N.Uint8Flags) == _IMAGE_PROPERTIES:
        image = content.table(_C_PROPERTIES)
        color_space = _COLOR_SPACES[image.scalar(_I_COLOR_SPACE, N.Uint8Flags)]
        if size := image.table(_I_DEFAULT_SIZE):
            image_size = [size.scalar(_SIZE_HEIGHT, N.Uint32Flags),
                          size.scalar(_SIZE_WIDTH, N.Uint32Flags)]
    normalization = score_calibration = None
    for unit in t.tables(_T_PROCESS_UNITS):
        kind, options = unit.scalar(_P_OPTIONS_TYPE, N.Uint8Flags), unit.table(_P_OPTIONS)
        if kind == _NORMALIZATION_OPTIONS:
            normalization = {"mean": options.floats(_N_MEAN), "std": options.floats(_N_STD)}
        elif kind == _SCORE_CALIBRATION_OPTIONS:
            score_calibration = {
                "score_transformation":
                    _SCORE_TRANSFORMATIONS[options.scalar(_SC_TRANSFORMATION, N.Uint8Flags)],
                "default_score": options.scalar(_SC_DEFAULT_SCORE, N.Float32Flags, 0.0),
            }
    stats = t.table(_T_STATS)
    low, high = (stats.floats(_ST_MIN), stats.floats(_ST_MAX)) if stats else (None, None)
    return {
        "name": t.string(_T_NAME),
        "description": t.string(_T_DESCRIPTION),
        "image_size": image_size,
        "color_space": color_space,
        "normalization": normalization,
        "value_range": [low[0], high[0]] if low and high else None,
        "associated_files": [{"name": f.string(_F_NAME), "description": f.string(_F_DESCRIPTION),
                              "type": _FILE_TYPES[f.scalar(_F_TYPE, N.Uint8Flags)]}
                             for f in t.tables(_T_FILES)],
        "score_calibration": score_calibration,
    }

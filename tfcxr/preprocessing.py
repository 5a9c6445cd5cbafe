"""The input contract of a model, written once and saved with it.

Images enter the pipeline as single-channel float32 in [0, 1] (whatever their bit depth on disk),
are resized to ``image_size``, replicated to ``channels`` and normalised per channel with
``(x - mean) / std``. The same spec is stored in every run directory and in exported models, so
training, evaluation, explanation and the phone all feed a model the same numbers.

``dicom_window`` says how DICOM files are decoded: ``"auto"`` (default) applies a file's VOI LUT or
window when it has one, ``"off"`` scales the stored bits only (``tfcxr.data.images`` says why
``"auto"`` is the default). PNG and JPEG files ignore it; a spec saved without it loads as
``"auto"``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
DICOM_WINDOW_MODES = ("auto", "off")


@dataclass(frozen=True)
class PreprocessingSpec:
    image_size: int = 224
    channels: int = 3
    mean: tuple[float, ...] = field(default=IMAGENET_MEAN)
    std: tuple[float, ...] = field(default=IMAGENET_STD)
    resize_method: str = "bilinear"
    dicom_window: str = "auto"

    def __post_init__(self):
        if self.image_size < 8:
            raise ValueError(f"image_size must be >= 8, got {self.image_size}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {self.channels}")
        for name in ("mean", "std"):
            values = tuple(float(v) for v in getattr(self, name))
            if len(values) != self.channels:
                raise ValueError(f"{name} needs {self.channels} values, got {len(values)}")
            object.__setattr__(self, name, values)
        if any(s <= 0 for s in self.std):
            raise ValueError(f"std must be positive, got {self.std}")
        if self.dicom_window not in DICOM_WINDOW_MODES:
            raise ValueError(f"dicom_window must be one of {DICOM_WINDOW_MODES}, "
                             f"got {self.dicom_window!r}")

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, self.channels)

    def with_size(self, image_size: int) -> "PreprocessingSpec":
        return replace(self, image_size=image_size)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "PreprocessingSpec":
        return cls(**d)

    def save(self, path: str | Path) -> None:
        from tfcxr.io import write_text_atomic

        write_text_atomic(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "PreprocessingSpec":
        return cls.from_dict(json.loads(Path(path).read_text()))

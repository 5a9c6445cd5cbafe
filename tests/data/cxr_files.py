"""Writing small dataset files in each dataset's exact on-disk format, for reader tests."""

from pathlib import Path

import numpy as np
from PIL import Image


def write_png(path: Path, size: int = 16, value: int = 128, mode: str = "L") -> Path:
    """An image of one grey value; the format follows the suffix (.png, .jpg)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    channels = {"L": 1, "RGB": 3, "RGBA": 4}[mode]
    array = np.full((size, size, channels), value, np.uint8).squeeze()
    Image.fromarray(array, mode=None).convert(mode).save(path)
    return path


def write_text(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path

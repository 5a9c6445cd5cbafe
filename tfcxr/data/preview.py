"""A picture of what the model is fed: one batch of the pipeline, de-normalised, with its labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tfcxr.data.augment import AugmentConfig
from tfcxr.data.manifest import Manifest
from tfcxr.data.pipeline import build_dataset
from tfcxr.io import atomic_path
from tfcxr.preprocessing import PreprocessingSpec


def preview_batch(manifest: Manifest, spec: PreprocessingSpec, out: str | Path, *, count: int = 16,
                  augment: AugmentConfig | None = None, seed: int = 0) -> Path:
    """Save a grid of ``count`` pipeline images (augmented when ``augment`` is given) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    count = min(count, len(manifest))
    ds = build_dataset(manifest, spec, training=augment is not None, batch_size=count,
                       augment=augment, shuffle_seed=seed, drop_remainder=False)
    images, labels, mask = (t.numpy() for t in next(iter(ds)))
    films = images[..., 0] * spec.std[0] + spec.mean[0]  # back to the canonical [0, 1]
    cols = int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.4 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, film, y, m in zip(axes.flat, films, labels, mask):
        ax.imshow(film, cmap="gray", vmin=0, vmax=1)
        found = [n for n, v, k in zip(manifest.label_names, y, m) if v == 1 and k == 1]
        unsure = [n for n, k in zip(manifest.label_names, m) if k == 0]
        title = ", ".join(found) or "no finding"
        if unsure:
            title += f"\n(masked: {', '.join(unsure)})"
        ax.set_title(title, fontsize=7)
    mode = "training batch, augmented" if augment is not None else "evaluation batch"
    fig.suptitle(f"{manifest.dataset}: {mode}, {spec.image_size} px", fontsize=9)
    fig.tight_layout()
    out = Path(out)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
    return out

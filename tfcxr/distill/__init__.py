"""Knowledge distillation: multi-label losses and the ``Distiller`` model (online, offline from
precomputed teacher logits, or student-only)."""

from tfcxr.distill.distiller import Distiller
from tfcxr.distill.losses import (
    HARD_LOSSES,
    SOFT_LOSSES,
    binary_kl,
    get_hard_loss,
    get_soft_loss,
    logit_mse,
    masked_bce,
    masked_focal_bce,
    soft_bce,
    softmax_mse,
)

__all__ = ["Distiller", "HARD_LOSSES", "SOFT_LOSSES", "binary_kl", "get_hard_loss",
           "get_soft_loss", "logit_mse", "masked_bce", "masked_focal_bce", "soft_bce",
           "softmax_mse"]

"""Explanations: Grad-CAM heat maps per label, their pictures, and Grad-CAM inside a TFLite model.

``grad_cam`` (GradientTape, on tf-explain's ``GradCAM``) explains any tfcxr model, a nested
backbone or a QAT model (through its float twin); ``with_gradcam_output`` adds the same maps as a
second output made of ordinary ops, for export; ``save_figure`` draws them over the film.
"""

from tfcxr.explain.device import GradCamHead, with_gradcam_output
from tfcxr.explain.gradcam import grad_cam, gradcam_model
from tfcxr.explain.graph import flat_model, float_twin
from tfcxr.explain.overlay import Panel, overlay, save_figure, save_overlay

__all__ = ["GradCamHead", "Panel", "flat_model", "float_twin", "grad_cam", "gradcam_model",
           "overlay", "save_figure", "save_overlay", "with_gradcam_output"]

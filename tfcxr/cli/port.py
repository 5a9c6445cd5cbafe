"""``tfcxr port-weights``: turn a PyTorch checkpoint into a Keras weights file for a tfcxr model."""

from __future__ import annotations

import warnings
from pathlib import Path

import click

from tfcxr.cli import main


class PorterArch(click.ParamType):
    """A model name that has a weight porter.

    The list comes from the porting registry, which imports TensorFlow; it is read only when this
    option is parsed or its help shown, so ``tfcxr --help`` and other commands stay fast.
    """

    name = "arch"

    @staticmethod
    def choices() -> list[str]:
        from tfcxr.models.porting import list_porters

        return list_porters()

    def get_metavar(self, param, ctx):
        return "[" + "|".join(self.choices()) + "]"

    def convert(self, value, param, ctx):
        choices = self.choices()
        if value not in choices:
            self.fail(f"{value!r} has no weight porter; choose from: {', '.join(choices)}",
                      param, ctx)
        return value


def _save_weights_atomic(model, out: Path) -> None:
    from tfcxr.io import atomic_path

    with atomic_path(out) as tmp:  # ends like ``out``: Keras picks the weights format from it
        model.save_weights(str(tmp))


@main.command("port-weights")
@click.option("--arch", "-a", required=True, type=PorterArch(),
              help="Registered model to build and fill (the checkpoint's architecture).")
@click.option("--checkpoint", "-c", required=True,
              type=click.Path(exists=True, dir_okay=False),
              help="PyTorch checkpoint (.pth / .pt): a state_dict, possibly wrapped in "
                   "{'state_dict': ...} or saved from DataParallel ('module.' keys).")
@click.option("--out", "-O", required=True, type=click.Path(dir_okay=False),
              help="Keras weights file to write, ending in .h5 (e.g. densenet161.weights.h5).")
@click.option("--num-classes", "-n", type=click.IntRange(min=1), default=None,
              help="Logits of the model's head. Default: the checkpoint's. Another count (e.g. 14 "
                   "findings from a 1000-class ImageNet checkpoint) ports the backbone only and "
                   "leaves the head randomly initialised, to be trained.")
def port_weights_command(arch, checkpoint, out, num_classes):
    """Port a PyTorch CHECKPOINT of model ARCH to a Keras weights file OUT.

    Nothing is downloaded: bring the .pth file yourself (torchvision, darmo, OFA). Every key must
    fit, or nothing is written. Load the result with
    tfcxr.models.create(ARCH, num_classes=N, weights=OUT).
    """
    if not out.endswith(".h5"):
        raise click.BadParameter(f"{out!r} must end in .h5 (HDF5 weights)", param_hint="--out")
    from tfcxr.models.porting import load_torch_checkpoint, port_state_dict

    state_dict = load_torch_checkpoint(checkpoint)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        model = port_state_dict(arch, state_dict, num_classes, source=checkpoint)
    for warning in caught:
        if issubclass(warning.category, UserWarning):
            click.echo(f"warning: {warning.message}", err=True)
    _save_weights_atomic(model, Path(out))
    classes = model.output_shape[-1]
    click.echo(f"wrote {out}: {arch} with {classes} logits, ported from {checkpoint}")
    click.echo(f"load it with: tfcxr.models.create({arch!r}, num_classes={classes}, "
               f"weights={out!r})")

"""Vision Transformer teachers (ViT/DeiT-S and DeiT-Ti class) in tf-keras, with a Grad-CAM map.

The encoder is the standard one (timm ``VisionTransformer``): 16x16 patch embedding, a learned
class token, learned position embeddings, pre-norm blocks (LayerNorm -> multi-head self-attention,
LayerNorm -> GELU MLP, each with a residual), and a final LayerNorm.

The head pools the patch tokens instead of reading the class token (timm's ``global_pool='avg'``,
as in MAE and BEiT fine-tuning); the class token still takes part in every attention layer. This
is what makes Grad-CAM meaningful here:

* with a class-token head, the final block's patch tokens have no path to the logits, so their
  gradients are zero and a Grad-CAM on them is blank;
* with average pooling, the final patch tokens are reshaped into a ``(H/16, W/16, dim)`` map
  (``patch_map``) that the head consumes through ``GlobalAveragePooling2D -> Dense``, exactly like
  a CNN's last feature map. Each logit is then a sum of per-patch terms, Grad-CAM's channel
  weights are the head's weights, and the heat map is the CAM: each patch's share of the logit.
"""

from __future__ import annotations

from tfcxr.backend import tf, keras
from tfcxr.models.registry import register_model
from tfcxr.preprocessing import PreprocessingSpec

layers = keras.layers

PATCH_SIZE = 16
GRADCAM_LAYER = "patch_map"
LAYER_NORM_EPSILON = 1e-6  # timm's ViT


@keras.utils.register_keras_serializable(package="tfcxr")
class ClassToken(layers.Layer):
    """Prepends one learned token to a ``(batch, tokens, dim)`` sequence."""

    def build(self, input_shape):
        self.token = self.add_weight(name="token", shape=(1, 1, input_shape[-1]),
                                     initializer=keras.initializers.TruncatedNormal(stddev=0.02))
        super().build(input_shape)

    def call(self, x):
        token = tf.cast(tf.tile(self.token, [tf.shape(x)[0], 1, 1]), x.dtype)
        return tf.concat([token, x], axis=1)


@keras.utils.register_keras_serializable(package="tfcxr")
class AddPositionEmbedding(layers.Layer):
    """Adds a learned embedding per token position; the sequence length is fixed at build time."""

    def build(self, input_shape):
        if input_shape[1] is None:
            raise ValueError("AddPositionEmbedding needs a known number of tokens")
        self.embedding = self.add_weight(
            name="embedding", shape=(1, input_shape[1], input_shape[2]),
            initializer=keras.initializers.TruncatedNormal(stddev=0.02))
        super().build(input_shape)

    def call(self, x):
        return x + tf.cast(self.embedding, x.dtype)


def _encoder_block(x, dim: int, num_heads: int, mlp_ratio: int, name: str):
    y = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"{name}_norm1")(x)
    y = layers.MultiHeadAttention(num_heads, key_dim=dim // num_heads, name=f"{name}_attn")(y, y)
    x = layers.Add(name=f"{name}_add1")([x, y])
    y = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name=f"{name}_norm2")(x)
    # PyTorch's nn.GELU is the exact (erf) form; tf-keras' "gelu" string is too.
    y = layers.Dense(dim * mlp_ratio, activation="gelu", name=f"{name}_mlp_fc1")(y)
    y = layers.Dense(dim, name=f"{name}_mlp_fc2")(y)
    return layers.Add(name=f"{name}_add2")([x, y])


def build_vit(*, dim: int, depth: int, num_heads: int, mlp_ratio: int, num_classes: int,
              input_shape: tuple[int, int, int], name: str) -> keras.Model:
    """A flat functional ViT returning ``num_classes`` logits from a layer named ``logits``."""
    height, width = input_shape[:2]
    if height % PATCH_SIZE or width % PATCH_SIZE:
        raise ValueError(f"{name} needs input sides that are multiples of the {PATCH_SIZE}-px "
                         f"patch; got {input_shape}")
    grid = (height // PATCH_SIZE, width // PATCH_SIZE)
    inputs = keras.Input(shape=input_shape, name="image")
    x = layers.Conv2D(dim, PATCH_SIZE, strides=PATCH_SIZE, name="patch_embed")(inputs)
    x = layers.Reshape((grid[0] * grid[1], dim), name="patch_tokens")(x)
    x = ClassToken(name="class_token")(x)
    x = AddPositionEmbedding(name="pos_embed")(x)
    for i in range(depth):
        x = _encoder_block(x, dim, num_heads, mlp_ratio, name=f"block{i + 1}")
    x = layers.LayerNormalization(epsilon=LAYER_NORM_EPSILON, name="norm")(x)
    x = layers.Cropping1D((1, 0), name="drop_class_token")(x)
    x = layers.Reshape((*grid, dim), name=GRADCAM_LAYER)(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    logits = layers.Dense(num_classes, name="logits", dtype="float32")(x)
    return keras.Model(inputs, logits, name=name)


# DeiT's normalisation (ImageNet mean/std), which is also this package's default.
_SPEC = PreprocessingSpec(image_size=224)


@register_model("vit_small", role="teacher", preprocessing=_SPEC, gradcam_layer=GRADCAM_LAYER,
                description="ViT-S/16 (DeiT-S): dim 384, depth 12, 6 heads, MLP 4x, class token, "
                            "average-pooled patch-token head for Grad-CAM.")
def vit_small(num_classes: int, input_shape):
    return build_vit(dim=384, depth=12, num_heads=6, mlp_ratio=4, num_classes=num_classes,
                     input_shape=input_shape, name="vit_small")


@register_model("vit_tiny", role="teacher", preprocessing=_SPEC, gradcam_layer=GRADCAM_LAYER,
                description="ViT-Ti/16 (DeiT-Ti): dim 192, depth 12, 3 heads, MLP 4x; a lighter "
                            "Transformer teacher, same head as vit_small.")
def vit_tiny(num_classes: int, input_shape):
    return build_vit(dim=192, depth=12, num_heads=3, mlp_ratio=4, num_classes=num_classes,
                     input_shape=input_shape, name="vit_tiny")

"""The layout rule sets weightport ships, as the records :data:`weightport.layout.rules.BUILTIN_LAYOUTS` names.

- ``torchvision-vit-to-timm`` / ``timm-vit-to-torchvision``: torchvision's ``VisionTransformer``
  (``conv_proj``, ``encoder.layers.encoder_layer_N``, ``nn.MultiheadAttention``'s fused
  ``in_proj_weight``) and timm's (``patch_embed.proj``, ``blocks.N``, ``attn.qkv``). Both fuse
  q/k/v in the same order, so renames suffice.
- ``timm-vit-split-qkv`` / ``timm-vit-fuse-qkv``: timm's fused ``attn.qkv`` ↔ separate ``attn.q``,
  ``attn.k``, ``attn.v`` projections (the layout of many research repositories and of Hugging Face
  ``query``/``key``/``value`` models after renaming).
"""

from __future__ import annotations

from weightport.layout.ops import ConcatParts, SplitFused
from weightport.layout.rules import LayoutRules

_TV_TO_TIMM_VIT: tuple[tuple[str, str], ...] = (
    (r"^class_token$", "cls_token"),
    (r"^conv_proj\.", "patch_embed.proj."),
    (r"^encoder\.pos_embedding$", "pos_embed"),
    (r"^encoder\.layers\.encoder_layer_(\d+)\.", r"blocks.\1."),
    (r"^(blocks\.\d+)\.ln_1\.", r"\1.norm1."),
    (r"^(blocks\.\d+)\.ln_2\.", r"\1.norm2."),
    (r"^(blocks\.\d+)\.self_attention\.in_proj_(weight|bias)$", r"\1.attn.qkv.\2"),
    (r"^(blocks\.\d+)\.self_attention\.out_proj\.", r"\1.attn.proj."),
    (r"^(blocks\.\d+)\.mlp\.0\.", r"\1.mlp.fc1."),
    (r"^(blocks\.\d+)\.mlp\.3\.", r"\1.mlp.fc2."),
    (r"^encoder\.ln\.", "norm."),
    (r"^heads\.head\.", "head."),
)

_TIMM_TO_TV_VIT: tuple[tuple[str, str], ...] = (
    (r"^cls_token$", "class_token"),
    (r"^patch_embed\.proj\.", "conv_proj."),
    (r"^pos_embed$", "encoder.pos_embedding"),
    (r"^blocks\.(\d+)\.norm1\.", r"encoder.layers.encoder_layer_\1.ln_1."),
    (r"^blocks\.(\d+)\.norm2\.", r"encoder.layers.encoder_layer_\1.ln_2."),
    (r"^blocks\.(\d+)\.attn\.qkv\.(weight|bias)$", r"encoder.layers.encoder_layer_\1.self_attention.in_proj_\2"),
    (r"^blocks\.(\d+)\.attn\.proj\.", r"encoder.layers.encoder_layer_\1.self_attention.out_proj."),
    (r"^blocks\.(\d+)\.mlp\.fc1\.", r"encoder.layers.encoder_layer_\1.mlp.0."),
    (r"^blocks\.(\d+)\.mlp\.fc2\.", r"encoder.layers.encoder_layer_\1.mlp.3."),
    (r"^norm\.", "encoder.ln."),
    (r"^head\.", "heads.head."),
)

TORCHVISION_VIT_TO_TIMM = (
    LayoutRules("torchvision-vit-to-timm", _TV_TO_TIMM_VIT, description="torchvision VisionTransformer → timm vit_*")
)
TIMM_VIT_TO_TORCHVISION = (
    LayoutRules("timm-vit-to-torchvision", _TIMM_TO_TV_VIT, description="timm vit_* → torchvision VisionTransformer")
)
TIMM_VIT_SPLIT_QKV = (
    LayoutRules(
        "timm-vit-split-qkv",
        ops=(
            SplitFused(
                "split-qkv",
                r"(?P<m>.*\.attn)\.qkv\.(?P<kind>weight|bias)",
                (r"\g<m>.q.\g<kind>", r"\g<m>.k.\g<kind>", r"\g<m>.v.\g<kind>"),
            ),
        ),
        description="timm fused attn.qkv → separate attn.q / attn.k / attn.v",
    )
)
TIMM_VIT_FUSE_QKV = (
    LayoutRules(
        "timm-vit-fuse-qkv",
        ops=(
            ConcatParts(
                "fuse-qkv",
                r"(?P<m>.*\.attn)\.(?P<part>q|k|v)\.(?P<kind>weight|bias)",
                ("q", "k", "v"),
                r"\g<m>.qkv.\g<kind>",
            ),
        ),
        description="separate attn.q / attn.k / attn.v → timm fused attn.qkv",
    )
)

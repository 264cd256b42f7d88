"""Converters from the field's checkpoint layouts (timm/DeiT, official TimeSformer, MONAI) to ours."""

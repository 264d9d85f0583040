"""Pooling and resampling: MaxPool2D, AvgPool2D, GlobalAvgPool2D, Subsample2D, Upsample2D."""

from __future__ import annotations

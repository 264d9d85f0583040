"""Convolutions: Conv2D (with LeNet-5's connection table), Conv1D, ConvTranspose2D."""

from __future__ import annotations

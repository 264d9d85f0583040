"""Normalisation and regularisation: BatchNorm, Dropout."""

from __future__ import annotations

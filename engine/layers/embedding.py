"""Embedding: integer ids to learned vectors."""

from __future__ import annotations

"""Recurrent blocks: RNN, LSTM, GRU (return_sequences, bidirectional, full BPTT)."""

from __future__ import annotations

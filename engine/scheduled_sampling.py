"""Scheduled sampling for teacher-forced seq2seq training (Bengio et al., 2015).

Teacher forcing feeds the decoder the true previous token at every step; at inference it reads
its own previous output instead, mistakes included, which it never saw in training. With
``"scheduled_sampling": p`` in a graph's training settings each decoder input token after "go"
is, with probability p, replaced by the model's own prediction of it. The predictions come from
a teacher-forced forward pass of the batch just before the step (the parallel approximation of
the paper's step-by-step sampling: the tokens a prediction was made from are the true ones),
``argmax`` of the logits, in inference mode. The draws use their own Generator,
``default_rng([seed, 3])``, so a run is repeatable. p = 0 is plain teacher forcing.

It needs a data set holding the source and the shifted target side by side (``meta["seq2seq"]``:
reversal, sorting, dates, digit_strips) and a model giving logits per decoder step.
"""

from __future__ import annotations

import numpy as np

from engine.decoding import Layout
from engine.errors import ConfigError


class ScheduledSampling:
    """The training samples as the Trainer reads them: ``X[idx]`` is the batch with a share
    ``ratio`` of its decoder input tokens replaced by the model's predictions."""

    def __init__(self, X, model, meta: dict, n_classes: int, ratio: float, rng) -> None:
        try:
            self.layout = Layout.of(meta, n_classes)
        except ConfigError:
            raise ConfigError(
                "training: 'scheduled_sampling' needs a data set holding the source and the "
                "shifted target side by side (reversal, sorting, dates, digit_strips)"
            ) from None
        want = (self.layout.steps, self.layout.vocab)
        if tuple(model.output_shape) != want:
            raise ConfigError(
                f"training: 'scheduled_sampling' needs a model giving logits per decoder step "
                f"{want}; this one gives {tuple(model.output_shape)}"
            )
        self.X, self.model, self.ratio, self.rng = X, model, ratio, rng

    def __len__(self) -> int:
        return len(self.X)

    def __getitem__(self, idx) -> np.ndarray:
        xb = np.array(self.X[idx], dtype=np.float32)
        lay = self.layout
        if lay.steps < 2 or self.ratio <= 0:
            return xb
        pred = self.model.forward(xb, training=False).argmax(-1)  # (N, L): y_0 .. y_(L-1)
        swap = self.rng.random((len(xb), lay.steps - 1)) < self.ratio
        for t in range(1, lay.steps):  # decoder input t holds y_(t-1)
            rows = np.flatnonzero(swap[:, t - 1])
            if len(rows):
                part = xb[rows]
                lay.write(part, t, pred[rows, t - 1])
                xb[rows] = part
        return xb

"""Decoding a trained teacher-forced seq2seq graph from a typed source: greedy and beam search
(engine/decoding.py) with the source written into a sample of the data set's layout.

``Seq2SeqTask`` knows a data set's vocabulary and layout (``meta["seq2seq"]``): it turns typed
text into one sample (dates: the characters; reversal and sorting: tokens "s3 s1" or ids
"3 1"; digit strips: digits "3 7 1", drawn from the 8x8 set's first image of each) and token ids
back into text. The Try it panel and ``python app.py decode`` both call ``decode``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.decoding import Candidate, Layout, beam_search, seq2seq_step
from engine.errors import ConfigError

MAX_BEAM = 64


@dataclass(frozen=True)
class Seq2SeqTask:
    """What decoding needs of a data set: its name, vocabulary, ``meta["seq2seq"]`` and the
    shape of one sample."""

    name: str
    vocab: tuple[str, ...]
    seq: dict
    input_shape: tuple[int, ...]

    @classmethod
    def of(cls, name, vocab, seq, input_shape) -> Seq2SeqTask:
        if not isinstance(seq, dict) or not vocab:
            raise ConfigError(
                f"the data set {name!r} does not hold a source and a shifted target (teacher "
                "forcing): decoding needs one that does (reversal, sorting, dates, digit_strips)"
            )
        return cls(str(name), tuple(vocab), dict(seq), tuple(int(d) for d in input_shape))

    @classmethod
    def of_dataset(cls, ds) -> Seq2SeqTask:
        return cls.of(ds.name, ds.vocab, ds.meta.get("seq2seq"), ds.input_shape)

    @property
    def layout(self) -> Layout:
        return Layout.of({"seq2seq": self.seq}, len(self.vocab))

    @property
    def end(self) -> int | None:
        return self.vocab.index("end") if "end" in self.vocab else None

    def source_tokens(self, text: str) -> list[int]:
        """The ids of a typed source (characters when every symbol is one character)."""
        chars = all(len(v) == 1 for v in self.vocab[:-1])
        index = {v: i for i, v in enumerate(self.vocab)}
        parts = list(text) if chars else text.split()
        ids = []
        for p in parts:
            if p in index and p != "go":
                ids.append(index[p])
            elif not chars and p.isdigit() and 0 < int(p) < len(self.vocab) - 1:
                ids.append(int(p))
            else:
                known = "".join(self.vocab[1:-1]) if chars else " ".join(self.vocab[1:-1])
                raise ConfigError(f"{p!r} is not a symbol of the data set {self.name!r}: {known}")
        return ids

    def sample(self, text: str) -> np.ndarray:
        """One sample of the data set's layout with ``text`` as its source (the decoder's part
        empty). Shapes: -> input_shape float32."""
        text = text.strip()
        if not text:
            raise ConfigError("type a source sequence to decode")
        a, b = self.seq["source"]
        x = np.zeros(self.input_shape, np.float32)
        if self.seq.get("flat"):  # an image source: the digit strip of the typed digits
            from engine.data.seq2seq import DIGIT_WORDS, strip_of

            words = text.replace(",", " ").split()
            if len(words) == 1 and words[0].isdigit():
                words = list(words[0])
            digits = [
                int(w) if w.isdigit() else DIGIT_WORDS.index(w) if w in DIGIT_WORDS else -1
                for w in words
            ]
            x[a:b] = strip_of(digits)
            return x
        ids = self.source_tokens(text)
        if len(ids) > b - a:
            raise ConfigError(
                f"the source has {len(ids)} symbols; this model reads at most {b - a}"
            )
        x[np.arange(a, a + len(ids)), ids] = 1.0
        x[np.arange(a + len(ids), b), 0] = 1.0  # padding "_"
        return x

    def text(self, tokens) -> str:
        """Token ids as text, up to "end" (padding dropped)."""
        out = []
        for t in tokens:
            if t == self.end:
                break
            if t != 0:
                out.append(self.vocab[t] if 0 <= t < len(self.vocab) else str(t))
        chars = all(len(v) == 1 for v in self.vocab[:-1])
        return ("" if chars else " ").join(out)


def decode(model, task: Seq2SeqTask, text: str, beam_width: int = 4) -> tuple[Candidate, list]:
    """Greedy decoding and the beam's candidates (best first) of typed source ``text``."""
    if not isinstance(beam_width, int) or not 1 <= beam_width <= MAX_BEAM:
        raise ConfigError(f"beam width must be a whole number from 1 to {MAX_BEAM}")
    layout = task.layout
    step = seq2seq_step(model, task.sample(text), layout)
    greedy = beam_search(step, [], layout.steps, beam_width=1, end=task.end)[0]
    return greedy, beam_search(step, [], layout.steps, beam_width=beam_width, end=task.end)

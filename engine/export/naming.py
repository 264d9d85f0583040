"""Safe names and literals for generated code.

Nothing a user typed (block ids, graph names, descriptions, string settings, file paths) reaches
generated source as raw text; all of it goes through ``engine.escaping.escape``:
- strings become single-quoted literals of pure ASCII (quotes, backslashes, newlines, every
  non-printable and every non-ASCII character escaped), so a literal is one well-formed token;
- comments are one line of printable ASCII, escaped the same way and cut to length;
- identifiers are generated from ids: ASCII letters, digits and underscores, never a keyword, a
  builtin, a name the generated script itself uses, or an ``nn.Module`` attribute, and unique.
"""

from __future__ import annotations

import builtins
import keyword
import re
import textwrap
from collections.abc import Iterable
from typing import Any

from engine.escaping import escape

# Public attributes of torch.nn.Module (torch 2.x): a submodule attribute with one of these names
# would shadow the method. tests/test_export_torch.py checks the list against the installed torch.
NN_MODULE_ATTRS = frozenset(
    """
T_destination add_module apply bfloat16 buffers call_super_init children compile cpu cuda double
dump_patches eval extra_repr float forward get_buffer get_extra_state get_parameter get_submodule
half ipu load_state_dict modules mtia named_buffers named_children named_modules named_parameters
parameters register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook
register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory state_dict
to to_empty train training type xpu zero_grad
""".split()
)

# Names the generated scripts define or import themselves (a block's variable must not shadow
# them; tests/test_export.py checks this list against every top-level name of both scripts).
SCRIPT_NAMES = frozenset(
    """
engine layers np numpy torch nn F dist os sys math json time argparse gc DDP optim g graph model
x xs out inputs self data net trainer event batch loss args parser
SEED NAME_MAP TRAINING WEIGHTS OUT_SHAPE INIT OPTIMIZER RULE HERE
add build_graph build_model load_data make_trainer train fmt weights_path load_dataset
Net Reshape SequenceBatchNorm Recurrent MaskedConv2d Subsample2D LectureOptimizer
torch_key load_engine_weights engine_state engine_init init_weights loss_fn predict targets
holdout split weight_params regularize grad_rms evaluate setup make_optimizer lr_factor
counted hits scheduled_sampling
to_one_hot shuffled bilinear_matrix make_digits make_xor make_moons make_circles make_spiral
make_adding make_copy make_sine make_reviews REVIEW_FILLER REVIEW_SENTIMENT WORDS PAIRS pick
noun_phrase verb_phrase grammar_sentence
bracket_expression char_windows make_chars make_tagging labels_to_targets as_task read_csv
read_npz read_idx_file read_idx read_text read_image_folder resize_bilinear pad_center encode
windows chars_corpus bracket_tags make_reversal
make_sorting side_by_side make_dates date_text MONTHS WEEKDAYS DATE_FORMS DATE_SOURCE DATE_TARGET
DATE_CHARS make_digit_strips STRIP_SLOTS STRIP_VOCAB make_timed_spikes masked_share
blockprop_data_dir data_file read_mnist_set read_mnist read_fashion_mnist read_cifar10
read_shakespeare augment_batch affine_batch augment_tokens aug_rng GaussianNoise
sgd_rule momentum_rule nesterov_rule adagrad_rule adadelta_rule rmsprop_rule adam_rule
""".split()
)

_MAX_IDENT = 40


def literal(value: Any) -> str:
    """A Python literal for JSON-like data (str, int, float, bool, None, lists, tuples, dicts).

    Strings go through ``escape``: one valid string token of printable ASCII.
    Floats keep their exact value (``repr`` round-trips); non-finite floats are refused.
    """
    if value is None or isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return repr(int(value))
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"cannot write the non-finite number {value!r} into code")
        return repr(float(value))
    if isinstance(value, str):
        q = '"' if "'" in value and '"' not in value else "'"  # as repr picks: fewer escapes
        return q + escape(value, quote=q) + q
    if isinstance(value, (list, tuple)):
        items = ", ".join(literal(v) for v in value)
        if isinstance(value, tuple):
            return f"({items},)" if len(value) == 1 else f"({items})"
        return f"[{items}]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{literal(k)}: {literal(v)}" for k, v in value.items()) + "}"
    raise ValueError(f"cannot write a {type(value).__name__} into code")


def comment(text: Any, max_len: int = 90) -> str:
    """``text`` made safe for one ``#`` comment line: ``escape``d (printable ASCII, one line),
    runs of spaces collapsed, cut to ``max_len`` characters (never inside an escape)."""
    s = re.sub(" +", " ", str(text)[: max_len + 1]).strip(" ")
    pieces = [escape(ch, quote="") for ch in s]
    if sum(map(len, pieces)) <= max_len:
        return "".join(pieces)
    out, n = [], 0
    for p in pieces:
        if n + len(p) > max_len - 3:
            break
        out.append(p)
        n += len(p)
    return "".join(out).rstrip() + "..."


def is_safe_identifier(name: str, reserved: Iterable[str] = ()) -> bool:
    return (
        name.isidentifier()
        and name.isascii()
        and not keyword.iskeyword(name)
        and not keyword.issoftkeyword(name)
        and not hasattr(builtins, name)
        and not name.startswith("_")
        and name not in NN_MODULE_ATTRS
        and name not in SCRIPT_NAMES
        and name not in set(reserved)
    )


def base_identifier(block_id: str) -> str:
    """A readable ASCII identifier stem for ``block_id`` (not yet checked for clashes)."""
    s = re.sub(r"[^0-9A-Za-z]+", "_", str(block_id)).strip("_")[:_MAX_IDENT].rstrip("_")
    if not s:
        s = "block"
    if s[0].isdigit():
        s = "b" + s  # identifiers cannot start with a digit: "1conv" -> "b1conv"
    return s


def identifiers(ids: Iterable[str], reserved: Iterable[str] = ()) -> dict[str, str]:
    """Map each id to a safe, unique identifier (in the order given; ids keep readable stems).

    Clashes (with keywords, builtins, the script's own names, nn.Module attributes or another
    block) get a numeric suffix: ``add`` -> ``add_2`` only if needed, ``in`` -> ``in_1``.
    """
    reserved = set(reserved)
    taken: set[str] = set()
    out: dict[str, str] = {}
    for block_id in ids:
        stem = base_identifier(block_id)
        name = stem
        n = 1
        while not is_safe_identifier(name, reserved) or name in taken:
            name = f"{stem}_{n}"
            n += 1
        taken.add(name)
        out[block_id] = name
    return out


def pretty(value: Any, indent: int = 0, width: int = 99) -> str:
    """``literal(value)``, broken over lines (one item per line) when it would be too wide."""
    flat = literal(value)
    if indent + len(flat) <= width:
        return flat
    pad = " " * (indent + 4)
    if isinstance(value, str) and len(value) > 8:
        # implicit concatenation of shorter literals, one per line
        size = max(8, (width - indent - 8) // 2)
        parts = [literal(value[i : i + size]) for i in range(0, len(value), size)]
        return "(\n" + "\n".join(pad + p for p in parts) + "\n" + " " * indent + ")"
    if not isinstance(value, (list, tuple, dict)) or not value:
        return flat
    if isinstance(value, dict):
        items = [f"{pad}{literal(k)}: {pretty(v, indent + 4, width)}," for k, v in value.items()]
        return "{\n" + "\n".join(items) + "\n" + " " * indent + "}"
    items = [f"{pad}{pretty(v, indent + 4, width)}," for v in value]
    o, c = ("(", ")") if isinstance(value, tuple) else ("[", "]")
    return o + "\n" + "\n".join(items) + "\n" + " " * indent + c


def call(func: str, args: list[str], indent: int = 0, width: int = 99) -> str:
    """``func(a, b, ...)`` on one line if it fits, else one argument per line."""
    one = f"{func}({', '.join(args)})"
    if indent + len(one) <= width and "\n" not in one:
        return one
    pad = " " * (indent + 4)
    return func + "(\n" + "".join(f"{pad}{a},\n" for a in args) + " " * indent + ")"


def kwarg(key: str, value_code: str) -> str:
    """``key=value``; a key that is not a plain identifier goes through ``**{...}``."""
    if key.isidentifier() and key.isascii() and not keyword.iskeyword(key):
        return f"{key}={value_code}"
    return f"**{{{literal(key)}: {value_code}}}"


def comment_lines(text: Any, prefix: str = "# ", max_lines: int = 8, width: int = 96) -> list[str]:
    """A multi-line text as safe comment lines (each line sanitised, long ones wrapped)."""
    out: list[str] = []
    for raw in str(text).splitlines():
        line = comment(raw, max_len=10_000)
        out.extend(textwrap.wrap(line, width - len(prefix)) or [""])
    while out and not out[-1]:
        out.pop()
    if len(out) > max_lines:
        out = out[: max_lines - 1] + ["..."]
    return [(prefix + line).rstrip() for line in out]

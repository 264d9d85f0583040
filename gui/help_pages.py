"""The help page of every panel and dock, keyed by its class (gui.help renders them; the block
types' pages come from their layer classes)."""

from __future__ import annotations

from gui.help import PanelHelp
from gui.inspector import Inspector
from gui.palette import Palette
from gui.problems import ProblemsPanel
from gui.summary import SummaryPanel
from gui.training.controls import TrainingDock
from gui.training.panels.activations import ActivationsPanel
from gui.training.panels.attention import AttentionPanel
from gui.training.panels.confusion import ConfusionPanel
from gui.training.panels.filters import FiltersPanel
from gui.training.panels.gradients import GradientsPanel
from gui.training.panels.loss import LossPanel
from gui.training.panels.runs import RunsPanel
from gui.training.panels.try_it import TryItPanel
from gui.training.panels.why import WhyPanel

PANEL_HELP: dict[type, PanelHelp] = {
    Palette: PanelHelp(
        "Blocks",
        "Every block type, grouped by family. Drag one onto the canvas, or double-click it (or "
        "press Enter) to add it after the selected block; type in the search box to filter.\n\n"
        'Select a block and press F1 (or right-click it, or press "?") for its page: the '
        "lecture's formula, its shapes and settings, and its readable reference implementation.",
    ),
    Inspector: PanelHelp(
        "Inspector",
        "The selected block's settings, its input and output shapes and parameter count, and "
        "its problems with their one-click fixes. A setting is checked as you type; a change "
        "is one undo step.\n\nWith nothing selected: the graph's name and description.",
    ),
    ProblemsPanel: PanelHelp(
        "Problems",
        "Everything that stops the graph from training, found without data: wrong shapes, "
        "missing wires, settings that do not fit. Each names the block and, where one "
        "exists, offers a fix in one click.",
    ),
    SummaryPanel: PanelHelp(
        "Summary",
        "One row per block, in the order data flows: its output shape (without the batch axis) "
        "and its number of parameters, as PyTorch's summary counts them; the totals below.",
        (r"Conv2D: $F\,(C\,k_h k_w + 1)$ parameters$\qquad$Dense: $U\,(D + 1)$",),
    ),
    TrainingDock: PanelHelp(
        "Training",
        "The data set, loss, optimizer, schedule, batch size, epochs and seed the graph trains "
        "with (saved in the graph file), augmentation of the training batches, and Start / "
        "Pause / Step / Stop. Training runs in a process of its own; the panels follow it.\n\n"
        "Standard data sets (MNIST, Fashion-MNIST, CIFAR-10, Shakespeare) are downloaded on "
        "first use into the cache folder.",
        (
            r"$\theta \leftarrow \theta - \eta\, \nabla_\theta L$ (SGD; the other optimizers "
            r"change the step)",
        ),  # fmt: skip
    ),
    LossPanel: PanelHelp(
        "Loss",
        "The loss of every step (raw and smoothed) and, per epoch, the training and validation "
        "loss and accuracy. A validation loss that rises while the training loss falls is "
        "overfitting. The dashed line, where shown, is the data set's trivial baseline.",
        (
            r"$L = -\frac{1}{N} \sum_n \log \frac{e^{z_{n, y_n}}}{\sum_k e^{z_{n k}}}$ "
            r"(cross-entropy)",
        ),  # fmt: skip
    ),
    GradientsPanel: PanelHelp(
        "Gradients",
        "How large the gradient of each block's parameters is, input (left) to output (right), "
        "on a log scale: bars for the latest step, lines over the steps. A vanishing gradient "
        "shows as bars that shrink by decades towards the input.\n\nFor recurrent blocks, the "
        "BPTT profile: the gradient reaching each time step of the last batch.",
        (
            r"$\mathrm{RMS}(g) = \frac{\|g\|_2}{\sqrt{n}}$",
            r"$\frac{\partial L}{\partial h_{t-1}} = W_{hh}^{\top} \left( (1 - h_t^2) \odot "
            r"\frac{\partial L}{\partial h_t} \right)$",
        ),
    ),
    FiltersPanel: PanelHelp(
        "Filters",
        "The kernels of a convolution block as they form, each scaled on its own (white 0, blue "
        "negative, red positive). It follows the block selected on the canvas. First-layer "
        "filters on images turn into edge and blob detectors.",
    ),
    ActivationsPanel: PanelHelp(
        "Activations",
        "What one validation sample looks like inside the network: the chosen block's output "
        "(feature maps, a units x time heat map, or bars), and for LSTM and GRU blocks their "
        "gates over time, so a forget gate that stays open is visible.",
    ),
    ConfusionPanel: PanelHelp(
        "Confusion",
        "The validation set's confusion matrix after each epoch: rows are the true classes, "
        "columns the predicted ones, the colour the share of the true class. Beside it, a few "
        "validation samples with their predictions (wrong ones in red).",
        (r"$C_{ij} = \#\{n : y_n = i,\ \hat{y}_n = j\}$",),
    ),
    RunsPanel: PanelHelp(
        "Runs",
        "Every run of this graph with its settings and final metrics; tick runs to overlay "
        "their curves. Runs are saved next to the graph file.",
    ),
    TryItPanel: PanelHelp(
        "Try it",
        "Use the trained network: draw a digit and watch the class probabilities, type a "
        "prompt and let a character model write on at a chosen temperature, decode a source "
        "of your own (sequence-to-sequence), or run a sequence task (adding, sine, timed "
        "spikes) on a fresh sequence and compare its output with the target step by step.",
        (r"$p_i = \frac{e^{z_i / T}}{\sum_j e^{z_j / T}}$ (sampling at temperature $T$)",),
    ),
    AttentionPanel: PanelHelp(
        "Attention",
        "Where an Attention block looks: for one validation sample, each row is an output "
        "step (labelled with its target token), each column a source step, the colour the "
        "weight the output step gives that source step (each row sums to 1). Live during "
        "training; for date translation it becomes a near-diagonal with jumps.",
        (
            r"$a_{ts} = \frac{e^{\mathrm{score}(h_t, \bar h_s)}}{\sum_{s'} "
            r"e^{\mathrm{score}(h_t, \bar h_{s'})}}$",
            r"$c_t = \sum_s a_{ts}\, \bar h_s$",
        ),
    ),
    WhyPanel: PanelHelp(
        "Why?",
        "Where the evidence for a class is in one input: class activation maps (CAM, "
        "Grad-CAM), saliency, SmoothGrad or occlusion, drawn over the input.",
        (r"$M_c(i, j) = \sum_k w_k^c\, A_k(i, j)$ (CAM)",),
    ),
}


def help_for(widget) -> PanelHelp | None:
    """The help page of ``widget``'s class (or a base class of it), or None."""
    for cls in type(widget).__mro__:
        if cls in PANEL_HELP:
            return PANEL_HELP[cls]
    return None

"""Fixed parts of the exported PyTorch script, as source text (the engine never imports torch).

The generated script fills in the model, the settings and the data; these parts are the same
for every graph. Names they rely on: SEED, WEIGHTS, TRAINING, NAME_MAP, OUT_SHAPE, INIT, Net,
load_data, make_optimizer, lr_factor (see pytorch_export.py).
"""

IMPORTS = """\
import argparse
import gc
import json
import math
import os

import numpy as np
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.parallel import DistributedDataParallel as DDP
"""

# --- weights in the engine's format ------------------------------------------------------------

WEIGHTS_IO = '''
def torch_key(model, key):
    """'<block id>.<engine name>' -> the state_dict key of this module (NAME_MAP, ENGINE_NAMES)."""
    block, name = key.rsplit(".", 1)
    if block not in NAME_MAP:
        raise KeyError(key)
    attr = NAME_MAP[block]
    names = getattr(model.get_submodule(attr), "ENGINE_NAMES", {})
    return f"{attr}.{names.get(name, name)}"


def load_engine_weights(model, path):
    """Copy a BlockProp weights file (.npz of '<block id>.<name>' arrays) into ``model``."""
    state = model.state_dict()
    with np.load(path, allow_pickle=False) as arrays:
        loaded = set()
        for key in arrays.files:
            try:
                target = torch_key(model, key)
            except KeyError:
                raise ValueError(f"{path}: array {key!r} belongs to no block of this "
                                 "network") from None
            value = torch.from_numpy(np.asarray(arrays[key], dtype=np.float32))
            if target not in state or state[target].shape != value.shape:
                want = tuple(state[target].shape) if target in state else "nothing"
                raise ValueError(f"{path}: {key!r} has shape {tuple(value.shape)}, the network "
                                 f"needs {want}: export the weights of this graph")
            with torch.no_grad():
                state[target].copy_(value)
            loaded.add(target)
    missing = [k for k in state if k not in loaded and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"{path}: no values for {', '.join(missing)}")


def engine_state(model):
    """The module's weights as BlockProp names them ('<block id>.<name>' -> float32 array)."""
    out = {}
    for block, attr in NAME_MAP.items():
        module = model.get_submodule(attr)
        back = {v: k for k, v in getattr(module, "ENGINE_NAMES", {}).items()}
        for name, value in module.state_dict().items():
            if not name.endswith("num_batches_tracked"):
                out[f"{block}.{back.get(name, name)}"] = value.detach().cpu().float().numpy()
    return out


def weights_path():
    """WEIGHTS as given, or, for a relative path not found here, next to this script."""
    if os.path.isabs(WEIGHTS) or os.path.exists(WEIGHTS):
        return WEIGHTS
    here = os.path.dirname(os.path.abspath(globals().get("__file__", WEIGHTS)))
    return os.path.join(here, WEIGHTS)
'''

ENGINE_INIT = '''
def engine_init(p, method, std=0.01, limit=0.05, value=0.0, fan_in=None, fan_out=None):
    """BlockProp's initialisers (same distributions; torch draws the numbers). Fans as the
    engine counts them: (out, in, *kernel) -> fan_in = in * k, fan_out = out * k."""
    shape = tuple(p.shape)
    if len(shape) < 2:
        fi = fo = shape[0] if shape else 1
    else:
        k = math.prod(shape[2:])
        fi, fo = shape[1] * k, shape[0] * k
    fan_in, fan_out = fan_in or fi, fan_out or fo
    with torch.no_grad():
        if method == "zeros":
            p.zero_()
        elif method == "ones":
            p.fill_(1.0)
        elif method == "constant":
            p.fill_(value)
        elif method == "normal":
            p.normal_(0.0, std)
        elif method == "standard_normal":
            p.normal_(0.0, 1.0)
        elif method == "uniform":
            p.uniform_(-limit, limit)
        elif method == "xavier_normal":
            p.normal_(0.0, math.sqrt(2.0 / (fan_in + fan_out)))
        elif method == "xavier_uniform":
            a = math.sqrt(6.0 / (fan_in + fan_out))
            p.uniform_(-a, a)
        elif method == "he_normal":
            p.normal_(0.0, math.sqrt(2.0 / fan_in))
        elif method == "he_uniform":
            a = math.sqrt(6.0 / fan_in)
            p.uniform_(-a, a)
        elif method == "orthogonal":
            nn.init.orthogonal_(p.view(shape[0], -1) if len(shape) > 1 else p.view(-1, 1))
        else:
            raise ValueError(f"unknown initialiser {method!r}")
'''

# --- optimizer running the lecture's rule ------------------------------------------------------

LECTURE_OPTIMIZER = '''
class LectureOptimizer(torch.optim.Optimizer):
    """Applies RULE (the lecture's update, copied from BlockProp's engine) to every parameter:
    new_w, new_state = RULE(w, g, state, lr, **hyperparameters)."""

    def __init__(self, params, lr, **hyper):
        super().__init__(params, {"lr": lr, **hyper})
        self.hyper_names = tuple(hyper)

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            hyper = {k: group[k] for k in self.hyper_names}
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                new_w, state["rule"] = RULE(p, p.grad, state.get("rule", {}), group["lr"], **hyper)
                p.copy_(new_w)
'''

# --- training ----------------------------------------------------------------------------------

TRAIN = '''
def loss_fn(out, y):
    """TRAINING["loss"], mean over the batch (and time steps), as BlockProp computes it."""
    name = TRAINING["loss"]
    if name == "cross_entropy":
        z, t = out.reshape(-1, out.shape[-1]), y.reshape(-1)
        if not TRAINING.get("mask_padding"):
            return F.cross_entropy(z, t)
        # mask_padding: targets of class 0 (padding) count in neither the loss nor its gradient
        # (ignore_index=0); the mean over the others, 0 for a batch of padding only
        total = F.cross_entropy(z, t, ignore_index=0, reduction="sum")
        return total / max(1, int((t != 0).sum()))
    if name == "bce_with_logits":
        return F.binary_cross_entropy_with_logits(out, y)
    return F.mse_loss(out, y)


def predict(out):
    return (out > 0).long() if TRAINING["loss"] == "bce_with_logits" else out.argmax(-1)


def counted(y):
    """How many targets count (for the accuracy and to weigh a batch): with mask_padding, those
    not of class 0 (padding); else all."""
    return int((y != 0).sum()) if TRAINING.get("mask_padding") else y.numel()


def hits(out, y):
    """How many counted targets the predictions get right."""
    right = predict(out) == y
    return int((right & (y != 0)).sum()) if TRAINING.get("mask_padding") else int(right.sum())


def targets(y):
    """Targets as the engine's trainer prepares them for the loss."""
    if TRAINING["loss"] == "cross_entropy":
        return y.astype(np.int64)
    if TRAINING["loss"] == "bce_with_logits" and y.ndim == 1 and OUT_SHAPE == (1,):
        return y.astype(np.float32).reshape(-1, 1)
    return y.astype(np.float32)


def holdout(y, n, k, rng):
    """(the rest, k picked) of range(n), shuffled, stratified by class when y holds class
    ids: engine.data.stratified_pick (each class gives its share; largest remainders)."""
    if y is None or k == 0:
        perm = rng.permutation(n)
        return perm[k:], perm[:k]
    classes, counts = np.unique(y, return_counts=True)
    quota = counts * k / n
    take = np.floor(quota).astype(np.int64)
    extra = np.argsort(-(quota - take), kind="stable")[: k - take.sum()]
    take[extra] += 1
    val = np.concatenate([rng.permutation(np.flatnonzero(y == c))[:m]
                          for c, m in zip(classes, take, strict=True)])
    return rng.permutation(np.setdiff1d(np.arange(n), val)), rng.permutation(val)


def split(X, y):
    """BlockProp's split (engine.splits.split_three): a round(N * test_split) test share held
    out first (from default_rng([SEED, 3]); never trained on here), then a round(N * val_split)
    validation share drawn from default_rng(SEED), stratified by class for classification
    data. Returns (train, validation, rng); the rng then shuffles every epoch, as
    engine.Trainer does, so one process sees the engine's batches."""
    N = len(X)
    classes = y if y.ndim == 1 and y.dtype.kind in "iu" else None
    n_val = int(round(N * TRAINING["val_split"]))
    n_test = int(round(N * TRAINING.get("test_split", 0.0)))
    rest = np.arange(N)
    if n_test:
        rest, _test = holdout(classes, N, n_test, np.random.default_rng([SEED, 3]))
        classes = None if classes is None else classes[rest]
    tr, va = holdout(classes, len(rest), n_val, np.random.default_rng(SEED))
    tr, va = rest[tr], rest[va]
    return (X[tr], y[tr]), (X[va], y[va]), np.random.default_rng([SEED, 1])


def weight_params(model):
    """(block id, engine name, parameter) for every parameter."""
    for block, attr in NAME_MAP.items():
        module = model.get_submodule(attr)
        back = {v: k for k, v in getattr(module, "ENGINE_NAMES", {}).items()}
        for name, p in module.named_parameters():
            yield block, back.get(name, name), p


def regularize(model, l1, l2):
    """Add l1 sign(w) + l2 w to the gradients of weights (names starting with "weight"; biases
    are left alone) and return the penalty l1 sum|w| + l2/2 sum w^2, as BlockProp does."""
    penalty = 0.0
    if not (l1 or l2):
        return penalty
    with torch.no_grad():
        for _, name, w in weight_params(model):
            if not name.startswith("weight"):
                continue
            if l1:
                penalty += l1 * float(w.abs().sum())
                w.grad += l1 * torch.sign(w)
            if l2:
                penalty += 0.5 * l2 * float((w * w).sum())
                w.grad += l2 * w
    return penalty


def grad_rms(model):
    """Per block: the root-mean-square of its parameters' gradients (BlockProp's grad_rms)."""
    sums, counts = {}, {}
    for block, _, p in weight_params(model):
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        sums[block] = sums.get(block, 0.0) + float((g.double() ** 2).sum())
        counts[block] = counts.get(block, 0) + p.numel()
    return {b: math.sqrt(sums[b] / max(1, counts[b])) for b in sums}


@torch.no_grad()
def evaluate(model, X, y, device):
    """(loss, accuracy) over (X, y) in batches, no training; accuracy None for regression."""
    if len(X) == 0:
        return None, None
    model.eval()
    bs = max(TRAINING["batch_size"], 512)
    total, correct, count, weight = 0.0, 0, 0, 0
    for i in range(0, len(X), bs):
        xb, yb = X[i:i + bs].to(device), y[i:i + bs].to(device)
        # each batch weighs by its samples, with mask_padding by its counted targets
        w = counted(yb) if TRAINING.get("mask_padding") else len(xb)
        out = model(xb)
        total += float(loss_fn(out, yb)) * w
        weight += w
        if TRAINING["loss"] != "mse":
            correct += hits(out, yb)
            count += counted(yb)
    loss = total / max(weight, 1)
    l1, l2 = TRAINING["l1"], TRAINING["l2"]
    if l1 or l2:
        loss += sum(l1 * float(w.abs().sum()) + 0.5 * l2 * float((w * w).sum())
                    for _, name, w in weight_params(model) if name.startswith("weight"))
    return loss, (correct / count if count else None)


def setup():
    """(rank, world size, device). Under torchrun (WORLD_SIZE > 1) this joins the process group:
    gloo on CPU, nccl on GPUs (one per process, LOCAL_RANK)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1, torch.device("cuda" if torch.cuda.is_available() else "cpu")
    backend = "nccl" if torch.cuda.is_available() else "gloo"
    dist.init_process_group(backend)
    if backend == "nccl":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        return dist.get_rank(), world, torch.device("cuda", local)
    return dist.get_rank(), world, torch.device("cpu")


def train(epochs=None, steps=None, save=None, log=None):
    """Train with the graph's settings; one process, or DistributedDataParallel under torchrun.
    Returns the trained module (rank 0 prints, logs and saves)."""
    rank, world, device = setup()
    epochs = TRAINING["epochs"] if epochs is None else epochs
    X, y = load_data()
    (Xtr, ytr), (Xva, yva), rng = split(X, y)
    ytr, yva = targets(ytr), targets(yva)
    Xtr, ytr, Xva, yva = (torch.from_numpy(np.ascontiguousarray(a)) for a in (Xtr, ytr, Xva, yva))
    net = build_model().to(device)
    model = net
    sampler = None
    if world > 1:
        model = DDP(net, device_ids=[device.index] if device.type == "cuda" else None)
        sampler = torch.utils.data.DistributedSampler(
            torch.utils.data.TensorDataset(Xtr), num_replicas=world, rank=rank, shuffle=True,
            seed=SEED)
    optimizer = make_optimizer(net.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    bs, l1, l2, clip = (TRAINING[k] for k in ("batch_size", "l1", "l2", "clip_norm"))
    out_log = open(log, "w", encoding="utf-8") if log and rank == 0 else None
    step, reason = 0, "finished"
    for epoch in range(epochs):
        if sampler is None:
            order = rng.permutation(len(Xtr))  # the engine's batches
        else:
            sampler.set_epoch(epoch)
            order = np.fromiter(iter(sampler), dtype=np.int64)
        lr = optimizer.param_groups[0]["lr"]
        loss_sum, n_steps, correct, count = 0.0, 0, 0, 0
        model.train()
        for i in range(0, len(order), bs):
            idx = torch.from_numpy(order[i:i + bs])
            xb, yb = Xtr[idx].to(device), ytr[idx].to(device)
            optimizer.zero_grad(set_to_none=False)
            out = model(xb)
            loss = loss_fn(out, yb)
            loss.backward()
            value = loss.item() + regularize(net, l1, l2)
            if TRAINING["loss"] != "mse":
                correct += hits(out, yb)
                count += counted(yb)
            rms = grad_rms(net)
            if not (math.isfinite(value) and all(math.isfinite(v) for v in rms.values())):
                reason = "diverged"
                break
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
            optimizer.step()
            step += 1
            n_steps += 1
            loss_sum += value
            if out_log:
                out_log.write(json.dumps({"event": "step", "epoch": epoch + 1, "step": step,
                                          "loss": value, "lr": lr, "grad_rms": rms}) + "\\n")
            if steps is not None and step >= steps:
                reason = "stopped"
                break
        if reason != "finished" or n_steps == 0:  # stopped or diverged: no epoch summary
            break
        val_loss, val_acc = evaluate(net, Xva, yva, device)
        event = {"event": "epoch", "epoch": epoch + 1, "train_loss": loss_sum / n_steps,
                 "val_loss": val_loss, "train_acc": correct / count if count else None,
                 "val_acc": val_acc}
        if rank == 0:
            print(f"epoch {epoch + 1}/{epochs}  train_loss {event['train_loss']:.4f}  "
                  f"val_loss {fmt(val_loss)}  val_acc {fmt(val_acc, 3)}", flush=True)
            if out_log:
                out_log.write(json.dumps(event) + "\\n")
        scheduler.step()
    if rank == 0:
        print(f"{reason} after {step} steps", flush=True)
        if out_log:
            out_log.write(json.dumps({"event": "end", "reason": reason, "step": step}) + "\\n")
            out_log.close()
        if save:
            np.savez(save, **engine_state(net))
            print(f"saved the weights (BlockProp format) to {save}")
    if world > 1:  # DDP keeps parameters equal; BatchNorm statistics are per process
        for b in net.buffers():
            dist.broadcast(b, 0)
    final = os.environ.get("BLOCKPROP_SAVE_FINAL")
    if final:  # every rank writes its own copy (tests check that they agree)
        np.savez(f"{final}.rank{rank}.npz", **engine_state(net))
    if world > 1:
        # every rank done before any tears gloo down: a rank leaving early made another one
        # abort at exit now and then ("terminate called without an active exception")
        dist.barrier()
        # the DDP wrapper's reducer holds the process group: let it go first, so the group's
        # threads are joined here and not in the interpreter's teardown (an abort, now and
        # then, under load)
        del model
        gc.collect()
        dist.destroy_process_group()
    return net


def fmt(value, digits=4):
    return "-" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Train this network (torchrun for several "
                                                 "processes).")
    parser.add_argument("--epochs", type=int, help="override the graph's number of epochs")
    parser.add_argument("--steps", type=int, help="stop after this many steps")
    parser.add_argument("--save", metavar="weights.npz", help="save the trained weights in "
                                                              "BlockProp's format")
    parser.add_argument("--log", metavar="run.jsonl", help="write every step as a JSON line")
    args = parser.parse_args()
    train(args.epochs, args.steps, args.save, args.log)
'''

MASKED_SHARE = '''
def masked_share(y, world):
    """mask_padding under torchrun: each process's loss is the mean over its own counted
    targets, and DDP averages the processes' gradients; times this factor (its count x world /
    every process's count) the average is the mean over all counted targets, as one process
    computes it on the whole batch."""
    n = torch.tensor([float(counted(y))], dtype=torch.float64)
    dist.all_reduce(n)
    return counted(y) * world / max(1.0, float(n))

'''

SCHEDULED_SAMPLING = '''

def scheduled_sampling(net, xb, rng):
    """BlockProp's scheduled sampling (engine/scheduled_sampling.py): each decoder input token
    after "go" is, with probability TRAINING["scheduled_sampling"], replaced by the model's own
    prediction of it, the argmax of a teacher-forced pass of the batch in inference mode. The
    decoder's input ends the sample: steps (N, L, V) one-hot, or flat L * V values."""
    steps, vocab = OUT_SHAPE
    ratio = TRAINING["scheduled_sampling"]
    if steps < 2 or ratio <= 0:
        return xb
    net.eval()
    with torch.no_grad():
        pred = net(xb).argmax(-1)  # (N, L): y_0 .. y_(L-1)
    net.train()
    swap = rng.random((len(xb), steps - 1)) < ratio
    x = xb.clone()
    flat = x.dim() == 2
    start = x.shape[1] - steps * (vocab if flat else 1)
    for t in range(1, steps):  # decoder input t holds y_(t-1)
        rows = torch.from_numpy(np.flatnonzero(swap[:, t - 1])).to(x.device)
        if len(rows):
            onehot = F.one_hot(pred[rows, t - 1], vocab).to(x.dtype)
            if flat:
                x[rows, start + t * vocab:start + (t + 1) * vocab] = onehot
            else:
                x[rows, start + t] = onehot
    return x
'''

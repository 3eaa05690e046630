"""Why our SASRec learns less per epoch than RecBole's: each candidate cause measured on its own.

    python scripts/sasrec_gap.py run --variants baseline init dropout0.5 ... --seeds 0 1 --epochs 5
    python scripts/sasrec_gap.py table

Every variant is our SASRec under the shared protocol of ``scripts/compare_recbole.py ours``
(:func:`recgym.pretrain.recbole_ours.our_task_and_batch`, ML-100K, all users, history 50,
embedding 64, Adam lr 1e-3) with ONE thing changed to RecBole 1.2.1's choice
(``recbole/model/sequential_recommender/sasrec.py``, ``recbole/model/layers.py``,
``recbole/properties/model/SASRec.yaml``), so that its effect at equal epochs is its own:

* ``baseline``: ours as the comparison trains it;
* ``init``: RecBole's initialisation, every Linear and Embedding weight ~ N(0, 0.02), biases 0
  (ours: item and position embeddings N(0, 0.1), Linear layers torch's default uniform);
* ``dropout0.5``: RecBole's hidden and attention dropout 0.5 (ours 0.2);
* ``postln``: RecBole's layer-norm placement: LayerNorm on the input embeddings, then
  ``x = LN(x + Dropout(SA(x)))``, ``x = LN(x + Dropout(FFN(x)))`` (post-LN, eps 1e-12), no final
  LayerNorm (ours: pre-LN, ``x + Dropout(g(LN(x)))``, a final LayerNorm, eps 1e-5);
* ``noproj``: RecBole's scoring ``s . e_j`` (ours ``(W s) . e_j``, a learned projection W);
* ``prefix``: RecBole's samples, one per prefix (the window before each training interaction,
  the loss at its last position only), 2,048 a batch (ours: windows every 49 interactions, the
  loss at every position, 40 windows a batch);
* ``recbole``: all of the above at once but ``prefix``; ``recbole-minus-<change>``: all of
  them but ``prefix`` and ``<change>``; ``recbole-prefix``: all of them;
* ``stride<k>``: windows every ``k`` interactions, the loss at each window's newest ``k``
  positions (each label once an epoch, with at least ``50 - k`` items before it where the user
  has them), ``2048 // k`` windows a batch (about as many labels a step as RecBole's).

Results go to ``docs/results/recbole/gap/<variant>-seed<k>.json`` (the validation NDCG@10 after
each epoch, and the test figures of the best validation epoch among the first 2 and among all).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

import state_encoders
from recgym.data import load
from recgym.pretrain.recbole_ours import our_encoder_kwargs, our_task_and_batch, write_record
from recgym.pretrain.recbole_report import cached_record, sasrec_gap_lines
from recgym.pretrain.recbole_reference import BATCH_SIZE, HISTORY_LENGTH, LEARNING_RATE
from recgym.pretrain.tasks import make_task
from recgym.pretrain.trainer import TrainerConfig, fit
from recgym.pretrain.windows import UserSequences, WindowBuilder
from state_encoders.layers import TransformerBlock, TransformerStack

OUT = Path(__file__).resolve().parent.parent / "docs" / "results" / "recbole" / "gap"
#: the architecture's differences from RecBole's SASRec that the variants switch
ARCHITECTURE_CHANGES = ("init", "dropout0.5", "postln", "noproj")
VARIANTS = ("baseline", *ARCHITECTURE_CHANGES, "prefix", "recbole", *(f"recbole-minus-{c}" for c in ARCHITECTURE_CHANGES),
            "recbole-prefix", "stride1", "stride5",
            "stride10", "stride25")
#: RecBole's SASRec.yaml
RECBOLE_INIT_STD = 0.02
RECBOLE_DROPOUT = 0.5
RECBOLE_LAYER_NORM_EPS = 1e-12


def recbole_init(module: nn.Module) -> None:
    """RecBole's ``SASRec._init_weights``: Linear/Embedding weights N(0, 0.02), biases 0, LayerNorm 1/0."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=RECBOLE_INIT_STD)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        if isinstance(m, nn.Linear) and m.bias is not None:
            nn.init.zeros_(m.bias)
    if hasattr(module, "pad_item"):  # our padding row stays 0 (RecBole's padding_idx row is drawn, then unused)
        with torch.no_grad():
            module.item_embedding.weight[module.pad_item].zero_()


def _post_ln_block(self: TransformerBlock, x: torch.Tensor, attention_mask: torch.Tensor,
                   key_terms: torch.Tensor | None = None, value_terms: torch.Tensor | None = None) -> torch.Tensor:
    # RecBole's TransformerLayer: LN(x + Dropout(SA(x))), then LN(x + Dropout(FFN(x)))
    x = self.attention_norm(x + self.dropout(self.attention(x, attention_mask, key_terms, value_terms)))
    return self.feed_forward_norm(x + self.dropout(self.feed_forward(x)))


def _post_ln_stack(self: TransformerStack, x: torch.Tensor, mask: torch.Tensor, attention_mask: torch.Tensor,
                   key_terms: torch.Tensor | None = None, value_terms: torch.Tensor | None = None) -> torch.Tensor:
    # RecBole's SASRec.forward: LayerNorm of the input embeddings (our final_norm serves as it), no final norm.
    # Our input dropout comes before this call, RecBole's after its LayerNorm: dropout commutes with nothing
    # here, so the order is kept as ours (a scale change before a LayerNorm).
    keep = mask.to(x.dtype).unsqueeze(-1)
    x = self.final_norm(x) * keep
    for block in self.blocks:
        x = block(x, attention_mask, key_terms, value_terms) * keep
    return x


def architecture_changes(variant: str) -> set[str]:
    """The architecture changes of ``variant``: one, all (``recbole``, ``recbole-prefix``), all but one
    (``recbole-minus-<change>``), or none."""
    if variant in ARCHITECTURE_CHANGES:
        return {variant}
    if variant in ("recbole", "recbole-prefix"):
        return set(ARCHITECTURE_CHANGES)
    if variant.startswith("recbole-minus-"):
        return set(ARCHITECTURE_CHANGES) - {variant.removeprefix("recbole-minus-")}
    return set()


def build(variant: str, seed: int, log: Any, windows: WindowBuilder, task: Any) -> tuple[nn.Module, nn.Module]:
    """Our SASRec and its head with ``variant``'s changes (see the module docstring)."""
    changes = architecture_changes(variant)
    kwargs = our_encoder_kwargs("sasrec", log)
    if "dropout0.5" in changes:
        kwargs["dropout"] = RECBOLE_DROPOUT
    torch.manual_seed(seed)
    encoder = state_encoders.make("sasrec", windows.observation_space, **kwargs)
    head = task.make_head(encoder, windows)
    if "postln" in changes:
        for block in encoder.blocks.blocks:
            block.forward = _post_ln_block.__get__(block)
        encoder.blocks.forward = _post_ln_stack.__get__(encoder.blocks)
        for m in encoder.modules():
            if isinstance(m, nn.LayerNorm):
                m.eps = RECBOLE_LAYER_NORM_EPS
    if "noproj" in changes:
        head.projection = nn.Identity()
    if "init" in changes:
        recbole_init(encoder)
        recbole_init(head)
    return encoder, head


def run(variant: str, seed: int, epochs: int) -> dict[str, Any]:
    """Train ``variant`` for ``epochs`` epochs; its record (also written under ``OUT``)."""
    torch.set_num_threads(1)
    log = load("ml-100k")
    sequences = UserSequences.from_log(log)
    windows = WindowBuilder(sequences, n_users=log.n_users, history_length=HISTORY_LENGTH)
    if variant in ("prefix", "recbole-prefix"):
        task, batch_size = make_task("next-item"), BATCH_SIZE
    elif variant.startswith("stride"):  # windows every k interactions, the loss at their newest k positions
        stride = int(variant.removeprefix("stride"))
        task, batch_size = make_task("next-item", window_stride=stride), max(1, BATCH_SIZE // stride)
    else:
        task, batch_size = our_task_and_batch("sasrec")
    split = task.split(sequences)
    encoder, head = build(variant, seed, log, windows, task)
    tic = time.perf_counter()
    result = fit(encoder, head, task, windows, split,
                 TrainerConfig(epochs=epochs, batch_size=batch_size, lr=LEARNING_RATE, seed=seed, progress=False,
                               snapshot_epoch=min(2, epochs)))
    n_batches = -(-split["train"].size // batch_size)
    record = {
        "variant": variant, "seed": seed, "epochs": epochs, "batch_size": batch_size,
        "training_samples": int(split["train"].size), "steps_per_epoch": n_batches,
        "valid_curve": [round(h["NDCG@10"], 4) for h in result.history],
        "train_loss": [round(h["train_loss"], 4) for h in result.history],
        "test_at_2": result.snapshot["test"], "best_epoch_at_2": result.snapshot["best_epoch"],
        "test": result.test, "best_epoch": result.best_epoch, "seconds": time.perf_counter() - tic,
    }
    write_record(OUT / f"{variant}-seed{seed}.json", record)
    return record


def table() -> str:
    """The markdown table of every cached variant, as ``docs/results/ubm.md`` shows it."""
    recbole = cached_record(OUT.parent / "SASRec.json")
    return "\n".join(sasrec_gap_lines(OUT, recbole))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train the variants")
    r.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    r.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    r.add_argument("--epochs", type=int, default=5)
    sub.add_parser("table", help="print the cached results as a markdown table")
    args = parser.parse_args()
    if args.command == "table":
        print(table())
        return
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    for variant in args.variants:
        for seed in args.seeds:
            rec = run(variant, seed, args.epochs)
            print(variant, seed, rec["valid_curve"], rec["test_at_2"]["NDCG@10"], rec["test"]["NDCG@10"],
                  f"{rec['seconds']:.0f}s", flush=True)


if __name__ == "__main__":
    main()

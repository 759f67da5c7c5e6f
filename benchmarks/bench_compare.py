"""The lab beside the library a user would pick instead, on the same work, in one process.

Three comparisons, alternating lab / library, median of `--repeats`:
- sampling: `policy.sample_rows` vs transformers' `generate` (same policy, temperature 1, no
  top-k or top-p, the same banned tokens, same max tokens, 1,024 rows a pass), on two pool
  shapes: 1,024 samples of one prompt, and 4,000 prompts x 4 samples (`--quick`: 1,000 x 4);
- reward-model training: `train_reward_model` (tokenizing, training, the held-out accuracy pass,
  and the pass over the fitted completions for the train accuracy and the reward's scale) vs
  TRL's `RewardTrainer` built on the same token ids, trained (same pairs, epochs, batch, learning
  rate, cosine schedule, AdamW, clipping), evaluated on the same held-out pairs (its
  `evaluate`, the accuracy a user reads) and run over the fitted completions for the reward's
  mean and standard deviation (the scale a user standardising the reward computes: a plain
  loop of 512 rows in data order);
- RL: the lab's RL stage (guard, measurement every 5 steps of 32 prompts x 8 samples as in the
  default study, checkpoints) vs TRL's `GRPOTrainer.train()` called directly (`bench_rl.py`);
- RL on the same work: the same stage vs `GRPOTrainer` with the measurement a TRL user would
  write (`bench_rl.user_measure`: transformers' `generate` for the same fresh samples, the rule's
  gold, the reference model's log-probabilities for k1 and k3, the same prompts and cadence);
- RL training: both with the measurement only at the first and last step.
The last line reads
    ratios sampler_vs_hf_generate=X rm_train_vs_trl_reward_trainer=Y rl_vs_trl_grpo=Z
           rl_vs_trl_grpo_same_work=W rl_train_vs_trl_grpo=V
each the lab's time over the library's (< 1: the lab is faster); X is the larger of the two
shapes' ratios.
    python benchmarks/bench_compare.py [--quick] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rewardlab.cache import StageResult
from rewardlab.models import build_reward_model, load_tokenizer
from rewardlab.optimize.rl import Config as RLConfig
from rewardlab.optimize.rl import stage_rl
from rewardlab.policy import never_sampled, sample_rows
from rewardlab.preferences import PreferenceConfig, make_pairs
from rewardlab.rewards import Reward, RuleReward
from rewardlab.rewards.learned import train_reward_model
from rewardlab.seeding import seed_everything
from rewardlab.sequences import encode
from rewardlab.specs import ModelSpec, SamplingConfig
from rewardlab.tasks import TaskConfig, load_task

sys.path.insert(0, str(Path(__file__).parent))
from bench_rl import make_policy, plain_grpo, user_measure  # noqa: E402

BATCH = 1024  # rows per sampling pass, both samplers


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def hf_generate(model, tok, prompts: list[str], per_prompt: int, max_new: int) -> list[str]:
    """transformers' sampling of `per_prompt` completions of each prompt, BATCH rows a call."""
    tok.padding_side = "left"
    out = []
    step = max(1, BATCH // per_prompt)
    for i in range(0, len(prompts), step):
        chunk = [(tok.bos_token or "") + p for p in prompts[i : i + step]]
        enc = tok(chunk, return_tensors="pt", padding=True, add_special_tokens=False)
        for s in range(0, per_prompt, BATCH):  # one prompt x 1,024: a single call
            n = min(BATCH, per_prompt - s)
            gen = model.generate(**enc, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                                 max_new_tokens=max_new, num_return_sequences=n,
                                 suppress_tokens=never_sampled(tok), pad_token_id=tok.pad_token_id,
                                 eos_token_id=tok.eos_token_id)  # fmt: skip
            out += tok.batch_decode(gen[:, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    return out


def lab_sample(model, tok, prompts: list[str], per_prompt: int, max_new: int) -> list[str]:
    rows = [p for p in prompts for _ in range(per_prompt)]
    u = torch.rand((len(rows), max_new))
    return sample_rows(model, tok, rows, u, max_new_tokens=max_new, batch_size=BATCH)[0]


def trl_reward(
    model, tok, enc, n: int, epochs: int, lr: float, batch: int, out: Path, test_enc, n_test: int
) -> dict:
    """Train with TRL's `RewardTrainer` on pairs k < n of `enc` (k chosen, n + k rejected),
    evaluate it on the held-out pairs of `test_enc` as a user reading its accuracy would, and
    score the fitted completions for the reward's scale (mean and standard deviation: what a
    user standardising the reward computes, and what the lab's stage computes) in batches of
    512 in data order; return the held-out accuracy and the scale."""
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    ds = Dataset.from_dict(dict(chosen_ids=enc.ids[:n], rejected_ids=enc.ids[n:]))
    held = Dataset.from_dict(
        dict(chosen_ids=test_enc.ids[:n_test], rejected_ids=test_enc.ids[n_test:])
    )
    args = RewardConfig(output_dir=str(out), per_device_train_batch_size=batch, num_train_epochs=epochs,
                        learning_rate=lr, lr_scheduler_type="cosine", weight_decay=0.01, max_grad_norm=1.0,
                        bf16=False, fp16=False, gradient_checkpointing=False, use_cpu=True, save_strategy="no",
                        report_to=[], disable_tqdm=True, logging_steps=10**6, seed=0,
                        dataloader_drop_last=False, max_length=None)  # fmt: skip
    trainer = RewardTrainer(model=model, args=args, train_dataset=ds, processing_class=tok)
    trainer.train()
    accuracy = trainer.evaluate(held)["eval_accuracy"]
    model.eval()
    scores = []
    with torch.no_grad():
        for start in range(0, len(enc.ids), 512):
            rows = enc.ids[start : start + 512]
            ids = torch.full((len(rows), max(map(len, rows))), tok.pad_token_id)
            for k, row in enumerate(rows):
                ids[k, : len(row)] = torch.tensor(row)
            scores.append(
                model(input_ids=ids, attention_mask=(ids != tok.pad_token_id).long()).logits[:, 0]
            )
    r = torch.cat(scores)
    return dict(accuracy=accuracy, mean=float(r.mean()), std=float(r.std()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--quick", action="store_true", help="smaller work, at most 3 minutes")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default="benchmarks/results/compare.csv")
    ap.add_argument("--cases", default=None, help="comma-separated subset of the cases (all)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    task = load_task("topics")
    tmp = Path(tempfile.mkdtemp())
    policy = make_policy(task, tmp / "policy")
    tok = load_tokenizer(policy)
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(policy).eval()
    max_new = task.max_new_tokens
    many = task.prompts(1000 if args.quick else 4000, np.random.default_rng(1))
    one = many[:1]

    # preference pairs from the policy's own samples, as the study makes them
    rows = [p for p in many for _ in range(4)]
    comps = lab_sample(model, tok, many, 4, max_new)
    pool = pd.DataFrame(dict(prompt_id=np.repeat(np.arange(len(many)), 4), prompt=rows,
                             sample_id=np.tile(np.arange(4), len(many)), completion=comps))  # fmt: skip
    pool["gold"] = task.gold(rows, comps)
    pairs = make_pairs(pool, PreferenceConfig(prompts=len(many)), np.random.default_rng(0))
    train = pairs[pairs.split == "train"].reset_index(drop=True)
    test = pairs[pairs.split == "test"].reset_index(drop=True)
    n = len(train)
    rm_epochs, rm_lr, rm_batch = (2 if args.quick else 10), 1e-3, 64
    spec = ModelSpec(n_layer=3, n_embd=96, n_head=4)  # the default study's rm-m

    rl_cfg = RLConfig(rewards=["rule"], steps=20 if args.quick else 60, measure_every=5,
                      measure_prompts=32, measure_samples=8, lr=3e-4)  # fmt: skip
    rl_prompts = task.prompts(rl_cfg.steps * rl_cfg.prompts_per_step, np.random.default_rng(3))
    evals = task.prompts(rl_cfg.measure_prompts, np.random.default_rng(2))

    def rm_lab():
        seed_everything(0, "bench")
        m = build_reward_model(spec, tok)
        train_reward_model(m, tok, train, test, epochs=rm_epochs, lr=rm_lr, batch_size=rm_batch,
                           rng=np.random.default_rng(0), progress=False)  # fmt: skip

    def rm_trl(r):
        seed_everything(0, "bench")
        m = build_reward_model(spec, tok)
        p = train.prompt.tolist()
        enc = encode(tok, p + p, train.chosen.tolist() + train.rejected.tolist())
        q = test.prompt.tolist()
        held = encode(tok, q + q, test.chosen.tolist() + test.rejected.tolist())
        trl_reward(m, tok, enc, n, rm_epochs, rm_lr, rm_batch, tmp / f"trl-rm{r}", held, len(test))

    def rl_lab(r, cfg=rl_cfg, tag="rl"):
        out = tmp / f"lab-{tag}{r}"
        out.mkdir()
        stage_rl(cfg, Reward("rule", "rule", RuleReward(task), key="rule"),
                 StageResult("policy", policy, "bench", False, 0.0), TaskConfig(name="topics"),
                 SamplingConfig(), rl_prompts, evals, 0, "cpu", work=tmp / f"work-{tag}{r}", out=out)  # fmt: skip

    ends_only = rl_cfg.model_copy(update={"measure_every": rl_cfg.steps})  # first and last step

    def rl_trl(r, every, tag):
        watch = user_measure(task, tok, evals, rl_cfg.measure_samples, every, policy)
        return plain_grpo(rl_cfg, task, policy, rl_prompts, tmp / f"trl-{tag}{r}", measure=watch)

    cases = {
        "sample_one_prompt": (lambda r: lab_sample(model, tok, one, 1024, max_new),
                              lambda r: hf_generate(model, tok, one, 1024, max_new)),
        "sample_many_prompts": (lambda r: lab_sample(model, tok, many, 4, max_new),
                                lambda r: hf_generate(model, tok, many, 4, max_new)),
        "rm_train": (lambda r: rm_lab(), rm_trl),
        "rl": (rl_lab, lambda r: plain_grpo(rl_cfg, task, policy, rl_prompts, tmp / f"trl-rl{r}")),
        "rl_same_work": (lambda r: rl_lab(r, tag="same"),
                         lambda r: rl_trl(r, rl_cfg.measure_every, "same")),
        "rl_train": (lambda r: rl_lab(r, ends_only, "train"),
                     lambda r: rl_trl(r, rl_cfg.steps, "train")),
    }  # fmt: skip
    if args.cases:
        cases = {k: v for k, v in cases.items() if k in args.cases.split(",")}
    rows = []
    for r in range(args.repeats):
        for name, (lab, lib) in cases.items():
            t_lab, t_lib = timed(lab, r), timed(lib, r)
            rows.append(
                dict(case=name, repeat=r, lab_s=t_lab, library_s=t_lib, ratio=t_lab / t_lib)
            )
            print(json.dumps(rows[-1]), flush=True)
    df = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    med = df.groupby("case")[["lab_s", "library_s", "ratio"]].median()
    print(med.round(3).to_string())
    if args.cases:
        return
    sampler = max(med.ratio["sample_one_prompt"], med.ratio["sample_many_prompts"])
    print(f"ratios sampler_vs_hf_generate={sampler:.2f} "
          f"rm_train_vs_trl_reward_trainer={med.ratio['rm_train']:.2f} rl_vs_trl_grpo={med.ratio['rl']:.2f} "
          f"rl_vs_trl_grpo_same_work={med.ratio['rl_same_work']:.2f} "
          f"rl_train_vs_trl_grpo={med.ratio['rl_train']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()

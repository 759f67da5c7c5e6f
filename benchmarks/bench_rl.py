"""The RL stage's time per step beside a plain TRL GRPO loop, same model, task and reward.

The lab's stage adds the reward guard, a measurement (fresh samples, KL, gold, proxy) every
`measure_every` steps and a checkpoint at each. Both run here in one process, alternating.
    python benchmarks/bench_rl.py [--steps 30] [--repeats 3] [--policy runs/.../stages/policy]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from rewardlab.cache import StageResult
from rewardlab.models import build_causal_lm
from rewardlab.optimize.rl import Config as RLConfig
from rewardlab.optimize.rl import stage_rl
from rewardlab.policy import train_sft
from rewardlab.rewards import Reward, RuleReward
from rewardlab.seeding import seed_everything
from rewardlab.specs import ModelSpec, SamplingConfig
from rewardlab.tasks import TaskConfig, build_tokenizer, load_task


def make_policy(task, folder: Path) -> Path:
    rng = seed_everything(0, "bench")
    tok = build_tokenizer(task.vocab)
    model = build_causal_lm(ModelSpec(n_layer=2, n_embd=64, n_head=4), tok)
    prompts = task.prompts(2000, rng)
    train_sft(
        model,
        tok,
        prompts,
        task.demonstrations(prompts, 0.3, rng),
        epochs=3,
        lr=3e-3,
        batch_size=64,
        rng=rng,
        progress=False,
    )
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def user_measure(task, tok, evals: list[str], samples: int, every: int, ref_path: Path):
    """The measurement a TRL user would write beside `GRPOTrainer`: at step 0, every `every`
    steps and at the end, `samples` fresh completions of each held-out prompt from transformers'
    `generate`, their gold (the rule), and KL(pi || pi_ref) as k1 and k3 from one forward pass of
    the policy and of the reference model over the sampled sequences. Returns the callback; its
    `rows` hold the measurements."""
    import torch
    from transformers import AutoModelForCausalLM, TrainerCallback

    from rewardlab.policy import never_sampled

    ref = AutoModelForCausalLM.from_pretrained(ref_path).eval()
    banned = never_sampled(tok)
    rule = RuleReward(task)

    class Measure(TrainerCallback):
        def __init__(self):
            self.rows: list[dict] = []

        def measure(self, model, step: int) -> None:
            if any(r["step"] == step for r in self.rows):
                return
            model.eval()
            tok.padding_side = "left"
            enc = tok([(tok.bos_token or "") + p for p in evals], return_tensors="pt",
                      padding=True, add_special_tokens=False)  # fmt: skip
            L = enc["input_ids"].shape[1]
            with torch.no_grad():
                seq = model.generate(**enc, do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                                     max_new_tokens=task.max_new_tokens, num_return_sequences=samples,
                                     suppress_tokens=banned, pad_token_id=tok.pad_token_id,
                                     eos_token_id=tok.eos_token_id)  # fmt: skip
                comp = seq[:, L:]
                eos = (comp == tok.eos_token_id).int()
                keep = (eos.cumsum(1) - eos) == 0  # completion tokens, <eos> included
                att = torch.cat([enc["attention_mask"].repeat_interleave(samples, 0),
                                 keep.long()], dim=1)  # fmt: skip
                lps = []
                for m in (model, ref):
                    logits = m(input_ids=seq, attention_mask=att).logits[:, L - 1 : -1].float()
                    logits[..., banned] = -torch.inf
                    lp = logits.log_softmax(-1).gather(-1, comp[..., None]).squeeze(-1)
                    lps.append(torch.where(keep, lp, 0.0).sum(1))
            r = (lps[1] - lps[0]).numpy()  # log pi_ref - log pi per sequence
            texts = tok.batch_decode(
                torch.where(keep, comp, tok.pad_token_id), skip_special_tokens=True
            )
            prompts = [p for p in evals for _ in range(samples)]
            self.rows.append(dict(step=step, kl_k1=float(-r.mean()), kl_k3=float((np.exp(r) - 1 - r).mean()),
                                  gold=float(np.mean(rule(prompts, [t.strip() for t in texts])))))  # fmt: skip
            model.train()

        def on_train_begin(self, args, state, control, model=None, **kw):
            self.measure(model, state.global_step)

        def on_step_end(self, args, state, control, model=None, **kw):
            if state.global_step % every == 0 or state.global_step == state.max_steps:
                self.measure(model, state.global_step)

    return Measure()


def plain_grpo(cfg: RLConfig, task, policy: Path, prompts: list[str], out: Path,
               measure=None) -> float:  # fmt: skip
    """TRL's GRPOTrainer on the same model, prompts, reward and settings as the lab's stage,
    with `measure` (`user_measure`) as its one callback when given."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import GRPOConfig, GRPOTrainer

    from rewardlab.models import load_tokenizer

    rule = RuleReward(task)

    def reward(prompts, completions, **kw):
        return rule(prompts, completions)

    args = GRPOConfig(
        output_dir=str(out), per_device_train_batch_size=cfg.prompts_per_step * cfg.generations,
        num_generations=cfg.generations, max_completion_length=task.max_new_tokens, learning_rate=cfg.lr,
        lr_scheduler_type="constant", beta=cfg.beta, max_steps=cfg.steps, bf16=False, fp16=False,
        gradient_checkpointing=False, use_cpu=True, save_strategy="no", report_to=[], seed=0, disable_tqdm=True,
        logging_steps=cfg.measure_every,
    )  # fmt: skip
    model = AutoModelForCausalLM.from_pretrained(policy)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=reward,
        args=args,
        train_dataset=Dataset.from_dict({"prompt": prompts}),
        processing_class=load_tokenizer(policy),
        callbacks=[measure] if measure is not None else None,
    )
    t0 = time.perf_counter()
    trainer.train()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--policy", default=None)
    ap.add_argument("--out", default="benchmarks/results/rl.csv")
    args = ap.parse_args()
    task = load_task("topics")
    tmp = Path(tempfile.mkdtemp())
    policy = Path(args.policy) if args.policy else make_policy(task, tmp / "policy")
    cfg = RLConfig(
        rewards=["rule"], steps=args.steps, measure_every=10, measure_prompts=32, measure_samples=8
    )
    prompts = task.prompts(cfg.steps * cfg.prompts_per_step, np.random.default_rng(1))
    evals = task.prompts(cfg.measure_prompts, np.random.default_rng(2))
    rows = []
    for r in range(args.repeats):
        t_plain = plain_grpo(cfg, task, policy, prompts, tmp / f"plain{r}")
        out = tmp / f"lab{r}"
        out.mkdir()
        t0 = time.perf_counter()
        stage_rl(
            cfg,
            Reward("rule", "rule", RuleReward(task), key="rule"),
            StageResult("policy", policy, "bench", False, 0.0),
            TaskConfig(name="topics"),
            SamplingConfig(),
            prompts,
            evals,
            0,
            "cpu",
            work=tmp / f"work{r}",
            out=out,
        )
        t_lab = time.perf_counter() - t0
        rows.append(
            dict(
                repeat=r,
                steps=cfg.steps,
                plain_s_per_step=t_plain / cfg.steps,
                lab_s_per_step=t_lab / cfg.steps,
                ratio=t_lab / t_plain,
            )
        )
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)
    print(f"median plain GRPO {statistics.median(df.plain_s_per_step):.3f} s/step, "
          f"lab RL stage {statistics.median(df.lab_s_per_step):.3f} s/step, "
          f"ratio {statistics.median(df.ratio):.2f}")  # fmt: skip


if __name__ == "__main__":
    main()

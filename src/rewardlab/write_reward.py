"""Rewards written by an LLM from a task's description (`rewardlab write-reward`), Eureka-style
(Ma et al. 2023): ask for K candidate programs, validate each in the sandbox on sample
completions (it runs, returns one finite number per sample), feed the error back for the next
round, and keep the programs that pass, each with the conversation that produced it.

Backends: any OpenAI-compatible chat endpoint (``http://host:port/v1``: vLLM, llama.cpp's
server, Ollama), spoken with plain HTTP, or a local Hugging Face causal LM folder. Validation
never looks at gold; ``oracle=True`` ranks the survivors by their rank correlation with gold on
the same samples and the summary says "oracle-selected".
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from rewardlab.errors import RewardLabError
from rewardlab.sandbox import ProgramError, score_program

SYSTEM = ("You write reward functions in Python for reinforcement learning. Answer with one "
          "Python code block and nothing else.")  # fmt: skip
FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.S)


def first_prompt(task) -> str:
    """What the LLM is asked: the task's description and the reward's inputs and signature."""
    desc = getattr(task, "description", None)
    if not desc:
        raise RewardLabError(
            f"task {task.name!r} has no description to write a reward from; give it a "
            "`description` (and `reward_inputs`) attribute"
        )
    return (
        f"Task: {desc}\n\nInputs: {getattr(task, 'reward_inputs', 'prompts and completions')}.\n\n"
        "Write `def reward(prompts, completions, **kw) -> list[float]` returning one score per "
        "completion, higher for better completions. Use only the Python standard library; no "
        "files, network or processes."
    )


def extract_code(text: str) -> str | None:
    """The first fenced code block of `text`, or the whole text when it compiles as it is."""
    m = FENCE.search(text)
    code = m.group(1) if m else text
    try:
        compile(code, "<candidate>", "exec")
    except SyntaxError:
        return None if m is None else code  # a fenced block that does not compile: say why
    return code


class HttpChat:
    """An OpenAI-compatible chat-completions endpoint: POST ``{base}/chat/completions``."""

    def __init__(self, base: str, model: str = "default", timeout_s: float = 120.0,
                 temperature: float = 0.8):  # fmt: skip
        self.url = base.rstrip("/") + "/chat/completions"
        self.model, self.timeout_s, self.temperature = model, timeout_s, temperature

    def __call__(self, messages: list[dict]) -> str:
        body = json.dumps({"model": self.model, "messages": messages,
                           "temperature": self.temperature}).encode()  # fmt: skip
        req = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                answer = json.loads(r.read())
            return answer["choices"][0]["message"]["content"]
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise RewardLabError(f"LLM endpoint {self.url} could not be reached: {exc}") from None
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise RewardLabError(
                f"LLM endpoint {self.url} answered outside the chat-completions protocol: "
                f"{type(exc).__name__}: {exc}"
            ) from None


class LocalChat:
    """A local Hugging Face causal LM folder, prompted with its chat template (or plain text)."""

    def __init__(self, folder: str, max_new_tokens: int = 512, seed: int = 0):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        self.model = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True).eval()
        self.max_new_tokens, self.seed = max_new_tokens, seed

    def __call__(self, messages: list[dict]) -> str:
        import torch

        if getattr(self.tok, "chat_template", None):
            text = self.tok.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        else:
            text = "\n\n".join(m["content"] for m in messages) + "\n\n"
        ids = self.tok(text, return_tensors="pt").input_ids
        torch.manual_seed(self.seed)
        out = self.model.generate(ids, max_new_tokens=self.max_new_tokens, do_sample=True)
        return self.tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def chat_backend(llm: str, model: str = "default"):
    """``http(s)://...`` an endpoint; an existing folder a local model; else an error."""
    if llm.startswith(("http://", "https://")):
        return HttpChat(llm, model)
    if Path(llm).is_dir():
        return LocalChat(llm)
    raise RewardLabError(f"--llm {llm!r}: give an http(s):// endpoint or a local model folder")


def validation_samples(task, n: int = 64, seed: int = 0) -> tuple[list[str], list[str], dict]:
    """Prompts, noisy demonstrations (imperfect completions of every kind) and the task's
    columns: what candidates are validated on. Gold is not computed."""
    from rewardlab.rewards.base import columns_for

    rng = np.random.default_rng(seed)
    prompts = task.prompts(n, rng)
    return prompts, task.demonstrations(prompts, 0.5, rng), columns_for(task, prompts)


def write_rewards(task, chat, out: Path, candidates: int = 4, rounds: int = 3,
                  oracle: bool = False, timeout_s: float = 10.0) -> dict:  # fmt: skip
    """Ask `chat` for `candidates` programs, each for up to `rounds` rounds of feedback; write
    ``candidate-<k>.py`` for each that passes validation, ``candidate-<k>.json`` (the
    conversation and the outcome of each round) for every one, and ``summary.json``."""
    out.mkdir(parents=True, exist_ok=True)
    prompts, comps, cols = validation_samples(task)
    summary = {"task": task.name, "candidates": [], "oracle_selected": None}
    for k in range(candidates):
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": first_prompt(task)},
        ]
        rounds_log, ok = [], False
        for r in range(rounds):
            reply = chat(messages)
            messages.append({"role": "assistant", "content": reply})
            code = extract_code(reply)
            if code is None:
                error = "the answer holds no Python code block"
            else:
                path = out / f"candidate-{k}.py"
                path.write_text(code)
                try:
                    score_program(path, prompts, comps, cols, timeout_s=timeout_s)
                    error = None
                except ProgramError as exc:
                    error = str(exc).replace(str(path), "the program")
                    path.unlink()
            rounds_log.append({"round": r, "error": error})
            if error is None:
                ok = True
                break
            messages.append({"role": "user", "content": f"That program failed validation: "
                             f"{error}\nFix it and answer with the whole program again."})  # fmt: skip
        (out / f"candidate-{k}.json").write_text(
            json.dumps({"messages": messages, "rounds": rounds_log, "passed": ok}, indent=1)
        )
        summary["candidates"].append({"candidate": k, "passed": ok, "rounds": len(rounds_log),
                                      "file": f"candidate-{k}.py" if ok else None})  # fmt: skip
    if oracle:
        summary["oracle_selected"] = _oracle(task, out, summary, prompts, comps, cols, timeout_s)
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _oracle(task, out, summary, prompts, comps, cols, timeout_s):
    """The survivor whose scores rank the samples most like gold does (Spearman); this looks
    at gold, so the summary names it 'oracle-selected'."""
    from scipy.stats import spearmanr

    gold = task.gold(prompts, comps)
    best, best_rho = None, -np.inf
    for c in summary["candidates"]:
        if c["passed"]:
            s = score_program(out / c["file"], prompts, comps, cols, timeout_s=timeout_s)
            rho = float(spearmanr(s, gold).statistic)
            c["oracle_spearman"] = rho
            if np.isfinite(rho) and rho > best_rho:
                best, best_rho = c["file"], rho
    return best

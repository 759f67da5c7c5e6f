import hashlib
import json

from rewardlab.seeding import derive, rng


def test_streams_are_the_documented_hash_and_never_collide():
    want = (
        int.from_bytes(
            hashlib.sha256(json.dumps([3, "pool", "bon", 7]).encode()).digest()[:8], "big"
        )
        >> 1
    )
    assert derive(3, "pool", "bon", 7) == want
    seeds = {derive(s, st, i) for s in range(3) for st in ("pool", "policy") for i in range(50)}
    assert len(seeds) == 300 and all(0 <= x < 2**63 for x in seeds)
    assert rng(0, "a").random() == rng(0, "a").random() != rng(0, "b").random()


def test_prompt_uniforms_depend_on_the_prompt_index_alone():
    import torch

    from rewardlab.seeding import prompt_uniforms

    u = prompt_uniforms(5, "pool", "test", prompts=4, samples=3, width=6)
    assert u.shape == (12, 6)
    third = torch.rand(
        (3, 6), generator=torch.Generator().manual_seed(derive(5, "pool", "test", 2))
    )
    assert torch.equal(u[6:9], third)  # prompt 2's rows: its own stream, drawn up front
    assert torch.equal(prompt_uniforms(5, "pool", "test", prompts=2, samples=3, width=6), u[:6])

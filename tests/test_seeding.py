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

import numpy as np

from rewardlab.training import GROUP, length_batches


def test_length_batches_cover_every_example_once_and_cut_the_padding():
    rng = np.random.default_rng(0)
    lengths = rng.integers(5, 25, size=3000)
    order = rng.permutation(3000)
    batches = length_batches(order, lengths, 64, rng)
    flat = np.concatenate(batches)
    assert sorted(flat.tolist()) == list(range(3000))  # each example exactly once
    assert len(batches) == -(-3000 // 64)  # as many steps as plain slicing

    def padded(bs):  # tokens computed when each batch is padded to its longest
        return sum(len(b) * lengths[b].max() for b in bs)

    plain = [order[i : i + 64] for i in range(0, 3000, 64)]
    # lengths uniform on 5..24: a random batch of 64 pads to ~24 against a mean of 14.5,
    # a batch from a sorted group of 1,024 spans about 20/16 tokens
    assert lengths.sum() / padded(plain) < 0.65
    assert lengths.sum() / padded(batches) > 0.9
    # the batches are not one global sort: consecutive steps jump in length
    first = [lengths[b].min() for b in batches[:20]]
    assert np.any(np.diff(first) < 0)
    # members of a batch come from one group of GROUP batches of the shuffled order
    pos = np.empty(3000, int)
    pos[order] = np.arange(3000)
    assert all(np.ptp(pos[b] // (GROUP * 64)) == 0 for b in batches)

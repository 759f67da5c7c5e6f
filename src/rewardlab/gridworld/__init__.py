"""The reward-tampering lab: worlds (`envs`, registered as ``rewardlab/<Name>-v0``), agents,
typed experiment configs, the experiments and their report."""

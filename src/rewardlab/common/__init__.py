"""What the language-model lab and the gridworld lab share: statistics, atomic I/O, HTML."""

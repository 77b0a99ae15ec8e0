"""``sansa train``: the paper's pseudo-reference self-training of adapters on a frozen SAM2."""

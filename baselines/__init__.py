"""Re-implementations of the baselines of Table 2: FOMM, Monkey-Net, X2Face (own code, official facts)."""

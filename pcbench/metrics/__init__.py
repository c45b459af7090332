"""Metrics as pure functions: arrays in, numbers out (no I/O), one family per module.

- :mod:`.jet_observables`: relative jet mass and pT, EFPs, N-subjettiness
- :mod:`.wasserstein`: 1-D W1, batched as the jetnet library does
- :mod:`.frechet`: Frechet distance, FPD
- :mod:`.kernel`: unbiased polynomial-kernel MMD, KPD
- :mod:`.emd`: COV and MMD with the energy mover's distance
- :mod:`.fpnd`, :mod:`.particlenet`: Frechet ParticleNet distance
- :mod:`.classifier`: classifier two-sample tests (AUC, k-fold)
- :mod:`.divergence`: histogram KL divergences
"""

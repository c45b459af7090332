"""The jet generators: one module per model (EPiC-GAN, EPiC-FM, MP-GAN, the baseline, the MP-GAN
paper's released generators), their shared interface (``base.JetGenerator``) and jet training."""

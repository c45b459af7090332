"""Network building blocks that jet and shower generators share (they import from here, never
from each other): feed-forward blocks with batch statistics, the tree-branching generator and
the iterative-pooling critic of DeepTreeGAN, the mean-field attention layers of MDMA, and the
learning-rate schedules of their reference code."""

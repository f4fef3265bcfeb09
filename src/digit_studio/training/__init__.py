"""Training and measuring the models: MNIST and real handwriting (data, realdigits), augmentation and
handwriting styles, the training loop both models share, evaluation and the figures it writes."""

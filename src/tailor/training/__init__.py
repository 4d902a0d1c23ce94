"""Training jobs: ``tailor train-adapter`` (:mod:`tailor.training.jobs`) and the training
pairs a personalizer's prompts make (:mod:`tailor.training.pairs`). They sit above the
personalizers, whose prompts they train adapters on, as evaluation does."""

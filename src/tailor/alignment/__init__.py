"""Preference data: simulated users and the rewards that stand for them, preference pairs
sampled from a model and ranked by those rewards, readers of real preference files (PRISM,
plain JSONL), and a pairwise judge.

Nothing here trains or serves: preference adapters are trained by
:mod:`tailor.training.preference` (with :mod:`tailor.adapters.preference`), served by the
``preference`` and ``soup`` methods (:mod:`tailor.methods.preference`), and measured by
``tailor eval-preference`` (:mod:`tailor.evaluation.preference`). Importing this package
loads no model and no scoring library: ``textstat``, ``vaderSentiment`` and ``emoji`` are
imported when a reward is first computed (extra ``align``).
"""

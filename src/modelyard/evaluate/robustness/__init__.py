"""Robustness suites: a task's prompt inputs perturbed (typos, casing, punctuation,
whitespace, Unicode confusables, simplified/traditional Chinese, a paraphrase by a route),
each perturbation one eval run compared with the clean run item by item, and a gate rule
on the drop. A perturbation is part of the run's task (``Task.perturbation``), so it is
recorded in the run and a resumed run perturbs alike; references are never perturbed."""

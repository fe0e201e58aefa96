"""Tuning: an Optuna (TPE) search over an eval task's prompt and sampling settings (and a
student's hyper-parameters), each trial an eval run, under bounds on latency and cost; the
best trial is confirmed on held-out items against production with the paired bootstrap."""

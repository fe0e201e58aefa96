"""Release: rollouts, experiments, canary analysis and their statistics."""

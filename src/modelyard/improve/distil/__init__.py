"""Teacher labelling and distillation: a dataset version labelled by a teacher route
through the serving path, and a ``classifier`` student trained on it and registered."""

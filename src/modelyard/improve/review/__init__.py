"""Review queues: people go through a dataset version's items one by one (accept, correct
the answer or label, reject, skip), several at once without taking the same item, and the
decisions become a new version of the dataset."""

# The two commands of the README. Both create .venv and install what they need.
.PHONY: serve test setup bench-engine cluster

serve:
	@scripts/setup.sh serve
	.venv/bin/modelyard serve

test:
	@scripts/test.sh

setup:
	@scripts/setup.sh test

# The engine benchmark (bench/README.md); the first run builds llama-server (~20 min).
bench-engine:
	@scripts/setup.sh test
	.venv/bin/python bench/engine.py

# Three replicas behind HAProxy on PostgreSQL and Redis, on this machine, until Ctrl-C
# (docs/scaling.md, "A cluster on one machine"; deploy/cluster.py --help for the rest).
cluster:
	@scripts/setup.sh test
	.venv/bin/python deploy/cluster.py up

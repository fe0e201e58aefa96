# The two commands of the README. Both create .venv and install what they need.
.PHONY: serve test setup

serve:
	@scripts/setup.sh serve
	.venv/bin/modelyard serve

test:
	@scripts/test.sh

setup:
	@scripts/setup.sh test

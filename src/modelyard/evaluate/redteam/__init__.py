"""Red-team and leakage suites: attacks on a secret planted in the system prompt
(jailbreaks, direct and indirect prompt injection) and probes of a planted customer record
(a canary, an e-mail, a phone and a card number), each an ordinary eval task whose success
is measured by the planted strings coming back (``metrics.leakage``); a summary per run
with what the guard blocked and flagged (``summary``)."""

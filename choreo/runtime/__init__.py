"""The worker at run time: the exactly-once loop, stores, restore, error triage, health, supervision."""

"""The benchmark harness: every contender on the same broker in one run, printed as one table."""

"""The `choreo` command line."""

"""The schemas of the records choreo itself writes (a fired timer), beside the domains'."""

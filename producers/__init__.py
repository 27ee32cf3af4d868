"""Edge producers: the commands people and load generators send into the saga."""

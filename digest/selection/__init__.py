"""Selection: who is due (cadence, time zone) and which summaries each of them gets."""

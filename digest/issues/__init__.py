"""Editor campaigns: compose, preview, schedule, pause; click-throughs, figures and the public archive."""

"""Editor accounts: the people who compose and schedule issues."""

"""The whole method as one resumable command: every job in order in one run directory."""

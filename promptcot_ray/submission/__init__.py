"""Submitting jobs to a Ray cluster: the runtime environment, the client, the in-job entry."""

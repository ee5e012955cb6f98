"""The synthesize job: concept combinations -> generator -> parse -> judges -> verdict."""

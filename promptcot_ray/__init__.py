"""PromptCoT problem synthesis on Ray."""

"""The rationales job: reverse-engineer each seed's design rationale into generator SFT rows."""

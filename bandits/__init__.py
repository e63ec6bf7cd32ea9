"""Contextual bandit experimentation framework (library: no Hydra inside)."""

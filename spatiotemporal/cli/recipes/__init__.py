"""Recipes: the config schema of each train command and how a run is assembled from it."""

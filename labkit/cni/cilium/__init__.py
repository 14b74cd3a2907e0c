"""Cilium: what it reports about itself (``status``); the recipe comes with lab 04."""

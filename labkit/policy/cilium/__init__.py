"""cilium"""

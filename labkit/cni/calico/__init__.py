"""calico"""

"""addons"""

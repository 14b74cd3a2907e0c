"""labs"""

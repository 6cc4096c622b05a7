"""Metrics between renders, generated frames and ground truth."""

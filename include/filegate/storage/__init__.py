"""Bucket layout and streaming S3 helpers."""

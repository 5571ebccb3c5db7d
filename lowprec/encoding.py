"""Placeholder: encode/decode/fields/describe land in the next commit."""

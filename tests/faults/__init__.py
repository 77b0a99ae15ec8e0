"""The fault tests, by concern; collected through tests/test_faults.py."""

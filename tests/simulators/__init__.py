"""Test-only simulators of storage arrays' management APIs (not shipped in the collection build)."""

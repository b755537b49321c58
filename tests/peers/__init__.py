"""Real peers the tests start on loopback (s3rver)."""

"""Fakes of the seams the tests share (the outside world is faked at the wire: loopback
servers serving real-shaped payloads)."""

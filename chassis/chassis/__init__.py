"""Family Story chassis: what every service shares.

Services import from here and never from each other.
"""

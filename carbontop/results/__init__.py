"""The three CSV files, their schemas, and writing them safely."""

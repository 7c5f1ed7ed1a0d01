"""The product domain: the record, its rules and its text. Imports no driver."""

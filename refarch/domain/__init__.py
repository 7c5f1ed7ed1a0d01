"""The product domain: the record, its rules and its text. Imports no driver.

* :mod:`refarch.domain.product`: :class:`Product` (a catalog record) and :class:`StoredProduct`
  (a row of ``products`` with its id and versions).
* :mod:`refarch.domain.validation`: the one rule set every entry point applies.
* :mod:`refarch.domain.text`: the text that is embedded for a product and its content hash.
* :mod:`refarch.domain.vectors`: how a stored product appears in the vector index.
"""

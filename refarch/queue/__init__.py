"""The message queue between the relay and the indexers: a port and its adapters.

``port`` defines the :class:`~refarch.queue.port.Queue` protocol with SQS semantics; ``local``
implements it on Postgres, ``sqs`` on Amazon SQS. The wiring function picks one from settings.
"""

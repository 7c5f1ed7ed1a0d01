"""The message queue between the relay and the indexers: a port and its adapters.

``port`` defines the :class:`~refarch.queue.port.Queue` protocol with SQS FIFO semantics;
``local`` implements it on Postgres, ``sqs`` on Amazon SQS; ``validation`` holds the limits
both enforce; ``wiring.make_queue`` picks one from settings.
"""
